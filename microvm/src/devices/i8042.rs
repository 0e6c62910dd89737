//! A minimal i8042 keyboard controller: the controller commands a Linux guest's driver
//! sends while it probes (read and write the command byte, self-tests, port enables),
//! and the reset command (0xFE on the command port), which the monitor treats as
//! power-off as Firecracker does. No keyboard sits behind it: bytes for the keyboard
//! are dropped.
//!
//! The driver polls the status register for every answer. A controller that never
//! answers "read the command byte" costs a boot the driver's timeouts (2 of the 27
//! seconds of a nested-virtualization boot) before it reports "Can't read CTR".

use super::bus::{BusDevice, DeviceEvent};

/// The command byte that pulses the CPU reset line.
pub const CMD_RESET_CPU: u8 = 0xfe;
/// Offset of the command/status register from the data port (0x64 - 0x60).
pub const COMMAND_OFFSET: u64 = 4;
/// The number of ports the device covers (0x60..=0x64).
pub const PORT_COUNT: u64 = 5;

const CMD_READ_CTR: u8 = 0x20;
const CMD_WRITE_CTR: u8 = 0x60;
const CMD_DISABLE_AUX: u8 = 0xa7;
const CMD_ENABLE_AUX: u8 = 0xa8;
const CMD_SELF_TEST: u8 = 0xaa;
const CMD_TEST_KBD_PORT: u8 = 0xab;
const CMD_DISABLE_KBD: u8 = 0xad;
const CMD_ENABLE_KBD: u8 = 0xae;
const CMD_READ_OUTPUT_PORT: u8 = 0xd0;
const CMD_WRITE_OUTPUT_PORT: u8 = 0xd1;
/// The self-test's "passed" answer.
const SELF_TEST_PASSED: u8 = 0x55;
/// A port test's "no fault" answer.
const PORT_TEST_PASSED: u8 = 0x00;
/// Status: the output buffer holds a byte for the guest.
const STATUS_OUTPUT_FULL: u8 = 0x01;
/// Status: the system flag (set once the self-test passed at power-on).
const STATUS_SYSTEM: u8 = 0x04;
/// Status: the keyboard is not inhibited by the key lock (clear: "Keylock active").
const STATUS_UNLOCKED: u8 = 0x10;
/// Status: the last write went to the command port.
const STATUS_LAST_WAS_COMMAND: u8 = 0x08;
/// Command byte: keyboard interrupt on, system flag, translation on.
const CTR_DEFAULT: u8 = 0x45;
/// Command byte: the keyboard or aux clock disabled.
const CTR_KBD_DISABLED: u8 = 0x10;
const CTR_AUX_DISABLED: u8 = 0x20;
/// Output port: the CPU reset line is not asserted (bit 0), A20 on (bit 1).
const OUTPUT_PORT_DEFAULT: u8 = 0x03;

/// What the next byte written to the data port is for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum DataTarget {
    /// The keyboard (absent: dropped).
    #[default]
    Keyboard,
    /// The command byte, after `CMD_WRITE_CTR`.
    CommandByte,
    /// The output port, after `CMD_WRITE_OUTPUT_PORT`.
    OutputPort,
}

/// The controller.
#[derive(Debug)]
pub struct I8042 {
    ctr: u8,
    output_port: u8,
    output: Option<u8>,
    last_was_command: bool,
    data_target: DataTarget,
    reset_requested: bool,
}

impl Default for I8042 {
    fn default() -> Self {
        Self {
            ctr: CTR_DEFAULT,
            output_port: OUTPUT_PORT_DEFAULT,
            output: None,
            last_was_command: false,
            data_target: DataTarget::default(),
            reset_requested: false,
        }
    }
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

    fn status(&self) -> u8 {
        let mut status = STATUS_SYSTEM | STATUS_UNLOCKED;
        if self.output.is_some() {
            status |= STATUS_OUTPUT_FULL;
        }
        if self.last_was_command {
            status |= STATUS_LAST_WAS_COMMAND;
        }
        status
    }

    fn command(&mut self, command: u8) -> DeviceEvent {
        self.last_was_command = true;
        self.data_target = DataTarget::Keyboard;
        match command {
            CMD_RESET_CPU => {
                self.reset_requested = true;
                return DeviceEvent::Shutdown;
            }
            CMD_READ_CTR => self.output = Some(self.ctr),
            CMD_WRITE_CTR => self.data_target = DataTarget::CommandByte,
            CMD_READ_OUTPUT_PORT => self.output = Some(self.output_port),
            CMD_WRITE_OUTPUT_PORT => self.data_target = DataTarget::OutputPort,
            CMD_SELF_TEST => self.output = Some(SELF_TEST_PASSED),
            CMD_TEST_KBD_PORT => self.output = Some(PORT_TEST_PASSED),
            CMD_DISABLE_KBD => self.ctr |= CTR_KBD_DISABLED,
            CMD_ENABLE_KBD => self.ctr &= !CTR_KBD_DISABLED,
            CMD_DISABLE_AUX => self.ctr |= CTR_AUX_DISABLED,
            CMD_ENABLE_AUX => self.ctr &= !CTR_AUX_DISABLED,
            // Other commands (the aux port's, the multiplexer's) get no answer, as
            // from a controller without them.
            _ => {}
        }
        DeviceEvent::None
    }

