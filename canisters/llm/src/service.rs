//! Everything the endpoints do, without the IC: the caller, the time and the
//! instruction counter are arguments, stable memory is any `Memory`. The
//! canister (`lib.rs`) holds one `Service` and forwards each call; tests
//! drive it natively with `VectorMemory`.
//!
//! Status codes in `Err` records: 400 bad arguments (the llama.cpp canister
//! traps on them) or no input,
//! 401 access denied, 404 model file not uploaded, 413 prompt does not fit
//! the context, 500 inference or model loading failed, 503 no model loaded.

use candid::Principal;
use ic_stable_structures::{Memory, StableCell};
use llm_engine::{CacheType, Session};
use mainer_types::llama_args::{self, LlamaArgs};
use mainer_types::llama_cpp::{
    AccessInputRecord, AccessRecord, AccessRecordResult, ApiError, FileUploadInputRecord, FileUploadRecordResult,
    InputRecord, MaxTokensRecord, OutputRecordResult, RunOutputRecord, StatusCodeRecord, StatusCodeRecordResult,
};

use crate::api::{
    AccessListResult, FileDetailsInputRecord, LoadedModelInfo, MemoryStatus, ModelState, PrefixChunk,
    PrefixChunkRequest, PrefixImport, PromptPrefixInfo,
};
use crate::chat::{CallLimits, ChatError, Conversation, INSTRUCTION_LIMIT, Meter};
use crate::conversations::{ConversationLimits, Conversations, Key};
use crate::engine::Engine;
use crate::files::{FileStore, StableFile};
use crate::prefixes::{PrefixEntry, Prefixes};
use crate::settings::{Caller, ModelArgs, Settings, explanation};
use crate::sha::Sha256State;
use llm_engine::ByteSource;

pub const BAD_REQUEST: u16 = 400;
pub const UNAUTHORIZED: u16 = 401;
pub const NOT_FOUND: u16 = 404;
pub const TOO_LARGE: u16 = 413;
pub const INTERNAL: u16 = 500;
pub const UNAVAILABLE: u16 = 503;

const ACCESS_DENIED: &str = "Access Denied";

/// The stable memories the service uses (see `lib.rs` for their ids).
pub struct Memories<M> {
    pub directory: M,
    pub settings: M,
    /// The shared prompt prefixes' directory and bytes.
    pub prefix_directory: M,
    pub prefix_data: M,
    /// `files::MAX_FILES` of them.
    pub file_slots: Vec<M>,
}

enum ModelSlot {
    NotLoaded,
    Reloading,
    ReloadFailed(String),
    Loaded { engine: Box<Engine>, load_instructions: u64 },
}

pub struct Service<M: Memory> {
    files: FileStore<M>,
    settings: StableCell<Settings, M>,
    model: ModelSlot,
    chats: Conversations,
    prefixes: Prefixes<M>,
    /// Where a call stops early (tests lower it).
    pub instruction_limit: u64,
}

/// Why an inference call is refused before it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status_code: u16,
    pub error: String,
}

impl Refusal {
    fn new(status_code: u16, error: impl Into<String>) -> Self {
        Refusal { status_code, error: error.into() }
    }

    fn into_result(self) -> OutputRecordResult {
        failure(self.status_code, self.error)
    }
}

pub fn failure(status_code: u16, error: impl Into<String>) -> OutputRecordResult {
    OutputRecordResult::Err(RunOutputRecord { status_code, error: error.into(), ..Default::default() })
}

fn success(output: impl Into<String>) -> OutputRecordResult {
    OutputRecordResult::Ok(RunOutputRecord { status_code: 200, output: output.into(), ..Default::default() })
}

fn status_ok() -> StatusCodeRecordResult {
    StatusCodeRecordResult::Ok(StatusCodeRecord { status_code: 200 })
}

impl ChatError {
    pub fn status_code(&self) -> u16 {
        match self {
            ChatError::EmptyInput | ChatError::BadArgument { .. } => BAD_REQUEST,
            ChatError::PromptTooLong { .. } => TOO_LARGE,
            ChatError::Engine(_) => INTERNAL,
        }
    }
}

