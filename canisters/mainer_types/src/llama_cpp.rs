//! The Candid interface of the llama.cpp canister (onicai's `llama_cpp.did`),
//! the subset the mAIner canisters use, exactly as the canister defines it.
//!
//! Note `run_update`'s result: `variant { Ok: RunOutputRecord; Err: RunOutputRecord }`
//! — the error carries the same record as success (the existing Motoko client
//! declared another type there and turned every LLM error into a decode trap).

use candid::{CandidType, Principal};
use serde::Deserialize;

pub type StatusCode = u16;

/// llama.cpp command-line arguments, e.g. `["-p", "Hello", "-n", "32"]`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct InputRecord {
    pub args: Vec<String>,
}

impl InputRecord {
    pub fn new<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Self {
        InputRecord { args: args.into_iter().map(Into::into).collect() }
    }
}

/// What `new_chat`, `run_update`, `load_model`, `remove_prompt_cache` return.
/// The token counts are optional: older canister versions do not send them.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct RunOutputRecord {
    pub status_code: StatusCode,
    pub output: String,
    pub conversation: String,
    pub error: String,
    pub prompt_remaining: String,
    pub generated_eog: bool,
    pub n_prompt_tokens: Option<u64>,
    pub n_prompt_tokens_cached: Option<u64>,
    pub n_prompt_tokens_decoded: Option<u64>,
    pub n_tokens_generated: Option<u64>,
    pub n_prompt_tokens_remaining: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum OutputRecordResult {
    Ok(RunOutputRecord),
    Err(RunOutputRecord),
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    Other(String),
    StatusCode(StatusCode),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Other(m) => write!(f, "{m}"),
            ApiError::StatusCode(c) => write!(f, "status code {c}"),
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StatusCodeRecord {
    pub status_code: StatusCode,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum StatusCodeRecordResult {
    Ok(StatusCodeRecord),
    Err(ApiError),
}

/// Tokens per call: 0 means no limit.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MaxTokensRecord {
    pub max_tokens_update: u64,
    pub max_tokens_query: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FileUploadInputRecord {
    pub filename: String,
    #[serde(with = "serde_bytes")]
    pub chunk: Vec<u8>,
    pub chunksize: u64,
    pub offset: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FileUploadRecord {
    pub filename: String,
    pub filesize: u64,
    pub filesha256: String,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum FileUploadRecordResult {
    Ok(FileUploadRecord),
    Err(ApiError),
}

/// 0: only controllers; 1: everyone except the anonymous principal.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessInputRecord {
    pub level: u16,
}

/// The principals granted access to the inference endpoints (`grant_access`,
/// `revoke_access`, `list_access`: our `llm` canister's, not the llama.cpp
/// canister's).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AccessListResult {
    Ok(Vec<Principal>),
    Err(ApiError),
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AccessRecord {
    pub level: u16,
    pub explanation: String,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AccessRecordResult {
    Ok(AccessRecord),
    Err(ApiError),
}

/// Largest chunk `file_upload_chunk` accepts (the llama.cpp canister's limit).
pub const MAX_FILE_UPLOAD_CHUNK_BYTES: usize = 2_097_152;

/// Method names, so callers and the fixture cannot drift apart.
pub mod methods {
    pub const HEALTH: &str = "health";
    pub const READY: &str = "ready";
    pub const NEW_CHAT: &str = "new_chat";
    pub const RUN_UPDATE: &str = "run_update";
    pub const REMOVE_PROMPT_CACHE: &str = "remove_prompt_cache";
    pub const LOAD_MODEL: &str = "load_model";
    pub const SET_MAX_TOKENS: &str = "set_max_tokens";
    pub const GET_MAX_TOKENS: &str = "get_max_tokens";
    pub const FILE_UPLOAD_CHUNK: &str = "file_upload_chunk";
    pub const SET_ACCESS: &str = "set_access";
    pub const CHECK_ACCESS: &str = "check_access";
}

#[cfg(test)]
mod tests {
    use super::*;
    use candid::{Decode, Encode};

    /// The record as older canisters send it (no token counts) still decodes.
    #[test]
    fn run_output_without_token_counts_decodes() {
        #[derive(CandidType)]
        struct Old {
            status_code: u16,
            output: String,
            conversation: String,
            error: String,
            prompt_remaining: String,
            generated_eog: bool,
        }
        #[derive(CandidType)]
        enum OldResult {
            Err(Old),
        }
        let old = OldResult::Err(Old {
            status_code: 500,
            output: String::new(),
            conversation: String::new(),
            error: "model not loaded".into(),
            prompt_remaining: String::new(),
            generated_eog: false,
        });
        let decoded = Decode!(&Encode!(&old).unwrap(), OutputRecordResult).unwrap();
        match decoded {
            OutputRecordResult::Err(r) => {
                assert_eq!((r.status_code, r.error.as_str(), r.n_tokens_generated), (500, "model not loaded", None))
            }
            other => panic!("{other:?}"),
        }
    }
}
