//! Contact sheets for QA: sampled frames with the outline, the landmarks and the prompt drawn on them, tiled into
//! one image (PNG bytes; the caller decides where they go — the core writes nothing).

use facepay_core::liveness::{Guidance, GuidanceState};
use facepay_core::vision::image::RgbImage;

use crate::QaError;

/// Height in pixels of the caption strip under each tile.
const CAPTION_H: u32 = 9;
/// Scale of the 3×5 caption font.
const FONT_SCALE: u32 = 1;

/// A grid of annotated thumbnails.
#[derive(Debug, Clone)]
pub struct ContactSheet {
    tile_w: u32,
    columns: u32,
    tiles: Vec<RgbImage>,
}

impl ContactSheet {
    /// An empty sheet of `columns` tiles per row, each `tile_w` pixels wide (at least 16 and 1).
    pub fn new(tile_w: u32, columns: u32) -> Self {
        Self {
            tile_w: tile_w.max(16),
            columns: columns.max(1),
            tiles: vec![],
        }
    }

    /// Number of tiles so far.
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    /// Whether the sheet has no tile.
    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }

    /// Adds `image` (as analysed) with the outline of `guidance`, the given landmarks (image pixels) and a caption
    /// `frame index + state`.
    pub fn add(&mut self, image: &RgbImage, guidance: &Guidance, landmarks: &[(f32, f32)]) {
        if image.width == 0
            || image.height == 0
            || image.data.len() < (image.width * image.height * 3) as usize
        {
            return;
        }
        let scale = self.tile_w as f32 / image.width as f32;
        let th = ((image.height as f32 * scale).round() as u32).max(1);
        let mut tile = RgbImage {
            width: self.tile_w,
            height: th + CAPTION_H,
            data: vec![0; (self.tile_w * (th + CAPTION_H) * 3) as usize],
        };
        for y in 0..th {
            let sy = ((y as f32 + 0.5) / scale) as u32;
            for x in 0..self.tile_w {
                let sx = ((x as f32 + 0.5) / scale) as u32;
                if let Some(p) = image.pixel(sx.min(image.width - 1), sy.min(image.height - 1)) {
                    put(&mut tile, x as i64, y as i64, p);
                }
            }
        }
        let colour = state_colour(&guidance.state);
        let o = guidance.oval;
        let (w, h) = (self.tile_w as f32, th as f32);
        for k in 0..720 {
            let a = k as f32 * std::f32::consts::TAU / 720.0;
            let x = (o.cx + o.rx * a.cos()) * w;
            let y = (o.cy + o.ry * a.sin()) * h;
            put(&mut tile, x as i64, y as i64, colour);
        }
        for &(x, y) in landmarks {
            if x.is_finite() && y.is_finite() {
                put(
                    &mut tile,
                    (x * scale) as i64,
                    (y * scale) as i64,
                    [0, 255, 255],
                );
            }
        }
        for y in th..th + CAPTION_H {
            for x in 0..self.tile_w {
                put(
                    &mut tile,
                    x as i64,
                    y as i64,
                    [(colour[0] / 4), (colour[1] / 4), (colour[2] / 4)],
                );
            }
        }
        let caption = format!("{} {}", guidance.frame_index, guidance.state.name());
        draw_text(&mut tile, 2, th as i64 + 2, &caption, [255, 255, 255]);
        self.tiles.push(tile);
    }

    /// The sheet as one image (tiles row by row; a black 1×1 image when empty).
    pub fn render(&self) -> RgbImage {
        if self.tiles.is_empty() {
            return RgbImage {
                width: 1,
                height: 1,
                data: vec![0; 3],
            };
        }
        let tile_h = self.tiles.iter().map(|t| t.height).max().unwrap_or(1);
        let cols = self.columns.min(self.tiles.len() as u32);
        let rows = (self.tiles.len() as u32).div_ceil(cols);
        let (w, h) = (cols * (self.tile_w + 2), rows * (tile_h + 2));
        let mut out = RgbImage {
            width: w,
            height: h,
            data: vec![40; (w * h * 3) as usize],
        };
        for (i, t) in self.tiles.iter().enumerate() {
            let (ox, oy) = (
                (i as u32 % cols) * (self.tile_w + 2) + 1,
                (i as u32 / cols) * (tile_h + 2) + 1,
            );
            for y in 0..t.height {
                let src = (y * t.width * 3) as usize;
                let dst = (((oy + y) * w + ox) * 3) as usize;
                out.data[dst..dst + (t.width * 3) as usize]
                    .copy_from_slice(&t.data[src..src + (t.width * 3) as usize]);
            }
        }
        out
    }

    /// The sheet encoded as PNG.
    pub fn to_png(&self) -> Result<Vec<u8>, QaError> {
        let img = self.render();
        let mut bytes = vec![];
        image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(
                &img.data,
                img.width,
                img.height,
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| QaError::Sheet(e.to_string()))?;
        Ok(bytes)
    }
}

use image::ImageEncoder;

