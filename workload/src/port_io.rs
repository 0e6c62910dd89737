//! Port I/O to isolab's monitor from inside a Linux guest: the one place the workload
//! needs `unsafe`, kept to two small wrappers.

use crate::guest_abi::{EXIT_STATUS_PORT, READY_PORT};

/// Access to the guest ABI ports, granted by `ioperm`.
#[derive(Debug)]
pub struct MonitorPorts(());

impl MonitorPorts {
    /// Asks the kernel for access to the two ports (needs CAP_SYS_RAWIO: PID 1 of a
    /// guest has it). `None` when refused, e.g. on a kernel without ioperm.
    pub fn open() -> Option<Self> {
        let first = libc::c_ulong::from(READY_PORT.min(EXIT_STATUS_PORT));
        // SAFETY: ioperm only changes this process's I/O permission bitmap; the
        // arguments are plain integers and no memory is passed.
        let rc = unsafe { libc::ioperm(first, 2, 1) };
        (rc == 0).then_some(Self(()))
    }

    /// Tells the monitor the guest is ready (it timestamps the write).
    pub fn signal_ready(&self) {
        self.out_byte(READY_PORT, 1);
    }

    /// Hands the workload's exit status to the monitor before power-off.
    pub fn report_exit_status(&self, status: u8) {
        self.out_byte(EXIT_STATUS_PORT, status);
    }

    fn out_byte(&self, port: u16, value: u8) {
        // SAFETY: `self` exists only after ioperm granted these ports, so `out` cannot
        // fault; it touches no memory, stack or flags. On a machine with no device at
        // the port (qemu's microvm), the write is ignored by the platform.
        unsafe {
            core::arch::asm!("out dx, al", in("dx") port, in("al") value,
                options(nomem, nostack, preserves_flags));
        }
    }
}
