//! Every pair of a labelled embedding set scored at once: genuine pairs (same identity) kept exactly, impostor
//! pairs (different identities) counted in a fine histogram plus the exact highest scores, so that tens of
//! millions of pairs are scored in bounded memory and never stored as rows.
//!
//! Scores are cosine similarities of unit embeddings (dot products), computed blockwise over the embedding matrix
//! on several threads. An image without an embedding (no face detected) scores [`NO_FACE_SCORE`] with everyone:
//! its genuine pairs are false rejects and its impostor pairs true rejects at any threshold.
//!
//! What the exact parts buy: the threshold for a target FAR needs the `floor(FAR × impostors) + 1` highest
//! impostor scores exactly ([`AllPairs::threshold_at_far`]); they are kept for every target down to
//! [`KEPT_IMPOSTOR_FAR`]. FAR at a threshold is exact when the threshold lies within the kept scores (it does for
//! any threshold of practical interest), and otherwise read off the histogram (bin width [`BIN_WIDTH`]).

use super::EvalError;

/// Score given to every pair of an image without an embedding: the lowest cosine similarity.
pub const NO_FACE_SCORE: f32 = -1.0;
/// Number of histogram bins over `[-1, 1]`.
pub const BINS: usize = 1 << 16;
/// Width of one histogram bin.
pub const BIN_WIDTH: f64 = 2.0 / BINS as f64;
/// The highest `ceil(KEPT_IMPOSTOR_FAR × impostors) + 1` impostor scores are kept exactly.
pub const KEPT_IMPOSTOR_FAR: f64 = 1e-3;
/// Rows of the embedding matrix scored per block (each block against every later row).
const BLOCK_ROWS: usize = 64;

/// One impostor pair among the highest-scoring ones: image indices into the input and the score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImpostorPair {
    /// Cosine similarity.
    pub score: f32,
    /// Index of the first image (the lower one).
    pub a: u32,
    /// Index of the second image.
    pub b: u32,
}

/// The scored set: counts, exact genuine scores, the impostor histogram and the top impostor pairs.
#[derive(Clone, Debug)]
pub struct AllPairs {
    /// Genuine scores, ascending.
    genuine: Vec<f32>,
    /// Impostor pair count per histogram bin (bin `k` covers `[-1 + k·w, -1 + (k+1)·w)`, the last one includes 1).
    histogram: Vec<u64>,
    /// Number of impostor pairs.
    impostors: u64,
    /// The highest impostor scores, descending (exact).
    top: Vec<ImpostorPair>,
}

/// A point of the DET curve: at `threshold`, the false-match and false-non-match rates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetPoint {
    /// Accept when `score >= threshold`.
    pub threshold: f64,
    /// Impostor pairs accepted / impostor pairs.
    pub fmr: f64,
    /// Genuine pairs rejected / genuine pairs.
    pub fnmr: f64,
}

fn bin_of(score: f32) -> usize {
    let k = ((f64::from(score) + 1.0) / BIN_WIDTH).floor();
    (k.max(0.0) as usize).min(BINS - 1)
}

/// Per-thread accumulator.
struct Partial {
    genuine: Vec<f32>,
    histogram: Vec<u64>,
    impostors: u64,
    /// Candidate top scores; trimmed to `keep` whenever it reaches twice that.
    top: Vec<ImpostorPair>,
    /// Scores at or below this cannot enter the top any more.
    floor: f32,
    keep: usize,
}

impl Partial {
    fn new(keep: usize) -> Self {
        Self {
            genuine: Vec::new(),
            histogram: vec![0; BINS],
            impostors: 0,
            top: Vec::with_capacity(2 * keep),
            floor: f32::NEG_INFINITY,
            keep,
        }
    }

    fn impostor(&mut self, score: f32, a: usize, b: usize) {
        self.histogram[bin_of(score)] += 1;
        self.impostors += 1;
        if score > self.floor {
            self.top.push(ImpostorPair {
                score,
                a: a as u32,
                b: b as u32,
            });
            if self.top.len() >= 2 * self.keep {
                self.trim();
            }
        }
    }

