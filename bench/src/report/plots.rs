//! The plots, drawn with plotters as SVG and PNG from the same code: startup
//! distribution (box plots), startup breakdown (stacked bars), memory per instance,
//! density, and throughput relative to native. PNG text uses the DejaVu Sans font
//! embedded in the binary, so no system font lookup is needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::claims;
use super::summary::{box_stats, BoxStats};
use super::view::{self, num, Run};
use super::ReportError;
use crate::models::MODEL_NAMES;

/// DejaVu Sans (licence in `bench/assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Width of every plot, in pixels.
const WIDTH: u32 = 1200;

/// Tableau 20: distinguishable, and readable when projected.
const PALETTE: [RGBColor; 20] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0x79, 0x70, 0x6e),
    RGBColor(0xa0, 0xcb, 0xe8),
    RGBColor(0xff, 0xbe, 0x7d),
    RGBColor(0xff, 0x9d, 0x9a),
    RGBColor(0x49, 0x98, 0x94),
    RGBColor(0x8c, 0xd1, 0x7d),
    RGBColor(0xb6, 0x99, 0x2d),
    RGBColor(0xd4, 0xa6, 0xc8),
    RGBColor(0xd3, 0x72, 0x95),
    RGBColor(0xd7, 0xb5, 0xa6),
    RGBColor(0xba, 0xb0, 0xac),
];

/// The colour of a model: by its place in the fixed model list, so a model keeps its
/// colour across plots and reports.
fn model_color(model: &str) -> RGBColor {
    let i = MODEL_NAMES
        .iter()
        .position(|m| *m == model)
        .unwrap_or(MODEL_NAMES.len() + model.len());
    PALETTE[i % PALETTE.len()]
}

/// One drawn plot.
#[derive(Debug, Clone)]
pub(crate) struct Plot {
    /// File stem, e.g. `startup_distribution`.
    pub name: &'static str,
    /// Title, as drawn.
    pub title: String,
    /// The SVG file.
    pub svg: PathBuf,
    /// The PNG file.
    pub png: PathBuf,
    /// The SVG text, for embedding in the HTML report.
    pub svg_text: String,
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;
type DrawResult = Result<(), String>;

/// A linear f64 coordinate whose ticks are given, so rows land on whole numbers and
/// log axes (drawn in log10 space) get ticks at 1, 2 and 5 × 10^k.
#[derive(Debug, Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        // An empty range (all values equal, e.g. a density MemAvailable drop of 0 and
        // a negative one clipped to it) or a value far outside must not overflow.
        let span = self.hi - self.lo;
        let t = if span > 0.0 {
            (value - self.lo) / span
        } else {
            0.5
        };
        limit
            .0
            .saturating_add((f64::from(limit.1 - limit.0) * t).round() as i32)
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// Turns a drawing result into the report's error text.
fn ok<T, E: ToString>(r: Result<T, E>) -> DrawResult {
    r.map(|_| ()).map_err(|e| e.to_string())
}

/// A plot's data, ready to draw on any backend.
enum Data {
    Boxes(Vec<(String, String, BoxStats)>),
    Stacked(Vec<(String, Vec<(String, f64)>)>),
    /// Bars from the axis start, or from 1 when `relative` (a ratio to native).
    Bars {
        rows: Vec<Bar>,
        log: bool,
        relative: bool,
        unit: &'static str,
    },
    Density(Vec<Series>),
}

/// A density series: label, model, and (N, MiB per instance, ms to all ready).
type Series = (String, String, Vec<(f64, f64, f64)>);

/// One bar: label, model (for its colour), value and p5/p95 error bar.
struct Bar {
    label: String,
    model: String,
    value: f64,
    lo: f64,
    hi: f64,
}

/// Draws every plot that has data; returns them in report order.
pub(crate) fn draw_all(runs: &[Run], dir: &Path) -> Result<Vec<Plot>, ReportError> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The font is a constant part of the binary; a failure here is a build defect
        // that the plot tests catch (no text pixels), so drawing goes on without it.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let specs: Vec<(&'static str, String, Option<Data>)> = vec![
        (
            "startup_distribution",
            "Launch to ready (ms), per model".into(),
            startup(runs),
        ),
        (
            "startup_breakdown",
            "Startup breakdown: median phase times (ms)".into(),
            breakdown(runs),
        ),
        (
            "memory_per_instance",
            "Host memory per idle instance (MiB), p5-p95".into(),
            memory(runs),
        ),
        ("density", "Density: N idle instances".into(), density(runs)),
        (
            "throughput_relative",
            "Throughput relative to native (1 = native, higher is better)".into(),
            throughput(runs),
        ),
    ];
    let mut out = vec![];
    for (name, title, data) in specs {
        if let Some(data) = data {
            out.push(render(name, title, &data, dir)?);
        }
    }
    Ok(out)
}

