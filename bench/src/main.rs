//! `bench`: the command-line front of the harness.

fn main() {
    println!("isolab bench {}", env!("CARGO_PKG_VERSION"));
}
