//! The learning curve as a reader sees it: accuracy against labels per class
//! (log axis) with its interval over seeds and items, a chance line and the zero-shot
//! LLM as a flat line; a table; and the sentences the README carries.

use plotters::prelude::*;

use crate::methods::{CurvePlan, Methods};
use crate::paired::{PairedDifference, Verdict};
use crate::plot::{
    class_color, dashed, draw_error, draw_legend_below, legend_height, mesh, tick, Dashes, LegendEntry, Svg, Swatch,
    TICK_FONT, TITLE_FONT,
};
use crate::studies::curve::{paired, summarise, Curve, CurvePoint, Interval, Summary, TeacherPoint};

/// Whether `arm` is drawn as a flat line: a method that uses no labels.
fn uses_no_labels(methods: &Methods, arm: &str) -> bool {
    methods.get(arm).is_ok_and(|k| k.curve == CurvePlan::NoLabels)
}

/// The points of `arm` at `budget` labels per class (its full-data point aside): one cell of the curve.
fn cell_points<'a>(curve: &'a Curve, arm: &str, budget: usize) -> Vec<&'a CurvePoint> {
    curve.points.iter().filter(|p| p.arm == arm && !p.all && p.labels_per_class == budget).collect()
}

/// Whether `arm` is a distillation: its points name a teacher.
fn is_distilled(curve: &Curve, arm: &str) -> bool {
    curve.points.iter().any(|p| p.arm == arm && p.teacher.is_some())
}

fn budget(s: &Summary) -> String {
    if s.all {
        format!("all ({})", crate::plot::thousands(s.labels_per_class as u64))
    } else {
        crate::plot::thousands(s.labels_per_class as u64)
    }
}

/// A Markdown table: one row per arm and budget.
pub fn table(curve: &Curve, methods: &Methods) -> String {
    let mut out = String::from(
        "| method | labels per class | seeds | test items | accuracy (mean) | interval |\n| --- | ---: | ---: | ---: | ---: | --- |\n",
    );
    for s in summarise(curve, methods) {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.1}% | [{:.1}, {:.1}] ({}) |\n",
            methods.title(&s.arm),
            budget(&s),
            s.seeds,
            crate::plot::thousands(s.test_items as u64),
            100.0 * s.mean,
            100.0 * s.low,
            100.0 * s.high,
            s.interval.name()
        ));
    }
    out
}

/// Accuracy against labels per class, log axis; bars: seeds' range (one seed: its 95% interval).
pub fn chart(curve: &Curve, methods: &Methods) -> anyhow::Result<Svg> {
    let summaries = summarise(curve, methods);
    let chance = 1.0 / curve.num_classes.max(1) as f64;
    let budgets: Vec<f64> =
        summaries.iter().filter(|s| s.labels_per_class > 0).map(|s| s.labels_per_class as f64).collect();
    let x_lo = budgets.iter().copied().fold(f64::MAX, f64::min).min(1e9) / 1.5;
    let x_hi = budgets.iter().copied().fold(1.0, f64::max) * 1.5;
    let y_lo = (summaries.iter().map(|s| s.low).fold(chance, f64::min) - 0.05).max(0.0);
    let sampled = curve
        .points
        .iter()
        .filter(|p| !p.all && methods.get(&p.arm).is_ok_and(|k| k.curve.sampled()))
        .map(|p| p.test_items)
        .max();
    let caption_note = match sampled {
        Some(n) => format!(
            "costly methods' budgets on a seeded {}-item test sample, the rest on all {} test items",
            crate::plot::thousands(n as u64),
            crate::plot::thousands(curve.test_items as u64)
        ),
        None => format!("all {} test items", crate::plot::thousands(curve.test_items as u64)),
    };
    let mut arms: Vec<&str> = summaries.iter().map(|s| s.arm.as_str()).collect();
    arms.dedup();
    let bars_note = interval_note(&summaries, methods);
    let color = |arm: &str| class_color(methods.color(arm));
    let grey = RGBColor(120, 120, 120);
    let mut legend = vec![
        LegendEntry::new(format!("chance ({:.0}%)", 100.0 * chance), grey).with_swatch(Swatch::Dashed(CHANCE_LINE))
    ];
    for &arm in &arms {
        let flat = summaries.iter().find(|s| s.arm == arm && uses_no_labels(methods, arm));
        let (name, swatch) = match flat {
            Some(s) => (format!("{} {:.1}%", methods.title(arm), 100.0 * s.mean), Swatch::Dashed(NO_LABELS_LINE)),
            None if is_distilled(curve, arm) => (methods.title(arm).to_string(), Swatch::Dashed(STUDENT_LINE)),
            None => (methods.title(arm).to_string(), Swatch::Line { width: MEASURED_WIDTH }),
        };
        legend.push(LegendEntry::new(name, color(arm)).with_swatch(swatch));
    }
    let plot_height = 540;
    let legend_px = legend_height(legend.len());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (980, plot_height + legend_px + 86)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (top, rest) = root.split_vertically(plot_height);
        let (legend_area, note) = rest.split_vertically(legend_px);
        let mut chart = ChartBuilder::on(&top)
            .caption("How many labels do you need? Test accuracy against labels per class", ("sans-serif", TITLE_FONT))
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(70)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), y_lo..1.0)
            .map_err(draw_error)?;
        mesh(&mut chart)
            .x_desc("labelled examples per class (log)")
            .y_desc("test accuracy")
            .x_label_formatter(&tick)
            .y_label_formatter(&|y| format!("{:.0}%", 100.0 * y))
            .draw()
            .map_err(draw_error)?;
        chart.draw_series(dashed([(x_lo, chance), (x_hi, chance)], CHANCE_LINE, grey)).map_err(draw_error)?;
        for arm in arms {
            let c = color(arm);
            let at: Vec<&Summary> = summaries.iter().filter(|s| s.arm == arm).collect();
            if uses_no_labels(methods, arm) {
                let s = at[0];
                chart.draw_series(dashed([(x_lo, s.mean), (x_hi, s.mean)], NO_LABELS_LINE, c)).map_err(draw_error)?;
                continue;
            }
            let line: Vec<(f64, f64)> = at.iter().map(|s| (s.labels_per_class as f64, s.mean)).collect();
            for pair in line.windows(2) {
                let segment = pair.iter().copied();
                if unmeasured_gap(pair[0].0, pair[1].0) {
                    chart.draw_series(dashed(segment, UNMEASURED_LINE, c)).map_err(draw_error)?;
                } else if is_distilled(curve, arm) {
                    chart.draw_series(dashed(segment, STUDENT_LINE, c)).map_err(draw_error)?;
                } else {
                    chart.draw_series(LineSeries::new(segment, c.stroke_width(MEASURED_WIDTH))).map_err(draw_error)?;
                }
            }
            chart.draw_series(line.iter().map(|&p| Circle::new(p, 5, c.filled()))).map_err(draw_error)?;
            chart
                .draw_series(at.iter().map(|s| {
                    let x = s.labels_per_class as f64;
                    PathElement::new([(x, s.low), (x, s.high)], c.stroke_width(2))
                }))
                .map_err(draw_error)?;
        }
        draw_legend_below(&legend_area, &legend)?;
        for (i, line) in [
            format!("Bars: {bars_note}. Dashed: a student taught by a teacher's labels."),
            "Dotted: more than 4× the labels between two points, none measured between: the line is not a measurement."
                .to_string(),
            format!("{caption_note}."),
        ]
        .iter()
        .enumerate()
        {
            note.draw(&Text::new(line.clone(), (12, 4 + 26 * i as i32), ("sans-serif", TICK_FONT)))
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    let alt: Vec<String> = summaries
        .iter()
        .map(|s| format!("{} at {} per class: {:.1}%", methods.title(&s.arm), budget(s), 100.0 * s.mean))
        .collect();
    Ok(Svg::new(
        svg,
        format!("Test accuracy against labelled examples per class (log axis). {caption_note}. {}.", alt.join("; ")),
    ))
}