    /// Keeps the `keep` highest candidates and raises the floor to the lowest of them.
    fn trim(&mut self) {
        if self.top.len() > self.keep {
            self.top
                .select_nth_unstable_by(self.keep - 1, |x, y| y.score.total_cmp(&x.score));
            self.top.truncate(self.keep);
            self.floor = self
                .top
                .iter()
                .map(|p| p.score)
                .fold(f32::INFINITY, f32::min);
        }
    }

    fn merge(&mut self, other: Partial) {
        self.genuine.extend(other.genuine);
        self.histogram
            .iter_mut()
            .zip(other.histogram)
            .for_each(|(a, b)| *a += b);
        self.impostors += other.impostors;
        self.top.extend(other.top);
        self.trim();
    }
}

/// Dot product of two equal-length rows with eight independent accumulators (vectorises well).
fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Scores every pair of `embeddings` (row-major, `dim` values per row; `None` = no face) whose identities are
/// `labels` (same label = genuine pair), on `threads` threads. `progress(rows_done)` is called after each block.
pub fn score_all_pairs(
    embeddings: &[Option<Vec<f32>>],
    labels: &[u32],
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<AllPairs, EvalError> {
    let n = embeddings.len();
    if labels.len() != n {
        return Err(EvalError::Embeddings(format!(
            "{n} embeddings but {} labels",
            labels.len()
        )));
    }
    let dim = embeddings
        .iter()
        .flatten()
        .map(Vec::len)
        .next()
        .unwrap_or(0);
    if embeddings.iter().flatten().any(|e| e.len() != dim) {
        return Err(EvalError::Embeddings(
            "embeddings of different lengths".into(),
        ));
    }
    let total_pairs = (n as u64) * (n.saturating_sub(1) as u64) / 2;
    let mut genuine_count = 0u64;
    let mut per_label: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
    labels
        .iter()
        .for_each(|&l| *per_label.entry(l).or_default() += 1);
    for &c in per_label.values() {
        genuine_count += c * (c - 1) / 2;
    }
    let impostor_count = total_pairs - genuine_count;
    if genuine_count == 0 || impostor_count == 0 {
        return Err(EvalError::NeedBothClasses {
            metric: "all-pairs scoring",
        });
    }
    let keep = ((KEPT_IMPOSTOR_FAR * impostor_count as f64).ceil() as usize + 1).max(2);
    let blocks = n.div_ceil(BLOCK_ROWS);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut part = Partial::new(keep);
        loop {
            // Blocks are handed out from the top of the matrix, where rows have the most later rows to score.
            let block = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if block >= blocks {
                return part;
            }
            let rows = block * BLOCK_ROWS..((block + 1) * BLOCK_ROWS).min(n);
            let count = rows.len();
            for i in rows {
                for j in i + 1..n {
                    let score = match (&embeddings[i], &embeddings[j]) {
                        (Some(a), Some(b)) => dot8(a, b).clamp(-1.0, 1.0),
                        _ => NO_FACE_SCORE,
                    };
                    if labels[i] == labels[j] {
                        part.genuine.push(score);
                    } else {
                        part.impostor(score, i, j);
                    }
                }
            }
            let d = done.fetch_add(count, std::sync::atomic::Ordering::Relaxed) + count;
            progress(d);
        }
    };
    let mut parts: Vec<Partial> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1)).map(|_| s.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut all = parts.pop().unwrap_or_else(|| Partial::new(keep));
    for p in parts {
        all.merge(p);
    }
    all.trim();
    if let Some(index) = all.genuine.iter().position(|s| s.is_nan()) {
        return Err(EvalError::NanScore { index });
    }
    all.genuine.sort_by(f32::total_cmp);
    all.top.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    Ok(AllPairs {
        genuine: all.genuine,
        histogram: all.histogram,
        impostors: all.impostors,
        top: all.top,
    })
}

impl AllPairs {
    /// Number of genuine pairs.
    pub fn genuine_pairs(&self) -> u64 {
        self.genuine.len() as u64
    }

    /// Number of impostor pairs.
    pub fn impostor_pairs(&self) -> u64 {
        self.impostors
    }

    /// The highest-scoring impostor pairs, descending (at least the top `KEPT_IMPOSTOR_FAR` fraction).
    pub fn top_impostors(&self) -> &[ImpostorPair] {
        &self.top
    }

    /// Genuine pairs accepted at `threshold` (exact).
    pub fn genuine_accepted(&self, threshold: f64) -> u64 {
        let below = self.genuine.partition_point(|&s| f64::from(s) < threshold);
        (self.genuine.len() - below) as u64
    }

