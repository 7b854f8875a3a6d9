//! A llama-family model: hyper-parameters plus weights, held in memory in
//! their file encoding (F32, F16 or Q8_0). Inference state lives in
//! [`crate::Session`], so one model can serve many conversations.

mod config;
pub(crate) mod ops;

pub use config::{Architecture, ModelConfig, RopeStyle};

use crate::error::{Error, Result};
use crate::gguf::{GgufFile, TensorInfo};
use crate::kernels::MatrixRef;
use crate::source::ByteSource;

/// Where a weight matrix lies in the model's data buffer.
#[derive(Clone, Debug)]
pub(crate) struct Matrix {
    name: String,
    ty: crate::gguf::TensorType,
    rows: usize,
    cols: usize,
    start: usize,
    len: usize,
}

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
    data: Vec<u8>,
    pub(crate) token_embd: Matrix,
    pub(crate) output_norm: Vec<f32>,
    /// The token embedding itself when the file has no `output.weight`.
    pub(crate) output: Matrix,
    pub(crate) layers: Vec<Layer>,
}

impl Model {
    /// Builds the model from a whole GGUF file already in memory, keeping the
    /// buffer (the weights are not copied).
    pub fn from_file_bytes(file: &GgufFile, bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() as u64 != file.file_len {
            return Err(Error::InvalidArgument(format!(
                "buffer has {} bytes but the parsed file has {}",
                bytes.len(),
                file.file_len
            )));
        }
        Self::build(file, bytes, file.data_offset as usize)
    }

    /// Builds the model by reading the tensor data section from `source`
    /// (for example a canister's stable memory) into memory.
    pub fn load<S: ByteSource + ?Sized>(file: &GgufFile, source: &S) -> Result<Self> {
        let end = file.tensors().iter().map(|t| t.offset + t.size).max().unwrap_or(0);
        let mut data = vec![0u8; usize::try_from(end).map_err(|_| too_big(end))?];
        source.read_at(file.data_offset, &mut data)?;
        Self::build(file, data, 0)
    }

    /// `data[data_start..]` is the file's tensor data section.
    fn build(file: &GgufFile, data: Vec<u8>, data_start: usize) -> Result<Self> {
        let config = ModelConfig::from_gguf(file)?;
        let c = &config;
        let find = |name: &str| file.tensor(name).ok_or_else(|| Error::MissingTensor(name.into()));
        let matrix = |name: &str, cols: usize, rows: usize| -> Result<Matrix> {
            let info = find(name)?;
            let m = matrix_at(info, cols, rows, data_start)?;
            // Validates the type and the byte size once, here.
            MatrixRef::new(name, m.ty, m.rows, m.cols, &data[m.start..m.start + m.len])?;
            Ok(m)
        };
        let vector = |name: &str, len: usize| -> Result<Vec<f32>> {
            let m = matrix(name, len, 1)?;
            let mut out = vec![0f32; len];
            view(&data, &m).dequantize_row(0, &mut out);
            Ok(out)
        };
        let optional_vector = |name: &str, len: usize| -> Result<Option<Vec<f32>>> {
            match file.tensor(name) {
                Some(_) => vector(name, len).map(Some),
                None => Ok(None),
            }
        };

        let (emb, vocab, ff) = (c.embedding_length, c.vocab_size, c.feed_forward_length);
        let (q_dim, kv_dim) = (c.q_dim(), c.kv_dim());
        let token_embd = matrix("token_embd.weight", emb, vocab)?;
        let output = match file.tensor("output.weight") {
            Some(_) => matrix("output.weight", emb, vocab)?,
            None => token_embd.clone(),
        };
        let mut layers = Vec::with_capacity(c.block_count);
        for i in 0..c.block_count {
            let name = |suffix: &str| format!("blk.{i}.{suffix}");
            layers.push(Layer {
                attn_norm: vector(&name("attn_norm.weight"), emb)?,
                wq: matrix(&name("attn_q.weight"), emb, q_dim)?,
                wk: matrix(&name("attn_k.weight"), emb, kv_dim)?,
                wv: matrix(&name("attn_v.weight"), emb, kv_dim)?,
                bq: optional_vector(&name("attn_q.bias"), q_dim)?,
                bk: optional_vector(&name("attn_k.bias"), kv_dim)?,
                bv: optional_vector(&name("attn_v.bias"), kv_dim)?,
                wo: matrix(&name("attn_output.weight"), q_dim, emb)?,
                ffn_norm: vector(&name("ffn_norm.weight"), emb)?,
                w_gate: matrix(&name("ffn_gate.weight"), emb, ff)?,
                w_up: matrix(&name("ffn_up.weight"), emb, ff)?,
                w_down: matrix(&name("ffn_down.weight"), ff, emb)?,
            });
        }
        let output_norm = vector("output_norm.weight", emb)?;
        Ok(Model { config, data, token_embd, output_norm, output, layers })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Whether the output projection reuses the token embedding.
    pub fn has_tied_embeddings(&self) -> bool {
        self.output.start == self.token_embd.start
    }

    /// Bytes of weight data held in memory.
    pub fn weight_bytes(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn view(&self, m: &Matrix) -> MatrixRef<'_> {
        view(&self.data, m)
    }
}

fn view<'a>(data: &'a [u8], m: &Matrix) -> MatrixRef<'a> {
    MatrixRef::new(&m.name, m.ty, m.rows, m.cols, &data[m.start..m.start + m.len])
        .expect("matrix validated when the model was built")
}

fn matrix_at(info: &TensorInfo, cols: usize, rows: usize, data_start: usize) -> Result<Matrix> {
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
    let start = data_start as u64 + info.offset;
    Ok(Matrix {
        name: info.name.clone(),
        ty: info.ty,
        rows,
        cols,
        start: usize::try_from(start).map_err(|_| too_big(start))?,
        len: usize::try_from(info.size).map_err(|_| too_big(info.size))?,
    })
}

fn too_big(n: u64) -> Error {
    Error::InvalidArgument(format!("{n} bytes do not fit in memory on this target"))
}
