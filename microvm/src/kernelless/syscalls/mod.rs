//! STAND-IN syscall layer: just enough for a trivial static binary (write, writev,
//! exit, exit_group, brk, arch_prctl, mprotect as a no-op). The full layer lives on branch `vmm-syscalls`
//! and replaces this file at merge; the API below is the agreed contract.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// The guest's address space, identity mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressSpace {
    /// Where the program break starts (page-aligned end of the image).
    pub brk_start: u64,
    /// First address available to mmap (also the brk limit).
    pub mmap_start: u64,
    /// End of the mmap area (the stack is above it).
    pub mmap_end: u64,
}

/// What the syscall layer needs to know.
#[derive(Debug, Clone)]
pub struct SyscallConfig {
    /// The directory the guest's file system calls are confined to.
    pub rootfs: PathBuf,
    /// The guest's address space.
    pub address_space: AddressSpace,
}

/// vCPU state some syscalls read or change.
pub trait CpuState {
    /// The FS base (TLS pointer).
    fn fs_base(&self) -> u64;
    /// Sets the FS base.
    fn set_fs_base(&mut self, base: u64);
}

/// What the monitor does after a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallAction {
    /// Resume with this raw RAX (-errno as u64 for errors).
    Return(u64),
    /// The guest exited with this status.
    Exit(i32),
}

/// Why the syscall layer could not start.
#[derive(Debug, thiserror::Error)]
pub enum SyscallError {
    /// The rootfs is not a directory.
    #[error("rootfs {0} is not a directory")]
    Rootfs(PathBuf),
}

/// Per-syscall counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyscallStats {
    /// Calls per syscall name.
    pub counts: BTreeMap<String, u64>,
    /// Calls answered ENOSYS, per name.
    pub enosys: BTreeMap<String, u64>,
}

/// Answers the guest's syscalls.
#[derive(Debug)]
pub struct SyscallHandler {
    config: SyscallConfig,
    brk: u64,
    stats: SyscallStats,
    ready_at: Option<Instant>,
}

const SYS_WRITE: u64 = 1;
const SYS_MPROTECT: u64 = 10;
const SYS_BRK: u64 = 12;
const SYS_WRITEV: u64 = 20;
const SYS_EXIT: u64 = 60;
const SYS_ARCH_PRCTL: u64 = 158;
const SYS_EXIT_GROUP: u64 = 231;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;

fn errno(e: i32) -> u64 {
    (-i64::from(e)) as u64
}

fn name(nr: u64) -> String {
    match nr {
        SYS_WRITE => "write".into(),
        SYS_BRK => "brk".into(),
        SYS_MPROTECT => "mprotect".into(),
        SYS_WRITEV => "writev".into(),
        SYS_EXIT => "exit".into(),
        SYS_ARCH_PRCTL => "arch_prctl".into(),
        SYS_EXIT_GROUP => "exit_group".into(),
        other => format!("syscall_{other}"),
    }
}

impl SyscallHandler {
    /// A handler for a fresh guest.
    pub fn new(config: SyscallConfig) -> Result<Self, SyscallError> {
        if !config.rootfs.is_dir() {
            return Err(SyscallError::Rootfs(config.rootfs));
        }
        let brk = config.address_space.brk_start;
        Ok(Self {
            config,
            brk,
            stats: SyscallStats::default(),
            ready_at: None,
        })
    }

    /// Performs syscall `nr` for the guest.
    pub fn handle(
        &mut self,
        mem: &GuestMemoryMmap,
        cpu: &mut dyn CpuState,
        nr: u64,
        args: [u64; 6],
    ) -> SyscallAction {
        *self.stats.counts.entry(name(nr)).or_default() += 1;
        match nr {
            SYS_WRITE => SyscallAction::Return(self.write(mem, args[0], args[1], args[2])),
            SYS_WRITEV => SyscallAction::Return(self.writev(mem, args[0], args[1], args[2])),
            SYS_BRK => SyscallAction::Return(self.brk(args[0])),
            // Guest memory is mapped read-write-execute; protections are not enforced.
            SYS_MPROTECT => SyscallAction::Return(0),
            SYS_ARCH_PRCTL => SyscallAction::Return(arch_prctl(mem, cpu, args[0], args[1])),
            SYS_EXIT | SYS_EXIT_GROUP => SyscallAction::Exit(args[0] as i32),
            _ => {
                *self.stats.enosys.entry(name(nr)).or_default() += 1;
                SyscallAction::Return(errno(libc::ENOSYS))
            }
        }
    }