impl<M: Memory> Service<M> {
    pub fn init(memories: Memories<M>) -> Self {
        Self::with_limits(memories, ConversationLimits::default())
    }

    pub fn with_limits(memories: Memories<M>, limits: ConversationLimits) -> Self {
        Service {
            files: FileStore::init(memories.directory, memories.file_slots),
            settings: StableCell::init(memories.settings, Settings::default()),
            model: ModelSlot::NotLoaded,
            chats: Conversations::new(limits),
            prefixes: Prefixes::init(memories.prefix_directory, memories.prefix_data),
            instruction_limit: INSTRUCTION_LIMIT,
        }
    }

    pub fn settings(&self) -> &Settings {
        self.settings.get()
    }

    fn change_settings<R>(&mut self, f: impl FnOnce(&mut Settings) -> R) -> R {
        let mut settings = self.settings.get().clone();
        let result = f(&mut settings);
        self.settings.set(settings);
        result
    }

    /// Why there is no model to run, as callers are told.
    fn not_loaded_message(&self) -> Option<String> {
        match &self.model {
            ModelSlot::Loaded { .. } => None,
            ModelSlot::NotLoaded => Some("model not loaded: call load_model".into()),
            ModelSlot::Reloading => {
                Some("model not loaded yet: it is being reloaded after an upgrade, try again shortly".into())
            }
            ModelSlot::ReloadFailed(e) => {
                Some(format!("model not loaded: call load_model (the reload after an upgrade failed: {e})"))
            }
        }
    }

    // ---- status ----

    pub fn health(&self) -> StatusCodeRecordResult {
        status_ok()
    }

    pub fn ready(&self) -> StatusCodeRecordResult {
        match self.not_loaded_message() {
            None => status_ok(),
            Some(message) => StatusCodeRecordResult::Err(ApiError::Other(message)),
        }
    }

    pub fn memory_status(&self, heap_bytes: u64, stable_bytes: u64) -> MemoryStatus {
        let (model, per_position) = match &self.model {
            ModelSlot::NotLoaded => (ModelState::NotLoaded, 0),
            ModelSlot::Reloading => (ModelState::Reloading, 0),
            ModelSlot::ReloadFailed(e) => (ModelState::ReloadFailed(e.clone()), 0),
            ModelSlot::Loaded { engine, load_instructions } => {
                let f = &engine.facts;
                let info = LoadedModelInfo {
                    path: f.path.clone(),
                    file_bytes: f.file_bytes,
                    architecture: f.architecture.clone(),
                    parameters: f.parameters,
                    weight_bytes: f.weight_bytes,
                    vocab_size: f.vocab_size,
                    context_length: f.context_length,
                    session_capacity: f.session_capacity,
                    block_count: f.block_count,
                    embedding_length: f.embedding_length,
                    head_count: f.head_count,
                    head_count_kv: f.head_count_kv,
                    feed_forward_length: f.feed_forward_length,
                    kv_bytes_per_position: f.kv_bytes_per_position,
                    load_instructions: *load_instructions,
                };
                (ModelState::Loaded(info), f.kv_bytes_per_position)
            }
        };
        let model_file = self.settings().model.as_ref().and_then(|m| self.files.info(&m.path));
        let limits = self.chats.limits;
        MemoryStatus {
            heap_bytes,
            stable_bytes,
            model,
            model_file,
            conversations: self.chats.len() as u64,
            max_conversations: limits.max_conversations as u64,
            kv_cache_bytes: self.chats.positions() * per_position,
            kv_cache_budget_bytes: limits.kv_budget_bytes,
        }
    }

    // ---- access ----

    pub fn check_access(&self, caller: Caller) -> StatusCodeRecordResult {
        match self.settings().may_infer(caller) {
            true => status_ok(),
            false => StatusCodeRecordResult::Err(ApiError::StatusCode(UNAUTHORIZED)),
        }
    }

