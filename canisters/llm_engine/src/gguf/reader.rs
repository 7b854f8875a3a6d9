//! A forward-only, bounds-checked little-endian cursor over a `ByteSource`.
//! Reads go through a window buffer so a source with costly reads (stable
//! memory) is asked for few, large ranges.

use crate::error::{Error, Result};
use crate::source::{ByteSource, check_range};

const WINDOW: u64 = 64 * 1024;

pub struct Reader<'a, S: ByteSource + ?Sized> {
    source: &'a S,
    len: u64,
    pos: u64,
    window: Vec<u8>,
    window_start: u64,
}

impl<'a, S: ByteSource + ?Sized> Reader<'a, S> {
    pub fn new(source: &'a S) -> Self {
        Reader { source, len: source.len(), pos: 0, window: Vec::new(), window_start: 0 }
    }

    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Fails with `Truncated` unless `n` more bytes can be read.
    pub fn ensure_available(&self, n: u64) -> Result<()> {
        check_range(self.pos, n, self.len)
    }

    pub fn bytes(&mut self, n: u64) -> Result<&[u8]> {
        self.ensure_available(n)?;
        let window_end = self.window_start + self.window.len() as u64;
        if self.pos < self.window_start || self.pos + n > window_end {
            let size = n.max(WINDOW).min(self.len - self.pos);
            self.window.resize(size as usize, 0);
            self.source.read_at(self.pos, &mut self.window)?;
            self.window_start = self.pos;
        }
        let start = (self.pos - self.window_start) as usize;
        self.pos += n;
        Ok(&self.window[start..start + n as usize])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N as u64)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub fn i8(&mut self) -> Result<i8> {
        Ok(self.u8()? as i8)
    }
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A GGUF string: u64 byte length, then UTF-8 bytes.
    pub fn string(&mut self) -> Result<String> {
        let len = self.u64()?;
        let offset = self.pos;
        let bytes = self.bytes(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(Error::InvalidUtf8 { offset }),
        }
    }
}
