//! The contract between the workload running as `/init` of a Linux guest and isolab's
//! monitor: two I/O ports. The monitor (`microvm/src/devices/ready_port.rs`) uses the
//! same numbers; an integration test boots the guest and proves they agree.

/// A byte written here marks the guest ready; the monitor timestamps it.
pub const READY_PORT: u16 = 0x4f0;

/// The workload's exit status, written here just before it powers the guest off.
pub const EXIT_STATUS_PORT: u16 = 0x4f1;
