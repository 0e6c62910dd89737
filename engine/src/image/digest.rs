//! sha256 content digests: computing them while data streams through, and checking that
//! a digest read from an untrusted file is one (it becomes a path under `blobs/`).

use std::io::{self, Read, Write};

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

/// Why a digest string cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("unsupported digest {0:?}: only sha256:<64 hex digits> is supported")]
    Unsupported(String),
}

/// The sha256 digest of `bytes`.
pub fn of_bytes(bytes: &[u8]) -> Digest {
    from_hasher(Sha256::new_with_prefix(bytes))
}

/// The digest a finished hasher stands for.
pub fn from_hasher(hasher: Sha256) -> Digest {
    let text = format!("sha256:{}", hex::encode(hasher.finalize()));
    text.parse().expect("sha256 digests are always valid")
}

/// The 64 hex digits of a sha256 digest, refusing anything else (other algorithms, paths).
pub fn hex_of(digest: &Digest) -> Result<&str, DigestError> {
    let text = digest.digest();
    let ok = digest.to_string().starts_with("sha256:")
        && text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if ok {
        Ok(text)
    } else {
        Err(DigestError::Unsupported(digest.to_string()))
    }
}

/// Parses and checks a `sha256:<hex>` string.
pub fn parse(text: &str) -> Result<Digest, DigestError> {
    let digest: Digest = text
        .parse()
        .map_err(|_| DigestError::Unsupported(text.to_string()))?;
    hex_of(&digest)?;
    Ok(digest)
}

/// A writer that hashes and counts what passes through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer, the digest and the byte count of everything written.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what passes through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and byte count of everything read so far.
    pub fn finish(self) -> (Digest, u64) {
        (from_hasher(self.hasher), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_one() {
        let d = of_bytes(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn path_like_digests_are_refused() {
        assert!(parse("sha256:../../etc/passwd").is_err());
        assert!(parse("sha512:abcd").is_err());
        assert!(parse(of_bytes(b"x").as_ref()).is_ok());
    }

    #[test]
    fn writer_and_reader_agree() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello").unwrap();
        let (buf, dw, n) = w.finish();
        let mut r = HashingReader::new(&buf[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (dr, m) = r.finish();
        assert_eq!((dw, n), (dr, m));
    }
}
