//! Fleet operations, durable like the factory's jobs, a batch of targets at
//! a time:
//! - upgrade controllers: stop, upgrade, start, health check (LLMs and their
//!   models untouched);
//! - upgrade LLMs: stop, upgrade, start, reload the model, set max tokens,
//!   check ready (an upgrade empties the LLM's heap, where the model lives);
//! - remove an LLM: drain it in its controller, wait until no answer is in
//!   flight, unregister it, stop and delete it.

use std::cell::RefCell;

use candid::{CandidType, Principal};
use ic_cdk::call::Call;
use ic_cdk::management_canister::{self as mgmt, CanisterInstallMode, UpgradeFlags};
use ic_stable_structures::StableBTreeMap;
use mainer_types::calls::{controller as controller_calls, llm as llm_calls};
use mainer_types::controller::{ControllerArgs, ControllerError, ControllerUpgrade};
use mainer_types::creator::{FleetJobView, FleetTargetView, JobStatus};
use mainer_types::llama_cpp::{ApiError, InputRecord, MaxTokensRecord, OutputRecordResult, StatusCodeRecordResult};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::memory::{self, Memory, Stored};
use crate::steps::{MODEL_PATH, StepError, call, install_module, retry};
use crate::{config, jobs, store};

const MAX_TARGET_ATTEMPTS: u32 = 5;

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetKind {
    UpgradeControllers,
    UpgradeLlms,
    RemoveLlm,
}

impl FleetKind {
    fn first_step(self) -> FleetStep {
        match self {
            FleetKind::RemoveLlm => FleetStep::Drain,
            _ => FleetStep::Stop,
        }
    }

