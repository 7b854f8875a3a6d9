//! `F32x4`: four f32 lanes, a wasm simd128 vector when compiled with
//! `+simd128` and a plain array otherwise. Kernels are written once against
//! this type, so both builds run the same lane-wise IEEE operations in the
//! same order and give bit-identical results.
//!
//! Why it matters: the Internet Computer charges 20 instructions for a
//! scalar float operation but 1 for a simd one, so even element-wise work
//! (norms, exp, quantizing activations) has to be vectorized in the canister.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use core::arch::wasm32::*;

#[derive(Clone, Copy, Debug)]
pub struct F32x4(
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] v128,
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))] [f32; 4],
);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[allow(clippy::should_implement_trait)]
impl F32x4 {
    #[inline(always)]
    pub fn from_v128(v: v128) -> Self {
        F32x4(v)
    }
    #[inline(always)]
    pub fn to_v128(self) -> v128 {
        self.0
    }
    #[inline(always)]
    pub fn splat(v: f32) -> Self {
        F32x4(f32x4_splat(v))
    }
    /// The first four values of `s`.
    #[inline(always)]
    pub fn load(s: &[f32]) -> Self {
        assert!(s.len() >= 4);
        // SAFETY: four f32s are readable; wasm loads need no alignment.
        F32x4(unsafe { v128_load(s.as_ptr().cast()) })
    }
    /// Four little-endian f32s from the first 16 bytes of `b`.
    #[inline(always)]
    pub fn load_le_bytes(b: &[u8]) -> Self {
        assert!(b.len() >= 16);
        // SAFETY: 16 bytes are readable; wasm is little-endian.
        F32x4(unsafe { v128_load(b.as_ptr().cast()) })
    }
    #[inline(always)]
    pub fn store(self, s: &mut [f32]) {
        assert!(s.len() >= 4);
        // SAFETY: four f32s are writable.
        unsafe { v128_store(s.as_mut_ptr().cast(), self.0) }
    }
    #[inline(always)]
    pub fn add(self, o: Self) -> Self {
        F32x4(f32x4_add(self.0, o.0))
    }
    #[inline(always)]
    pub fn sub(self, o: Self) -> Self {
        F32x4(f32x4_sub(self.0, o.0))
    }
    #[inline(always)]
    pub fn mul(self, o: Self) -> Self {
        F32x4(f32x4_mul(self.0, o.0))
    }
    #[inline(always)]
    pub fn div(self, o: Self) -> Self {
        F32x4(f32x4_div(self.0, o.0))
    }
    /// Lane-wise `if o < self { o } else { self }`.
    #[inline(always)]
    pub fn pmin(self, o: Self) -> Self {
        F32x4(f32x4_pmin(self.0, o.0))
    }
    /// Lane-wise `if self < o { o } else { self }`.
    #[inline(always)]
    pub fn pmax(self, o: Self) -> Self {
        F32x4(f32x4_pmax(self.0, o.0))
    }
    #[inline(always)]
    pub fn abs(self) -> Self {
        F32x4(f32x4_abs(self.0))
    }
    #[inline(always)]
    pub fn floor(self) -> Self {
        F32x4(f32x4_floor(self.0))
    }
    #[inline(always)]
    pub fn trunc(self) -> Self {
        F32x4(f32x4_trunc(self.0))
    }
    /// Lane-wise `if self >= threshold { a } else { b }`.
    #[inline(always)]
    pub fn select_ge(self, threshold: Self, a: Self, b: Self) -> Self {
        F32x4(v128_bitselect(a.0, b.0, f32x4_ge(self.0, threshold.0)))
    }
    /// Lane-wise `if self < threshold { a } else { b }`.
    #[inline(always)]
    pub fn select_lt(self, threshold: Self, a: Self, b: Self) -> Self {
        F32x4(v128_bitselect(a.0, b.0, f32x4_lt(self.0, threshold.0)))
    }
    /// The magnitude of `self` with the sign of `sign`.
    #[inline(always)]
    pub fn copysign(self, sign: Self) -> Self {
        let sign_bit = u32x4_splat(0x8000_0000);
        F32x4(v128_bitselect(sign.0, self.0, sign_bit))
    }
    /// 2^n for lanes holding integers n in -126..=127.
    #[inline(always)]
    pub fn exp2_int(self) -> Self {
        let n = i32x4_trunc_sat_f32x4(self.0);
        F32x4(i32x4_shl(i32x4_add(n, i32x4_splat(127)), 23))
    }
    #[inline(always)]
    pub fn from_i32(lanes: v128) -> Self {
        F32x4(f32x4_convert_i32x4(lanes))
    }
    /// `(l0 + l1) + (l2 + l3)`.
    #[inline(always)]
    pub fn sum(self) -> f32 {
        let pairs = f32x4_add(self.0, i32x4_shuffle::<1, 0, 3, 2>(self.0, self.0));
        f32x4_extract_lane::<0>(f32x4_add(pairs, i32x4_shuffle::<2, 3, 0, 1>(pairs, pairs)))
    }
    /// The largest lane (NaN-free input).
    #[inline(always)]
    pub fn max(self) -> f32 {
        let pairs = f32x4_pmax(self.0, i32x4_shuffle::<1, 0, 3, 2>(self.0, self.0));
        f32x4_extract_lane::<0>(f32x4_pmax(pairs, i32x4_shuffle::<2, 3, 0, 1>(pairs, pairs)))
    }
    /// Lanes (integer-valued, within -128..=127) as bytes, stored to `out[..4]`.
    #[inline(always)]
    pub fn store_i8(self, out: &mut [i8]) {
        assert!(out.len() >= 4);
        let ints = i32x4_trunc_sat_f32x4(self.0);
        let shorts = i16x8_narrow_i32x4(ints, ints);
        let bytes = i8x16_narrow_i16x8(shorts, shorts);
        // SAFETY: four bytes are writable.
        unsafe { v128_store32_lane::<0>(bytes, out.as_mut_ptr().cast()) }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[allow(clippy::should_implement_trait)]
impl F32x4 {
    // Lanes spelled out: with opt-level "s" closures over arrays are not
    // reliably inlined, which makes the native build many times slower.
    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) -> Self {
        let [a, b, c, d] = self.0;
        F32x4([f(a), f(b), f(c), f(d)])
    }
    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let ([a, b, c, d], [e, g, h, k]) = (self.0, o.0);
        F32x4([f(a, e), f(b, g), f(c, h), f(d, k)])
    }
    #[inline(always)]
    pub fn splat(v: f32) -> Self {
        F32x4([v; 4])
    }
    #[inline(always)]
    pub fn load(s: &[f32]) -> Self {
        F32x4([s[0], s[1], s[2], s[3]])
    }
    #[inline(always)]
    pub fn load_le_bytes(b: &[u8]) -> Self {
        let b = &b[..16];
        let lane = |i: usize| f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        F32x4([lane(0), lane(1), lane(2), lane(3)])
    }
    #[inline(always)]
    pub fn store(self, s: &mut [f32]) {
        s[..4].copy_from_slice(&self.0);
    }
    #[inline(always)]
    pub fn add(self, o: Self) -> Self {
        self.zip(o, |a, b| a + b)
    }
    #[inline(always)]
    pub fn sub(self, o: Self) -> Self {
        self.zip(o, |a, b| a - b)
    }
    #[inline(always)]
    pub fn mul(self, o: Self) -> Self {
        self.zip(o, |a, b| a * b)
    }
    #[inline(always)]
    pub fn div(self, o: Self) -> Self {
        self.zip(o, |a, b| a / b)
    }
    #[inline(always)]
    pub fn pmin(self, o: Self) -> Self {
        self.zip(o, |a, b| if b < a { b } else { a })
    }
    #[inline(always)]
    pub fn pmax(self, o: Self) -> Self {
        self.zip(o, |a, b| if a < b { b } else { a })
    }
    #[inline(always)]
    pub fn abs(self) -> Self {
        self.map(f32::abs)
    }
    #[inline(always)]
    pub fn floor(self) -> Self {
        self.map(f32::floor)
    }
    #[inline(always)]
    pub fn trunc(self) -> Self {
        self.map(f32::trunc)
    }
    #[inline(always)]
    pub fn select_ge(self, threshold: Self, a: Self, b: Self) -> Self {
        let pick = |i: usize| if self.0[i] >= threshold.0[i] { a.0[i] } else { b.0[i] };
        F32x4([pick(0), pick(1), pick(2), pick(3)])
    }
    #[inline(always)]
    pub fn select_lt(self, threshold: Self, a: Self, b: Self) -> Self {
        let pick = |i: usize| if self.0[i] < threshold.0[i] { a.0[i] } else { b.0[i] };
        F32x4([pick(0), pick(1), pick(2), pick(3)])
    }
    #[inline(always)]
    pub fn copysign(self, sign: Self) -> Self {
        self.zip(sign, f32::copysign)
    }
    #[inline(always)]
    pub fn exp2_int(self) -> Self {
        self.map(|n| f32::from_bits(((n as i32 + 127) as u32) << 23))
    }
    #[inline(always)]
    pub fn from_i32(lanes: [i32; 4]) -> Self {
        let [a, b, c, d] = lanes;
        F32x4([a as f32, b as f32, c as f32, d as f32])
    }
    #[inline(always)]
    pub fn sum(self) -> f32 {
        let [a, b, c, d] = self.0;
        (a + b) + (c + d)
    }
    #[inline(always)]
    pub fn max(self) -> f32 {
        let m = |a: f32, b: f32| if a < b { b } else { a };
        let [a, b, c, d] = self.0;
        m(m(a, b), m(c, d))
    }
    #[inline(always)]
    pub fn store_i8(self, out: &mut [i8]) {
        for (o, v) in out[..4].iter_mut().zip(self.0) {
            *o = v as i32 as i8;
        }
    }
}

