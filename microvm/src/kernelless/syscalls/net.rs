//! TCP and UDP over IPv4 and IPv6, backed by host sockets in the monitor's network
//! namespace. Other families (Unix sockets, netlink, packet) are refused: a Unix socket
//! could name host paths outside the rootfs. Socket options are an allow-list of plain
//! values, because an option such as `SO_ATTACH_FILTER` carries a pointer the host
//! kernel would follow.

use syscalls::{Errno, Sysno};

use super::host;
use super::io::host_iovecs;
use super::user_memory::UserMemory;
use super::{SysResult, SyscallHandler};

/// Largest socket address accepted (`sizeof(struct sockaddr_storage)`).
const SOCKADDR_MAX: u64 = 128;
/// Largest socket option value accepted.
const OPTVAL_MAX: u64 = 256;
/// Size of the x86_64 `struct msghdr`.
const MSGHDR_SIZE: usize = 56;
/// The `send`/`recv` flags passed on to the host.
const MSG_FLAGS: u64 = (libc::MSG_DONTWAIT
    | libc::MSG_NOSIGNAL
    | libc::MSG_MORE
    | libc::MSG_PEEK
    | libc::MSG_WAITALL
    | libc::MSG_TRUNC
    | libc::MSG_OOB
    | libc::MSG_EOR) as u64;

