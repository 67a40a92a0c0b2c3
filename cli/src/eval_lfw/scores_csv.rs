//! The raw scores as CSV: one row per pair, `set,fold,same,name_a,number_a,name_b,number_b,score`.

use std::io::Write;
use std::path::Path;

use facepay_qa::eval::metrics::Scored;
use facepay_qa::eval::pairs::PairList;

/// Writes every pair of every `(set name, pairs, scores)` (scores in pair order). Names contain no commas
/// (LFW folder names), so no quoting is needed.
pub fn write(path: &Path, sets: &[(&str, &PairList, &Vec<Scored>)]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "set,fold,same,name_a,number_a,name_b,number_b,score")?;
    for (set, list, scores) in sets {
        for (p, s) in list.pairs.iter().zip(scores.iter()) {
            writeln!(
                out,
                "{set},{},{},{},{},{},{},{}",
                p.fold,
                u8::from(p.same),
                p.a.name,
                p.a.number,
                p.b.name,
                p.b.number,
                s.score
            )?;
        }
    }
    out.flush()
}
