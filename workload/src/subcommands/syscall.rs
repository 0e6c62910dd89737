//! `syscall`: the cost of a cheap system call. `getpid` is not cached by glibc, does no
//! work in the kernel, and every isolation model implements it, so the figure is the
//! round trip into whatever answers system calls: the host kernel, the guest kernel,
//! or isolab's monitor.

use std::hint::black_box;
use std::time::Instant;

use super::seconds_since;
use crate::result::ResultLine;

/// Times `iterations` calls of `getpid`.
pub fn run(iterations: u64) -> ResultLine {
    let iterations = iterations.max(1);
    let start = Instant::now();
    for _ in 0..iterations {
        black_box(std::process::id());
    }
    let elapsed = seconds_since(start);
    ResultLine::new("syscall")
        .value("ns_per_call", elapsed * 1e9 / iterations as f64, "ns/call")
        .value("iterations", iterations as f64, "count")
        .fact("call", "getpid")
}
