//! isolab's harness: runs the workload under each isolation model, keeps honest
//! statistics, and turns the results into tables, plots and reports.
//!
//! Layout: `models/` (one file per isolation model), `scenarios/` (one file per
//! scenario), `process/` (spawning, READY, deadlines, host cost from /proc),
//! `runner.rs` (interleaving, warm-ups, saving), `stats.rs`, `host.rs`, `table.rs`,
//! `doctor.rs`, `demo.rs`, `report/` (report.md/html and plots).

pub mod binaries;
pub mod cli;
pub mod clock;
pub mod demo;
pub mod doctor;
pub mod host;
pub mod interrupt;
pub mod models;
pub mod process;
pub mod progress;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenarios;
pub mod stats;
pub mod table;
