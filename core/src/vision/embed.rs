//! embed stage (being written).
