//! detect stage (being written).
