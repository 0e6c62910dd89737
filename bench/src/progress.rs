//! The progress bar on stderr while a run measures (hidden when stderr is not a
//! terminal, so logs and CI output stay clean).

use indicatif::{ProgressBar, ProgressStyle};

/// Progress over all samples of a run.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `total` samples (warm-ups included).
    pub fn new(total: u64) -> Self {
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} samples  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Self { bar }
    }

    /// Shows what is being measured now.
    pub fn start(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }

    /// Counts one sample done.
    pub fn done(&self) {
        self.bar.inc(1);
    }

    /// Prints a line above the bar.
    pub fn note(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
