//! Face mesh: MediaPipe's 468 3-D landmarks on a rotated square region of interest, plus the head pose the
//! liveness session reads off them every frame (eye openness comes from [`super::eyes`], on crops placed by the
//! mesh's eye corners).
//!
//! The region comes either from a detection ([`Roi::from_face`]) or from the previous frame's mesh
//! ([`Roi::from_landmarks`], for tracking without the detector). Points are source-image pixels in edge
//! convention (pixel `i` spans `[i, i + 1)`); `z` is depth in the same pixel scale, smaller = nearer the camera.

use super::detect::{Face, keypoint};
use super::image::{Affine, Rect, RgbImage};
use super::model::ModelEntry;
use super::runner::{Runner, ensure_image};
use super::{FrameProblem, VisionError};

/// Side of the square model input.
const INPUT: usize = 192;
/// Number of mesh points.
pub const MESH_POINTS: usize = 468;
/// ROI side relative to the detector's box (MediaPipe's 1.5).
const ROI_SCALE: f32 = 1.5;
/// ROI side relative to the mesh's extent when tracking. Together with [`TRACK_ROI_SHIFT`] it reproduces, on
/// average, the region a detection of the same frame gives (measured on the development clips: the mesh-derived
/// region at 1.5× was 5 % larger and 4 % higher), so tracked and detected frames read the same mesh geometry.
const TRACK_ROI_SCALE: f32 = 1.43;
/// Downward shift of the tracked ROI centre, as a fraction of the mesh's extent (see [`TRACK_ROI_SCALE`]).
const TRACK_ROI_SHIFT: f32 = 0.058;

/// Mesh indices this module and [`super::align`] use (MediaPipe canonical face mesh topology).
pub mod mesh {
    /// Outer corner of the subject's right eye (image left on an unmirrored camera).
    pub const RIGHT_EYE_OUTER: usize = 33;
    /// Inner corner of the subject's right eye.
    pub const RIGHT_EYE_INNER: usize = 133;
    /// Inner corner of the subject's left eye.
    pub const LEFT_EYE_INNER: usize = 362;
    /// Outer corner of the subject's left eye.
    pub const LEFT_EYE_OUTER: usize = 263;
    /// Nose tip.
    pub const NOSE_TIP: usize = 1;
    /// Right mouth corner (the subject's right).
    pub const MOUTH_RIGHT: usize = 61;
    /// Left mouth corner (the subject's left).
    pub const MOUTH_LEFT: usize = 291;
    /// Top of the forehead, on the midline.
    pub const FOREHEAD: usize = 10;
    /// Chin, on the midline.
    pub const CHIN: usize = 152;
}

/// A rotated square region of the source image, in edge-convention pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Roi {
    /// Centre x.
    pub cx: f32,
    /// Centre y.
    pub cy: f32,
    /// Side length.
    pub size: f32,
    /// Rotation in radians of the region's x axis in the image (y down: positive = clockwise on screen).
    pub angle: f32,
}

impl Roi {
    /// The region MediaPipe derives from a detection: the box scaled by 1.5 (long side), turned so the eyes are level.
    pub fn from_face(face: &Face) -> Self {
        let (rx, ry) = face.keypoints[keypoint::RIGHT_EYE];
        let (lx, ly) = face.keypoints[keypoint::LEFT_EYE];
        let (cx, cy) = face.rect.center();
        Self {
            cx,
            cy,
            size: face.rect.w.max(face.rect.h) * ROI_SCALE,
            angle: (ly - ry).atan2(lx - rx),
        }
    }

    /// The region for the next frame from this frame's mesh: levelled on the eye corners, the mesh's extent in
    /// that rotated frame scaled and shifted to match a detection's region. Lets a tracker skip the detector.
    pub fn from_landmarks(landmarks: &Landmarks) -> Self {
        let p = &landmarks.points;
        let (r, l) = (p[mesh::RIGHT_EYE_OUTER], p[mesh::LEFT_EYE_OUTER]);
        let angle = (l[1] - r[1]).atan2(l[0] - r[0]);
        let (sin, cos) = angle.sin_cos();
        let (mut min, mut max) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
        for q in p.iter() {
            // Coordinates along the region's axes.
            let (u, v) = (q[0] * cos + q[1] * sin, -q[0] * sin + q[1] * cos);
            min = [min[0].min(u), min[1].min(v)];
            max = [max[0].max(u), max[1].max(v)];
        }
        let side = (max[0] - min[0]).max(max[1] - min[1]);
        let (u, v) = (
            (min[0] + max[0]) * 0.5,
            (min[1] + max[1]) * 0.5 + side * TRACK_ROI_SHIFT,
        );
        Self {
            cx: u * cos - v * sin,
            cy: u * sin + v * cos,
            size: side * TRACK_ROI_SCALE,
            angle,
        }
    }

