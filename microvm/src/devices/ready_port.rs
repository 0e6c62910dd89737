//! The ready port pair of `workload::guest_abi`: a write to `READY_PORT` marks the
//! guest ready (timestamped by the monitor), a write to `EXIT_STATUS_PORT` records the
//! workload's exit status before it powers off.

use std::time::Instant;

use super::bus::{BusDevice, DeviceEvent};

pub use workload::guest_abi::{EXIT_STATUS_PORT, READY_PORT};
/// Ports the device covers, starting at READY_PORT.
pub const PORT_COUNT: u64 = 2;

/// What the guest reported.
#[derive(Debug, Default)]
pub struct ReadyPort {
    ready_at: Option<Instant>,
    exit_status: Option<u8>,
}

impl ReadyPort {
    /// A port that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// When the guest first wrote the ready port.
    pub fn ready_at(&self) -> Option<Instant> {
        self.ready_at
    }

    /// The last exit status the guest wrote.
    pub fn exit_status(&self) -> Option<u8> {
        self.exit_status
    }
}

impl BusDevice for ReadyPort {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> DeviceEvent {
        match offset {
            0 => {
                self.ready_at.get_or_insert_with(Instant::now);
            }
            1 => self.exit_status = data.first().copied(),
            _ => {}
        }
        DeviceEvent::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_ports_are_adjacent_so_one_device_covers_them() {
        assert_eq!(EXIT_STATUS_PORT, READY_PORT + 1);
        assert_eq!(PORT_COUNT, 2);
    }

    #[test]
    fn first_ready_write_is_kept_and_exit_status_recorded() {
        let mut port = ReadyPort::new();
        assert!(port.ready_at().is_none());
        port.write(0, &[1]);
        let first = port.ready_at().unwrap();
        port.write(0, &[1]);
        assert_eq!(port.ready_at(), Some(first));
        port.write(1, &[42]);
        assert_eq!(port.exit_status(), Some(42));
    }
}
