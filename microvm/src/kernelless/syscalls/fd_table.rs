//! The guest's file descriptor table: guest fd numbers mapped to host open files.
//!
//! Guest numbers are independent of host numbers. Guest fds 0, 1 and 2 start as the
//! monitor's own stdin, stdout and stderr; closing them in the guest leaves the monitor's
//! streams open. `dup` shares one host open file (and so its offset and status flags),
//! as Linux shares an open file description.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use syscalls::Errno;

/// How many descriptors a guest may hold open (its `RLIMIT_NOFILE`).
pub const MAX_FDS: u32 = 1024;

/// A host open file the guest reaches through one or more guest fds.
#[derive(Debug)]
pub enum HostFile {
    /// One of the monitor's standard streams (0, 1, 2), never closed by the guest.
    Stdio(RawFd),
    /// A descriptor the monitor opened for the guest, closed with its last guest fd.
    Owned(OwnedFd),
}

impl HostFile {
    /// The host descriptor number.
    pub fn raw(&self) -> RawFd {
        match self {
            HostFile::Stdio(fd) => *fd,
            HostFile::Owned(fd) => fd.as_raw_fd(),
        }
    }
}

/// One slot of the table.
#[derive(Debug, Clone)]
pub struct FdEntry {
    /// The shared open file.
    pub file: Arc<HostFile>,
    /// `FD_CLOEXEC`, kept for `F_GETFD` (the guest cannot exec).
    pub cloexec: bool,
}

/// Guest fd number -> open file.
#[derive(Debug)]
pub struct FdTable {
    entries: BTreeMap<u32, FdEntry>,
}

impl FdTable {
    /// A table with guest fds 0-2 bound to the monitor's stdio.
    pub fn with_stdio() -> Self {
        let entries = (0..3)
            .map(|fd| {
                let file = Arc::new(HostFile::Stdio(fd as RawFd));
                (
                    fd,
                    FdEntry {
                        file,
                        cloexec: false,
                    },
                )
            })
            .collect();
        Self { entries }
    }

    /// The entry of a guest fd, or `EBADF`.
    pub fn get(&self, fd: u64) -> Result<&FdEntry, Errno> {
        let fd = u32::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.entries.get(&fd).ok_or(Errno::EBADF)
    }

    /// The host descriptor behind a guest fd, or `EBADF`.
    pub fn host_fd(&self, fd: u64) -> Result<RawFd, Errno> {
        Ok(self.get(fd)?.file.raw())
    }

    /// Installs `file` at the lowest free number `>= min`; `EMFILE` when full.
    pub fn insert_from(
        &mut self,
        min: u32,
        file: Arc<HostFile>,
        cloexec: bool,
    ) -> Result<u32, Errno> {
        let fd = self.lowest_free(min).ok_or(Errno::EMFILE)?;
        self.entries.insert(fd, FdEntry { file, cloexec });
        Ok(fd)
    }

    /// Installs a newly opened host descriptor at the lowest free number.
    pub fn insert(&mut self, fd: OwnedFd, cloexec: bool) -> Result<u32, Errno> {
        self.insert_from(0, Arc::new(HostFile::Owned(fd)), cloexec)
    }

    /// Installs `file` at exactly `fd`, closing what was there (for `dup2`/`dup3`).
    pub fn insert_at(&mut self, fd: u64, file: Arc<HostFile>, cloexec: bool) -> Result<u32, Errno> {
        let fd = u32::try_from(fd)
            .ok()
            .filter(|&fd| fd < MAX_FDS)
            .ok_or(Errno::EBADF)?;
        self.entries.insert(fd, FdEntry { file, cloexec });
        Ok(fd)
    }

    /// Removes a guest fd; the host file closes with its last guest fd.
    pub fn remove(&mut self, fd: u64) -> Result<(), Errno> {
        let fd = u32::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.entries.remove(&fd).map(drop).ok_or(Errno::EBADF)
    }

    /// Sets `FD_CLOEXEC` on a guest fd.
    pub fn set_cloexec(&mut self, fd: u64, on: bool) -> Result<(), Errno> {
        let fd = u32::try_from(fd).map_err(|_| Errno::EBADF)?;
        let entry = self.entries.get_mut(&fd).ok_or(Errno::EBADF)?;
        entry.cloexec = on;
        Ok(())
    }

    /// How many guest fds are open.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no guest fd is open.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn lowest_free(&self, min: u32) -> Option<u32> {
        let mut candidate = min;
        for &used in self.entries.range(min..).map(|(fd, _)| fd) {
            if used != candidate {
                break;
            }
            candidate += 1;
        }
        (candidate < MAX_FDS).then_some(candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devnull() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn stdio_is_preinstalled_and_new_fds_take_the_lowest_number() {
        let mut t = FdTable::with_stdio();
        assert_eq!(t.host_fd(1).unwrap(), 1);
        assert_eq!(t.insert(devnull(), false).unwrap(), 3);
        t.remove(1).unwrap();
        assert_eq!(t.insert(devnull(), false).unwrap(), 1);
        assert_eq!(t.get(7).unwrap_err(), Errno::EBADF);
        assert_eq!(t.get(u64::MAX).unwrap_err(), Errno::EBADF);
    }

    #[test]
    fn host_file_closes_with_its_last_guest_fd() {
        let mut t = FdTable::with_stdio();
        let fd = t.insert(devnull(), false).unwrap();
        let file = t.get(fd.into()).unwrap().file.clone();
        let dup = t.insert_from(10, file.clone(), true).unwrap();
        assert_eq!(dup, 10);
        let host = file.raw();
        let weak = Arc::downgrade(&file);
        drop(file);
        t.remove(fd.into()).unwrap();
        assert_eq!(
            t.host_fd(dup.into()).unwrap(),
            host,
            "the dup still reaches the file"
        );
        t.remove(dup.into()).unwrap();
        assert!(
            weak.upgrade().is_none(),
            "the host file was dropped, so closed"
        );
    }

    #[test]
    fn table_full_is_emfile() {
        let mut t = FdTable::with_stdio();
        let file = t.get(0).unwrap().file.clone();
        for _ in 3..MAX_FDS {
            t.insert_from(0, file.clone(), false).unwrap();
        }
        assert_eq!(t.insert_from(0, file, false), Err(Errno::EMFILE));
        assert_eq!(t.len(), MAX_FDS as usize);
    }
}
