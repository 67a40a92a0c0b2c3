//! Random identifiers and bearer tokens, and the SHA-256 the server stores instead of a token.

use facepay_core::checkout::protocol::sha256;
use facepay_core::checkout::wire::b64_encode;
use ring::rand::{SecureRandom, SystemRandom};

/// Prefix of merchant API keys.
pub const API_KEY_PREFIX: &str = "fpk_";
/// Prefix of per-order client tokens.
pub const CLIENT_TOKEN_PREFIX: &str = "fpc_";
/// Prefix of enrolment tokens.
pub const ENROLLMENT_TOKEN_PREFIX: &str = "fpe_";

/// `N` random bytes from the system generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // SystemRandom reads the OS generator; it fails only if the OS has none, where nothing can run safely.
    SystemRandom::new()
        .fill(&mut out)
        .expect("the operating system's random number generator failed");
    out
}

/// A new secret token: `prefix` + 32 random bytes in base64url.
pub fn new_token(prefix: &str) -> String {
    format!("{prefix}{}", b64_encode(&random_bytes::<32>()))
}

/// A new public identifier: `prefix` + 16 random bytes in base64url.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", b64_encode(&random_bytes::<16>()))
}

/// What the server stores for a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_distinct_and_hash_stably() {
        let a = new_token(CLIENT_TOKEN_PREFIX);
        let b = new_token(CLIENT_TOKEN_PREFIX);
        assert!(a.starts_with("fpc_"));
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), token_hash(&a.clone()));
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
