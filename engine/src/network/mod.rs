//! Container networking: `none` (own namespace, loopback up), `host` (the host's
//! namespace, nothing to do) and `bridge` (a veth pair to the host bridge `isolab0`, an
//! address from `ipam.rs`, a default route and NAT out).
//!
//! `netlink.rs` talks rtnetlink; `bridge.rs`, `veth.rs` and `loopback.rs` make the
//! links; `nat.rs` the iptables rules. The address leases live in one host-wide file
//! (see [`IPAM_DIR`]) because the bridge and its subnet are host-wide.

mod bridge;
pub mod ipam;
mod loopback;
mod nat;
mod netlink;
mod veth;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use bridge::BRIDGE;
pub use ipam::{Ipam, GATEWAY, PREFIX_LEN, SUBNET};
pub use nat::masquerade_installed;
pub use veth::{host_name as veth_host_name, CONTAINER_IFNAME};

use netlink::Netlink;

/// The bundle annotation (`config.json` `annotations`) that picks a container's mode,
/// e.g. `"org.isolab.network": "bridge"`; `engine-oci` reads it, `engine run
/// --network` writes it.
pub const NETWORK_ANNOTATION: &str = "org.isolab.network";

/// Where the bridge's address leases live: a runtime directory, host-wide like the
/// bridge, so engines with different state roots never lease the same address.
pub const IPAM_DIR: &str = "/run/isolab/network";

/// What went wrong setting up or tearing down a container's network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// An unknown `--network` value.
    #[error("unknown network mode {0:?} (expected none, host or bridge)")]
    UnknownMode(String),
    /// The request itself is unusable.
    #[error("invalid network request: {0}")]
    InvalidRequest(String),
    /// The container's network namespace could not be joined.
    #[error("joining the network namespace /proc/{pid}/ns/net: {source}")]
    Namespace { pid: i32, source: std::io::Error },
    /// An rtnetlink request failed.
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        source: std::io::Error,
    },
    /// The host end of the container's veth already exists.
    #[error("veth {0} already exists: a crashed container was not cleaned up (delete --force it)")]
    VethExists(String),
    /// Every address of the bridge subnet is leased.
    #[error("no free address left in {SUBNET}/{PREFIX_LEN}")]
    AddressesExhausted,
    /// The lease file could not be used.
    #[error("address allocator: {what}: {source}")]
    Ipam {
        what: String,
        source: std::io::Error,
    },
    /// Forwarding or an iptables rule could not be set.
    #[error("NAT: {what}: {detail}")]
    Nat { what: String, detail: String },
}

/// How a container is networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own namespace with only loopback.
    None,
    /// The host's namespace.
    Host,
    /// Its own namespace, attached to the host bridge `isolab0`.
    #[default]
    Bridge,
}

impl FromStr for NetworkMode {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            "bridge" => Ok(NetworkMode::Bridge),
            other => Err(NetworkError::UnknownMode(other.to_owned())),
        }
    }
}

impl NetworkMode {
    /// Whether the container's init brings its loopback up itself (`none`): an ioctl in
    /// its own namespace, where the engine would need a thread to enter the namespace and
    /// a netlink socket (~4 ms on the build host). `bridge` opens that socket anyway to
    /// configure the veth, so it brings loopback up through it.
    pub fn loopback_by_init(self) -> bool {
        self == NetworkMode::None
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Bridge => "bridge",
        })
    }
}

/// Which container to network.
#[derive(Debug, Clone)]
pub struct NetworkRequest {
    /// The container's id.
    pub container_id: String,
    /// A process inside the container's network namespace (its init).
    pub netns_pid: i32,
    /// The engine's state root; with the id it names the container's host veth.
    pub state_root: PathBuf,
}

/// What [`setup`] made, kept in the container's state to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkHandle {
    /// The mode set up.
    pub mode: NetworkMode,
    /// The container's id.
    pub container_id: String,
    /// The engine's state root.
    pub state_root: PathBuf,
    /// The host end of the veth pair (bridge mode).
    pub host_veth: Option<String>,
    /// The container's address on the bridge (bridge mode).
    pub address: Option<Ipv4Addr>,
    /// Its default gateway, the bridge (bridge mode).
    pub gateway: Option<Ipv4Addr>,
}

