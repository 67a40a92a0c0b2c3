//! Checkout: the canonical payment payload, device signing and the client for the checkout server.

#[cfg(feature = "client")]
pub mod client;
pub mod error;
pub mod merchant;
pub mod protocol;
pub mod signer;
pub mod webhook;
pub mod wire;
