//! One step of a job: the calls to the management canister, the new
//! canisters, the game state and the ShareService. Each step is idempotent:
//! run again after an interruption, it finds what was already done.

use candid::{CandidType, Principal};
use ic_cdk::call::Call;
use ic_cdk::management_canister::{self as mgmt, CanisterInstallMode, CanisterSettings, ChunkHash};
use mainer_types::MainerRole;
use mainer_types::calls::{Method, controller as controller_calls, game_state as game_calls, llm as llm_calls};
use mainer_types::controller::{AddLlmRequest, ControllerArgs, ControllerError, ControllerInit};
use mainer_types::game::{GameError, RegisterMainerRequest};
use mainer_types::llama_cpp::{
    FileUploadInputRecord, FileUploadRecordResult, InputRecord, MaxTokensRecord, OutputRecordResult,
    StatusCodeRecordResult,
};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::jobs::{self, Job, Step, Target};
use crate::{config, store};

/// Where the model goes in the LLM canister (the llama.cpp canister's convention).
pub const MODEL_PATH: &str = "models/model.gguf";
/// Bytes per `file_upload_chunk`: close to the 2 MiB message limit.
pub const MODEL_CHUNK_BYTES: u64 = 2_000_000;
/// Modules above this size are installed through the chunk store.
const CHUNKED_INSTALL_BYTES: usize = 1_800_000;
const WASM_CHUNK_BYTES: usize = 1_000_000;

/// Why a step did not complete; `fatal` ends the job at once.
pub struct StepError {
    pub message: String,
    pub fatal: bool,
}

pub fn retry(message: impl Into<String>) -> StepError {
    StepError { message: message.into(), fatal: false }
}

pub fn fatal(message: impl Into<String>) -> StepError {
    StepError { message: message.into(), fatal: true }
}

fn now() -> u64 {
    ic_cdk::api::time()
}

/// Runs the next step of job `id` and records its outcome.
pub async fn advance(id: u64) {
    let Some(job) = jobs::get(id) else { return };
    let Some((target, step)) = job.next() else { return };
    let result = run(&job, target, step).await;
    jobs::update(id, |job| match result {
        Ok(next) => job.advanced(target, next, now()),
        Err(e) => job.failed(format!("{target:?} {step:?}: {}", e.message), e.fatal, now()),
    });
}

async fn run(job: &Job, target: Target, step: Step) -> Result<Step, StepError> {
    match (target, step) {
        (_, Step::Create) => create(job, target).await,
        (Target::Controller, Step::Install) => install_controller(job).await,
        (Target::Llm(_), Step::Install) => install_llm(job, target).await,
        (Target::Llm(i), Step::UploadModel) => upload_model(job, i).await,
        (Target::Llm(i), Step::LoadModel) => load_model(job, i).await,
        (Target::Llm(i), Step::Configure) => configure(job, i).await,
        (Target::Llm(i), Step::GrantAccess) => grant_access(job, i).await,
        (Target::Llm(i), Step::AddToController) => add_to_controller(job, i).await,
        (Target::Controller, Step::Register) => register(job).await,
        (t, s) => Err(fatal(format!("no such step {s:?} for {t:?}"))),
    }
}

fn canister(job: &Job, target: Target) -> Result<Principal, StepError> {
    job.slot(target).canister.ok_or_else(|| fatal("the canister was never created"))
}

fn controller(job: &Job) -> Result<Principal, StepError> {
    canister(job, Target::Controller)
}

/// A bounded-wait call of `method`, failures as retryable errors.
pub async fn call<A: candid::utils::ArgumentEncoder, R: CandidType + DeserializeOwned>(
    canister: Principal,
    method: &Method<A, R>,
    args: A,
) -> Result<R, StepError> {
    let name = method.name;
    let reply = Call::bounded_wait(canister, name).with_args(&args).await.map_err(|e| retry(format!("{name}: {e}")))?;
    reply.candid::<R>().map_err(|e| retry(format!("{name}: undecodable reply: {e}")))
}

// ----------------------------------------------------------------------
// Creating and installing
// ----------------------------------------------------------------------

async fn create(job: &Job, target: Target) -> Result<Step, StepError> {
    if job.slot(target).canister.is_some() {
        return Ok(Step::Install);
    }
    let (cycles, mut controllers) = match target {
        Target::Controller => (job.plan.controller_cycles, vec![ic_cdk::api::canister_self(), job.plan.owner]),
        Target::Llm(_) => (job.plan.llm_cycles, vec![ic_cdk::api::canister_self()]),
    };
    let cfg = config::get();
    controllers.extend(cfg.admins.iter().copied());
    controllers.sort();
    controllers.dedup();
    controllers.truncate(10);
    let available = ic_cdk::api::canister_liquid_cycle_balance().saturating_sub(cfg.settings.reserve_cycles);
    let needed = cycles + ic_cdk::api::cost_create_canister();
    if available < needed {
        return Err(retry(format!(
            "the creator needs {needed} cycles to create a canister and has {available} to spend"
        )));
    }
    let settings = CanisterSettings { controllers: Some(controllers), ..Default::default() };
    let created =
        mgmt::create_canister_with_extra_cycles(&mgmt::CreateCanisterArgs { settings: Some(settings) }, cycles)
            .await
            .map_err(|e| retry(format!("create_canister: {e}")))?;
    // Record the new canister before anything else can go wrong.
    jobs::update(job.id, |j| j.slot_mut(target).canister = Some(created.canister_id));
    Ok(Step::Install)
}

