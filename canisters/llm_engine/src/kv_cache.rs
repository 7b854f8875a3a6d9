//! A conversation's keys and values, in f32 or (llama.cpp's
//! `--cache-type-k/v f16`) in half precision: half the memory, and the
//! attention reads convert lane by lane (the same results with or without
//! simd128). With f16 the query is rounded to f16 before the key dot
//! products, as ggml does when multiplying by an f16 tensor.

use crate::kernels::lanes::F32x4;
use crate::kernels::{dense, half};

/// `dense::dot_f32` for lengths that are a multiple of 16, in its order
/// (four accumulators, `((a0 + a1) + (a2 + a3)).sum()`) without its tails.
#[inline(always)]
fn dot16(a: &[f32], b: &[f32]) -> f32 {
    let zero = F32x4::splat(0.0);
    let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
    for (x, y) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        a0 = a0.add(F32x4::load(x).mul(F32x4::load(y)));
        a1 = a1.add(F32x4::load(&x[4..]).mul(F32x4::load(&y[4..])));
        a2 = a2.add(F32x4::load(&x[8..]).mul(F32x4::load(&y[8..])));
        a3 = a3.add(F32x4::load(&x[12..]).mul(F32x4::load(&y[12..])));
    }
    a0.add(a1).add(a2.add(a3)).sum()
}

/// `scores[p] = dot16(q, keys[first + p * stride..][..N])` for every p, the
/// query held in registers (`L = N / 4` vectors) and one bounds check per
/// position: the same operations in the same order as `dot16`.
#[inline(always)]
fn scores_f32<const N: usize, const L: usize>(q: &[f32], k: &[f32], first: usize, stride: usize, scores: &mut [f32]) {
    debug_assert_eq!(4 * L, N);
    let q: [F32x4; L] = std::array::from_fn(|j| F32x4::load(&q[4 * j..]));
    let zero = F32x4::splat(0.0);
    for (p, s) in scores.iter_mut().enumerate() {
        let at = first + p * stride;
        let row: &[f32; N] = k[at..at + N].try_into().expect("N values");
        let mut a = [zero; 4];
        for (j, q) in q.iter().enumerate() {
            a[j % 4] = a[j % 4].add(q.mul(F32x4::load(&row[4 * j..])));
        }
        *s = a[0].add(a[1]).add(a[2].add(a[3])).sum();
    }
}

/// `out += weights[p] * values[first + p * stride..][..N]` for every p in
/// order, all `N` outputs held in registers: per output, the same
/// operations in the same order as `dense::axpy` per position.
#[inline(always)]
fn weighted_f32<const N: usize, const L: usize>(
    weights: &[f32],
    v: &[f32],
    first: usize,
    stride: usize,
    out: &mut [f32],
) {
    debug_assert_eq!(4 * L, N);
    let mut acc: [F32x4; L] = std::array::from_fn(|j| F32x4::load(&out[4 * j..]));
    for (p, &w) in weights.iter().enumerate() {
        let at = first + p * stride;
        let row: &[f32; N] = v[at..at + N].try_into().expect("N values");
        let w = F32x4::splat(w);
        for (j, a) in acc.iter_mut().enumerate() {
            *a = a.add(w.mul(F32x4::load(&row[4 * j..])));
        }
    }
    for (j, a) in acc.iter().enumerate() {
        a.store(&mut out[4 * j..]);
    }
}

/// How the cache stores keys and values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheType {
    #[default]
    F32,
    F16,
}

impl CacheType {
    /// `f32` or `f16` (llama.cpp's names); other cache types are not supported.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "f32" => Some(CacheType::F32),
            "f16" => Some(CacheType::F16),
            _ => None,
        }
    }

    pub fn bytes_per_value(self) -> usize {
        match self {
            CacheType::F32 => 4,
            CacheType::F16 => 2,
        }
    }
}

#[derive(Clone, Debug)]
enum Store {
    F32(Vec<f32>),
    /// Little-endian halves.
    F16(Vec<u8>),
}

impl Store {
    fn new(ty: CacheType) -> Self {
        match ty {
            CacheType::F32 => Store::F32(Vec::new()),
            CacheType::F16 => Store::F16(Vec::new()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Store::F32(v) => v.len(),
            Store::F16(v) => v.len() / 2,
        }
    }

    /// Resizes to `values` values, growing the allocation by doubling up to `limit` values.
    fn resize(&mut self, values: usize, limit: usize) {
        fn grow<T: Clone + Default>(v: &mut Vec<T>, needed: usize, limit: usize) {
            if needed > v.capacity() {
                let target = needed.max(2 * v.capacity()).min(limit.max(needed));
                v.reserve_exact(target - v.len());
            }
            v.resize(needed, T::default());
        }
        match self {
            Store::F32(v) => grow(v, values, limit),
            Store::F16(v) => grow(v, 2 * values, 2 * limit),
        }
    }

    fn write(&mut self, at: usize, values: &[f32]) {
        match self {
            Store::F32(v) => v[at..at + values.len()].copy_from_slice(values),
            Store::F16(v) => {
                for (out, &x) in v[2 * at..2 * (at + values.len())].chunks_exact_mut(2).zip(values) {
                    out.copy_from_slice(&half::f32_to_f16(x).to_le_bytes());
                }
            }
        }
    }
}

impl Store {
    /// The stored values as little-endian bytes (f32: 4 per value, f16: 2).
    fn to_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Store::F32(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
            Store::F16(v) => out.extend_from_slice(v),
        }
    }

