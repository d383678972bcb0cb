//! When does training pay for itself? Each method's total cost against the
//! number of items classified: a one-off cost (training time on this
//! machine) plus a cost per item (this machine's time per item, plus any API
//! price), beside hosted LLMs priced from `prices.json` (list prices with
//! their date and source: an assumption, stated on the chart) asked with the
//! prompt of this project's best LLM run.

use std::path::PathBuf;

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::Deserialize;

use super::costs::SheetCosts;
use crate::costs::MACHINE_USD_PER_HOUR;
use crate::plot::{
    class_color, dashed, draw_error, draw_legend_below, mesh, tick, Dashes, LegendEntry, Svg, Swatch, LABEL_FONT,
    TITLE_FONT,
};
use crate::results::RunRecord;

/// The price table shipped with the crate (`support-crate/prices.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct PriceTable {
    pub note: String,
    /// When the prices were read off the sources.
    pub date: String,
    /// What one human label costs: the training examples' price.
    pub label: LabelPrice,
    pub models: Vec<HostedPrice>,
}

/// The price of one human label, with the range a team could face.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelPrice {
    pub usd: f64,
    pub low: f64,
    pub high: f64,
    pub note: String,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HostedPrice {
    pub name: String,
    pub input_per_million: f64,
    pub output_per_million: f64,
    pub source: String,
}

pub fn price_table() -> Result<PriceTable> {
    serde_json::from_str(include_str!("../../prices.json")).context("support-crate/prices.json")
}

/// A straight line of cost: `one_off + items × per_item` US dollars.
#[derive(Debug, Clone, PartialEq)]
pub struct CostLine {
    pub name: String,
    pub one_off: f64,
    pub per_item: f64,
    /// A hosted model priced from the table (drawn dashed), not a run.
    pub hosted: bool,
}

impl CostLine {
    pub fn at(&self, items: f64) -> f64 {
        self.one_off + items * self.per_item
    }

    /// Items after which `self` (cheaper per item) has cost less in total than
    /// `other`; `None` when it never does.
    pub fn cheaper_than_after(&self, other: &CostLine) -> Option<f64> {
        let saved_per_item = other.per_item - self.per_item;
        if saved_per_item <= 0.0 {
            return None;
        }
        Some(((self.one_off - other.one_off) / saved_per_item).max(0.0))
    }
}

/// A run's cost line: training at the machine's price as the one-off,
/// inference time at that price plus any API price per item. The times are
/// the cost sheet's (one machine for every method) where it has them: its
/// speed for the method, its training time when it trained on the same rows;
/// else the run's own.
pub fn cost_line(r: &RunRecord, sheet: &SheetCosts) -> CostLine {
    let per_second = MACHINE_USD_PER_HOUR / 3600.0;
    let on_sheet = sheet.get(&r.experiment);
    let train_seconds = on_sheet.and_then(|e| e.full_training_seconds).or(r.train_seconds()).unwrap_or(0.0);
    let items_per_second = on_sheet.map_or(r.items_per_second(), |e| e.items_per_second);
    CostLine {
        name: format!("{} ({})", r.method.split(',').next().unwrap_or(&r.method), r.model),
        one_off: train_seconds * per_second,
        per_item: per_second / items_per_second + r.api_cost_per_1000() / 1000.0,
        hosted: false,
    }
}

/// Tokens per item (in, out) of the most accurate LLM run that counted them.
fn llm_tokens(records: &[(PathBuf, RunRecord)]) -> Option<(f64, f64, &RunRecord)> {
    records.iter().map(|(_, r)| r).find_map(|r| {
        let x = &r.extra;
        let (tokens_in, tokens_out) = (x.get("tokens_in")?.as_f64()?, x.get("tokens_out")?.as_f64()?);
        let n = r.metrics.items.max(1) as f64;
        (tokens_in > 0.0).then_some((tokens_in / n, tokens_out / n, r))
    })
}

/// The hosted models of the price table, asked with the best LLM run's prompt.
pub fn hosted_lines(records: &[(PathBuf, RunRecord)], prices: &PriceTable) -> Vec<CostLine> {
    let Some((tokens_in, tokens_out, _)) = llm_tokens(records) else { return Vec::new() };
    prices
        .models
        .iter()
        .map(|p| CostLine {
            name: format!("{} (list price, {})", p.name, prices.date),
            one_off: 0.0,
            per_item: (tokens_in * p.input_per_million + tokens_out * p.output_per_million) / 1e6,
            hosted: true,
        })
        .collect()
}

