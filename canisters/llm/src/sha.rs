//! SHA-256 whose whole running state is a small fixed-size record, so the
//! hash of a file being uploaded is kept in stable memory next to the file:
//! an upgrade (or a rolled-back message) never forces re-hashing hundreds of
//! megabytes. The compression function is `sha2`'s; only the buffering and
//! the final padding (FIPS 180-4, 5.1.1) are done here.

use sha2::compress256;
use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;

const INITIAL: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const BLOCK: usize = 64;

/// Bytes of [`Sha256State::to_bytes`].
pub const ENCODED_LEN: usize = 32 + 8 + 1 + BLOCK;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sha256State {
    state: [u32; 8],
    /// Bytes hashed so far.
    len: u64,
    /// The last `len % 64` bytes, not yet compressed.
    tail: Vec<u8>,
}

impl Default for Sha256State {
    fn default() -> Self {
        Sha256State { state: INITIAL, len: 0, tail: Vec::new() }
    }
}

fn compress(state: &mut [u32; 8], block: &[u8]) {
    let block: &GenericArray<u8, U64> = GenericArray::from_slice(block);
    compress256(state, std::slice::from_ref(block));
}

impl Sha256State {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.tail.is_empty() {
            let take = (BLOCK - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.tail.len() < BLOCK {
                return;
            }
            compress(&mut self.state, &self.tail);
            self.tail.clear();
        }
        let mut blocks = data.chunks_exact(BLOCK);
        for block in &mut blocks {
            compress(&mut self.state, block);
        }
        self.tail.extend_from_slice(blocks.remainder());
    }

    /// The digest of everything hashed so far (the state itself is kept, so
    /// more data can follow).
    pub fn finalize(&self) -> [u8; 32] {
        let mut state = self.state;
        let mut last = self.tail.clone();
        last.push(0x80);
        if last.len() > BLOCK - 8 {
            last.resize(BLOCK, 0);
            compress(&mut state, &last);
            last.clear();
        }
        last.resize(BLOCK - 8, 0);
        last.extend_from_slice(&(self.len.wrapping_mul(8)).to_be_bytes());
        compress(&mut state, &last);
        let mut digest = [0u8; 32];
        for (out, word) in digest.chunks_exact_mut(4).zip(state) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }

    pub fn hex(&self) -> String {
        hex::encode(self.finalize())
    }

    /// Fixed layout: 8 state words, the length, the tail length, the tail
    /// padded to 64 bytes (all little-endian).
    pub fn to_bytes(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        for (chunk, word) in out[..32].chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out[32..40].copy_from_slice(&self.len.to_le_bytes());
        out[40] = self.tail.len() as u8;
        out[41..41 + self.tail.len()].copy_from_slice(&self.tail);
        out
    }

    /// The inverse of `to_bytes`; None if the bytes cannot be a state.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != ENCODED_LEN {
            return None;
        }
        let mut state = [0u32; 8];
        for (word, chunk) in state.iter_mut().zip(bytes[..32].chunks_exact(4)) {
            *word = u32::from_le_bytes(chunk.try_into().ok()?);
        }
        let len = u64::from_le_bytes(bytes[32..40].try_into().ok()?);
        let tail_len = bytes[40] as usize;
        if tail_len >= BLOCK || tail_len as u64 != len % BLOCK as u64 {
            return None;
        }
        Some(Sha256State { state, len, tail: bytes[41..41 + tail_len].to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 13) as u8).collect()
    }

    #[test]
    fn matches_sha2_for_every_padding_case_and_split() {
        for n in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000] {
            let bytes = data(n);
            let expected: [u8; 32] = Sha256::digest(&bytes).into();
            let mut whole = Sha256State::new();
            whole.update(&bytes);
            assert_eq!(whole.finalize(), expected, "n = {n}");
            for split in [1, 3, 64, 70] {
                let mut parts = Sha256State::new();
                for part in bytes.chunks(split) {
                    parts.update(part);
                }
                assert_eq!(parts.finalize(), expected, "n = {n}, split {split}");
            }
        }
    }

    #[test]
    fn the_state_survives_encoding_mid_stream() {
        let bytes = data(300);
        let mut a = Sha256State::new();
        a.update(&bytes[..130]);
        let mut b = Sha256State::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(a, b);
        b.update(&bytes[130..]);
        assert_eq!(b.hex(), hex::encode(Sha256::digest(&bytes)));
        assert_eq!(Sha256State::from_bytes(&[0u8; 10]), None);
        let mut bad = a.to_bytes();
        bad[40] = 64;
        assert_eq!(Sha256State::from_bytes(&bad), None);
    }
}
