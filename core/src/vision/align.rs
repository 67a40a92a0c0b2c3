//! Face alignment: five mesh points (eye centres, nose tip, mouth corners) mapped by a least-squares similarity
//! (Umeyama, no reflection) onto the ArcFace 112×112 template, the geometry the embedder was trained with.

use super::image::{Affine, RgbImage, warp_to_rgb};
use super::landmarks::{Landmarks, mesh};

/// Side of the aligned crop.
pub const ALIGNED_SIZE: u32 = 112;

/// The ArcFace 5-point template for 112×112 (OpenCV pixel-centre coordinates): the subject's right eye (image
/// left), left eye, nose tip, right and left mouth corners.
pub const TEMPLATE: [(f32, f32); 5] = [
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
];

/// Mesh points averaged into each eye centre: both corners and the middle of both lids.
const RIGHT_EYE: [usize; 4] = [mesh::RIGHT_EYE_OUTER, mesh::RIGHT_EYE_INNER, 159, 145];
const LEFT_EYE: [usize; 4] = [mesh::LEFT_EYE_OUTER, mesh::LEFT_EYE_INNER, 386, 374];

/// The five alignment points of a mesh, in template order (edge-convention image pixels).
pub fn five_points(landmarks: &Landmarks) -> [(f32, f32); 5] {
    let centre = |ids: &[usize; 4]| {
        let (sx, sy) = ids.iter().fold((0.0, 0.0), |(x, y), &i| {
            (x + landmarks.points[i][0], y + landmarks.points[i][1])
        });
        (sx / 4.0, sy / 4.0)
    };
    [
        centre(&RIGHT_EYE),
        centre(&LEFT_EYE),
        landmarks.xy(mesh::NOSE_TIP),
        landmarks.xy(mesh::MOUTH_RIGHT),
        landmarks.xy(mesh::MOUTH_LEFT),
    ]
}

/// Least-squares similarity (rotation, uniform scale, translation; Umeyama without reflection) taking `src`
/// points onto `dst` points. Returns the src→dst map, or `None` when the source points are all coincident.
pub fn similarity(src: &[(f32, f32)], dst: &[(f32, f32)]) -> Option<Affine> {
    let n = src.len().min(dst.len());
    if n == 0 {
        return None;
    }
    let mean = |p: &[(f32, f32)]| {
        let (x, y) = p[..n].iter().fold((0.0f64, 0.0f64), |(x, y), q| {
            (x + q.0 as f64, y + q.1 as f64)
        });
        (x / n as f64, y / n as f64)
    };
    let (ms, md) = (mean(src), mean(dst));
    let (mut a, mut b, mut var) = (0.0f64, 0.0f64, 0.0f64);
    for (s, d) in src[..n].iter().zip(&dst[..n]) {
        let (sx, sy) = (s.0 as f64 - ms.0, s.1 as f64 - ms.1);
        let (dx, dy) = (d.0 as f64 - md.0, d.1 as f64 - md.1);
        a += sx * dx + sy * dy;
        b += sx * dy - sy * dx;
        var += sx * sx + sy * sy;
    }
    if var.is_nan() || var <= 1e-9 {
        return None;
    }
    // dst = [[c, −s], [s, c]] · src + t
    let (c, s) = (a / var, b / var);
    let tx = md.0 - (c * ms.0 - s * ms.1);
    let ty = md.1 - (s * ms.0 + c * ms.1);
    let m = [c, -s, tx, s, c, ty].map(|v| v as f32);
    m.iter().all(|v| v.is_finite()).then_some(Affine { m })
}

/// Continuous dst→src map from the aligned 112×112 crop to the image, or `None` for a degenerate mesh.
pub fn alignment(landmarks: &Landmarks) -> Option<Affine> {
    // The template is in pixel-centre coordinates; the mesh in edge coordinates.
    let template = TEMPLATE.map(|(x, y)| (x + 0.5, y + 0.5));
    similarity(&five_points(landmarks), &template)?.inverse()
}

/// The aligned 112×112 RGB face crop, or `None` for a degenerate mesh.
pub fn aligned_crop(image: &RgbImage, landmarks: &Landmarks) -> Option<RgbImage> {
    let map = alignment(landmarks)?;
    Some(warp_to_rgb(
        image,
        &sampling_map(&map),
        ALIGNED_SIZE,
        ALIGNED_SIZE,
    ))
}

/// Converts a dst→src map between edge coordinates (pixel `i` spans `[i, i + 1)`, used by every stage's
/// geometry) into the pixel-centre map the warps sample through: `A'(p) = A(p + ½) − ½`.
pub fn sampling_map(edge_map: &Affine) -> Affine {
    let [a, b, c, d, e, f] = edge_map.m;
    Affine {
        m: [a, b, c + 0.5 * (a + b) - 0.5, d, e, f + 0.5 * (d + e) - 0.5],
    }
}

/// The same dst→src map seen through a horizontal mirror of the `width`-pixel destination (edge coordinates).
pub fn mirrored(edge_map: &Affine, width: f32) -> Affine {
    let [a, b, c, d, e, f] = edge_map.m;
    Affine {
        m: [-a, b, c + a * width, -d, e, f + d * width],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_recovers_a_known_transform() {
        let truth = Affine::similarity(0.0, 0.0, 1.0 / 2.5, 0.3, 10.0, -4.0)
            .inverse()
            .unwrap();
        let src = [
            (3.0, 4.0),
            (50.0, 2.0),
            (20.0, 30.0),
            (8.0, 60.0),
            (45.0, 61.0),
        ];
        let dst = src.map(|(x, y)| truth.apply(x, y));
        let est = similarity(&src, &dst).unwrap();
        for (p, q) in src.iter().zip(&dst) {
            let r = est.apply(p.0, p.1);
            assert!(
                (r.0 - q.0).abs() < 1e-3 && (r.1 - q.1).abs() < 1e-3,
                "{r:?} vs {q:?}"
            );
        }
        assert!(similarity(&[(1.0, 1.0); 5], &dst).is_none());
        assert!(similarity(&[], &[]).is_none());
    }

    #[test]
    fn similarity_is_least_squares_without_reflection() {
        // A mirrored point set cannot be matched by a similarity: the fit must not flip it.
        let src = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
        let dst = [(0.0, 0.0), (-10.0, 0.0), (0.0, 10.0)];
        let m = similarity(&src, &dst).unwrap().m;
        let det = m[0] * m[4] - m[1] * m[3];
        assert!(det >= 0.0, "{m:?}");
    }

    #[test]
    fn sampling_map_shifts_by_half_a_pixel() {
        // Downscale by 2 in edge coordinates: destination pixel 0 (centre 0.5) covers source centre 1.0 → index 0.5.
        let edge = Affine {
            m: [2.0, 0.0, 0.0, 0.0, 2.0, 0.0],
        };
        assert_eq!(sampling_map(&edge).apply(0.0, 0.0), (0.5, 0.5));
        assert_eq!(sampling_map(&Affine::identity()), Affine::identity());
    }

    #[test]
    fn mirrored_flips_the_destination() {
        let edge = Affine {
            m: [2.0, 0.0, 5.0, 0.0, 2.0, 1.0],
        };
        let flipped = mirrored(&edge, 112.0);
        assert_eq!(flipped.apply(0.0, 3.0), edge.apply(112.0, 3.0));
        assert_eq!(flipped.apply(112.0, 3.0), edge.apply(0.0, 3.0));
    }
}
