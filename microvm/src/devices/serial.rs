//! The 16550 UART console (COM1), a `vm_superio::Serial` writing to an injected output
//! (the monitor's stdout in a VM, a buffer in tests). Its interrupt is a `Trigger`: an
//! eventfd wired to the in-kernel irqchip for the Linux guest, nothing otherwise.

use std::io::Write;

use vm_superio::{serial::NoEvents, Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use super::bus::{BusDevice, DeviceEvent};

/// A trigger for guests without an interrupt controller.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoInterrupt;

impl Trigger for NoInterrupt {
    type E = std::convert::Infallible;
    fn trigger(&self) -> Result<(), Self::E> {
        Ok(())
    }
}

/// Raises an interrupt by writing an eventfd registered with KVM_IRQFD.
#[derive(Debug)]
pub struct EventFdTrigger(pub EventFd);

impl Trigger for EventFdTrigger {
    type E = std::io::Error;
    fn trigger(&self) -> Result<(), Self::E> {
        self.0.write(1)
    }
}

/// The serial port as a bus device.
pub struct SerialDevice<T: Trigger> {
    serial: Serial<T, NoEvents, Box<dyn Write + Send>>,
}

impl<T: Trigger> std::fmt::Debug for SerialDevice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SerialDevice")
    }
}

impl<T: Trigger> SerialDevice<T> {
    /// A UART that raises `trigger` and writes what the guest transmits to `out`.
    pub fn new(trigger: T, out: Box<dyn Write + Send>) -> Self {
        Self {
            serial: Serial::new(trigger, out),
        }
    }
}

impl<T: Trigger + Send> BusDevice for SerialDevice<T> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if let (Some(first), Ok(offset)) = (data.first_mut(), u8::try_from(offset)) {
            *first = self.serial.read(offset);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> DeviceEvent {
        if let (Some(&value), Ok(offset)) = (data.first(), u8::try_from(offset)) {
            // An output error (closed stdout) must not stop the guest: drop the byte.
            if let Err(err) = self.serial.write(offset, value) {
                log::debug!("serial write at offset {offset}: {err:?}");
            }
        }
        DeviceEvent::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn transmitted_bytes_reach_the_output() {
        let out = Capture::default();
        let mut dev = SerialDevice::new(NoInterrupt, Box::new(out.clone()));
        for byte in b"hi\n" {
            dev.write(0, &[*byte]); // THR
        }
        assert_eq!(out.0.lock().unwrap().as_slice(), b"hi\n");
    }

    #[test]
    fn line_status_reports_an_empty_transmitter() {
        let mut dev = SerialDevice::new(NoInterrupt, Box::new(Capture::default()));
        let mut lsr = [0u8];
        dev.read(5, &mut lsr);
        assert_eq!(lsr[0] & 0x60, 0x60, "THRE and TEMT set: the guest may send");
    }

    #[test]
    fn interrupt_fires_through_the_eventfd_when_enabled() {
        let fd = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let trigger = EventFdTrigger(fd.try_clone().unwrap());
        let mut dev = SerialDevice::new(trigger, Box::new(Capture::default()));
        dev.write(1, &[0x02]); // IER: THR-empty interrupt
        assert_eq!(fd.read().unwrap(), 1);
    }
}