    fn after(self, step: FleetStep) -> FleetStep {
        use FleetStep::*;
        match (self, step) {
            (FleetKind::RemoveLlm, Drain) => WaitIdle,
            (FleetKind::RemoveLlm, WaitIdle) => Unregister,
            (FleetKind::RemoveLlm, Unregister) => ReturnCycles,
            (FleetKind::RemoveLlm, ReturnCycles) => Stop,
            (FleetKind::RemoveLlm, Stop) => Delete,
            (FleetKind::RemoveLlm, Delete) => Done,
            (_, Stop) => Upgrade,
            (_, Upgrade) => Start,
            (FleetKind::UpgradeLlms, Start) => Reload,
            (FleetKind::UpgradeLlms, Reload) => Configure,
            (FleetKind::UpgradeLlms, Configure) => Check,
            (_, Start) => Check,
            _ => Done,
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetStep {
    Drain,
    WaitIdle,
    Unregister,
    ReturnCycles,
    Stop,
    Upgrade,
    Start,
    Reload,
    Configure,
    Check,
    Delete,
    Done,
    Failed,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FleetTarget {
    pub canister: Principal,
    pub step: FleetStep,
    pub attempts: u32,
    pub error: Option<String>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FleetJob {
    pub id: u64,
    pub kind: FleetKind,
    /// The wasm to upgrade to (empty for a removal).
    pub wasm_sha256: String,
    pub batch_size: u32,
    pub status: JobStatus,
    pub targets: Vec<FleetTarget>,
    pub created_at_ns: u64,
    pub updated_at_ns: u64,
}

impl FleetJob {
    pub fn new(
        id: u64,
        kind: FleetKind,
        wasm_sha256: String,
        targets: Vec<Principal>,
        batch_size: u32,
        now_ns: u64,
    ) -> Self {
        let first = kind.first_step();
        let targets =
            targets.into_iter().map(|canister| FleetTarget { canister, step: first, attempts: 0, error: None });
        FleetJob {
            id,
            kind,
            wasm_sha256,
            batch_size,
            status: JobStatus::Running,
            targets: targets.collect(),
            created_at_ns: now_ns,
            updated_at_ns: now_ns,
        }
    }

    /// The unfinished targets worked on now: the first `batch_size` of them.
    pub fn window(&self) -> Vec<usize> {
        let open = |t: &FleetTarget| !matches!(t.step, FleetStep::Done | FleetStep::Failed);
        self.targets
            .iter()
            .enumerate()
            .filter(|(_, t)| open(t))
            .map(|(i, _)| i)
            .take(self.batch_size as usize)
            .collect()
    }

    fn settle(&mut self) {
        if self.window().is_empty() {
            let failed = self.targets.iter().filter(|t| t.step == FleetStep::Failed).count();
            self.status = if failed == 0 {
                JobStatus::Done
            } else {
                JobStatus::Failed { reason: format!("{failed} of {} controllers failed", self.targets.len()) }
            };
        }
    }

    pub fn view(&self) -> FleetJobView {
        FleetJobView {
            id: self.id,
            kind: format!("{:?}", self.kind),
            wasm_sha256: self.wasm_sha256.clone(),
            batch_size: self.batch_size,
            status: self.status.clone(),
            targets: self
                .targets
                .iter()
                .map(|t| FleetTargetView {
                    canister: t.canister,
                    step: format!("{:?}", t.step),
                    error: t.error.clone(),
                })
                .collect(),
            created_at_ns: self.created_at_ns,
            updated_at_ns: self.updated_at_ns,
        }
    }
}

thread_local! {
    static FLEET: RefCell<StableBTreeMap<u64, Stored<FleetJob>, Memory>> =
        RefCell::new(StableBTreeMap::init(memory::get(memory::FLEET_JOBS)));
}

pub fn get(id: u64) -> Option<FleetJob> {
    FLEET.with(|f| f.borrow().get(&id).map(|s| s.0))
}

pub fn put(job: FleetJob) {
    FLEET.with(|f| f.borrow_mut().insert(job.id, Stored(job)));
}

pub fn next_id() -> u64 {
    FLEET.with(|f| f.borrow().last_key_value().map_or(0, |(k, _)| k + 1))
}

pub fn running() -> Vec<u64> {
    FLEET.with(|f| f.borrow().values().filter(|s| s.0.status == JobStatus::Running).map(|s| s.0.id).collect())
}

pub fn uses_artefact(sha256: &str) -> bool {
    FLEET.with(|f| f.borrow().values().any(|s| s.0.status == JobStatus::Running && s.0.wasm_sha256 == sha256))
}

/// Advances every target in the job's window by one step, concurrently.
pub async fn advance(id: u64) {
    let Some(job) = get(id) else { return };
    let steps = job.window().into_iter().map(|i| {
        let target = job.targets[i].clone();
        let job = &job;
        async move { (i, run(&target, job).await) }
    });
    let results = futures::future::join_all(steps).await;
    let Some(mut job) = get(id) else { return };
    for (i, result) in results {
        let t = &mut job.targets[i];
        match result {
            Ok(true) => {
                canister_common::info!("fleet job {id}: {} {:?} done", t.canister, t.step);
                t.step = job.kind.after(t.step);
                t.attempts = 0;
                if t.step == FleetStep::Done && job.kind == FleetKind::RemoveLlm {
                    jobs::forget_llm(t.canister);
                }
            }
            // Not yet (waiting for the LLM to be idle): try again next round.
            Ok(false) => {}
            Err(e) => {
                t.attempts += 1;
                t.error = Some(format!("{:?}: {}", t.step, e.message));
                canister_common::warn!(
                    "fleet job {id}: {} {:?} attempt {}: {}",
                    t.canister,
                    t.step,
                    t.attempts,
                    e.message
                );
                if e.fatal || t.attempts >= MAX_TARGET_ATTEMPTS {
                    let stopped = matches!(t.step, FleetStep::Upgrade | FleetStep::Start | FleetStep::Reload);
                    t.step = FleetStep::Failed;
                    // Never leave a canister stopped behind by an upgrade.
                    let canister = t.canister;
                    if stopped {
                        ic_cdk::futures::spawn(async move {
                            let _ = mgmt::start_canister(&mgmt::StartCanisterArgs { canister_id: canister }).await;
                        });
                    }
                }
            }
        }
    }
    job.updated_at_ns = ic_cdk::api::time();
    job.settle();
    put(job);
}

/// Runs the target's current step: Ok(true) when it completed, Ok(false)
/// when it must wait for the next round.
async fn run(target: &FleetTarget, job: &FleetJob) -> Result<bool, StepError> {
    let id = target.canister;
    match target.step {
        FleetStep::Drain => {
            let controller = controller_of(id)?;
            call(controller, &controller_calls::SET_LLM_DRAINING, (id, true))
                .await?
                .map_err(|e| retry(format!("set_llm_draining: {e}")))?;
        }
        FleetStep::WaitIdle => {
            let controller = controller_of(id)?;
            let llms = call(controller, &controller_calls::LIST_LLMS, ())
                .await?
                .map_err(|e| retry(format!("list_llms: {e}")))?;
            if llms.iter().any(|l| l.canister == id && l.in_flight.is_some()) {
                return Ok(false);
            }
        }
        FleetStep::Unregister => {
            let controller = controller_of(id)?;
            match call(controller, &controller_calls::REMOVE_LLM, (id,)).await? {
                Ok(()) | Err(ControllerError::NotFound(_)) => {}
                Err(e) => return Err(retry(format!("remove_llm: {e}"))),
            }
        }
        FleetStep::ReturnCycles => {
            // Our LLM canister (and the test fixture) hand their cycles back;
            // a wasm without `return_cycles` (the llama.cpp canister) cannot,
            // and its cycles go with it.
            let me = ic_cdk::api::canister_self();
            let method = llm_calls::RETURN_CYCLES;
            match Call::bounded_wait(id, method.name).with_arg(me).await {
                Ok(reply) => match reply.candid::<Result<u128, ApiError>>() {
                    Ok(Ok(_)) | Err(_) => {}
                    Ok(Err(e)) => return Err(retry(format!("return_cycles: {e}"))),
                },
                Err(e) if e.to_string().contains("has no update method") => {}
                Err(e) => return Err(retry(format!("return_cycles: {e}"))),
            }
        }
        FleetStep::Stop => {
            mgmt::stop_canister(&mgmt::StopCanisterArgs { canister_id: id })
                .await
                .map_err(|e| retry(format!("stop: {e}")))?;
        }
        FleetStep::Upgrade => {
            let wasm = store::read_all(&job.wasm_sha256).map_err(|e| retry(format!("the wasm artefact: {e}")))?;
            let status = mgmt::canister_status(&mgmt::CanisterStatusArgs { canister_id: id })
                .await
                .map_err(|e| retry(format!("canister_status: {e}")))?;
            if status.module_hash.as_deref() != Some(Sha256::digest(&wasm).as_slice()) {
                let arg = match job.kind {
                    FleetKind::UpgradeControllers => {
                        candid::encode_one(Some(ControllerArgs::Upgrade(ControllerUpgrade::default()))).unwrap()
                    }
                    _ => candid::encode_args(()).unwrap(),
                };
                let mode = CanisterInstallMode::Upgrade(Some(UpgradeFlags {
                    skip_pre_upgrade: None,
                    wasm_memory_persistence: None,
                }));
                install_module(id, wasm, arg, mode).await?;
            }
        }
        FleetStep::Start => {
            mgmt::start_canister(&mgmt::StartCanisterArgs { canister_id: id })
                .await
                .map_err(|e| retry(format!("start: {e}")))?;
        }
        FleetStep::Reload => {
            match call(id, &llm_calls::LOAD_MODEL, (InputRecord::new(["--model", MODEL_PATH]),)).await? {
                OutputRecordResult::Ok(_) => {}
                OutputRecordResult::Err(r) => {
                    return Err(retry(format!("load_model: {} (status {})", r.error, r.status_code)));
                }
            }
        }
        FleetStep::Configure => {
            let n = jobs::max_tokens_update_of(id).unwrap_or(config::get().settings.max_tokens_update);
            let limits = MaxTokensRecord { max_tokens_update: n, max_tokens_query: n };
            if let StatusCodeRecordResult::Err(e) = call(id, &llm_calls::SET_MAX_TOKENS, (limits,)).await? {
                return Err(retry(format!("set_max_tokens: {e}")));
            }
        }
        FleetStep::Check => match job.kind {
            FleetKind::UpgradeControllers => {
                let report = call(id, &controller_calls::HEALTH, ()).await?;
                if !report.timers_armed {
                    return Err(retry("the upgraded controller has no timers armed"));
                }
            }
            _ => {
                if let StatusCodeRecordResult::Err(e) = call(id, &llm_calls::READY, ()).await? {
                    return Err(retry(format!("the LLM is not ready: {e}")));
                }
            }
        },
        FleetStep::Delete => {
            mgmt::delete_canister(&mgmt::DeleteCanisterArgs { canister_id: id })
                .await
                .map_err(|e| retry(format!("delete: {e}")))?;
        }
        FleetStep::Done | FleetStep::Failed => {}
    }
    Ok(true)
}

fn controller_of(llm: Principal) -> Result<Principal, StepError> {
    jobs::controller_of_llm(llm).ok_or_else(|| crate::steps::fatal("no mAIner of this creator uses this LLM"))
}
