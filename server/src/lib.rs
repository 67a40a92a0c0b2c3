//! The FacePay checkout server.
