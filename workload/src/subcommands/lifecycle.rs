//! `ready` and `idle`: the smallest possible instances, for startup, teardown, memory
//! and density figures.

use std::io::Write;
use std::time::Duration;

use crate::result::READY_LINE;

/// Prints `READY`.
pub fn ready() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{READY_LINE}");
    let _ = out.flush();
}

/// Prints `READY`, then sleeps until killed, doing nothing that would add memory.
pub fn idle() -> ! {
    ready();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
