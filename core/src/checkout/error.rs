//! Errors at the checkout protocol boundary: decoding canonical payloads, base64url fields and signatures.

use thiserror::Error;

/// Why a canonical payload, a wire field or a signature was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ProtocolError {
    /// The payload does not start with the `FPAY` magic bytes.
    #[error("payload does not start with the FPAY magic bytes")]
    BadMagic,
    /// The payload's format version is not one this build understands.
    #[error(
        "unsupported payload format version {0} (this build reads version 2 only: protocol v1 payloads are refused)"
    )]
    UnsupportedVersion(u8),
    /// A move-closer challenge's outline is outside the protocol's bounds.
    #[error("evidence.challenges: a move_closer outline is outside the protocol's bounds")]
    InvalidOutline,
    /// The payload ended before `field` was complete.
    #[error("payload truncated while reading {field}")]
    Truncated {
        /// The field being read when the bytes ran out.
        field: &'static str,
    },
    /// Bytes were left over after the last field.
    #[error("{0} trailing bytes after the end of the payload")]
    TrailingBytes(usize),
    /// A string field is not valid UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The offending field.
        field: &'static str,
    },
    /// A field's length (in bytes or items) is outside its allowed range.
    #[error("{field} has length {len}, allowed {min}..={max}")]
    InvalidLength {
        /// The offending field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// Smallest allowed length.
        min: usize,
        /// Largest allowed length.
        max: usize,
    },
    /// A string field contains a control character.
    #[error("{field} contains a control character")]
    ControlCharacter {
        /// The offending field.
        field: &'static str,
    },
    /// The currency is not three uppercase ASCII letters (ISO 4217 alphabetic code).
    #[error("currency {0:?} is not an ISO 4217 code (three uppercase letters)")]
    InvalidCurrency(String),
    /// An enumerated field holds a value with no meaning.
    #[error("{field} has unknown value {value}")]
    InvalidEnum {
        /// The offending field.
        field: &'static str,
        /// The byte found.
        value: u8,
    },
    /// A score is NaN, infinite or outside its range.
    #[error("{field} must be a finite number in {min}..={max}")]
    InvalidScore {
        /// The offending field.
        field: &'static str,
        /// Smallest allowed value.
        min: f32,
        /// Largest allowed value.
        max: f32,
    },
    /// The evidence's session finished before it started.
    #[error("evidence finished_at_ms is before started_at_ms")]
    InvalidTimestamps,
    /// A base64url field could not be decoded, or decoded to the wrong size.
    #[error("{field} is not valid base64url (no padding){detail}")]
    InvalidBase64 {
        /// The offending field.
        field: &'static str,
        /// Extra detail (e.g. the expected length), possibly empty.
        detail: String,
    },
    /// The public key is not a 65-byte SEC1 uncompressed point on P-256.
    #[error("public key is not a 65-byte SEC1 uncompressed point on P-256")]
    InvalidPublicKey,
    /// The signature does not verify for this key and message.
    #[error("signature does not verify")]
    BadSignature,
}
