//! `microvm`: the command-line front of the monitor.

fn main() {
    println!("kvm flavor: {}", microvm::kvm_flavor::detect());
}