    /// Impostor pairs accepted at `threshold`: exact when the threshold lies above the lowest kept top score,
    /// otherwise counted from the histogram bins at or above the threshold's bin.
    pub fn impostors_accepted(&self, threshold: f64) -> u64 {
        match self.top.last() {
            Some(lowest) if threshold > f64::from(lowest.score) => {
                self.top
                    .partition_point(|p| f64::from(p.score) >= threshold) as u64
            }
            _ if threshold > 1.0 => 0,
            _ if threshold <= -1.0 => self.impostors,
            _ => {
                let k = bin_of(threshold as f32);
                self.histogram[k..].iter().sum()
            }
        }
    }

    /// True-accept rate at `threshold`.
    pub fn tar(&self, threshold: f64) -> f64 {
        self.genuine_accepted(threshold) as f64 / self.genuine.len() as f64
    }

    /// False-accept rate at `threshold`.
    pub fn far(&self, threshold: f64) -> f64 {
        self.impostors_accepted(threshold) as f64 / self.impostors as f64
    }

    /// Impostor pairs a FAR of `far` allows: `floor(far × impostor pairs)`.
    pub fn allowed_false_accepts(&self, far: f64) -> u64 {
        (far * self.impostors as f64 + 1e-9).floor() as u64
    }

    /// The lowest threshold whose FAR is at most `far`: the midpoint between the `a`-th and `(a+1)`-th highest
    /// impostor scores, `a` = [`allowed_false_accepts`](Self::allowed_false_accepts), so exactly `a` impostor
    /// pairs are accepted (fewer when scores tie). Exact for `far` ≥ [`KEPT_IMPOSTOR_FAR`]'s range and below.
    pub fn threshold_at_far(&self, far: f64) -> Result<f64, EvalError> {
        if !(far > 0.0 && far <= KEPT_IMPOSTOR_FAR) {
            return Err(EvalError::FarTarget(far));
        }
        let a = self.allowed_false_accepts(far) as usize;
        let below = f64::from(self.top[a].score);
        let threshold = match a {
            0 => below + (1.0 - below).min(1e-3) / 2.0,
            _ => (f64::from(self.top[a - 1].score) + below) / 2.0,
        };
        // Equal scores straddling the midpoint are all rejected: step just above the tied score.
        Ok(if threshold <= below {
            below + f64::from(f32::EPSILON)
        } else {
            threshold
        })
    }

