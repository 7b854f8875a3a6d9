//! The int8 kernel behind every quantized type: weights repacked at load
//! time, four rows interleaved, as signed bytes with one f32 scale (and, for
//! the types with a minimum, one f32 offset) per block of 16 or 32 elements:
//! weight = scale * q (+ offset).
//!
//! Weight layout, per group of four rows and per block, one byte stream:
//! for each pair `k` of elements (2k, 2k+1), the pair of each row in turn
//! (r0 r0 r1 r1 r2 r2 r3 r3: 8 bytes); then the four rows' scales (f32),
//! then their offsets if the type has them. Loaded sign-extended to i16
//! (`v128.load8x8_s`) and multiplied by the activation pair splatted to all
//! lanes (`v128.load32_splat` of two i16s), `i32x4.dot_i16x8_s` gives, in
//! lane r, row r's two products summed: the lanes are the rows, so no
//! horizontal reduction is ever needed. Activations are quantized once per
//! matrix product like ggml's q8_0 (blocks of 32, scale `max|x| / 127`
//! rounded to half precision, values in -127..=127), stored per block as
//! the i16 values, then `dx` (the scale) and `dx * (sum of the values)`.
//!
//! Arithmetic, per row (lane), identical in the scalar reference and the
//! simd128 code: for each block, the exact integer sum `s` of the block's
//! products, then `acc += (s as f32) * (scale * dx)` and, with offsets,
//! `acc += offset * (dx * sum)`, blocks in order from a zero accumulator.
//!
//! On the IC every wasm operator costs about the same (SIMD ones included),
//! so what counts is operators per weight: five per eight weights (two
//! loads with their base addresses as load offsets, the dot, the add) plus
//! about fifteen per block, two blocks per loop iteration.

use super::half::round_to_f16;
use super::lanes::{self, F32x4};

/// A weight matrix in the packed form (see the module comment).
#[derive(Clone, Debug)]
pub struct PackedMatrix {
    rows: usize,
    cols: usize,
    /// Elements per scale: 16 or 32.
    block: usize,
    has_offsets: bool,
    data: Vec<u8>,
}

/// One row decoded into the packed form's terms: `cols` quantized values,
/// and a scale (and offset) per block.
pub struct DecodedRow<'a> {
    pub quants: &'a mut [i8],
    pub scales: &'a mut [f32],
    pub offsets: &'a mut [f32],
}

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl PackedMatrix {
    /// Packs `rows` rows of `cols` elements (a multiple of 32), each written
    /// by `decode(row, out)`. Rows are padded to a multiple of four with zeros.
    pub fn from_rows(
        rows: usize,
        cols: usize,
        block: usize,
        has_offsets: bool,
        mut decode: impl FnMut(usize, DecodedRow<'_>),
    ) -> Self {
        assert!(block == 16 || block == 32, "block length {block}");
        assert!(cols.is_multiple_of(32), "{cols} columns");
        let mut m = PackedMatrix { rows, cols, block, has_offsets, data: Vec::new() };
        let groups = rows.div_ceil(4);
        m.data = vec![0u8; groups * m.group_bytes()];
        let (blocks, block_bytes, group_bytes) = (cols / block, m.block_bytes(), m.group_bytes());
        let (mut q, mut s, mut o) = (vec![0i8; cols], vec![0f32; blocks], vec![0f32; blocks]);
        for r in 0..rows {
            decode(r, DecodedRow { quants: &mut q, scales: &mut s, offsets: &mut o });
            let lane = r % 4;
            for b in 0..blocks {
                let at = (r / 4) * group_bytes + b * block_bytes;
                let bytes = &mut m.data[at..at + block_bytes];
                for k in 0..block / 2 {
                    bytes[8 * k + 2 * lane] = q[b * block + 2 * k] as u8;
                    bytes[8 * k + 2 * lane + 1] = q[b * block + 2 * k + 1] as u8;
                }
                let scales_at = 4 * block + 4 * lane;
                bytes[scales_at..scales_at + 4].copy_from_slice(&s[b].to_le_bytes());
                if has_offsets {
                    bytes[scales_at + 16..scales_at + 20].copy_from_slice(&o[b].to_le_bytes());
                }
            }
        }
        m
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn block(&self) -> usize {
        self.block
    }
    pub fn has_offsets(&self) -> bool {
        self.has_offsets
    }

    /// Bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.data.len()
    }

    fn blocks(&self) -> usize {
        self.cols / self.block
    }

    /// Bytes of one block of one group: quants, scales, offsets.
    fn block_bytes(&self) -> usize {
        4 * self.block + if self.has_offsets { 32 } else { 16 }
    }

    fn group_bytes(&self) -> usize {
        self.blocks() * self.block_bytes()
    }

    fn group(&self, g: usize) -> &[u8] {
        &self.data[g * self.group_bytes()..][..self.group_bytes()]
    }

    /// Row `r` as f32: `scale * q (+ offset)`, exactly the file type's dequantization.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let (lane, block) = (r % 4, self.block);
        for (b, bytes) in self.group(r / 4).chunks_exact(self.block_bytes()).enumerate() {
            let scale = f32_at(bytes, 4 * block + 4 * lane);
            let offset = self.has_offsets.then(|| f32_at(bytes, 4 * block + 16 + 4 * lane));
            for k in 0..block / 2 {
                for e in 0..2 {
                    let v = scale * (bytes[8 * k + 2 * lane + e] as i8) as f32;
                    out[b * block + 2 * k + e] = match offset {
                        Some(o) => v + o,
                        None => v,
                    };
                }
            }
        }
    }

    /// For each of the `n` activation vectors, writes the product to
    /// `out[t*rows..(t+1)*rows]`.
    pub fn matmul(&self, acts: &[PackedActivations], out: &mut [f32]) {
        for g in 0..self.rows.div_ceil(4) {
            let rows = (self.rows - 4 * g).min(4);
            for (t, a) in acts.iter().enumerate() {
                let sums = group_dot(self, g, a);
                out[t * self.rows + 4 * g..][..rows].copy_from_slice(&sums[..rows]);
            }
        }
    }
}

