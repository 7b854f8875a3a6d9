//! One step of a factory job: the calls to the management canister, the new
//! canisters, the game state and the ShareService, all through a
//! [`Runtime`]. Each step is idempotent: run again after an interruption,
//! it finds what was already done.

use candid::Principal;
use mainer_types::MainerRole;
use mainer_types::calls::{controller as controller_calls, game_state as game_calls, llm as llm_calls};
use mainer_types::controller::{AddLlmRequest, ControllerArgs, ControllerError, ControllerInit};
use mainer_types::creator::{JobStatus, Step};
use mainer_types::game::GameError;
use mainer_types::llama_cpp::{
    AccessInputRecord, AccessListResult, AccessRecordResult, FileUploadInputRecord, FileUploadRecordResult,
    InputRecord, MaxTokensRecord, OutputRecordResult, StatusCodeRecordResult,
};

use crate::ic::{InstallMode, Runtime};
use crate::job::{Job, MODEL_PATH, Target};
use crate::management::{self as mgmt, StepError, call, fatal, retry};
use crate::state::{mutate_state, read_state};

/// The llama.cpp canister's access level "all callers except the anonymous one".
const ACCESS_ALL_BUT_ANONYMOUS: u16 = 1;
/// Bytes per `file_upload_chunk`: close to the 2 MiB message limit.
pub const MODEL_CHUNK_BYTES: u64 = 2_000_000;
/// Canister ids after the newest one this creator knows that are probed for
/// a canister whose `create_canister` reply was lost.
const RECOVERY_PROBES: u64 = 16;

/// Runs the next step of job `id` and records its outcome.
pub async fn advance<RT: Runtime>(rt: &RT, id: u64) {
    let Some(job) = read_state(|s| s.job(id)) else { return };
    let Some((target, step)) = job.next() else { return };
    let result = run(rt, &job, target, step).await;
    let now = rt.time();
    mutate_state(|s| {
        let after = s.update_job(id, |job| match result {
            Ok(next) => job.advanced(target, next, now),
            Err(e) => job.failed(format!("{target:?} {step:?}: {}", e.message), e.fatal, now),
        });
        // A paid job that just finished has earned its fee.
        if let Some(fee) = after.filter(|j| j.status == JobStatus::Done).and_then(|j| j.funds).map(|f| f.fee) {
            s.book(|b| b.fees = b.fees.saturating_add(fee));
        }
    });
}

async fn run<RT: Runtime>(rt: &RT, job: &Job, target: Target, step: Step) -> Result<Step, StepError> {
    match (target, step) {
        (_, Step::Create) => create(rt, job, target).await,
        (Target::Controller, Step::Install) => install_controller(rt, job).await,
        (Target::Llm(_), Step::Install) => install_llm(rt, job, target).await,
        (Target::Llm(i), Step::UploadModel) => upload_model(rt, job, i).await,
        (Target::Llm(i), Step::LoadModel) => load_model(rt, job, i).await,
        (Target::Llm(i), Step::Configure) => configure(rt, job, i).await,
        (Target::Llm(i), Step::GrantAccess) => grant_access(rt, job, i).await,
        (Target::Llm(i), Step::AddToController) => add_to_controller(rt, job, i).await,
        (Target::Controller, Step::Register) => register(rt, job).await,
        (t, s) => Err(fatal(format!("no such step {s:?} for {t:?}"))),
    }
}

fn canister(job: &Job, target: Target) -> Result<Principal, StepError> {
    job.slot(target).canister.ok_or_else(|| fatal("the canister was never created"))
}

fn controller(job: &Job) -> Result<Principal, StepError> {
    canister(job, Target::Controller)
}

fn update(job: &Job, f: impl FnOnce(&mut Job)) {
    mutate_state(|s| s.update_job(job.id, f));
}

// ----------------------------------------------------------------------
// Creating and installing
// ----------------------------------------------------------------------