    /// Continuous dst→src map from an `n`×`n` crop of this region to the source image.
    pub(crate) fn crop_map(&self, n: usize) -> Affine {
        let k = self.size / n as f32;
        let half = n as f32 * 0.5;
        let (sin, cos) = self.angle.sin_cos();
        let (a, b, d, e) = (k * cos, -k * sin, k * sin, k * cos);
        Affine {
            m: [
                a,
                b,
                self.cx - half * (a + b),
                d,
                e,
                self.cy - half * (d + e),
            ],
        }
    }
}

/// Head orientation in degrees, from the mesh's 3-D eye line and forehead–chin line.
///
/// Conventions (image x right, y down): `yaw > 0` when the nose points towards the image's right, which on an
/// unmirrored camera is the subject turning to THEIR left; `pitch > 0` when the nose points up; `roll > 0` when the
/// eye line turns clockwise on screen (the image-right eye lower). All zero for a frontal, upright face.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeadPose {
    /// Left/right turn.
    pub yaw: f32,
    /// Up/down nod.
    pub pitch: f32,
    /// In-plane tilt.
    pub roll: f32,
}

/// The 468-point mesh of one face.
#[derive(Clone, Debug, PartialEq)]
pub struct Landmarks {
    /// `[x, y, z]` per mesh point: image pixels, z in the same scale (smaller = nearer).
    pub points: [[f32; 3]; MESH_POINTS],
    /// Probability that a face is actually in the region (`0..=1`).
    pub presence: f32,
    /// The region the mesh was computed on.
    pub roi: Roi,
}

impl Landmarks {
    /// Image position of mesh point `i`.
    pub fn xy(&self, i: usize) -> (f32, f32) {
        (self.points[i][0], self.points[i][1])
    }

    /// Axis-aligned bounding box of the mesh in the image.
    pub fn bounds(&self) -> Rect {
        let (mut x0, mut y0, mut x1, mut y1) = (
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        );
        for p in &self.points {
            x0 = x0.min(p[0]);
            y0 = y0.min(p[1]);
            x1 = x1.max(p[0]);
            y1 = y1.max(p[1]);
        }
        Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }
    }

    /// Head pose: see [`HeadPose`] for the axes and signs.
    pub fn pose(&self) -> HeadPose {
        let p = &self.points;
        let x_axis = normalize(sub(p[mesh::LEFT_EYE_OUTER], p[mesh::RIGHT_EYE_OUTER]));
        let down = sub(p[mesh::CHIN], p[mesh::FOREHEAD]);
        let y_axis = normalize(sub(down, scale(x_axis, dot(down, x_axis))));
        // Right-handed with x right, y down: z points away from the camera; the face looks along −z.
        let z = cross(x_axis, y_axis);
        let forward = [-z[0], -z[1], -z[2]];
        let yaw = forward[0].atan2(-forward[2]);
        let pitch = (-forward[1]).atan2(forward[0].hypot(forward[2]));
        let roll = x_axis[1].atan2(x_axis[0]);
        HeadPose {
            yaw: yaw.to_degrees(),
            pitch: pitch.to_degrees(),
            roll: roll.to_degrees(),
        }
    }
}

/// The face-mesh model: one tract plan and its input buffer, built once.
#[derive(Debug)]
pub struct FaceMesh {
    runner: Runner,
}

impl FaceMesh {
    /// The manifest name of the loaded model.
    pub fn model_name(&self) -> &str {
        self.runner.name()
    }

    /// Builds the mesh model from its manifest entry and the model bytes (sha256-checked before parsing).
    pub fn new(entry: &ModelEntry, bytes: &[u8]) -> Result<Self, VisionError> {
        Ok(Self {
            runner: Runner::load(entry, bytes)?.expect_input(INPUT, INPUT)?,
        })
    }

