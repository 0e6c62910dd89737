//! `workload`: the subcommands every isolation model runs (see `--help`).

fn main() {
    println!("{}", workload::result::READY_LINE);
}