/// Creates the slot's canister. The intent is written before the call, so
/// that a reply lost to an upgrade of the creator or a time-out is noticed:
/// the next attempt looks for the canister among the ids after the newest
/// one the creator knows, adopts it when it is ours, and otherwise reports
/// the loss in the job's errors before it creates another.
async fn create<RT: Runtime>(rt: &RT, job: &Job, target: Target) -> Result<Step, StepError> {
    let slot = job.slot(target);
    if slot.canister.is_some() {
        return Ok(Step::Install);
    }
    if let Some(started) = slot.create_started_ns {
        if let Some(found) = recover_lost_canister(rt).await {
            update(job, |j| {
                let s = j.slot_mut(target);
                s.canister = Some(found);
                s.create_started_ns = None;
                j.errors.push(format!("{target:?}: the create_canister reply was lost; found and adopted {found}"));
            });
            return Ok(Step::Install);
        }
        update(job, |j| {
            j.slot_mut(target).create_started_ns = None;
            j.errors.push(format!(
                "{target:?}: the reply of the create_canister started at {started} ns was lost and no canister of \
                 this creator was found; a canister (and its cycles) may be orphaned"
            ));
        });
    }
    let cfg = read_state(|s| s.config());
    let cycles = match target {
        Target::Controller => job.plan.controller_cycles,
        Target::Llm(_) => job.plan.llm_cycles,
    };
    let controllers = ic_controllers(target, rt.canister_self(), &cfg.admins);
    let available = rt.liquid_cycles().saturating_sub(cfg.settings.reserve_cycles);
    let needed = cycles.checked_add(rt.create_canister_fee()).ok_or_else(|| fatal("the cycle amount overflows"))?;
    if available < needed {
        return Err(retry(format!(
            "the creator needs {needed} cycles to create a canister and has {available} to spend"
        )));
    }
    let now = rt.time();
    update(job, |j| j.slot_mut(target).create_started_ns = Some(now));
    match rt.create_canister(controllers, cycles).await {
        Ok(created) => {
            // Record the new canister (and what it cost) before anything else can go wrong.
            let cost = needed;
            mutate_state(|s| {
                s.update_job(job.id, |j| {
                    let slot = j.slot_mut(target);
                    slot.canister = Some(created);
                    slot.create_started_ns = None;
                    if let Some(f) = &mut j.funds {
                        f.spent = f.spent.saturating_add(cost);
                    }
                });
                s.book(|b| b.spent_on_canisters = b.spent_on_canisters.saturating_add(cost));
            });
            Ok(Step::Install)
        }
        // The canister may exist: the intent stays for the next attempt.
        Err(e) if e.outcome_unknown() => Err(mgmt::failed("create_canister", e)),
        Err(e) => {
            update(job, |j| j.slot_mut(target).create_started_ns = None);
            Err(mgmt::failed("create_canister", e))
        }
    }
}

/// Who may change the code and settings of a new canister: the creator, and
/// for a controller canister also the creator's admins (the operators). Never
/// the mAIner's owner, who gets roles in the controller instead (pause,
/// settings, reads), and never the controller canister itself for its LLMs
/// (it uses them through their access settings, see [`grant_access`]): an IC
/// controller can reinstall a canister with any code and take its cycles.
pub fn ic_controllers(target: Target, creator: Principal, admins: &[Principal]) -> Vec<Principal> {
    let mut controllers = vec![creator];
    if target == Target::Controller {
        controllers.extend(admins.iter().copied());
    }
    controllers.sort();
    controllers.dedup();
    controllers.truncate(10);
    controllers
}

/// A canister this creator controls that no job knows: the one whose
/// `create_canister` reply was lost. Ids are handed out in order on a
/// subnet, so it is looked for just after the newest id the creator knows.
async fn recover_lost_canister<RT: Runtime>(rt: &RT) -> Option<Principal> {
    let me = rt.canister_self();
    let newest = read_state(|s| s.newest_canister()).map_or(me, |n| n.max(me));
    for k in 1..=RECOVERY_PROBES {
        let candidate = canister_id_after(&newest, k)?;
        if read_state(|s| s.made(&candidate)) {
            continue;
        }
        if let Ok(info) = rt.canister_info(candidate).await
            && info.controllers.contains(&me)
            && info.module_hash.is_none()
        {
            return Some(candidate);
        }
    }
    None
}

