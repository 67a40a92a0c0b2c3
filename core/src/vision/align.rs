//! align stage (being written).