/// Sentences: for each local method that trains or learns from labels,
/// after how many items it is cheaper than each hosted model, first on
/// machine time alone, then with its labels (training and validation
/// examples) bought at the table's price per label.
pub fn sentences(records: &[(PathBuf, RunRecord)], prices: &PriceTable, sheet: &SheetCosts) -> String {
    let hosted = hosted_lines(records, prices);
    let Some((tokens_in, tokens_out, llm)) = llm_tokens(records) else { return String::new() };
    let label = &prices.label;
    let mut out = format!(
        "Cost at volume ([`assets/break_even.svg`](assets/break_even.svg)): machine time at ${MACHINE_USD_PER_HOUR:.2}/h \
         for training and inference ({}), hosted LLMs at their list prices of {} (`support-crate/prices.json`, an \
         assumption) asked with the prompt of the {} run ({tokens_in:.0} input and {tokens_out:.0} output tokens per \
         item); their accuracy on this task is not measured here (`slm-vs-llm llm` with `OPENAI_BASE_URL` measures \
         it). Then the same with the labels each method learned from (its training and validation examples) bought \
         at {} each (an assumption from {} to {}: {} [Source]({}).) Hosted models need none.\n\n",
        if sheet.hardware.is_empty() {
            "each run's own times".to_string()
        } else {
            format!(
                "the cost sheet's speeds, and its training times where it trained on the same rows, all from {}; \
                 otherwise a run's own times",
                sheet.hardware
            )
        },
        prices.date,
        llm.model,
        dollars(label.usd),
        dollars(label.low),
        dollars(label.high),
        label.note,
        label.source
    );
    let short = |h: &CostLine| h.name.split(' ').next().unwrap_or(&h.name).to_string();
    let after = |local: &CostLine, h: &CostLine| match local.cheaper_than_after(h) {
        Some(n) if n < 1.0 => format!("{} from the first item", short(h)),
        Some(n) => {
            let items = round_items(n);
            let noun = if items == "1" { "item" } else { "items" };
            format!("{} after {items} {noun}", short(h))
        }
        None => format!("never {}", short(h)),
    };
    for (_, r) in records {
        let local = cost_line(r, sheet);
        let labels = r.data.train + r.data.validation;
        if local.one_off == 0.0 && labels == 0 {
            continue;
        }
        let machine: Vec<String> = hosted.iter().map(|h| after(&local, h)).collect();
        let with_labels = |price: f64| CostLine { one_off: local.one_off + labels as f64 * price, ..local.clone() };
        let labelled: Vec<String> = hosted.iter().map(|h| after(&with_labels(label.usd), h)).collect();
        let range = hosted.first().map_or(String::new(), |h| {
            format!(
                "; at {} or {} a label, {} or {} items against {}",
                dollars(label.low),
                dollars(label.high),
                with_labels(label.low).cheaper_than_after(h).map_or("never".into(), round_items),
                with_labels(label.high).cheaper_than_after(h).map_or("never".into(), round_items),
                short(h)
            )
        });
        out.push_str(&format!(
            "* {}: {} to train, {} per 1,000 items; cheaper in total than {}. With its {} labels ({}): {}{range}.\n",
            local.name,
            dollars(local.one_off),
            dollars(1000.0 * local.per_item),
            machine.join(", "),
            crate::plot::thousands(labels as u64),
            dollars(labels as f64 * label.usd),
            labelled.join(", "),
        ));
    }
    out
}

/// US dollars to two significant digits (`$0.026`, `$0.000012`, `$0.05`),
/// whole dollars from $100 (`$1,000`).
pub fn dollars(x: f64) -> String {
    if x <= 0.0 {
        return "$0".into();
    }
    if x >= 100.0 {
        return format!("${}", crate::plot::thousands(x.round() as u64));
    }
    let decimals = (1 - x.log10().floor() as i32).max(2) as usize;
    let text = format!("{x:.decimals$}");
    // Two significant digits, but no zero past the cents: $0.05, not $0.050.
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let fraction = fraction.trim_end_matches('0');
    format!("${whole}.{fraction:0<2}")
}