    pub fn set_access(&mut self, caller: Caller, input: AccessInputRecord) -> AccessRecordResult {
        if !caller.controller {
            return AccessRecordResult::Err(ApiError::Other(ACCESS_DENIED.into()));
        }
        match self.change_settings(|s| s.set_level(input.level)) {
            Ok(text) => AccessRecordResult::Ok(AccessRecord { level: input.level, explanation: text.into() }),
            Err(e) => AccessRecordResult::Err(ApiError::Other(e.to_string())),
        }
    }

    pub fn get_access(&self, caller: Caller) -> AccessRecordResult {
        if !caller.controller {
            return AccessRecordResult::Err(ApiError::Other(ACCESS_DENIED.into()));
        }
        let level = self.settings().access_level;
        let text = explanation(level).unwrap_or("unknown level");
        AccessRecordResult::Ok(AccessRecord { level, explanation: text.into() })
    }

    pub fn grant_access(&mut self, caller: Caller, principal: Principal) -> AccessListResult {
        if !caller.controller {
            return AccessListResult::Err(ApiError::Other(ACCESS_DENIED.into()));
        }
        match self.change_settings(|s| s.grant(principal)) {
            Ok(()) => AccessListResult::Ok(self.settings().granted.clone()),
            Err(e) => AccessListResult::Err(ApiError::Other(e.to_string())),
        }
    }

    pub fn revoke_access(&mut self, caller: Caller, principal: Principal) -> AccessListResult {
        if !caller.controller {
            return AccessListResult::Err(ApiError::Other(ACCESS_DENIED.into()));
        }
        self.change_settings(|s| s.revoke(principal));
        AccessListResult::Ok(self.settings().granted.clone())
    }

    pub fn list_access(&self, caller: Caller) -> AccessListResult {
        if !caller.controller {
            return AccessListResult::Err(ApiError::Other(ACCESS_DENIED.into()));
        }
        AccessListResult::Ok(self.settings().granted.clone())
    }

    // ---- files and the model ----

    pub fn file_upload_chunk(&mut self, caller: Caller, input: &FileUploadInputRecord) -> FileUploadRecordResult {
        if !caller.controller {
            return FileUploadRecordResult::Err(ApiError::StatusCode(UNAUTHORIZED));
        }
        match self.files.upload(input) {
            Ok(record) => FileUploadRecordResult::Ok(record),
            Err(e) => FileUploadRecordResult::Err(ApiError::Other(e.to_string())),
        }
    }

    pub fn uploaded_file_details(&self, input: &FileDetailsInputRecord) -> FileUploadRecordResult {
        match self.files.info(&input.filename) {
            Some(record) => FileUploadRecordResult::Ok(record),
            None => FileUploadRecordResult::Err(ApiError::Other(format!("no file {:?}", input.filename))),
        }
    }

