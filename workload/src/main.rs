//! `workload`: the subcommands every isolation model runs (see `workload --help`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if workload::guest_init::is_guest_init() {
        workload::guest_init::run_as_init(|| workload::run(&args));
    }
    std::process::exit(workload::run(&args));
}
