//! The virtio-mmio transport (version 2): the register window a Linux driver finds
//! through `virtio_mmio.device=` on the command line, the queues' addresses and
//! state, and the interrupt raised through an eventfd wired to the irqchip.

use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use super::VirtioDevice;
use crate::devices::bus::{BusDevice, DeviceEvent};

/// "virt" in little endian.
const MAGIC: u32 = 0x7472_6976;
/// The modern virtio-mmio layout.
const VERSION: u32 = 2;
/// A vendor ID for isolab's devices ("ISOL").
const VENDOR_ID: u32 = 0x4c4f_5349;
/// InterruptStatus bit: a used buffer was added.
const INT_USED_RING: u32 = 1;
/// Status bit the driver sets when it is ready.
const STATUS_DRIVER_OK: u32 = 4;
/// Offset where the device-specific configuration space starts.
const CONFIG_SPACE: u64 = 0x100;

/// A virtio device behind the MMIO transport.
pub struct MmioTransport<D: VirtioDevice> {
    device: D,
    mem: GuestMemoryMmap,
    queues: Vec<Queue>,
    irq: EventFd,
    queue_sel: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    status: u32,
    interrupt_status: u32,
}

impl<D: VirtioDevice> std::fmt::Debug for MmioTransport<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmioTransport")
            .field("type", &self.device.device_type())
            .field("status", &self.status)
            .finish()
    }
}

impl<D: VirtioDevice> MmioTransport<D> {
    /// Wraps `device`, serving its queues from `mem` and raising `irq`.
    pub fn new(device: D, mem: GuestMemoryMmap, irq: EventFd) -> Self {
        let queues = device
            .queue_max_sizes()
            .iter()
            .filter_map(|&max| Queue::new(max).ok())
            .collect();
        Self {
            device,
            mem,
            queues,
            irq,
            queue_sel: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            status: 0,
            interrupt_status: 0,
        }
    }

    /// The device model.
    pub fn device(&self) -> &D {
        &self.device
    }