/// The canister id `k` places after `id` (ids are 8 big-endian bytes and `[1, 1]`).
pub fn canister_id_after(id: &Principal, k: u64) -> Option<Principal> {
    let b = id.as_slice();
    if b.len() != 10 || b[8..] != [1, 1] {
        return None;
    }
    let n = u64::from_be_bytes(b[..8].try_into().ok()?).checked_add(k)?;
    let mut out = n.to_be_bytes().to_vec();
    out.extend_from_slice(&[1, 1]);
    Some(Principal::from_slice(&out))
}

/// Installs `wasm_sha256` unless the canister already runs it. The module
/// hash is asked first: the store keys artefacts by the same SHA-256, so a
/// canister that runs it costs no read of the wasm.
async fn install<RT: Runtime>(rt: &RT, canister: Principal, wasm_sha256: &str, arg: Vec<u8>) -> Result<(), StepError> {
    let want = hex::decode(wasm_sha256).map_err(|_| fatal("the wasm's SHA-256 is not hex"))?;
    match mgmt::module_hash(rt, canister).await? {
        Some(h) if h == want => return Ok(()),
        Some(_) => return Err(fatal("the canister already runs another module")),
        None => {}
    }
    if mgmt::install_stored(rt, canister, wasm_sha256, arg, InstallMode::Install).await? {
        Ok(())
    } else {
        Err(retry("the creator's chunk store is being filled with this wasm; next round"))
    }
}

async fn install_controller<RT: Runtime>(rt: &RT, job: &Job) -> Result<Step, StepError> {
    let cfg = read_state(|s| s.config());
    let init = ControllerInit {
        role: job.plan.role,
        game_state: cfg.game_state,
        creator: rt.canister_self(),
        owner: job.plan.owner,
        share_service: job.plan.share_service,
        settings: job.plan.controller_settings.clone(),
    };
    let arg = candid::encode_one(ControllerArgs::Init(init)).expect("init args encode");
    // The game state accepts submissions only from code we installed.
    report_module(rt, &job.plan.controller_wasm, None).await?;
    install(rt, controller(job)?, &job.plan.controller_wasm, arg).await?;
    Ok(Step::Register)
}

/// Tells the game state that mAIners may run `wasm_sha256` (idempotent);
/// `mainer`: the one about to be upgraded to it.
pub async fn report_module<RT: Runtime>(
    rt: &RT,
    wasm_sha256: &str,
    mainer: Option<Principal>,
) -> Result<(), StepError> {
    let module_hash = hex::decode(wasm_sha256).map_err(|_| fatal("the wasm's SHA-256 is not hex"))?;
    let game = read_state(|s| s.config().game_state);
    let report = mainer_types::game::ModuleReport { module_hash, mainer };
    match call(rt, game, &game_calls::REPORT_MODULE, (report,)).await? {
        Ok(()) => Ok(()),
        Err(e) => Err(retry(format!("report_module: {e}"))),
    }
}

async fn install_llm<RT: Runtime>(rt: &RT, job: &Job, target: Target) -> Result<Step, StepError> {
    let wasm = job.plan.llm_wasm.as_deref().ok_or_else(|| fatal("no LLM wasm in the plan"))?;
    install(rt, canister(job, target)?, wasm, candid::encode_args(()).expect("empty args encode")).await?;
    Ok(Step::UploadModel)
}

// ----------------------------------------------------------------------
// The model
// ----------------------------------------------------------------------

