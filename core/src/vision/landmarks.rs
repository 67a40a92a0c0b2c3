//! landmarks stage (being written).
