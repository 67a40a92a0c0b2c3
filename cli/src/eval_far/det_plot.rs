//! The DET curve as a PNG: false non-match rate against false match rate, both on log axes, with the product's
//! operating point and the FAR targets marked.

use std::path::Path;

use facepay_qa::eval::all_pairs::AllPairs;
use plotters::prelude::*;

use super::{FAR_TARGETS, Report};
use crate::eval_lfw::roc_plot::{register_font, save_png};

const WIDTH: u32 = 900;
const HEIGHT: u32 = 650;

/// Draws the DET curve of `scored` and writes it to `path`.
pub fn write_png(path: &Path, scored: &AllPairs, report: &Report) -> anyhow::Result<()> {
    register_font()?;
    let det = scored.det();
    let x_min = (0.5 / scored.impostor_pairs() as f64).min(1e-6);
    let y_min = det
        .iter()
        .map(|p| p.fnmr)
        .fold(1.0, f64::min)
        .min(1e-3)
        .max(0.5 / scored.genuine_pairs() as f64);
    let title = format!(
        "DET, all pairs: {} genuine, {} impostor pairs ({} images)",
        report.genuine_pairs, report.impostor_pairs, report.images
    );
    let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        let draw = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("drawing the DET plot: {e}");
        root.fill(&WHITE).map_err(draw)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 19))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d((x_min..1.0f64).log_scale(), (y_min..1.0f64).log_scale())
            .map_err(draw)?;
        chart
            .configure_mesh()
            .x_desc("false match rate (log)")
            .y_desc("false non-match rate (log)")
            .x_label_formatter(&|x| format!("{x:.0e}"))
            .y_label_formatter(&|y| format!("{y:.0e}"))
            .draw()
            .map_err(draw)?;
        chart
            .draw_series(LineSeries::new(
                det.iter().map(|p| (p.fmr, p.fnmr)),
                BLUE.stroke_width(2),
            ))
            .map_err(draw)?
            .label("MobileFaceNet, cosine")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        for (key, far) in FAR_TARGETS {
            let fnmr = (1.0 - report.tar_at_far[key]).max(y_min);
            chart
                .draw_series(std::iter::once(Circle::new((far, fnmr), 4, BLACK.filled())))
                .map_err(draw)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("FAR {key}: {} pairs", scored.allowed_false_accepts(far)),
                    (far, (fnmr * 1.6).min(1.0)),
                    ("sans-serif", 13),
                )))
                .map_err(draw)?;
        }
        let op = (
            report.far_at_threshold.max(x_min),
            (1.0 - report.tar_at_threshold).max(y_min),
        );
        chart
            .draw_series(std::iter::once(Circle::new(op, 6, RED.filled())))
            .map_err(draw)?
            .label(format!(
                "product threshold {:.3}: FMR {:.2e}, FNMR {:.2e}",
                report.threshold,
                report.far_at_threshold,
                1.0 - report.tar_at_threshold
            ))
            .legend(|(x, y)| Circle::new((x + 10, y), 5, RED.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(draw)?;
        root.present().map_err(draw)?;
    }
    save_png(path, &buf, WIDTH, HEIGHT)
}
