//! The veth pair of a bridge-mode container. The container end is created directly
//! inside the container's network namespace (`IFLA_NET_NS_PID` on the peer): moving a
//! veth into a namespace afterwards waits for an RCU grace period (~30 ms on the build
//! host), creating it there costs ~1.6 ms.

use std::net::Ipv4Addr;
use std::path::Path;

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use sha2::{Digest, Sha256};

use super::ipam::{GATEWAY, PREFIX_LEN};
use super::netlink::Netlink;
use super::NetworkError;

/// The container end's name inside its namespace.
pub const CONTAINER_IFNAME: &str = "eth0";

/// The host end's name: `isolab` and 8 hex digits of a hash of the state root and the
/// container id, so it fits IFNAMSIZ, is stable across a crash (teardown finds it
/// again) and differs for equal ids under two state roots.
pub fn host_name(state_root: &Path, container_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(state_root.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(container_id.as_bytes());
    format!("isolab{}", &hex::encode(h.finalize())[..8])
}

/// The `RTM_NEWLINK` message for the pair: host end `host` up on the bridge `bridge`,
/// the peer `eth0` born (down) in the namespace of `netns_pid`. The peer cannot be
/// created up: the kernel opens it before the pair is joined and answers `ENOTCONN`.
pub(crate) fn pair_message(host: &str, bridge: u32, netns_pid: i32) -> LinkMessage {
    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(CONTAINER_IFNAME.to_owned()));
    peer.attributes
        .push(LinkAttribute::NetNsPid(netns_pid as u32));
    let mut msg = LinkMessage::default();
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    msg.attributes.push(LinkAttribute::IfName(host.to_owned()));
    msg.attributes.push(LinkAttribute::Controller(bridge));
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    msg
}

/// Creates the pair; an existing host end means a crashed container was not cleaned.
pub(crate) fn create(
    host_nl: &mut Netlink,
    host: &str,
    bridge: u32,
    netns_pid: i32,
) -> Result<(), NetworkError> {
    let what =
        format!("creating veth {host} with {CONTAINER_IFNAME} in the netns of pid {netns_pid}");
    match host_nl.new_link(pair_message(host, bridge, netns_pid), &what) {
        Err(NetworkError::Netlink { source, .. })
            if source.raw_os_error() == Some(libc::EEXIST) =>
        {
            Err(NetworkError::VethExists(host.to_owned()))
        }
        other => other,
    }
}

/// Sets the container end up with its address and a default route through the bridge.
pub(crate) fn configure_container_end(
    ns_nl: &mut Netlink,
    addr: Ipv4Addr,
) -> Result<(), NetworkError> {
    let index = ns_nl
        .link_index(CONTAINER_IFNAME)?
        .ok_or_else(|| NetworkError::Netlink {
            what: format!("finding {CONTAINER_IFNAME} in the container"),
            source: std::io::Error::from_raw_os_error(libc::ENODEV),
        })?;
    ns_nl.add_address(index, addr, PREFIX_LEN)?;
    ns_nl.set_up(index, &format!("setting {CONTAINER_IFNAME} up"))?;
    ns_nl.add_default_route(GATEWAY)
}

/// Deletes the host end (and so the pair); a missing one is fine.
pub(crate) fn remove(host_nl: &mut Netlink, host: &str) -> Result<(), NetworkError> {
    match host_nl.link_index(host)? {
        Some(index) => host_nl.delete_link(index, &format!("deleting veth {host}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_fit_ifnamsiz_and_depend_on_root_and_id() {
        let a = host_name(Path::new("/var/lib/isolab"), "c1");
        assert!(a.starts_with("isolab") && a.len() == 14, "{a}");
        assert_eq!(a, host_name(Path::new("/var/lib/isolab"), "c1"));
        assert_ne!(a, host_name(Path::new("/tmp/other"), "c1"));
        assert_ne!(a, host_name(Path::new("/var/lib/isolab"), "c2"));
    }

    #[test]
    fn the_peer_is_born_in_the_container_namespace() {
        let msg = pair_message("isolab12345678", 7, 4242);
        assert!(msg.attributes.contains(&LinkAttribute::Controller(7)));
        let peer = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) => Some(p.clone()),
                _ => None,
            }),
            _ => None,
        });
        let peer = peer.expect("a veth peer");
        assert!(peer.attributes.contains(&LinkAttribute::NetNsPid(4242)));
        assert!(peer
            .attributes
            .contains(&LinkAttribute::IfName("eth0".into())));
        assert!(
            !peer.header.flags.contains(LinkFlags::Up),
            "ENOTCONN if created up"
        );
        assert!(msg.header.flags.contains(LinkFlags::Up));
    }
}