    /// Computes the mesh inside `roi` of `image`.
    pub fn run(&mut self, image: &RgbImage, roi: &Roi) -> Result<Landmarks, VisionError> {
        ensure_image(image)?;
        if !(roi.size > 1.0
            && roi.size.is_finite()
            && roi.cx.is_finite()
            && roi.cy.is_finite()
            && roi.angle.is_finite())
        {
            return Err(VisionError::invalid_frame(
                FrameProblem::Size,
                format!("face region {roi:?} is degenerate"),
            ));
        }
        let to_src = roi.crop_map(INPUT);
        let outputs = self.runner.run(image, &to_src)?;
        let (mut mesh, mut presence) = (None, None);
        for value in &outputs {
            let slice = self.runner.output(value)?;
            match slice.len() {
                n if n == MESH_POINTS * 3 => mesh = Some(slice),
                1 => presence = Some(slice[0]),
                _ => {}
            }
        }
        let (Some(mesh), Some(logit)) = (mesh, presence) else {
            return Err(self
                .runner
                .error("expected a 468×3 mesh and a presence logit"));
        };
        let z_scale = roi.size / INPUT as f32;
        let mut points = [[0.0f32; 3]; MESH_POINTS];
        for (p, raw) in points.iter_mut().zip(mesh.chunks_exact(3)) {
            let (x, y) = to_src.apply(raw[0], raw[1]);
            *p = [x, y, raw[2] * z_scale];
        }
        Ok(Landmarks {
            points,
            presence: 1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp()),
            roi: *roi,
        })
    }
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn scale(a: [f32; 3], s: f32) -> [f32; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn normalize(a: [f32; 3]) -> [f32; 3] {
    let n = dot(a, a).sqrt();
    if n > f32::EPSILON {
        scale(a, 1.0 / n)
    } else {
        [0.0; 3]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic mesh: a flat frontal face rotated by `yaw` about the vertical axis and `roll` in the image.
    fn synthetic(yaw_deg: f32, roll_deg: f32) -> Landmarks {
        let mut points = [[0.0f32; 3]; MESH_POINTS];
        let mut set = |i: usize, x: f32, y: f32, z: f32| points[i] = [x, y, z];
        set(mesh::RIGHT_EYE_OUTER, -40.0, 0.0, 0.0);
        set(mesh::RIGHT_EYE_INNER, -10.0, 0.0, 0.0);
        set(mesh::LEFT_EYE_INNER, 10.0, 0.0, 0.0);
        set(mesh::LEFT_EYE_OUTER, 40.0, 0.0, 0.0);
        set(mesh::FOREHEAD, 0.0, -60.0, 0.0);
        set(mesh::CHIN, 0.0, 90.0, 0.0);
        set(mesh::NOSE_TIP, 0.0, 30.0, -30.0);
        let (sy, cy) = yaw_deg.to_radians().sin_cos();
        let (sr, cr) = roll_deg.to_radians().sin_cos();
        for p in points.iter_mut() {
            // Turn the nose (−z) towards +x for a positive yaw, then roll in the image plane, then translate.
            let (x, z) = (p[0] * cy - p[2] * sy, p[0] * sy + p[2] * cy);
            let (x, y) = (x * cr - p[1] * sr, x * sr + p[1] * cr);
            *p = [x + 300.0, y + 200.0, z];
        }
        Landmarks {
            points,
            presence: 1.0,
            roi: Roi {
                cx: 300.0,
                cy: 200.0,
                size: 300.0,
                angle: 0.0,
            },
        }
    }

    #[test]
    fn pose_recovers_yaw_and_roll_signs() {
        let frontal = synthetic(0.0, 0.0).pose();
        assert!(
            frontal.yaw.abs() < 1e-3 && frontal.pitch.abs() < 1e-3 && frontal.roll.abs() < 1e-3,
            "{frontal:?}"
        );
        let turned = synthetic(30.0, 0.0).pose();
        assert!((turned.yaw - 30.0).abs() < 0.5, "{turned:?}");
        let other = synthetic(-20.0, 0.0).pose();
        assert!((other.yaw + 20.0).abs() < 0.5, "{other:?}");
        let rolled = synthetic(0.0, 15.0).pose();
        assert!(
            (rolled.roll - 15.0).abs() < 0.5 && rolled.yaw.abs() < 0.5,
            "{rolled:?}"
        );
    }

    #[test]
    fn roi_from_landmarks_is_levelled_on_the_eyes_and_contains_the_mesh() {
        let lm = synthetic(0.0, 20.0);
        let roi = Roi::from_landmarks(&lm);
        assert!((roi.angle.to_degrees() - 20.0).abs() < 1e-3, "{roi:?}");
        // Extent along the face's vertical axis is 150 px (forehead to chin).
        assert!((roi.size - 150.0 * TRACK_ROI_SCALE).abs() < 1e-2, "{roi:?}");
        let map = roi.crop_map(INPUT).inverse().unwrap();
        for p in lm.points.iter() {
            let (u, v) = map.apply(p[0], p[1]);
            assert!((0.0..=INPUT as f32).contains(&u) && (0.0..=INPUT as f32).contains(&v));
        }
    }

    #[test]
    fn roi_from_face_uses_the_eye_line_and_long_side() {
        let face = Face {
            rect: Rect {
                x: 100.0,
                y: 50.0,
                w: 80.0,
                h: 100.0,
            },
            score: 0.9,
            keypoints: [
                (120.0, 80.0),
                (160.0, 120.0),
                (0.0, 0.0),
                (0.0, 0.0),
                (0.0, 0.0),
                (0.0, 0.0),
            ],
        };
        let roi = Roi::from_face(&face);
        assert_eq!((roi.cx, roi.cy, roi.size), (140.0, 100.0, 150.0));
        assert!((roi.angle.to_degrees() - 45.0).abs() < 1e-4);
        // The crop's centre lands on the region's centre, its x axis along the eye line.
        let m = roi.crop_map(INPUT);
        let (x, y) = m.apply(96.0, 96.0);
        assert!((x - 140.0).abs() < 1e-3 && (y - 100.0).abs() < 1e-3);
        let (x2, y2) = m.apply(97.0, 96.0);
        assert!(((y2 - y) - (x2 - x)).abs() < 1e-4 && x2 > x);
    }
}
