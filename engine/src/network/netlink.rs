//! A small synchronous rtnetlink client over `netlink-sys`, with the few requests the
//! engine needs (links, addresses, routes), usable in the host's network namespace or
//! in a container's.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::NetworkError;

/// An rtnetlink socket bound to one network namespace.
pub(crate) struct Netlink {
    socket: Socket,
    seq: u32,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("seq", &self.seq).finish()
    }
}

fn nl_err(what: impl Into<String>, source: io::Error) -> NetworkError {
    NetworkError::Netlink {
        what: what.into(),
        source,
    }
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub(crate) fn open() -> Result<Self, NetworkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| nl_err("opening netlink", e))?;
        socket
            .bind_auto()
            .map_err(|e| nl_err("binding netlink", e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| nl_err("connecting netlink", e))?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// A socket in the network namespace of process `pid`. A netlink socket belongs to
    /// the namespace it was made in, so a short-lived thread joins the namespace, makes
    /// it and ends; the caller's threads never change namespace.
    pub(crate) fn open_in_netns_of(pid: i32) -> Result<Self, NetworkError> {
        let path = format!("/proc/{pid}/ns/net");
        let ns = File::open(&path).map_err(|source| NetworkError::Namespace { pid, source })?;
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    NetworkError::Namespace {
                        pid,
                        source: e.into(),
                    }
                })?;
                Netlink::open()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetworkError::Namespace {
                    pid,
                    source: io::Error::other("thread panicked"),
                })
            })
        })
    }

    /// Sends `msg` and collects the replies up to the kernel's ACK (or DONE for a dump).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetworkError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(|e| nl_err(what, e))?;
        self.collect_replies(what)
    }

    fn collect_replies(&mut self, what: &str) -> Result<Vec<RouteNetlinkMessage>, NetworkError> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            buf.clear();
            let n = self.socket.recv(&mut buf, 0).map_err(|e| nl_err(what, e))?;
            let mut offset = 0;
            while offset < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..n])
                    .map_err(|e| nl_err(what, io::Error::other(e.to_string())))?;
                offset += reply.header.length.max(16) as usize;
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Error(e) if e.code.is_none() => return Ok(out),
                    NetlinkPayload::Error(e) => return Err(nl_err(what, e.to_io())),
                    NetlinkPayload::Done(_) => return Ok(out),
                    _ => {}
                }
            }
        }
    }

    /// Sends a change and waits for its ACK.
    fn change(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &str,
    ) -> Result<(), NetworkError> {
        self.request(msg, NLM_F_ACK | flags, what).map(drop)
    }

    /// Creates a link from a complete `RTM_NEWLINK` message; fails if the name exists.
    pub(crate) fn new_link(&mut self, msg: LinkMessage, what: &str) -> Result<(), NetworkError> {
        self.change(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            what,
        )
    }

    /// The index of the link `name`, or `None` when there is none.
    pub(crate) fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetworkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        let what = format!("looking up link {name}");
        match self.request(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK, &what) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(NetworkError::Netlink { source, .. })
                if source.raw_os_error() == Some(libc::ENODEV) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the link `index` up.
    pub(crate) fn set_up(&mut self, index: u32, what: &str) -> Result<(), NetworkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.change(RouteNetlinkMessage::SetLink(msg), 0, what)
    }

    /// Deletes the link `index` (a veth takes its peer with it).
    pub(crate) fn delete_link(&mut self, index: u32, what: &str) -> Result<(), NetworkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.change(RouteNetlinkMessage::DelLink(msg), 0, what)
    }

    /// Adds `addr/prefix_len` to the link `index`; an address already there is fine.
    pub(crate) fn add_address(
        &mut self,
        index: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), NetworkError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix_len;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(addr.into()));
        msg.attributes.push(AddressAttribute::Address(addr.into()));
        let what = format!("adding address {addr}/{prefix_len}");
        match self.change(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &what,
        ) {
            Err(NetworkError::Netlink { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Adds a default route through `gateway` in the main table.
    pub(crate) fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<(), NetworkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        let what = format!("adding default route via {gateway}");
        self.change(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &what,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_of_a_missing_link_is_none_not_an_error() {
        let mut nl = Netlink::open().unwrap();
        assert_eq!(nl.link_index("isolab-none").unwrap(), None);
        assert_eq!(nl.link_index("lo").unwrap(), Some(1));
    }

    #[test]
    fn a_missing_namespace_is_a_clear_error() {
        let err = Netlink::open_in_netns_of(i32::MAX).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("/proc/{}/ns/net", i32::MAX)),
            "{err}"
        );
    }
}