/// What the chart's bars are: the 95% interval over seeds and test items,
/// and the arms whose seeds kept no answers, shown by their range instead.
fn interval_note(summaries: &[Summary], methods: &Methods) -> String {
    let mut by_range: Vec<&str> =
        summaries.iter().filter(|s| s.interval == Interval::SeedRange).map(|s| methods.title(&s.arm)).collect();
    by_range.dedup();
    let mut note = "95% bootstrap interval of the mean over seeds and test items".to_string();
    if !by_range.is_empty() {
        note.push_str(&format!(
            "; lowest to highest seed where the seeds' answers were not kept ({})",
            by_range.join(", ")
        ));
    }
    note
}

/// The curve's line styles, shared by the lines and their legend swatches.
const MEASURED_WIDTH: u32 = 3;
const STUDENT_LINE: Dashes = Dashes { dash: 8, gap: 5, width: 2 };
const UNMEASURED_LINE: Dashes = Dashes { dash: 2, gap: 6, width: 2 };
const NO_LABELS_LINE: Dashes = Dashes { dash: 10, gap: 6, width: 3 };
const CHANCE_LINE: Dashes = Dashes { dash: 4, gap: 4, width: 2 };

/// Whether the curve's line between two budgets of one arm bridges more than
/// the grid's step (4×) with nothing measured between: drawn dotted, since a
/// straight line there would read as a measurement.
fn unmeasured_gap(from: f64, to: f64) -> bool {
    to > 4.0 * from * (1.0 + 1e-9)
}

/// The smallest budget from which `a`'s mean accuracy stays above `b`'s at
/// every budget both were measured at; `None` when it never does or they
/// share no budget.
pub fn passes_from(summaries: &[Summary], a: &str, b: &str) -> Option<(usize, usize)> {
    let mut common: Vec<(usize, f64, f64)> = summaries
        .iter()
        .filter(|s| s.arm == a && !s.all)
        .filter_map(|sa| {
            let sb = summaries.iter().find(|s| s.arm == b && !s.all && s.labels_per_class == sa.labels_per_class)?;
            Some((sa.labels_per_class, sa.mean, sb.mean))
        })
        .collect();
    common.sort_by_key(|c| c.0);
    let last_behind = common.iter().rposition(|c| c.1 <= c.2);
    let from = match last_behind {
        None => common.first()?,
        Some(i) => common.get(i + 1)?,
    };
    Some((from.0, common.len()))
}

