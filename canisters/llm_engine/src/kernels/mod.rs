//! Numeric kernels: half-precision conversion, per-type dequantization and
//! dot products, and the matrix product built on them.
//!
//! Every hot loop has a portable scalar version and, when compiled for wasm32
//! with `+simd128`, a simd128 version that sums in exactly the same order, so
//! results do not depend on the target.

pub mod dense;
pub mod half;
pub mod lanes;
pub mod q8_0;

use crate::error::{Error, Result};
use crate::gguf::TensorType;
pub use q8_0::Q8Activations;

pub fn supports(ty: TensorType) -> bool {
    matches!(ty, TensorType::F32 | TensorType::F16 | TensorType::Q8_0)
}

/// Encodes f32 values as tensor data of type `ty` (for writing synthetic
/// models). Quantized types need a whole number of blocks.
pub fn encode(ty: TensorType, values: &[f32]) -> Result<Vec<u8>> {
    let whole_blocks = (values.len() as u64).is_multiple_of(ty.block_len());
    match ty {
        TensorType::F32 => Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        TensorType::F16 => Ok(values.iter().flat_map(|&v| half::f32_to_f16(v).to_le_bytes()).collect()),
        TensorType::Q8_0 if whole_blocks => Ok(q8_0::quantize(values)),
        TensorType::Q8_0 => Err(Error::InvalidArgument(format!("{} values are not whole Q8_0 blocks", values.len()))),
        _ => Err(Error::UnsupportedTensorType { tensor: "(encode)".into(), type_name: ty.name() }),
    }
}

/// A row-major weight matrix in one of the supported encodings: `rows` rows
/// of `cols` elements (ggml: `ne0 = cols`, `ne1 = rows`).
#[derive(Clone, Copy, Debug)]
pub struct MatrixRef<'a> {
    ty: TensorType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    data: &'a [u8],
}

impl<'a> MatrixRef<'a> {
    pub fn new(name: &str, ty: TensorType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self> {
        if !supports(ty) {
            return Err(Error::UnsupportedTensorType { tensor: name.into(), type_name: ty.name() });
        }
        let row_bytes = ty.bytes_for(cols as u64).map(|b| b as usize);
        match row_bytes {
            Some(row_bytes) if row_bytes.checked_mul(rows) == Some(data.len()) => {
                Ok(MatrixRef { ty, rows, cols, row_bytes, data })
            }
            _ => Err(Error::InvalidShape { tensor: name.into(), dims: vec![cols as u64, rows as u64] }),
        }
    }

    pub fn ty(&self) -> TensorType {
        self.ty
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn row(&self, r: usize) -> &'a [u8] {
        &self.data[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    /// Writes row `r` as f32 into `out` (`cols` long).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let row = self.row(r);
        let out = &mut out[..self.cols];
        match self.ty {
            TensorType::F32 => dense::dequantize_f32_row(row, out),
            TensorType::F16 => dense::dequantize_f16_row(row, out),
            TensorType::Q8_0 => q8_0::dequantize_row(row, out),
            _ => unreachable!("checked in MatrixRef::new"),
        }
    }

    /// For each of the `n` input vectors `xs[t*cols..(t+1)*cols]`, writes the
    /// matrix-vector product to `out[t*rows..(t+1)*rows]`. Each output is
    /// computed the same way whatever `n` is, so batching never changes results.
    pub fn matmul(&self, xs: &[f32], out: &mut [f32], scratch: &mut MatmulScratch) {
        let n = xs.len() / self.cols;
        debug_assert_eq!(xs.len(), n * self.cols);
        debug_assert_eq!(out.len(), n * self.rows);
        match self.ty {
            TensorType::F32 => {
                self.for_each_output(n, out, |row, t| dense::dot_f32_row(row, &xs[t * self.cols..(t + 1) * self.cols]))
            }
            TensorType::F16 => {
                // Like ggml, which multiplies F16 weights with activations converted to F16.
                let xs = scratch.rounded_to_f16(xs);
                self.for_each_output(n, out, |row, t| dense::dot_f16_row(row, &xs[t * self.cols..(t + 1) * self.cols]))
            }
            TensorType::Q8_0 => {
                let acts = scratch.q8_for(xs, self.cols);
                self.for_each_output_quad(
                    n,
                    out,
                    |row, t| q8_0::dot_row(row, &acts[t]),
                    |rows, t| q8_0::dot_four_rows(rows, &acts[t]),
                )
            }
            _ => unreachable!("checked in MatrixRef::new"),
        }
    }

    // Rows outer, inputs inner: a weight row is read once per batch.
    #[inline(always)]
    fn for_each_output(&self, n: usize, out: &mut [f32], dot: impl Fn(&[u8], usize) -> f32) {
        for r in 0..self.rows {
            let row = self.row(r);
            for t in 0..n {
                out[t * self.rows + r] = dot(row, t);
            }
        }
    }
}

impl MatrixRef<'_> {
    /// Like `for_each_output`, four rows at a time where the kernel can
    /// share the input loads between them.
    #[inline(always)]
    fn for_each_output_quad(
        &self,
        n: usize,
        out: &mut [f32],
        dot: impl Fn(&[u8], usize) -> f32,
        dot_quad: impl Fn([&[u8]; 4], usize) -> [f32; 4],
    ) {
        let quads = self.rows / 4;
        for q in 0..quads {
            let r = 4 * q;
            let rows = [self.row(r), self.row(r + 1), self.row(r + 2), self.row(r + 3)];
            for t in 0..n {
                out[t * self.rows + r..][..4].copy_from_slice(&dot_quad(rows, t));
            }
        }
        for r in 4 * quads..self.rows {
            for t in 0..n {
                out[t * self.rows + r] = dot(self.row(r), t);
            }
        }
    }
}

/// Buffers reused across matrix products (quantized activations).
#[derive(Default, Debug, Clone)]
pub struct MatmulScratch {
    q8: Vec<Q8Activations>,
    f16: Vec<f32>,
}

impl MatmulScratch {
    fn rounded_to_f16(&mut self, xs: &[f32]) -> &[f32] {
        self.f16.clear();
        self.f16.extend(xs.iter().map(|&x| half::round_to_f16(x)));
        &self.f16
    }

    fn q8_for(&mut self, xs: &[f32], cols: usize) -> &[Q8Activations] {
        let n = xs.len() / cols;
        if self.q8.len() < n {
            self.q8.resize_with(n, Default::default);
        }
        for (acts, x) in self.q8.iter_mut().zip(xs.chunks_exact(cols)) {
            acts.quantize_from(x);
        }
        &self.q8[..n]
    }
}
