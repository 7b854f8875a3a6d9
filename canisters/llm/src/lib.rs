//! `llm`: our LLM canister. It speaks the llama.cpp canister's Candid
//! interface (`mainer_types::llama_cpp`, the same methods, types, status
//! codes and multi-call protocol), so the mAIner controller and creator use
//! either wasm unchanged, and runs GGUF models with the pure-Rust
//! [`llm_engine`].
//!
//! - Uploaded files live in stable memory, each contiguous ([`files`]);
//!   `load_model` reads the weights from there into the heap in one call
//!   ([`engine`]).
//! - Conversations keep their KV cache between calls, per caller and
//!   `--prompt-cache` name, with bounded memory ([`conversations`]); how a
//!   `run_update` call ingests the prompt and generates is in [`chat`].
//! - Access level, granted principals, `max_tokens` and the loaded model's
//!   path are kept in stable memory ([`settings`]): after an upgrade the
//!   canister reloads the model by itself, in a timer right after
//!   `post_upgrade`; until then `ready` and the inference calls say so
//!   (status 503). Conversations are heap state and end with an upgrade;
//!   shared prompt prefixes (saved sessions new conversations start from)
//!   are in stable memory ([`prefixes`]).
//! - The endpoints below are thin: the logic is in [`service`], which tests
//!   drive natively.

pub mod api;
pub mod chat;
pub mod conversations;
pub mod engine;
pub mod files;
pub mod inspect;
pub mod metrics;
pub mod prefixes;
pub mod service;
pub mod settings;
pub mod sha;

use std::cell::RefCell;
use std::time::Duration;

use candid::Principal;
use ic_cdk::api::{is_controller, msg_caller};
use ic_cdk::{init, post_upgrade, query, update};
use ic_stable_structures::DefaultMemoryImpl;
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use mainer_types::llama_cpp::{
    AccessInputRecord, AccessRecordResult, FileUploadInputRecord, FileUploadRecordResult, InputRecord, MaxTokensRecord,
    OutputRecordResult, StatusCodeRecordResult,
};

use api::{AccessListResult, FileDetailsInputRecord, MemoryStatus};
use chat::Meter;
use mainer_types::http::{HttpRequest, HttpResponse};
use service::{Memories, Service};
use settings::Caller;

type Memory = VirtualMemory<DefaultMemoryImpl>;

/// Stable memory ids; never reuse one.
const DIRECTORY_MEMORY: u8 = 0;
const SETTINGS_MEMORY: u8 = 1;
const PREFIX_DIRECTORY_MEMORY: u8 = 2;
const PREFIX_DATA_MEMORY: u8 = 3;
/// Ids `FIRST_FILE_MEMORY .. FIRST_FILE_MEMORY + files::MAX_FILES`: one per file.
const FIRST_FILE_MEMORY: u8 = 16;

thread_local! {
    static SERVICE: RefCell<Service<Memory>> = RefCell::new({
        let manager = MemoryManager::init(DefaultMemoryImpl::default());
        let memory = |id: u8| manager.get(MemoryId::new(id));
        Service::init(Memories {
            directory: memory(DIRECTORY_MEMORY),
            settings: memory(SETTINGS_MEMORY),
            prefix_directory: memory(PREFIX_DIRECTORY_MEMORY),
            prefix_data: memory(PREFIX_DATA_MEMORY),
            file_slots: (0..files::MAX_FILES as u8).map(|i| memory(FIRST_FILE_MEMORY + i)).collect(),
        })
    });
}

fn read<R>(f: impl FnOnce(&Service<Memory>) -> R) -> R {
    SERVICE.with(|s| f(&s.borrow()))
}

fn mutate<R>(f: impl FnOnce(&mut Service<Memory>) -> R) -> R {
    SERVICE.with(|s| f(&mut s.borrow_mut()))
}

fn caller() -> Caller {
    let principal = msg_caller();
    Caller { principal, controller: is_controller(&principal) }
}

/// Instructions this message has executed so far.
struct IcMeter;

impl Meter for IcMeter {
    fn instructions(&self) -> u64 {
        ic_cdk::api::performance_counter(0)
    }
}

fn heap_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) as u64 * 65_536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

#[init]
fn init() {
    // Touch the state so the stable structures are initialized at install.
    read(|_| ());
}

#[post_upgrade]
fn post_upgrade() {
    canister_common::info!("upgraded");
    if mutate(|s| s.begin_reload()) {
        // In its own message: a failed load must not fail the upgrade.
        ic_cdk_timers::set_timer(Duration::ZERO, async {
            mutate(|s| s.reload_after_upgrade(&IcMeter));
            match memory_status().model {
                api::ModelState::ReloadFailed(e) => canister_common::error!("reloading the model failed: {e}"),
                _ => canister_common::info!("model reloaded after the upgrade"),
            }
        });
    }
}

/// Refuses strangers' and oversize ingress before the canister pays for it
/// (see `inspect.rs`); the endpoints check everything again.
#[ic_cdk::inspect_message]
fn inspect_message() {
    let caller = caller();
    canister_common::inspect::accept_if(|method, bytes| {
        read(|s| inspect::accepts(s.settings(), caller, method, bytes))
    });
}

// ---- the llama.cpp interface ----

#[query]
fn health() -> StatusCodeRecordResult {
    read(|s| s.health())
}

