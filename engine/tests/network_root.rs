//! Root tests of `engine::network` on the real kernel, each in network namespaces it
//! creates: loopback in `none` mode, a bridge container reaching a TCP echo peer on the
//! host (what the bench `net` workload does), two containers on one bridge, and cleanup
//! after a crash and after a failed setup. Only `isolab*` links are ever touched.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use engine::network::{
    self, Ipam, NetworkError, NetworkMode, NetworkRequest, BRIDGE, GATEWAY, IPAM_DIR,
};

fn is_root() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        eprintln!("skipped: needs root to create network namespaces and links");
    }
    root
}

/// A process in a network namespace of its own; killed when dropped.
struct Netns(Child);

impl Netns {
    fn new() -> Netns {
        let mut cmd = Command::new("/bin/busybox");
        cmd.args(["sleep", "600"]).stdin(Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and calls only
        // unshare(2), which is async-signal-safe; it touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
        Netns(cmd.spawn().expect("spawning a process in a new netns"))
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Runs `f` on a thread that has joined this namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.pid())).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap()
        })
    }

    /// `ip -o OBJECT` inside the namespace (a child forked there inherits it).
    fn ip(&self, args: &[&str]) -> String {
        self.run(|| {
            let out = Command::new("ip").args(args).output().expect("running ip");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Tears down whatever a container of this id left, however the test ends.
struct Cleanup {
    id: String,
    root: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        network::teardown_leftovers(&self.id, &self.root).expect("teardown_leftovers");
    }
}

fn request(name: &str, ns: &Netns) -> (NetworkRequest, Cleanup) {
    let root = PathBuf::from(format!("/tmp/isolab-nettest-{}", std::process::id()));
    let id = name.to_owned();
    let req = NetworkRequest {
        container_id: id.clone(),
        netns_pid: ns.pid(),
        state_root: root.clone(),
    };
    (req, Cleanup { id, root })
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// With no lease left, the bridge and its NAT rule must be gone (checked under the
/// allocator's lock, so a concurrent container cannot recreate them meanwhile).
fn assert_bridge_gone_if_unused() {
    let lock = Ipam::new(IPAM_DIR).lock().unwrap();
    if lock.is_empty() {
        assert!(
            !link_exists(BRIDGE),
            "{BRIDGE} left behind with no container"
        );
        assert!(
            !network::masquerade_installed().unwrap(),
            "NAT rule left behind"
        );
    }
}

#[test]
fn root_none_mode_has_loopback_up_and_nothing_else() {
    if !is_root() {
        return;
    }
    let ns = Netns::new();
    let (req, _cleanup) = request("none", &ns);
    let handle = network::setup(NetworkMode::None, &req).unwrap();
    assert_eq!(handle.address(), None);
    let echoed = ns.run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        c.write_all(b"x").unwrap();
        let mut buf = [0];
        l.accept().unwrap().0.read_exact(&mut buf).unwrap();
        buf[0]
    });
    assert_eq!(echoed, b'x');
    let links = ns.ip(&["-o", "link"]);
    assert_eq!(links.lines().count(), 1, "only lo: {links}");
    handle.teardown().unwrap();
}

/// A one-shot TCP echo server on the bridge address of the host.
fn echo_peer() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind((GATEWAY, 0)).expect("binding the bridge address");
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        s.write_all(&buf[..n]).unwrap();
    });
    (addr, t)
}

#[test]
fn root_bridge_container_reaches_an_echo_peer_on_the_host() {
    if !is_root() {
        return;
    }
    let ns = Netns::new();
    let (req, _cleanup) = request("bridge", &ns);
    let handle = network::setup(NetworkMode::Bridge, &req).unwrap();
    let addr = match handle.address() {
        Some(std::net::IpAddr::V4(a)) => a,
        other => panic!("a bridge container needs an IPv4 address, got {other:?}"),
    };
    assert_eq!(addr.octets()[..3], [10, 213, 0]);
    assert!(network::masquerade_installed().unwrap());
    let host_veth = handle.host_veth.clone().unwrap();
    assert!(link_exists(&host_veth) && link_exists(BRIDGE));
    let routes = ns.ip(&["-4", "route"]);
    assert!(
        routes.contains(&format!("default via {GATEWAY} dev eth0")),
        "{routes}"
    );

    let (peer, server) = echo_peer();
    let reply = ns.run(move || {
        let mut s = TcpStream::connect(peer).expect("connecting to the host peer");
        s.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        (buf, s.local_addr().unwrap().ip())
    });
    server.join().unwrap();
    assert_eq!(&reply.0, b"ping");
    assert_eq!(
        reply.1,
        std::net::IpAddr::V4(addr),
        "the container talks from its address"
    );

    handle.teardown().unwrap();
    assert!(!link_exists(&host_veth), "{host_veth} left behind");
    assert_eq!(
        ns.ip(&["-o", "link"]).lines().count(),
        1,
        "eth0 goes with its pair"
    );
    assert_bridge_gone_if_unused();
}

