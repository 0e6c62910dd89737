//! STAND-IN for the report module (owned by bench-report, replaced at merge): the same
//! signatures, writing only a plain `report.md` with the summary table, so `bench run`
//! and `bench report` work end to end until the real report lands.

use std::path::{Path, PathBuf};

use crate::results::Results;

/// Options of `bench report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// results.json files to report on (several hosts are merged).
    pub results: Vec<PathBuf>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

/// Writing the report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// `bench report`: loads each results file and writes the report.
pub fn run_report(args: &ReportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.results.is_empty(), "give at least one results.json");
    let results = args
        .results
        .iter()
        .map(|p| Results::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    generate(&results, &args.out)?;
    Ok(())
}

/// Writes `report.md` into `out_dir`.
pub fn generate(results: &[Results], out_dir: &Path) -> Result<(), ReportError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let mut md = String::from("# isolab report\n");
    for r in results {
        md.push_str(&format!(
            "\n## {} ({})\n\n```\n{}```\n",
            r.host.hostname,
            r.started_at,
            crate::table::render(r)
        ));
    }
    let path = out_dir.join("report.md");
    std::fs::write(&path, md).map_err(io(&path))
}
