//! signer (being written).
