//! virtio-blk on a raw disk image: read, write, flush and get-ID requests, each a
//! descriptor chain (header, data, status byte) served with positioned file I/O.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP,
    VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
};
use virtio_queue::{DescriptorChain, Queue, QueueT, Reader, Writer};
use vm_memory::GuestMemoryMmap;

use super::{VirtioDevice, VIRTIO_F_VERSION_1};

/// The virtio device ID of a block device.
pub const VIRTIO_ID_BLOCK: u32 = 2;
/// Bytes per sector, as virtio-blk counts them.
pub const SECTOR_SIZE: u64 = 512;
/// Entries in the request queue.
const QUEUE_SIZE: u16 = 256;
/// Length of the serial number a GET_ID request returns.
const ID_LEN: usize = 20;

/// Why the disk could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// Opening or sizing the image.
    #[error("opening the disk image {path}: {source}")]
    Open {
        /// The image.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// A virtio block device backed by a raw image file.
#[derive(Debug)]
pub struct Block {
    file: File,
    sectors: u64,
    id: [u8; ID_LEN],
}

impl Block {
    /// Opens `path` read-write.
    pub fn open(path: &Path) -> Result<Self, BlockError> {
        let err = |source| BlockError::Open {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        let mut id = [0u8; ID_LEN];
        let name = b"isolab-disk";
        id[..name.len()].copy_from_slice(name);
        Ok(Self {
            file,
            sectors: len / SECTOR_SIZE,
            id,
        })
    }

    /// Serves one request; returns the bytes written into the chain.
    fn serve(&mut self, mem: &GuestMemoryMmap, chain: DescriptorChain<&GuestMemoryMmap>) -> u32 {
        let (Ok(mut reader), Ok(mut writer)) =
            (Reader::new(mem, chain.clone()), Writer::new(mem, chain))
        else {
            return 0;
        };
        let Ok(header) = reader.read_obj::<[u8; 16]>() else {
            return 0;
        };
        let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let sector = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
        let Some(data_len) = writer.available_bytes().checked_sub(1) else {
            return 0; // no room for the status byte: a malformed chain
        };
        // split_at leaves `writer` the first data_len bytes and returns the rest.
        let Ok(mut status_writer) = writer.split_at(data_len) else {
            return 0;
        };
        let status = self.request(kind, sector, &mut reader, &mut writer, data_len);
        let written = writer.bytes_written();
        let _ = status_writer.write_obj(status as u8);
        (written + 1) as u32
    }

    fn request(
        &mut self,
        kind: u32,
        sector: u64,
        reader: &mut Reader<'_>,
        data: &mut Writer<'_>,
        data_len: usize,
    ) -> u32 {
        let result = match kind {
            VIRTIO_BLK_T_IN => self.read_sectors(sector, data, data_len),
            VIRTIO_BLK_T_OUT => self.write_sectors(sector, reader),
            VIRTIO_BLK_T_FLUSH => self.file.sync_data(),
            VIRTIO_BLK_T_GET_ID => data.write_all(&self.id[..ID_LEN.min(data_len)]),
            _ => return VIRTIO_BLK_S_UNSUPP,
        };
        if result.is_ok() {
            VIRTIO_BLK_S_OK
        } else {
            VIRTIO_BLK_S_IOERR
        }
    }

    fn check_range(&self, sector: u64, len: usize) -> io::Result<u64> {
        let end = sector.checked_add((len as u64).div_ceil(SECTOR_SIZE));
        match end {
            Some(end) if end <= self.sectors => Ok(sector * SECTOR_SIZE),
            _ => Err(io::Error::other("request beyond the end of the disk")),
        }
    }

    fn read_sectors(&mut self, sector: u64, out: &mut Writer<'_>, len: usize) -> io::Result<()> {
        let offset = self.check_range(sector, len)?;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, offset)?;
        out.write_all(&buf)
    }

    fn write_sectors(&mut self, sector: u64, reader: &mut Reader<'_>) -> io::Result<()> {
        let offset = self.check_range(sector, reader.available_bytes())?;
        let mut buf = Vec::with_capacity(reader.available_bytes());
        reader.read_to_end(&mut buf)?;
        self.file.write_all_at(&buf, offset)
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | (1 << VIRTIO_BLK_F_FLUSH)
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // The config space starts with the capacity in sectors (le64).
        let config = self.sectors.to_le_bytes();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = usize::try_from(offset)
                .ok()
                .and_then(|o| config.get(o + i))
                .copied()
                .unwrap_or(0);
        }
    }

    fn process_queue(&mut self, mem: &GuestMemoryMmap, _index: usize, queue: &mut Queue) -> bool {
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            let len = self.serve(mem, chain);
            if queue.add_used(mem, head, len).is_err() {
                break;
            }
            used = true;
        }
        used
    }
}
