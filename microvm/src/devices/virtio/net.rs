//! virtio-net on an existing tap device: frames the guest transmits go to the tap,
//! frames read from the tap fill the guest's receive buffers. Each frame carries the
//! 12-byte `virtio_net_hdr` (no offloads are offered, so it is all zeroes).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use virtio_bindings::virtio_net::VIRTIO_NET_F_MAC;
use virtio_queue::{Queue, QueueT, Reader, Writer};
use vm_memory::GuestMemoryMmap;

use super::{VirtioDevice, VIRTIO_F_VERSION_1};

/// The virtio device ID of a network card.
pub const VIRTIO_ID_NET: u32 = 1;
/// Size of `struct virtio_net_hdr_v1`.
pub const NET_HDR_LEN: usize = 12;
/// Receive queue index.
pub const RX_QUEUE: usize = 0;
/// Transmit queue index.
pub const TX_QUEUE: usize = 1;
/// Entries per queue.
const QUEUE_SIZE: u16 = 256;
/// Largest frame: 64 KiB covers every MTU a tap can have without offloads.
const MAX_FRAME: usize = 65_562;
/// `TUNSETIFF`, `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// A locally administered MAC address (the 02 prefix) for the guest.
const GUEST_MAC: [u8; 6] = [0x02, 0x15, 0x01, 0xab, 0x00, 0x01];

/// Why the tap device could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// No such network interface, or not a tap.
    #[error("no tap device {0:?}; create one first, e.g. `ip tuntap add {0} mode tap && ip link set {0} up`")]
    Missing(String),
    /// A name the kernel cannot take.
    #[error("tap device name {0:?} is empty or longer than 15 bytes")]
    BadName(String),
    /// Opening `/dev/net/tun` or attaching to the device failed.
    #[error("attaching to tap device {name}: {source}")]
    Attach {
        /// The device.
        name: String,
        /// The OS error.
        source: io::Error,
    },
}