    /// The uploaded file, readable in place (for tests and tools).
    pub fn file(&self, filename: &str) -> Option<StableFile<'_, M>> {
        self.files.open(filename)
    }

    pub fn load_model(&mut self, caller: Caller, input: &InputRecord, meter: &dyn Meter) -> OutputRecordResult {
        if !caller.controller {
            return failure(UNAUTHORIZED, format!("{ACCESS_DENIED}: only a controller may load a model"));
        }
        let args = match llama_args::parse(&input.args) {
            Ok(args) => args,
            Err(e) => return failure(BAD_REQUEST, e.to_string()),
        };
        let Some(path) = args.model.clone() else { return failure(BAD_REQUEST, "load_model needs --model PATH") };
        // 0 or less: the default context.
        let ctx_size = args.ctx_size.and_then(|c| u64::try_from(c).ok()).filter(|&c| c > 0);
        let f16_cache = match cache_type_flags(&args) {
            Ok(f16) => f16.then_some(true),
            Err(message) => return failure(BAD_REQUEST, message),
        };
        let model_args = ModelArgs { path, ctx_size, f16_cache };
        match self.load(&model_args, meter) {
            Ok(message) => {
                self.change_settings(|s| s.model = Some(model_args));
                // Prefixes of other model files can never be used again.
                let sha = self.model_sha256().unwrap_or_default();
                self.prefixes.keep_only(&sha);
                success(message)
            }
            Err((status, message)) => {
                self.change_settings(|s| s.model = None);
                failure(status, message)
            }
        }
    }

    /// Replaces the model (dropping the old one and every conversation first,
    /// so two models never share the heap).
    fn load(&mut self, model_args: &ModelArgs, meter: &dyn Meter) -> Result<String, (u16, String)> {
        self.model = ModelSlot::NotLoaded;
        self.chats.clear();
        let path = &model_args.path;
        let file = match self.files.open(path) {
            Some(file) if llm_engine::ByteSource::len(&file) > 0 => file,
            Some(_) => return Err((NOT_FOUND, format!("model file {path} is empty"))),
            None => return Err((NOT_FOUND, format!("model file {path} was not uploaded"))),
        };
        let before = meter.instructions();
        let cache_type = if model_args.f16_cache == Some(true) { CacheType::F16 } else { CacheType::F32 };
        let engine = Engine::load(&file, path, model_args.ctx_size, cache_type)
            .map_err(|e| (INTERNAL, format!("cannot load model {path}: {e}")))?;
        let load_instructions = meter.instructions().saturating_sub(before);
        let f = &engine.facts;
        let message = format!(
            "model {} loaded: {}, {} parameters, {} bytes of weights, context {} of {}",
            f.path, f.architecture, f.parameters, f.weight_bytes, f.session_capacity, f.context_length
        );
        self.model = ModelSlot::Loaded { engine: Box::new(engine), load_instructions };
        Ok(message)
    }

    /// After an upgrade: whether a model was loaded before it (then
    /// `reload_after_upgrade` should follow, in its own message).
    pub fn begin_reload(&mut self) -> bool {
        let pending = self.settings().model.is_some();
        if pending {
            self.model = ModelSlot::Reloading;
        }
        pending
    }

    pub fn reload_after_upgrade(&mut self, meter: &dyn Meter) {
        // A `load_model` that came first has already done it.
        if !matches!(self.model, ModelSlot::Reloading) {
            return;
        }
        let Some(model_args) = self.settings().model.clone() else { return };
        if let Err((_, message)) = self.load(&model_args, meter) {
            self.model = ModelSlot::ReloadFailed(message);
        }
    }

    pub fn set_max_tokens(&mut self, caller: Caller, record: MaxTokensRecord) -> StatusCodeRecordResult {
        if !caller.controller {
            return StatusCodeRecordResult::Err(ApiError::StatusCode(UNAUTHORIZED));
        }
        self.change_settings(|s| s.max_tokens = record);
        status_ok()
    }

    pub fn get_max_tokens(&self) -> MaxTokensRecord {
        self.settings().max_tokens
    }

    // ---- inference ----

    /// Access, arguments and a loaded model, as every inference call needs.
    fn prepare(&self, caller: Caller, input: &InputRecord) -> Result<LlamaArgs, Refusal> {
        if !self.settings().may_infer(caller) {
            return Err(Refusal::new(UNAUTHORIZED, ACCESS_DENIED));
        }
        let args = llama_args::parse(&input.args).map_err(|e| Refusal::new(BAD_REQUEST, e.to_string()))?;
        // Sampling flags are checked before anything changes.
        crate::chat::sampling(&args).map_err(|e| Refusal::new(BAD_REQUEST, e.to_string()))?;
        if let Some(message) = self.not_loaded_message() {
            return Err(Refusal::new(UNAVAILABLE, message));
        }
        Ok(args)
    }

    fn fresh_conversation(engine: &Engine, now_ns: u64) -> Result<Conversation, Refusal> {
        Session::with_cache_type(&engine.model, engine.session_capacity(), engine.cache_type)
            .map(|session| Conversation::new(session, now_ns))
            .map_err(|e| Refusal::new(INTERNAL, e.to_string()))
    }

    /// Makes sure the conversation named by `--prompt-cache` exists. As in
    /// llama.cpp, an existing one is kept: the next prompt reuses what it
    /// shares with it.
    pub fn new_chat(&mut self, caller: Caller, input: &InputRecord, now_ns: u64) -> OutputRecordResult {
        let args = match self.prepare(caller, input) {
            Ok(args) => args,
            Err(refusal) => return refusal.into_result(),
        };
        let Some(name) = args.prompt_cache else { return failure(BAD_REQUEST, NO_CACHE_NAME) };
        let ModelSlot::Loaded { engine, .. } = &self.model else { return failure(UNAVAILABLE, "model not loaded") };
        let path = cache_path(caller.principal, &name);
        let key: Key = (caller.principal, name);
        self.chats.make_room(&key, now_ns, engine.facts.kv_bytes_per_position);
        match self.chats.get_or_try_insert(key, || Self::fresh_conversation(engine, now_ns)) {
            Ok(conversation) => {
                conversation.last_used_ns = now_ns;
                success(format!("Ready to start a new chat for cache file {path}"))
            }
            Err(refusal) => refusal.into_result(),
        }
    }

    pub fn run_update(
        &mut self,
        caller: Caller,
        input: &InputRecord,
        now_ns: u64,
        meter: &dyn Meter,
    ) -> OutputRecordResult {
        let args = match self.prepare(caller, input) {
            Ok(args) => args,
            Err(refusal) => return refusal.into_result(),
        };
        let limits = CallLimits {
            max_tokens: self.settings().max_tokens.max_tokens_update,
            instruction_limit: self.instruction_limit,
        };
        let model_sha256 = self.model_sha256().unwrap_or_default();
        let model_id = sha256_bytes(&model_sha256);
        let ModelSlot::Loaded { engine, .. } = &mut self.model else { return failure(UNAVAILABLE, "model not loaded") };
        // Without --prompt-cache a call stands alone, as in llama.cpp.
        let mut alone;
        let conversation = match &args.prompt_cache {
            None => match Self::fresh_conversation(engine, now_ns) {
                Ok(c) => {
                    alone = c;
                    &mut alone
                }
                Err(refusal) => return refusal.into_result(),
            },
            Some(name) => {
                let key: Key = (caller.principal, name.clone());
                self.chats.make_room(&key, now_ns, engine.facts.kv_bytes_per_position);
                // Like a missing llama.cpp prompt-cache file: a call starts one.
                match self.chats.get_or_try_insert(key, || Self::fresh_conversation(engine, now_ns)) {
                    Ok(conversation) => conversation,
                    Err(refusal) => return refusal.into_result(),
                }
            }
        };
        conversation.last_used_ns = now_ns;
        let (prefixes, capacity, cache_type) = (&self.prefixes, engine.session_capacity(), engine.cache_type);
        let prefix = |model: &llm_engine::Model, input: &[u32]| {
            let bytes = prefixes.longest_match(&model_sha256, input)?;
            // A prefix saved with the other cache type is not used.
            Session::restore(model, &model_id, capacity, &bytes).ok().filter(|s| s.cache_type() == cache_type)
        };
        match conversation.run(engine, &args, &limits, meter, &prefix) {
            Ok(record) => OutputRecordResult::Ok(record),
            Err(e) => failure(e.status_code(), e.to_string()),
        }
    }

    /// SHA-256 (hex) of the model file in use.
    fn model_sha256(&self) -> Option<String> {
        let path = &self.settings().model.as_ref()?.path;
        Some(self.files.info(path)?.filesha256)
    }

    /// Controllers: saves the caller's conversation `--prompt-cache NAME`
    /// as the shared prefix NAME (replacing one of that name): new
    /// conversations whose prompt starts with its tokens start from it.
    pub fn save_prompt_prefix(&mut self, caller: Caller, input: &InputRecord) -> OutputRecordResult {
        if !caller.controller {
            return failure(UNAUTHORIZED, format!("{ACCESS_DENIED}: only a controller may save a prompt prefix"));
        }
        let args = match llama_args::parse(&input.args) {
            Ok(args) => args,
            Err(e) => return failure(BAD_REQUEST, e.to_string()),
        };
        let Some(name) = args.prompt_cache else { return failure(BAD_REQUEST, NO_CACHE_NAME) };
        let Some(model_sha256) = self.model_sha256().filter(|_| matches!(self.model, ModelSlot::Loaded { .. })) else {
            return failure(UNAVAILABLE, "model not loaded");
        };
        let key: Key = (caller.principal, name.clone());
        let Some(conversation) = self.chats.get_mut(&key) else {
            return failure(NOT_FOUND, format!("no conversation {name:?} of the caller to save"));
        };
        if conversation.positions() == 0 {
            return failure(BAD_REQUEST, format!("conversation {name:?} holds no tokens yet"));
        }
        let tokens = conversation.tokens().to_vec();
        let snapshot = conversation.snapshot(&sha256_bytes(&model_sha256));
        let sha256 = sha_hex(&snapshot);
        let entry = PrefixEntry { model_sha256, tokens: tokens.clone(), bytes: snapshot.len() as u64, sha256 };
        match self.prefixes.save(&name, entry, snapshot) {
            Ok(()) => OutputRecordResult::Ok(RunOutputRecord {
                status_code: 200,
                output: format!("Prompt prefix {name} saved ({} tokens)", tokens.len()),
                n_prompt_tokens: Some(tokens.len() as u64),
                ..Default::default()
            }),
            Err(e) => failure(BAD_REQUEST, e.to_string()),
        }
    }

    /// Controllers: removes the shared prefix `--prompt-cache NAME` (Ok either way; the output says which).
    pub fn remove_prompt_prefix(&mut self, caller: Caller, input: &InputRecord) -> OutputRecordResult {
        if !caller.controller {
            return failure(UNAUTHORIZED, format!("{ACCESS_DENIED}: only a controller may remove a prompt prefix"));
        }
        let args = match llama_args::parse(&input.args) {
            Ok(args) => args,
            Err(e) => return failure(BAD_REQUEST, e.to_string()),
        };
        let Some(name) = args.prompt_cache else { return failure(BAD_REQUEST, NO_CACHE_NAME) };
        match self.prefixes.remove(&name) {
            true => success(format!("Prompt prefix {name} removed")),
            false => success(format!("Prompt prefix {name} not found. Nothing to remove.")),
        }
    }

    /// Controllers: the shared prefixes.
    pub fn list_prompt_prefixes(&self, caller: Caller) -> Result<Vec<PromptPrefixInfo>, ApiError> {
        if !caller.controller {
            return Err(ApiError::Other(ACCESS_DENIED.into()));
        }
        let list = self.prefixes.list().into_iter().map(|(name, e)| PromptPrefixInfo {
            name,
            tokens: e.tokens.len() as u64,
            bytes: e.bytes,
            model_sha256: e.model_sha256,
            sha256: e.sha256,
        });
        Ok(list.collect())
    }

    /// Controllers: `length` bytes (at most 2,000,000) of prefix `name` from `offset`.
    pub fn export_prompt_prefix(&self, caller: Caller, request: &PrefixChunkRequest) -> Result<PrefixChunk, ApiError> {
        if !caller.controller {
            return Err(ApiError::Other(ACCESS_DENIED.into()));
        }
        let (Some(entry), Some(bytes)) = (self.prefixes.entry(&request.name), self.prefixes.bytes(&request.name))
        else {
            return Err(ApiError::Other(format!("no prompt prefix {:?}", request.name)));
        };
        let start = request.offset.min(bytes.len() as u64) as usize;
        let length = request.length.min(MAX_EXPORT_CHUNK) as usize;
        let chunk = bytes[start..].iter().take(length).copied().collect();
        Ok(PrefixChunk { chunk, total: entry.bytes, sha256: entry.sha256 })
    }

    /// Controllers: saves the exported prefix in the uploaded file
    /// `filename` as prefix `name`, if the file's SHA-256 is `sha256` and
    /// the prefix was computed with the loaded model file.
    pub fn import_prompt_prefix(&mut self, caller: Caller, import: &PrefixImport) -> OutputRecordResult {
        if !caller.controller {
            return failure(UNAUTHORIZED, format!("{ACCESS_DENIED}: only a controller may import a prompt prefix"));
        }
        let ModelSlot::Loaded { engine, .. } = &self.model else { return failure(UNAVAILABLE, "model not loaded") };
        let Some(model_sha256) = self.model_sha256() else { return failure(UNAVAILABLE, "model not loaded") };
        let (Some(info), Some(file)) = (self.files.info(&import.filename), self.files.open(&import.filename)) else {
            return failure(NOT_FOUND, format!("no file {:?}", import.filename));
        };
        if info.filesha256 != import.sha256 {
            return failure(BAD_REQUEST, format!("SHA-256 mismatch: the file has {}", info.filesha256));
        }
        let mut bytes = vec![0u8; info.filesize as usize];
        if let Err(e) = file.read_at(0, &mut bytes) {
            return failure(INTERNAL, e.to_string());
        }
        let model_id = sha256_bytes(&model_sha256);
        let tokens = match Session::restore(&engine.model, &model_id, engine.session_capacity(), &bytes) {
            Ok(session) => session.tokens().to_vec(),
            Err(e) => return failure(BAD_REQUEST, e.to_string()),
        };
        let entry =
            PrefixEntry { model_sha256, tokens: tokens.clone(), bytes: bytes.len() as u64, sha256: info.filesha256 };
        match self.prefixes.save(&import.name, entry, bytes) {
            Ok(()) => OutputRecordResult::Ok(RunOutputRecord {
                status_code: 200,
                output: format!("Prompt prefix {} imported ({} tokens)", import.name, tokens.len()),
                n_prompt_tokens: Some(tokens.len() as u64),
                ..Default::default()
            }),
            Err(e) => failure(BAD_REQUEST, e.to_string()),
        }
    }

    /// Ok whether or not the conversation existed (the output says which).
    pub fn remove_prompt_cache(&mut self, caller: Caller, input: &InputRecord) -> OutputRecordResult {
        if !self.settings().may_infer(caller) {
            return failure(UNAUTHORIZED, ACCESS_DENIED);
        }
        let args = match llama_args::parse(&input.args) {
            Ok(args) => args,
            Err(e) => return failure(BAD_REQUEST, e.to_string()),
        };
        let Some(name) = args.prompt_cache else { return failure(BAD_REQUEST, NO_CACHE_NAME) };
        let path = cache_path(caller.principal, &name);
        match self.chats.remove(&(caller.principal, name)) {
            true => success(format!("Cache file {path} deleted successfully")),
            false => success(format!("Cache file {path} not found. Nothing to delete.")),
        }
    }
}