/// Activations quantized for the packed kernel, for one block length.
#[derive(Clone, Debug, Default)]
pub struct PackedActivations {
    block: usize,
    blocks: usize,
    /// Per block: the i16 values, `dx`, `dx * sum` (little-endian).
    data: Vec<u8>,
}

impl PackedActivations {
    /// Quantizes `x` (a multiple of 32 long) in blocks of 32, then describes
    /// it in blocks of `block` (16 or 32), reusing the buffer.
    pub fn quantize_from(&mut self, x: &[f32], block: usize) {
        const Q: usize = 32;
        self.block = block;
        self.blocks = x.len() / block;
        self.data.clear();
        let mut bytes = [0i8; Q];
        for chunk in x.chunks_exact(Q) {
            let mut max_abs = F32x4::splat(0.0);
            for i in (0..Q).step_by(4) {
                max_abs = max_abs.pmax(F32x4::load(&chunk[i..]).abs());
            }
            let d = max_abs.max() / 127.0;
            let inverse = F32x4::splat(if d != 0.0 { 1.0 / d } else { 0.0 });
            let dx = round_to_f16(d);
            let (low, high) = (F32x4::splat(-127.0), F32x4::splat(127.0));
            for i in (0..Q).step_by(4) {
                let q = lanes::round(F32x4::load(&chunk[i..]).mul(inverse));
                q.pmax(low).pmin(high).store_i8(&mut bytes[i..]);
            }
            for part in bytes.chunks_exact(block) {
                let sum: i32 = part.iter().map(|&b| b as i32).sum();
                self.data.extend(part.iter().flat_map(|&b| (b as i16).to_le_bytes()));
                self.data.extend_from_slice(&dx.to_le_bytes());
                self.data.extend_from_slice(&(dx * sum as f32).to_le_bytes());
            }
        }
    }

    fn block_bytes(&self) -> usize {
        2 * self.block + 8
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.blocks * self.block
    }

    pub fn is_empty(&self) -> bool {
        self.blocks == 0
    }

    pub fn block(&self) -> usize {
        self.block
    }

    /// Quantized value `i`.
    pub fn value(&self, i: usize) -> i16 {
        let at = (i / self.block) * self.block_bytes() + 2 * (i % self.block);
        i16::from_le_bytes([self.data[at], self.data[at + 1]])
    }

    /// Scale of block `b`.
    pub fn scale(&self, b: usize) -> f32 {
        f32_at(&self.data, b * self.block_bytes() + 2 * self.block)
    }

    /// `dx * sum` of block `b`.
    pub fn scaled_sum(&self, b: usize) -> f32 {
        f32_at(&self.data, b * self.block_bytes() + 2 * self.block + 4)
    }
}

