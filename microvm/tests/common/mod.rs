//! Shared fixtures for the `microvm` integration tests: the binary under test, and
//! tiny static ELF programs assembled in-test (so no toolchain is needed).

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;

/// `microvm` built by cargo for this test run.
pub fn microvm() -> Command {
    Command::cargo_bin("microvm").expect("the microvm binary is built for tests")
}

/// The real `workload` binary next to `microvm`, built by cargo once per test binary:
/// microvm does not depend on it, so `cargo test -p microvm` alone does not build it,
/// and one left by an earlier build may be stale.
pub fn workload() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = assert_cmd::cargo::cargo_bin("microvm")
                .parent()
                .expect("the bin dir")
                .to_owned();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build.args(["build", "--quiet", "-p", "workload", "--bin", "workload"]);
            // The bin dir is named after the profile; `debug` is the dev profile.
            match dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => {}
                Some(profile) => {
                    build.args(["--profile", profile]);
                }
            }
            let status = build.status().expect("running cargo build -p workload");
            assert!(status.success(), "cargo build -p workload failed");
            let path = dir.join("workload");
            assert!(path.is_file(), "{} missing after the build", path.display());
            path
        })
        .clone()
}

/// `microvm exec` with `TMPDIR` pointing into `tmp`, so tests can prove nothing is left
/// behind there.
pub fn exec(tmp: &Path) -> Command {
    let mut cmd = microvm();
    cmd.env("TMPDIR", tmp)
        .arg("exec")
        .arg("--timeout")
        .arg("60");
    cmd
}

/// True when `/dev/kvm` is usable; tests that need it print why they skip otherwise.
pub fn kvm_available(test: &str) -> bool {
    let ok = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !ok {
        eprintln!("skipping {test}: this host has no usable /dev/kvm");
    }
    ok
}

/// x86_64 machine code for the fixtures.
pub mod code {
    /// `mov edi, CODE; mov eax, 231 (exit_group); syscall`.
    pub fn exit(code: u8) -> Vec<u8> {
        vec![0xbf, code, 0, 0, 0, 0xb8, 231, 0, 0, 0, 0x0f, 0x05]
    }
    /// `mov rax, [0]`: a NULL read.
    pub const NULL_READ: &[u8] = &[0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0];
    /// `ud2`.
    pub const UD2: &[u8] = &[0x0f, 0x0b];
    /// `jmp $`: spins forever without a single exit.
    pub const SPIN: &[u8] = &[0xeb, 0xfe];
    /// write(1, "READY\n", 6) then spin forever (for signal tests).
    pub fn ready_then_spin(code_addr: u64) -> Vec<u8> {
        let mut c = hello(b"", code_addr);
        c.truncate(27); // keep the write, drop the exit
        c.extend(SPIN);
        c.resize(36, 0x90);
        c.extend(b"READY\n");
        let len = c.len() - 36;
        c[16..20].copy_from_slice(&(len as u32).to_le_bytes());
        c
    }
    /// write(1, msg, len) then exit_group(0), with the message after the code.
    pub fn hello(msg: &[u8], code_addr: u64) -> Vec<u8> {
        let msg_addr = code_addr + 36;
        let mut c = vec![0xbf, 1, 0, 0, 0]; // mov edi, 1
        c.extend([0x48, 0xbe]); // movabs rsi, msg
        c.extend(msg_addr.to_le_bytes());
        c.push(0xba); // mov edx, len
        c.extend((msg.len() as u32).to_le_bytes());
        c.extend([0xb8, 1, 0, 0, 0, 0x0f, 0x05]); // mov eax, 1; syscall
        c.extend([0x31, 0xff, 0xb8, 231, 0, 0, 0, 0x0f, 0x05]); // exit_group(0)
        assert_eq!(c.len(), 36);
        c.extend(msg);
        c
    }
}

/// Builds a static ELF: `e_type` 2 (EXEC, at 0x400000) or 3 (DYN, at 0), one RWX
/// PT_LOAD with the headers and `code`, entry at the code, plus `extra` program
/// headers (each the 56 raw bytes of an Elf64_Phdr).
pub fn elf(e_type: u16, code: &[u8], extra: &[[u8; 56]]) -> Vec<u8> {
    let base: u64 = if e_type == 2 { 0x40_0000 } else { 0 };
    let phnum = 1 + extra.len() as u16;
    let code_off = 64 + 56 * u64::from(phnum);
    let total = code_off + code.len() as u64;
    let mut b = Vec::new();
    b.extend(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    b.extend(e_type.to_le_bytes());
    b.extend(62u16.to_le_bytes()); // EM_X86_64
    b.extend(1u32.to_le_bytes());
    b.extend((base + code_off).to_le_bytes()); // e_entry
    b.extend(64u64.to_le_bytes()); // e_phoff
    b.extend(0u64.to_le_bytes()); // e_shoff
    b.extend(0u32.to_le_bytes());
    for v in [64u16, 56, phnum, 0, 0, 0] {
        b.extend(v.to_le_bytes());
    }
    b.extend(phdr(1, 0, base, total, total + 0x1000));
    for p in extra {
        b.extend(p);
    }
    b.extend(code);
    b
}

/// An Elf64_Phdr (flags RWX, 4 KiB alignment).
pub fn phdr(p_type: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> [u8; 56] {
    let mut p = Vec::new();
    p.extend(p_type.to_le_bytes());
    p.extend(7u32.to_le_bytes());
    for v in [offset, vaddr, vaddr, filesz, memsz, 0x1000] {
        p.extend(v.to_le_bytes());
    }
    p.try_into().unwrap()
}

/// Writes `bytes` as an executable file `name` in `dir`.
pub fn program(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The entries of `dir` (to prove nothing was left behind).
pub fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}
