//! The report from fixture results (`tests/fixtures/*.json`, made by
//! `make_fixtures.py`): every number printed in report.md traces back to the fixture,
//! the plots are valid SVG and PNG with the expected series and rendered text, the
//! HTML is self-contained, and a partial (interrupted) results file still reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use bench::report::{self, ReportError, Verdict};
use bench::results::Results;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(name: &str) -> (Results, Value) {
    let path = fixture(name);
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (Results::load(&path).unwrap(), raw)
}

/// The report of `names`, generated once per test binary under cargo's target
/// temp dir (drawing PNGs is slow in debug builds), with the raw fixtures.
fn generate(names: &[&str]) -> (report::ReportFiles, Vec<Value>) {
    type Cache = Mutex<BTreeMap<String, report::ReportFiles>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let (results, raws): (Vec<Results>, Vec<Value>) = names.iter().map(|n| load(n)).unzip();
    let key = names.join("+").replace(".json", "");
    let mut cache = CACHE.get_or_init(Cache::default).lock().unwrap();
    let files = cache.entry(key.clone()).or_insert_with(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("isolab-report-{key}"));
        let _ = std::fs::remove_dir_all(&dir);
        report::generate(&results, &dir).unwrap()
    });
    (files.clone(), raws)
}

// ---- an independent oracle over the raw fixture JSON ----

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// The scenario object of (model, "scenario{k=v}").
fn scenario<'a>(raw: &'a Value, model: &str, key: &str) -> &'a Value {
    let (name, params) = match key.split_once('{') {
        Some((n, rest)) => (n, rest.trim_end_matches('}')),
        None => (key, ""),
    };
    let want: BTreeMap<String, String> = params
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    raw["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            let params: BTreeMap<String, String> =
                serde_json::from_value(s.get("params").cloned().unwrap_or(Value::Null))
                    .unwrap_or_default();
            s["model"] == model && s["scenario"] == name && params == want
        })
        .unwrap_or_else(|| panic!("no {model}/{key} in the fixture"))
}

fn ok_samples(s: &Value) -> impl Iterator<Item = &Value> {
    s["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["ok"] == true)
}

/// A statistic of a metric: the stored summary, else computed from ok samples.
fn stat(s: &Value, metric: &str, which: &str) -> f64 {
    if let Some(v) = s["summary"]
        .get(metric)
        .and_then(|m| m.get(which))
        .and_then(Value::as_f64)
    {
        return v;
    }
    let mut v: Vec<f64> = ok_samples(s)
        .filter_map(|x| x["metrics"][metric]["value"].as_f64())
        .collect();
    v.sort_by(f64::total_cmp);
    match which {
        "n" => v.len() as f64,
        "median" => percentile(&v, 50.0),
        "p5" => percentile(&v, 5.0),
        "p95" => percentile(&v, 95.0),
        "min" => v[0],
        "max" => v[v.len() - 1],
        other => panic!("unknown statistic {other}"),
    }
}

fn phase_median(s: &Value, name: &str) -> f64 {
    let mut v: Vec<f64> = ok_samples(s)
        .flat_map(|x| x["phases"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["name"] == name)
        .map(|p| p["us"].as_f64().unwrap())
        .collect();
    v.sort_by(f64::total_cmp);
    percentile(&v, 50.0)
}

enum Resolved {
    Num(f64),
    Text(String),
}

/// Resolves an evidence source path against the raw fixture.
fn resolve(raw: &Value, source: &str) -> Resolved {
    if let Some(inner) = source
        .strip_prefix("ratio(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let (a, b) = inner.split_once(';').unwrap();
        let (Resolved::Num(a), Resolved::Num(b)) = (resolve(raw, a), resolve(raw, b)) else {
            panic!("ratio of text")
        };
        return Resolved::Num(a / b);
    }
    match source {
        "host.kernel" => return Resolved::Text(raw["host"]["kernel"].as_str().unwrap().to_owned()),
        "host.hostname" => {
            return Resolved::Text(raw["host"]["hostname"].as_str().unwrap().to_owned())
        }
        "host.memory_bytes/1024" => {
            return Resolved::Num(raw["host"]["memory_bytes"].as_f64().unwrap() / 1024.0)
        }
        _ => {}
    }
    let mut parts = source.splitn(3, '/');
    let (model, key, rest) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let s = scenario(raw, model, key);
    if let Some(fact) = rest.strip_prefix("facts.") {
        let v = ok_samples(s)
            .find_map(|x| x["facts"][fact].as_str())
            .unwrap();
        return Resolved::Text(v.to_owned());
    }
    let (metric, which) = rest.rsplit_once('.').unwrap();
    if let Some(phase) = metric.strip_prefix("phases.") {
        return Resolved::Num(phase_median(s, phase));
    }
    Resolved::Num(stat(s, metric, which))
}

/// True when `printed` is `expected` rounded to the digits printed.
fn matches(printed: &str, expected: f64) -> bool {
    let Ok(v) = printed.parse::<f64>() else {
        return false;
    };
    if printed.contains('e') {
        return (v - expected).abs() <= expected.abs() * 1e-3;
    }
    let decimals = printed.split_once('.').map_or(0, |(_, d)| d.len());
    (v - expected).abs() <= 0.5 * 10f64.powi(-(decimals as i32)) + expected.abs() * 1e-9
}

fn is_number(cell: &str) -> bool {
    !cell.is_empty() && cell.parse::<f64>().is_ok()
}

// ---- reading report.md ----

/// A markdown table: its header and rows of cells, with the line before it.
struct Table {
    context: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![];
    let mut cur = String::new();
    let mut escaped = false;
    for c in inner.chars() {
        match (c, escaped) {
            ('\\', false) => escaped = true,
            ('|', false) => out.push(std::mem::take(&mut cur).trim().to_owned()),
            (c, _) => {
                cur.push(c);
                escaped = false;
            }
        }
    }
    out.push(cur.trim().to_owned());
    out.into_iter()
        .map(|c| c.trim_matches('`').to_owned())
        .collect()
}

fn tables(md: &str) -> Vec<Table> {
    let lines: Vec<&str> = md.lines().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with('|') && lines.get(i + 1).is_some_and(|l| l.starts_with("| ---")) {
            let context = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(&"")
                .to_string();
            let header = cells(lines[i]);
            let mut rows = vec![];
            i += 2;
            while i < lines.len() && lines[i].starts_with('|') {
                rows.push(cells(lines[i]));
                i += 1;
            }
            out.push(Table {
                context,
                header,
                rows,
            });
        } else {
            i += 1;
        }
    }
    out
}

/// The raw fixture of a host label.
fn host_raw<'a>(raws: &'a [Value], label: &str) -> &'a Value {
    raws.iter()
        .find(|r| r["host"]["hostname"] == label)
        .unwrap_or_else(|| panic!("no host {label}"))
}

