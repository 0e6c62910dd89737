//! isolab's harness: runs the workload under each isolation model, keeps honest
//! statistics, and turns the results into tables, plots and reports.

pub mod report;
pub mod results;
