//! The sealed template file: a versioned header, then the AES-256-GCM ciphertext of the serialised
//! template with the header as additional authenticated data (layout in `docs/template-format.md`).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use super::enrol::wipe_bytes;
use super::keystore::{TemplateKey, check_key_id};
use super::{Template, TemplateError, codec};

/// The first bytes of every sealed template file.
pub const MAGIC: [u8; 4] = *b"FPTM";
/// The sealed file format version written and read by this build.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes of the authentication tag after the ciphertext.
const TAG_LEN: usize = 16;

/// The parsed header of a sealed file.
#[derive(Debug)]
pub(crate) struct Header<'a> {
    /// The id of the key the file was sealed under.
    pub key_id: &'a str,
    nonce: [u8; NONCE_LEN],
    /// Header length in bytes (= the AAD); the ciphertext follows.
    len: usize,
}

/// Seals `template` under `key`, naming `key_id` in the header. A fresh random 96-bit nonce per call.
pub(crate) fn seal(
    template: &Template,
    key_id: &str,
    key: &TemplateKey,
) -> Result<Vec<u8>, TemplateError> {
    let mut plain = codec::encode(template);
    let sealed = seal_bytes(MAGIC, &plain, key_id, key);
    wipe_bytes(&mut plain);
    sealed
}

/// Seals `plain` in the sealed-file layout under another file kind's `magic` (same header, same AEAD; the
/// magic is authenticated, so one kind of file can never be opened as another).
pub(crate) fn seal_bytes(
    magic: [u8; 4],
    plain: &[u8],
    key_id: &str,
    key: &TemplateKey,
) -> Result<Vec<u8>, TemplateError> {
    check_key_id(key_id)?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| TemplateError::Crypto("the system random source failed".into()))?;
    let mut out = Vec::new();
    out.extend_from_slice(&magic);
    out.push(FORMAT_VERSION);
    // `check_key_id` bounds the id to 64 bytes.
    out.push(key_id.len() as u8);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&nonce);
    let header_len = out.len();

    let aead = aead_key(key)?;
    let mut in_out = plain.to_vec();
    let sealed = aead.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&out[..header_len]),
        &mut in_out,
    );
    let result = sealed
        .map(|()| out.extend_from_slice(&in_out))
        .map_err(|_| TemplateError::Crypto("AES-256-GCM sealing failed".into()));
    wipe_bytes(&mut in_out);
    result.map(|()| out)
}

/// Parses the header of a sealed file: magic (else [`TemplateError::Integrity`]), format version (else
/// [`TemplateError::UnsupportedVersion`]), key id and nonce. Nothing here is trusted until [`open`] succeeds.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header<'_>, TemplateError> {
    parse_header_of(MAGIC, bytes)
}

/// [`parse_header`] for a sealed file of the kind `magic`.
pub(crate) fn parse_header_of(magic: [u8; 4], bytes: &[u8]) -> Result<Header<'_>, TemplateError> {
    if bytes.len() < MAGIC.len() + 2 || bytes[..MAGIC.len()] != magic {
        return Err(TemplateError::Integrity);
    }
    let version = bytes[MAGIC.len()];
    if version != FORMAT_VERSION {
        return Err(TemplateError::UnsupportedVersion {
            found: version.into(),
            supported: FORMAT_VERSION.into(),
        });
    }
    let id_start = MAGIC.len() + 2;
    let id_end = id_start + usize::from(bytes[MAGIC.len() + 1]);
    let len = id_end + NONCE_LEN;
    if bytes.len() < len + TAG_LEN {
        return Err(TemplateError::Integrity);
    }
    let key_id =
        std::str::from_utf8(&bytes[id_start..id_end]).map_err(|_| TemplateError::Integrity)?;
    check_key_id(key_id).map_err(|_| TemplateError::Integrity)?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&bytes[id_end..len]);
    Ok(Header { key_id, nonce, len })
}

/// Authenticates and decrypts a sealed file whose header was parsed from the same `bytes`.
/// Any change to the header or ciphertext, or the wrong key, gives [`TemplateError::Integrity`].
pub(crate) fn open(
    bytes: &[u8],
    header: &Header<'_>,
    key: &TemplateKey,
) -> Result<Template, TemplateError> {
    open_with(bytes, header, key, codec::decode)
}

/// Authenticates and decrypts a sealed file of any kind, handing the plaintext to `decode` (the plaintext
/// buffer is zeroed afterwards, whatever `decode` returns).
pub(crate) fn open_with<T>(
    bytes: &[u8],
    header: &Header<'_>,
    key: &TemplateKey,
    decode: impl FnOnce(&[u8]) -> Result<T, TemplateError>,
) -> Result<T, TemplateError> {
    let aead = aead_key(key)?;
    let mut in_out = bytes[header.len..].to_vec();
    let opened = aead
        .open_in_place(
            Nonce::assume_unique_for_key(header.nonce),
            Aad::from(&bytes[..header.len]),
            &mut in_out,
        )
        .map_err(|_| TemplateError::Integrity)
        .and_then(|plain| decode(plain));
    wipe_bytes(&mut in_out);
    opened
}

fn aead_key(key: &TemplateKey) -> Result<LessSafeKey, TemplateError> {
    let unbound = UnboundKey::new(&AES_256_GCM, key.as_bytes())
        .map_err(|_| TemplateError::Crypto("AES-256-GCM rejected the template key".into()))?;
    Ok(LessSafeKey::new(unbound))
}
