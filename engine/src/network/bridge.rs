//! The host bridge `isolab0` that bridge-mode containers attach to: created with its
//! gateway address on first use, removed when the last container leaves.

use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};

use super::ipam::{GATEWAY, PREFIX_LEN};
use super::netlink::Netlink;
use super::NetworkError;

/// The bridge's name.
pub const BRIDGE: &str = "isolab0";

/// The index of `isolab0`, creating it (up, with the gateway address) if missing;
/// `true` when this call created it.
pub(crate) fn ensure(nl: &mut Netlink) -> Result<(u32, bool), NetworkError> {
    if let Some(index) = nl.link_index(BRIDGE)? {
        return Ok((index, false));
    }
    let mut msg = LinkMessage::default();
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    msg.attributes
        .push(LinkAttribute::IfName(BRIDGE.to_owned()));
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    nl.new_link(msg, &format!("creating bridge {BRIDGE}"))?;
    let index = nl
        .link_index(BRIDGE)?
        .ok_or_else(|| NetworkError::Netlink {
            what: format!("finding bridge {BRIDGE} after creating it"),
            source: std::io::Error::from_raw_os_error(libc::ENODEV),
        })?;
    nl.add_address(index, GATEWAY, PREFIX_LEN)?;
    Ok((index, true))
}

/// Deletes `isolab0` if it exists; `true` when it did.
pub(crate) fn remove(nl: &mut Netlink) -> Result<bool, NetworkError> {
    match nl.link_index(BRIDGE)? {
        Some(index) => nl
            .delete_link(index, &format!("deleting bridge {BRIDGE}"))
            .map(|()| true),
        None => Ok(false),
    }
}
