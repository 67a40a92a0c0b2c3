//! model stage (being written).
