//! `fileio`: sequential write+fsync and read throughput, and the rate of small-file
//! create/unlink, in a private directory that is removed afterwards, even on failure.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::seconds_since;
use crate::result::ResultLine;

const CHUNK: usize = 1 << 20;

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn create(parent: &Path) -> io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = parent.join(format!("isolab-fileio-{}-{nanos}", std::process::id()));
        fs::create_dir(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", dir.display())))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs the three measurements in a scratch directory under `dir`.
pub fn run(dir: &Path, size_mib: u64, files: u32) -> io::Result<ResultLine> {
    let scratch = Scratch::create(dir)?;
    let data = scratch.0.join("sequential");
    let bytes = size_mib.max(1) as usize * CHUNK;

    let start = Instant::now();
    write_file(&data, bytes)?;
    let write_mb_s = bytes as f64 / seconds_since(start) / 1e6;

    let start = Instant::now();
    let read = read_file(&data)?;
    let read_mb_s = read as f64 / seconds_since(start) / 1e6;
    if read != bytes {
        return Err(io::Error::other(format!(
            "read back {read} bytes of {bytes} written"
        )));
    }

    let files = files.max(1);
    let start = Instant::now();
    create_and_unlink(&scratch.0, files)?;
    let files_s = f64::from(files) / seconds_since(start);

    Ok(ResultLine::new("fileio")
        .value("write_mb_per_s", write_mb_s, "MB/s")
        .value("read_mb_per_s", read_mb_s, "MB/s")
        .value("create_unlink_per_s", files_s, "files/s")
        .value("size_mib", size_mib as f64, "MiB")
        .fact("read_from", "page cache (file just written)"))
}

fn write_file(path: &Path, bytes: usize) -> io::Result<()> {
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
    let mut file = File::create(path)?;
    for _ in 0..bytes / CHUNK {
        file.write_all(&chunk)?;
    }
    file.sync_all()
}

fn read_file(path: &Path) -> io::Result<usize> {
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        match file.read(&mut buffer)? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

fn create_and_unlink(dir: &Path, files: u32) -> io::Result<()> {
    let names: Vec<PathBuf> = (0..files).map(|i| dir.join(format!("f{i}"))).collect();
    for name in &names {
        File::create(name)?.write_all(b"isolab small file")?;
    }
    for name in &names {
        fs::remove_file(name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_leaves_nothing_behind() {
        let parent = tempfile::tempdir().unwrap();
        let line = run(parent.path(), 1, 10).unwrap();
        for key in ["write_mb_per_s", "read_mb_per_s", "create_unlink_per_s"] {
            assert!(line.values[key].value > 0.0, "{key}");
        }
        assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn missing_directory_is_an_error_that_names_it() {
        let err = run(Path::new("/nonexistent/isolab"), 1, 1).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/isolab"), "{err}");
    }
}
