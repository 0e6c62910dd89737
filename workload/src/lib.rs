//! The isolab workload: one static binary whose subcommands measure what each isolation
//! model costs. The library holds the pieces other crates share (the `RESULT` line
//! format, the guest ABI ports); `main.rs` dispatches the subcommands.

pub mod guest_abi;
pub mod result;
