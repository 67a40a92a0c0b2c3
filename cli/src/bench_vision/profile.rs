//! `facepay bench vision --profile`: where each model's tract plan spends its time, per op kind, with tract's
//! description (kernel choice, shapes) of the slowest node of each kind.

use std::path::Path;

use facepay_core::vision::model::{ModelManifest, profile_ops, try_read_model_file};

/// Op kinds shown per model.
const TOP: usize = 8;

/// Prints the profile of every committed model, and of the anti-spoof models when present.
pub fn print(
    manifest: &ModelManifest,
    models_dir: &Path,
    antispoof_dir: &Path,
    runs: usize,
) -> anyhow::Result<()> {
    let committed = manifest.models.iter().map(|e| (e, models_dir));
    let external = manifest.external.iter().map(|e| (e, antispoof_dir));
    for (entry, dir) in committed.chain(external) {
        let Some(bytes) = try_read_model_file(dir, entry)? else {
            println!("profile {}: not in {}", entry.name, dir.display());
            continue;
        };
        let rows = profile_ops(entry, &bytes, runs)?;
        let total: f64 = rows.iter().map(|r| r.ms).sum();
        let nodes: usize = rows.iter().map(|r| r.nodes).sum();
        println!(
            "profile {} ({nodes} nodes, {total:.2} ms per run):",
            entry.name
        );
        for r in rows.iter().take(TOP) {
            println!(
                "  {:<20}{:>4} nodes {:>7.3} ms {:>5.1} %   slowest: {}",
                r.op,
                r.nodes,
                r.ms,
                100.0 * r.ms / total.max(f64::EPSILON),
                r.slowest
            );
        }
    }
    Ok(())
}
