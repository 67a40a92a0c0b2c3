//! The compact binary serialisation of a [`Template`] (the plaintext inside the sealed file).
//!
//! Little-endian: `u16 version | u64 created_at_ms | u8 model_len | model (UTF-8) | u8 count | u16 dim |
//! count × dim × f32`. Decoding is strict: every length is bounds-checked and trailing bytes are refused.

use super::enrol::{MAX_DIMENSION, MAX_MODEL_ID_LEN};
use super::{Template, TemplateError};

/// Serialises a template.
pub(crate) fn encode(template: &Template) -> Vec<u8> {
    let model = template.model().as_bytes();
    let embeddings = template.embeddings();
    let dim = template.dimension();
    let mut out = Vec::with_capacity(2 + 8 + 1 + model.len() + 1 + 2 + embeddings.len() * dim * 4);
    out.extend_from_slice(&template.version().to_le_bytes());
    out.extend_from_slice(&template.created_at_ms().to_le_bytes());
    // Lengths fit by the template's invariants: model ≤ 255 bytes, ≤ 5 embeddings, dim ≤ 4096.
    out.push(model.len() as u8);
    out.extend_from_slice(model);
    out.push(embeddings.len() as u8);
    out.extend_from_slice(&(dim as u16).to_le_bytes());
    for embedding in embeddings {
        for v in embedding {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Parses and validates a serialised template. A structurally broken payload is an integrity failure;
/// a payload version other than this build's is [`TemplateError::UnsupportedVersion`].
pub(crate) fn decode(bytes: &[u8]) -> Result<Template, TemplateError> {
    let mut r = Reader(bytes);
    let version = u16::from_le_bytes(r.take_array()?);
    let created_at_ms = u64::from_le_bytes(r.take_array()?);
    let model_len = usize::from(r.take_array::<1>()?[0]);
    if model_len > MAX_MODEL_ID_LEN {
        return Err(TemplateError::Integrity);
    }
    let model =
        String::from_utf8(r.take(model_len)?.to_vec()).map_err(|_| TemplateError::Integrity)?;
    let count = usize::from(r.take_array::<1>()?[0]);
    let dim = usize::from(u16::from_le_bytes(r.take_array()?));
    if dim == 0 || dim > MAX_DIMENSION {
        return Err(TemplateError::Integrity);
    }
    let embeddings = (0..count)
        .map(|_| {
            let raw = r.take(dim * 4)?;
            Ok(raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        })
        .collect::<Result<Vec<Vec<f32>>, TemplateError>>()?;
    if !r.0.is_empty() {
        return Err(TemplateError::Integrity);
    }
    Template::restore(version, model, embeddings, created_at_ms).map_err(|e| match e {
        TemplateError::UnsupportedVersion { .. } => e,
        _ => TemplateError::Integrity,
    })
}

/// A bounds-checked cursor over the payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TemplateError> {
        if self.0.len() < n {
            return Err(TemplateError::Integrity);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], TemplateError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}
