//! The ggml block formats, decoded into the packed kernel's terms (signed
//! byte values, a scale and maybe an offset per block of 32 or 16) so that
//! `scale * q (+ offset)` is, bit for bit, ggml's dequantization; and simple
//! encoders for writing synthetic models.
//!
//! Formats (little-endian, `d`/`m`/`dmin` are halves):
//! - Q4_0 (18 B / 32): `d`, 16 bytes: element j low nibble, j+16 high; w = d (n - 8).
//! - Q4_1 (20 B / 32): `d`, `m`, nibbles as Q4_0; w = d n + m.
//! - Q5_0 (22 B / 32): `d`, u32 `qh` (bit j: fifth bit of element j), nibbles; w = d (n - 16).
//! - Q5_1 (24 B / 32): `d`, `m`, `qh`, nibbles; w = d n + m.
//! - Q8_0 (34 B / 32): `d`, 32 signed bytes; w = d q.
//! - Q4_K (144 B / 256): `d`, `dmin`, 12 bytes of eight 6-bit (scale, min)
//!   pairs, 128 bytes: 64-element chunk c takes bytes 32c.., low nibbles
//!   for sub-block 2c, high for 2c+1; w = (d sc) n - (dmin m).
//! - Q5_K (176 B / 256): as Q4_K with 32 bytes `qh` before the nibbles
//!   (bit 2c / 2c+1 of byte l: fifth bit of element l of sub-block 2c / 2c+1).
//! - Q6_K (210 B / 256): 128 bytes low nibbles, 64 bytes of 2-bit highs, 16
//!   signed scales (one per 16 elements), `d`; w = (d sc) (n - 32).

use super::half::{f16_to_f32, f32_to_f16};
use super::packed::DecodedRow;
use crate::gguf::TensorType;

/// Elements per packed scale and whether the type has offsets, for the
/// types the packed kernel takes.
pub fn form(ty: TensorType) -> Option<(usize, bool)> {
    use TensorType::*;
    Some(match ty {
        Q4_0 | Q5_0 | Q8_0 => (32, false),
        Q4_1 | Q5_1 | Q4_K | Q5_K => (32, true),
        Q6_K => (16, false),
        _ => return None,
    })
}

fn half(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Decodes one row (`cols` elements of type `ty`) into `out`.
pub fn decode_row(ty: TensorType, row: &[u8], out: DecodedRow<'_>) {
    use TensorType::*;
    let DecodedRow { quants, scales, offsets } = out;
    let block_bytes = ty.block_bytes() as usize;
    let blocks = row.chunks_exact(block_bytes);
    match ty {
        Q8_0 => {
            for (i, b) in blocks.enumerate() {
                scales[i] = half(b, 0);
                for (q, &v) in quants[32 * i..][..32].iter_mut().zip(&b[2..34]) {
                    *q = v as i8;
                }
            }
        }
        Q4_0 | Q4_1 | Q5_0 | Q5_1 => {
            let has_min = matches!(ty, Q4_1 | Q5_1);
            let five = matches!(ty, Q5_0 | Q5_1);
            for (i, b) in blocks.enumerate() {
                scales[i] = half(b, 0);
                let mut at = 2;
                if has_min {
                    offsets[i] = half(b, 2);
                    at = 4;
                }
                let qh = if five { u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) } else { 0 };
                if five {
                    at += 4;
                }
                let bias = match (has_min, five) {
                    (true, _) => 0,
                    (false, false) => 8,
                    (false, true) => 16,
                };
                let q = &mut quants[32 * i..][..32];
                for j in 0..16 {
                    let byte = b[at + j];
                    let high = |bit: usize| (((qh >> bit) & 1) << 4) as i32;
                    q[j] = ((byte & 0xf) as i32 + high(j) - bias) as i8;
                    q[j + 16] = ((byte >> 4) as i32 + high(j + 16) - bias) as i8;
                }
            }
        }
        Q4_K | Q5_K => {
            let five = ty == Q5_K;
            for (i, b) in blocks.enumerate() {
                let (d, dmin) = (half(b, 0), half(b, 2));
                let packed_scales = &b[4..16];
                let (qh, qs) = if five { (&b[16..48], &b[48..176]) } else { (&b[0..0], &b[16..144]) };
                for sub in 0..8 {
                    let (sc, m) = scale_min(packed_scales, sub);
                    scales[8 * i + sub] = d * sc as f32;
                    offsets[8 * i + sub] = -(dmin * m as f32);
                    let (chunk, high_half) = (sub / 2, sub % 2 == 1);
                    let q = &mut quants[256 * i + 32 * sub..][..32];
                    for (l, q) in q.iter_mut().enumerate() {
                        let byte = qs[32 * chunk + l];
                        let low = if high_half { byte >> 4 } else { byte & 0xf };
                        let fifth = if five { ((qh[l] >> sub) & 1) << 4 } else { 0 };
                        *q = (low | fifth) as i8;
                    }
                }
            }
        }
        Q6_K => {
            for (i, b) in blocks.enumerate() {
                let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
                let d = half(b, 208);
                for (s, &v) in scales[16 * i..][..16].iter_mut().zip(sc) {
                    *s = d * (v as i8) as f32;
                }
                let q = &mut quants[256 * i..][..256];
                for n in 0..2 {
                    for l in 0..32 {
                        let (lo0, lo1, h) = (ql[64 * n + l], ql[64 * n + l + 32], qh[32 * n + l]);
                        let parts = [
                            (lo0 & 0xf) | ((h & 3) << 4),
                            (lo1 & 0xf) | (((h >> 2) & 3) << 4),
                            (lo0 >> 4) | (((h >> 4) & 3) << 4),
                            (lo1 >> 4) | (((h >> 6) & 3) << 4),
                        ];
                        for (p, &v) in parts.iter().enumerate() {
                            q[128 * n + 32 * p + l] = (v as i32 - 32) as i8;
                        }
                    }
                }
            }
        }
        _ => unreachable!("form() lists the packed types"),
    }
}

