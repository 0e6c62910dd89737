//! virtio devices for the Linux guest: the virtio-mmio transport (`mmio.rs`) and the
//! device models behind it (`block.rs`: a raw disk image). Queues are rust-vmm's
//! `virtio-queue`; a device only turns descriptor chains into I/O.

pub mod block;
pub mod mmio;
pub mod net;

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

/// VIRTIO_F_VERSION_1: the modern (non-legacy) interface, required by virtio-mmio v2.
pub const VIRTIO_F_VERSION_1: u64 = 1 << virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;

/// A device model behind a transport.
pub trait VirtioDevice: Send {
    /// The virtio device ID (2 for block).
    fn device_type(&self) -> u32;
    /// The feature bits the device offers.
    fn features(&self) -> u64;
    /// The largest size of each queue; the count is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// Reads the device-specific configuration space at `offset`.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Handles what the driver made available on queue `index`; returns whether any
    /// buffer was used (the driver then needs an interrupt).
    fn process_queue(&mut self, mem: &GuestMemoryMmap, index: usize, queue: &mut Queue) -> bool;
    /// Work that comes from the host side (a frame arrived on the tap), on the queue
    /// `index` it targets; returns whether any buffer was used. Default: none.
    fn poll(&mut self, _mem: &GuestMemoryMmap, _index: usize, _queue: &mut Queue) -> bool {
        false
    }
    /// The queue [`VirtioDevice::poll`] fills, if the device has host-side input.
    fn polled_queue(&self) -> Option<usize> {
        None
    }
}
