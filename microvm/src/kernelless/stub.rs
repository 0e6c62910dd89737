//! The only code of the monitor's that the kernel-less guest runs: the syscall entry
//! (`out` to the syscall port, then `sysretq`) and one `out` per exception vector.
//! Each is an exit to the monitor; kept to a couple of instructions because PVM hosts
//! emulate CPL0 code.

use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use crate::arch::x86_64::layout::{
    EXCEPTION_PORT_BASE, EXCEPTION_STUBS_OFFSET, EXCEPTION_STUB_SIZE, IDT_ENTRIES, PAGE_SIZE,
    STUB_ADDR, SYSCALL_ENTRY_OFFSET, SYSCALL_PORT, SYSRET_OFFSET,
};

/// `out imm8, al`.
const OUT_IMM8_AL: u8 = 0xe6;
/// `sysretq` (REX.W 0F 07).
const SYSRETQ: [u8; 3] = [0x48, 0x0f, 0x07];
/// `hlt`.
const HLT: u8 = 0xf4;
/// `jmp $-1`: back to the `hlt` before it, should the monitor ever resume a stub.
const JMP_BACK_TO_HLT: [u8; 2] = [0xeb, 0xfd];

/// The stub page's bytes.
pub fn stub_page() -> Vec<u8> {
    let mut page = vec![HLT; PAGE_SIZE as usize];
    let entry = SYSCALL_ENTRY_OFFSET as usize;
    page[entry..entry + 2].copy_from_slice(&[OUT_IMM8_AL, SYSCALL_PORT as u8]);
    let sysret = SYSRET_OFFSET as usize;
    page[sysret..sysret + 3].copy_from_slice(&SYSRETQ);
    for vector in 0..IDT_ENTRIES {
        let at = (EXCEPTION_STUBS_OFFSET + vector as u64 * EXCEPTION_STUB_SIZE) as usize;
        let port = EXCEPTION_PORT_BASE as u8 + vector as u8;
        page[at..at + 5].copy_from_slice(&[
            OUT_IMM8_AL,
            port,
            HLT,
            JMP_BACK_TO_HLT[0],
            JMP_BACK_TO_HLT[1],
        ]);
    }
    page
}

/// Writes the stub page at `STUB_ADDR`.
pub fn write_stub(mem: &GuestMemoryMmap) -> Result<(), GuestMemoryError> {
    mem.write_slice(&stub_page(), GuestAddress(STUB_ADDR))
}

/// The exception vector a trap port stands for, if it is an exception port.
pub fn exception_vector(port: u16) -> Option<u8> {
    let vector = port.checked_sub(EXCEPTION_PORT_BASE)?;
    (usize::from(vector) < IDT_ENTRIES).then_some(vector as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::x86_64::idt::stub_address;

    #[test]
    fn syscall_entry_exits_then_returns_to_user() {
        let page = stub_page();
        assert_eq!(&page[0..6], &[0xe6, 0xe0, 0x48, 0x0f, 0x07, 0xf4]);
        assert_eq!(SYSRET_OFFSET, 2, "the vCPU starts on the sysretq");
    }

    #[test]
    fn every_vector_stub_writes_its_own_port() {
        let page = stub_page();
        for vector in [0usize, 6, 13, 14, 31] {
            let at = (stub_address(vector) - STUB_ADDR) as usize;
            assert_eq!(page[at], 0xe6);
            assert_eq!(
                exception_vector(u16::from(page[at + 1])),
                Some(vector as u8)
            );
        }
        assert_eq!(exception_vector(EXCEPTION_PORT_BASE - 1), None);
        assert_eq!(exception_vector(SYSCALL_PORT), None);
    }
}
