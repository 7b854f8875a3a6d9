//! Where the bytes of a model file come from. Parsing and loading only ever
//! ask for byte ranges, so the file can live in memory, on disk, or in a
//! canister's stable memory.

use crate::error::{Error, Result};

pub trait ByteSource {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// Fills `buf` with the bytes at `offset..offset + buf.len()`.
    /// Implementations must fail (not pad) when the range passes the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The error every source returns for a range past its end.
pub fn check_range(offset: u64, needed: u64, len: u64) -> Result<()> {
    match offset.checked_add(needed) {
        Some(end) if end <= len => Ok(()),
        _ => Err(Error::Truncated { offset, needed, len }),
    }
}

impl ByteSource for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(offset, buf.len() as u64, ByteSource::len(self))?;
        let start = offset as usize;
        buf.copy_from_slice(&self[start..start + buf.len()]);
        Ok(())
    }
}

impl ByteSource for Vec<u8> {
    fn len(&self) -> u64 {
        ByteSource::len(self.as_slice())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.as_slice().read_at(offset, buf)
    }
}

impl<S: ByteSource + ?Sized> ByteSource for &S {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_at(offset, buf)
    }
}