/// Opens the existing tap device `name` (non-blocking, without packet info).
pub fn open_tap(name: &str) -> Result<File, TapError> {
    if name.is_empty() || name.len() > 15 || name.contains('/') {
        return Err(TapError::BadName(name.into()));
    }
    // Attaching by name would create a new device if none existed: check first.
    if !Path::new("/sys/class/net")
        .join(name)
        .join("tun_flags")
        .exists()
    {
        return Err(TapError::Missing(name.into()));
    }
    let attach = |source| TapError::Attach {
        name: name.into(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_nonblocking()
        .open("/dev/net/tun")
        .map_err(attach)?;
    let mut ifreq = [0u8; 40];
    ifreq[..name.len()].copy_from_slice(name.as_bytes());
    let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as i16;
    ifreq[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: `file` is an open /dev/net/tun descriptor and `ifreq` is a 40-byte
    // buffer laid out as `struct ifreq` (name, then the flags union), which TUNSETIFF
    // reads and may write back; it outlives the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, ifreq.as_mut_ptr()) };
    if rc < 0 {
        return Err(attach(io::Error::last_os_error()));
    }
    Ok(file)
}

trait NonBlocking {
    fn custom_flags_nonblocking(&mut self) -> &mut Self;
}

impl NonBlocking for OpenOptions {
    fn custom_flags_nonblocking(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

/// A virtio network card over a tap (or, in tests, any non-blocking byte stream).
#[derive(Debug)]
pub struct Net<T> {
    tap: T,
    pending: Option<Vec<u8>>,
}

impl<T: Read + Write + Send> Net<T> {
    /// A card sending to and receiving from `tap`.
    pub fn new(tap: T) -> Self {
        Self { tap, pending: None }
    }

    fn transmit(&mut self, mem: &GuestMemoryMmap, queue: &mut Queue) -> bool {
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            if let Ok(mut reader) = Reader::new(mem, chain) {
                let mut frame = Vec::with_capacity(reader.available_bytes());
                if reader.read_to_end(&mut frame).is_ok() && frame.len() > NET_HDR_LEN {
                    if let Err(err) = self.tap.write_all(&frame[NET_HDR_LEN..]) {
                        log::debug!("virtio-net: dropping a transmitted frame: {err}");
                    }
                }
            }
            used |= queue.add_used(mem, head, 0).is_ok();
        }
        used
    }

    fn next_frame(&mut self) -> Option<Vec<u8>> {
        if let Some(frame) = self.pending.take() {
            return Some(frame);
        }
        let mut buf = vec![0u8; MAX_FRAME];
        match self.tap.read(&mut buf) {
            Ok(n) if n > 0 => {
                buf.truncate(n);
                Some(buf)
            }
            _ => None,
        }
    }

    /// Moves frames from the tap into receive buffers while both exist.
    pub fn receive(&mut self, mem: &GuestMemoryMmap, queue: &mut Queue) -> bool {
        let mut used = false;
        while let Some(frame) = self.next_frame() {
            let Some(chain) = queue.pop_descriptor_chain(mem) else {
                self.pending = Some(frame); // no buffer yet: keep it for the next notify
                break;
            };
            let head = chain.head_index();
            let len = Writer::new(mem, chain).map_or(0, |mut w| write_frame(&mut w, &frame));
            used |= queue.add_used(mem, head, len).is_ok();
        }
        used
    }
}

/// Writes the header (one buffer) and the frame; returns the bytes written.
fn write_frame(writer: &mut Writer<'_>, frame: &[u8]) -> u32 {
    let mut header = [0u8; NET_HDR_LEN];
    header[10] = 1; // num_buffers
    if writer.available_bytes() < NET_HDR_LEN + frame.len() {
        log::debug!("virtio-net: receive buffer too small; frame dropped");
        return 0;
    }
    let ok = writer
        .write_all(&header)
        .and_then(|()| writer.write_all(frame))
        .is_ok();
    if ok {
        (NET_HDR_LEN + frame.len()) as u32
    } else {
        0
    }
}

impl<T: Read + Write + Send> VirtioDevice for Net<T> {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_NET
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | (1 << VIRTIO_NET_F_MAC)
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = usize::try_from(offset)
                .ok()
                .and_then(|o| GUEST_MAC.get(o + i))
                .copied()
                .unwrap_or(0);
        }
    }

    fn process_queue(&mut self, mem: &GuestMemoryMmap, index: usize, queue: &mut Queue) -> bool {
        match index {
            TX_QUEUE => self.transmit(mem, queue),
            RX_QUEUE => self.receive(mem, queue),
            _ => false,
        }
    }

    fn poll(&mut self, mem: &GuestMemoryMmap, index: usize, queue: &mut Queue) -> bool {
        index == RX_QUEUE && self.receive(mem, queue)
    }

    fn polled_queue(&self) -> Option<usize> {
        Some(RX_QUEUE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use virtio_bindings::virtio_ring::VRING_DESC_F_WRITE;
    use virtio_queue::desc::{split::Descriptor, RawDescriptor};
    use virtio_queue::mock::MockSplitQueue;
    use vm_memory::{Bytes, GuestAddress};

    fn setup() -> (GuestMemoryMmap, UnixStream, Net<UnixStream>) {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let (host, guest) = UnixStream::pair().unwrap();
        guest.set_nonblocking(true).unwrap();
        host.set_nonblocking(true).unwrap();
        (mem, host, Net::new(guest))
    }

    fn rx_buffer(mock: &MockSplitQueue<'_, GuestMemoryMmap>) {
        let desc = Descriptor::new(0x9000, 100, VRING_DESC_F_WRITE as u16, 0);
        mock.build_desc_chain(&[RawDescriptor::from(desc)]).unwrap();
    }

    #[test]
    fn transmitted_frames_reach_the_tap_without_the_virtio_header() {
        let (mem, mut host, mut net) = setup();
        let mock = MockSplitQueue::new(&mem, 16);
        mem.write_slice(&[0xee; NET_HDR_LEN], GuestAddress(0x8000))
            .unwrap();
        mem.write_slice(b"frame", GuestAddress(0x8000 + NET_HDR_LEN as u64))
            .unwrap();
        let desc = Descriptor::new(0x8000, NET_HDR_LEN as u32 + 5, 0, 0);
        mock.build_desc_chain(&[RawDescriptor::from(desc)]).unwrap();
        let mut queue: Queue = mock.create_queue().unwrap();
        assert!(net.process_queue(&mem, TX_QUEUE, &mut queue));
        let mut got = [0u8; 16];
        let n = host.read(&mut got).unwrap();
        assert_eq!(&got[..n], b"frame");
        assert_eq!(mock.used().idx().load(), 1);
    }

    #[test]
    fn received_frames_fill_guest_buffers_and_wait_when_there_are_none() {
        let (mem, mut host, mut net) = setup();
        let mock = MockSplitQueue::new(&mem, 16);
        let mut queue: Queue = mock.create_queue().unwrap();
        host.write_all(b"hello").unwrap();
        assert!(!net.poll(&mem, RX_QUEUE, &mut queue), "no buffer yet");
        rx_buffer(&mock);
        assert!(
            net.poll(&mem, RX_QUEUE, &mut queue),
            "the pending frame is delivered"
        );
        let mut header = [0u8; NET_HDR_LEN];
        mem.read_slice(&mut header, GuestAddress(0x9000)).unwrap();
        assert_eq!(header[10], 1, "num_buffers");
        let mut frame = [0u8; 5];
        mem.read_slice(&mut frame, GuestAddress(0x9000 + NET_HDR_LEN as u64))
            .unwrap();
        assert_eq!(&frame, b"hello");
        assert_eq!(mock.used().idx().load(), 1);
    }

    #[test]
    fn config_space_holds_a_locally_administered_mac() {
        let (_, _, net) = setup();
        let mut mac = [0u8; 6];
        net.read_config(0, &mut mac);
        assert_eq!(mac, GUEST_MAC);
        assert_eq!(mac[0] & 0x03, 0x02, "locally administered, unicast");
    }

    #[test]
    fn a_missing_tap_is_named_with_how_to_create_it() {
        let err = open_tap("isolab-absent0").unwrap_err();
        assert!(matches!(err, TapError::Missing(_)));
        assert!(
            err.to_string()
                .contains("ip tuntap add isolab-absent0 mode tap"),
            "{err}"
        );
        assert!(matches!(
            open_tap("a-name-that-is-too-long"),
            Err(TapError::BadName(_))
        ));
        assert!(matches!(open_tap("../lo"), Err(TapError::BadName(_))));
        assert!(
            matches!(open_tap("lo"), Err(TapError::Missing(_))),
            "lo is not a tap"
        );
    }
}