/// `n` rounded up to two significant digits: "43", "5,000", "130,000",
/// "9.9 million".
pub fn round_items(n: f64) -> String {
    if n < 100.0 {
        return format!("{}", n.ceil() as u64);
    }
    let scale = 10f64.powi(n.log10().floor() as i32 - 1);
    let rounded = (n / scale).ceil() * scale;
    if rounded >= 1e6 {
        let millions = rounded / 1e6;
        return if millions >= 100.0 {
            format!("{} million", crate::plot::thousands(millions as u64))
        } else {
            format!("{} million", millions)
        };
    }
    crate::plot::thousands(rounded as u64)
}

/// A count on a log axis in few characters: 1, 100, 10k, 1M, 100M.
fn short_count(x: &f64) -> String {
    let x = x.round();
    match x {
        x if x >= 1e9 => format!("{}G", tick(&(x / 1e9))),
        x if x >= 1e6 => format!("{}M", tick(&(x / 1e6))),
        x if x >= 1e3 => format!("{}k", tick(&(x / 1e3))),
        x => tick(&x),
    }
}

/// The hosted models' line styles: grey shades, each with its own dash, so
/// none shares a colour with a method.
/// A method's cost line and its legend sample.
const METHOD_LINE_WIDTH: u32 = 3;

fn hosted_style(i: usize) -> (RGBColor, Dashes) {
    let dashes = |dash, gap| Dashes { dash, gap, width: 2 };
    let styles = [
        (RGBColor(0, 0, 0), dashes(10, 5)),
        (RGBColor(90, 90, 90), dashes(3, 4)),
        (RGBColor(60, 60, 60), dashes(16, 4)),
        (RGBColor(140, 140, 140), dashes(6, 6)),
    ];
    styles[i % styles.len()]
}