/// Draws one plot as SVG and PNG.
fn render(name: &'static str, title: String, data: &Data, dir: &Path) -> Result<Plot, ReportError> {
    let err = |message: String| ReportError::Plot {
        name: name.to_owned(),
        message,
    };
    let size = (WIDTH, height(data));
    let mut svg_text = String::new();
    {
        let area = SVGBackend::with_string(&mut svg_text, size).into_drawing_area();
        draw(&area, &title, data).map_err(err)?;
        area.present().map_err(|e| err(e.to_string()))?;
    }
    let svg = dir.join(format!("{name}.svg"));
    std::fs::write(&svg, &svg_text).map_err(|source| ReportError::Write {
        path: svg.display().to_string(),
        source,
    })?;
    let png = dir.join(format!("{name}.png"));
    {
        let area = BitMapBackend::new(&png, size).into_drawing_area();
        draw(&area, &title, data).map_err(err)?;
        area.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Plot {
        name,
        title,
        svg,
        png,
        svg_text,
    })
}

/// Height fitting the rows of a plot.
fn height(data: &Data) -> u32 {
    let rows = match data {
        Data::Boxes(r) => r.len(),
        Data::Stacked(r) => {
            // The side legend needs 26 px per distinct phase.
            let mut names: Vec<&str> = r
                .iter()
                .flat_map(|(_, p)| p.iter().map(|(n, _)| n.as_str()))
                .collect();
            names.sort_unstable();
            names.dedup();
            r.len().max((names.len() * 26).div_ceil(44))
        }
        Data::Bars { rows, .. } => rows.len(),
        Data::Density(_) => return 600,
    };
    (160 + 44 * rows as u32).max(420)
}

fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &str, data: &Data) -> DrawResult {
    area.fill(&WHITE).map_err(|e| e.to_string())?;
    let area = area
        .titled(title, ("sans-serif", 28))
        .map_err(|e| e.to_string())?;
    match data {
        Data::Boxes(rows) => draw_boxes(&area, rows),
        Data::Stacked(rows) => draw_stacked(&area, rows),
        Data::Bars {
            rows,
            log,
            relative,
            unit,
        } => draw_bars(&area, rows, (*log, *relative), unit),
        Data::Density(series) => draw_density(&area, series),
    }
}

/// A row label: the model, and the host when several hosts are compared.
fn row_label(run: &Run, model: &str, several: bool) -> String {
    if several {
        format!("{} @ {}", run.display(model), run.label())
    } else {
        run.display(model)
    }
}

fn startup(runs: &[Run]) -> Option<Data> {
    let mut rows = vec![];
    for run in runs {
        for m in run.models() {
            let Some(sr) = run.result(&m, "startup") else {
                continue;
            };
            let (vals, _) = view::values(sr, "launch_to_ready_ms");
            if let Some(b) = box_stats(&vals) {
                rows.push((row_label(run, &m, runs.len() > 1), m, b));
            }
        }
    }
    (!rows.is_empty()).then_some(Data::Boxes(rows))
}