/// Each distillation against its teacher and against its student trained
/// on the gold labels alone, at every budget it was measured at: what the
/// teacher's labels bought (paired with the student alone on the same items
/// and seeds, where both kept their answers), and what serving the student
/// instead of the teacher costs in accuracy and gains in speed. `None`
/// without distillations.
pub fn distillation_table(curve: &Curve, methods: &Methods) -> Option<String> {
    let summaries = summarise(curve, methods);
    let mean_of = |arm: &str, budget: usize| {
        summaries.iter().find(|s| s.arm == arm && !s.all && s.labels_per_class == budget).map(|s| (s.mean, s.seeds))
    };
    // A method without labels (zero-shot) is measured at budget 0 only.
    let teacher_mean = |arm: &str, budget: usize| mean_of(arm, budget).or_else(|| mean_of(arm, 0));
    let pct = |x: Option<(f64, usize)>| x.map_or("–".into(), |(m, n)| format!("{:.1}% ({n})", 100.0 * m));
    let rate = |x: Option<f64>| x.map_or("–".into(), |r| format!("{r:.0}"));
    let mut rows = String::new();
    for s in summaries.iter().filter(|s| is_distilled(curve, &s.arm)) {
        let points = cell_points(curve, &s.arm, s.labels_per_class);
        let teachers: Vec<_> = points.iter().filter_map(|p| p.teacher.as_ref()).collect();
        let Some(first) = teachers.first() else { continue };
        let n = teachers.len() as f64;
        let pool = teachers.iter().map(|t| t.pool_accuracy).sum::<f64>() / n;
        let kept = teachers.iter().map(|t| t.kept_accuracy).sum::<f64>() / n;
        let kept_share = teachers.iter().map(|t| t.kept_items as f64 / t.pool_items.max(1) as f64).sum::<f64>() / n;
        let gain = match paired(curve, &points, &cell_points(curve, &first.student_arm, s.labels_per_class)) {
            Some(d) => format!(
                "{:+.1} [{:+.1}, {:+.1}]{}, {}",
                100.0 * d.difference,
                100.0 * d.ci95[0],
                100.0 * d.ci95[1],
                if d.verdict() == Verdict::Tie { ", a tie" } else { "" },
                super::seeds(d.seeds)
            ),
            None => "unpaired".into(),
        };
        rows.push_str(&format!(
            "| {} | {} | {} | {} | {} | {gain} | {:.1}% | {:.1}% of {:.0}% kept | {} | {} |\n",
            methods.title(&s.arm),
            s.labels_per_class,
            pct(Some((s.mean, s.seeds))),
            pct(teacher_mean(&first.arm, s.labels_per_class)),
            pct(mean_of(&first.student_arm, s.labels_per_class)),
            100.0 * pool,
            100.0 * kept,
            100.0 * kept_share,
            rate(mean_rate(points.iter().map(|p| p.items_per_second))),
            rate(labelling_rate(&teachers)),
        ));
    }
    (!rows.is_empty()).then(|| {
        format!(
            "| student taught by teacher | gold labels per class | student (seeds) | teacher alone (seeds) | student \
             alone (seeds) | student minus student alone, paired (points, 95% CI) | teacher's labels right, pool | \
             kept | student items/s | teacher items/s, labelling the pool |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n{rows}"
        )
    })
}