/// Sub-block `j`'s 6-bit scale and min from the 12 packed bytes.
fn scale_min(q: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

fn put_half(out: &mut Vec<u8>, v: f32) {
    out.extend_from_slice(&f32_to_f16(v).to_le_bytes());
}

fn round_clamp(v: f32, low: i32, high: i32) -> i32 {
    (v.round() as i32).clamp(low, high)
}

/// Encodes `values` (whole blocks) as `ty`, a plain round-to-nearest
/// quantization (not llama.cpp's search for the best scales): good enough
/// for synthetic models, whose quality does not matter.
pub fn encode(ty: TensorType, values: &[f32]) -> Vec<u8> {
    use TensorType::*;
    let mut out = Vec::new();
    let block_len = ty.block_len() as usize;
    for block in values.chunks_exact(block_len) {
        let max = block.iter().fold(f32::MIN, |a, &b| a.max(b));
        let min = block.iter().fold(f32::MAX, |a, &b| a.min(b));
        let amax = max.max(-min);
        match ty {
            Q4_0 | Q5_0 => {
                let levels = if ty == Q4_0 { 8 } else { 16 };
                let d = amax / (levels - 1) as f32;
                put_half(&mut out, d);
                let d = f16_to_f32(f32_to_f16(d));
                let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
                let q: Vec<i32> = block.iter().map(|&v| round_clamp(v * inv, -levels, levels - 1) + levels).collect();
                push_nibbles(&mut out, &q, ty == Q5_0);
            }
            Q4_1 | Q5_1 => {
                let top = if ty == Q4_1 { 15 } else { 31 };
                let d = (max - min) / top as f32;
                put_half(&mut out, d);
                put_half(&mut out, min);
                let (d, m) = (f16_to_f32(f32_to_f16(d)), f16_to_f32(f32_to_f16(min)));
                let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
                let q: Vec<i32> = block.iter().map(|&v| round_clamp((v - m) * inv, 0, top)).collect();
                push_nibbles(&mut out, &q, ty == Q5_1);
            }
            Q8_0 => out.extend(super::q8_0::quantize(block)),
            Q4_K | Q5_K => encode_k(&mut out, block, ty == Q5_K),
            Q6_K => encode_q6_k(&mut out, block),
            _ => unreachable!("encode is only called for packed types"),
        }
    }
    out
}

/// The 16 nibble bytes (and for five-bit types the u32 of high bits first).
fn push_nibbles(out: &mut Vec<u8>, q: &[i32], five: bool) {
    if five {
        let qh = q.iter().enumerate().fold(0u32, |h, (j, &v)| h | ((((v >> 4) & 1) as u32) << j));
        out.extend_from_slice(&qh.to_le_bytes());
    }
    for j in 0..16 {
        out.push(((q[j] & 0xf) | ((q[j + 16] & 0xf) << 4)) as u8);
    }
}

fn encode_k(out: &mut Vec<u8>, block: &[f32], five: bool) {
    let top = if five { 31 } else { 15 };
    let mut sub_scale = [0f32; 8];
    let mut sub_min = [0f32; 8];
    for (j, sub) in block.chunks_exact(32).enumerate() {
        let max = sub.iter().fold(f32::MIN, |a, &b| a.max(b));
        let min = sub.iter().fold(0f32, |a, &b| a.min(b));
        sub_scale[j] = (max - min) / top as f32;
        sub_min[j] = -min;
    }
    let d = sub_scale.iter().fold(0f32, |a, &b| a.max(b)) / 63.0;
    let dmin = sub_min.iter().fold(0f32, |a, &b| a.max(b)) / 63.0;
    put_half(out, d);
    put_half(out, dmin);
    let (d, dmin) = (f16_to_f32(f32_to_f16(d)), f16_to_f32(f32_to_f16(dmin)));
    let step = |v: f32, unit: f32| if unit != 0.0 { round_clamp(v / unit, 0, 63) as u8 } else { 0 };
    let sc: Vec<u8> = sub_scale.iter().map(|&s| step(s, d)).collect();
    let m: Vec<u8> = sub_min.iter().map(|&s| step(s, dmin)).collect();
    let mut packed = [0u8; 12];
    for k in 0..4 {
        packed[k] = sc[k] | ((sc[k + 4] >> 4) << 6);
        packed[k + 4] = m[k] | ((m[k + 4] >> 4) << 6);
        packed[k + 8] = (sc[k + 4] & 0xf) | ((m[k + 4] & 0xf) << 4);
    }
    out.extend_from_slice(&packed);
    let mut q = [0i32; 256];
    for (j, sub) in block.chunks_exact(32).enumerate() {
        let (scale, offset) = (d * sc[j] as f32, dmin * m[j] as f32);
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        for (l, &v) in sub.iter().enumerate() {
            q[32 * j + l] = round_clamp((v + offset) * inv, 0, top);
        }
    }
    if five {
        let mut qh = [0u8; 32];
        for (e, &v) in q.iter().enumerate() {
            qh[e % 32] |= (((v >> 4) & 1) as u8) << (e / 32);
        }
        out.extend_from_slice(&qh);
    }
    for chunk in 0..4 {
        for l in 0..32 {
            out.push(((q[64 * chunk + l] & 0xf) | ((q[64 * chunk + 32 + l] & 0xf) << 4)) as u8);
        }
    }
}

fn encode_q6_k(out: &mut Vec<u8>, block: &[f32]) {
    let mut sub_scale = [0f32; 16];
    for (j, sub) in block.chunks_exact(16).enumerate() {
        let amax = sub.iter().fold(0f32, |a, &b| a.max(b.abs()));
        sub_scale[j] = amax / 31.0;
    }
    let d = sub_scale.iter().fold(0f32, |a, &b| a.max(b)) / 127.0;
    let d_half = f16_to_f32(f32_to_f16(d));
    let sc: Vec<i8> =
        sub_scale.iter().map(|&s| if d_half != 0.0 { round_clamp(s / d_half, -128, 127) as i8 } else { 0 }).collect();
    let mut q = [0u8; 256];
    for (e, &v) in block.iter().enumerate() {
        let scale = d_half * sc[e / 16] as f32;
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        q[e] = (round_clamp(v * inv, -32, 31) + 32) as u8;
    }
    let (mut ql, mut qh) = ([0u8; 128], [0u8; 64]);
    for n in 0..2 {
        for l in 0..32 {
            let at = |p: usize| q[128 * n + 32 * p + l];
            ql[64 * n + l] = (at(0) & 0xf) | ((at(2) & 0xf) << 4);
            ql[64 * n + l + 32] = (at(1) & 0xf) | ((at(3) & 0xf) << 4);
            qh[32 * n + l] = (at(0) >> 4) | ((at(1) >> 4) << 2) | ((at(2) >> 4) << 4) | ((at(3) >> 4) << 6);
        }
    }
    out.extend_from_slice(&ql);
    out.extend_from_slice(&qh);
    out.extend(sc.iter().map(|&s| s as u8));
    put_half(out, d);
}
