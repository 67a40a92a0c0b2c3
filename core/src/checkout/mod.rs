//! Checkout: the canonical payment payload, device signing and the client for the checkout server.
