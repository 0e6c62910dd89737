//! A small IPv4 address allocator for the bridge subnet: who holds which address, in a
//! JSON file guarded by an exclusive `flock`, so concurrent engines never hand out the
//! same address. The lock also serialises creating and removing the bridge itself.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::NetworkError;

/// The bridge subnet's network address.
pub const SUBNET: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 0);
/// Its prefix length.
pub const PREFIX_LEN: u8 = 24;
/// The bridge's own address, the containers' gateway.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);

/// The allocation file inside the allocator's directory.
const FILE_NAME: &str = "ipam.json";

/// An allocator whose state lives in `dir`.
#[derive(Debug, Clone)]
pub struct Ipam {
    dir: PathBuf,
}

/// The allocator, locked: changes are saved by [`IpamLock::save`]; the lock is released
/// when this is dropped.
#[derive(Debug)]
pub struct IpamLock {
    file: Flock<File>,
    path: PathBuf,
    /// Owner (`<state root>:<container id>`) to its address.
    leases: BTreeMap<String, Ipv4Addr>,
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> NetworkError {
    move |source| NetworkError::Ipam { what, source }
}

impl Ipam {
    /// An allocator persisted under `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Ipam { dir: dir.into() }
    }

    /// Takes the exclusive lock and reads the current leases.
    pub fn lock(&self) -> Result<IpamLock, NetworkError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(io_err(format!("creating {}", self.dir.display())))?;
        let path = self.dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(format!("opening {}", path.display())))?;
        let mut file = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| io_err(format!("locking {}", path.display()))(e.into()))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(io_err(format!("reading {}", path.display())))?;
        let leases = parse(&text, &path)?;
        Ok(IpamLock { file, path, leases })
    }
}

fn parse(text: &str, path: &Path) -> Result<BTreeMap<String, Ipv4Addr>, NetworkError> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_json::from_str(text).map_err(|e| NetworkError::Ipam {
        what: format!(
            "parsing {} (delete it if no container is running)",
            path.display()
        ),
        source: std::io::Error::other(e),
    })
}

impl IpamLock {
    /// The address of `owner`, leasing the lowest free one if it has none yet.
    pub fn allocate(&mut self, owner: &str) -> Result<Ipv4Addr, NetworkError> {
        if let Some(addr) = self.leases.get(owner) {
            return Ok(*addr);
        }
        let base = u32::from(SUBNET);
        let host_count = (1u32 << (32 - PREFIX_LEN)) - 1; // the broadcast address is last
        let addr = (2..host_count)
            .map(|h| Ipv4Addr::from(base + h))
            .find(|a| !self.leases.values().any(|l| l == a))
            .ok_or(NetworkError::AddressesExhausted)?;
        self.leases.insert(owner.to_owned(), addr);
        Ok(addr)
    }

    /// Frees the address of `owner`; `false` when it held none.
    pub fn release(&mut self, owner: &str) -> bool {
        self.leases.remove(owner).is_some()
    }

    /// Every lease: owner (`<state root>:<container id>`) to address.
    pub fn leases(&self) -> &BTreeMap<String, Ipv4Addr> {
        &self.leases
    }

    /// Whether no address is leased (the bridge is no longer needed).
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Writes the leases back to the file.
    pub fn save(&mut self) -> Result<(), NetworkError> {
        let text = serde_json::to_string_pretty(&self.leases).map_err(std::io::Error::other);
        let what = format!("writing {}", self.path.display());
        let text = text.map_err(io_err(what.clone()))?;
        let file: &mut File = &mut self.file;
        file.set_len(0).map_err(io_err(what.clone()))?;
        file.rewind().map_err(io_err(what.clone()))?;
        file.write_all(text.as_bytes()).map_err(io_err(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_unique_reused_and_persisted() {
        let tmp = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(tmp.path().join("net"));
        let mut lock = ipam.lock().unwrap();
        assert!(lock.is_empty());
        assert_eq!(lock.allocate("a").unwrap(), Ipv4Addr::new(10, 213, 0, 2));
        assert_eq!(lock.allocate("b").unwrap(), Ipv4Addr::new(10, 213, 0, 3));
        assert_eq!(
            lock.allocate("a").unwrap(),
            Ipv4Addr::new(10, 213, 0, 2),
            "same owner"
        );
        lock.save().unwrap();
        drop(lock);
        let mut lock = ipam.lock().unwrap();
        assert!(lock.release("a"));
        assert!(!lock.release("a"));
        assert_eq!(
            lock.allocate("c").unwrap(),
            Ipv4Addr::new(10, 213, 0, 2),
            "freed reused"
        );
        assert_eq!(lock.allocate("b").unwrap(), Ipv4Addr::new(10, 213, 0, 3));
    }

    #[test]
    fn the_subnet_runs_out_with_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let mut lock = Ipam::new(tmp.path()).lock().unwrap();
        for i in 0..253 {
            lock.allocate(&format!("c{i}")).unwrap();
        }
        assert_eq!(
            lock.allocate("c252").unwrap(),
            Ipv4Addr::new(10, 213, 0, 254)
        );
        assert!(matches!(
            lock.allocate("one-more"),
            Err(NetworkError::AddressesExhausted)
        ));
    }

    #[test]
    fn concurrent_allocators_never_share_an_address() {
        let tmp = tempfile::tempdir().unwrap();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let ipam = Ipam::new(tmp.path());
                std::thread::spawn(move || {
                    let mut lock = ipam.lock().unwrap();
                    let a = lock.allocate(&format!("t{i}")).unwrap();
                    lock.save().unwrap();
                    a
                })
            })
            .collect();
        let mut got: Vec<Ipv4Addr> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 8);
    }

    #[test]
    fn a_corrupt_file_is_reported_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(FILE_NAME), "{not json").unwrap();
        let err = Ipam::new(tmp.path()).lock().unwrap_err();
        assert!(err.to_string().contains("ipam.json"), "{err}");
    }
}