fn breakdown(runs: &[Run]) -> Option<Data> {
    let mut rows = vec![];
    for run in runs {
        for m in run.models() {
            let Some(sr) = run.result(&m, "startup") else {
                continue;
            };
            let mut names: Vec<String> = vec![];
            for p in sr.samples.iter().filter(|s| s.ok).flat_map(|s| &s.phases) {
                if !names.contains(&p.name) {
                    names.push(p.name.clone());
                }
            }
            let phases: Vec<(String, f64)> = names
                .into_iter()
                .filter_map(|n| Some((n.clone(), claims::phase_median(sr, &n)? / 1000.0)))
                .collect();
            if !phases.is_empty() {
                rows.push((row_label(run, &m, runs.len() > 1), phases));
            }
        }
    }
    (!rows.is_empty()).then_some(Data::Stacked(rows))
}

fn memory(runs: &[Run]) -> Option<Data> {
    let mut rows = vec![];
    for run in runs {
        for m in run.models() {
            let Some(f) = run.figure(&m, "memory", "instance_kib") else {
                continue;
            };
            let s = &f.summary;
            let (value, lo, hi) = (s.median / 1024.0, s.p5 / 1024.0, s.p95 / 1024.0);
            rows.push(Bar {
                label: row_label(run, &m, runs.len() > 1),
                model: m,
                value,
                lo,
                hi,
            });
        }
    }
    let log = spread(rows.iter().map(|b| b.value)) > 50.0;
    (!rows.is_empty()).then_some(Data::Bars {
        rows,
        log,
        relative: false,
        unit: "MiB",
    })
}

/// Largest over smallest positive value.
fn spread(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.filter(|v| *v > 0.0).collect();
    let max = v.iter().copied().fold(f64::MIN, f64::max);
    let min = v.iter().copied().fold(f64::MAX, f64::min);
    if v.is_empty() {
        1.0
    } else {
        max / min
    }
}

fn density(runs: &[Run]) -> Option<Data> {
    let mut series = vec![];
    for run in runs {
        for m in run.models() {
            let pts: Vec<(f64, f64, f64)> = run
                .densities(&m)
                .into_iter()
                .filter_map(|(n, sr)| {
                    let mem = view::figure(sr, "mem_available_drop_per_instance_kib")?
                        .summary
                        .median
                        / 1024.0;
                    let ready =
                        view::figure(sr, "all_ready_ms").map_or(f64::NAN, |f| f.summary.median);
                    Some((f64::from(n), mem, ready))
                })
                .collect();
            if !pts.is_empty() {
                series.push((row_label(run, &m, runs.len() > 1), m, pts));
            }
        }
    }
    (!series.is_empty()).then_some(Data::Density(series))
}

fn throughput(runs: &[Run]) -> Option<Data> {
    let mut rows = vec![];
    for scenario in view::THROUGHPUT {
        for run in runs {
            let Some(nat) = run.result("native", scenario) else {
                continue;
            };
            for metric in view::throughput_metrics(nat) {
                rows.extend(relative_rows(run, runs.len() > 1, scenario, &metric));
            }
        }
    }
    (!rows.is_empty()).then_some(Data::Bars {
        rows,
        log: true,
        relative: true,
        unit: "× native",
    })
}

/// The bars of one throughput metric: each non-native model relative to native.
fn relative_rows(run: &Run, several: bool, scenario: &str, metric: &str) -> Vec<Bar> {
    let Some(nf) = run.figure("native", scenario, metric) else {
        return vec![];
    };
    let mut rows = vec![];
    for m in run.models().into_iter().filter(|m| m != "native") {
        let Some(f) = run.figure(&m, scenario, metric) else {
            continue;
        };
        let Some((value, lo, hi)) =
            relative(&nf.summary, &f.summary, view::higher_is_better(metric))
        else {
            continue;
        };
        let label = format!("{metric} · {}", row_label(run, &m, several));
        rows.push(Bar {
            label,
            model: m,
            value,
            lo,
            hi,
        });
    }
    rows
}

