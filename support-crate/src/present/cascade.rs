//! Cascades as a reader sees them: test accuracy against the share of items
//! escalated to the second method (the frontier each threshold traces), the
//! operating point chosen on validation marked, and what it costs.

use plotters::prelude::*;

use super::break_even::dollars;
use super::costs::SheetCosts;
use crate::costs::per_1000;
use crate::plot::{class_color, draw_error, mesh, Svg, TICK_FONT, TITLE_FONT};
use crate::studies::cascade::CascadeRecord;

fn short(method: &str) -> &str {
    method.split(',').next().unwrap_or(method)
}

/// "TF-IDF + logistic regression → fine-tuned SLM".
pub fn name(r: &CascadeRecord) -> String {
    format!("{} → {}", short(&r.first.method), short(&r.then.method))
}

/// Cost per 1,000 items of the cascade at its chosen threshold, of the
/// first method and of the second: machine time at the cost sheet's speeds
/// (one machine) when it has both methods, else the cascade run's own; and
/// that machine.
fn costs(r: &CascadeRecord, sheet: &SheetCosts) -> ([f64; 3], String) {
    match (sheet.get(&r.first.experiment), sheet.get(&r.then.experiment)) {
        (Some(first), Some(then)) => {
            let (first, then) = (per_1000(first.items_per_second, 0.0), per_1000(then.items_per_second, 0.0));
            ([first + r.test.escalated * then, first, then], format!("the cost sheet's machine, {}", sheet.hardware))
        }
        _ => ([r.test.cost_per_1000_usd, r.first.cost_per_1000_usd, r.then.cost_per_1000_usd], r.hardware.summary()),
    }
}

/// One sentence on a cascade: the threshold, what it escalates, its test
/// accuracy against each method alone, and its cost.
pub fn summary(r: &CascadeRecord, sheet: &SheetCosts) -> String {
    let m = &r.test_metrics;
    let ([cascade, first, then], machine) = costs(r, sheet);
    format!(
        "{}: threshold {:.3} (chosen on {} validation items) escalates {:.1}% of test and scores {:.2}% [{:.2}, {:.2}] \
         (macro-F1 {:.4}) on {} test items, against {:.2}% for the first alone and {:.2}% for the second alone, \
         at {} per 1,000 items against {} and {} (machine time on {}).",
        name(r),
        r.threshold,
        r.validation_items,
        100.0 * r.test.escalated,
        100.0 * m.accuracy,
        100.0 * m.accuracy_ci95[0],
        100.0 * m.accuracy_ci95[1],
        m.macro_f1,
        crate::plot::thousands(r.test_items as u64),
        100.0 * r.first.accuracy,
        100.0 * r.then.accuracy,
        dollars(cascade),
        dollars(first),
        dollars(then),
        machine,
    )
}

/// The README's lines: one per cascade.
pub fn sentences(records: &[CascadeRecord], sheet: &SheetCosts) -> String {
    records.iter().map(|r| format!("* {}\n", summary(r, sheet))).collect()
}

/// Test accuracy against the share escalated, one line per cascade, the
/// validation-chosen point circled.
pub fn chart(records: &[CascadeRecord]) -> anyhow::Result<Svg> {
    let y_lo = records.iter().flat_map(|r| r.test_curve.iter().map(|o| o.accuracy)).fold(1.0, f64::min).min(1.0) - 0.02;
    let y_hi = records.iter().flat_map(|r| r.test_curve.iter().map(|o| o.accuracy)).fold(0.0, f64::max) + 0.02;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Cascades on test: accuracy against the share escalated", ("sans-serif", TITLE_FONT))
            .margin(12)
            .margin_right(36)
            .x_label_area_size(52)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..1.0, y_lo.max(0.0)..y_hi.min(1.0))
            .map_err(draw_error)?;
        mesh(&mut chart)
            .x_desc("share of items escalated to the second method")
            .y_desc("test accuracy")
            .x_label_formatter(&|x| format!("{:.0}%", 100.0 * x))
            .y_label_formatter(&|y| format!("{:.0}%", 100.0 * y))
            .draw()
            .map_err(draw_error)?;
        for (i, r) in records.iter().enumerate() {
            let c = class_color(i);
            let mut line: Vec<(f64, f64)> = r.test_curve.iter().map(|o| (o.escalated, o.accuracy)).collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(line, c.stroke_width(2)))
                .map_err(draw_error)?
                .label(format!(
                    "{} (chosen: {:.0}% escalated, {:.1}%)",
                    name(r),
                    100.0 * r.test.escalated,
                    100.0 * r.test.accuracy
                ))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c.stroke_width(2)));
            chart
                .draw_series([Circle::new((r.test.escalated, r.test.accuracy), 8, c.stroke_width(3))])
                .map_err(draw_error)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", TICK_FONT))
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    let alt: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{}: first alone {:.1}%, second alone {:.1}%, {:.1}% at the chosen {:.0}% escalated",
                name(r),
                100.0 * r.first.accuracy,
                100.0 * r.then.accuracy,
                100.0 * r.test.accuracy,
                100.0 * r.test.escalated
            )
        })
        .collect();
    Ok(Svg::new(
        svg,
        format!(
            "Test accuracy against the share of items escalated to the second method; circles: the threshold chosen on validation. {}.",
            alt.join("; ")
        ),
    ))
}
