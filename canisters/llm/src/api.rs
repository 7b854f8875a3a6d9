//! Candid types of the endpoints this canister has beyond the llama.cpp
//! interface (whose types are `mainer_types::llama_cpp`).

use candid::CandidType;
use mainer_types::llama_cpp::FileUploadRecord;
use serde::Deserialize;

pub use mainer_types::llama_cpp::AccessListResult;

/// Argument of `uploaded_file_details` (as in the llama.cpp canister).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FileDetailsInputRecord {
    pub filename: String,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LoadedModelInfo {
    pub path: String,
    pub file_bytes: u64,
    pub architecture: String,
    pub parameters: u64,
    /// Weights held in the heap (the file's tensor data).
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
    pub kv_bytes_per_position: u64,
    /// Instructions `load_model` (or the reload after an upgrade) took.
    pub load_instructions: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ModelState {
    NotLoaded,
    /// After an upgrade, until the model loaded before it is loaded again.
    Reloading,
    ReloadFailed(String),
    Loaded(LoadedModelInfo),
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MemoryStatus {
    pub heap_bytes: u64,
    pub stable_bytes: u64,
    pub model: ModelState,
    /// The uploaded file of the loaded (or reloading) model.
    pub model_file: Option<FileUploadRecord>,
    pub conversations: u64,
    pub max_conversations: u64,
    /// KV-cache bytes of all conversations (positions held × bytes per position).
    pub kv_cache_bytes: u64,
    pub kv_cache_budget_bytes: u64,
}

/// A shared prompt prefix (`list_prompt_prefixes`).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PromptPrefixInfo {
    pub name: String,
    pub tokens: u64,
    /// Bytes of its saved session in stable memory.
    pub bytes: u64,
    /// The model file it was computed with (only used with that model).
    pub model_sha256: String,
    /// SHA-256 of its saved bytes (what `export_prompt_prefix` gives).
    pub sha256: String,
}

/// Argument of `export_prompt_prefix`: `length` bytes from `offset`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PrefixChunkRequest {
    pub name: String,
    pub offset: u64,
    pub length: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PrefixChunk {
    pub chunk: Vec<u8>,
    /// Bytes of the whole prefix, and their SHA-256.
    pub total: u64,
    pub sha256: String,
}

/// Argument of `import_prompt_prefix`: the uploaded file `filename` holds
/// an exported prefix whose SHA-256 is `sha256`; it is saved as `name`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PrefixImport {
    pub name: String,
    pub filename: String,
    pub sha256: String,
}
