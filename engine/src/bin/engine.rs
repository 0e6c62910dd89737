//! `engine`: the docker-like front end (images, run, ps, logs, stop, rm, volumes).

fn main() {
    println!("cgroup mode: {}", engine::cgroups::mode::detect());
}
