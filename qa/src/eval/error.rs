//! The error type of the evaluation module.

use std::path::PathBuf;

/// What can go wrong reading a pairs file or computing a metric.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvalError {
    /// The pairs file could not be read.
    #[error("cannot read pairs file {path}: {reason}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The first line is neither `N` nor `FOLDS N`.
    #[error("pairs file line 1: expected `N` or `FOLDS N` (positive integers), found {found:?}")]
    Header {
        /// The header line as found.
        found: String,
    },
    /// A pair line is neither `name i j` nor `name1 i name2 j`.
    #[error(
        "pairs file line {line}: expected `name<TAB>i<TAB>j` or `name1<TAB>i<TAB>name2<TAB>j`, found {found:?}"
    )]
    PairLine {
        /// 1-based line number.
        line: usize,
        /// The line as found.
        found: String,
    },
    /// A pair of the wrong kind sits where the header's block structure wants the other kind.
    #[error(
        "pairs file line {line}: expected a {expected} pair here (blocks of matched then mismatched pairs)"
    )]
    PairKind {
        /// 1-based line number.
        line: usize,
        /// `"matched"` or `"mismatched"`.
        expected: &'static str,
    },
    /// The number of pair lines differs from what the header announces.
    #[error("pairs file: header announces {expected} pairs, found {found}")]
    PairCount {
        /// Pairs announced by the header.
        expected: usize,
        /// Pair lines found.
        found: usize,
    },
    /// A metric needs both matched and mismatched pairs (or at least one pair) and did not get them.
    #[error("{metric} needs at least one matched and one mismatched pair")]
    NeedBothClasses {
        /// The metric that was asked for.
        metric: &'static str,
    },
    /// A score is NaN: it cannot be ordered.
    #[error("score of pair {index} is NaN")]
    NanScore {
        /// Index of the pair in the input slice.
        index: usize,
    },
    /// The k-fold protocol was asked for with fewer than two folds, or a fold without both classes.
    #[error("k-fold protocol: {0}")]
    Folds(String),
    /// Embeddings and their identity labels do not fit together (counts, lengths).
    #[error("embeddings: {0}")]
    Embeddings(String),
    /// A FAR target outside (0, 1].
    #[error(
        "FAR target {0} is outside the supported range (0, 1], or (0, 1e-3] for all-pairs thresholds"
    )]
    FarTarget(f64),
}
