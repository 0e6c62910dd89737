//! The workload as `/init` of a Linux guest: it is the whole userspace, so it mounts
//! what it needs, tells the monitor when it starts, and powers the machine off with its
//! exit status when done, saying clearly why if something failed.

use std::io;
use std::path::Path;

use rustix::mount::{mount, MountFlags};
use rustix::system::{reboot, RebootCommand};

use crate::port_io::MonitorPorts;

/// Set to `0` to forbid guest-init behaviour, `1` to force it for a PID 1 whose kernel
/// already mounted /proc. Never honoured outside PID 1: the role ends in a power-off.
pub const OVERRIDE_ENV: &str = "ISOLAB_GUEST_INIT";

/// True when this process is PID 1 of a Linux kernel with nothing mounted yet: the
/// kernel started us from an initramfs. PID 1 of a container has /proc mounted by its
/// runtime; the kernel-less microVM reports its own kernel name, not `Linux`.
pub fn is_guest_init() -> bool {
    if std::process::id() != 1 {
        return false;
    }
    match std::env::var(OVERRIDE_ENV).as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => {
            rustix::system::uname().sysname().to_bytes() == b"Linux"
                && !Path::new("/proc/self").exists()
        }
    }
}

/// Runs `body` as the guest's init: prepare, signal ready, run, power off. Never returns.
pub fn run_as_init(body: impl FnOnce() -> i32) -> ! {
    if let Err(e) = mount_filesystems() {
        eprintln!("isolab workload (init): mounting /proc, /sys, /dev: {e}");
    }
    ensure_console();
    let ports = MonitorPorts::open();
    if let Some(ports) = &ports {
        ports.signal_ready();
    }
    let status = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(status) => status,
        Err(_) => {
            eprintln!("isolab workload (init): the subcommand panicked");
            101
        }
    };
    if status != 0 {
        eprintln!("isolab workload (init): FAILED with exit status {status}");
    }
    power_off(ports.as_ref(), status)
}

fn mount_filesystems() -> io::Result<()> {
    let table = [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
    ];
    for (source, target, fstype) in table {
        match std::fs::create_dir(target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("mkdir {target}: {e}"))),
        }
        let flags = MountFlags::NOSUID | MountFlags::NOEXEC;
        mount(source, target, fstype, flags, None)
            .map_err(|e| io::Error::other(format!("mount {fstype} on {target}: {e}")))?;
    }
    Ok(())
}

/// An initramfs without `/dev/console` leaves init with no stdio; after devtmpfs is
/// mounted the console exists, so attach it.
fn ensure_console() {
    if rustix::io::fcntl_getfd(rustix::stdio::stdout()).is_ok() {
        return;
    }
    let Ok(console) = rustix::fs::open(
        "/dev/console",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY,
        rustix::fs::Mode::empty(),
    ) else {
        return;
    };
    let _ = rustix::stdio::dup2_stdin(&console);
    let _ = rustix::stdio::dup2_stdout(&console);
    let _ = rustix::stdio::dup2_stderr(&console);
}

/// Waits until the console has sent everything written to it. The kernel hands
/// console output to the serial port from its tty layer, possibly on another vCPU;
/// reporting the exit status first would end the VM with the last lines (the RESULT
/// line among them) still queued.
fn drain_console() {
    let _ = io::Write::flush(&mut io::stdout());
    let _ = rustix::termios::tcdrain(rustix::stdio::stdout());
    let _ = rustix::termios::tcdrain(rustix::stdio::stderr());
}

fn power_off(ports: Option<&MonitorPorts>, status: i32) -> ! {
    drain_console();
    if let Some(ports) = ports {
        ports.report_exit_status(status.clamp(0, 255) as u8);
    }
    rustix::fs::sync();
    let off = reboot(RebootCommand::PowerOff);
    // Without ACPI there may be no way to power off: a reset (reboot=k goes through the
    // i8042) ends the VM just as well, since the status was already reported.
    let restart = reboot(RebootCommand::Restart);
    eprintln!(
        "isolab workload (init): could not power off ({off:?}) or restart ({restart:?}); halting"
    );
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