/// A model's figure relative to native's median (above 1 = better than native),
/// with its p5/p95 mapped the same way.
pub(crate) fn relative(
    native: &crate::results::Summary,
    model: &crate::results::Summary,
    higher_better: bool,
) -> Option<(f64, f64, f64)> {
    let n = native.median;
    let r = if higher_better {
        (model.median / n, model.p5 / n, model.p95 / n)
    } else {
        (n / model.median, n / model.p95, n / model.p5)
    };
    [r.0, r.1, r.2]
        .iter()
        .all(|x| x.is_finite() && *x > 0.0)
        .then_some(r)
}

/// A value axis: range and ticks in drawing space (log10 when `log`).
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Axis {
    /// An axis covering `values` (and 0 for linear, 1 for log axes).
    fn new(values: impl Iterator<Item = f64>, log: bool) -> Self {
        let v: Vec<f64> = values
            .filter(|x| x.is_finite() && (!log || *x > 0.0))
            .collect();
        if log {
            let lo = v.iter().map(|x| x.log10()).fold(0.0, f64::min).floor();
            let hi = v
                .iter()
                .map(|x| x.log10())
                .fold(0.0, f64::max)
                .ceil()
                .max(lo + 1.0);
            let mut ticks = vec![];
            let mut d = lo;
            while d <= hi + 1e-9 {
                ticks.extend(
                    [d, d + 2f64.log10(), d + 5f64.log10()]
                        .into_iter()
                        .filter(|t| *t <= hi + 1e-9),
                );
                d += 1.0;
            }
            return Self { log, lo, hi, ticks };
        }
        let max = v.iter().copied().fold(0.0, f64::max).max(1e-9);
        let step = nice_step(max / 6.0);
        let hi = (max / step).ceil() * step;
        let ticks = (0..=((hi / step).round() as usize))
            .map(|i| i as f64 * step)
            .collect();
        Self {
            log,
            lo: 0.0,
            hi,
            ticks,
        }
    }

    fn at(&self, v: f64) -> f64 {
        if self.log {
            v.max(1e-12).log10()
        } else {
            v
        }
    }

    fn label(&self, x: f64) -> String {
        let v = if self.log { 10f64.powf(x) } else { x };
        if v == 0.0 {
            return "0".into();
        }
        // Three significant digits: 10^log10(5) is 4.999..., and should read 5.
        let scale = 10f64.powf(2.0 - v.abs().log10().floor());
        format!("{}", (v * scale).round() / scale)
    }
}