    fn write(&mut self, mem: &GuestMemoryMmap, fd: u64, buf: u64, len: u64) -> u64 {
        let mut data = vec![0u8; len.min(1 << 20) as usize];
        if mem.read_slice(&mut data, GuestAddress(buf)).is_err() {
            return errno(libc::EFAULT);
        }
        let result = match fd {
            1 => {
                if self.ready_at.is_none() && data.split(|&b| b == b'\n').any(|l| l == b"READY") {
                    self.ready_at = Some(Instant::now());
                }
                std::io::stdout()
                    .write_all(&data)
                    .and_then(|()| std::io::stdout().flush())
            }
            2 => std::io::stderr().write_all(&data),
            _ => return errno(libc::EBADF),
        };
        match result {
            Ok(()) => data.len() as u64,
            Err(e) => errno(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }

    fn writev(&mut self, mem: &GuestMemoryMmap, fd: u64, iov: u64, count: u64) -> u64 {
        if count > 1024 {
            return errno(libc::EINVAL);
        }
        let mut total = 0u64;
        for i in 0..count {
            let at = GuestAddress(iov.wrapping_add(i * 16));
            let (Ok(base), Ok(len)) = (
                mem.read_obj::<u64>(at),
                mem.read_obj::<u64>(GuestAddress(at.0.wrapping_add(8))),
            ) else {
                return errno(libc::EFAULT);
            };
            let written = self.write(mem, fd, base, len);
            if (written as i64) < 0 {
                return if total > 0 { total } else { written };
            }
            total += written;
        }
        total
    }

    fn brk(&mut self, addr: u64) -> u64 {
        let space = self.config.address_space;
        if (space.brk_start..=space.mmap_start).contains(&addr) {
            self.brk = addr;
        }
        self.brk
    }

    /// Counts so far.
    pub fn stats(&self) -> SyscallStats {
        self.stats.clone()
    }

    /// When the guest first wrote a line "READY" to fd 1.
    pub fn ready_at(&self) -> Option<Instant> {
        self.ready_at
    }
}

fn arch_prctl(mem: &GuestMemoryMmap, cpu: &mut dyn CpuState, code: u64, addr: u64) -> u64 {
    match code {
        ARCH_SET_FS => {
            cpu.set_fs_base(addr);
            0
        }
        ARCH_GET_FS => match mem.write_obj(cpu.fs_base(), GuestAddress(addr)) {
            Ok(()) => 0,
            Err(_) => errno(libc::EFAULT),
        },
        _ => errno(libc::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct FakeCpu(u64);
    impl CpuState for FakeCpu {
        fn fs_base(&self) -> u64 {
            self.0
        }
        fn set_fs_base(&mut self, base: u64) {
            self.0 = base;
        }
    }

    fn handler() -> (SyscallHandler, GuestMemoryMmap) {
        let config = SyscallConfig {
            rootfs: std::env::temp_dir(),
            address_space: AddressSpace {
                brk_start: 0x10_0000,
                mmap_start: 0x20_0000,
                mmap_end: 0x30_0000,
            },
        };
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap();
        (SyscallHandler::new(config).unwrap(), mem)
    }

    #[test]
    fn brk_moves_within_its_area_only() {
        let (mut h, mem) = handler();
        let mut cpu = FakeCpu::default();
        assert_eq!(
            h.handle(&mem, &mut cpu, SYS_BRK, [0; 6]),
            SyscallAction::Return(0x10_0000)
        );
        assert_eq!(
            h.handle(&mem, &mut cpu, SYS_BRK, [0x11_0000, 0, 0, 0, 0, 0]),
            SyscallAction::Return(0x11_0000)
        );
        assert_eq!(
            h.handle(&mem, &mut cpu, SYS_BRK, [0x90_0000, 0, 0, 0, 0, 0]),
            SyscallAction::Return(0x11_0000)
        );
    }

    #[test]
    fn arch_prctl_sets_fs_and_bad_pointers_fault() {
        let (mut h, mem) = handler();
        let mut cpu = FakeCpu::default();
        h.handle(
            &mem,
            &mut cpu,
            SYS_ARCH_PRCTL,
            [ARCH_SET_FS, 0x1234, 0, 0, 0, 0],
        );
        assert_eq!(cpu.0, 0x1234);
        let bad = h.handle(
            &mem,
            &mut cpu,
            SYS_ARCH_PRCTL,
            [ARCH_GET_FS, 1 << 40, 0, 0, 0, 0],
        );
        assert_eq!(bad, SyscallAction::Return(errno(libc::EFAULT)));
        let bad_write = h.handle(&mem, &mut cpu, SYS_WRITE, [1, 1 << 40, 4, 0, 0, 0]);
        assert_eq!(bad_write, SyscallAction::Return(errno(libc::EFAULT)));
    }

    #[test]
    fn unknown_syscalls_are_enosys_and_counted() {
        let (mut h, mem) = handler();
        let r = h.handle(&mem, &mut FakeCpu::default(), 999, [0; 6]);
        assert_eq!(r, SyscallAction::Return(errno(libc::ENOSYS)));
        assert_eq!(h.stats().enosys["syscall_999"], 1);
        assert_eq!(
            h.handle(
                &mem,
                &mut FakeCpu::default(),
                SYS_EXIT_GROUP,
                [3, 0, 0, 0, 0, 0]
            ),
            SyscallAction::Exit(3)
        );
    }
}
