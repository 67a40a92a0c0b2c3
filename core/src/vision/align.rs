//! Face alignment: five mesh points mapped by a least-squares similarity (Umeyama, no reflection) onto the
//! template an embedder was trained with: ArcFace's 112×112 (eye centres, nose tip, mouth corners) for
//! MobileFaceNet, dlib's 150×150 face chip (eye corners, the point under the nose) for dlib's ResNet.

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

/// dlib's 5-point face-chip template (`get_face_chip_details`), as fractions of the face square before padding:
/// the subject's left eye outer and inner corners, right eye outer and inner corners, and the point under the nose
/// (pixel-centre coordinates).
pub const DLIB_TEMPLATE: [(f32, f32); 5] = [
    (0.859_567_5, 0.213_498_15),
    (0.646_060_5, 0.228_967_44),
    (0.120_575_06, 0.213_727_45),
    (0.334_085_06, 0.229_064_24),
    (0.490_112_3, 0.627_797_5),
];

/// The padding dlib's ResNet was trained with: the face square grows by this fraction on each side.
pub const DLIB_PADDING: f32 = 0.25;

/// Mesh point just under the nose, at the top of the philtrum (subnasale).
const UNDER_NOSE: usize = 2;

/// The crop geometry an embedder was trained with (`alignment` of its manifest entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alignment {
    /// The ArcFace 112×112 template ([`TEMPLATE`]), no margin.
    Arcface,
    /// dlib's face chip ([`DLIB_TEMPLATE`], padding [`DLIB_PADDING`]) at the model's input size.
    DlibChip,
}

impl Alignment {
    /// Continuous dst→src map from a `size`×`size` crop to the image, or `None` for a degenerate mesh.
    pub fn map(self, landmarks: &Landmarks, size: u32) -> Option<Affine> {
        match self {
            Self::Arcface => {
                let k = size as f32 / ALIGNED_SIZE as f32;
                let template = TEMPLATE.map(|(x, y)| ((x + 0.5) * k, (y + 0.5) * k));
                similarity(&five_points(landmarks), &template)?.inverse()
            }
            Self::DlibChip => {
                let points = DLIB_POINTS.map(|i| landmarks.xy(i));
                similarity(&points, &dlib_chip_template(size))?.inverse()
            }
        }
    }
}

/// The mesh points that stand for dlib's five, in [`DLIB_TEMPLATE`] order.
const DLIB_POINTS: [usize; 5] = [
    mesh::LEFT_EYE_OUTER,
    mesh::LEFT_EYE_INNER,
    mesh::RIGHT_EYE_OUTER,
    mesh::RIGHT_EYE_INNER,
    UNDER_NOSE,
];

/// dlib's five template points in a padded `size`×`size` chip, edge-convention pixels.
fn dlib_chip_template(size: u32) -> [(f32, f32); 5] {
    let (pad, side) = (DLIB_PADDING, size as f32);
    DLIB_TEMPLATE.map(|(x, y)| {
        (
            (pad + x) / (2.0 * pad + 1.0) * side + 0.5,
            (pad + y) / (2.0 * pad + 1.0) * side + 0.5,
        )
    })
}

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
    Alignment::Arcface.map(landmarks, ALIGNED_SIZE)
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

    /// A mesh whose dlib points sit exactly on dlib's template, scaled by 2 and shifted: the chip map undoes that.
    #[test]
    fn dlib_chip_maps_the_template_points_onto_the_mesh() {
        use super::super::landmarks::{MESH_POINTS, Roi};
        let chip = dlib_chip_template(150);
        let mut points = [[0.0f32; 3]; MESH_POINTS];
        for (i, (x, y)) in DLIB_POINTS.iter().zip(chip) {
            points[*i] = [2.0 * x + 30.0, 2.0 * y - 7.0, 0.0];
        }
        let landmarks = Landmarks {
            points,
            presence: 1.0,
            roi: Roi {
                cx: 0.0,
                cy: 0.0,
                size: 1.0,
                angle: 0.0,
            },
        };
        let map = Alignment::DlibChip.map(&landmarks, 150).unwrap();
        for (i, (x, y)) in DLIB_POINTS.iter().zip(chip) {
            let (u, v) = map.apply(x, y);
            assert!(
                (u - points[*i][0]).abs() < 1e-3 && (v - points[*i][1]).abs() < 1e-3,
                "{u},{v}"
            );
        }
        // The ArcFace map at 112 is what `alignment` gives; a degenerate mesh has none.
        assert_eq!(
            Alignment::Arcface.map(&landmarks, ALIGNED_SIZE),
            alignment(&landmarks)
        );
        let flat = Landmarks {
            points: [[1.0; 3]; MESH_POINTS],
            ..landmarks
        };
        assert!(Alignment::DlibChip.map(&flat, 150).is_none());
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
