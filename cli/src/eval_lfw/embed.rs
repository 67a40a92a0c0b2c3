//! Embeds every image of the evaluation once, on several threads (each with its own copy of the stages).
//!
//! Per image: decode ▸ BlazeFace ▸ the detection nearest the image centre (LFW centres the named person; a
//! bystander may be larger) ▸ face mesh on that face ▸ each embedder of `[calibration]` on its own 5-point aligned crop, fused. An image in which the
//! detector finds no face yields `None` (a failed detection); a file that cannot be read or decoded is an error.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use facepay_core::vision::detect::{Detector, Face};
use facepay_core::vision::embed::{Embedding, FaceEmbedder};
use facepay_core::vision::frame::decode_file;
use facepay_core::vision::landmarks::{FaceMesh, Roi};
use facepay_core::vision::model::{ModelManifest, read_model_file};
use facepay_core::vision::pipeline::{DETECTOR_MODEL, MESH_MODEL};
use facepay_qa::eval::pairs::ImageRef;
use indicatif::{ProgressBar, ProgressStyle};

/// The three committed stages needed to embed a still image.
struct StillEmbedder {
    detector: Detector,
    mesh: FaceMesh,
    embedder: FaceEmbedder,
}

impl StillEmbedder {
    fn load(models_dir: &Path, flip: bool) -> anyhow::Result<Self> {
        let manifest = ModelManifest::load(models_dir)?;
        let bytes = |name: &str| -> anyhow::Result<_> {
            let entry = manifest.entry(name)?;
            Ok((entry, read_model_file(models_dir, entry)?))
        };
        let (entry, data) = bytes(DETECTOR_MODEL)?;
        let detector = Detector::new(entry, &data)?;
        let (entry, data) = bytes(MESH_MODEL)?;
        let mesh = FaceMesh::new(entry, &data)?;
        let mut embedder = FaceEmbedder::load(&manifest, &models_dir.to_path_buf())?;
        embedder.set_flip_average(flip);
        Ok(Self {
            detector,
            mesh,
            embedder,
        })
    }

    fn embed(&mut self, path: &Path) -> anyhow::Result<Option<Embedding>> {
        let image = decode_file(path)?;
        let faces = self.detector.run(&image)?;
        let (cx, cy) = (image.width as f32 * 0.5, image.height as f32 * 0.5);
        let off_centre = |f: &Face| {
            let (x, y) = f.rect.center();
            (x - cx).powi(2) + (y - cy).powi(2)
        };
        let Some(face) = faces
            .iter()
            .min_by(|a, b| off_centre(a).total_cmp(&off_centre(b)))
        else {
            return Ok(None);
        };
        let landmarks = self.mesh.run(&image, &Roi::from_face(face))?;
        Ok(Some(self.embedder.run(&image, &landmarks)?))
    }
}

/// Embeddings of `images` (same order), `None` where no face was detected. Shows a progress bar on stderr.
pub fn embed_all(
    images: &[ImageRef],
    images_dir: &Path,
    models_dir: &Path,
    flip: bool,
    threads: usize,
) -> anyhow::Result<Vec<Option<Embedding>>> {
    let progress = ProgressBar::new(images.len() as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:40}] {pos}/{len} images, {per_sec}, eta {eta}",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    progress.set_prefix("embedding");
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Option<Embedding>>>> = Mutex::new(vec![None; images.len()]);
    let work = || -> anyhow::Result<()> {
        let mut stages = StillEmbedder::load(models_dir, flip)?;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(image) = images.get(i) else {
                return Ok(());
            };
            let path = image.path(images_dir);
            let embedding = stages
                .embed(&path)
                .with_context(|| format!("embedding {}", path.display()))?;
            results
                .lock()
                .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?[i] = Some(embedding);
            progress.inc(1);
        }
    };
    // The first error stops the other workers at their next image.
    let worker = || {
        let outcome = work();
        if outcome.is_err() {
            next.store(images.len(), Ordering::Relaxed);
        }
        outcome
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1)).map(|_| scope.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<()>>>()
    })?;
    progress.finish_and_clear();
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
    results
        .into_iter()
        .map(|r| r.context("an image was left unprocessed"))
        .collect()
}
