//! Pure-Rust inference engine for llama-family GGUF models (llama, qwen2),
//! with no dependency on the Internet Computer: the LLM canister wraps it.
//!
//! - [`gguf`]: parse (and write) GGUF files from any [`ByteSource`].
//! - [`kernels`]: half floats, dequantization, dot products (scalar and wasm simd128).
//! - [`Model`]: hyper-parameters and weights; [`Session`]: one conversation's KV cache.
//! - [`Tokenizer`]: SentencePiece-style and byte-level BPE from GGUF metadata.
//! - [`Sampler`]: greedy or seeded temperature / top-k / top-p sampling.
//! - [`synthetic`]: random-weight models of any shape, for tests and benchmarks.
//!
//! ```no_run
//! # fn main() -> llm_engine::Result<()> {
//! use llm_engine::{GgufFile, Model, Sampler, Session, Tokenizer};
//! let bytes = std::fs::read("model.gguf").unwrap();
//! let file = GgufFile::parse(bytes.as_slice())?;
//! let tokenizer = Tokenizer::from_gguf(&file)?;
//! let model = Model::from_file_bytes(&file, bytes)?;
//! let mut session = Session::new(&model, model.config().context_length)?;
//! session.feed(&model, &tokenizer.encode("Once upon a time", true, false))?;
//! let mut sampler = Sampler::greedy();
//! let token = session.sample_next(&model, &mut sampler)?;
//! session.feed(&model, &[token])?;
//! # Ok(()) }
//! ```

pub mod error;
pub mod gguf;
pub mod kernels;
pub mod kv_cache;
pub mod model;
pub mod sampling;
pub mod session;
pub mod snapshot;
pub mod source;
pub mod synthetic;
pub mod tokenizer;

pub use error::{Error, Result};
pub use gguf::{GgufFile, GgufWriter, TensorInfo, TensorType, Value};
pub use kv_cache::CacheType;
pub use model::{Architecture, Model, ModelConfig};
pub use sampling::{Sampler, SamplerConfig};
pub use session::Session;
pub use source::ByteSource;
pub use tokenizer::{Tokenizer, Utf8Stream};