    /// The DET curve: one point per histogram bin edge from the top down, where both rates are above zero
    /// (log axes cannot show zero), FMR from the histogram and FNMR exact.
    pub fn det(&self) -> Vec<DetPoint> {
        let mut points = Vec::new();
        let mut accepted = 0u64;
        for k in (0..BINS).rev() {
            accepted += self.histogram[k];
            if self.histogram[k] == 0 {
                continue;
            }
            let threshold = -1.0 + k as f64 * BIN_WIDTH;
            let fnmr = 1.0 - self.tar(threshold);
            let fmr = accepted as f64 / self.impostors as f64;
            if fnmr > 0.0 && fmr > 0.0 {
                points.push(DetPoint {
                    threshold,
                    fmr,
                    fnmr,
                });
            }
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(angle: f32) -> Option<Vec<f32>> {
        Some(vec![angle.cos(), angle.sin(), 0.0])
    }

    /// Brute force over every pair, for comparison.
    fn brute(e: &[Option<Vec<f32>>], labels: &[u32]) -> (Vec<f32>, Vec<f32>) {
        let (mut g, mut i) = (Vec::new(), Vec::new());
        for a in 0..e.len() {
            for b in a + 1..e.len() {
                let s = match (&e[a], &e[b]) {
                    (Some(x), Some(y)) => x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>(),
                    _ => NO_FACE_SCORE,
                };
                if labels[a] == labels[b] {
                    g.push(s)
                } else {
                    i.push(s)
                }
            }
        }
        (g, i)
    }

    fn sample(n: usize) -> (Vec<Option<Vec<f32>>>, Vec<u32>) {
        // Deterministic pseudo-random angles; identity = index / 4 (four images each), one failed image.
        let mut x = 12345u64;
        let mut e = Vec::new();
        let mut labels = Vec::new();
        for k in 0..n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let jitter = ((x >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.6;
            let id = (k / 4) as u32;
            e.push(if k == 7 {
                None
            } else {
                unit(id as f32 * 0.37 + jitter)
            });
            labels.push(id);
        }
        (e, labels)
    }

    #[test]
    fn counts_and_exact_figures_match_brute_force() {
        let (e, labels) = sample(203);
        let all = score_all_pairs(&e, &labels, 3, &|_| {}).unwrap();
        let (g, i) = brute(&e, &labels);
        assert_eq!(all.genuine_pairs(), g.len() as u64);
        assert_eq!(all.impostor_pairs(), i.len() as u64);
        assert_eq!(all.genuine_pairs() + all.impostor_pairs(), 203 * 202 / 2);
        // A failed image scores -1 with all its pairs: its 3 genuine pairs are rejected at any threshold.
        assert_eq!(g.iter().filter(|&&s| s == NO_FACE_SCORE).count(), 3);
        let mut sorted = i.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        for t in [0.999, 0.99, 0.95, 0.9, 0.5] {
            let exact_i = i.iter().filter(|&&s| f64::from(s) >= t).count() as u64;
            let exact_g = g.iter().filter(|&&s| f64::from(s) >= t).count() as u64;
            assert_eq!(all.genuine_accepted(t), exact_g, "genuine at {t}");
            let got = all.impostors_accepted(t);
            // Exact within the kept top; within the threshold's histogram bin otherwise.
            let slack = i
                .iter()
                .filter(|&&s| (f64::from(s) - t).abs() <= BIN_WIDTH)
                .count() as u64;
            assert!(
                got.abs_diff(exact_i) <= slack,
                "impostors at {t}: {got} vs {exact_i}"
            );
        }
        for far in [1e-3, 1e-4] {
            let t = all.threshold_at_far(far).unwrap();
            let allowed = all.allowed_false_accepts(far);
            let accepted = i.iter().filter(|&&s| f64::from(s) >= t).count() as u64;
            assert!(accepted <= allowed, "FAR {far}: {accepted} > {allowed}");
            // As low as the FAR allows: the highest rejected score is below t, and accepting it (with every score
            // tied to it) would exceed the allowance. Ties at the boundary are all rejected, so `accepted` may be
            // below `allowed`.
            let highest_rejected = sorted[accepted as usize];
            assert!(f64::from(highest_rejected) < t);
            let with_it = i.iter().filter(|&&s| s >= highest_rejected).count() as u64;
            assert!(
                with_it > allowed,
                "FAR {far}: {with_it} scores >= {highest_rejected}, {allowed} allowed"
            );
            assert_eq!(all.impostors_accepted(t), accepted);
        }
        assert!(
            all.top_impostors()
                .windows(2)
                .all(|w| w[0].score >= w[1].score)
        );
        assert_eq!(all.top_impostors()[0].score, sorted[0]);
    }

    #[test]
    fn det_curve_is_monotone_and_positive() {
        let (e, labels) = sample(120);
        let all = score_all_pairs(&e, &labels, 2, &|_| {}).unwrap();
        let det = all.det();
        assert!(!det.is_empty());
        for w in det.windows(2) {
            assert!(w[0].threshold > w[1].threshold);
            assert!(w[0].fmr <= w[1].fmr && w[0].fnmr >= w[1].fnmr);
        }
        assert!(
            det.iter()
                .all(|p| p.fmr > 0.0 && p.fnmr > 0.0 && p.fmr <= 1.0)
        );
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let (e, labels) = sample(20);
        assert!(matches!(
            score_all_pairs(&e, &labels[..19], 1, &|_| {}),
            Err(EvalError::Embeddings(_))
        ));
        // One identity only: no impostor pair.
        assert!(matches!(
            score_all_pairs(&e, &[0; 20], 1, &|_| {}),
            Err(EvalError::NeedBothClasses { .. })
        ));
        let all = score_all_pairs(&e, &labels, 1, &|_| {}).unwrap();
        assert!(matches!(
            all.threshold_at_far(0.5),
            Err(EvalError::FarTarget(_))
        ));
        assert!(matches!(
            all.threshold_at_far(0.0),
            Err(EvalError::FarTarget(_))
        ));
    }
}