async fn module_hash(canister: Principal) -> Result<Option<Vec<u8>>, StepError> {
    let status = mgmt::canister_status(&mgmt::CanisterStatusArgs { canister_id: canister })
        .await
        .map_err(|e| retry(format!("canister_status: {e}")))?;
    Ok(status.module_hash)
}

/// Installs `wasm_sha256` unless the canister already runs it.
async fn install(canister: Principal, wasm_sha256: &str, arg: Vec<u8>) -> Result<(), StepError> {
    let wasm = store::read_all(wasm_sha256).map_err(|e| fatal(format!("the wasm artefact: {e}")))?;
    let hash = Sha256::digest(&wasm).to_vec();
    match module_hash(canister).await? {
        Some(h) if h == hash => return Ok(()),
        Some(_) => return Err(fatal("the canister already runs another module")),
        None => {}
    }
    install_module(canister, wasm, arg, CanisterInstallMode::Install).await
}

/// `install_code`, through the target's chunk store when the module does not
/// fit in one message.
pub async fn install_module(
    canister: Principal,
    wasm: Vec<u8>,
    arg: Vec<u8>,
    mode: CanisterInstallMode,
) -> Result<(), StepError> {
    if wasm.len() <= CHUNKED_INSTALL_BYTES {
        let args = mgmt::InstallCodeArgs { mode, canister_id: canister, wasm_module: wasm, arg };
        return mgmt::install_code(&args).await.map_err(|e| retry(format!("install_code: {e}")));
    }
    mgmt::clear_chunk_store(&mgmt::ClearChunkStoreArgs { canister_id: canister })
        .await
        .map_err(|e| retry(format!("clear_chunk_store: {e}")))?;
    let mut hashes: Vec<ChunkHash> = Vec::new();
    for chunk in wasm.chunks(WASM_CHUNK_BYTES) {
        let h = mgmt::upload_chunk(&mgmt::UploadChunkArgs { canister_id: canister, chunk: chunk.to_vec() })
            .await
            .map_err(|e| retry(format!("upload_chunk: {e}")))?;
        hashes.push(h);
    }
    let args = mgmt::InstallChunkedCodeArgs {
        mode,
        target_canister: canister,
        store_canister: None,
        chunk_hashes_list: hashes,
        wasm_module_hash: Sha256::digest(&wasm).to_vec(),
        arg,
    };
    mgmt::install_chunked_code(&args).await.map_err(|e| retry(format!("install_chunked_code: {e}")))
}

async fn install_controller(job: &Job) -> Result<Step, StepError> {
    let cfg = config::get();
    let init = ControllerInit {
        role: job.plan.role,
        game_state: cfg.game_state,
        creator: ic_cdk::api::canister_self(),
        owner: job.plan.owner,
        share_service: job.plan.share_service,
        settings: job.plan.controller_settings.clone(),
    };
    let arg = candid::encode_one(ControllerArgs::Init(init)).expect("init args encode");
    install(controller(job)?, &job.plan.controller_wasm, arg).await?;
    Ok(Step::Register)
}

async fn install_llm(job: &Job, target: Target) -> Result<Step, StepError> {
    let wasm = job.plan.llm_wasm.as_deref().ok_or_else(|| fatal("no LLM wasm in the plan"))?;
    install(canister(job, target)?, wasm, candid::encode_args(()).expect("empty args encode")).await?;
    Ok(Step::UploadModel)
}

// ----------------------------------------------------------------------
// The model
// ----------------------------------------------------------------------