/// Four rows' (group `g`'s) dot products with one activation vector:
/// simd128 when compiled with it, else the scalar reference.
#[inline]
pub fn group_dot(m: &PackedMatrix, g: usize, a: &PackedActivations) -> [f32; 4] {
    assert!(a.block == m.block && a.blocks == m.blocks(), "activations do not fit the matrix");
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let (w, x, blocks) = (m.group(g).as_ptr(), a.data.as_ptr(), a.blocks);
        // SAFETY: the group holds `blocks` weight blocks, the activations as many blocks.
        unsafe {
            match (m.block, m.has_offsets) {
                (32, false) => simd::group_dot::<16, false>(blocks, w, x),
                (32, true) => simd::group_dot::<16, true>(blocks, w, x),
                (_, false) => simd::group_dot::<8, false>(blocks, w, x),
                (_, true) => simd::group_dot::<8, true>(blocks, w, x),
            }
        }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    reference_group_dot(m, g, a)
}

/// The reference arithmetic (see the module comment), row by row.
pub fn reference_group_dot(m: &PackedMatrix, g: usize, a: &PackedActivations) -> [f32; 4] {
    let block = m.block;
    let mut acc = [0f32; 4];
    for (lane, acc) in acc.iter_mut().enumerate() {
        for (b, w) in m.group(g).chunks_exact(m.block_bytes()).enumerate() {
            let mut sum = 0i32;
            for k in 0..block / 2 {
                let e = b * block + 2 * k;
                let (w0, w1) = (w[8 * k + 2 * lane] as i8, w[8 * k + 2 * lane + 1] as i8);
                sum += w0 as i32 * a.value(e) as i32 + w1 as i32 * a.value(e + 1) as i32;
            }
            *acc += sum as f32 * (f32_at(w, 4 * block + 4 * lane) * a.scale(b));
            if m.has_offsets {
                *acc += f32_at(w, 4 * block + 16 + 4 * lane) * a.scaled_sum(b);
            }
        }
    }
    acc
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::*;

    /// One block: `PAIRS` pairs (8 or 16); `OFFSETS`: add the offset term.
    #[inline(always)]
    unsafe fn block<const PAIRS: usize, const OFFSETS: bool>(acc: v128, w: *const u8, x: *const u8) -> v128 {
        unsafe {
            // One chain on the operand stack: no locals between the terms,
            // and every address is a base plus a constant load offset.
            let mut sum = i32x4_dot_i16x8(i16x8_load_extend_i8x8(w.cast()), v128_load32_splat(x.cast()));
            let mut k = 1;
            while k < PAIRS {
                let wk = i16x8_load_extend_i8x8(w.add(8 * k).cast());
                sum = i32x4_add(sum, i32x4_dot_i16x8(wk, v128_load32_splat(x.add(4 * k).cast())));
                k += 1;
            }
            let (w_scales, x_scale) = (w.add(8 * PAIRS), x.add(4 * PAIRS));
            let d = f32x4_mul(v128_load(w_scales.cast()), v128_load32_splat(x_scale.cast()));
            let mut acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(sum), d));
            if OFFSETS {
                let offsets = f32x4_mul(v128_load(w_scales.add(16).cast()), v128_load32_splat(x_scale.add(4).cast()));
                acc = f32x4_add(acc, offsets);
            }
            acc
        }
    }

    #[inline(always)]
    pub unsafe fn group_dot<const PAIRS: usize, const OFFSETS: bool>(
        blocks: usize,
        mut w: *const u8,
        mut x: *const u8,
    ) -> [f32; 4] {
        let w_step = 8 * PAIRS + if OFFSETS { 32 } else { 16 };
        let x_step = 4 * PAIRS + 8;
        unsafe {
            let mut acc = f32x4_splat(0.0);
            // Two blocks per iteration: half the loop overhead.
            for _ in 0..blocks / 2 {
                acc = block::<PAIRS, OFFSETS>(acc, w, x);
                acc = block::<PAIRS, OFFSETS>(acc, w.add(w_step), x.add(x_step));
                w = w.add(2 * w_step);
                x = x.add(2 * x_step);
            }
            if blocks % 2 == 1 {
                acc = block::<PAIRS, OFFSETS>(acc, w, x);
            }
            let mut out = [0f32; 4];
            v128_store(out.as_mut_ptr().cast(), acc);
            out
        }
    }
}