/// The 1, 2 or 5 × 10^k step nearest above `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// A horizontal chart: one row per label (top to bottom), values along x.
fn hchart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    labels: &[String],
    axis: &Axis,
    x_desc: &str,
) -> Result<Chart<'a, DB>, String> {
    let n = labels.len();
    let left = labels.iter().map(|l| l.chars().count()).max().unwrap_or(8) as u32 * 10 + 20;
    let rows: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .margin_right(40)
        .x_label_area_size(50)
        .y_label_area_size(left.min(WIDTH / 2))
        .build_cartesian_2d(
            Ticked {
                lo: axis.lo,
                hi: axis.hi,
                ticks: axis.ticks.clone(),
            },
            Ticked {
                lo: -0.6,
                hi: n as f64 - 0.4,
                ticks: rows,
            },
        )
        .map_err(|e| e.to_string())?;
    let labels = labels.to_vec();
    let xf = |x: &f64| axis.label(*x);
    let yf = move |y: &f64| {
        labels
            .get(n.wrapping_sub(1).wrapping_sub(y.round() as usize))
            .cloned()
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(x_desc)
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style(("sans-serif", 17))
        .axis_desc_style(("sans-serif", 19))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// Row `i` (from the top) of `n`, in chart y.
fn row_y(i: usize, n: usize) -> f64 {
    (n - 1 - i) as f64
}

fn draw_boxes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rows: &[(String, String, BoxStats)],
) -> DrawResult {
    let all = rows.iter().flat_map(|(_, _, b)| {
        [b.low, b.high]
            .into_iter()
            .chain(b.outliers.iter().copied())
    });
    let log = spread(all.clone()) > 30.0;
    let axis = Axis::new(all, log);
    let labels: Vec<String> = rows.iter().map(|(l, _, _)| l.clone()).collect();
    let desc = if log {
        "ms (log scale); box = quartiles, whiskers = last sample within 1.5 IQR"
    } else {
        "ms; box = quartiles, whiskers = last sample within 1.5 IQR"
    };
    let mut chart = hchart(area, &labels, &axis, desc)?;
    for (i, (_, model, b)) in rows.iter().enumerate() {
        let (y, c) = (row_y(i, rows.len()), model_color(model));
        let x = |v: f64| axis.at(v);
        ok(chart.draw_series([PathElement::new(
            vec![(x(b.low), y), (x(b.high), y)],
            BLACK.stroke_width(2),
        )]))?;
        for w in [b.low, b.high] {
            ok(chart.draw_series([PathElement::new(
                vec![(x(w), y - 0.15), (x(w), y + 0.15)],
                BLACK.stroke_width(2),
            )]))?;
        }
        ok(chart.draw_series([Rectangle::new(
            [(x(b.q1), y - 0.3), (x(b.q3), y + 0.3)],
            c.filled(),
        )]))?;
        ok(chart.draw_series([PathElement::new(
            vec![(x(b.median), y - 0.3), (x(b.median), y + 0.3)],
            BLACK.stroke_width(3),
        )]))?;
        ok(chart.draw_series(
            b.outliers
                .iter()
                .map(|o| Circle::new((x(*o), y), 4, BLACK.filled())),
        ))?;
        let right = b.outliers.iter().copied().fold(b.high, f64::max);
        let n = EmptyElement::at((x(right), y))
            + Text::new(format!("n={}", b.n), (10, -8), ("sans-serif", 15));
        ok(chart.draw_series([n]))?;
    }
    Ok(())
}

