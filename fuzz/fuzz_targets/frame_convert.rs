//! Frame conversion: every pixel format, size, stride, rotation and mirror, with planes exactly as long as they
//! must be, shorter or longer. Checks the conversion's contract, not only the absence of a panic:
//! - a rotation is refused exactly when it is not a multiple of 90°;
//! - a buffer shorter than its geometry needs, or a stride below a row, is an error;
//! - a well-formed frame converts, to an upright image of the rotated size;
//! - converting into a reused buffer gives the same image as converting into a new one.
#![no_main]

use facepay_core::vision::frame::{Frame, MIN_SIDE, Pixels, Rotation};
use facepay_core::vision::image::RgbImage;
use libfuzzer_sys::fuzz_target;

/// The geometry and options read from the input's first bytes.
struct Header {
    format: u8,
    width: u32,
    height: u32,
    /// Bytes added to (or, when negative, taken from) the smallest stride.
    stride_extra: i32,
    degrees: i32,
    mirror: bool,
    /// Bytes added to (or taken from) each plane's exact length.
    len_delta: i32,
    uv_pixel_stride: usize,
}

const HEADER: usize = 12;

fn header(b: &[u8; HEADER]) -> Header {
    let side = |lo: u8, hi: u8| {
        if hi & 0x80 != 0 {
            // Any size, including the invalid ones (0, below MIN_SIDE, above MAX_SIDE).
            u32::from(u16::from_le_bytes([lo, hi & 0x7f])) * 2
        } else {
            MIN_SIDE + u32::from(lo % 64)
        }
    };
    Header {
        format: b[0] % 10,
        width: side(b[1], b[2]),
        height: side(b[3], b[4]),
        stride_extra: i32::from(b[5] as i8) % 9,
        degrees: if b[6] & 1 == 0 {
            90 * (i32::from(b[7]) - 128)
        } else {
            i32::from_le_bytes([b[7], b[8], b[9], b[6]])
        },
        mirror: b[10] & 1 != 0,
        len_delta: i32::from((b[10] >> 1) % 8) - 4,
        uv_pixel_stride: usize::from(b[11] % 4),
    }
}

/// `len` bytes cycling through `seed` (zeros when it is empty).
fn plane(seed: &[u8], len: usize) -> Vec<u8> {
    if seed.is_empty() {
        return vec![0; len];
    }
    seed.iter().copied().cycle().take(len).collect()
}

/// The smallest stride of a plane of `cols` samples `pixel_stride` apart, `sample` bytes each.
fn min_stride(cols: u32, pixel_stride: usize, sample: usize) -> usize {
    (cols.max(1) as usize - 1) * pixel_stride + sample
}

/// Exact byte length of `rows` rows `stride` apart whose last row is `row` bytes.
fn exact_len(rows: u32, stride: usize, row: usize) -> usize {
    (rows.max(1) as usize - 1) * stride + row
}

fn with_delta(n: usize, delta: i32) -> usize {
    n.saturating_add_signed(delta as isize)
}

fn with_stride(min: usize, extra: i32) -> usize {
    with_delta(min, extra)
}

