//! Numeric kernels: half-precision conversion, the ggml block formats, the
//! int8 kernel every quantized type is repacked for, F32/F16 dot products,
//! and the matrix product built on them.
//!
//! Every hot loop has a portable scalar version and, when compiled for wasm32
//! with `+simd128`, a simd128 version that sums in exactly the same order, so
//! results do not depend on the target.

pub mod dense;
pub mod half;
pub mod lanes;
pub mod packed;
pub mod q8_0;
pub mod quants;

use crate::error::{Error, Result};
use crate::gguf::TensorType;
pub use packed::{PackedActivations, PackedMatrix};

pub fn supports(ty: TensorType) -> bool {
    matches!(ty, TensorType::F32 | TensorType::F16) || quants::form(ty).is_some()
}

/// Encodes f32 values as tensor data of type `ty` (for writing synthetic
/// models). Quantized types need a whole number of blocks.
pub fn encode(ty: TensorType, values: &[f32]) -> Result<Vec<u8>> {
    let whole_blocks = (values.len() as u64).is_multiple_of(ty.block_len());
    match ty {
        TensorType::F32 => Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        TensorType::F16 => Ok(values.iter().flat_map(|&v| half::f32_to_f16(v).to_le_bytes()).collect()),
        _ if quants::form(ty).is_some() && whole_blocks => Ok(quants::encode(ty, values)),
        _ if quants::form(ty).is_some() => {
            Err(Error::InvalidArgument(format!("{} values are not whole {ty} blocks", values.len())))
        }
        _ => Err(Error::UnsupportedTensorType { tensor: "(encode)".into(), type_name: ty.name() }),
    }
}

/// A weight matrix held for inference: F32/F16 rows as in the file, every
/// quantized type repacked for the int8 kernel (`packed`). `rows` rows of
/// `cols` elements (ggml: `ne0 = cols`, `ne1 = rows`).
#[derive(Clone, Debug)]
pub enum Weights {
    Dense { ty: TensorType, rows: usize, cols: usize, data: Vec<u8> },
    Packed { ty: TensorType, matrix: PackedMatrix },
}

impl Weights {
    /// Takes the tensor data `data` (`rows` rows of `cols` elements of `ty`),
    /// checking its size.
    pub fn new(name: &str, ty: TensorType, rows: usize, cols: usize, data: &[u8]) -> Result<Self> {
        if !supports(ty) {
            return Err(Error::UnsupportedTensorType { tensor: name.into(), type_name: ty.name() });
        }
        let row_bytes = ty.bytes_for(cols as u64).map(|b| b as usize);
        let row_bytes = match row_bytes {
            Some(row_bytes) if row_bytes.checked_mul(rows) == Some(data.len()) => row_bytes,
            _ => return Err(Error::InvalidShape { tensor: name.into(), dims: vec![cols as u64, rows as u64] }),
        };
        Ok(match quants::form(ty) {
            None => Weights::Dense { ty, rows, cols, data: data.to_vec() },
            Some((block, has_offsets)) => {
                let matrix = PackedMatrix::from_rows(rows, cols, block, has_offsets, |r, out| {
                    quants::decode_row(ty, &data[r * row_bytes..(r + 1) * row_bytes], out)
                });
                Weights::Packed { ty, matrix }
            }
        })
    }

    pub fn ty(&self) -> TensorType {
        match self {
            Weights::Dense { ty, .. } | Weights::Packed { ty, .. } => *ty,
        }
    }
    pub fn rows(&self) -> usize {
        match self {
            Weights::Dense { rows, .. } => *rows,
            Weights::Packed { matrix, .. } => matrix.rows(),
        }
    }
    pub fn cols(&self) -> usize {
        match self {
            Weights::Dense { cols, .. } => *cols,
            Weights::Packed { matrix, .. } => matrix.cols(),
        }
    }

