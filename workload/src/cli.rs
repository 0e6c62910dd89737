//! Command-line parsing. Hand-written rather than clap: the workload runs inside a
//! kernel-less microVM where every system call is a VM exit, so it stays small and
//! does nothing at start-up beyond reading its argv.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What the workload was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Print `READY` and exit 0.
    Ready,
    /// Print `READY`, then wait until killed.
    Idle,
    /// Report what the workload can see of its environment.
    Info,
    /// SHA-256 chain: a fixed iteration count, or as many as fit in `seconds`.
    Cpu {
        /// Chain length (gives a checksum identical everywhere).
        iterations: u64,
        /// Run for this long instead of a fixed count.
        seconds: Option<f64>,
    },
    /// Copy bandwidth and first-touch page-fault cost.
    Mem {
        /// Buffer size in MiB.
        size_mib: u64,
        /// Copy passes over the buffer.
        passes: u32,
    },
    /// Cost of a cheap system call.
    Syscall {
        /// Number of calls timed.
        iterations: u64,
    },
    /// Sequential write+fsync and read, and small-file create/unlink.
    FileIo {
        /// Directory to work in (a private subdirectory is made and removed).
        dir: PathBuf,
        /// Size of the sequential file in MiB.
        size_mib: u64,
        /// Number of small files.
        files: u32,
    },
    /// Serve the peer side of the network test.
    NetServe {
        /// Address to listen on (port 0 picks one; the chosen one is printed).
        addr: SocketAddr,
        /// Stop after this many connections (default: serve until killed).
        connections: Option<u64>,
    },
    /// Measure request/response latency and stream throughput against a peer.
    NetConnect {
        /// The peer started with `net --serve`.
        addr: SocketAddr,
        /// Timed 1-byte request/response round trips.
        round_trips: u32,
        /// MiB streamed to the peer.
        stream_mib: u64,
    },
    /// Print the usage text.
    Help,
}

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
workload: the program every isolab isolation model runs unchanged.

Usage: workload <SUBCOMMAND> [OPTIONS]

Every figure is printed as one line `RESULT {json}`.

Subcommands:
  ready                         print READY and exit 0 (startup and teardown cost)
  idle                          print READY, then wait until killed (memory, density)
  info                          what this instance sees: kernel, hostname, pid, uid,
                                CPUs, memory, cgroup, /dev/kvm
  cpu [--iterations N] [--seconds S]
                                SHA-256 chain; ops/s and a checksum that is the same
                                in every model for the same N (default N=500000)
  mem [--size-mib N] [--passes N]
                                copy bandwidth (GB/s) and first-touch page-fault
                                cost (ns/page) on fresh memory (default 64 MiB, 8 passes)
  syscall [--iterations N]      cost of a cheap system call, getpid (default 200000)
  fileio [--dir D] [--size-mib N] [--files N]
                                sequential write+fsync and read (MB/s), small-file
                                create/unlink rate (default ., 32 MiB, 1000 files)
  net --serve ADDR [--connections N]
                                the peer: echo round trips, sink streams
  net --connect ADDR [--round-trips N] [--stream-mib N]
                                TCP round-trip latency (us) and stream throughput
                                (MB/s) against the peer (default 2000, 64 MiB)
  help                          this text

As PID 1 of a Linux guest (no /proc yet), the workload mounts /proc, /sys and /dev,
takes its subcommand from the kernel command line (after `--`), signals the monitor's
ready port, and powers the machine off with its exit status when done.
";

/// A command line that does not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (see `workload --help`)", self.0)
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(UsageError("no subcommand given".into()));
    };
    // `workload cpu --help` asks for the usage text, as with any other tool.
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help);
    }
    let mut opts = Options::new(sub, rest)?;
    let command = match sub.as_str() {
        "ready" => Command::Ready,
        "idle" => Command::Idle,
        "info" => Command::Info,
        "help" | "--help" | "-h" => Command::Help,
        "cpu" => Command::Cpu {
            iterations: opts.number("--iterations", 500_000)?,
            seconds: opts.optional_number("--seconds")?,
        },
        "mem" => Command::Mem {
            size_mib: opts.number("--size-mib", 64)?,
            passes: opts.number("--passes", 8)?,
        },
        "syscall" => Command::Syscall {
            iterations: opts.number("--iterations", 200_000)?,
        },
        "fileio" => Command::FileIo {
            dir: PathBuf::from(opts.take("--dir").unwrap_or_else(|| ".".into())),
            size_mib: opts.number("--size-mib", 32)?,
            files: opts.number("--files", 1000)?,
        },
        "net" => parse_net(&mut opts)?,
        other => return Err(UsageError(format!("unknown subcommand `{other}`"))),
    };
    opts.finish()?;
    Ok(command)
}