fn model_name(cell: &str) -> &str {
    cell.trim_end_matches(" (emulated)")
}

/// Checks one table; returns how many numbers it checked.
fn check_table(t: &Table, raws: &[Value]) -> usize {
    let h: Vec<&str> = t.header.iter().map(String::as_str).collect();
    let mut checked = 0;
    for r in &t.rows {
        if h.first() != Some(&"host") {
            let numbers: Vec<&String> = r.iter().filter(|c| is_number(c)).collect();
            assert!(
                numbers.is_empty(),
                "table {h:?} prints numbers the test cannot trace: {numbers:?}"
            );
            continue;
        }
        let raw = host_raw(raws, &r[0]);
        let mut expect = |cell: &str, v: f64, what: &str| {
            assert!(
                matches(cell, v),
                "{what}: printed {cell}, fixture {v} (row {r:?})"
            );
            checked += 1;
        };
        match h.as_slice() {
            ["host", "model", "scenario", "metric", "unit", "n", "median", "p5", "p95", "min", "max", "note"] =>
            {
                let s = scenario(raw, model_name(&r[1]), &r[2]);
                for (i, which) in ["n", "median", "p5", "p95", "min", "max"]
                    .iter()
                    .enumerate()
                {
                    expect(&r[5 + i], stat(s, &r[3], which), which);
                }
            }
            ["host", "figure", "value", "unit", "source"] => match resolve(raw, &r[4]) {
                Resolved::Num(v) => expect(&r[2], v, &r[4]),
                Resolved::Text(t) => assert_eq!(r[2], t, "{}", r[4]),
            },
            ["host", "model", "figure", "relative (median)", "relative p5", "relative p95"] => {
                let (scen, metric) = r[2].split_once('/').unwrap();
                let (n, m) = (
                    scenario(raw, "native", scen),
                    scenario(raw, model_name(&r[1]), scen),
                );
                let nm = stat(n, metric, "median");
                let (v, lo, hi) = if metric.ends_with("_per_s") {
                    (
                        stat(m, metric, "median") / nm,
                        stat(m, metric, "p5") / nm,
                        stat(m, metric, "p95") / nm,
                    )
                } else {
                    (
                        nm / stat(m, metric, "median"),
                        nm / stat(m, metric, "p95"),
                        nm / stat(m, metric, "p5"),
                    )
                };
                expect(&r[3], v, "relative");
                expect(&r[4], lo, "relative p5");
                expect(&r[5], hi, "relative p95");
            }
            ["host", "model", "phase", "median (us)"] => {
                let s = scenario(raw, model_name(&r[1]), "startup");
                expect(&r[3], phase_median(s, &r[2]), "phase");
            }
            ["host", "CPU", "cores", "memory (GiB)", ..] => {
                expect(&r[2], raw["host"]["cores"].as_f64().unwrap(), "cores");
                expect(
                    &r[3],
                    raw["host"]["memory_bytes"].as_f64().unwrap() / f64::from(1u32 << 30),
                    "memory",
                );
            }
            ["host", "model", "kernel", "release", ..] => {
                let s = scenario(raw, model_name(&r[1]), "isolation");
                let facts = &ok_samples(s).next().unwrap()["facts"];
                for (i, name) in h.iter().enumerate().skip(2).take(8) {
                    let fact = match *name {
                        "kernel" => "kernel_name",
                        "release" => "kernel_release",
                        n => n,
                    };
                    assert_eq!(r[i], facts[fact].as_str().unwrap_or(""), "{fact}");
                    checked += usize::from(is_number(&r[i]));
                }
            }
            ["host", "model", "scenario", "iteration", "error"] => {
                let s = scenario(raw, model_name(&r[1]), &r[2]);
                let failed = s["samples"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["ok"] == false && x["iteration"].as_u64() == r[3].parse().ok());
                assert!(
                    failed,
                    "iteration {} of {} failed in the fixture",
                    r[3], r[2]
                );
                checked += 1;
            }
            _ => {
                let numbers: Vec<&String> = r.iter().filter(|c| is_number(c)).collect();
                assert!(
                    numbers.is_empty(),
                    "table {:?} prints numbers the test cannot trace: {numbers:?}",
                    t.header
                );
            }
        }
    }
    checked
}

