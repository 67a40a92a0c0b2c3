//! The ROC curve as a PNG: plotters' bitmap backend drawn into memory, encoded by `image`.
//!
//! Text uses the Hack font compiled into the binary (through plotters' `ab_glyph` feature), so nothing depends on
//! the fonts installed on the machine.

use std::path::Path;

use anyhow::Context;
use facepay_qa::eval::metrics::RocPoint;
use plotters::prelude::*;
use plotters::style::FontStyle;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 600;

/// Registers the compiled-in font as "sans-serif" for plotters (every plot calls it first).
pub fn register_font() -> anyhow::Result<()> {
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        epaint_default_fonts::HACK_REGULAR,
    )
    .map_err(|_| anyhow::anyhow!("the compiled-in plot font is not a valid TrueType font"))
}

/// Writes a `width` × `height` RGB buffer (what plotters' bitmap backend drew into) to `path` as PNG.
pub fn save_png(path: &Path, rgb: &[u8], width: u32, height: u32) -> anyhow::Result<()> {
    image::save_buffer_with_format(
        path,
        rgb,
        width,
        height,
        image::ExtendedColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// Draws TAR against FAR (log scale) with the operating point marked, and writes it to `path` as PNG.
///
/// FAR below the axis minimum (including FAR = 0) is drawn at the left edge; the TAR axis is zoomed to the curve.
pub fn write_png(
    path: &Path,
    curve: &[RocPoint],
    operating: RocPoint,
    title: &str,
) -> anyhow::Result<()> {
    register_font()?;
    let negatives_floor = curve
        .iter()
        .map(|p| p.far)
        .filter(|&f| f > 0.0)
        .fold(1.0, f64::min);
    let x_min = (negatives_floor / 2.0).min(1e-3);
    // The curve from the best point at FAR = 0 (drawn at the left edge) on; the TAR axis starts a little below it.
    let start = curve.iter().rposition(|p| p.far == 0.0).unwrap_or(0);
    let visible = &curve[start..];
    let tar_floor = visible.iter().map(|p| p.tar).fold(operating.tar, f64::min);
    let y_min = ((tar_floor - 0.02) * 50.0).floor().max(0.0) / 50.0;
    let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        let draw = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("drawing the ROC plot: {e}");
        root.fill(&WHITE).map_err(draw)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d((x_min..1.0f64).log_scale(), y_min..1.0f64)
            .map_err(draw)?;
        chart
            .configure_mesh()
            .x_desc("false accept rate (log)")
            .y_desc("true accept rate")
            .x_label_formatter(&|x| format!("{x:.0e}"))
            .y_label_formatter(&|y| format!("{y:.3}"))
            .draw()
            .map_err(draw)?;
        let points = visible.iter().map(|p| (p.far.max(x_min), p.tar));
        chart
            .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))
            .map_err(draw)?;
        let op = (operating.far.max(x_min), operating.tar);
        chart
            .draw_series(std::iter::once(Circle::new(op, 6, RED.filled())))
            .map_err(draw)?
            .label(format!(
                "threshold {:.3}: TAR {:.4}, FAR {:.4}",
                operating.threshold, operating.tar, operating.far
            ))
            .legend(|(x, y)| Circle::new((x + 10, y), 5, RED.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(draw)?;
        root.present().map_err(draw)?;
    }
    save_png(path, &buf, WIDTH, HEIGHT)
}
