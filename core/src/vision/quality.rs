//! quality stage (being written).
