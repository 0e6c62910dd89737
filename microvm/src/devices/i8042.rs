//! A minimal i8042 keyboard controller: enough for a guest to find it, and its reset
//! command (0xFE on the command port), which the monitor treats as power-off as
//! Firecracker does.

use super::bus::{BusDevice, DeviceEvent};

/// The command byte that pulses the CPU reset line.
pub const CMD_RESET_CPU: u8 = 0xfe;
/// Offset of the command/status register from the data port (0x64 - 0x60).
pub const COMMAND_OFFSET: u64 = 4;
/// The number of ports the device covers (0x60..=0x64).
pub const PORT_COUNT: u64 = 5;

/// The controller; its status always reads "no data, ready for input".
#[derive(Debug, Default)]
pub struct I8042 {
    reset_requested: bool,
}

impl I8042 {
    /// A fresh controller.
    pub fn new() -> Self {
        Self::default()
    }

    /// True once the guest asked for a reset.
    pub fn reset_requested(&self) -> bool {
        self.reset_requested
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> DeviceEvent {
        if offset == COMMAND_OFFSET && data.first() == Some(&CMD_RESET_CPU) {
            self.reset_requested = true;
            return DeviceEvent::Shutdown;
        }
        DeviceEvent::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_command_shuts_the_vm_down() {
        let mut dev = I8042::new();
        assert_eq!(dev.write(COMMAND_OFFSET, &[0xd1]), DeviceEvent::None);
        assert_eq!(
            dev.write(0, &[CMD_RESET_CPU]),
            DeviceEvent::None,
            "data port"
        );
        assert!(!dev.reset_requested());
        assert_eq!(
            dev.write(COMMAND_OFFSET, &[CMD_RESET_CPU]),
            DeviceEvent::Shutdown
        );
        assert!(dev.reset_requested());
    }

    #[test]
    fn status_reads_idle() {
        let mut status = [0xffu8];
        I8042::new().read(COMMAND_OFFSET, &mut status);
        assert_eq!(status, [0]);
    }
}