/// Numbers in a claim's explanation must be printed in its evidence table too.
fn check_explanations(md: &str, tables: &[Table]) -> usize {
    let mut checked = 0;
    for t in tables.iter().filter(|t| {
        t.header.first().is_some_and(|h| h == "host")
            && t.header.get(4).is_some_and(|h| h == "source")
    }) {
        let printed: Vec<&str> = t.rows.iter().map(|r| r[2].as_str()).collect();
        assert!(md.contains(&t.context), "explanation line present");
        let why = t.context.split_once(".** ").map_or("", |(_, w)| w);
        for word in why.split_whitespace() {
            let token = word
                .trim_matches(|c: char| "(),;:×".contains(c))
                .trim_end_matches('.');
            if is_number(token) {
                assert!(
                    printed.contains(&token),
                    "explanation number {token} is not in its evidence: {why}"
                );
                checked += 1;
            }
        }
    }
    checked
}

fn check_report(names: &[&str]) -> String {
    let (files, raws) = generate(names);
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    let tables = tables(&md);
    let checked: usize = tables.iter().map(|t| check_table(t, &raws)).sum();
    assert!(
        checked > 10,
        "the report of {names:?} prints traceable numbers ({checked})"
    );
    check_explanations(&md, &tables);
    md
}

#[test]
fn every_number_in_the_full_report_comes_from_the_results() {
    let md = check_report(&["full.json"]);
    for section in [
        "## Hosts",
        "## Caveats",
        "## Claims check",
        "## Plots",
        "## Figures",
        "## Throughput relative to native",
        "## Startup breakdown",
        "## What the workload saw",
    ] {
        assert!(md.contains(section), "{section} missing");
    }
    assert!(md.contains("PVM"), "the PVM caveat is stated");
    assert!(
        md.contains("qemu (emulated)"),
        "emulated models are labelled"
    );
    assert!(md.contains("hybrid"), "the cgroup caveat is stated");
    assert!(md.contains("crun not found"), "skipped models say why");
}

#[test]
fn a_partial_results_file_still_makes_a_report() {
    let md = check_report(&["partial.json"]);
    assert!(
        md.contains("interrupted"),
        "the report says the run did not finish"
    );
    assert!(
        md.contains("recomputed from samples"),
        "summaries missing from the file are recomputed"
    );
    assert!(
        md.contains("## Failed samples"),
        "the failed sample is listed"
    );
    assert!(
        md.contains("the run was interrupted before"),
        "unmeasured claims say why"
    );
}

#[test]
fn two_hosts_are_merged_into_one_comparison() {
    let md = check_report(&["host-a.json", "host-b.json"]);
    for host in ["host-a", "host-b"] {
        let c1 = md
            .lines()
            .find(|l| l.starts_with("| C1 |") && l.contains(&format!("| {host} |")));
        assert!(c1.is_some(), "claims are checked per host ({host})");
    }
    let (files, _) = generate(&["host-a.json", "host-b.json"]);
    let svg = std::fs::read_to_string(
        files
            .plots
            .iter()
            .find(|p| p.ends_with("startup_distribution.svg"))
            .unwrap(),
    )
    .unwrap();
    let texts = svg_texts(&svg);
    for series in [
        "container @ host-a",
        "container @ host-b",
        "microvm-linux @ host-b",
    ] {
        assert!(
            texts.iter().any(|t| t == series),
            "series {series} in {texts:?}"
        );
    }
}