    fn selected(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn reset(&mut self) {
        self.queues.iter_mut().for_each(QueueT::reset);
        (
            self.queue_sel,
            self.driver_features,
            self.status,
            self.interrupt_status,
        ) = (0, 0, 0, 0);
    }

    fn register(&self, offset: u64) -> u32 {
        let queue = self.queues.get(self.queue_sel as usize);
        let features = self.device.features();
        match offset {
            0x00 => MAGIC,
            0x04 => VERSION,
            0x08 => self.device.device_type(),
            0x0c => VENDOR_ID,
            0x10 => {
                (features >> (32 * self.device_features_sel.min(1))) as u32
                    * u32::from(self.device_features_sel < 2)
            }
            0x34 => queue.map_or(0, |q| u32::from(q.max_size())),
            0x44 => queue.map_or(0, |q| u32::from(q.ready())),
            0x60 => self.interrupt_status,
            0x70 => self.status,
            _ => 0, // ConfigGeneration stays 0: the config never changes under the driver
        }
    }

    fn set_register(&mut self, offset: u64, value: u32) {
        match offset {
            0x14 => self.device_features_sel = value,
            0x20 => self.set_driver_features(value),
            0x24 => self.driver_features_sel = value,
            0x30 => self.queue_sel = value,
            0x38 => self
                .selected()
                .into_iter()
                .for_each(|q| q.set_size(value as u16)),
            0x44 => self
                .selected()
                .into_iter()
                .for_each(|q| q.set_ready(value == 1)),
            0x50 => self.notify(value as usize),
            0x64 => self.interrupt_status &= !value,
            0x70 if value == 0 => self.reset(),
            0x70 => self.status = value,
            0x80..=0xa4 => self.set_queue_address(offset, value),
            _ => log::debug!(
                "virtio-mmio: write {value:#x} to read-only or unknown register {offset:#x}"
            ),
        }
    }

    fn set_driver_features(&mut self, value: u32) {
        let shift = 32 * u64::from(self.driver_features_sel.min(1));
        if self.driver_features_sel < 2 {
            let offered = self.device.features() & (0xffff_ffff << shift);
            self.driver_features |= (u64::from(value) << shift) & offered;
        }
    }

    fn set_queue_address(&mut self, offset: u64, value: u32) {
        let (low, high) = if offset % 8 == 0 {
            (Some(value), None)
        } else {
            (None, Some(value))
        };
        let Some(queue) = self.selected() else { return };
        match offset & !0x7 {
            0x80 => queue.set_desc_table_address(low, high),
            0x90 => queue.set_avail_ring_address(low, high),
            0xa0 => queue.set_used_ring_address(low, high),
            _ => {}
        }
    }

    fn notify(&mut self, index: usize) {
        self.serve(index, false);
    }

    /// Lets the device move host-side input (received frames) into the guest; called
    /// by the device's I/O thread. Returns whether the guest was interrupted.
    pub fn poll(&mut self) -> bool {
        self.device
            .polled_queue()
            .is_some_and(|index| self.serve(index, true))
    }

    fn serve(&mut self, index: usize, polled: bool) -> bool {
        if self.status & STATUS_DRIVER_OK == 0 {
            return false;
        }
        let Some(queue) = self
            .queues
            .get_mut(index)
            .filter(|q| q.ready() && q.is_valid(&self.mem))
        else {
            return false;
        };
        let used = if polled {
            self.device.poll(&self.mem, index, queue)
        } else {
            self.device.process_queue(&self.mem, index, queue)
        };
        if used {
            self.interrupt_status |= INT_USED_RING;
            if let Err(err) = self.irq.write(1) {
                log::warn!("virtio-mmio: raising the interrupt: {err}");
            }
        }
        used
    }
}

impl<D: VirtioDevice> BusDevice for MmioTransport<D> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= CONFIG_SPACE {
            self.device.read_config(offset - CONFIG_SPACE, data);
            return;
        }
        let value = self.register(offset).to_le_bytes();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = value.get(i).copied().unwrap_or(0);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> DeviceEvent {
        if offset < CONFIG_SPACE && data.len() == 4 {
            let value = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            self.set_register(offset, value);
        }
        DeviceEvent::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::block::{Block, SECTOR_SIZE, VIRTIO_ID_BLOCK};
    use std::io::Write;
    use virtio_bindings::virtio_blk::{VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};
    use virtio_bindings::virtio_ring::VRING_DESC_F_WRITE;
    use virtio_queue::desc::{split::Descriptor, RawDescriptor};
    use virtio_queue::mock::MockSplitQueue;
    use vm_memory::{Bytes, GuestAddress};

    struct Fixture {
        transport: MmioTransport<Block>,
        mem: GuestMemoryMmap,
        irq: EventFd,
        _disk: tempfile::NamedTempFile,
    }

    fn fixture() -> Fixture {
        let mut disk = tempfile::NamedTempFile::new().unwrap();
        let mut image = vec![0u8; 8 * SECTOR_SIZE as usize];
        image[SECTOR_SIZE as usize..][..5].copy_from_slice(b"hello");
        disk.write_all(&image).unwrap();
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let block = Block::open(disk.path()).unwrap();
        let transport = MmioTransport::new(block, mem.clone(), irq.try_clone().unwrap());
        Fixture {
            transport,
            mem,
            irq,
            _disk: disk,
        }
    }

    fn write32(t: &mut MmioTransport<Block>, offset: u64, value: u32) {
        t.write(offset, &value.to_le_bytes());
    }

    fn read32(t: &mut MmioTransport<Block>, offset: u64) -> u32 {
        let mut data = [0u8; 4];
        t.read(offset, &mut data);
        u32::from_le_bytes(data)
    }

    /// Programs queue 0 from the mock's layout, as the Linux driver would.
    fn driver_setup(f: &mut Fixture, queue: &MockSplitQueue<'_, GuestMemoryMmap>) {
        let t = &mut f.transport;
        write32(t, 0x70, 1 | 2); // ACKNOWLEDGE | DRIVER
        write32(t, 0x24, 1);
        write32(t, 0x20, 1); // VIRTIO_F_VERSION_1 (bit 32)
        write32(t, 0x30, 0);
        write32(t, 0x38, 16);
        write32(t, 0x80, queue.desc_table_addr().0 as u32);
        write32(t, 0x90, queue.avail_addr().0 as u32);
        write32(t, 0xa0, queue.used_addr().0 as u32);
        write32(t, 0x44, 1);
        write32(t, 0x70, 1 | 2 | 8 | 4); // ... FEATURES_OK | DRIVER_OK
    }

    fn request(
        f: &Fixture,
        queue: &MockSplitQueue<'_, GuestMemoryMmap>,
        kind: u32,
        sector: u64,
        data_flags: u16,
    ) {
        let mut header = [0u8; 16];
        header[..4].copy_from_slice(&kind.to_le_bytes());
        header[8..].copy_from_slice(&sector.to_le_bytes());
        f.mem.write_slice(&header, GuestAddress(0x8000)).unwrap();
        let descs = [
            RawDescriptor::from(Descriptor::new(0x8000, 16, 0, 0)),
            RawDescriptor::from(Descriptor::new(0x9000, 512, data_flags, 0)),
            RawDescriptor::from(Descriptor::new(0xa000, 1, VRING_DESC_F_WRITE as u16, 0)),
        ];
        queue.build_desc_chain(&descs).unwrap();
    }

    #[test]
    fn identity_registers_and_capacity_read_as_a_driver_expects() {
        let mut f = fixture();
        let t = &mut f.transport;
        assert_eq!(
            (read32(t, 0), read32(t, 4), read32(t, 8)),
            (MAGIC, 2, VIRTIO_ID_BLOCK)
        );
        write32(t, 0x14, 1);
        assert_eq!(read32(t, 0x10), 1, "VIRTIO_F_VERSION_1 is offered");
        assert_eq!(read32(t, 0x34), 256);
        assert_eq!(read32(t, CONFIG_SPACE), 8, "capacity in sectors");
    }

    #[test]
    fn a_read_request_copies_the_sector_and_raises_the_interrupt() {
        let mut f = fixture();
        let mem = f.mem.clone();
        let queue = MockSplitQueue::new(&mem, 16);
        driver_setup(&mut f, &queue);
        request(&f, &queue, VIRTIO_BLK_T_IN, 1, VRING_DESC_F_WRITE as u16);
        write32(&mut f.transport, 0x50, 0);
        let mut data = [0u8; 5];
        mem.read_slice(&mut data, GuestAddress(0x9000)).unwrap();
        assert_eq!(&data, b"hello");
        assert_eq!(
            mem.read_obj::<u8>(GuestAddress(0xa000)).unwrap(),
            VIRTIO_BLK_S_OK as u8
        );
        assert_eq!(queue.used().idx().load(), 1);
        assert_eq!(f.irq.read().unwrap(), 1);
        assert_eq!(read32(&mut f.transport, 0x60), INT_USED_RING);
        write32(&mut f.transport, 0x64, INT_USED_RING);
        assert_eq!(read32(&mut f.transport, 0x60), 0);
    }

    #[test]
    fn a_write_request_reaches_the_image_and_out_of_range_is_an_io_error() {
        let mut f = fixture();
        let mem = f.mem.clone();
        let queue = MockSplitQueue::new(&mem, 16);
        driver_setup(&mut f, &queue);
        mem.write_slice(&[0x5a; 512], GuestAddress(0x9000)).unwrap();
        request(&f, &queue, VIRTIO_BLK_T_OUT, 7, 0);
        write32(&mut f.transport, 0x50, 0);
        assert_eq!(
            mem.read_obj::<u8>(GuestAddress(0xa000)).unwrap(),
            VIRTIO_BLK_S_OK as u8
        );
        let image = std::fs::read(f._disk.path()).unwrap();
        assert!(image[7 * 512..].iter().all(|&b| b == 0x5a));
        request(&f, &queue, VIRTIO_BLK_T_OUT, 8, 0);
        write32(&mut f.transport, 0x50, 0);
        assert_eq!(
            mem.read_obj::<u8>(GuestAddress(0xa000)).unwrap(),
            1,
            "VIRTIO_BLK_S_IOERR"
        );
        assert_eq!(
            std::fs::metadata(f._disk.path()).unwrap().len(),
            8 * 512,
            "the image did not grow"
        );
    }

    #[test]
    fn notify_before_driver_ok_and_reset_do_nothing_harmful() {
        let mut f = fixture();
        write32(&mut f.transport, 0x50, 0);
        assert!(f.irq.read().is_err(), "no interrupt before DRIVER_OK");
        write32(&mut f.transport, 0x70, 0xf);
        write32(&mut f.transport, 0x70, 0);
        assert_eq!(read32(&mut f.transport, 0x70), 0);
        write32(&mut f.transport, 0x50, 5); // a queue that does not exist
    }
}
