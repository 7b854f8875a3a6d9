//! The int8 kernel behind every quantized type: weights repacked at load
//! time as signed bytes with one f32 scale (and, for the types with a
//! minimum, one f32 offset) per block of 16 or 32 elements:
//! weight = scale * q (+ offset).
//!
//! Weight layout: rows in stripes of 32 (eight groups of four rows); per
//! stripe and per block, the eight groups' bytes one after the other; per
//! group and block: for each pair `k` of elements (2k, 2k+1), the pair of
//! each row in turn (r0 r0 r1 r1 r2 r2 r3 r3: 8 bytes), then the four rows'
//! scales (f32), then their offsets if the type has them. Loaded
//! sign-extended to i16 (`v128.load8x8_s`) and multiplied by the activation
//! pair splatted to all lanes (`v128.load32_splat` of two i16s),
//! `i32x4.dot_i16x8_s` gives, in lane r, row r's two products summed: the
//! lanes are the rows, so no horizontal reduction is ever needed.
//! Activations are quantized once per matrix product like ggml's q8_0
//! (blocks of 32, scale `max|x| / 127` rounded to half precision, values in
//! -127..=127), stored per block as the i16 values, then `dx` (the scale)
//! and `dx * (sum of the values)`.
//!
//! Arithmetic, per row and activation vector, identical in the scalar
//! reference and the simd128 code: for each block, the exact integer sum
//! `s` of the block's products, then `acc += (s as f32) * (scale * dx)` and,
//! with offsets, `acc += offset * (dx * sum)`, blocks in order from a zero
//! accumulator. Batching, stripes and lanes only change which sums are
//! computed together, never one sum's operations.
//!
//! Cost on the IC, which charges wasm operators (locals included) rather than
//! machine time: a dot costs its two operands, itself and the add. A
//! block's sixteen activation splats are loaded once into locals and serve
//! the stripe's eight groups (one operator instead of two per dot), and for
//! a batch of prompt tokens the weights are loaded once into locals and
//! serve four tokens: four operators per eight weights plus the loads'
//! shares, against six when every dot loads both operands.

use super::half::round_to_f16;
use super::lanes::{self, F32x4};