    /// Bytes held in memory.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Weights::Dense { data, .. } => data.len(),
            Weights::Packed { matrix, .. } => matrix.heap_bytes(),
        }
    }

    fn dense_row(data: &[u8], ty: TensorType, cols: usize, r: usize) -> &[u8] {
        let row_bytes = ty.bytes_for(cols as u64).expect("checked in new") as usize;
        &data[r * row_bytes..(r + 1) * row_bytes]
    }

    /// Writes row `r` as f32 into `out` (`cols` long): the file type's dequantization.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        match self {
            Weights::Dense { ty, cols, data, .. } => {
                let row = Self::dense_row(data, *ty, *cols, r);
                let out = &mut out[..*cols];
                match ty {
                    TensorType::F32 => dense::dequantize_f32_row(row, out),
                    _ => dense::dequantize_f16_row(row, out),
                }
            }
            Weights::Packed { matrix, .. } => matrix.dequantize_row(r, out),
        }
    }

    /// For each of the `n` input vectors `xs[t*cols..(t+1)*cols]`, writes the
    /// matrix-vector product to `out[t*rows..(t+1)*rows]`. Each output is
    /// computed the same way whatever `n` is, so batching never changes results.
    pub fn matmul(&self, xs: &[f32], out: &mut [f32], scratch: &mut MatmulScratch) {
        let (rows, cols) = (self.rows(), self.cols());
        let n = xs.len() / cols;
        debug_assert_eq!(xs.len(), n * cols);
        debug_assert_eq!(out.len(), n * rows);
        match self {
            Weights::Dense { ty: TensorType::F32, data, .. } => {
                for r in 0..rows {
                    let row = Self::dense_row(data, TensorType::F32, cols, r);
                    for t in 0..n {
                        out[t * rows + r] = dense::dot_f32_row(row, &xs[t * cols..(t + 1) * cols]);
                    }
                }
            }
            Weights::Dense { ty, data, .. } => {
                // Like ggml, which multiplies F16 weights with activations converted to F16.
                let xs = scratch.rounded_to_f16(xs);
                for r in 0..rows {
                    let row = Self::dense_row(data, *ty, cols, r);
                    for t in 0..n {
                        out[t * rows + r] = dense::dot_f16_row(row, &xs[t * cols..(t + 1) * cols]);
                    }
                }
            }
            Weights::Packed { matrix, .. } => {
                let acts = scratch.activations_for(xs, cols, matrix.block());
                matrix.matmul(acts, out);
            }
        }
    }
}

/// Products of several matrices with the same input vectors (the
/// attention's Q, K and V, the feed-forward's gate and up): the input is
/// quantized once for all the packed matrices of one block length, not
/// once per matrix. Each result is what `Weights::matmul` gives.
pub fn matmul_shared(xs: &[f32], products: &mut [(&Weights, &mut [f32])], scratch: &mut MatmulScratch) {
    let mut quantized_for = None;
    for (weights, out) in products.iter_mut() {
        match weights {
            Weights::Packed { matrix, .. } => {
                let (cols, block) = (matrix.cols(), matrix.block());
                if quantized_for != Some((cols, block)) {
                    scratch.activations_for(xs, cols, block);
                    quantized_for = Some((cols, block));
                }
                matrix.matmul(&scratch.acts[..xs.len() / cols], out);
            }
            Weights::Dense { .. } => weights.matmul(xs, out, scratch),
        }
    }
}

/// Buffers reused across matrix products (quantized activations).
#[derive(Default, Debug, Clone)]
pub struct MatmulScratch {
    acts: Vec<PackedActivations>,
    f16: Vec<f32>,
}

impl MatmulScratch {
    fn rounded_to_f16(&mut self, xs: &[f32]) -> &[f32] {
        self.f16.clear();
        self.f16.extend(xs.iter().map(|&x| half::round_to_f16(x)));
        &self.f16
    }

    fn activations_for(&mut self, xs: &[f32], cols: usize, block: usize) -> &[PackedActivations] {
        let n = xs.len() / cols;
        if self.acts.len() < n {
            self.acts.resize_with(n, Default::default);
        }
        for (acts, x) in self.acts.iter_mut().zip(xs.chunks_exact(cols)) {
            acts.quantize_from(x, block);
        }
        &self.acts[..n]
    }
}
