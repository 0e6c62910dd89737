//! `cpu`: a SHA-256 chain. Each step hashes the previous digest, so the work cannot be
//! vectorised away and the final digest is a checksum that must be identical in every
//! isolation model for the same chain length.

use std::time::Instant;

use sha2::{Digest, Sha256};

use super::seconds_since;
use crate::result::ResultLine;

/// The chain's starting input.
const SEED: &[u8] = b"isolab-cpu-v1";

/// Steps done between clock reads in timed mode.
const BATCH: u64 = 4096;

/// The digest after `iterations` steps of the chain.
pub fn chain(iterations: u64) -> [u8; 32] {
    let mut state: [u8; 32] = Sha256::digest(SEED).into();
    for _ in 0..iterations {
        state = Sha256::digest(state).into();
    }
    state
}

/// Runs the chain for `iterations` steps, or for `seconds` when given.
pub fn run(iterations: u64, seconds: Option<f64>) -> ResultLine {
    let start = Instant::now();
    let (done, digest) = match seconds {
        None => (iterations, chain(iterations)),
        Some(limit) => timed_chain(limit, start),
    };
    let elapsed = seconds_since(start);
    let mut line = ResultLine::new("cpu")
        .value("ops_per_s", done as f64 / elapsed, "ops/s")
        .value("iterations", done as f64, "count")
        .value("elapsed_s", elapsed, "s");
    line.checksum = Some(hex::encode(digest));
    line
}

fn timed_chain(limit: f64, start: Instant) -> (u64, [u8; 32]) {
    let mut state: [u8; 32] = Sha256::digest(SEED).into();
    let mut done = 0;
    while seconds_since(start) < limit {
        for _ in 0..BATCH {
            state = Sha256::digest(state).into();
        }
        done += BATCH;
    }
    (done, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_an_independent_implementation() {
        // Python: h = sha256(b"isolab-cpu-v1"); repeat 1000: h = sha256(h)
        assert_eq!(
            hex::encode(chain(1000)),
            "0ac122af89c4794dcaa21e5ddb490d5e7decc46240c75ad05e77ad1c6d43c161"
        );
    }

    #[test]
    fn fixed_count_reports_count_and_checksum() {
        let line = run(1000, None);
        assert_eq!(line.values["iterations"].value, 1000.0);
        assert_eq!(
            line.checksum.as_deref(),
            Some(hex::encode(chain(1000)).as_str())
        );
    }
}