/// Socket options the guest may set or read: (level, name).
const ALLOWED_OPTIONS: &[(i32, i32)] = &[
    (libc::SOL_SOCKET, libc::SO_REUSEADDR),
    (libc::SOL_SOCKET, libc::SO_REUSEPORT),
    (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
    (libc::SOL_SOCKET, libc::SO_RCVBUF),
    (libc::SOL_SOCKET, libc::SO_SNDBUF),
    (libc::SOL_SOCKET, libc::SO_LINGER),
    (libc::SOL_SOCKET, libc::SO_RCVTIMEO),
    (libc::SOL_SOCKET, libc::SO_SNDTIMEO),
    (libc::SOL_SOCKET, libc::SO_BROADCAST),
    (libc::SOL_SOCKET, libc::SO_ERROR),
    (libc::SOL_SOCKET, libc::SO_TYPE),
    (libc::SOL_SOCKET, libc::SO_DOMAIN),
    (libc::SOL_SOCKET, libc::SO_ACCEPTCONN),
    (libc::SOL_SOCKET, libc::SO_RCVLOWAT),
    (libc::IPPROTO_TCP, libc::TCP_NODELAY),
    (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
    (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
    (libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
    (libc::IPPROTO_TCP, libc::TCP_QUICKACK),
    (libc::IPPROTO_TCP, libc::TCP_INFO),
    (libc::IPPROTO_IP, libc::IP_TTL),
    (libc::IPPROTO_IP, libc::IP_TOS),
    (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
];

fn check_option(level: u64, name: u64) -> Result<(i32, i32), Errno> {
    let opt = (level as i32, name as i32);
    ALLOWED_OPTIONS
        .contains(&opt)
        .then_some(opt)
        .ok_or(Errno::ENOPROTOOPT)
}

/// Copies a guest socket address to the host (none when `addr` is NULL).
fn read_sockaddr(um: &UserMemory<'_>, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    if addr == 0 {
        return Ok(Vec::new());
    }
    if len > SOCKADDR_MAX {
        return Err(Errno::EINVAL);
    }
    um.read_vec(addr, len as usize)
}

/// Writes an address into a guest `(sockaddr *, socklen_t *)` pair, truncating to the
/// guest's buffer and reporting the full length, as Linux does.
fn write_sockaddr(um: &UserMemory<'_>, addr: u64, lenp: u64, bytes: &[u8]) -> Result<(), Errno> {
    if addr == 0 {
        return Ok(());
    }
    let room = um.read_u32(lenp)?;
    if (room as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    um.write(addr, &bytes[..bytes.len().min(room as usize)])?;
    um.write_u32(lenp, bytes.len() as u32)
}

/// One guest `struct msghdr`: (name, namelen, iov, iovlen, controllen).
fn read_msghdr(um: &UserMemory<'_>, msg: u64) -> Result<[u64; 5], Errno> {
    let mut b = [0u8; MSGHDR_SIZE];
    um.read(msg, &mut b)?;
    let word = |off: usize| u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"));
    Ok([word(0), word(8) & 0xffff_ffff, word(16), word(24), word(40)])
}

impl SyscallHandler {
    /// `socket(2)`: AF_INET or AF_INET6, stream or datagram.
    pub(super) fn socket(&mut self, domain: u64, ty: u64, protocol: u64) -> SysResult {
        if !matches!(domain as i32, libc::AF_INET | libc::AF_INET6) {
            return Err(Errno::EAFNOSUPPORT);
        }
        let flags = (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) as u64;
        let base = ty & !flags;
        if !matches!(base as i32, libc::SOCK_STREAM | libc::SOCK_DGRAM) {
            return Err(Errno::EINVAL);
        }
        let fd = host::socket(
            domain as i32,
            ty as i32 & !libc::SOCK_CLOEXEC,
            protocol as i32,
        )?;
        let cloexec = ty & libc::SOCK_CLOEXEC as u64 != 0;
        self.fds.insert(fd, cloexec).map(u64::from)
    }

    /// `connect(2)` or `bind(2)`.
    pub(super) fn connect_or_bind(
        &mut self,
        um: &UserMemory<'_>,
        nr: Sysno,
        fd: u64,
        addr: u64,
        len: u64,
    ) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        if addr == 0 {
            return Err(Errno::EFAULT);
        }
        let addr = read_sockaddr(um, addr, len)?;
        host::sockaddr_call(nr, host, &addr).map(|_| 0)
    }

    /// `accept4(2)` (and `accept`).
    pub(super) fn accept4(
        &mut self,
        um: &UserMemory<'_>,
        fd: u64,
        addr: u64,
        lenp: u64,
        flags: u64,
    ) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        let allowed = (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) as u64;
        if flags & !allowed != 0 {
            return Err(Errno::EINVAL);
        }
        if addr != 0 {
            um.check(lenp, 4)?;
        }
        let (new, peer) = host::accept4(host, flags as i32 & libc::SOCK_NONBLOCK)?;
        let new = self
            .fds
            .insert(new, flags & libc::SOCK_CLOEXEC as u64 != 0)?;
        if let Err(e) = write_sockaddr(um, addr, lenp, &peer) {
            self.fds.remove(new.into())?;
            return Err(e);
        }
        Ok(u64::from(new))
    }

    /// `getsockname(2)` or `getpeername(2)`.
    pub(super) fn socket_name(
        &mut self,
        um: &UserMemory<'_>,
        nr: Sysno,
        fd: u64,
        addr: u64,
        lenp: u64,
    ) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        let name = host::socket_name(nr, host)?;
        if addr == 0 {
            return Err(Errno::EFAULT);
        }
        write_sockaddr(um, addr, lenp, &name).map(|()| 0)
    }

    /// `setsockopt(2)` for the allowed options.
    pub(super) fn setsockopt(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let host = self.fds.host_fd(a[0])?;
        let (level, name) = check_option(a[1], a[2])?;
        if a[4] > OPTVAL_MAX {
            return Err(Errno::EINVAL);
        }
        let value = um.read_vec(a[3], a[4] as usize)?;
        host::setsockopt(host, level, name, &value).map(|_| 0)
    }

    /// `getsockopt(2)` for the allowed options.
    pub(super) fn getsockopt(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let host = self.fds.host_fd(a[0])?;
        let (level, name) = check_option(a[1], a[2])?;
        let (valp, lenp) = (a[3], a[4]);
        let room = um.read_u32(lenp)?;
        if (room as i32) < 0 {
            return Err(Errno::EINVAL);
        }
        let value = host::getsockopt(host, level, name, (room as usize).min(OPTVAL_MAX as usize))?;
        um.write(valp, &value)?;
        um.write_u32(lenp, value.len() as u32).map(|()| 0)
    }

    /// `sendto(2)` (and `send`).
    pub(super) fn sendto(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let host = self.fds.host_fd(a[0])?;
        let iov = host_iovecs(um, &[(a[1], a[2])])?;
        let addr = read_sockaddr(um, a[4], a[5])?;
        let flags = a[3] & MSG_FLAGS;
        let sent = host::sendmsg(host, &iov, &addr, flags as i32 | libc::MSG_NOSIGNAL);
        self.after_send(sent, flags)
    }

    /// `recvfrom(2)` (and `recv`).
    pub(super) fn recvfrom(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let host = self.fds.host_fd(a[0])?;
        let iov = host_iovecs(um, &[(a[1], a[2])])?;
        if a[4] != 0 {
            um.check(a[5], 4)?;
        }
        let (n, from, _) = host::recvmsg(host, &iov, (a[3] & MSG_FLAGS) as i32)?;
        write_sockaddr(um, a[4], a[5], &from)?;
        Ok(n as u64)
    }

    /// `sendmsg(2)` without control messages.
    pub(super) fn sendmsg(
        &mut self,
        um: &UserMemory<'_>,
        fd: u64,
        msg: u64,
        flags: u64,
    ) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        let [name, namelen, iov, iovlen, controllen] = read_msghdr(um, msg)?;
        if controllen != 0 {
            return Err(Errno::EINVAL);
        }
        let addr = read_sockaddr(um, name, namelen)?;
        let bufs = super::io::guest_iovecs(um, iov, iovlen)?;
        let iov = host_iovecs(um, &bufs)?;
        let flags = flags & MSG_FLAGS;
        let sent = host::sendmsg(host, &iov, &addr, flags as i32 | libc::MSG_NOSIGNAL);
        self.after_send(sent, flags)
    }

    /// `recvmsg(2)`; no control messages are ever returned.
    pub(super) fn recvmsg(
        &mut self,
        um: &UserMemory<'_>,
        fd: u64,
        msg: u64,
        flags: u64,
    ) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        let [name, namelen, iov, iovlen, _] = read_msghdr(um, msg)?;
        let bufs = super::io::guest_iovecs(um, iov, iovlen)?;
        let iov = host_iovecs(um, &bufs)?;
        let (n, from, msg_flags) = host::recvmsg(host, &iov, (flags & MSG_FLAGS) as i32)?;
        if name != 0 {
            um.write(name, &from[..from.len().min(namelen as usize)])?;
        }
        um.write_u32(msg + 8, from.len() as u32)?;
        um.write_u64(msg + 40, 0)?;
        um.write_u32(msg + 48, msg_flags as u32)?;
        Ok(n as u64)
    }

    /// A send to a closed connection raises SIGPIPE under Linux unless `MSG_NOSIGNAL`.
    fn after_send(&mut self, sent: Result<usize, Errno>, flags: u64) -> SysResult {
        if sent == Err(Errno::EPIPE) && flags & libc::MSG_NOSIGNAL as u64 == 0 {
            self.kill(0, libc::SIGPIPE as u64)?;
        }
        sent.map(|n| n as u64)
    }
}

