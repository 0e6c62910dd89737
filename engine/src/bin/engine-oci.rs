//! `engine-oci`: the runc-compatible OCI runtime CLI.

fn main() {
    println!("cgroup mode: {}", engine::cgroups::mode::detect());
}