#[test]
fn claims_on_the_full_fixture_follow_its_data() {
    let (results, _) = load("full.json");
    let checks = report::check_claims(&results);
    let verdict = |id: &str| checks.iter().find(|c| c.id == id).unwrap().verdict;
    // microvm 9300 KiB and qemu 183000 KiB vs container 2450 KiB: at least 2x.
    assert_eq!(verdict("C1"), Verdict::Holds);
    // The kernel-less microVM (28 ms) starts faster than the container (45 ms).
    assert_eq!(verdict("C2"), Verdict::HoldsWithNuance);
    assert_eq!(verdict("C8"), Verdict::Holds);
    // qemu booted the host's own kernel release: no other kernel was shown.
    assert_eq!(verdict("C12"), Verdict::HoldsWithNuance);
    let (partial, _) = load("partial.json");
    let checks = report::check_claims(&partial);
    assert_eq!(
        checks.iter().find(|c| c.id == "C1").unwrap().verdict,
        Verdict::NotMeasured
    );
}

// ---- plots ----

fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_owned())
        .collect()
}

/// Decodes a PNG: width, height and the count of dark pixels per row.
fn png_dark_rows(path: &Path) -> (u32, u32, Vec<usize>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().expect("a valid PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a valid PNG frame");
    let bpp = info.color_type.samples();
    let rows = buf[..info.buffer_size()]
        .chunks(info.line_size)
        .map(|line| {
            line.chunks(bpp)
                .filter(|px| px[..3].iter().all(|c| *c < 80))
                .count()
        })
        .collect();
    (info.width, info.height, rows)
}

#[test]
fn plots_are_valid_svg_and_png_with_the_expected_series() {
    let (files, _) = generate(&["full.json"]);
    let names = [
        "startup_distribution",
        "startup_breakdown",
        "memory_per_instance",
        "density",
        "throughput_relative",
    ];
    assert_eq!(files.plots.len(), 2 * names.len(), "{:?}", files.plots);
    let expected: [(&str, &[&str]); 5] = [
        (
            "startup_distribution",
            &["native", "container", "runc", "microvm", "qemu (emulated)"],
        ),
        (
            "startup_breakdown",
            &["container", "microvm", "create_vm", "kernel_boot"],
        ),
        (
            "memory_per_instance",
            &["native", "container", "runc", "microvm", "qemu (emulated)"],
        ),
        ("density", &["container", "microvm", "qemu (emulated)"]),
        (
            "throughput_relative",
            &[
                "syscall.ns_per_call · microvm",
                "cpu.ops_per_s · qemu (emulated)",
            ],
        ),
    ];
    for (name, series) in expected {
        let svg = std::fs::read_to_string(
            files
                .markdown
                .with_file_name("plots")
                .join(format!("{name}.svg")),
        )
        .unwrap();
        let texts = svg_texts(&svg);
        for s in series {
            assert!(
                texts.iter().any(|t| t == s),
                "{name}.svg has series {s}: {texts:?}"
            );
        }
        let (w, h, dark) = png_dark_rows(
            &files
                .markdown
                .with_file_name("plots")
                .join(format!("{name}.png")),
        );
        assert_eq!(w, 1200, "{name}.png width");
        assert!(h >= 400, "{name}.png height {h}");
        let title: usize = dark[..40].iter().sum();
        assert!(
            title > 100,
            "{name}.png: the title's text is drawn ({title} dark pixels in the top band)"
        );
    }
}

#[test]
fn report_html_is_self_contained() {
    let (files, _) = generate(&["full.json"]);
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert_eq!(html.matches("<svg").count(), 5, "every plot is inlined");
    for external in [
        "<img",
        "<link",
        "<script",
        "src=\"http",
        "href=\"http",
        "@import",
    ] {
        assert!(
            !html.contains(external),
            "no external resource ({external})"
        );
    }
    assert!(html.contains("class=\"nuance\""), "verdicts are styled");
}

// ---- errors ----

#[test]
fn bad_input_is_a_clear_error() {
    assert!(matches!(
        report::generate(&[], Path::new("/nonexistent")),
        Err(ReportError::NoResults)
    ));
    let (results, _) = load("partial.json");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = report::generate(&[results], &file.join("out")).unwrap_err();
    assert!(
        err.to_string().contains("a-file"),
        "the error names the path: {err}"
    );
    let args = report::ReportArgs {
        results: vec![dir.path().join("missing.json")],
        out: dir.path().join("out"),
    };
    let err = report::run_report(&args).unwrap_err();
    assert!(format!("{err:#}").contains("missing.json"), "{err:#}");
}
