//! `mem`: first-touch page-fault cost and copy bandwidth on fresh anonymous memory.
//! Buffers come from `calloc`, which glibc serves from fresh `mmap`ed pages for sizes
//! this large without writing them, so the first write to each page is a real fault.

use std::hint::black_box;
use std::time::Instant;

use super::seconds_since;
use crate::result::ResultLine;

const PAGE: usize = 4096;
const MIB: usize = 1 << 20;

/// Measures on a buffer of `size_mib` MiB, copying it `passes` times.
pub fn run(size_mib: u64, passes: u32) -> ResultLine {
    let bytes = (size_mib.max(1) as usize) * MIB;
    let passes = passes.max(1);

    let mut fresh = vec![0u8; bytes];
    let start = Instant::now();
    for offset in (0..bytes).step_by(PAGE) {
        fresh[offset] = 1;
    }
    let fault_ns = seconds_since(start) * 1e9 / (bytes / PAGE) as f64;
    black_box(&fresh);

    let source = fresh;
    let mut destination = vec![0u8; bytes];
    destination.fill(2); // fault it in before timing copies
    let start = Instant::now();
    for _ in 0..passes {
        destination.copy_from_slice(black_box(&source));
        black_box(&mut destination);
    }
    let copy_gb_s = (bytes as f64 * passes as f64) / seconds_since(start) / 1e9;

    ResultLine::new("mem")
        .value("copy_gb_per_s", copy_gb_s, "GB/s")
        .value("fault_ns_per_page", fault_ns, "ns/page")
        .value("size_mib", size_mib as f64, "MiB")
}
