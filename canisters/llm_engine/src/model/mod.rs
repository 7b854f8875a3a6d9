//! A llama-family model: hyper-parameters plus weights, held in memory as
//! F32/F16 rows or, for every quantized type, repacked for the int8 kernel
//! (`kernels::packed`). Inference state lives in [`crate::Session`], so one
//! model can serve many conversations.

mod config;
pub(crate) mod ops;

pub use config::{Architecture, ModelConfig, RopeStyle};

use crate::error::{Error, Result};
use crate::gguf::{GgufFile, TensorInfo};
use crate::kernels::Weights;
use crate::source::ByteSource;

type Matrix = Weights;

pub(crate) struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: Matrix,
    pub wk: Matrix,
    pub wv: Matrix,
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    pub wo: Matrix,
    pub ffn_norm: Vec<f32>,
    pub w_gate: Matrix,
    pub w_up: Matrix,
    pub w_down: Matrix,
}

pub struct Model {
    config: ModelConfig,
    pub(crate) token_embd: Matrix,
    pub(crate) output_norm: Vec<f32>,
    /// `None` when the file has no `output.weight`: the token embedding doubles as output.
    output: Option<Matrix>,
    pub(crate) layers: Vec<Layer>,
}

impl Model {
    /// Builds the model from a whole GGUF file already in memory.
    pub fn from_file_bytes(file: &GgufFile, bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() as u64 != file.file_len {
            return Err(Error::InvalidArgument(format!(
                "buffer has {} bytes but the parsed file has {}",
                bytes.len(),
                file.file_len
            )));
        }
        let data = &bytes[file.data_offset as usize..];
        Self::build(file, &mut |info: &TensorInfo, out: &mut Vec<u8>| {
            let (start, len) = span(info)?;
            out.clear();
            out.extend_from_slice(data.get(start..start + len).ok_or_else(|| too_big(info.offset + info.size))?);
            Ok(())
        })
    }

    /// Builds the model by reading each tensor from `source` (for example a
    /// canister's stable memory): only one file tensor is in memory at a time
    /// besides the model.
    pub fn load<S: ByteSource + ?Sized>(file: &GgufFile, source: &S) -> Result<Self> {
        Self::build(file, &mut |info: &TensorInfo, out: &mut Vec<u8>| {
            let (_, len) = span(info)?;
            out.resize(len, 0);
            source.read_at(file.data_offset + info.offset, out)
        })
    }

    /// `read(info, buffer)` fills `buffer` with the tensor's data.
    fn build(file: &GgufFile, read: &mut dyn FnMut(&TensorInfo, &mut Vec<u8>) -> Result<()>) -> Result<Self> {
        let config = ModelConfig::from_gguf(file)?;
        let c = &config;
        let mut l = Loader { file, read, buffer: Vec::new() };
        let (emb, vocab, ff) = (c.embedding_length, c.vocab_size, c.feed_forward_length);
        let (q_dim, kv_dim) = (c.q_dim(), c.kv_dim());
        let (matrix, vector, optional_vector) = (Loader::matrix, Loader::vector, Loader::optional_vector);
        let mut layers = Vec::with_capacity(c.block_count);
        for i in 0..c.block_count {
            let name = |suffix: &str| format!("blk.{i}.{suffix}");
            layers.push(Layer {
                attn_norm: vector(&mut l, &name("attn_norm.weight"), emb)?,
                bq: optional_vector(&mut l, &name("attn_q.bias"), q_dim)?,
                bk: optional_vector(&mut l, &name("attn_k.bias"), kv_dim)?,
                bv: optional_vector(&mut l, &name("attn_v.bias"), kv_dim)?,
                ffn_norm: vector(&mut l, &name("ffn_norm.weight"), emb)?,
                wq: matrix(&mut l, &name("attn_q.weight"), emb, q_dim)?,
                wk: matrix(&mut l, &name("attn_k.weight"), emb, kv_dim)?,
                wv: matrix(&mut l, &name("attn_v.weight"), emb, kv_dim)?,
                wo: matrix(&mut l, &name("attn_output.weight"), q_dim, emb)?,
                w_gate: matrix(&mut l, &name("ffn_gate.weight"), emb, ff)?,
                w_up: matrix(&mut l, &name("ffn_up.weight"), emb, ff)?,
                w_down: matrix(&mut l, &name("ffn_down.weight"), ff, emb)?,
            });
        }
        let output_norm = vector(&mut l, "output_norm.weight", emb)?;
        let token_embd = matrix(&mut l, "token_embd.weight", emb, vocab)?;
        let output = match file.tensor("output.weight") {
            Some(_) => Some(matrix(&mut l, "output.weight", emb, vocab)?),
            None => None,
        };
        Ok(Model { config, token_embd, output_norm, output, layers })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Whether the output projection reuses the token embedding.
    pub fn has_tied_embeddings(&self) -> bool {
        self.output.is_none()
    }

    /// Bytes of weights held in memory (quantized types repacked: about
    /// 1.06 bytes per weight for 8-bit types, 1.06-1.25 for the others).
    pub fn weight_bytes(&self) -> usize {
        let layer = |l: &Layer| {
            [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down].iter().map(|m| m.heap_bytes()).sum::<usize>()
        };
        self.token_embd.heap_bytes()
            + self.output.as_ref().map_or(0, Weights::heap_bytes)
            + self.layers.iter().map(layer).sum::<usize>()
    }

    pub(crate) fn output(&self) -> &Matrix {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }
}

/// Reads and converts tensors one at a time through one buffer.
struct Loader<'a> {
    file: &'a GgufFile,
    read: &'a mut dyn FnMut(&TensorInfo, &mut Vec<u8>) -> Result<()>,
    buffer: Vec<u8>,
}

impl Loader<'_> {
    fn matrix(&mut self, name: &str, cols: usize, rows: usize) -> Result<Matrix> {
        let info = self.file.tensor(name).ok_or_else(|| Error::MissingTensor(name.into()))?;
        check_shape(info, cols, rows)?;
        (self.read)(info, &mut self.buffer)?;
        Weights::new(name, info.ty, rows, cols, &self.buffer)
    }

    fn vector(&mut self, name: &str, len: usize) -> Result<Vec<f32>> {
        let m = self.matrix(name, len, 1)?;
        let mut out = vec![0f32; len];
        m.dequantize_row(0, &mut out);
        Ok(out)
    }

    fn optional_vector(&mut self, name: &str, len: usize) -> Result<Option<Vec<f32>>> {
        match self.file.tensor(name) {
            Some(_) => self.vector(name, len).map(Some),
            None => Ok(None),
        }
    }
}

fn span(info: &TensorInfo) -> Result<(usize, usize)> {
    let start = usize::try_from(info.offset).map_err(|_| too_big(info.offset))?;
    let len = usize::try_from(info.size).map_err(|_| too_big(info.size))?;
    Ok((start, len))
}

fn check_shape(info: &TensorInfo, cols: usize, rows: usize) -> Result<()> {
    // A 1-row matrix may be stored as a 1-D tensor.
    let matches = match info.dims.as_slice() {
        [c] => *c == cols as u64 && rows == 1,
        [c, r] => *c == cols as u64 && *r == rows as u64,
        _ => false,
    };
    if !matches {
        let expected = if rows == 1 { vec![cols as u64] } else { vec![cols as u64, rows as u64] };
        return Err(Error::WrongTensorShape { tensor: info.name.clone(), expected, found: info.dims.clone() });
    }
    Ok(())
}

fn too_big(n: u64) -> Error {
    Error::InvalidArgument(format!("{n} bytes do not fit in memory on this target"))
}
