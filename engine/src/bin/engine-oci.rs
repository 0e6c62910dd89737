//! `engine-oci`: the runc-compatible OCI runtime CLI (see `engine-oci --help`).

use clap::Parser;
use engine::cli::oci::{execute, Cli};

fn main() {
    let cli = Cli::parse();
    let code = match execute(&cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            if let Some(log) = &cli.log {
                let line = format!("error: {err:#}\n");
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
            }
            1
        }
    };
    std::process::exit(code);
}
