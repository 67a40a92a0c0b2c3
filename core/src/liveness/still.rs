//! Passive check of a single still image (the MiniFASNet samples, photos of attacks): no session, no challenges.

use super::LivenessError;
use crate::vision::frame::{Frame, Pixels, Rotation};
use crate::vision::image::RgbImage;
use crate::vision::pipeline::Vision;

/// Largest |roll| in degrees for a face to count as upright when searching the still's rotation.
const MAX_UPRIGHT_ROLL_DEG: f32 = 30.0;

/// Stills larger than this on their long side are downscaled first (MiniFASNet expects camera-sized frames).
pub const STILL_MAX_SIDE: u32 = 640;

/// The passive result of a still.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StillScore {
    /// The rotation that made the face upright (stills may be stored rotated, without EXIF).
    pub rotation: Rotation,
    /// Fused MiniFASNet score (1 = real), `None` when the models are not loaded.
    pub score: Option<f32>,
}

/// Finds the rotation (0, 90, 180, 270°) in which `image` shows an upright face and scores that face; `None` when
/// no rotation shows one.
/// Stills larger than [`STILL_MAX_SIDE`] are first downscaled (triangle filter).
pub fn still_passive_score(
    vision: &mut Vision,
    image: &RgbImage,
) -> Result<Option<StillScore>, LivenessError> {
    let small;
    let image = match downscale(image) {
        Some(s) => {
            small = s;
            &small
        }
        None => image,
    };
    for rotation in [Rotation::R0, Rotation::R90, Rotation::R180, Rotation::R270] {
        let frame = Frame {
            pixels: Pixels::Rgb8 {
                data: &image.data,
                stride: 3 * image.width as usize,
            },
            width: image.width,
            height: image.height,
            rotation,
            mirror: false,
        };
        let upright = frame.to_rgb()?;
        vision.reset();
        let analysis = vision.analyze(&upright)?;
        let Some(primary) = analysis
            .primary
            .filter(|p| p.pose.roll.abs() < MAX_UPRIGHT_ROLL_DEG)
        else {
            continue;
        };
        let score = vision.antispoof(&upright, &primary.face)?;
        return Ok(Some(StillScore { rotation, score }));
    }
    Ok(None)
}

/// `image` shrunk to [`STILL_MAX_SIDE`] on its long side, or `None` when it is small enough (or malformed).
fn downscale(image: &RgbImage) -> Option<RgbImage> {
    let long = image.width.max(image.height);
    if long <= STILL_MAX_SIDE {
        return None;
    }
    let buf = image::RgbImage::from_raw(image.width, image.height, image.data.clone())?;
    let (w, h) = (
        (u64::from(image.width) * u64::from(STILL_MAX_SIDE) / u64::from(long)).max(1) as u32,
        (u64::from(image.height) * u64::from(STILL_MAX_SIDE) / u64::from(long)).max(1) as u32,
    );
    let out = image::imageops::resize(&buf, w, h, image::imageops::FilterType::Triangle);
    Some(RgbImage {
        width: w,
        height: h,
        data: out.into_raw(),
    })
}