/// Streams up to `chunks_per_round` chunks of the model into the LLM,
/// recording progress after each; checks the SHA-256 the LLM computed at the end.
async fn upload_model(job: &Job, i: usize) -> Result<Step, StepError> {
    let model = job.plan.model.as_deref().ok_or_else(|| fatal("no model in the plan"))?;
    let llm = canister(job, Target::Llm(i))?;
    let size = job.plan.model_size;
    let mut offset = job.llms[i].bytes_copied;
    // After repeated refusals start the file over (offset 0 restarts it).
    if job.attempts >= 2 && offset > 0 {
        offset = 0;
    }
    let mut buf = vec![0u8; MODEL_CHUNK_BYTES.min(size.max(1)) as usize];
    for _ in 0..config::get().settings.chunks_per_round.max(1) {
        let len = MODEL_CHUNK_BYTES.min(size - offset) as usize;
        store::read(model, offset, &mut buf[..len]).map_err(|e| fatal(format!("the model artefact: {e}")))?;
        let record = FileUploadInputRecord {
            filename: MODEL_PATH.to_string(),
            chunk: buf[..len].to_vec(),
            chunksize: len as u64,
            offset,
        };
        let uploaded = match call(llm, &llm_calls::FILE_UPLOAD_CHUNK, (record,)).await? {
            FileUploadRecordResult::Ok(r) => r,
            FileUploadRecordResult::Err(e) => {
                jobs::update(job.id, |j| j.llms[i].bytes_copied = offset);
                return Err(retry(format!("file_upload_chunk at {offset} refused: {e}")));
            }
        };
        offset += len as u64;
        if uploaded.filesize != offset {
            jobs::update(job.id, |j| j.llms[i].bytes_copied = 0);
            return Err(retry(format!(
                "the LLM holds {} bytes after a chunk ending at {offset}; restarting",
                uploaded.filesize
            )));
        }
        jobs::update(job.id, |j| j.llms[i].bytes_copied = offset);
        if offset == size {
            if uploaded.filesha256 != model {
                return Err(fatal(format!(
                    "model SHA-256 mismatch: the creator stored {model}, the LLM computed {}",
                    uploaded.filesha256
                )));
            }
            return Ok(Step::LoadModel);
        }
    }
    Ok(Step::UploadModel)
}

async fn load_model(job: &Job, i: usize) -> Result<Step, StepError> {
    let llm = canister(job, Target::Llm(i))?;
    match call(llm, &llm_calls::LOAD_MODEL, (InputRecord::new(["--model", MODEL_PATH]),)).await? {
        OutputRecordResult::Ok(_) => Ok(Step::Configure),
        OutputRecordResult::Err(r) => Err(retry(format!("load_model: {} (status {})", r.error, r.status_code))),
    }
}

async fn configure(job: &Job, i: usize) -> Result<Step, StepError> {
    let llm = canister(job, Target::Llm(i))?;
    let n = job.plan.max_tokens_update;
    let limits = MaxTokensRecord { max_tokens_update: n, max_tokens_query: n };
    match call(llm, &llm_calls::SET_MAX_TOKENS, (limits,)).await? {
        StatusCodeRecordResult::Ok(_) => Ok(Step::GrantAccess),
        StatusCodeRecordResult::Err(e) => Err(retry(format!("set_max_tokens: {e}"))),
    }
}

/// Makes the mAIner controller a controller of the LLM, which both the
/// llama.cpp canister and ours let in at every access level.
async fn grant_access(job: &Job, i: usize) -> Result<Step, StepError> {
    let llm = canister(job, Target::Llm(i))?;
    let mainer = controller(job)?;
    let status = mgmt::canister_status(&mgmt::CanisterStatusArgs { canister_id: llm })
        .await
        .map_err(|e| retry(format!("canister_status: {e}")))?;
    let mut controllers = status.settings.controllers;
    if !controllers.contains(&mainer) {
        controllers.push(mainer);
        let settings = CanisterSettings { controllers: Some(controllers), ..Default::default() };
        mgmt::update_settings(&mgmt::UpdateSettingsArgs { canister_id: llm, settings })
            .await
            .map_err(|e| retry(format!("update_settings: {e}")))?;
    }
    Ok(Step::AddToController)
}

async fn add_to_controller(job: &Job, i: usize) -> Result<Step, StepError> {
    let llm = canister(job, Target::Llm(i))?;
    let req = AddLlmRequest { canister: llm, model_sha256: job.plan.model.clone() };
    match call(controller(job)?, &controller_calls::ADD_LLM, (req,)).await? {
        Ok(_) | Err(ControllerError::AlreadyExists(_)) => Ok(Step::Done),
        Err(e) => Err(retry(format!("add_llm: {e}"))),
    }
}

// ----------------------------------------------------------------------
// Registration, last
// ----------------------------------------------------------------------

async fn register(job: &Job) -> Result<Step, StepError> {
    let mainer = controller(job)?;
    let game = config::get().game_state;
    let req = RegisterMainerRequest { mainer, role: job.plan.role, owner: job.plan.owner };
    match call(game, &game_calls::REGISTER_MAINER, (req,)).await? {
        Ok(_) | Err(GameError::AlreadyRegistered(_)) => {}
        Err(e) => return Err(retry(format!("register_mainer: {e}"))),
    }
    if job.plan.role == MainerRole::ShareAgent {
        let service = job.plan.share_service.ok_or_else(|| fatal("a ShareAgent without a ShareService"))?;
        if let Err(e) = call(service, &controller_calls::ADD_SHARE_AGENT, (mainer,)).await? {
            return Err(retry(format!("add_share_agent on the ShareService: {e}")));
        }
    }
    Ok(Step::Done)
}
