//! frame stage (being written).