fn draw_stacked<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rows: &[(String, Vec<(String, f64)>)],
) -> DrawResult {
    let totals = rows
        .iter()
        .map(|(_, p)| p.iter().map(|(_, ms)| ms).sum::<f64>());
    let axis = Axis::new(totals, false);
    let labels: Vec<String> = rows.iter().map(|(l, _)| l.clone()).collect();
    // The legend gets its own column, so it never hides a bar.
    let (plot, key) = area.split_horizontally(WIDTH - 240);
    let mut chart = hchart(&plot, &labels, &axis, "ms (median of each phase)")?;
    let mut names: Vec<&str> = vec![];
    for (_, phases) in rows {
        for (n, _) in phases {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    for (k, name) in names.iter().enumerate() {
        let c = PALETTE[k % PALETTE.len()];
        let bars = rows.iter().enumerate().filter_map(|(i, (_, phases))| {
            let start: f64 = phases
                .iter()
                .take_while(|(n, _)| n != name)
                .map(|(_, ms)| ms)
                .sum();
            let (_, ms) = phases.iter().find(|(n, _)| n == name)?;
            let y = row_y(i, rows.len());
            Some(Rectangle::new(
                [(start, y - 0.3), (start + ms, y + 0.3)],
                c.filled(),
            ))
        });
        ok(chart.draw_series(bars))?;
    }
    side_legend(&key, &names)
}

/// A legend drawn in its own area: a colour swatch and a name per phase.
fn side_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, names: &[&str]) -> DrawResult {
    for (k, name) in names.iter().enumerate() {
        let y = 40 + 26 * k as i32;
        let c = PALETTE[k % PALETTE.len()];
        ok(area.draw(&Rectangle::new([(10, y), (26, y + 16)], c.filled())))?;
        ok(area.draw(&Text::new(name.to_string(), (34, y), ("sans-serif", 16))))?;
    }
    Ok(())
}

fn legend<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>) -> DrawResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(|e| e.to_string())
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rows: &[Bar],
    (log, relative): (bool, bool),
    unit: &str,
) -> DrawResult {
    let axis = Axis::new(rows.iter().flat_map(|b| [b.lo, b.hi, b.value]), log);
    let labels: Vec<String> = rows.iter().map(|b| b.label.clone()).collect();
    let desc = if log {
        format!("{unit} (log scale), error bars p5-p95")
    } else {
        format!("{unit}, error bars p5-p95")
    };
    let mut chart = hchart(area, &labels, &axis, &desc)?;
    let base = if relative { axis.at(1.0) } else { axis.lo };
    for (i, b) in rows.iter().enumerate() {
        let y = row_y(i, rows.len());
        let c = model_color(&b.model);
        ok(chart.draw_series([Rectangle::new(
            [(base, y - 0.3), (axis.at(b.value), y + 0.3)],
            c.filled(),
        )]))?;
        let (lo, hi) = (axis.at(b.lo), axis.at(b.hi));
        ok(chart.draw_series([PathElement::new(
            vec![(lo, y), (hi, y)],
            BLACK.stroke_width(2),
        )]))?;
        for x in [lo, hi] {
            ok(chart.draw_series([PathElement::new(
                vec![(x, y - 0.12), (x, y + 0.12)],
                BLACK.stroke_width(2),
            )]))?;
        }
        let label = EmptyElement::at((hi.max(axis.at(b.value)), y))
            + Text::new(num(b.value), (8, -9), ("sans-serif", 16));
        ok(chart.draw_series([label]))?;
    }
    if relative {
        let top = rows.len() as f64 - 0.4;
        ok(chart.draw_series([PathElement::new(
            vec![(base, -0.6), (base, top)],
            BLACK.stroke_width(2),
        )]))?;
    }
    Ok(())
}

fn draw_density<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[Series],
) -> DrawResult {
    let (left, right) = area.split_horizontally(WIDTH / 2);
    density_panel(
        &left,
        series,
        "MiB per instance (MemAvailable drop ÷ N)",
        |p| p.1,
    )?;
    density_panel(&right, series, "ms until all N are ready", |p| p.2)
}

fn density_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[Series],
    y_desc: &str,
    pick: fn(&(f64, f64, f64)) -> f64,
) -> DrawResult {
    let mut ns: Vec<f64> = series
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|q| q.0))
        .collect();
    ns.sort_by(f64::total_cmp);
    ns.dedup();
    let values = || series.iter().flat_map(|(_, _, p)| p.iter().map(pick));
    let y = Axis::new(values(), spread(values()) > 30.0);
    let y_desc = if y.log {
        format!("{y_desc} (log scale)")
    } else {
        y_desc.to_owned()
    };
    let x_hi = ns.last().copied().unwrap_or(1.0) * 1.05;
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .margin_right(40)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            Ticked {
                lo: 0.0,
                hi: x_hi,
                ticks: ns,
            },
            Ticked {
                lo: y.lo,
                hi: y.hi,
                ticks: y.ticks.clone(),
            },
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("N instances started together")
        .y_desc(y_desc)
        .x_label_formatter(&|x| num(*x))
        .y_label_formatter(&|v| y.label(*v))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(|e| e.to_string())?;
    for (label, model, pts) in series {
        let c = model_color(model);
        let pts: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| (p.0, pick(p)))
            .filter(|p| p.1.is_finite())
            .map(|p| (p.0, y.at(p.1)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))
            .map_err(|e| e.to_string())?
            .label(label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 5, c.filled())))
            .map_err(|e| e.to_string())?;
    }
    legend(&mut chart)
}
