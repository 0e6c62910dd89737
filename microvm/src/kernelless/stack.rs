//! The Linux initial process stack: argc, argv, envp and the auxiliary vector, with the
//! strings and AT_RANDOM bytes above them, laid out as the kernel's `create_elf_tables`
//! does, so a static glibc or Rust program starts exactly as under Linux.

/// End of the auxiliary vector.
pub const AT_NULL: u64 = 0;
/// Address of the program headers.
pub const AT_PHDR: u64 = 3;
/// Size of one program header.
pub const AT_PHENT: u64 = 4;
/// Number of program headers.
pub const AT_PHNUM: u64 = 5;
/// Page size.
pub const AT_PAGESZ: u64 = 6;
/// Interpreter base (0: none).
pub const AT_BASE: u64 = 7;
/// Flags (0).
pub const AT_FLAGS: u64 = 8;
/// Program entry point.
pub const AT_ENTRY: u64 = 9;
/// Real user id.
pub const AT_UID: u64 = 11;
/// Effective user id.
pub const AT_EUID: u64 = 12;
/// Real group id.
pub const AT_GID: u64 = 13;
/// Effective group id.
pub const AT_EGID: u64 = 14;
/// Address of the platform string ("x86_64").
pub const AT_PLATFORM: u64 = 15;
/// CPU features (CPUID.1:EDX).
pub const AT_HWCAP: u64 = 16;
/// Clock ticks per second (times()).
pub const AT_CLKTCK: u64 = 17;
/// Secure mode (setuid) flag.
pub const AT_SECURE: u64 = 23;
/// Address of 16 random bytes (stack protector and pointer guard seeds).
pub const AT_RANDOM: u64 = 25;
/// More CPU features.
pub const AT_HWCAP2: u64 = 26;
/// Address of the file name the program was executed as.
pub const AT_EXECFN: u64 = 31;

/// Largest stack image accepted (argument and environment strings included).
pub const MAX_STACK_IMAGE: usize = 256 * 1024;

/// Why the stack could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// Arguments and environment too large.
    #[error("arguments and environment take {0} bytes, more than the {MAX_STACK_IMAGE} allowed")]
    TooLarge(usize),
    /// A string with a NUL byte cannot be passed.
    #[error("argument or environment string contains a NUL byte: {0:?}")]
    Nul(String),
}

/// What goes on the stack.
#[derive(Debug, Clone)]
pub struct StackSpec<'a> {
    /// argv, argv[0] first.
    pub argv: &'a [String],
    /// The environment, "KEY=value".
    pub envp: &'a [String],
    /// AT_EXECFN.
    pub execfn: &'a str,
    /// Auxiliary entries other than AT_RANDOM, AT_PLATFORM, AT_EXECFN and AT_NULL, which
    /// the builder adds since they point into the stack.
    pub auxv: &'a [(u64, u64)],
    /// The AT_RANDOM bytes.
    pub random: [u8; 16],
}

/// The stack image: `bytes` go at `sp`, ending at the stack top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    /// The initial RSP (points at argc; 16-byte aligned).
    pub sp: u64,
    /// Memory from `sp` up to the top.
    pub bytes: Vec<u8>,
}

/// Lays out the strings top-down, then the pointer tables below them.
struct Builder {
    top: u64,
    image: Vec<u8>, // reversed: image[0] is the byte at top - 1
}

