//! Device models: pure state machines on a port-I/O or MMIO bus.

pub mod bus;
pub mod cmos_rtc;
pub mod i8042;
pub mod ready_port;
pub mod serial;
pub mod virtio;