/// Streams up to `chunks_per_round` chunks of the model into the LLM,
/// recording progress after each; checks the SHA-256 the LLM computed at the end.
async fn upload_model<RT: Runtime>(rt: &RT, job: &Job, i: usize) -> Result<Step, StepError> {
    let model = job.plan.model.as_deref().ok_or_else(|| fatal("no model in the plan"))?;
    let llm = canister(job, Target::Llm(i))?;
    let size = job.plan.model_size;
    let mut offset = job.llms[i].bytes_copied.min(size);
    // After repeated refusals start the file over (offset 0 restarts it).
    if job.attempts >= 2 && offset > 0 {
        offset = 0;
    }
    let chunks = read_state(|s| s.config().settings.chunks_per_round).max(1);
    let mut buf = vec![0u8; MODEL_CHUNK_BYTES.min(size.max(1)) as usize];
    for _ in 0..chunks {
        let len = MODEL_CHUNK_BYTES.min(size - offset) as usize;
        read_state(|s| s.store.read(model, offset, &mut buf[..len]))
            .map_err(|e| fatal(format!("the model artefact: {e}")))?;
        let record = FileUploadInputRecord {
            filename: MODEL_PATH.to_string(),
            chunk: buf[..len].to_vec(),
            chunksize: len as u64,
            offset,
        };
        let uploaded = match call(rt, llm, &llm_calls::FILE_UPLOAD_CHUNK, (record,)).await? {
            FileUploadRecordResult::Ok(r) => r,
            FileUploadRecordResult::Err(e) => {
                update(job, |j| j.llms[i].bytes_copied = offset);
                return Err(retry(format!("file_upload_chunk at {offset} refused: {e}")));
            }
        };
        offset += len as u64;
        if uploaded.filesize != offset {
            update(job, |j| j.llms[i].bytes_copied = 0);
            return Err(retry(format!(
                "the LLM holds {} bytes after a chunk ending at {offset}; restarting",
                uploaded.filesize
            )));
        }
        update(job, |j| j.llms[i].bytes_copied = offset);
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

async fn load_model<RT: Runtime>(rt: &RT, job: &Job, i: usize) -> Result<Step, StepError> {
    let llm = canister(job, Target::Llm(i))?;
    match call(rt, llm, &llm_calls::LOAD_MODEL, (InputRecord::new(["--model", MODEL_PATH]),)).await? {
        OutputRecordResult::Ok(_) => Ok(Step::Configure),
        OutputRecordResult::Err(r) => Err(retry(format!("load_model: {} (status {})", r.error, r.status_code))),
    }
}

async fn configure<RT: Runtime>(rt: &RT, job: &Job, i: usize) -> Result<Step, StepError> {
    let llm = canister(job, Target::Llm(i))?;
    let n = job.plan.max_tokens_update;
    let limits = MaxTokensRecord { max_tokens_update: n, max_tokens_query: n };
    match call(rt, llm, &llm_calls::SET_MAX_TOKENS, (limits,)).await? {
        StatusCodeRecordResult::Ok(_) => Ok(Step::GrantAccess),
        StatusCodeRecordResult::Err(e) => Err(retry(format!("set_max_tokens: {e}"))),
    }
}

/// Lets the mAIner controller use the LLM's inference endpoints without
/// making it an IC controller of the LLM: our `llm` canister grants it by
/// principal (`grant_access`); a canister without `grant_access` (the
/// llama.cpp canister, the test fixture) is opened to every non-anonymous
/// caller with its access setting (level 1), the llama.cpp canister's own
/// way. A controller canister that the creator made an IC controller of the
/// LLM (an older release) is removed from its controllers.
async fn grant_access<RT: Runtime>(rt: &RT, job: &Job, i: usize) -> Result<Step, StepError> {
    let llm = canister(job, Target::Llm(i))?;
    let mainer = controller(job)?;
    let grant = llm_calls::GRANT_ACCESS;
    let arg = grant.encode((mainer,)).expect("a principal encodes");
    match rt.call_raw(llm, grant.name, arg).await {
        Ok(reply) => match grant.decode(&reply) {
            Ok(AccessListResult::Ok(granted)) if granted.contains(&mainer) => {}
            Ok(other) => return Err(retry(format!("grant_access: {other:?}"))),
            Err(e) => return Err(retry(format!("grant_access: undecodable reply: {e}"))),
        },
        Err(e) if e.message.contains("has no update method") => {
            let level = AccessInputRecord { level: ACCESS_ALL_BUT_ANONYMOUS };
            if let AccessRecordResult::Err(e) = call(rt, llm, &llm_calls::SET_ACCESS, (level,)).await? {
                return Err(retry(format!("set_access: {e}")));
            }
        }
        Err(e) => return Err(mgmt::failed("grant_access", e)),
    }
    let controllers = rt.canister_info(llm).await.map_err(|e| mgmt::failed("canister_status", e))?.controllers;
    if controllers.contains(&mainer) {
        let only_us = ic_controllers(Target::Llm(i), rt.canister_self(), &[]);
        rt.set_controllers(llm, only_us).await.map_err(|e| mgmt::failed("update_settings", e))?;
    }
    Ok(Step::AddToController)
}

async fn add_to_controller<RT: Runtime>(rt: &RT, job: &Job, i: usize) -> Result<Step, StepError> {
    let llm = canister(job, Target::Llm(i))?;
    let req = AddLlmRequest { canister: llm, model_sha256: job.plan.model.clone() };
    match call(rt, controller(job)?, &controller_calls::ADD_LLM, (req,)).await? {
        Ok(_) | Err(ControllerError::AlreadyExists(_)) => Ok(Step::Done),
        Err(e) => Err(retry(format!("add_llm: {e}"))),
    }
}

// ----------------------------------------------------------------------
// Registration, last
// ----------------------------------------------------------------------

async fn register<RT: Runtime>(rt: &RT, job: &Job) -> Result<Step, StepError> {
    let mainer = controller(job)?;
    let game = read_state(|s| s.config().game_state);
    // A Challenger or Judge is registered for its game role; the others as mAIners.
    let kind = match job.plan.role {
        MainerRole::Challenger => Some(mainer_types::game_play::GameAgentKind::Challenger),
        MainerRole::Judge => Some(mainer_types::game_play::GameAgentKind::Judge),
        _ => None,
    };
    if let Some(kind) = kind {
        // Registering again with the same kind is accepted, so a retried step is harmless.
        if let Err(e) = call(rt, game, &game_calls::REGISTER_GAME_AGENT, (mainer, kind)).await? {
            return Err(retry(format!("register_game_agent: {e}")));
        }
        return Ok(Step::Done);
    }
    let req = mainer_types::game::RegisterMainerRequest { mainer, role: job.plan.role, owner: job.plan.owner };
    match call(rt, game, &game_calls::REGISTER_MAINER, (req,)).await? {
        Ok(_) | Err(GameError::AlreadyRegistered(_)) => {}
        Err(e) => return Err(retry(format!("register_mainer: {e}"))),
    }
    if job.plan.role == MainerRole::ShareAgent {
        let service = job.plan.share_service.ok_or_else(|| fatal("a ShareAgent without a ShareService"))?;
        if let Err(e) = call(rt, service, &controller_calls::ADD_SHARE_AGENT, (mainer,)).await? {
            return Err(retry(format!("add_share_agent on the ShareService: {e}")));
        }
    }
    Ok(Step::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canister_ids_count_up() {
        let id = Principal::from_text("rrkah-fqaaa-aaaaa-aaaaq-cai").unwrap();
        let next = canister_id_after(&id, 1).unwrap();
        assert_eq!(
            next.as_slice()[..8],
            (u64::from_be_bytes(id.as_slice()[..8].try_into().unwrap()) + 1).to_be_bytes()
        );
        assert_eq!(canister_id_after(&Principal::anonymous(), 1), None);
    }
}