/// `-ctk/--cache-type-k` and `-ctv/--cache-type-v` of `load_model`: whether
/// the cache is f16 (`f32` and `f16` are supported, and the same for both).
fn cache_type_flags(args: &LlamaArgs) -> Result<bool, String> {
    let flag = |short: &str, long: &str| args.other_value(long).or_else(|| args.other_value(short));
    let parse = |value: Option<&str>| match value {
        None => Ok(None),
        Some(v) => CacheType::from_name(v).map(Some).ok_or(format!("unsupported cache type {v:?} (f32 or f16)")),
    };
    let (k, v) = (parse(flag("-ctk", "--cache-type-k"))?, parse(flag("-ctv", "--cache-type-v"))?);
    match (k, v) {
        (None, None) => Ok(false),
        (Some(k), Some(v)) if k == v => Ok(k == CacheType::F16),
        _ => Err("give --cache-type-k and --cache-type-v together, with the same type".into()),
    }
}

/// Bytes one `export_prompt_prefix` call returns at most.
pub const MAX_EXPORT_CHUNK: u64 = 2_000_000;

fn sha_hex(bytes: &[u8]) -> String {
    let mut state = Sha256State::new();
    state.update(bytes);
    state.hex()
}

/// The 32 bytes of a hex SHA-256 (zeros if it is not one: never a real file's).
fn sha256_bytes(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    if hex.len() == 64 {
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
    }
    out
}

const NO_CACHE_NAME: &str = "--prompt-cache NAME is missing: it names the conversation";

/// Where the llama.cpp canister keeps a caller's prompt cache (its messages name it).
fn cache_path(caller: Principal, name: &str) -> String {
    format!(".canister_cache/{}/sessions/{}", caller.to_text(), name.trim_start_matches('/'))
}
