//! Q8_0: blocks of 32 weights, each a half-precision scale `d` followed by 32
//! signed bytes `q`; weight = d * q.
//!
//! Like ggml, the dot product first quantizes the activations to the same
//! 32-element blocks (scale rounded to half precision, values -127..=127) so
//! the inner loop is integer multiply-adds: exact, hence free to reorder.
//! Only the per-block float accumulation has an order, shared by the scalar
//! and simd128 code: four lane sums, element `i` of a block feeding lane
//! `(i % 8) / 2` (what the simd widening adds produce), each lane adding
//! `(lane integer sum as f32) * (d_weight * d_activation)`; the lanes combine
//! as `(l0 + l1) + (l2 + l3)`.

use super::half::{f16_table, f16_to_f32, f32_to_f16, round_to_f16};
use super::lanes::{self, F32x4};

pub const BLOCK_LEN: usize = 32;
pub const BLOCK_BYTES: usize = 34;

/// Activations quantized for dot products with Q8_0 rows.
#[derive(Clone, Debug, Default)]
pub struct Q8Activations {
    pub scales: Vec<f32>,
    pub values: Vec<i8>,
}

impl Q8Activations {
    /// Quantizes `x` (whose length is a multiple of 32), reusing the buffers.
    pub fn quantize_from(&mut self, x: &[f32]) {
        let blocks = x.len() / BLOCK_LEN;
        self.scales.clear();
        self.values.clear();
        self.values.resize(blocks * BLOCK_LEN, 0);
        for (block, out) in x.chunks_exact(BLOCK_LEN).zip(self.values.chunks_exact_mut(BLOCK_LEN)) {
            let mut max_abs = F32x4::splat(0.0);
            for i in (0..BLOCK_LEN).step_by(4) {
                max_abs = max_abs.pmax(F32x4::load(&block[i..]).abs());
            }
            let d = max_abs.max() / 127.0;
            let inverse = F32x4::splat(if d != 0.0 { 1.0 / d } else { 0.0 });
            self.scales.push(round_to_f16(d));
            // Never -128: the simd kernel relies on |w * x| <= 128 * 127.
            let (low, high) = (F32x4::splat(-127.0), F32x4::splat(127.0));
            for i in (0..BLOCK_LEN).step_by(4) {
                let q = lanes::round(F32x4::load(&block[i..]).mul(inverse));
                q.pmax(low).pmin(high).store_i8(&mut out[i..]);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

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

/// Dot product of a Q8_0 row with activations quantized by `Q8Activations`.
#[inline]
pub fn dot_row(row: &[u8], x: &Q8Activations) -> f32 {
    let blocks = x.scales.len();
    let row = &row[..blocks * BLOCK_BYTES];
    let values = &x.values[..blocks * BLOCK_LEN];
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: row holds `blocks` blocks, values `blocks * 32` bytes.
        unsafe { simd::dot_row(row.as_ptr(), values.as_ptr(), &x.scales) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    scalar_dot_row(row, values, &x.scales)
}

/// Four rows against the same activations: the same results as four
/// `dot_row` calls, with the activations loaded once per block.
#[inline]
pub fn dot_four_rows(rows: [&[u8]; 4], x: &Q8Activations) -> [f32; 4] {
    let blocks = x.scales.len();
    let rows = rows.map(|r| &r[..blocks * BLOCK_BYTES]);
    let values = &x.values[..blocks * BLOCK_LEN];
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: every row holds `blocks` blocks, values `blocks * 32` bytes.
        unsafe { simd::dot_four_rows(rows.map(<[u8]>::as_ptr), values.as_ptr(), &x.scales) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    rows.map(|r| scalar_dot_row(r, values, &x.scales))
}

/// The reference order (see the module comment).
pub fn scalar_dot_row(row: &[u8], values: &[i8], scales: &[f32]) -> f32 {
    let table = f16_table();
    let mut lanes = [0f32; 4];
    for ((block, xq), &dx) in row.chunks_exact(BLOCK_BYTES).zip(values.chunks_exact(BLOCK_LEN)).zip(scales) {
        let d = table[u16::from_le_bytes([block[0], block[1]]) as usize] * dx;
        let (q, v): (&[u8; 32], &[i8; 32]) = (block[2..].try_into().unwrap(), xq.try_into().unwrap());
        let product = |i: usize| (q[i] as i8) as i32 * v[i] as i32;
        // Lane l: elements i with (i % 8) / 2 == l. Integer sums are exact, so
        // the grouping inside a lane does not matter.
        let lane = |l: usize| {
            let pair = |base: usize| product(base + 2 * l) + product(base + 2 * l + 1);
            (pair(0) + pair(8)) + (pair(16) + pair(24))
        };
        let sums = [lane(0), lane(1), lane(2), lane(3)];
        for (lane, &sum) in lanes.iter_mut().zip(&sums) {
            *lane += sum as f32 * d;
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::super::half::f16_table;
    use super::{BLOCK_BYTES, BLOCK_LEN};
    use core::arch::wasm32::*;

    /// Integer sums of one block: i8 x i8 products widened to i16 (pairs of
    /// them still fit: |sum| <= 2 * 128 * 127), then pairwise to i32 lanes.
    #[inline(always)]
    unsafe fn block_sums(w: *const u8, x0: v128, x1: v128) -> v128 {
        unsafe {
            let w0 = v128_load(w.cast());
            let w1 = v128_load(w.add(16).cast());
            let s = i16x8_add(i16x8_extmul_low_i8x16(w0, x0), i16x8_extmul_high_i8x16(w0, x0));
            let t = i16x8_add(i16x8_extmul_low_i8x16(w1, x1), i16x8_extmul_high_i8x16(w1, x1));
            i32x4_add(i32x4_extadd_pairwise_i16x8(s), i32x4_extadd_pairwise_i16x8(t))
        }
    }

    #[inline(always)]
    unsafe fn scale(table: &[f32; 65536], block: *const u8) -> f32 {
        unsafe { *table.get_unchecked(core::ptr::read_unaligned(block.cast::<u16>()).to_le() as usize) }
    }

    #[inline(always)]
    fn reduce(acc: v128) -> f32 {
        super::F32x4::from_v128(acc).sum()
    }

    /// `d_weight * d_activation` in all lanes, multiplied as a vector (a
    /// scalar float multiply costs 20 times more on the IC).
    #[inline(always)]
    unsafe fn block_scale(table: &[f32; 65536], block: *const u8, dx: *const f32) -> v128 {
        unsafe { f32x4_mul(f32x4_splat(scale(table, block)), v128_load32_splat(dx.cast())) }
    }

    #[inline(always)]
    pub unsafe fn dot_row(row: *const u8, values: *const i8, scales: &[f32]) -> f32 {
        unsafe {
            let table = f16_table();
            let mut acc = f32x4_splat(0.0);
            let (mut block, mut xq) = (row, values);
            for dx in scales {
                let x0 = v128_load(xq.cast());
                let x1 = v128_load(xq.add(16).cast());
                let d = block_scale(table, block, dx);
                let sums = block_sums(block.add(2), x0, x1);
                acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(sums), d));
                block = block.add(BLOCK_BYTES);
                xq = xq.add(BLOCK_LEN);
            }
            reduce(acc)
        }
    }

    /// Adds one block of one row to its accumulator.
    #[inline(always)]
    unsafe fn accumulate(
        acc: v128,
        table: &[f32; 65536],
        block: *const u8,
        dx: *const f32,
        x0: v128,
        x1: v128,
    ) -> v128 {
        unsafe {
            let d = block_scale(table, block, dx);
            f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(block_sums(block.add(2), x0, x1)), d))
        }
    }

    #[inline(always)]
    pub unsafe fn dot_four_rows(rows: [*const u8; 4], values: *const i8, scales: &[f32]) -> [f32; 4] {
        unsafe {
            let table = f16_table();
            // Separate variables, not arrays: arrays of vectors end up in memory.
            let zero = f32x4_splat(0.0);
            let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
            let [mut b0, mut b1, mut b2, mut b3] = rows;
            let mut xq = values;
            for dx in scales {
                let x0 = v128_load(xq.cast());
                let x1 = v128_load(xq.add(16).cast());
                a0 = accumulate(a0, table, b0, dx, x0, x1);
                a1 = accumulate(a1, table, b1, dx, x0, x1);
                a2 = accumulate(a2, table, b2, dx, x0, x1);
                a3 = accumulate(a3, table, b3, dx, x0, x1);
                b0 = b0.add(BLOCK_BYTES);
                b1 = b1.add(BLOCK_BYTES);
                b2 = b2.add(BLOCK_BYTES);
                b3 = b3.add(BLOCK_BYTES);
                xq = xq.add(BLOCK_LEN);
            }
            [reduce(a0), reduce(a1), reduce(a2), reduce(a3)]
        }
    }
}
