//! Checkout: the canonical payment payload, device signing and the client for the checkout server.

#[cfg(feature = "client")]
pub mod client;
pub mod protocol;
pub mod signer;
