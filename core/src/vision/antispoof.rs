//! antispoof stage (being written).