#[cfg(test)]
mod tests {
    use crate::kernelless::syscalls::tests::{err, Guest, SCRATCH};
    use syscalls::{Errno, Sysno};

    const ADDR: u64 = SCRATCH + 0x100;
    const LEN: u64 = SCRATCH + 0x200;
    const BUF: u64 = SCRATCH + 0x1000;

    fn inet(g: &Guest, at: u64, port: u16) {
        let mut sa = [0u8; 16];
        sa[..2].copy_from_slice(&(libc::AF_INET as u16).to_le_bytes());
        sa[2..4].copy_from_slice(&port.to_be_bytes());
        sa[4..8].copy_from_slice(&[127, 0, 0, 1]);
        g.um().write(at, &sa).unwrap();
    }

    fn stream(g: &mut Guest) -> u64 {
        let fd = g.call(
            Sysno::socket,
            &[libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0],
        );
        assert!(fd >= 0, "socket: {fd}");
        fd as u64
    }

    /// A listening socket on 127.0.0.1 and its port.
    fn listener(g: &mut Guest) -> (u64, u16) {
        let server = stream(g);
        g.um().write_u32(SCRATCH, 1).unwrap();
        let (sol, reuse) = (libc::SOL_SOCKET as u64, libc::SO_REUSEADDR as u64);
        assert_eq!(
            g.call(Sysno::setsockopt, &[server, sol, reuse, SCRATCH, 4]),
            0
        );
        inet(g, ADDR, 0);
        assert_eq!(g.call(Sysno::bind, &[server, ADDR, 16]), 0);
        assert_eq!(g.call(Sysno::listen, &[server, 8]), 0);
        g.um().write_u32(LEN, 16).unwrap();
        assert_eq!(g.call(Sysno::getsockname, &[server, ADDR, LEN]), 0);
        let port = u16::from_be_bytes(g.um().read_vec(ADDR + 2, 2).unwrap().try_into().unwrap());
        assert_ne!(port, 0);
        (server, port)
    }