/// `e^x` lane-wise (Cephes-style: x = n ln2 + r, a degree-6 polynomial for
/// e^r, times 2^n); relative error about 2e-7. Below -87.3 gives 0.
#[inline(always)]
pub fn exp(x: F32x4) -> F32x4 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n * LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const P: [f32; 6] = [1.987_569_1e-4, 1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1];
    let splat = F32x4::splat;
    let clamped = x.pmin(splat(88.3)).pmax(splat(-87.3));
    let n = clamped.mul(splat(LOG2_E)).add(splat(0.5)).floor();
    let r = clamped.sub(n.mul(splat(LN2_HI))).sub(n.mul(splat(LN2_LO)));
    let mut p = splat(P[0]);
    for c in &P[1..] {
        p = p.mul(r).add(splat(*c));
    }
    let e_r = p.mul(r.mul(r)).add(r).add(splat(1.0));
    let result = e_r.mul(n.exp2_int());
    x.select_lt(splat(-87.3), splat(0.0), result)
}

/// Rounds half away from zero (C's `roundf`, which ggml quantizes with).
#[inline(always)]
pub fn round(x: F32x4) -> F32x4 {
    let t = x.trunc();
    let step = F32x4::splat(1.0).copysign(x);
    x.sub(t).abs().select_ge(F32x4::splat(0.5), t.add(step), t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(v: F32x4) -> [f32; 4] {
        let mut out = [0f32; 4];
        v.store(&mut out);
        out
    }

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = lanes(exp(F32x4::splat(x)))[0] as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(lanes(exp(F32x4::splat(0.0)))[0], 1.0);
        assert_eq!(lanes(exp(F32x4::splat(-200.0)))[0], 0.0);
        assert!(lanes(exp(F32x4::splat(100.0)))[0] > 1e38);
    }

    #[test]
    fn round_is_half_away_from_zero() {
        let v = F32x4::load(&[2.5, -2.5, 0.49999997, -7.6]);
        assert_eq!(lanes(round(v)), [3.0, -3.0, 0.0, -8.0]);
    }

    #[test]
    fn horizontal_ops() {
        let v = F32x4::load(&[1.0, -2.0, 4.0, 3.5]);
        assert_eq!(v.sum(), 6.5);
        assert_eq!(v.max(), 4.0);
        let mut bytes = [0i8; 4];
        F32x4::load(&[127.0, -127.0, 3.0, -0.0]).store_i8(&mut bytes);
        assert_eq!(bytes, [127, -127, 3, 0]);
    }
}
