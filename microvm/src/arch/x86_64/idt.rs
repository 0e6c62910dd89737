//! The interrupt descriptor table of the kernel-less guest: each exception vector
//! (0-31) gets an interrupt gate to its own exit stub, so a guest fault becomes a port
//! exit the monitor reports instead of a hang or a triple fault.

use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use super::layout::{
    EXCEPTION_STUBS_OFFSET, EXCEPTION_STUB_SIZE, IDT_ADDR, IDT_ENTRIES, KERNEL_CS, STUB_ADDR,
};

/// The double-fault vector, delivered on IST1 so a broken stack still reports.
pub const DOUBLE_FAULT: usize = 8;

/// A 16-byte 64-bit interrupt gate (type 0xE, present, DPL0) to `handler`.
pub fn interrupt_gate(handler: u64, selector: u16, ist: u8) -> [u8; 16] {
    let mut gate = [0u8; 16];
    gate[0..2].copy_from_slice(&(handler as u16).to_le_bytes());
    gate[2..4].copy_from_slice(&selector.to_le_bytes());
    gate[4] = ist & 0x7;
    gate[5] = 0x8e; // present, DPL0, 64-bit interrupt gate
    gate[6..8].copy_from_slice(&((handler >> 16) as u16).to_le_bytes());
    gate[8..12].copy_from_slice(&((handler >> 32) as u32).to_le_bytes());
    gate
}

/// Address of the exit stub for `vector`.
pub fn stub_address(vector: usize) -> u64 {
    STUB_ADDR + EXCEPTION_STUBS_OFFSET + vector as u64 * EXCEPTION_STUB_SIZE
}

/// Writes the IDT; its limit for KVM is `IDT_ENTRIES * 16 - 1`.
pub fn write_idt(mem: &GuestMemoryMmap) -> Result<(), GuestMemoryError> {
    let idt: Vec<u8> = (0..IDT_ENTRIES)
        .flat_map(|v| {
            let ist = if v == DOUBLE_FAULT { 1 } else { 0 };
            interrupt_gate(stub_address(v), KERNEL_CS, ist)
        })
        .collect();
    mem.write_slice(&idt, GuestAddress(IDT_ADDR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_spreads_the_handler_address_over_three_fields() {
        let gate = interrupt_gate(0x1234_5678_9abc_def0, 0x08, 1);
        assert_eq!(
            gate,
            [0xf0, 0xde, 0x08, 0x00, 0x01, 0x8e, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0]
        );
    }

    #[test]
    fn each_vector_points_at_its_own_stub() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        write_idt(&mem).unwrap();
        let mut gate = [0u8; 16];
        mem.read_slice(&mut gate, GuestAddress(IDT_ADDR + 14 * 16))
            .unwrap();
        assert_eq!(
            u16::from_le_bytes([gate[0], gate[1]]) as u64,
            stub_address(14) & 0xffff
        );
        assert_eq!(gate[4], 0, "#PF uses the TSS's RSP0");
        mem.read_slice(&mut gate, GuestAddress(IDT_ADDR + 8 * 16))
            .unwrap();
        assert_eq!(gate[4], 1, "#DF uses IST1");
    }
}