/// The mean of the positive rates, if any.
fn mean_rate(rates: impl Iterator<Item = f64>) -> Option<f64> {
    let rates: Vec<f64> = rates.filter(|r| *r > 0.0).collect();
    (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
}

/// How fast the teachers labelled their pools, in the student's own runs
/// (items/s): the teacher's speed on the student's machine.
fn labelling_rate(teachers: &[&TeacherPoint]) -> Option<f64> {
    mean_rate(teachers.iter().filter(|t| t.labelling_seconds > 0.0).map(|t| t.pool_items as f64 / t.labelling_seconds))
}

/// The machines that measured `arm`'s points: those of the runs that merged
/// it into the curve, else the curve's own.
fn machines_of(curve: &Curve, arm: &str) -> String {
    let mut machines: Vec<String> =
        curve.updates.iter().filter(|u| u.arms.iter().any(|a| a == arm)).map(|u| u.hardware.summary()).collect();
    machines.sort();
    machines.dedup();
    if machines.is_empty() {
        machines.push(curve.hardware.summary());
    }
    machines.join(" and ")
}

/// One sentence per distillation, at the largest gold budget it was measured
/// at: how close the student comes to its teacher, how much faster it
/// answers, and from how many items served "label the pool once, then serve
/// the student" costs less machine time than asking the teacher every time
/// (the labelling and the student's training against the time saved per
/// item). Times are those of the points' runs.
pub fn distillation_sentences(curve: &Curve, methods: &Methods) -> String {
    let summaries = summarise(curve, methods);
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let points_of = |arm: &str, budget: usize| cell_points(curve, arm, budget);
    let mut out = Vec::new();
    let mut arms: Vec<&str> = summaries.iter().map(|s| s.arm.as_str()).filter(|a| is_distilled(curve, a)).collect();
    arms.dedup();
    for arm in arms {
        let Some(s) = summaries.iter().filter(|s| s.arm == arm && !s.all).max_by_key(|s| s.labels_per_class) else {
            continue;
        };
        let students = points_of(arm, s.labels_per_class);
        let teachers: Vec<_> = students.iter().filter_map(|p| p.teacher.as_ref()).collect();
        let Some(first) = teachers.first() else { continue };
        // A teacher without labels (zero-shot) is measured at budget 0 only.
        let teacher_points = match points_of(&first.arm, s.labels_per_class) {
            p if p.is_empty() => points_of(&first.arm, 0),
            p => p,
        };
        // The teacher on the seeds that taught the student, where it has them.
        let on_student_seeds: Vec<&CurvePoint> =
            teacher_points.iter().copied().filter(|t| students.iter().any(|p| p.seed == t.seed)).collect();
        let teacher_points = if on_student_seeds.is_empty() { teacher_points } else { on_student_seeds };
        if teacher_points.is_empty() {
            continue;
        }
        let teacher_accuracy = mean(&teacher_points.iter().map(|p| p.accuracy).collect::<Vec<_>>());
        // Both speeds from the student's own runs, so from one machine.
        let teacher_speed = labelling_rate(&teachers).unwrap_or(0.0);
        let teacher_training = mean(&teacher_points.iter().map(|p| p.train_seconds).collect::<Vec<_>>());
        let student_speed = mean_rate(students.iter().map(|p| p.items_per_second)).unwrap_or(0.0);
        let labelling = mean(&teachers.iter().map(|t| t.labelling_seconds).collect::<Vec<_>>());
        // Teaching as a whole, less the teacher's own training (which asking it every time pays too).
        let teaching = mean(&students.iter().map(|p| p.train_seconds).collect::<Vec<_>>()) - teacher_training;
        let teaching = teaching.max(labelling);
        // Paired on the same items and seeds where both kept their answers
        // for every seed of the student (a zero-shot teacher has one seed).
        let against_teacher = match paired(curve, &students, &teacher_points) {
            Some(d) if d.seeds == students.len() => d.evidence(),
            _ => format!(
                "{:+.1} points; {}; unpaired",
                100.0 * (s.mean - teacher_accuracy),
                if s.seeds == 1 { "one seed".to_string() } else { format!("means over {} seeds", s.seeds) }
            ),
        };
        let mut sentence = format!(
            "With {} gold labels per class, {} scores {:.1}% against its teacher's {:.1}% ({against_teacher})",
            s.labels_per_class,
            methods.title(arm),
            100.0 * s.mean,
            100.0 * teacher_accuracy,
        );
        let alone = points_of(&first.student_arm, s.labels_per_class);
        if !alone.is_empty() {
            let alone_accuracy = mean(&alone.iter().map(|p| p.accuracy).collect::<Vec<_>>());
            sentence.push_str(&format!(
                " and {} {:.1}% on the gold labels alone",
                methods.title(&first.student_arm),
                100.0 * alone_accuracy
            ));
        }
        if teacher_speed > 0.0 && student_speed > teacher_speed {
            let saved_per_item = 1.0 / teacher_speed - 1.0 / student_speed;
            sentence.push_str(&format!(
                "; on {} it answers {} items/s against {}: labelling the {} pool texts and training took {}, \
                 which serving the student instead of the teacher repays after {} items",
                machines_of(curve, arm),
                crate::plot::rate(student_speed),
                crate::plot::rate(teacher_speed),
                crate::plot::thousands(first.pool_items as u64),
                crate::plot::duration(teaching),
                crate::plot::thousands((teaching / saved_per_item).ceil() as u64)
            ));
        }
        out.push(sentence + ".");
    }
    out.join(" ")
}

/// The decision the curve supports, one line a budget: the method (any arm,
/// distillations too) with the highest mean accuracy at that number of
/// labels per class, and the runner-up. Where both kept their answers, the
/// two are compared on the same test items and seeds ([`paired`]): a lead
/// whose interval covers 0 is a tie. Otherwise their intervals
/// ([`Summary::interval`]) decide, and the line says it is not paired. The
/// methods that use no labels get a line of their own.
pub fn decision_sentences(curve: &Curve, methods: &Methods) -> String {
    let s = summarise(curve, methods);
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let seeds = |x: &Summary| super::seeds(x.seeds);
    let cell = |x: &Summary| cell_points(curve, &x.arm, x.labels_per_class);
    let mut out = String::from(
        "**Which method, by labels per class** (the highest mean accuracy at each budget measured, and the \
         runner-up, compared on the same test items and seeds where both kept their answers: the paired \
         difference, its 95% bootstrap interval over items and seeds, a tie when it covers 0. Where they did \
         not, a tie where their intervals overlap, marked unpaired):\n",
    );
    for zero in s.iter().filter(|x| uses_no_labels(methods, &x.arm)) {
        out.push_str(&format!(
            "* With no labels: {}, {} ({}).\n",
            methods.title(&zero.arm),
            pct(zero.mean),
            seeds(zero)
        ));
    }
    let mut budgets: Vec<usize> =
        s.iter().filter(|x| !x.all && !uses_no_labels(methods, &x.arm)).map(|x| x.labels_per_class).collect();
    budgets.sort_unstable();
    budgets.dedup();
    for budget in budgets {
        let mut ranked: Vec<&Summary> =
            s.iter().filter(|x| !x.all && x.labels_per_class == budget && !uses_no_labels(methods, &x.arm)).collect();
        ranked.sort_by(|a, b| b.mean.total_cmp(&a.mean));
        let best = ranked[0];
        let line = match ranked.get(1) {
            None => {
                format!("{}, {} ({}; the only method measured)", methods.title(&best.arm), pct(best.mean), seeds(best))
            }
            Some(next) => match paired(curve, &cell(best), &cell(next)) {
                Some(d) => format!(
                    "{}, {}; {} {}, {} ({})",
                    methods.title(&best.arm),
                    pct(best.mean),
                    if d.verdict() == Verdict::Tie { "a tie with" } else { "ahead of" },
                    methods.title(&next.arm),
                    pct(next.mean),
                    d.evidence()
                ),
                None => {
                    let tie = best.low <= next.high && next.low <= best.high;
                    format!(
                        "{}, {} ({}){} {}, {} ({}; unpaired)",
                        methods.title(&best.arm),
                        pct(best.mean),
                        seeds(best),
                        if tie { "; a tie with" } else { "; next," },
                        methods.title(&next.arm),
                        pct(next.mean),
                        seeds(next)
                    )
                }
            },
        };
        out.push_str(&format!("* With {} labels per class: {line}.\n", crate::plot::thousands(budget as u64)));
    }
    out
}

/// The README's sentences on the curve, all computed from it: for every two
/// methods that use labels (distillations have their own table), from which budget the one ahead at the largest
/// shared budget stays ahead; from which budget each beats the methods that
/// use none; and each method's first and last point.
pub fn sentences(curve: &Curve, methods: &Methods) -> String {
    let s = summarise(curve, methods);
    let mut arms: Vec<&str> = s.iter().map(|x| x.arm.as_str()).filter(|a| !is_distilled(curve, a)).collect();
    arms.dedup();
    let (no_labels, labelled): (Vec<&str>, Vec<&str>) = arms.iter().partition(|a| uses_no_labels(methods, a));
    let mut out = String::new();
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let title = |arm: &str| methods.title(arm).to_string();
    let at = |arm: &str, budget: usize| s.iter().find(|x| x.arm == arm && !x.all && x.labels_per_class == budget);
    let largest_shared = |a: &str, b: &str| {
        s.iter()
            .filter(|x| x.arm == a && !x.all && at(b, x.labels_per_class).is_some())
            .max_by_key(|x| x.labels_per_class)
            .map(|x| (x.mean, at(b, x.labels_per_class).map_or(0.0, |y| y.mean)))
    };
    for (i, &first) in labelled.iter().enumerate() {
        for &second in &labelled[i + 1..] {
            let Some((mean_first, mean_second)) = largest_shared(first, second) else { continue };
            let (a, b) = if mean_first >= mean_second { (first, second) } else { (second, first) };
            let Some((from, n)) = passes_from(&s, a, b) else { continue };
            let (x, y) = (at(a, from).expect("measured"), at(b, from).expect("measured"));
            let within_noise = |d: &Option<PairedDifference>| match d {
                Some(d) => d.verdict() == Verdict::Tie,
                None => x.low <= y.high && y.low <= x.high,
            };
            let at_from = paired(curve, &cell_points(curve, a, from), &cell_points(curve, b, from));
            let mut noise = match &at_from {
                Some(d) if d.verdict() == Verdict::Tie => {
                    format!("; a tie there on the same items and seeds, {}", d.evidence())
                }
                Some(d) => format!("; paired there, {}", d.evidence()),
                None if within_noise(&at_from) => {
                    "; their intervals overlap there (unpaired), so the lead at that budget is within the noise".into()
                }
                None => String::new(),
            };
            // The later budgets too, where the lead starts inside the noise or does not hold at each of them.
            let later = later_paired_outcomes(curve, &s, a, b, from);
            if within_noise(&at_from) || !later.ahead_at_each {
                noise.push_str(&later.text);
            }
            out.push_str(&format!(
                "* {} is ahead of {} from {from} labels per class on ({} against {} there{noise}; {}).\n",
                capitalised(&title(a)),
                title(b),
                pct(x.mean),
                pct(y.mean),
                plural(n, "budget", "budgets compared")
            ));
        }
    }
    for &zero in &no_labels {
        let Some(reference) = s.iter().find(|x| x.arm == zero) else { continue };
        for &arm in labelled.iter().filter(|a| methods.get(a).is_ok_and(|k| k.curve != CurvePlan::Prompted)) {
            let mut measured: Vec<&Summary> = s.iter().filter(|x| x.arm == arm && !x.all).collect();
            measured.sort_by_key(|x| x.labels_per_class);
            if measured.is_empty() {
                continue;
            }
            out.push_str(&match measured.iter().find(|x| x.mean > reference.mean) {
                Some(x) => format!(
                    "* With {} labels per class, {} beats {}: {} against {}.\n",
                    x.labels_per_class,
                    title(arm),
                    title(zero),
                    pct(x.mean),
                    pct(reference.mean)
                ),
                None => format!(
                    "* {} never beats {} ({}) at the budgets run.\n",
                    capitalised(&title(arm)),
                    title(zero),
                    pct(reference.mean)
                ),
            });
        }
    }
    for &arm in &labelled {
        let mut measured: Vec<&Summary> = s.iter().filter(|x| x.arm == arm).collect();
        measured.sort_by_key(|x| (x.all, x.labels_per_class));
        let (Some(first), Some(last)) = (measured.first(), measured.last()) else { continue };
        if first == last {
            continue;
        }
        out.push_str(&format!(
            "* {}: {} at {} labels per class, {} at {}.\n",
            capitalised(&title(arm)),
            pct(first.mean),
            first.labels_per_class,
            pct(last.mean),
            budget(last)
        ));
    }
    out
}

/// What the paired test says at each later budget both arms share.
struct LaterOutcomes {
    /// "; at the later budgets, on the same items and seeds: ahead at 32 and
    /// 128, a tie at 512", and the budgets where either arm kept no answers to pair.
    text: String,
    /// The lead holds at every later budget where the two can be paired.
    ahead_at_each: bool,
}

/// [`LaterOutcomes`] of `a` against `b` after the budget `from`.
fn later_paired_outcomes(curve: &Curve, s: &[Summary], a: &str, b: &str, from: usize) -> LaterOutcomes {
    let mut later: Vec<usize> = s
        .iter()
        .filter(|x| x.arm == a && !x.all && x.labels_per_class > from)
        .filter(|x| s.iter().any(|y| y.arm == b && !y.all && y.labels_per_class == x.labels_per_class))
        .map(|x| x.labels_per_class)
        .collect();
    later.sort_unstable();
    let (mut outcomes, mut unpaired): (Vec<(Verdict, Vec<String>)>, Vec<String>) = (Vec::new(), Vec::new());
    for budget in later {
        let Some(d) = paired(curve, &cell_points(curve, a, budget), &cell_points(curve, b, budget)) else {
            unpaired.push(budget.to_string());
            continue;
        };
        let verdict = d.verdict();
        match outcomes.iter_mut().find(|(v, _)| *v == verdict) {
            Some((_, budgets)) => budgets.push(budget.to_string()),
            None => outcomes.push((verdict, vec![budget.to_string()])),
        }
    }
    let parts: Vec<String> = outcomes
        .iter()
        .map(|(verdict, budgets)| {
            let outcome = match verdict {
                Verdict::FirstBetter => "ahead",
                Verdict::SecondBetter => "behind",
                Verdict::Tie => "a tie",
            };
            format!("{outcome} at {}", super::join_and(budgets))
        })
        .collect();
    let mut out = String::new();
    if !parts.is_empty() {
        out.push_str(&format!("; at the later budgets, on the same items and seeds: {}", parts.join(", ")));
    }
    if !unpaired.is_empty() {
        out.push_str(&format!(" (at {}: no answers kept to pair)", super::join_and(&unpaired)));
    }
    let ahead_at_each = outcomes.iter().all(|(v, _)| *v == Verdict::FirstBetter);
    LaterOutcomes { text: out, ahead_at_each }
}

/// For each arm whose full-data point has more than one seed (the committed
/// run in `results/` and its further seeds in `results/seeds/*/`): its mean,
/// its seeds, and the interval over seeds and test items; one paragraph.
/// Empty when none has.
pub fn full_data_seeds_sentences(curve: &Curve, methods: &Methods) -> String {
    summarise(curve, methods)
        .iter()
        .filter(|s| s.all && s.seeds > 1)
        .map(|s| {
            let mut points: Vec<&CurvePoint> = curve.points.iter().filter(|p| p.arm == s.arm && p.all).collect();
            points.sort_by_key(|p| p.seed);
            let each: Vec<String> =
                points.iter().map(|p| format!("{:.2}% (seed {})", 100.0 * p.accuracy, p.seed)).collect();
            let seeds_dir = format!("{}/", crate::studies::curve::SEEDS_DIR);
            let row = points.iter().find(|p| !p.source.contains(&seeds_dir)).unwrap_or(&points[0]).seed;
            let interval = match s.interval {
                Interval::SeedsAndItems => "95% interval over seeds and test items",
                Interval::SeedRange => "seed range",
            };
            format!(
                "{} on all of train, {} on all {} test items: {:.2}% on average [{:.2}, {:.2}] ({interval}); \
                 {}. The table's row is seed {row}'s run; the others are in `results/{}/`.",
                capitalised(methods.title(&s.arm)),
                super::seeds(s.seeds),
                crate::plot::thousands(s.test_items as u64),
                100.0 * s.mean,
                100.0 * s.low,
                100.0 * s.high,
                each.join(", "),
                crate::studies::curve::SEEDS_DIR,
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or(String::new(), |c| c.to_uppercase().chain(chars).collect())
}

/// "1 budget compared", "3 budgets compared".
fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one} compared")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::studies::curve::CurveConfig;

    fn s(arm: &str, labels_per_class: usize, mean: f64) -> Summary {
        Summary {
            arm: arm.into(),
            labels_per_class,
            all: false,
            seeds: 1,
            mean,
            low: mean,
            high: mean,
            interval: Interval::SeedsAndItems,
            test_items: 100,
        }
    }

    #[test]
    fn a_line_across_more_than_the_grid_step_is_not_drawn_as_measured() {
        assert!(unmeasured_gap(32.0, 4750.0) && unmeasured_gap(512.0, 3000.0));
        assert!(!unmeasured_gap(128.0, 512.0) && !unmeasured_gap(2048.0, 4750.0) && !unmeasured_gap(8.0, 16.0));
    }

    #[test]
    fn passing_is_from_the_budget_after_the_last_one_behind() {
        let v = vec![
            s("finetune", 8, 0.5),
            s("finetune", 32, 0.8),
            s("finetune", 128, 0.9),
            s("tfidf", 8, 0.6),
            s("tfidf", 32, 0.7),
            s("tfidf", 128, 0.85),
        ];
        assert_eq!(passes_from(&v, "finetune", "tfidf"), Some((32, 3)));
        assert_eq!(passes_from(&v, "tfidf", "finetune"), None, "behind at the largest budget");
        assert_eq!(passes_from(&v, "finetune", "knn"), None, "no common budget");
        let ahead = vec![s("finetune", 8, 0.9), s("tfidf", 8, 0.6)];
        assert_eq!(passes_from(&ahead, "finetune", "tfidf"), Some((8, 1)));
    }

    fn point(
        arm: &str,
        labels_per_class: usize,
        accuracy: f64,
        train_seconds: f64,
        items_per_second: f64,
    ) -> CurvePoint {
        CurvePoint {
            train_seconds,
            items_per_second,
            ..crate::studies::curve::point(arm, labels_per_class, 42, accuracy)
        }
    }

    /// A curve of these points on the smoke grid.
    fn curve_of(points: Vec<CurvePoint>) -> Curve {
        Curve {
            schema_version: crate::studies::curve::CURVE_SCHEMA_VERSION,
            command: "test".into(),
            config: CurveConfig::for_profile(crate::Profile::Smoke, &Methods::standard()),
            data: String::new(),
            num_classes: 4,
            test_items: 100,
            hardware: crate::results::Hardware::detect(),
            compute_seconds: 0.0,
            budget_notes: Default::default(),
            points,
            scored_items: Default::default(),
            updates: vec![],
        }
    }

    #[test]
    fn the_decision_names_the_best_method_at_each_budget_and_calls_overlaps_a_tie() {
        let methods = Methods::standard();
        let p = crate::studies::curve::point;
        let curve = curve_of(vec![
            p("knn", 8, 42, 0.70),
            p("knn", 8, 43, 0.74),
            p("setfit", 8, 42, 0.80),
            p("setfit", 8, 43, 0.82),
            p("knn", 32, 42, 0.85),
            p("setfit", 32, 42, 0.84),
            p("zero-shot", 0, 42, 0.5),
        ]);
        let said = decision_sentences(&curve, &methods);
        assert!(said.contains("* With no labels: prompted LM, zero-shot (no labels), 50.0% (1 seed).\n"), "{said}");
        assert!(
            said.contains("* With 8 labels per class: SetFit (contrastive MiniLM + LR), 81.0% (2 seeds); next, embeddings + K-NN, 72.0% (2 seeds; unpaired).\n"),
            "{said}"
        );
        assert!(
            said.contains("* With 32 labels per class: embeddings + K-NN, 85.0% (1 seed); a tie with SetFit"),
            "{said}"
        );
    }

    /// `n` test items, labelled 0, 1, 2, 3 in turn.
    fn four_class_items(n: usize) -> Vec<crate::Example> {
        (0..n)
            .map(|i| crate::Example {
                index: i,
                label: i % 4,
                title: String::new(),
                body: String::new(),
                text: String::new(),
            })
            .collect()
    }

    /// A curve of these points whose answers are on `test`, all of it scored.
    fn curve_scored_on(test: &[crate::Example], points: Vec<CurvePoint>) -> Curve {
        Curve { scored_items: crate::studies::scored_items::ScoredItems::of(test, test), ..curve_of(points) }
    }

    /// A point that kept its answers: right on the items where `right(i)`, else a wrong class.
    fn answering(
        test: &[crate::Example],
        arm: &str,
        budget: usize,
        seed: u64,
        right: &dyn Fn(usize) -> bool,
    ) -> CurvePoint {
        let answers: Vec<Option<usize>> =
            test.iter().map(|e| Some(if right(e.index) { e.label } else { (e.label + 1) % 4 })).collect();
        let correct = answers.iter().zip(test).filter(|(a, e)| **a == Some(e.label)).count();
        let mut point = crate::studies::curve::point(arm, budget, seed, correct as f64 / test.len() as f64);
        point.answers = Some(crate::studies::scored_items::Answers(answers));
        point
    }

    #[test]
    fn a_full_data_run_over_seeds_gives_its_mean_each_seed_and_the_interval_over_both() {
        let methods = Methods::standard();
        let test = four_class_items(200);
        let full = |seed: u64, right: usize| CurvePoint {
            all: true,
            labels_per_class: 4750,
            test_items: 200,
            ..answering(&test, "finetune", 4750, seed, &|i| i < right)
        };
        let one_seed = curve_scored_on(&test, vec![full(42, 180)]);
        assert_eq!(full_data_seeds_sentences(&one_seed, &methods), "", "one seed: the table's row says it all");
        let curve = curve_scored_on(&test, vec![full(43, 170), full(42, 180), full(44, 190)]);
        let text = full_data_seeds_sentences(&curve, &methods);
        assert!(text.contains("3 seeds on all 200 test items: 90.00% on average ["), "{text}");
        assert!(text.contains("90.00% (seed 42), 85.00% (seed 43), 95.00% (seed 44)"), "{text}");
        assert!(text.contains("95% interval over seeds and test items"), "{text}");
        assert!(text.contains("The table's row is seed 42's run") && !text.contains("  "), "{text}");
        let s = summarise(&curve, &methods).into_iter().find(|s| s.all).unwrap();
        assert!(s.low < 0.90 && 0.90 < s.high && s.high - s.low < 0.2, "{s:?}");
    }

    #[test]
    fn a_lead_that_starts_in_the_noise_says_where_the_paired_test_decides_it() {
        let methods = Methods::standard();
        let test = four_class_items(200);
        let answering =
            |arm: &str, budget: usize, right: &dyn Fn(usize) -> bool| answering(&test, arm, budget, 42, right);
        let p = crate::studies::curve::point;
        let curve = curve_scored_on(
            &test,
            vec![
                // At 8: 95% against 92.5%, wrong on different items: a tie.
                answering("setfit", 8, &|i| i % 20 != 0),
                answering("knn", 8, &|i| i % 20 != 1 && i % 40 != 2),
                // At 32: 90% against 70%, K-NN's right items a subset of SetFit's.
                answering("setfit", 32, &|i| i % 10 != 0),
                answering("knn", 32, &|i| i % 10 > 2),
                // At 128: no answers to pair.
                p("setfit", 128, 42, 0.95),
                p("knn", 128, 42, 0.90),
            ],
        );
        let said = sentences(&curve, &methods);
        assert!(
            said.contains("from 8 labels per class on (95.0% against 92.5% there; a tie there on the same"),
            "{said}"
        );
        assert!(
            said.contains(
                "; at the later budgets, on the same items and seeds: ahead at 32 (at 128: no answers kept to pair); \
                 3 budgets compared)"
            ),
            "{said}"
        );
    }

    #[test]
    fn a_clear_lead_that_does_not_hold_later_says_where_it_ties() {
        let methods = Methods::standard();
        let test = four_class_items(200);
        let answering =
            |arm: &str, budget: usize, right: &dyn Fn(usize) -> bool| answering(&test, arm, budget, 42, right);
        let curve = curve_scored_on(
            &test,
            vec![
                // At 8: 90% against 70%, K-NN's right items a subset of SetFit's: clearly ahead.
                answering("setfit", 8, &|i| i % 10 != 0),
                answering("knn", 8, &|i| i % 10 > 2),
                // At 32: 95% against 92.5%, wrong on different items: a tie.
                answering("setfit", 32, &|i| i % 20 != 0),
                answering("knn", 32, &|i| i % 20 != 1 && i % 40 != 2),
            ],
        );
        let said = sentences(&curve, &methods);
        assert!(said.contains("from 8 labels per class on (90.0% against 70.0% there; paired there, "), "{said}");
        assert!(
            said.contains("; at the later budgets, on the same items and seeds: a tie at 32; 2 budgets compared)"),
            "{said}"
        );
    }

    #[test]
    fn where_answers_were_kept_the_decision_compares_the_two_best_on_the_same_items() {
        let methods = Methods::standard();
        let test = four_class_items(200);
        let answering = |arm: &str, budget: usize, seed: u64, right: &dyn Fn(usize) -> bool| {
            answering(&test, arm, budget, seed, right)
        };
        let mut curve = curve_scored_on(
            &test,
            vec![
                // At 8: SetFit right on 90%, K-NN on 70% (a subset of SetFit's), two seeds.
                answering("setfit", 8, 42, &|i| i % 10 != 0),
                answering("setfit", 8, 43, &|i| i % 10 != 1),
                answering("knn", 8, 42, &|i| i % 10 > 2),
                answering("knn", 8, 43, &|i| i % 10 > 3 || i % 10 == 0),
                // At 32: 80% each, on different items.
                answering("setfit", 32, 42, &|i| i % 5 != 0),
                answering("knn", 32, 42, &|i| i % 5 != 1),
            ],
        );
        let said = decision_sentences(&curve, &methods);
        assert!(
            said.contains("* With 8 labels per class: SetFit (contrastive MiniLM + LR), 90.0%; ahead of embeddings + K-NN, 70.0% (+20.0 points ["),
            "{said}"
        );
        assert!(said.contains("] on 200 items × 2 seeds; McNemar p ≤ "), "{said}");
        assert!(said.contains("80.0%; a tie with ") && said.contains(", 80.0% (+0.0 points ["), "{said}");
        // The curve's "ahead from" sentence rests on the same paired test (at 8
        // alone: at 32 the two are level, so neither stays ahead).
        curve.points.retain(|p| p.labels_per_class == 8);
        let said = sentences(&curve, &methods);
        assert!(
            said.contains("from 8 labels per class on (90.0% against 70.0% there; paired there, +20.0 points ["),
            "{said}"
        );
    }

    #[test]
    fn a_distillation_is_repaid_when_the_time_saved_per_item_covers_the_labelling() {
        let methods = Methods::standard();
        let mut student = point("distill-zero-shot-tfidf", 8, 0.6, 1_010.0, 1_000.0);
        student.teacher = Some(crate::studies::curve::TeacherPoint {
            arm: "zero-shot".into(),
            student_arm: "tfidf".into(),
            method: String::new(),
            pool_items: 2_000,
            kept_items: 1_000,
            validation_accuracy: 0.5,
            pool_accuracy: 0.5,
            kept_accuracy: 0.7,
            labelling_seconds: 1_000.0,
            labelling_api_cost_usd: None,
        });
        // The zero-shot teacher trains nothing and labelled the pool at 2
        // items/s in the student's run (its own run, on another machine, at
        // 4): the student's 1,010 s of teaching are repaid after
        // 1,010 / (1/2 - 1/1000) items. Its second seed taught no student.
        let other_seed = CurvePoint { seed: 43, ..point("zero-shot", 0, 0.3, 0.0, 4.0) };
        let curve = curve_of(vec![point("zero-shot", 0, 0.5, 0.0, 4.0), other_seed, student]);
        let said = distillation_sentences(&curve, &methods);
        assert!(
            said.contains("scores 60.0% against its teacher's 50.0% (+10.0 points; one seed; unpaired); on "),
            "{said}"
        );
        // No run merged the arm in: the curve's own machine timed it.
        let machine = curve.hardware.summary();
        assert!(said.contains(&format!("on {machine} it answers 1,000 items/s against 2.00")), "{said}");
        // A run that measured the arm again names its own machine.
        let mut remeasured = curve.clone();
        remeasured.updates.push(crate::studies::curve::CurveUpdate {
            command: "slm-vs-llm curve --arms distill-zero-shot-tfidf".into(),
            arms: vec!["distill-zero-shot-tfidf".into()],
            hardware: crate::results::Hardware {
                cpu: "Other CPU".into(),
                kind: String::new(),
                cores: 2,
                memory_gib: 8.0,
                os: "linux".into(),
            },
            compute_seconds: 1.0,
        });
        let said_again = distillation_sentences(&remeasured, &methods);
        assert!(said_again.contains("on Other CPU, 2 cores, 8 GiB it answers"), "{said_again}");
        assert!(!said.contains("alone"), "no TF-IDF point at 8 per class: {said}");
        assert!(
            said.contains(
                "training took 16.8 min, which serving the student instead of the teacher repays after 2,025 items"
            ),
            "{said}"
        );
    }
}