impl Builder {
    fn cursor(&self) -> u64 {
        self.top - self.image.len() as u64
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Result<u64, StackError> {
        let size = self.image.len() + bytes.len();
        if size > MAX_STACK_IMAGE {
            return Err(StackError::TooLarge(size));
        }
        self.image.extend(bytes.iter().rev());
        Ok(self.cursor())
    }

    fn push_str(&mut self, s: &str) -> Result<u64, StackError> {
        if s.contains('\0') {
            return Err(StackError::Nul(s.to_owned()));
        }
        self.push_bytes(&[0])?;
        self.push_bytes(s.as_bytes())
    }
}

/// Guest addresses of what the strings area holds.
struct Strings {
    execfn: u64,
    envp: Vec<u64>,
    argv: Vec<u64>,
    platform: u64,
    random: u64,
}

fn push_strings(b: &mut Builder, spec: &StackSpec<'_>) -> Result<Strings, StackError> {
    b.push_bytes(&[0; 8])?; // end marker, as Linux leaves one
    let execfn = b.push_str(spec.execfn)?;
    let mut push_all = |list: &[String]| -> Result<Vec<u64>, StackError> {
        let mut addrs = list
            .iter()
            .rev()
            .map(|s| b.push_str(s))
            .collect::<Result<Vec<_>, _>>()?;
        addrs.reverse();
        Ok(addrs)
    };
    let envp = push_all(spec.envp)?;
    let argv = push_all(spec.argv)?;
    let platform = b.push_str("x86_64")?;
    let random = b.push_bytes(&spec.random)?;
    Ok(Strings {
        execfn,
        envp,
        argv,
        platform,
        random,
    })
}

/// argc, argv[], NULL, envp[], NULL, auxv pairs ending with AT_NULL.
fn pointer_table(spec: &StackSpec<'_>, s: &Strings) -> Vec<u64> {
    let mut table = vec![spec.argv.len() as u64];
    table.extend(&s.argv);
    table.push(0);
    table.extend(&s.envp);
    table.push(0);
    let ours = [
        (AT_RANDOM, s.random),
        (AT_PLATFORM, s.platform),
        (AT_EXECFN, s.execfn),
        (AT_NULL, 0),
    ];
    table.extend(spec.auxv.iter().chain(&ours).flat_map(|&(k, v)| [k, v]));
    table
}

/// Builds the stack that ends at `top` (16-byte aligned, above MAX_STACK_IMAGE).
pub fn build(top: u64, spec: &StackSpec<'_>) -> Result<InitialStack, StackError> {
    let mut b = Builder {
        top,
        image: Vec::new(),
    };
    let strings = push_strings(&mut b, spec)?;
    let table = pointer_table(spec, &strings);
    let table_bytes = table.len() as u64 * 8;
    let sp = b.cursor().saturating_sub(table_bytes) & !0xf;
    let size = (top - sp) as usize;
    if size > MAX_STACK_IMAGE {
        return Err(StackError::TooLarge(size));
    }
    let mut head: Vec<u8> = table.iter().flat_map(|v| v.to_le_bytes()).collect();
    head.resize(size - b.image.len(), 0); // alignment padding between table and strings
    head.extend(b.image.iter().rev());
    Ok(InitialStack { sp, bytes: head })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: u64 = 0x100_0000;

    fn word(stack: &InitialStack, addr: u64) -> u64 {
        let at = (addr - stack.sp) as usize;
        u64::from_le_bytes(stack.bytes[at..at + 8].try_into().unwrap())
    }

    fn string(stack: &InitialStack, addr: u64) -> String {
        let at = (addr - stack.sp) as usize;
        let end = stack.bytes[at..].iter().position(|&b| b == 0).unwrap();
        String::from_utf8(stack.bytes[at..at + end].to_vec()).unwrap()
    }

    fn sample() -> InitialStack {
        let argv = ["/bin/echo".to_owned(), "hi".to_owned()];
        let envp = ["PATH=/bin".to_owned()];
        let spec = StackSpec {
            argv: &argv,
            envp: &envp,
            execfn: "/bin/echo",
            auxv: &[(AT_PAGESZ, 4096), (AT_ENTRY, 0x40_1000)],
            random: [7; 16],
        };
        build(TOP, &spec).unwrap()
    }

    #[test]
    fn argc_argv_envp_are_where_crt_start_expects_them() {
        let s = sample();
        assert_eq!(s.sp % 16, 0);
        assert_eq!(s.sp + s.bytes.len() as u64, TOP);
        assert_eq!(word(&s, s.sp), 2);
        assert_eq!(string(&s, word(&s, s.sp + 8)), "/bin/echo");
        assert_eq!(string(&s, word(&s, s.sp + 16)), "hi");
        assert_eq!(word(&s, s.sp + 24), 0);
        assert_eq!(string(&s, word(&s, s.sp + 32)), "PATH=/bin");
        assert_eq!(word(&s, s.sp + 40), 0);
    }

    #[test]
    fn auxv_holds_the_given_entries_and_pointers_into_the_stack() {
        let s = sample();
        let mut aux = std::collections::HashMap::new();
        let mut at = s.sp + 48;
        loop {
            let (k, v) = (word(&s, at), word(&s, at + 8));
            aux.insert(k, v);
            at += 16;
            if k == AT_NULL {
                break;
            }
        }
        assert_eq!(aux[&AT_PAGESZ], 4096);
        assert_eq!(aux[&AT_ENTRY], 0x40_1000);
        assert_eq!(string(&s, aux[&AT_PLATFORM]), "x86_64");
        assert_eq!(string(&s, aux[&AT_EXECFN]), "/bin/echo");
        let random = (aux[&AT_RANDOM] - s.sp) as usize;
        assert_eq!(&s.bytes[random..random + 16], &[7; 16]);
    }

    #[test]
    fn oversized_or_nul_arguments_are_errors() {
        let big = vec!["x".repeat(1024); 300];
        let spec = StackSpec {
            argv: &big,
            envp: &[],
            execfn: "x",
            auxv: &[],
            random: [0; 16],
        };
        assert!(matches!(build(TOP, &spec), Err(StackError::TooLarge(_))));
        let nul = ["a\0b".to_owned()];
        let spec = StackSpec {
            argv: &nul,
            envp: &[],
            execfn: "x",
            auxv: &[],
            random: [0; 16],
        };
        assert!(matches!(build(TOP, &spec), Err(StackError::Nul(_))));
    }
}
