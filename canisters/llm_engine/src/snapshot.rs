//! The byte form of a saved session (a prompt cache): what is needed to go
//! on exactly where the session was, without evaluating its tokens again.
//!
//! Layout, little-endian: the magic `LLMSESS1` (8 bytes); the model id (32
//! bytes, e.g. the file's SHA-256); the cache shape as four u32 (layers,
//! K/V width, embedding width, vocabulary); the cache type (u8: 0 f32,
//! 1 f16) and whether a last hidden state follows (u8); the token count
//! (u32) and the tokens (u32 each); the hidden state (embedding width f32s)
//! if present; the keys, then the values (token count × layers × K/V width
//! values each, as the cache stores them). Decoding checks every length, so
//! truncated or padded bytes are refused with [`Error::BadSnapshot`].

use crate::error::{Error, Result};
use crate::kv_cache::CacheType;

const MAGIC: &[u8; 8] = b"LLMSESS1";

/// A decoded snapshot; `kv` borrows the keys and values bytes.
pub struct Saved<'a> {
    pub model_id: [u8; 32],
    pub shape: [usize; 4],
    pub cache_type: CacheType,
    pub tokens: Vec<u32>,
    pub last_hidden: Option<Vec<f32>>,
    pub kv: &'a [u8],
}

pub fn encode(
    model_id: &[u8; 32],
    shape: [usize; 4],
    cache_type: CacheType,
    tokens: &[u32],
    last_hidden: Option<&[f32]>,
    kv: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 4 * tokens.len() + 4 * last_hidden.map_or(0, <[f32]>::len) + kv.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(model_id);
    for d in shape {
        out.extend_from_slice(&(d as u32).to_le_bytes());
    }
    out.push(match cache_type {
        CacheType::F32 => 0,
        CacheType::F16 => 1,
    });
    out.push(last_hidden.is_some() as u8);
    out.extend_from_slice(&(tokens.len() as u32).to_le_bytes());
    out.extend(tokens.iter().flat_map(|t| t.to_le_bytes()));
    out.extend(last_hidden.unwrap_or_default().iter().flat_map(|v| v.to_le_bytes()));
    out.extend_from_slice(kv);
    out
}

fn bad(what: &str) -> Error {
    Error::BadSnapshot(what.to_string())
}

/// Reads bytes in order, refusing to run past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
}

pub fn decode(bytes: &[u8]) -> Result<Saved<'_>> {
    let mut r = Reader { bytes };
    if r.take(8)? != MAGIC {
        return Err(bad("not a saved session"));
    }
    let model_id: [u8; 32] = r.take(32)?.try_into().expect("32 bytes");
    let mut shape = [0usize; 4];
    for d in &mut shape {
        *d = r.u32()? as usize;
    }
    let cache_type = match r.u8()? {
        0 => CacheType::F32,
        1 => CacheType::F16,
        t => return Err(bad(&format!("unknown cache type {t}"))),
    };
    let has_hidden = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(bad("bad hidden-state flag")),
    };
    let n = r.u32()? as usize;
    let token_bytes = n.checked_mul(4).ok_or_else(|| bad("too many tokens"))?;
    let tokens = r.take(token_bytes)?.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let last_hidden = match has_hidden {
        false => None,
        true => {
            let len = shape[2].checked_mul(4).ok_or_else(|| bad("embedding too wide"))?;
            let b = r.take(len)?;
            Some(b.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        }
    };
    let values = n.checked_mul(shape[0]).and_then(|v| v.checked_mul(shape[1])).ok_or_else(|| bad("cache too big"))?;
    let kv_len = values.checked_mul(2 * cache_type.bytes_per_value()).ok_or_else(|| bad("cache too big"))?;
    let kv = r.take(kv_len)?;
    if !r.bytes.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(Saved { model_id, shape, cache_type, tokens, last_hidden, kv })
}
