//! Reports of guest CPU exceptions: which vector, where, and (for page faults) which
//! address and why, read from the exception frame the CPU pushed on the CPL0 stack.

use std::fmt;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// A guest exception that ended the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestException {
    /// The vector (0-31).
    pub vector: u8,
    /// The faulting instruction.
    pub rip: u64,
    /// The error code, for vectors that push one.
    pub error_code: Option<u64>,
    /// CR2: the faulting address, for page faults.
    pub fault_address: Option<u64>,
    /// The privilege level the fault happened at (3: the program, 0: the stub).
    pub cpl: u8,
}

/// Mnemonic and name of each architectural vector.
pub fn vector_name(vector: u8) -> (&'static str, &'static str) {
    const NAMES: [(&str, &str); 22] = [
        ("#DE", "divide error"),
        ("#DB", "debug"),
        ("NMI", "non-maskable interrupt"),
        ("#BP", "breakpoint"),
        ("#OF", "overflow"),
        ("#BR", "bound range exceeded"),
        ("#UD", "invalid opcode"),
        ("#NM", "device not available"),
        ("#DF", "double fault"),
        ("CSO", "coprocessor segment overrun"),
        ("#TS", "invalid TSS"),
        ("#NP", "segment not present"),
        ("#SS", "stack-segment fault"),
        ("#GP", "general protection fault"),
        ("#PF", "page fault"),
        ("-", "reserved"),
        ("#MF", "x87 floating-point error"),
        ("#AC", "alignment check"),
        ("#MC", "machine check"),
        ("#XM", "SIMD floating-point exception"),
        ("#VE", "virtualization exception"),
        ("#CP", "control protection"),
    ];
    NAMES
        .get(usize::from(vector))
        .copied()
        .unwrap_or(("-", "reserved"))
}

/// Whether the CPU pushes an error code for `vector`.
pub fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// The page-fault vector.
pub const PAGE_FAULT: u8 = 14;

/// The frame the CPU pushes when it delivers an exception (unreadable words read as
/// all ones: a broken stack still yields a report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionFrame {
    /// The error code, for vectors that push one.
    pub error_code: Option<u64>,
    /// The interrupted instruction.
    pub rip: u64,
    /// The interrupted code segment selector (its low bits are the CPL).
    pub cs: u64,
    /// The interrupted RFLAGS.
    pub rflags: u64,
    /// The interrupted stack pointer.
    pub rsp: u64,
}

impl ExceptionFrame {
    /// Reads the frame of `vector` at `rsp` (the CPL0 stack after delivery).
    pub fn read(mem: &GuestMemoryMmap, vector: u8, rsp: u64) -> Self {
        let read = |offset: u64| {
            mem.read_obj::<u64>(GuestAddress(rsp.wrapping_add(offset)))
                .unwrap_or(u64::MAX)
        };
        let (error_code, at) = if has_error_code(vector) {
            (Some(read(0)), 8)
        } else {
            (None, 0)
        };
        Self {
            error_code,
            rip: read(at),
            cs: read(at + 8),
            rflags: read(at + 16),
            rsp: read(at + 24),
        }
    }

    /// The privilege level that was interrupted.
    pub fn cpl(&self) -> u8 {
        (self.cs & 3) as u8
    }
}

impl GuestException {
    /// The report for `vector` delivered with `frame`; `cr2` matters for page faults.
    pub fn new(vector: u8, frame: &ExceptionFrame, cr2: u64) -> Self {
        Self {
            vector,
            rip: frame.rip,
            error_code: frame.error_code,
            fault_address: (vector == PAGE_FAULT).then_some(cr2),
            cpl: frame.cpl(),
        }
    }

    /// The exit status a shell would show for the signal Linux sends for this fault.
    pub fn exit_code(&self) -> i32 {
        let signal = match self.vector {
            0 | 16 | 19 => libc::SIGFPE,
            1 | 3 => libc::SIGTRAP,
            6 => libc::SIGILL,
            17 => libc::SIGBUS,
            _ => libc::SIGSEGV,
        };
        128 + signal
    }
}

/// Decodes a page-fault error code ("user write to a not-present page").
pub fn page_fault_cause(code: u64) -> String {
    let who = if code & 4 != 0 { "user" } else { "supervisor" };
    let what = if code & 16 != 0 {
        "instruction fetch from"
    } else if code & 2 != 0 {
        "write to"
    } else {
        "read from"
    };
    let page = if code & 1 != 0 {
        "a protected page"
    } else {
        "a not-present page"
    };
    format!("{who} {what} {page}")
}

impl fmt::Display for GuestException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mnemonic, name) = vector_name(self.vector);
        write!(
            f,
            "guest exception {mnemonic} ({name}, vector {}) at rip {:#x}",
            self.vector, self.rip
        )?;
        if self.cpl == 0 {
            f.write_str(" in the monitor's CPL0 stub")?;
        }
        if let Some(addr) = self.fault_address {
            write!(f, ", fault address {addr:#x}")?;
        }
        match (self.error_code, self.vector) {
            (Some(code), PAGE_FAULT) => {
                write!(f, ", error code {code:#x} ({})", page_fault_cause(code))
            }
            (Some(code), _) => write!(f, ", error code {code:#x}"),
            (None, _) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory_with_frame(words: &[u64]) -> GuestMemoryMmap {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1_0000)]).unwrap();
        for (i, w) in words.iter().enumerate() {
            mem.write_obj(*w, GuestAddress(0x8000 + 8 * i as u64))
                .unwrap();
        }
        mem
    }

    #[test]
    fn page_fault_report_names_address_and_cause() {
        // error code, rip, cs, rflags, rsp, ss
        let mem = memory_with_frame(&[0x4, 0x40_1000, 0x23, 0x202, 0x7f_0000, 0x1b]);
        let e = GuestException::new(14, &ExceptionFrame::read(&mem, 14, 0x8000), 0);
        assert_eq!(e.cpl, 3);
        assert_eq!(
            e.to_string(),
            "guest exception #PF (page fault, vector 14) at rip 0x401000, fault address 0x0, \
             error code 0x4 (user read from a not-present page)"
        );
        assert_eq!(e.exit_code(), 139);
    }

    #[test]
    fn vectors_without_error_code_read_rip_first() {
        let mem = memory_with_frame(&[0x40_2000, 0x23, 0x202]);
        let e = GuestException::new(6, &ExceptionFrame::read(&mem, 6, 0x8000), 0xdead);
        assert_eq!(
            (e.rip, e.error_code, e.fault_address),
            (0x40_2000, None, None)
        );
        assert_eq!(e.exit_code(), 128 + libc::SIGILL);
        assert!(e
            .to_string()
            .starts_with("guest exception #UD (invalid opcode, vector 6)"));
    }

    #[test]
    fn a_frame_outside_memory_still_reports() {
        let mem = memory_with_frame(&[]);
        let e = GuestException::new(13, &ExceptionFrame::read(&mem, 13, 0xffff_ffff_0000), 0);
        assert_eq!((e.rip, e.error_code), (u64::MAX, Some(u64::MAX)));
    }

    #[test]
    fn error_code_vectors_match_the_sdm() {
        let with: Vec<u8> = (0..32).filter(|&v| has_error_code(v)).collect();
        assert_eq!(with, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
        assert_eq!(
            page_fault_cause(0x17 & !1),
            "user instruction fetch from a not-present page"
        );
        assert_eq!(page_fault_cause(0x7), "user write to a protected page");
    }
}
