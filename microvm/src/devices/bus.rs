//! The port-I/O and MMIO buses: address ranges mapped to device models, or to "traps"
//! that the run loop hands back to its caller (the kernel-less guest's syscall and
//! exception ports). A device access is a plain method call, so devices test without KVM.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What a device asks of the VM after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    /// Nothing: keep running.
    None,
    /// The guest asked to power off or reset (i8042 reset line, ACPI, ...).
    Shutdown,
}

/// A device model on a bus. Offsets are relative to the base it was inserted at.
pub trait BusDevice: Send {
    /// Fills `data` for a guest read at `offset`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Takes a guest write of `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]) -> DeviceEvent;
}

/// A device shared between the bus and whoever inspects it afterwards.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Why a range could not be inserted.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The new range overlaps one already on the bus.
    #[error("bus range {base:#x}+{len:#x} overlaps a device already at {other:#x}")]
    Overlap {
        /// Base of the rejected range.
        base: u64,
        /// Length of the rejected range.
        len: u64,
        /// Base of the range it collides with.
        other: u64,
    },
    /// A zero-length range.
    #[error("bus range at {0:#x} has zero length")]
    Empty(u64),
}

#[derive(Clone)]
enum Slot {
    Device(SharedDevice),
    Trap,
}

/// What happened to an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A device took it; for writes, with the event it raised.
    Handled(DeviceEvent),
    /// The address is a trap: the caller handles it.
    Trap,
    /// Nothing is there (reads return all ones).
    Unmapped,
}

/// One address space (port I/O or MMIO).
#[derive(Clone, Default)]
pub struct Bus {
    ranges: BTreeMap<u64, (u64, Slot)>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<_> = self.ranges.iter().map(|(b, (l, _))| (b, l)).collect();
        f.debug_struct("Bus").field("ranges", &ranges).finish()
    }
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `device` at `base..base + len`.
    pub fn insert(&mut self, base: u64, len: u64, device: SharedDevice) -> Result<(), BusError> {
        self.insert_slot(base, len, Slot::Device(device))
    }

    /// Marks `base..base + len` as a trap the run loop returns to its caller.
    pub fn insert_trap(&mut self, base: u64, len: u64) -> Result<(), BusError> {
        self.insert_slot(base, len, Slot::Trap)
    }

    fn insert_slot(&mut self, base: u64, len: u64, slot: Slot) -> Result<(), BusError> {
        if len == 0 {
            return Err(BusError::Empty(base));
        }
        let end = base.saturating_add(len);
        let clash = self
            .ranges
            .range(..end)
            .next_back()
            .filter(|(b, (l, _))| b.saturating_add(*l) > base);
        if let Some((&other, _)) = clash {
            return Err(BusError::Overlap { base, len, other });
        }
        self.ranges.insert(base, (len, slot));
        Ok(())
    }

    fn find(&self, addr: u64) -> Option<(u64, &Slot)> {
        let (&base, (len, slot)) = self.ranges.range(..=addr).next_back()?;
        (addr - base < *len).then_some((addr - base, slot))
    }

    /// A guest read at `addr`.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> Access {
        match self.find(addr) {
            Some((offset, Slot::Device(dev))) => {
                lock(dev).read(offset, data);
                Access::Handled(DeviceEvent::None)
            }
            Some((_, Slot::Trap)) => Access::Trap,
            None => {
                data.fill(0xff);
                Access::Unmapped
            }
        }
    }

    /// A guest write at `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> Access {
        match self.find(addr) {
            Some((offset, Slot::Device(dev))) => Access::Handled(lock(dev).write(offset, data)),
            Some((_, Slot::Trap)) => Access::Trap,
            None => Access::Unmapped,
        }
    }
}

/// Locks a device; a device that panicked mid-access is still used (its state is plain
/// registers, and the VM is going down anyway).
fn lock(dev: &SharedDevice) -> std::sync::MutexGuard<'_, dyn BusDevice + 'static> {
    dev.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Vec<(u64, Vec<u8>)>);
    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) -> DeviceEvent {
            self.0.push((offset, data.to_vec()));
            DeviceEvent::None
        }
    }

    #[test]
    fn accesses_reach_the_device_at_their_offset() {
        let dev = Arc::new(Mutex::new(Recorder::default()));
        let mut bus = Bus::new();
        bus.insert(0x3f8, 8, dev.clone()).unwrap();
        assert_eq!(bus.write(0x3fb, &[7]), Access::Handled(DeviceEvent::None));
        let mut data = [0u8; 1];
        bus.read(0x3fd, &mut data);
        assert_eq!(data, [5]);
        assert_eq!(dev.lock().unwrap().0, vec![(3, vec![7])]);
    }

    #[test]
    fn unmapped_reads_are_all_ones_and_traps_are_reported() {
        let mut bus = Bus::new();
        bus.insert_trap(0xe0, 1).unwrap();
        let mut data = [0u8; 2];
        assert_eq!(bus.read(0x80, &mut data), Access::Unmapped);
        assert_eq!(data, [0xff, 0xff]);
        assert_eq!(bus.write(0xe0, &[0]), Access::Trap);
        assert_eq!(bus.write(0xe1, &[0]), Access::Unmapped);
    }

    #[test]
    fn overlapping_ranges_are_refused() {
        let mut bus = Bus::new();
        bus.insert_trap(0x10, 0x10).unwrap();
        assert!(matches!(
            bus.insert_trap(0x1f, 1),
            Err(BusError::Overlap { other: 0x10, .. })
        ));
        assert!(matches!(
            bus.insert_trap(0x8, 9),
            Err(BusError::Overlap { .. })
        ));
        assert!(matches!(
            bus.insert_trap(0x30, 0),
            Err(BusError::Empty(0x30))
        ));
        bus.insert_trap(0x20, 1).unwrap();
        bus.insert_trap(0x8, 8).unwrap();
    }
}