#[test]
fn root_two_bridge_containers_get_distinct_addresses_and_reach_each_other() {
    if !is_root() {
        return;
    }
    let (a, b) = (Netns::new(), Netns::new());
    let (req_a, _ca) = request("pair-a", &a);
    let (req_b, _cb) = request("pair-b", &b);
    let ha = network::setup(NetworkMode::Bridge, &req_a).unwrap();
    let hb = network::setup(NetworkMode::Bridge, &req_b).unwrap();
    assert_ne!(ha.address(), hb.address());
    let b_addr = hb.address().unwrap();
    let listener = b.run(|| TcpListener::bind((b_addr, 0)).unwrap());
    let port = listener.local_addr().unwrap().port();
    a.run(move || TcpStream::connect((b_addr, port)).expect("a reaches b over the bridge"));
    listener.accept().unwrap();
    ha.teardown().unwrap();
    assert!(link_exists(BRIDGE), "b still needs the bridge");
    hb.teardown().unwrap();
    assert_bridge_gone_if_unused();
}

#[test]
fn root_leftovers_of_a_crashed_container_are_removed() {
    if !is_root() {
        return;
    }
    let ns = Netns::new();
    let (req, cleanup) = request("crashed", &ns);
    let handle = network::setup(NetworkMode::Bridge, &req).unwrap();
    let host_veth = handle.host_veth.clone().unwrap();
    drop(handle); // the engine died: nobody calls teardown
    network::teardown_leftovers(&req.container_id, &req.state_root).unwrap();
    assert!(!link_exists(&host_veth));
    let owner = format!("{}:{}", req.state_root.display(), req.container_id);
    let lock = Ipam::new(IPAM_DIR).lock().unwrap();
    assert!(
        !lock.leases().contains_key(&owner),
        "lease kept: {:?}",
        lock.leases()
    );
    drop(lock);
    // Running it again finds nothing and is still a success.
    network::teardown_leftovers(&req.container_id, &req.state_root).unwrap();
    drop(cleanup);
    assert_bridge_gone_if_unused();
}

#[test]
fn root_failed_bridge_setup_leaves_no_lease_link_or_bridge() {
    if !is_root() {
        return;
    }
    let ns = Netns::new();
    let (req, _cleanup) = request("taken", &ns);
    // Someone else's link already holds the veth name: the pair cannot be made.
    let name = network::veth_host_name(&req.state_root, &req.container_id);
    let status = Command::new("ip")
        .args([
            "link",
            "add",
            &name,
            "type",
            "veth",
            "peer",
            "name",
            "isolabtestpeer",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let err = network::setup(NetworkMode::Bridge, &req).unwrap_err();
    assert!(
        matches!(err, NetworkError::VethExists(ref n) if *n == name),
        "{err}"
    );
    assert!(link_exists(&name), "a link that is not ours stays");
    Command::new("ip")
        .args(["link", "del", &name])
        .status()
        .unwrap();
    assert_eq!(
        ns.ip(&["-o", "link"]).lines().count(),
        1,
        "no eth0 was left inside"
    );
    assert_bridge_gone_if_unused();
}

#[test]
fn root_a_dead_namespace_is_a_clear_error() {
    if !is_root() {
        return;
    }
    let mut ns = Netns::new();
    let pid = ns.pid();
    ns.0.kill().unwrap();
    ns.0.wait().unwrap();
    let req = NetworkRequest {
        container_id: "gone".into(),
        netns_pid: pid,
        state_root: "/tmp/isolab-nettest-gone".into(),
    };
    let err = network::setup(NetworkMode::Bridge, &req).unwrap_err();
    assert!(
        err.to_string().contains(&format!("/proc/{pid}/ns/net")),
        "{err}"
    );
}
