//! Dot products over unquantized data (F32 and F16 weight rows, plain f32
//! slices) and the element-wise vector operations of the forward pass, all
//! written against `F32x4` so scalar and simd128 builds agree bit for bit.
//!
//! Dot product summation order: four `F32x4` accumulators (16 partial sums);
//! element `i` of each whole 16-element block goes to accumulator
//! `(i % 16) / 4`, lane `i % 4`; remaining groups of four go to accumulator
//! 0; the last 0..3 elements to a scalar tail. Result:
//! `((a0 + a1) + (a2 + a3)).sum()`, plus the tail if there is one.

use super::half::f16_to_f32;
use super::lanes::{self, F32x4};

/// The dot product over `x.len()` elements of a row stored as `PER` items
/// of `T` per element; `load` reads four elements from the start of a slice,
/// `load_one` one element.
#[inline(always)]
fn dot_with<T, const PER: usize>(
    row: &[T],
    x: &[f32],
    load: impl Fn(&[T]) -> F32x4,
    load_one: impl Fn(&[T]) -> f32,
) -> f32 {
    let n = x.len();
    let row = &row[..n * PER];
    // Written out rather than as an array loop: with opt-level "s" LLVM keeps
    // an accumulator array in memory and does not unroll the loop over it.
    let (mut a0, mut a1, mut a2, mut a3) = (F32x4::splat(0.0), F32x4::splat(0.0), F32x4::splat(0.0), F32x4::splat(0.0));
    let mut row_blocks = row.chunks_exact(16 * PER);
    let mut x_blocks = x.chunks_exact(16);
    for (w, xb) in (&mut row_blocks).zip(&mut x_blocks) {
        a0 = a0.add(load(w).mul(F32x4::load(xb)));
        a1 = a1.add(load(&w[4 * PER..]).mul(F32x4::load(&xb[4..])));
        a2 = a2.add(load(&w[8 * PER..]).mul(F32x4::load(&xb[8..])));
        a3 = a3.add(load(&w[12 * PER..]).mul(F32x4::load(&xb[12..])));
    }
    let mut row_quads = row_blocks.remainder().chunks_exact(4 * PER);
    let mut x_quads = x_blocks.remainder().chunks_exact(4);
    for (w, xq) in (&mut row_quads).zip(&mut x_quads) {
        a0 = a0.add(load(w).mul(F32x4::load(xq)));
    }
    let sum = a0.add(a1).add(a2.add(a3)).sum();
    let x_tail = x_quads.remainder();
    if x_tail.is_empty() {
        return sum;
    }
    let mut tail = 0f32;
    for (w, &xi) in row_quads.remainder().chunks_exact(PER).zip(x_tail) {
        tail += load_one(w) * xi;
    }
    sum + tail
}

/// `a · b` over `a.len()` elements (`b` must be at least as long).
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    dot_with::<f32, 1>(a, &b[..a.len()], F32x4::load, |w| w[0])
}

/// Dot product of a row of little-endian F32 weights with `x`.
#[inline]
pub fn dot_f32_row(row: &[u8], x: &[f32]) -> f32 {
    dot_with::<u8, 4>(row, x, F32x4::load_le_bytes, |w| read_f32(w, 0))
}

/// Dot product of a row of F16 weights with `x`.
#[inline]
pub fn dot_f16_row(row: &[u8], x: &[f32]) -> f32 {
    dot_with::<u8, 2>(row, x, load_halves, |w| read_f16(w, 0))
}

/// Four halves (8 bytes) as f32 lanes; exact, like `f16_to_f32`.
#[inline(always)]
fn load_halves(bytes: &[u8]) -> F32x4 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        super::half::simd_halves_to_f32(bytes)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        let mut v = [0f32; 4];
        for (k, out) in v.iter_mut().enumerate() {
            *out = read_f16(bytes, k);
        }
        F32x4::load(&v)
    }
}

/// Applies `f` to each group of four lanes of `out` (with the matching
/// lanes of `a` and `b`), then `tail` to each leftover element.
#[inline(always)]
fn zip_map(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(F32x4, F32x4) -> F32x4, tail: impl Fn(f32, f32) -> f32) {
    let n = out.len();
    let (a, b) = (&a[..n], &b[..n]);
    let whole = n / 4 * 4;
    for i in (0..whole).step_by(4) {
        f(F32x4::load(&a[i..]), F32x4::load(&b[i..])).store(&mut out[i..]);
    }
    for i in whole..n {
        out[i] = tail(a[i], b[i]);
    }
}

/// `y += a * x`, element by element.
#[inline]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let av = F32x4::splat(a);
    let n = y.len();
    let whole = n / 4 * 4;
    for i in (0..whole).step_by(4) {
        F32x4::load(&y[i..]).add(av.mul(F32x4::load(&x[i..]))).store(&mut y[i..]);
    }
    for i in whole..n {
        y[i] += a * x[i];
    }
}

/// `y += a * row` for a row of F16 values, converted exactly.
#[inline]
pub fn axpy_f16_row(y: &mut [f32], a: f32, row: &[u8]) {
    let av = F32x4::splat(a);
    let n = y.len();
    let whole = n / 4 * 4;
    for i in (0..whole).step_by(4) {
        F32x4::load(&y[i..]).add(av.mul(load_halves(&row[2 * i..]))).store(&mut y[i..]);
    }
    for (i, v) in y.iter_mut().enumerate().skip(whole) {
        *v += a * read_f16(row, i);
    }
}