fn parse_net(opts: &mut Options) -> Result<Command, UsageError> {
    match (opts.take("--serve"), opts.take("--connect")) {
        (Some(addr), None) => Ok(Command::NetServe {
            addr: parse_addr(&addr)?,
            connections: opts.optional_number("--connections")?,
        }),
        (None, Some(addr)) => Ok(Command::NetConnect {
            addr: parse_addr(&addr)?,
            round_trips: opts.number("--round-trips", 2000)?,
            stream_mib: opts.number("--stream-mib", 64)?,
        }),
        _ => Err(UsageError(
            "net needs exactly one of --serve ADDR or --connect ADDR".into(),
        )),
    }
}

fn parse_addr(text: &str) -> Result<SocketAddr, UsageError> {
    text.parse().map_err(|_| {
        UsageError(format!(
            "`{text}` is not an IP:PORT address (names are not resolved; use e.g. 127.0.0.1:7000)"
        ))
    })
}

/// `--name value` pairs of one subcommand, consumed as they are read.
struct Options {
    subcommand: String,
    pairs: Vec<(String, String)>,
}

impl Options {
    fn new(subcommand: &str, rest: &[String]) -> Result<Self, UsageError> {
        let mut pairs = Vec::new();
        let mut iter = rest.iter();
        while let Some(name) = iter.next() {
            if !name.starts_with("--") {
                return Err(UsageError(format!(
                    "unexpected argument `{name}` for `{subcommand}`"
                )));
            }
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => {
                    let value = iter.next().ok_or_else(|| {
                        UsageError(format!("option `{name}` of `{subcommand}` needs a value"))
                    })?;
                    (name.clone(), value.clone())
                }
            };
            pairs.push((name, value));
        }
        Ok(Self {
            subcommand: subcommand.to_owned(),
            pairs,
        })
    }

    fn take(&mut self, name: &str) -> Option<String> {
        let index = self.pairs.iter().position(|(n, _)| n == name)?;
        Some(self.pairs.remove(index).1)
    }

    fn optional_number<T: std::str::FromStr>(
        &mut self,
        name: &str,
    ) -> Result<Option<T>, UsageError> {
        match self.take(name) {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                UsageError(format!(
                    "option `{name}` of `{}` needs a number, got `{text}`",
                    self.subcommand
                ))
            }),
        }
    }

    fn number<T: std::str::FromStr>(&mut self, name: &str, default: T) -> Result<T, UsageError> {
        Ok(self.optional_number(name)?.unwrap_or(default))
    }

    fn finish(self) -> Result<(), UsageError> {
        match self.pairs.first() {
            None => Ok(()),
            Some((name, _)) => Err(UsageError(format!(
                "unknown option `{name}` for `{}`",
                self.subcommand
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_and_options_parse() {
        assert_eq!(
            parse(&args("cpu")).unwrap(),
            Command::Cpu {
                iterations: 500_000,
                seconds: None
            }
        );
        assert_eq!(
            parse(&args("cpu --iterations 10 --seconds=0.5")).unwrap(),
            Command::Cpu {
                iterations: 10,
                seconds: Some(0.5)
            }
        );
        assert_eq!(
            parse(&args("net --connect 127.0.0.1:7 --round-trips 5")).unwrap(),
            Command::NetConnect {
                addr: "127.0.0.1:7".parse().unwrap(),
                round_trips: 5,
                stream_mib: 64
            }
        );
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        for line in [
            "",
            "frobnicate",
            "cpu --iterations lots",
            "cpu --iterations",
            "cpu --bogus 1",
            "ready extra",
            "net",
            "net --serve localhost:80",
            "net --serve 127.0.0.1:1 --connect 127.0.0.1:2",
        ] {
            assert!(parse(&args(line)).is_err(), "`{line}` should not parse");
        }
    }
}