impl NetworkHandle {
    /// The handle of `req` in `mode` with nothing on the host yet (no veth, no address).
    fn plain(mode: NetworkMode, req: &NetworkRequest) -> Self {
        NetworkHandle {
            mode,
            container_id: req.container_id.clone(),
            state_root: req.state_root.clone(),
            host_veth: None,
            address: None,
            gateway: None,
        }
    }

    /// Undoes [`setup`]: removes the veth pair and releases the address; the last
    /// container to leave also removes the bridge and the NAT rules.
    pub fn teardown(self) -> Result<(), NetworkError> {
        match self.mode {
            NetworkMode::Bridge => teardown_leftovers(&self.container_id, &self.state_root),
            NetworkMode::None | NetworkMode::Host => Ok(()),
        }
    }

    /// The container's IP address, where it has one of its own.
    pub fn address(&self) -> Option<IpAddr> {
        self.address.map(IpAddr::V4)
    }
}

/// Networks the container of `req` in `mode`. A failure undoes every step it made.
pub fn setup(mode: NetworkMode, req: &NetworkRequest) -> Result<NetworkHandle, NetworkError> {
    let mut handle = NetworkHandle::plain(mode, req);
    match mode {
        NetworkMode::Host => return Ok(handle),
        NetworkMode::None => {
            check_request(req)?;
            loopback::bring_up(&mut Netlink::open_in_netns_of(req.netns_pid)?)?;
        }
        NetworkMode::Bridge => {
            check_request(req)?;
            let addr = setup_bridge(req, &Ipam::new(IPAM_DIR))?;
            handle.host_veth = Some(veth::host_name(&req.state_root, &req.container_id));
            handle.address = Some(addr);
            handle.gateway = Some(GATEWAY);
        }
    }
    Ok(handle)
}

/// [`setup`] without what the container's init does itself: in `none` mode the init
/// brings its loopback up (one ioctl, see [`NetworkMode::loopback_by_init`]), which costs
/// far less than the netlink socket that `setup` opens in its namespace from a thread.
pub fn setup_host_side(
    mode: NetworkMode,
    req: &NetworkRequest,
) -> Result<NetworkHandle, NetworkError> {
    if !mode.loopback_by_init() {
        return setup(mode, req);
    }
    check_request(req)?;
    Ok(NetworkHandle::plain(mode, req))
}

/// Removes what a bridge-mode container of `container_id` may have left (its veth, its
/// address lease, and the bridge and NAT rules if it was the last): for
/// `delete --force` after a crash. Finding nothing to remove is success.
pub fn teardown_leftovers(container_id: &str, state_root: &Path) -> Result<(), NetworkError> {
    let mut lock = Ipam::new(IPAM_DIR).lock()?;
    let mut host_nl = Netlink::open()?;
    release(
        &mut lock,
        &mut host_nl,
        &owner(state_root, container_id),
        Some(&veth::host_name(state_root, container_id)),
    )
}

/// The lease owner of a container: ids are unique per state root only.
fn owner(state_root: &Path, container_id: &str) -> String {
    format!("{}:{container_id}", state_root.display())
}

/// Refuses requests that would configure the host's own namespace.
fn check_request(req: &NetworkRequest) -> Result<(), NetworkError> {
    if req.container_id.is_empty() {
        return Err(NetworkError::InvalidRequest("empty container id".into()));
    }
    if req.netns_pid <= 0 {
        return Err(NetworkError::InvalidRequest(format!(
            "bad netns pid {}",
            req.netns_pid
        )));
    }
    let ns = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
    let theirs = ns(&format!("/proc/{}/ns/net", req.netns_pid)).map_err(|source| {
        NetworkError::Namespace {
            pid: req.netns_pid,
            source,
        }
    })?;
    if ns("/proc/self/ns/net").ok() == Some(theirs) {
        return Err(NetworkError::InvalidRequest(format!(
            "process {} is in the host's network namespace; none and bridge need their own",
            req.netns_pid
        )));
    }
    Ok(())
}

