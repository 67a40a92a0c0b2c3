//! Embeddings of an image set, reused across runs when `--cache FILE` is given.
//!
//! The cache is one JSON file: a key naming everything the embeddings depend on (the detector's, mesh's and
//! embedders' versions, the fused embedder's id — which hashes their files and weights —, flip-averaging, and this
//! executable's size and modification time, so a rebuilt pipeline never reuses stale embeddings), then one entry per image (path relative to the images folder, file size and
//! modification time, embedding or `null` for no face). Entries whose key or file differ are embedded again; the
//! file is rewritten atomically (temporary file, then rename) after each run.

use std::collections::HashMap;
use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::Context;
use facepay_core::flow::ModelInfo;
use facepay_core::vision::model::ModelManifest;
use facepay_core::vision::pipeline::{DETECTOR_MODEL, MESH_MODEL};
use facepay_qa::eval::pairs::ImageRef;
use serde::{Deserialize, Serialize};

use crate::eval_lfw::embed::embed_all;

#[derive(Serialize, Deserialize)]
struct CacheFile {
    key: String,
    entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Entry {
    path: String,
    size: u64,
    mtime_ns: u128,
    embedding: Option<Vec<f32>>,
}

/// What the embeddings depend on besides the image files: the models' versions and the fused embedder's id (as
/// the flow signs and stamps them on templates), flip-averaging and this executable.
fn cache_key(manifest: &ModelManifest, flip: bool) -> anyhow::Result<String> {
    let models = ModelInfo::from_manifest(manifest, &[DETECTOR_MODEL.into(), MESH_MODEL.into()])?;
    let key = format!("{};{};", models.versions.join(","), models.embedder);
    let exe = std::env::current_exe().context("locating this executable")?;
    let (size, mtime) = file_stamp(&exe)?;
    Ok(format!("{key}flip={flip};exe={size}:{mtime}"))
}

fn file_stamp(path: &Path) -> anyhow::Result<(u64, u128)> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok((meta.len(), mtime))
}

/// Embeddings of `images` (same order; `None` = no face), from the cache where it is current.
pub fn embed_cached(
    images: &[ImageRef],
    images_dir: &Path,
    models_dir: &Path,
    manifest: &ModelManifest,
    flip: bool,
    threads: usize,
    cache: Option<&Path>,
) -> anyhow::Result<Vec<Option<Vec<f32>>>> {
    let Some(cache) = cache else {
        return Ok(embed_all(images, images_dir, models_dir, flip, threads)?
            .into_iter()
            .map(|e| e.map(|e| e.values))
            .collect());
    };
    let key = cache_key(manifest, flip)?;
    let old: HashMap<String, Entry> = match std::fs::read(cache) {
        Ok(bytes) => match serde_json::from_slice::<CacheFile>(&bytes) {
            Ok(file) if file.key == key => file
                .entries
                .into_iter()
                .map(|e| (e.path.clone(), e))
                .collect(),
            Ok(_) => {
                eprintln!(
                    "cache {}: made by other models or another build, embedding again",
                    cache.display()
                );
                HashMap::new()
            }
            Err(e) => {
                eprintln!(
                    "cache {}: unreadable ({e}), embedding again",
                    cache.display()
                );
                HashMap::new()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
        Err(e) => return Err(e).with_context(|| format!("reading cache {}", cache.display())),
    };
    let mut entries: Vec<Option<Entry>> = Vec::with_capacity(images.len());
    let mut missing: Vec<(usize, ImageRef, Entry)> = Vec::new();
    for (index, image) in images.iter().enumerate() {
        let path = image.path(images_dir);
        let (size, mtime_ns) = file_stamp(&path)?;
        let relative = path
            .strip_prefix(images_dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        match old.get(&relative) {
            Some(e) if e.size == size && e.mtime_ns == mtime_ns => entries.push(Some(e.clone())),
            _ => {
                entries.push(None);
                let stub = Entry {
                    path: relative,
                    size,
                    mtime_ns,
                    embedding: None,
                };
                missing.push((index, image.clone(), stub));
            }
        }
    }
    eprintln!(
        "cache {}: {} of {} embeddings reused",
        cache.display(),
        images.len() - missing.len(),
        images.len()
    );
    if !missing.is_empty() {
        let refs: Vec<ImageRef> = missing.iter().map(|(_, r, _)| r.clone()).collect();
        let fresh = embed_all(&refs, images_dir, models_dir, flip, threads)?;
        for ((index, _, mut entry), embedding) in missing.into_iter().zip(fresh) {
            entry.embedding = embedding.map(|e| e.values);
            entries[index] = Some(entry);
        }
    }
    let entries: Vec<Entry> = entries
        .into_iter()
        .map(|e| e.context("an image was left unembedded"))
        .collect::<anyhow::Result<_>>()?;
    let file = CacheFile {
        key,
        entries: entries.clone(),
    };
    let tmp = cache.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&file)?)
        .with_context(|| format!("writing cache {}", tmp.display()))?;
    std::fs::rename(&tmp, cache).with_context(|| format!("replacing cache {}", cache.display()))?;
    Ok(entries.into_iter().map(|e| e.embedding).collect())
}