/// Groups of four rows per stripe.
pub const GROUPS: usize = 8;
/// Rows per stripe.
pub const STRIPE_ROWS: usize = 4 * GROUPS;
/// Activation vectors a batched product takes at once.
pub const BATCH: usize = 8;

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
    /// by `decode(row, out)`. Rows are padded to whole stripes with zeros.
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
        m.data = vec![0u8; m.stripes() * m.stripe_bytes()];
        let (blocks, block_bytes) = (cols / block, m.block_bytes());
        let (mut q, mut s, mut o) = (vec![0i8; cols], vec![0f32; blocks], vec![0f32; blocks]);
        for r in 0..rows {
            decode(r, DecodedRow { quants: &mut q, scales: &mut s, offsets: &mut o });
            let lane = r % 4;
            for b in 0..blocks {
                let at = m.block_at(r, b);
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

    fn stripes(&self) -> usize {
        self.rows.div_ceil(STRIPE_ROWS)
    }

    /// Bytes of one block of one group: quants, scales, offsets.
    fn block_bytes(&self) -> usize {
        4 * self.block + if self.has_offsets { 32 } else { 16 }
    }

    fn stripe_bytes(&self) -> usize {
        self.blocks() * GROUPS * self.block_bytes()
    }

    /// Where block `b` of row `r`'s group starts.
    fn block_at(&self, r: usize, b: usize) -> usize {
        let (stripe, group) = (r / STRIPE_ROWS, (r % STRIPE_ROWS) / 4);
        stripe * self.stripe_bytes() + (b * GROUPS + group) * self.block_bytes()
    }

    /// Row `r` as f32: `scale * q (+ offset)`, exactly the file type's dequantization.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let (lane, block) = (r % 4, self.block);
        for b in 0..self.blocks() {
            let bytes = &self.data[self.block_at(r, b)..][..self.block_bytes()];
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
    /// `out[t*rows..(t+1)*rows]`: stripe by stripe, the vectors in batches
    /// of [`BATCH`], then of four, two and one.
    pub fn matmul(&self, acts: &[PackedActivations], out: &mut [f32]) {
        for a in acts {
            assert!(a.block == self.block && a.blocks == self.blocks(), "activations do not fit the matrix");
        }
        assert!(out.len() >= acts.len() * self.rows, "output too short");
        for s in 0..self.stripes() {
            let mut t = 0;
            while acts.len() - t >= BATCH {
                t = self.batch::<BATCH>(s, acts, t, out);
            }
            if acts.len() - t >= 4 {
                t = self.batch::<4>(s, acts, t, out);
            }
            if acts.len() - t >= 2 {
                t = self.batch::<2>(s, acts, t, out);
            }
            if acts.len() > t {
                self.batch::<1>(s, acts, t, out);
            }
        }
    }

    /// Stripe `s` times vectors `first..first + T`; returns `first + T`.
    #[inline(always)]
    fn batch<const T: usize>(&self, s: usize, acts: &[PackedActivations], first: usize, out: &mut [f32]) -> usize {
        let sums = stripe_dot::<T>(self, s, std::array::from_fn(|t| &acts[first + t]));
        self.store(s, first, &sums, out);
        first + T
    }

    /// Writes stripe `s`'s sums for the vectors from `first` on into `out`.
    fn store<const T: usize>(&self, s: usize, first: usize, sums: &[[f32; STRIPE_ROWS]; T], out: &mut [f32]) {
        let (start, rows) = (s * STRIPE_ROWS, (self.rows - s * STRIPE_ROWS).min(STRIPE_ROWS));
        for (t, sums) in sums.iter().enumerate() {
            out[(first + t) * self.rows + start..][..rows].copy_from_slice(&sums[..rows]);
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

/// Stripe `s`'s (32 rows') dot products with `T` activation vectors:
/// simd128 when compiled with it, else the scalar reference.
#[inline]
fn stripe_dot<const T: usize>(m: &PackedMatrix, s: usize, acts: [&PackedActivations; T]) -> [[f32; STRIPE_ROWS]; T] {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let w = m.data[s * m.stripe_bytes()..].as_ptr();
        let x = acts.map(|a| a.data.as_ptr());
        let blocks = m.blocks();
        // SAFETY: the stripe holds `blocks` blocks of eight groups, every
        // activation vector as many blocks (checked in `matmul`).
        unsafe {
            match (m.block, m.has_offsets) {
                (32, false) => simd::stripe_dot::<16, false, T>(blocks, w, x),
                (32, true) => simd::stripe_dot::<16, true, T>(blocks, w, x),
                (_, false) => simd::stripe_dot::<8, false, T>(blocks, w, x),
                (_, true) => simd::stripe_dot::<8, true, T>(blocks, w, x),
            }
        }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    acts.map(|a| {
        let mut out = [0f32; STRIPE_ROWS];
        for (i, o) in out.iter_mut().enumerate() {
            if s * STRIPE_ROWS + i < m.rows {
                *o = reference_dot(m, s * STRIPE_ROWS + i, a);
            }
        }
        out
    })
}

/// The reference arithmetic (see the module comment) for row `r`.
pub fn reference_dot(m: &PackedMatrix, r: usize, a: &PackedActivations) -> f32 {
    let (block, lane) = (m.block, r % 4);
    let mut acc = 0f32;
    for b in 0..m.blocks() {
        let w = &m.data[m.block_at(r, b)..][..m.block_bytes()];
        let mut sum = 0i32;
        for k in 0..block / 2 {
            let e = b * block + 2 * k;
            let (w0, w1) = (w[8 * k + 2 * lane] as i8, w[8 * k + 2 * lane + 1] as i8);
            sum += w0 as i32 * a.value(e) as i32 + w1 as i32 * a.value(e + 1) as i32;
        }
        acc += sum as f32 * (f32_at(w, 4 * block + 4 * lane) * a.scale(b));
        if m.has_offsets {
            acc += f32_at(w, 4 * block + 16 + 4 * lane) * a.scaled_sum(b);
        }
    }
    acc
}

/// `reference_dot` for every row and vector, laid out as `matmul` writes them.
pub fn reference_matmul(m: &PackedMatrix, acts: &[PackedActivations], out: &mut [f32]) {
    for (t, a) in acts.iter().enumerate() {
        for r in 0..m.rows {
            out[t * m.rows + r] = reference_dot(m, r, a);
        }
    }
}

/// Repeats `$body` with `$i` bound to each literal (the kernel's loops
/// written out, so that its arrays live in wasm locals).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
macro_rules! unroll {
    ($i:ident in [$($n:literal),*] $body:block) => { $( { let $i: usize = $n; $body } )* };
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::GROUPS;
    use core::arch::wasm32::*;

    /// One stripe's products with `T` vectors. `PAIRS` pairs per block (8 or
    /// 16); `OFFSETS`: add the offset term.
    #[inline(always)]
    pub unsafe fn stripe_dot<const PAIRS: usize, const OFFSETS: bool, const T: usize>(
        blocks: usize,
        mut w: *const u8,
        mut x: [*const u8; T],
    ) -> [[f32; 32]; T] {
        let w_block = 8 * PAIRS + if OFFSETS { 32 } else { 16 };
        let x_step = 4 * PAIRS + 8;
        let zero = f32x4_splat(0.0);
        let mut acc = [[zero; GROUPS]; T];
        unsafe {
            for _ in 0..blocks {
                // The block's activation pairs (splatted), scales and sums, per vector.
                let mut a = [[zero; PAIRS]; T];
                let (mut dx, mut dsum) = ([zero; T], [zero; T]);
                unroll!(t in [0, 1, 2, 3, 4, 5, 6, 7] {
                    if t < T {
                        unroll!(k in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] {
                            if k < PAIRS {
                                a[t][k] = v128_load32_splat(x[t].add(4 * k).cast());
                            }
                        });
                        dx[t] = v128_load32_splat(x[t].add(4 * PAIRS).cast());
                        if OFFSETS {
                            dsum[t] = v128_load32_splat(x[t].add(4 * PAIRS + 4).cast());
                        }
                    }
                });
                unroll!(g in [0, 1, 2, 3, 4, 5, 6, 7] {
                    let wg = w.add(g * w_block);
                    let mut q = [zero; PAIRS];
                    unroll!(k in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] {
                        if k < PAIRS {
                            q[k] = i16x8_load_extend_i8x8(wg.add(8 * k).cast());
                        }
                    });
                    let scales = v128_load(wg.add(8 * PAIRS).cast());
                    let offsets = if OFFSETS { v128_load(wg.add(8 * PAIRS + 16).cast()) } else { zero };
                    unroll!(t in [0, 1, 2, 3, 4, 5, 6, 7] {
                        if t < T {
                            let mut sum = i32x4_dot_i16x8(q[0], a[t][0]);
                            unroll!(k in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] {
                                if k < PAIRS {
                                    sum = i32x4_add(sum, i32x4_dot_i16x8(q[k], a[t][k]));
                                }
                            });
                            let d = f32x4_mul(scales, dx[t]);
                            let mut v = f32x4_add(acc[t][g], f32x4_mul(f32x4_convert_i32x4(sum), d));
                            if OFFSETS {
                                v = f32x4_add(v, f32x4_mul(offsets, dsum[t]));
                            }
                            acc[t][g] = v;
                        }
                    });
                });
                w = w.add(GROUPS * w_block);
                unroll!(t in [0, 1, 2, 3, 4, 5, 6, 7] {
                    if t < T {
                        x[t] = x[t].add(x_step);
                    }
                });
            }
            let mut out = [[0f32; 32]; T];
            for (o, acc) in out.iter_mut().zip(&acc) {
                for (g, v) in acc.iter().enumerate() {
                    v128_store(o.as_mut_ptr().add(4 * g).cast(), *v);
                }
            }
            out
        }
    }
}