    #[test]
    fn tcp_over_loopback_connects_accepts_and_carries_data() {
        let mut g = Guest::new();
        let (server, port) = listener(&mut g);
        let client = stream(&mut g);
        inet(&g, ADDR, port);
        assert_eq!(g.call(Sysno::connect, &[client, ADDR, 16]), 0);
        g.um().write_u32(LEN, 16).unwrap();
        let conn = g.call(
            Sysno::accept4,
            &[server, ADDR, LEN, libc::SOCK_CLOEXEC as u64],
        );
        assert!(conn > 0, "accept: {conn}");
        let conn = conn as u64;
        assert_eq!(
            g.um().read_vec(ADDR + 4, 4).unwrap(),
            [127, 0, 0, 1],
            "peer address"
        );
        g.um().write(BUF, b"ping").unwrap();
        assert_eq!(g.call(Sysno::sendto, &[client, BUF, 4, 0, 0, 0]), 4);
        assert_eq!(
            g.call(Sysno::recvfrom, &[conn, BUF + 0x100, 64, 0, 0, 0]),
            4
        );
        assert_eq!(g.um().read_vec(BUF + 0x100, 4).unwrap(), b"ping");
        // The guest's plain write/read work on sockets too.
        assert_eq!(g.call(Sysno::write, &[conn, BUF, 4]), 4);
        assert_eq!(g.call(Sysno::read, &[client, BUF + 0x200, 64]), 4);
        g.um().write_u32(LEN, 16).unwrap();
        assert_eq!(g.call(Sysno::getpeername, &[client, ADDR, LEN]), 0);
        assert_eq!(g.um().read_vec(ADDR + 2, 2).unwrap(), port.to_be_bytes());
        assert_eq!(g.call(Sysno::shutdown, &[client, libc::SHUT_WR as u64]), 0);
        assert_eq!(
            g.call(Sysno::read, &[conn, BUF, 64]),
            0,
            "EOF after shutdown"
        );
    }

    #[test]
    fn sendmsg_and_recvmsg_gather_and_scatter() {
        let mut g = Guest::new();
        let (server, port) = listener(&mut g);
        let client = stream(&mut g);
        inet(&g, ADDR, port);
        assert_eq!(g.call(Sysno::connect, &[client, ADDR, 16]), 0);
        let conn = g.call(Sysno::accept, &[server, 0, 0]) as u64;
        g.um().write(BUF, b"abcdef").unwrap();
        let (iov, msg) = (SCRATCH + 0x400, SCRATCH + 0x500);
        for (i, (base, len)) in [(BUF, 2u64), (BUF + 2, 4)].iter().enumerate() {
            g.um().write_u64(iov + i as u64 * 16, *base).unwrap();
            g.um().write_u64(iov + i as u64 * 16 + 8, *len).unwrap();
        }
        g.um().zero(msg, 56).unwrap();
        g.um().write_u64(msg + 16, iov).unwrap();
        g.um().write_u64(msg + 24, 2).unwrap();
        assert_eq!(g.call(Sysno::sendmsg, &[client, msg, 0]), 6);
        g.um().write_u64(iov, BUF + 0x100).unwrap();
        g.um().write_u64(iov + 16, BUF + 0x200).unwrap();
        assert_eq!(
            g.call(Sysno::recvmsg, &[conn, msg, libc::MSG_WAITALL as u64]),
            6
        );
        assert_eq!(g.um().read_vec(BUF + 0x100, 2).unwrap(), b"ab");
        assert_eq!(g.um().read_vec(BUF + 0x200, 4).unwrap(), b"cdef");
        g.um().write_u64(msg + 40, 16).unwrap();
        assert_eq!(
            g.call(Sysno::sendmsg, &[client, msg, 0]),
            err(Errno::EINVAL),
            "no control data"
        );
    }

    #[test]
    fn other_families_options_and_bad_addresses_are_refused() {
        let mut g = Guest::new();
        let unix = libc::AF_UNIX as u64;
        assert_eq!(
            g.call(Sysno::socket, &[unix, libc::SOCK_STREAM as u64, 0]),
            err(Errno::EAFNOSUPPORT)
        );
        let raw = libc::SOCK_RAW as u64;
        assert_eq!(
            g.call(Sysno::socket, &[libc::AF_INET as u64, raw, 0]),
            err(Errno::EINVAL)
        );
        let s = stream(&mut g);
        let filter = libc::SO_ATTACH_FILTER as u64;
        assert_eq!(
            g.call(
                Sysno::setsockopt,
                &[s, libc::SOL_SOCKET as u64, filter, SCRATCH, 16]
            ),
            err(Errno::ENOPROTOOPT)
        );
        assert_eq!(g.call(Sysno::connect, &[s, 0x10, 16]), err(Errno::EFAULT));
        assert_eq!(g.call(Sysno::connect, &[s, ADDR, 4096]), err(Errno::EINVAL));
        g.um().write_u32(LEN, 4).unwrap();
        let ty = libc::SO_TYPE as u64;
        assert_eq!(
            g.call(
                Sysno::getsockopt,
                &[s, libc::SOL_SOCKET as u64, ty, SCRATCH, LEN]
            ),
            0
        );
        assert_eq!(g.um().read_u32(SCRATCH).unwrap(), libc::SOCK_STREAM as u32);
        assert_eq!(g.call(Sysno::listen, &[99, 1]), err(Errno::EBADF));
    }
}