/// `x += y`.
pub fn add_in_place(x: &mut [f32], y: &[f32]) {
    let n = x.len();
    let whole = n / 4 * 4;
    for i in (0..whole).step_by(4) {
        F32x4::load(&x[i..]).add(F32x4::load(&y[i..])).store(&mut x[i..]);
    }
    for i in whole..n {
        x[i] += y[i];
    }
}

/// `x *= factor`.
pub fn scale_in_place(x: &mut [f32], factor: f32) {
    let f = F32x4::splat(factor);
    let n = x.len();
    let whole = n / 4 * 4;
    for i in (0..whole).step_by(4) {
        F32x4::load(&x[i..]).mul(f).store(&mut x[i..]);
    }
    for v in &mut x[whole..] {
        *v *= factor;
    }
}

/// Sum of squares, in the lane order of the module comment (one accumulator).
fn sum_of_squares(x: &[f32]) -> f32 {
    let mut acc = F32x4::splat(0.0);
    let whole = x.len() / 4 * 4;
    for i in (0..whole).step_by(4) {
        let v = F32x4::load(&x[i..]);
        acc = acc.add(v.mul(v));
    }
    let mut sum = acc.sum();
    for &v in &x[whole..] {
        sum += v * v;
    }
    sum
}

/// `out = x / rms(x) * weight` (RMSNorm).
pub fn rms_norm(x: &[f32], weight: &[f32], epsilon: f32, out: &mut [f32]) {
    let mean = sum_of_squares(x) / x.len() as f32;
    let scale = 1.0 / (mean + epsilon).sqrt();
    let s = F32x4::splat(scale);
    zip_map(out, x, weight, |v, w| v.mul(s).mul(w), |v, w| (v * scale) * w);
}

/// Turns `x` into its softmax, in place.
pub fn softmax(x: &mut [f32]) {
    let n = x.len();
    let whole = n / 4 * 4;
    let mut max = F32x4::splat(f32::NEG_INFINITY);
    for i in (0..whole).step_by(4) {
        max = max.pmax(F32x4::load(&x[i..]));
    }
    let mut m = max.max();
    for &v in &x[whole..] {
        m = if m < v { v } else { m };
    }
    // The tail goes through the same vector exp, padded.
    let mv = F32x4::splat(m);
    let mut sums = F32x4::splat(0.0);
    for i in (0..whole).step_by(4) {
        let e = lanes::exp(F32x4::load(&x[i..]).sub(mv));
        e.store(&mut x[i..]);
        sums = sums.add(e);
    }
    let mut sum = sums.sum();
    if whole < n {
        let mut padded = [f32::NEG_INFINITY; 4];
        padded[..n - whole].copy_from_slice(&x[whole..]);
        lanes::exp(F32x4::load(&padded).sub(mv)).store(&mut padded);
        for (v, &e) in x[whole..].iter_mut().zip(&padded) {
            *v = e;
            sum += e;
        }
    }
    scale_in_place(x, 1.0 / sum);
}

/// `gate = silu(gate) * up` (SwiGLU), with silu(g) = g / (1 + e^-g).
pub fn swiglu_in_place(gate: &mut [f32], up: &[f32]) {
    let n = gate.len();
    let one = F32x4::splat(1.0);
    let silu_times = |g: F32x4, u: F32x4| g.div(one.add(lanes::exp(F32x4::splat(0.0).sub(g)))).mul(u);
    let whole = n / 4 * 4;
    for i in (0..whole).step_by(4) {
        silu_times(F32x4::load(&gate[i..]), F32x4::load(&up[i..])).store(&mut gate[i..]);
    }
    if whole < n {
        let (mut g, mut u) = ([0f32; 4], [0f32; 4]);
        g[..n - whole].copy_from_slice(&gate[whole..]);
        u[..n - whole].copy_from_slice(&up[whole..n]);
        silu_times(F32x4::load(&g), F32x4::load(&u)).store(&mut g);
        gate[whole..].copy_from_slice(&g[..n - whole]);
    }
}

pub fn dequantize_f32_row(row: &[u8], out: &mut [f32]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = read_f32(row, i);
    }
}

pub fn dequantize_f16_row(row: &[u8], out: &mut [f32]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = read_f16(row, i);
    }
}

#[inline(always)]
fn read_f32(bytes: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]])
}

#[inline(always)]
fn read_f16(bytes: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_with_any_tail() {
        for n in [1, 3, 4, 7, 9] {
            let mut x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
            let want: Vec<f64> = {
                let m = x.iter().cloned().fold(f32::MIN, f32::max) as f64;
                let e: Vec<f64> = x.iter().map(|&v| (v as f64 - m).exp()).collect();
                let s: f64 = e.iter().sum();
                e.iter().map(|v| v / s).collect()
            };
            softmax(&mut x);
            for (got, want) in x.iter().zip(&want) {
                assert!((*got as f64 - want).abs() < 1e-6, "n={n}");
            }
        }
    }

    #[test]
    fn swiglu_and_rms_norm() {
        let mut g = [1.0f32, -2.0, 0.5, 3.0, -0.1];
        let u = [2.0f32, 1.0, -1.0, 0.5, 4.0];
        let want: Vec<f32> = g.iter().zip(&u).map(|(&g, &u)| g / (1.0 + (-g).exp()) * u).collect();
        swiglu_in_place(&mut g, &u);
        for (a, b) in g.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6);
        }
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let mut out = [0f32; 5];
        rms_norm(&x, &[1.0, 1.0, 1.0, 1.0, 2.0], 0.0, &mut out);
        let rms = (55.0f32 / 5.0).sqrt();
        assert!((out[0] - 1.0 / rms).abs() < 1e-6 && (out[4] - 10.0 / rms).abs() < 1e-6);
    }
}