    fn data(&mut self, value: u8) -> DeviceEvent {
        self.last_was_command = false;
        match std::mem::take(&mut self.data_target) {
            DataTarget::CommandByte => self.ctr = value,
            // Clearing bit 0 asserts the CPU reset line: a reset.
            DataTarget::OutputPort if value & 1 == 0 => {
                self.reset_requested = true;
                return DeviceEvent::Shutdown;
            }
            DataTarget::OutputPort => self.output_port = value,
            DataTarget::Keyboard => {}
        }
        DeviceEvent::None
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match offset {
            COMMAND_OFFSET => self.status(),
            0 => self.output.take().unwrap_or(0),
            _ => 0,
        };
        data.fill(value);
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> DeviceEvent {
        match (offset, data.first()) {
            (COMMAND_OFFSET, Some(&command)) => self.command(command),
            (0, Some(&value)) => self.data(value),
            _ => DeviceEvent::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(dev: &mut I8042) -> u8 {
        let mut status = [0];
        dev.read(COMMAND_OFFSET, &mut status);
        status[0]
    }

    fn data(dev: &mut I8042) -> u8 {
        let mut data = [0xff];
        dev.read(0, &mut data);
        data[0]
    }

    #[test]
    fn reset_command_shuts_the_vm_down() {
        let mut dev = I8042::new();
        assert_eq!(dev.write(COMMAND_OFFSET, &[0xd3]), DeviceEvent::None);
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
    fn clearing_the_reset_bit_of_the_output_port_shuts_the_vm_down() {
        let mut dev = I8042::new();
        dev.write(COMMAND_OFFSET, &[CMD_READ_OUTPUT_PORT]);
        assert_eq!(data(&mut dev), OUTPUT_PORT_DEFAULT);
        dev.write(COMMAND_OFFSET, &[CMD_WRITE_OUTPUT_PORT]);
        assert_eq!(dev.write(0, &[0x03]), DeviceEvent::None);
        dev.write(COMMAND_OFFSET, &[CMD_WRITE_OUTPUT_PORT]);
        assert_eq!(dev.write(0, &[0x02]), DeviceEvent::Shutdown);
        assert!(dev.reset_requested());
    }

    #[test]
    fn status_reads_idle_until_a_command_answers() {
        let mut dev = I8042::new();
        assert_eq!(status(&mut dev) & STATUS_OUTPUT_FULL, 0);
        assert_eq!(data(&mut dev), 0, "an empty buffer reads 0");
    }

    #[test]
    fn the_command_byte_reads_back_what_the_driver_wrote() {
        let mut dev = I8042::new();
        dev.write(COMMAND_OFFSET, &[CMD_READ_CTR]);
        assert_eq!(
            status(&mut dev) & (STATUS_OUTPUT_FULL | STATUS_LAST_WAS_COMMAND),
            STATUS_OUTPUT_FULL | STATUS_LAST_WAS_COMMAND
        );
        assert_eq!(data(&mut dev), CTR_DEFAULT);
        assert_eq!(status(&mut dev) & STATUS_OUTPUT_FULL, 0, "read empties it");
        dev.write(COMMAND_OFFSET, &[CMD_WRITE_CTR]);
        dev.write(0, &[0x74]);
        dev.write(COMMAND_OFFSET, &[CMD_ENABLE_KBD]);
        dev.write(COMMAND_OFFSET, &[CMD_READ_CTR]);
        assert_eq!(data(&mut dev), 0x74 & !CTR_KBD_DISABLED);
        // Only the byte right after CMD_WRITE_CTR is the command byte.
        dev.write(0, &[0x00]);
        dev.write(COMMAND_OFFSET, &[CMD_DISABLE_AUX]);
        dev.write(COMMAND_OFFSET, &[CMD_READ_CTR]);
        assert_eq!(data(&mut dev), 0x64 | CTR_AUX_DISABLED);
    }

    #[test]
    fn self_tests_pass() {
        let mut dev = I8042::new();
        dev.write(COMMAND_OFFSET, &[CMD_SELF_TEST]);
        assert_eq!(data(&mut dev), SELF_TEST_PASSED);
        dev.write(COMMAND_OFFSET, &[CMD_TEST_KBD_PORT]);
        assert_eq!(data(&mut dev), PORT_TEST_PASSED);
        let flags = STATUS_SYSTEM | STATUS_UNLOCKED;
        assert_eq!(status(&mut dev) & flags, flags);
    }
}