fn state_colour(s: &GuidanceState) -> [u8; 3] {
    match s {
        GuidanceState::Passed | GuidanceState::HoldStill | GuidanceState::Verifying => [0, 220, 0],
        s if s.is_challenge() => [60, 140, 255],
        GuidanceState::Failed { .. } | GuidanceState::TimedOut => [255, 40, 40],
        _ => [255, 200, 0],
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x < 0 || y < 0 || x >= i64::from(img.width) || y >= i64::from(img.height) {
        return;
    }
    let i = ((y as usize) * img.width as usize + x as usize) * 3;
    if let Some(p) = img.data.get_mut(i..i + 3) {
        p.copy_from_slice(&c);
    }
}

/// 3×5 glyphs, one row of three bits per entry, top row first.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        'A' => [0b010, 0b101, 0b111, 0b101, 0b101],
        'B' => [0b110, 0b101, 0b110, 0b101, 0b110],
        'C' => [0b011, 0b100, 0b100, 0b100, 0b011],
        'D' => [0b110, 0b101, 0b101, 0b101, 0b110],
        'E' => [0b111, 0b100, 0b110, 0b100, 0b111],
        'F' => [0b111, 0b100, 0b110, 0b100, 0b100],
        'G' => [0b011, 0b100, 0b101, 0b101, 0b011],
        'H' => [0b101, 0b101, 0b111, 0b101, 0b101],
        'I' => [0b111, 0b010, 0b010, 0b010, 0b111],
        'J' => [0b001, 0b001, 0b001, 0b101, 0b010],
        'K' => [0b101, 0b101, 0b110, 0b101, 0b101],
        'L' => [0b100, 0b100, 0b100, 0b100, 0b111],
        'M' => [0b101, 0b111, 0b111, 0b101, 0b101],
        'N' => [0b110, 0b101, 0b101, 0b101, 0b101],
        'O' => [0b010, 0b101, 0b101, 0b101, 0b010],
        'P' => [0b110, 0b101, 0b110, 0b100, 0b100],
        'Q' => [0b010, 0b101, 0b101, 0b110, 0b011],
        'R' => [0b110, 0b101, 0b110, 0b101, 0b101],
        'S' => [0b011, 0b100, 0b010, 0b001, 0b110],
        'T' => [0b111, 0b010, 0b010, 0b010, 0b010],
        'U' => [0b101, 0b101, 0b101, 0b101, 0b111],
        'V' => [0b101, 0b101, 0b101, 0b101, 0b010],
        'W' => [0b101, 0b101, 0b111, 0b111, 0b101],
        'X' => [0b101, 0b101, 0b010, 0b101, 0b101],
        'Y' => [0b101, 0b101, 0b010, 0b010, 0b010],
        'Z' => [0b111, 0b001, 0b010, 0b100, 0b111],
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b110, 0b001, 0b010, 0b100, 0b111],
        '3' => [0b110, 0b001, 0b010, 0b001, 0b110],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b110, 0b001, 0b110],
        '6' => [0b011, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b110],
        '_' => [0, 0, 0, 0, 0b111],
        _ => [0; 5],
    }
}

fn draw_text(img: &mut RgbImage, x0: i64, y0: i64, text: &str, c: [u8; 3]) {
    let s = i64::from(FONT_SCALE);
    for (i, ch) in text.chars().enumerate() {
        let g = glyph(ch);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) != 0 {
                    for dy in 0..s {
                        for dx in 0..s {
                            put(
                                img,
                                x0 + (i as i64 * 4 + col) * s + dx,
                                y0 + row as i64 * s + dy,
                                c,
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facepay_core::liveness::Oval;

    #[test]
    fn sheet_draws_outline_and_caption() {
        let img = RgbImage {
            width: 64,
            height: 48,
            data: vec![0; 64 * 48 * 3],
        };
        let g = Guidance {
            frame_index: 12,
            state: GuidanceState::HoldStill,
            oval: Oval {
                cx: 0.5,
                cy: 0.5,
                rx: 0.25,
                ry: 0.25,
            },
            progress: 0.1,
            message_key: GuidanceState::HoldStill.message_key(),
            message: GuidanceState::HoldStill.default_text(),
        };
        let mut s = ContactSheet::new(64, 2);
        s.add(&img, &g, &[(32.0, 24.0)]);
        s.add(&img, &g, &[]);
        s.add(&img, &g, &[]);
        let out = s.render();
        assert_eq!((out.width, out.height), (2 * 66, 2 * (48 + CAPTION_H + 2)));
        // The outline's rightmost point (x = 48, y = 24 in the first tile, offset 1) is green; the landmark cyan.
        assert_eq!(out.pixel(1 + 48, 1 + 24), Some([0, 220, 0]));
        assert_eq!(out.pixel(1 + 32, 1 + 24), Some([0, 255, 255]));
        // The caption has white pixels.
        let caption_white = (0..64)
            .any(|x| (48..48 + CAPTION_H).any(|y| out.pixel(1 + x, 1 + y) == Some([255; 3])));
        assert!(caption_white);
        let png = s.to_png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
