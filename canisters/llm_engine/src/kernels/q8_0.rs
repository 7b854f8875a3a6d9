//! Q8_0: blocks of 32 weights, each a half-precision scale `d` followed by 32
//! signed bytes `q`; weight = d * q. Encoding (for synthetic models) and the
//! plain dequantization; inference goes through `packed` like every
//! quantized type.

use super::half::{f16_to_f32, f32_to_f16};

pub const BLOCK_LEN: usize = 32;
pub const BLOCK_BYTES: usize = 34;

/// ggml's block scale: the largest magnitude maps to 127.
fn block_scale(block: &[f32]) -> (f32, f32) {
    let max_abs = block.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = max_abs / 127.0;
    let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
    (d, inverse)
}

/// Encodes f32 values (a multiple of 32) as Q8_0 blocks.
pub fn quantize(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / BLOCK_LEN * BLOCK_BYTES);
    for block in values.chunks_exact(BLOCK_LEN) {
        let (d, inverse) = block_scale(block);
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        out.extend(block.iter().map(|&v| (v * inverse).round() as i8 as u8));
    }
    out
}

pub fn dequantize_row(row: &[u8], out: &mut [f32]) {
    for (block, out) in row.chunks_exact(BLOCK_BYTES).zip(out.chunks_exact_mut(BLOCK_LEN)) {
        let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
        for (o, &q) in out.iter_mut().zip(&block[2..]) {
            *o = d * (q as i8) as f32;
        }
    }
}
