//! One file per subcommand; each measures one thing and prints `RESULT` lines.

pub mod cpu;
pub mod fileio;
pub mod info;
pub mod lifecycle;
pub mod mem;
pub mod net;
pub mod syscall;

use std::io::Write;

use crate::result::ResultLine;

/// Prints one `RESULT` line and flushes it, so a harness reading a pipe sees it at once.
pub fn emit(line: &ResultLine) {
    let mut out = std::io::stdout().lock();
    // A closed stdout leaves nobody to report to; the exit status still tells.
    let _ = writeln!(out, "{}", line.to_line());
    let _ = out.flush();
}

/// Seconds elapsed since `start`, never zero (rates divide by it).
pub(crate) fn seconds_since(start: std::time::Instant) -> f64 {
    start.elapsed().as_secs_f64().max(1e-9)
}