/// Total cost against items classified, in two panels with one y axis:
/// machine time alone, then with each method's labels (training and
/// validation examples) bought at the price table's label price. Each
/// method's line is solid in its colour; hosted models, which need no labels,
/// are grey dashed lines; a circle marks where each method becomes cheaper
/// in total than the cheapest hosted model. The legend is below the plots.
pub fn chart(records: &[(PathBuf, RunRecord)], prices: &PriceTable, sheet: &SheetCosts) -> Result<Svg> {
    let machine: Vec<CostLine> = records.iter().map(|(_, r)| cost_line(r, sheet)).collect();
    let labelled: Vec<CostLine> = records
        .iter()
        .zip(&machine)
        .map(|((_, r), l)| CostLine {
            one_off: l.one_off + (r.data.train + r.data.validation) as f64 * prices.label.usd,
            ..l.clone()
        })
        .collect();
    let hosted = hosted_lines(records, prices);
    let cheapest = hosted.iter().min_by(|a, b| a.per_item.total_cmp(&b.per_item));
    let (x_lo, x_hi) = (1.0f64, 1e8f64);
    let every = machine.iter().chain(&labelled).chain(&hosted);
    let y_lo = every.clone().map(|l| l.at(x_lo)).fold(f64::MAX, f64::min).max(1e-7);
    let y_hi = every.map(|l| l.at(x_hi)).fold(1e-6, f64::max) * 3.0;
    let panels = [
        "machine time only".to_string(),
        format!("with the labels each method learned from, at {} a label", dollars(prices.label.usd)),
    ];
    let panel_h = 400u32;
    let legend_rows = machine.len() + hosted.len() + usize::from(cheapest.is_some());
    let legend_h = crate::plot::legend_height(legend_rows);
    let mut crossings: Vec<String> = Vec::new();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (980, 50 + 2 * panel_h + legend_h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let root =
            root.titled("Total cost against items classified", ("sans-serif", TITLE_FONT)).map_err(draw_error)?;
        let (plots, legend_area) = root.split_vertically(2 * panel_h);
        let (top, bottom) = plots.split_vertically(panel_h);
        for ((area, title), lines) in [top, bottom].iter().zip(&panels).zip([&machine, &labelled]) {
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", LABEL_FONT))
                .margin(10)
                .margin_right(30)
                .x_label_area_size(48)
                .y_label_area_size(84)
                .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())
                .map_err(draw_error)?;
            mesh(&mut chart)
                .x_desc("items classified (log)")
                .y_desc("total USD (log)")
                .x_label_formatter(&short_count)
                .y_label_formatter(&tick)
                .draw()
                .map_err(draw_error)?;
            let curve = |line: &CostLine| -> Vec<(f64, f64)> {
                (0..=64)
                    .map(|k| {
                        let x = x_lo * (x_hi / x_lo).powf(k as f64 / 64.0);
                        (x, line.at(x).max(y_lo))
                    })
                    .collect()
            };
            for (i, line) in hosted.iter().enumerate() {
                let (color, dashes) = hosted_style(i);
                chart.draw_series(dashed(curve(line), dashes, color)).map_err(draw_error)?;
            }
            for (i, line) in lines.iter().enumerate() {
                chart
                    .draw_series(LineSeries::new(curve(line), class_color(i).stroke_width(METHOD_LINE_WIDTH)))
                    .map_err(draw_error)?;
            }
            let Some(cheapest) = cheapest else { continue };
            for (i, line) in lines.iter().enumerate() {
                let Some(n) = line.cheaper_than_after(cheapest).filter(|n| (x_lo..=x_hi).contains(n)) else { continue };
                chart
                    .draw_series([
                        Circle::new((n, line.at(n)), 7, class_color(i).filled()),
                        Circle::new((n, line.at(n)), 7, BLACK.stroke_width(1)),
                    ])
                    .map_err(draw_error)?;
                crossings.push(format!("{} ({title}) after {} items", line.name, round_items(n)));
            }
        }
        let mut legend: Vec<LegendEntry> = machine
            .iter()
            .enumerate()
            .map(|(i, line)| {
                LegendEntry::new(line.name.clone(), class_color(i))
                    .with_swatch(Swatch::Line { width: METHOD_LINE_WIDTH })
            })
            .collect();
        for (i, line) in hosted.iter().enumerate() {
            let (color, dashes) = hosted_style(i);
            legend.push(LegendEntry::new(line.name.clone(), color).with_swatch(Swatch::Dashed(dashes)));
        }
        if let Some(cheapest) = cheapest {
            let name = cheapest.name.split(' ').next().unwrap_or(&cheapest.name);
            let text = format!("where the method becomes cheaper in total than {name}, the cheapest hosted model");
            legend.push(LegendEntry::new(text, BLACK).with_swatch(Swatch::Ring));
        }
        draw_legend_below(&legend_area, &legend)?;
        root.present().map_err(draw_error)?;
    }
    let alt: Vec<String> = machine
        .iter()
        .chain(&hosted)
        .map(|l| format!("{}: ${} once, ${} per 1,000 items", l.name, tick(&l.one_off), tick(&(1000.0 * l.per_item))))
        .collect();
    Ok(Svg::new(
        svg,
        format!(
            "Total cost against items classified, log scales, in two panels: machine time at \
             ${MACHINE_USD_PER_HOUR:.2}/h only, and with labels at {} each; hosted list prices of {}, dashed grey. {}. \
             Cheaper than the cheapest hosted model: {}.",
            dollars(prices.label.usd),
            prices.date,
            alt.join("; "),
            if crossings.is_empty() { "never within 100 million items".to_string() } else { crossings.join("; ") }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_that_costs_to_train_pays_off_after_its_break_even_volume() {
        let local = CostLine { name: "slm".into(), one_off: 10.0, per_item: 0.001, hosted: false };
        let hosted = CostLine { name: "api".into(), one_off: 0.0, per_item: 0.003, hosted: true };
        let n = local.cheaper_than_after(&hosted).unwrap();
        assert!((n - 5000.0).abs() < 1e-9);
        assert!((local.at(n) - hosted.at(n)).abs() < 1e-9);
        assert_eq!(hosted.cheaper_than_after(&local), None, "dearer per item: never");
        assert_eq!(round_items(5000.0), "5,000");
        assert_eq!([1.0, 100.0, 1e4, 1e6, 1e8].map(|x| short_count(&x)), ["1", "100", "10k", "1M", "100M"]);
        assert_eq!(round_items(123_456.0), "130,000");
        assert_eq!(round_items(42.2), "43");
        assert_eq!(round_items(9_812_345.0), "9.9 million");
        assert_eq!((dollars(0.05), dollars(1000.0)), ("$0.05".into(), "$1,000".into()));
        assert_eq!(
            (dollars(0.02634), dollars(0.0000123), dollars(12.5)),
            ("$0.026".into(), "$0.000012".into(), "$12.50".into())
        );
    }

    #[test]
    fn the_price_table_has_dated_sourced_prices() {
        let table = price_table().unwrap();
        assert!(!table.date.is_empty() && !table.models.is_empty());
        assert!(table.models.iter().all(|m| m.source.starts_with("https://") && m.input_per_million > 0.0));
    }
}