fuzz_target!(|data: &[u8]| {
    let Some((head, seed)) = data.split_first_chunk::<HEADER>() else {
        return;
    };
    let h = header(head);
    // Keep the work bounded: at most 256×256 well-formed pixels (larger sizes still exercise the size checks).
    let small = h.width <= 256 && h.height <= 256;
    let (w, ht) = (h.width, h.height);
    let (cw, ch) = (w.div_ceil(2), ht.div_ceil(2));
    // Whether the conversion must fail (short stride or buffer, bad rotation, size or chroma pixel stride).
    let dims_ok = (MIN_SIDE..=8192).contains(&w) && (MIN_SIDE..=8192).contains(&ht);
    let mut must_fail = h.stride_extra < 0 || (small && h.len_delta < 0) || !dims_ok;
    let packed = |bpp: usize| {
        let min = min_stride(w, bpp, bpp);
        let stride = with_stride(min, h.stride_extra);
        let len = if small { with_delta(exact_len(ht, stride, min), h.len_delta) } else { seed.len() };
        (plane(seed, len), stride)
    };
    let buffers: Vec<(Vec<u8>, usize)> = match h.format {
        0 | 1 | 2 | 3 => vec![packed([3, 4, 3, 1][h.format as usize])],
        4 => {
            let min = min_stride(cw, 4, 4);
            let stride = with_stride(min, h.stride_extra);
            let len = if small { with_delta(exact_len(ht, stride, min), h.len_delta) } else { seed.len() };
            vec![(plane(seed, len), stride)]
        }
        5 | 6 | 8 => {
            let y_min = min_stride(w, 1, 1);
            let c_min = min_stride(cw, 2, 2);
            if h.format == 8 {
                // One contiguous buffer: a single stride for both planes.
                let stride = with_stride(y_min.max(c_min), h.stride_extra);
                let len = if small {
                    with_delta(stride * ht as usize + exact_len(ch, stride, c_min), h.len_delta)
                } else {
                    seed.len()
                };
                vec![(plane(seed, len), stride)]
            } else {
                let ys = with_stride(y_min, h.stride_extra);
                let cs = with_stride(c_min, h.stride_extra);
                let (yl, cl) = if small {
                    (with_delta(exact_len(ht, ys, y_min), h.len_delta), with_delta(exact_len(ch, cs, c_min), h.len_delta))
                } else {
                    (seed.len(), seed.len() / 2)
                };
                vec![(plane(seed, yl), ys), (plane(seed, cl), cs)]
            }
        }
        7 => {
            let ps = h.uv_pixel_stride;
            must_fail |= !(1..=2).contains(&ps);
            let y_min = min_stride(w, 1, 1);
            let c_min = min_stride(cw, ps.max(1), 1);
            let ys = with_stride(y_min, h.stride_extra);
            let cs = with_stride(c_min, h.stride_extra);
            let (yl, cl) = if small {
                (with_delta(exact_len(ht, ys, y_min), h.len_delta), with_delta(exact_len(ch, cs, c_min), h.len_delta))
            } else {
                (seed.len(), seed.len() / 4)
            };
            vec![(plane(seed, yl), ys), (plane(seed, cl), cs), (plane(seed, cl), cs)]
        }
        _ => vec![(seed.to_vec(), 0)],
    };
    // The rotation is refused exactly when it is not a multiple of 90°; a frame can only carry a valid one.
    let Ok(rotation) = Rotation::from_degrees(h.degrees) else {
        assert!(h.degrees % 90 != 0, "rotation {}° refused", h.degrees);
        return;
    };
    assert!(h.degrees % 90 == 0, "rotation {}° accepted", h.degrees);
    let encoded = h.format == 9;
    // Encoded images depend on the decoder; a large raw frame's buffers are only as long as the input.
    let must_fail = must_fail && !encoded;
    let must_convert = !must_fail && small && !encoded;
    let b = |i: usize| buffers[i].0.as_slice();
    let s = |i: usize| buffers[i].1;
    let pixels = match h.format {
        0 => Pixels::Rgb8 { data: b(0), stride: s(0) },
        1 => Pixels::Bgra8 { data: b(0), stride: s(0) },
        2 => Pixels::Bgr8 { data: b(0), stride: s(0) },
        3 => Pixels::Gray8 { data: b(0), stride: s(0) },
        4 => Pixels::Yuyv { data: b(0), stride: s(0) },
        5 => Pixels::Nv21 { y: b(0), vu: b(1), y_stride: s(0), vu_stride: s(1) },
        6 => Pixels::Nv12 { y: b(0), uv: b(1), y_stride: s(0), uv_stride: s(1) },
        7 => Pixels::Yuv420 {
            y: b(0),
            u: b(1),
            v: b(2),
            y_stride: s(0),
            uv_stride: s(1),
            uv_pixel_stride: h.uv_pixel_stride,
        },
        8 => {
            let split = if head[11] & 0x80 != 0 {
                Pixels::nv12_contiguous(b(0), ht, s(0))
            } else {
                Pixels::nv21_contiguous(b(0), ht, s(0))
            };
            match split {
                Ok(p) => p,
                Err(e) => {
                    assert!(!must_convert, "a well-formed contiguous buffer was refused: {e}");
                    return;
                }
            }
        }
        _ => Pixels::Encoded(b(0)),
    };
    let (fw, fh) = if encoded && head[11] & 0x40 == 0 { (0, 0) } else { (w, ht) };
    let frame = Frame { pixels, width: fw, height: fh, rotation, mirror: h.mirror };
    let fresh = frame.to_rgb();
    // A reused buffer of another size, prefilled: the result must not depend on it.
    let mut reused = RgbImage::new(33, 35, vec![0x5a; 33 * 35 * 3]).expect("valid image");
    let again = frame.to_rgb_into(&mut reused);
    match (&fresh, &again) {
        (Ok(img), Ok(())) => {
            assert!(img == &reused, "converting into a reused buffer changed the result");
            assert_eq!(img.data.len(), img.width as usize * img.height as usize * 3);
            assert!(!must_fail, "an ill-formed frame converted");
            if !encoded {
                let quarter = matches!(rotation, Rotation::R90 | Rotation::R270);
                let expect = if quarter { (ht, w) } else { (w, ht) };
                assert_eq!((img.width, img.height), expect, "wrong upright size");
            }
        }
        (Err(e), Err(_)) => {
            assert!(!must_convert, "a well-formed frame was refused: {e}");
            assert_eq!(reused.width, 33, "a failed conversion changed the output buffer");
        }
        _ => panic!("to_rgb and to_rgb_into disagree: {:?} vs {again:?}", fresh.as_ref().err()),
    }
});
