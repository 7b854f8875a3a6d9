//! The loaded model: what inference needs in the heap (weights, tokenizer),
//! read from the uploaded file in one step.
//!
//! One call is enough: loading is a single read of the tensor data from
//! stable memory plus parsing the metadata and building the tokenizer, about
//! 2.6 instructions per byte of file (1.4B for a 528 MB Qwen2.5-0.5B-shaped
//! q8_0 file, see `benchmarks/llm.md`; the limit is 40B), so it is not split
//! across calls.

use llm_engine::{ByteSource, CacheType, GgufFile, Model, Tokenizer};

/// Positions per conversation without `-c` (llama.cpp's default context),
/// capped by the model's own context length.
pub const DEFAULT_CONTEXT: usize = 4096;
/// Largest model file loaded: its weights must fit a wasm32 heap (4 GiB)
/// next to the KV caches; the IC's default `wasm_memory_limit` is 3 GiB.
pub const MAX_MODEL_BYTES: u64 = 3 << 30;

/// Shape and sizes of the loaded model, for `memory_status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFacts {
    pub path: String,
    pub file_bytes: u64,
    pub architecture: String,
    pub parameters: u64,
    pub weight_bytes: u64,
    pub vocab_size: u64,
    pub context_length: u64,
    /// Positions one conversation may hold (`-c`, capped by the model).
    pub session_capacity: u64,
    pub block_count: u64,
    pub embedding_length: u64,
    pub head_count: u64,
    pub head_count_kv: u64,
    pub feed_forward_length: u64,
    /// KV-cache bytes one position takes (keys and values, all layers, in the cache type).
    pub kv_bytes_per_position: u64,
}

pub struct Engine {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub facts: ModelFacts,
    /// Instructions of the last generation step and the last prompt token
    /// (per token, batched), to keep calls under the instruction limit.
    pub step_cost: Option<u64>,
    pub prompt_token_cost: Option<u64>,
    /// How conversations store their keys and values.
    pub cache_type: CacheType,
}

impl Engine {
    /// Parses the file, builds the tokenizer, and copies the weights into the
    /// heap (once: the file stays in stable memory). `ctx_size` 0 or None
    /// means [`DEFAULT_CONTEXT`].
    pub fn load<S: ByteSource + ?Sized>(
        source: &S,
        path: &str,
        ctx_size: Option<u64>,
        cache_type: CacheType,
    ) -> llm_engine::Result<Self> {
        if source.len() > MAX_MODEL_BYTES {
            return Err(llm_engine::Error::InvalidArgument(format!(
                "a model of {} bytes does not fit the heap (at most {MAX_MODEL_BYTES} bytes)",
                source.len()
            )));
        }
        let file = GgufFile::parse(source)?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        let model = Model::load(&file, source)?;
        let c = model.config();
        let wanted = match ctx_size {
            Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => DEFAULT_CONTEXT,
        };
        let session_capacity = wanted.min(c.context_length);
        let facts = ModelFacts {
            path: path.to_string(),
            file_bytes: source.len(),
            architecture: c.architecture.name().to_string(),
            parameters: file.parameter_count(),
            weight_bytes: model.weight_bytes() as u64,
            vocab_size: c.vocab_size as u64,
            context_length: c.context_length as u64,
            session_capacity: session_capacity as u64,
            block_count: c.block_count as u64,
            embedding_length: c.embedding_length as u64,
            head_count: c.head_count as u64,
            head_count_kv: c.head_count_kv as u64,
            feed_forward_length: c.feed_forward_length as u64,
            kv_bytes_per_position: (2 * c.block_count * c.kv_dim() * cache_type.bytes_per_value()) as u64,
        };
        Ok(Engine { model, tokenizer, facts, step_cost: None, prompt_token_cost: None, cache_type })
    }

    pub fn session_capacity(&self) -> usize {
        self.facts.session_capacity as usize
    }
}