    /// Replaces the values by those in `bytes` (as `to_bytes` wrote them).
    fn set_bytes(&mut self, bytes: &[u8]) {
        match self {
            Store::F32(v) => {
                v.clear();
                v.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            }
            Store::F16(v) => {
                v.clear();
                v.extend_from_slice(bytes);
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct KvCache {
    ty: CacheType,
    keys: Store,
    values: Store,
}

impl KvCache {
    pub fn new(ty: CacheType) -> Self {
        KvCache { ty, keys: Store::new(ty), values: Store::new(ty) }
    }

    pub fn cache_type(&self) -> CacheType {
        self.ty
    }

    /// Values held (keys and values each).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        2 * self.len() * self.ty.bytes_per_value()
    }

    /// Resizes both to `values` values (growing by doubling, never past `limit`).
    pub fn resize(&mut self, values: usize, limit: usize) {
        self.keys.resize(values, limit);
        self.values.resize(values, limit);
    }

    /// Keys then values as little-endian bytes (`bytes()` of them).
    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        self.keys.to_bytes(out);
        self.values.to_bytes(out);
    }

    /// Replaces keys and values by `bytes` as `to_bytes` wrote them for
    /// `values` values each; `None` (and nothing changed) if the length is not that.
    pub fn set_bytes(&mut self, values: usize, bytes: &[u8]) -> Option<()> {
        let half = values.checked_mul(self.ty.bytes_per_value())?;
        if bytes.len() != half.checked_mul(2)? {
            return None;
        }
        self.keys.set_bytes(&bytes[..half]);
        self.values.set_bytes(&bytes[half..]);
        Some(())
    }

    pub fn write(&mut self, at: usize, keys: &[f32], values: &[f32]) {
        self.keys.write(at, keys);
        self.values.write(at, values);
    }

    /// Rounds the query as the key dot products need it (f16 cache: to f16).
    pub fn prepare_query(&self, q: &[f32], out: &mut Vec<f32>) {
        out.clear();
        match self.ty {
            CacheType::F32 => out.extend_from_slice(q),
            CacheType::F16 => out.extend(q.iter().map(|&v| half::round_to_f16(v))),
        }
    }

    /// `scores[p] = q · keys[first + p * stride..][..q.len()]` for every p,
    /// `q` from `prepare_query`; bit-identical to `key_dot` per position.
    pub fn scores(&self, q: &[f32], first: usize, stride: usize, scores: &mut [f32]) {
        match &self.keys {
            Store::F32(k) => match q.len() {
                32 => scores_f32::<32, 8>(q, k, first, stride, scores),
                64 => scores_f32::<64, 16>(q, k, first, stride, scores),
                128 => scores_f32::<128, 32>(q, k, first, stride, scores),
                n if n.is_multiple_of(16) => {
                    for (p, s) in scores.iter_mut().enumerate() {
                        *s = dot16(q, &k[first + p * stride..][..n]);
                    }
                }
                _ => self.scores_one_by_one(q, first, stride, scores),
            },
            Store::F16(_) => self.scores_one_by_one(q, first, stride, scores),
        }
    }

    fn scores_one_by_one(&self, q: &[f32], first: usize, stride: usize, scores: &mut [f32]) {
        for (p, s) in scores.iter_mut().enumerate() {
            *s = self.key_dot(first + p * stride, q);
        }
    }

    /// `out += weights[p] * values[first + p * stride..][..out.len()]` for
    /// every p in order; bit-identical to `add_value` per position.
    pub fn weighted_values(&self, weights: &[f32], first: usize, stride: usize, out: &mut [f32]) {
        match (&self.values, out.len()) {
            (Store::F32(v), 32) => weighted_f32::<32, 8>(weights, v, first, stride, out),
            (Store::F32(v), 64) => weighted_f32::<64, 16>(weights, v, first, stride, out),
            (Store::F32(v), 128) => weighted_f32::<128, 32>(weights, v, first, stride, out),
            _ => {
                for (p, &w) in weights.iter().enumerate() {
                    self.add_value(out, w, first + p * stride);
                }
            }
        }
    }

    /// `q · keys[at..at + q.len()]`, `q` from `prepare_query`.
    #[inline]
    pub fn key_dot(&self, at: usize, q: &[f32]) -> f32 {
        match &self.keys {
            Store::F32(k) => dense::dot_f32(q, &k[at..at + q.len()]),
            Store::F16(k) => dense::dot_f16_row(&k[2 * at..2 * (at + q.len())], q),
        }
    }

    /// `out += weight * values[at..at + out.len()]`.
    #[inline]
    pub fn add_value(&self, out: &mut [f32], weight: f32, at: usize) {
        match &self.values {
            Store::F32(v) => dense::axpy(out, weight, &v[at..at + out.len()]),
            Store::F16(v) => dense::axpy_f16_row(out, weight, &v[2 * at..2 * (at + out.len())]),
        }
    }
}
