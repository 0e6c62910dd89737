//! The Linux guest's legacy devices: COM1 with its interrupt line, the i8042 (its
//! reset line powers the VM off), the CMOS clock, and the ready/exit-status ports, where a write of
//! the exit status ends the VM with that status.

use std::sync::{Arc, Mutex};

use vmm_sys_util::eventfd::EventFd;

use crate::arch::x86_64::layout::{CMOS_RTC_PORT, COM1_PORT, I8042_PORT};
use crate::devices::bus::{Bus, BusDevice, BusError, DeviceEvent};
use crate::devices::cmos_rtc::{self, CmosRtc};
use crate::devices::i8042::{self, I8042};
use crate::devices::ready_port::{ReadyPort, PORT_COUNT, READY_PORT};
use crate::devices::serial::{EventFdTrigger, SerialDevice};

/// The ready port, ending the VM when the guest reports its exit status.
#[derive(Debug, Default)]
pub struct GuestPorts {
    inner: ReadyPort,
}

impl GuestPorts {
    /// What the guest reported.
    pub fn report(&self) -> &ReadyPort {
        &self.inner
    }
}

impl BusDevice for GuestPorts {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        self.inner.read(offset, data);
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> DeviceEvent {
        self.inner.write(offset, data);
        if offset == 1 {
            // The workload's status is final: no need to wait for the kernel's
            // power-off path (which may not exist without ACPI).
            return DeviceEvent::Shutdown;
        }
        DeviceEvent::None
    }
}

/// The port bus and the handles the runner reads afterwards.
#[derive(Debug)]
pub struct LegacyDevices {
    /// Port I/O bus with the devices.
    pub pio: Bus,
    /// The ready/exit-status ports.
    pub ports: Arc<Mutex<GuestPorts>>,
}

/// Builds the port bus: serial (raising `serial_irq`, writing to stdout), i8042, the
/// CMOS clock and the guest ports.
pub fn legacy_devices(
    serial_irq: EventFd,
    out: Box<dyn std::io::Write + Send>,
) -> Result<LegacyDevices, BusError> {
    let mut pio = Bus::new();
    let serial = SerialDevice::new(EventFdTrigger(serial_irq), out);
    pio.insert(COM1_PORT.into(), 8, Arc::new(Mutex::new(serial)))?;
    let i8042 = Arc::new(Mutex::new(I8042::new()));
    pio.insert(I8042_PORT.into(), i8042::PORT_COUNT, i8042)?;
    let rtc = Arc::new(Mutex::new(CmosRtc::new()));
    pio.insert(CMOS_RTC_PORT.into(), cmos_rtc::PORT_COUNT, rtc)?;
    let ports = Arc::new(Mutex::new(GuestPorts::default()));
    pio.insert(READY_PORT.into(), PORT_COUNT, ports.clone())?;
    Ok(LegacyDevices { pio, ports })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::bus::Access;
    use crate::devices::ready_port::EXIT_STATUS_PORT;

    #[test]
    fn exit_status_write_ends_the_vm_and_is_kept() {
        let devices = legacy_devices(EventFd::new(0).unwrap(), Box::new(std::io::sink())).unwrap();
        assert_eq!(
            devices.pio.write(READY_PORT.into(), &[1]),
            Access::Handled(DeviceEvent::None)
        );
        assert_eq!(
            devices.pio.write(EXIT_STATUS_PORT.into(), &[3]),
            Access::Handled(DeviceEvent::Shutdown)
        );
        let ports = devices.ports.lock().unwrap();
        assert!(ports.report().ready_at().is_some());
        assert_eq!(ports.report().exit_status(), Some(3));
    }

    #[test]
    fn i8042_reset_ends_the_vm_and_serial_raises_its_interrupt() {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let devices = legacy_devices(irq.try_clone().unwrap(), Box::new(std::io::sink())).unwrap();
        assert_eq!(
            devices.pio.write(0x64, &[0xfe]),
            Access::Handled(DeviceEvent::Shutdown)
        );
        devices.pio.write(u64::from(COM1_PORT) + 1, &[0x02]); // IER: THR empty interrupt
        devices.pio.write(COM1_PORT.into(), b"x");
        assert!(irq.read().unwrap() > 0, "serial raised its interrupt line");
    }

    #[test]
    fn cmos_clock_answers_at_0x70_with_a_valid_time() {
        let devices = legacy_devices(EventFd::new(0).unwrap(), Box::new(std::io::sink())).unwrap();
        let mut value = [0xff];
        devices.pio.write(0x70, &[0x0d]);
        devices.pio.read(0x71, &mut value);
        assert_eq!(value, [0x80], "register D: time valid");
        devices.pio.write(0x70, &[0x32]);
        devices.pio.read(0x71, &mut value);
        assert!(
            (0x20..=0x29).contains(&value[0]),
            "century in BCD: {value:x?}"
        );
    }
}