/// The bridge recipe: bridge (and NAT on first use), lease, veth pair, loopback,
/// address and route in the container. Returns the container's address.
fn setup_bridge(req: &NetworkRequest, ipam: &Ipam) -> Result<Ipv4Addr, NetworkError> {
    let owner = owner(&req.state_root, &req.container_id);
    let host = veth::host_name(&req.state_root, &req.container_id);
    let mut lock = ipam.lock()?;
    let mut host_nl = Netlink::open()?;
    let result = (|| {
        let mut ns_nl = Netlink::open_in_netns_of(req.netns_pid)?;
        let (bridge, created) = bridge::ensure(&mut host_nl)?;
        if created {
            nat::ensure()?;
        }
        let addr = lock.allocate(&owner)?;
        veth::create(&mut host_nl, &host, bridge, req.netns_pid)?;
        loopback::bring_up(&mut ns_nl)?;
        veth::configure_container_end(&mut ns_nl, addr)?;
        lock.save()?;
        Ok(addr)
    })();
    if let Err(err) = &result {
        // A veth that failed with EEXIST belongs to someone else's leftovers: keep it,
        // but undo the rest (the lease, and the bridge and NAT if this call made them).
        let ours = !matches!(err, NetworkError::VethExists(_));
        let _ = release(
            &mut lock,
            &mut host_nl,
            &owner,
            ours.then_some(host.as_str()),
        );
    }
    result
}

/// Deletes the veth (when given), frees the lease and, when no lease is left, the
/// bridge and NAT.
fn release(
    lock: &mut ipam::IpamLock,
    host_nl: &mut Netlink,
    owner: &str,
    host_veth: Option<&str>,
) -> Result<(), NetworkError> {
    if let Some(name) = host_veth {
        veth::remove(host_nl, name)?;
    }
    if lock.release(owner) {
        lock.save()?;
    }
    // The NAT rules come and go with the bridge: a host that never had a bridge
    // container (or has no iptables) is not asked about them.
    if lock.is_empty() && bridge::remove(host_nl)? {
        nat::remove()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_as_the_cli_spells_them() {
        for s in ["none", "host", "bridge"] {
            assert_eq!(s.parse::<NetworkMode>().unwrap().to_string(), s);
        }
        let err = "nat".parse::<NetworkMode>().unwrap_err();
        assert!(
            err.to_string().contains("expected none, host or bridge"),
            "{err}"
        );
    }

    #[test]
    fn host_mode_does_nothing_and_has_no_address() {
        let req = NetworkRequest {
            container_id: "c".into(),
            netns_pid: 1,
            state_root: "/x".into(),
        };
        let h = setup(NetworkMode::Host, &req).unwrap();
        assert_eq!(h.address(), None);
        h.teardown().unwrap();
    }

    #[test]
    fn the_host_namespace_is_refused_for_none_and_bridge() {
        let req = NetworkRequest {
            container_id: "c".into(),
            netns_pid: std::process::id() as i32,
            state_root: "/x".into(),
        };
        for mode in [NetworkMode::None, NetworkMode::Bridge] {
            let err = setup(mode, &req).unwrap_err();
            assert!(
                err.to_string().contains("host's network namespace"),
                "{err}"
            );
        }
        let bad = NetworkRequest {
            netns_pid: 0,
            ..req
        };
        assert!(matches!(
            setup(NetworkMode::None, &bad),
            Err(NetworkError::InvalidRequest(_))
        ));
    }

    #[test]
    fn handles_round_trip_through_json() {
        let h = NetworkHandle {
            mode: NetworkMode::Bridge,
            container_id: "c1".into(),
            state_root: "/var/lib/isolab".into(),
            host_veth: Some("isolab12345678".into()),
            address: Some(Ipv4Addr::new(10, 213, 0, 2)),
            gateway: Some(GATEWAY),
        };
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.contains("\"mode\":\"bridge\""), "{json}");
        assert_eq!(serde_json::from_str::<NetworkHandle>(&json).unwrap(), h);
    }
}