#[query]
fn ready() -> StatusCodeRecordResult {
    read(|s| s.ready())
}

#[update]
fn new_chat(input: InputRecord) -> OutputRecordResult {
    let caller = caller();
    let result = mutate(|s| s.new_chat(caller, &input, ic_cdk::api::time()));
    metrics::record_output("new_chat", caller.principal, &result, IcMeter.instructions());
    result
}

#[update]
fn run_update(input: InputRecord) -> OutputRecordResult {
    let caller = caller();
    let result = mutate(|s| s.run_update(caller, &input, ic_cdk::api::time(), &IcMeter));
    metrics::record_output("run_update", caller.principal, &result, IcMeter.instructions());
    result
}

#[update]
fn remove_prompt_cache(input: InputRecord) -> OutputRecordResult {
    let caller = caller();
    let result = mutate(|s| s.remove_prompt_cache(caller, &input));
    metrics::record_output("remove_prompt_cache", caller.principal, &result, IcMeter.instructions());
    result
}

#[update]
fn save_prompt_prefix(input: InputRecord) -> OutputRecordResult {
    let caller = caller();
    mutate(|s| s.save_prompt_prefix(caller, &input))
}

#[update]
fn remove_prompt_prefix(input: InputRecord) -> OutputRecordResult {
    let caller = caller();
    mutate(|s| s.remove_prompt_prefix(caller, &input))
}

#[query]
fn export_prompt_prefix(
    request: api::PrefixChunkRequest,
) -> Result<api::PrefixChunk, mainer_types::llama_cpp::ApiError> {
    let caller = caller();
    read(|s| s.export_prompt_prefix(caller, &request))
}

#[update]
fn import_prompt_prefix(import: api::PrefixImport) -> OutputRecordResult {
    let caller = caller();
    mutate(|s| s.import_prompt_prefix(caller, &import))
}

#[query]
fn list_prompt_prefixes() -> Result<Vec<api::PromptPrefixInfo>, mainer_types::llama_cpp::ApiError> {
    let caller = caller();
    read(|s| s.list_prompt_prefixes(caller))
}

#[update]
fn load_model(input: InputRecord) -> OutputRecordResult {
    let caller = caller();
    let result = mutate(|s| s.load_model(caller, &input, &IcMeter));
    metrics::record_output("load_model", caller.principal, &result, IcMeter.instructions());
    result
}

#[update]
fn set_max_tokens(record: MaxTokensRecord) -> StatusCodeRecordResult {
    let caller = caller();
    mutate(|s| s.set_max_tokens(caller, record))
}

#[query]
fn get_max_tokens() -> MaxTokensRecord {
    read(|s| s.get_max_tokens())
}

#[update]
fn file_upload_chunk(input: FileUploadInputRecord) -> FileUploadRecordResult {
    let caller = caller();
    let result = mutate(|s| s.file_upload_chunk(caller, &input));
    let error = match &result {
        FileUploadRecordResult::Ok(_) => None,
        FileUploadRecordResult::Err(e) => Some(format!("{} at offset {}: {e}", input.filename, input.offset)),
    };
    metrics::record_status("file_upload_chunk", caller.principal, error);
    result
}

#[query]
fn uploaded_file_details(input: FileDetailsInputRecord) -> FileUploadRecordResult {
    read(|s| s.uploaded_file_details(&input))
}

#[update]
fn set_access(input: AccessInputRecord) -> AccessRecordResult {
    let caller = caller();
    mutate(|s| s.set_access(caller, input))
}

#[query]
fn get_access() -> AccessRecordResult {
    read(|s| s.get_access(caller()))
}

#[query]
fn check_access() -> StatusCodeRecordResult {
    read(|s| s.check_access(caller()))
}

#[query]
fn whoami() -> String {
    msg_caller().to_text()
}

// ---- beyond the llama.cpp interface ----

/// Controllers: sends every cycle above a small reserve back to the caller
/// (`to` must be the caller). The creator
/// calls it before deleting the canister, whose cycles the IC would burn.
#[ic_cdk::update]
async fn return_cycles(to: candid::Principal) -> Result<u128, mainer_types::llama_cpp::ApiError> {
    canister_common::cycles::return_cycles(to).await
}

/// Controllers: lets `principal` use the inference endpoints at any access level.
#[update]
fn grant_access(principal: Principal) -> AccessListResult {
    let caller = caller();
    mutate(|s| s.grant_access(caller, principal))
}

#[update]
fn revoke_access(principal: Principal) -> AccessListResult {
    let caller = caller();
    mutate(|s| s.revoke_access(caller, principal))
}

#[query]
fn list_access() -> AccessListResult {
    read(|s| s.list_access(caller()))
}

/// `/logs` and `/metrics` for the HTTP gateway, which calls anonymously
/// (see `canister_common::http`: nothing secret is logged).
#[query]
fn http_request(req: HttpRequest) -> HttpResponse {
    canister_common::http::serve(&req, |w| metrics::encode(&memory_status(), w))
}

#[query]
fn memory_status() -> MemoryStatus {
    read(|s| s.memory_status(heap_bytes(), ic_cdk::api::stable_size() * 65_536))
}

candid::export_service!();

#[cfg(test)]
canister_common::did_test!("llm.did");
