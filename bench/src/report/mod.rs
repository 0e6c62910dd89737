//! The report: turns one or more results files (one per host) into `report.md`, a
//! self-contained `report.html`, plots as SVG and PNG, and the claims check.
//! Every number printed comes from the results files; each derived one names its
//! source.

mod claims;
mod html;
mod markdown;
mod plots;
mod summary;
#[cfg(test)]
mod testdata;
mod view;

use std::path::{Path, PathBuf};

use crate::results::Results;

pub use claims::{ClaimCheck, Evidence, Value, Verdict};

/// Options of `bench report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// results.json files (several = several hosts merged into one comparison)
    #[arg(required = true, value_name = "RESULTS.json")]
    pub results: Vec<PathBuf>,
    /// Directory to write report.md, report.html and plots/ into (created if needed)
    #[arg(long)]
    pub out: PathBuf,
}

/// What `generate` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFiles {
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.html`, with the plots embedded.
    pub html: PathBuf,
    /// Every plot file (SVG and PNG) under `plots/`.
    pub plots: Vec<PathBuf>,
}

/// Writing the report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No results were given.
    #[error("no results to report on (give at least one results.json)")]
    NoResults,
    /// A file or directory could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("drawing plot {name}: {message}")]
    Plot {
        /// The plot.
        name: String,
        /// What the plotting library said.
        message: String,
    },
}

/// `bench report`: loads each results file and writes the report into `--out`.
pub fn run_report(args: &ReportArgs) -> anyhow::Result<()> {
    let results = args
        .results
        .iter()
        .map(|p| Results::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let files = generate(&results, &args.out)?;
    println!("report: {}", files.markdown.display());
    println!("        {}", files.html.display());
    println!(
        "plots:  {}",
        files.markdown.with_file_name("plots").display()
    );
    Ok(())
}

/// Writes `report.md`, `report.html` and `plots/` into `out_dir`, comparing the
/// hosts of `results` side by side.
pub fn generate(results: &[Results], out_dir: &Path) -> Result<ReportFiles, ReportError> {
    if results.is_empty() {
        return Err(ReportError::NoResults);
    }
    let runs = view::runs(results);
    let checks: Vec<(String, Vec<ClaimCheck>)> = runs
        .iter()
        .map(|r| (r.label(), claims::check_all(r)))
        .collect();
    let plot_dir = out_dir.join("plots");
    mkdir(&plot_dir)?;
    let drawn = plots::draw_all(&runs, &plot_dir)?;
    let md = markdown::render(&runs, &checks, &drawn);
    let markdown = write(out_dir.join("report.md"), md.as_bytes())?;
    let page = html::render(&md, &drawn);
    let html = write(out_dir.join("report.html"), page.as_bytes())?;
    let plots = drawn
        .iter()
        .flat_map(|p| [p.svg.clone(), p.png.clone()])
        .collect();
    Ok(ReportFiles {
        markdown,
        html,
        plots,
    })
}

/// The claims check of one results file, as the report prints it.
pub fn check_claims(results: &Results) -> Vec<ClaimCheck> {
    let runs = view::runs(std::slice::from_ref(results));
    claims::check_all(&runs[0])
}

fn mkdir(dir: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Write {
        path: dir.display().to_string(),
        source,
    })
}

/// Writes a file through a temporary name, so a reader never sees half of it.
fn write(path: PathBuf, bytes: &[u8]) -> Result<PathBuf, ReportError> {
    let err = |source| ReportError::Write {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        // Leave nothing half-written behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_with_no_scenarios_still_reports_and_draws_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(&[testdata::results_with(vec![])], dir.path()).unwrap();
        assert!(files.plots.is_empty());
        let md = std::fs::read_to_string(&files.markdown).unwrap();
        assert!(md.contains("No scenario with data to plot."));
        assert!(md.contains("not measured here"));
        assert!(files.html.exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
    }
}
