//! Fleet upgrades: mAIner controllers moved to a stored controller wasm, a
//! batch at a time — stop, upgrade, start, health check — with their LLMs
//! and models untouched. Durable like the factory's jobs.

use std::cell::RefCell;

use candid::{CandidType, Principal};
use ic_cdk::call::Call;
use ic_cdk::management_canister::{self as mgmt, CanisterInstallMode, UpgradeFlags};
use ic_stable_structures::StableBTreeMap;
use mainer_types::controller::{ControllerArgs, ControllerUpgrade, HealthReport};
use mainer_types::creator::{FleetJobView, FleetTargetView, JobStatus};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::memory::{self, Memory, Stored};
use crate::steps::{StepError, install_module, retry};
use crate::store;

const MAX_TARGET_ATTEMPTS: u32 = 5;

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetStep {
    Stop,
    Upgrade,
    Start,
    Check,
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
    pub wasm_sha256: String,
    pub batch_size: u32,
    pub status: JobStatus,
    pub targets: Vec<FleetTarget>,
    pub created_at_ns: u64,
    pub updated_at_ns: u64,
}

impl FleetJob {
    pub fn new(id: u64, wasm_sha256: String, targets: Vec<Principal>, batch_size: u32, now_ns: u64) -> Self {
        let targets = targets.into_iter().map(|canister| FleetTarget {
            canister,
            step: FleetStep::Stop,
            attempts: 0,
            error: None,
        });
        FleetJob {
            id,
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
        let wasm = job.wasm_sha256.clone();
        async move { (i, run(&target, &wasm).await) }
    });
    let results = futures::future::join_all(steps).await;
    let Some(mut job) = get(id) else { return };
    for (i, result) in results {
        let t = &mut job.targets[i];
        match result {
            Ok(next) => {
                t.step = next;
                t.attempts = 0;
            }
            Err(e) => {
                t.attempts += 1;
                t.error = Some(format!("{:?}: {}", t.step, e.message));
                if e.fatal || t.attempts >= MAX_TARGET_ATTEMPTS {
                    t.step = FleetStep::Failed;
                    // Never leave a controller stopped behind.
                    let canister = t.canister;
                    ic_cdk::futures::spawn(async move {
                        let _ = mgmt::start_canister(&mgmt::StartCanisterArgs { canister_id: canister }).await;
                    });
                }
            }
        }
    }
    job.updated_at_ns = ic_cdk::api::time();
    job.settle();
    put(job);
}

async fn run(target: &FleetTarget, wasm_sha256: &str) -> Result<FleetStep, StepError> {
    let id = target.canister;
    match target.step {
        FleetStep::Stop => {
            mgmt::stop_canister(&mgmt::StopCanisterArgs { canister_id: id })
                .await
                .map_err(|e| retry(format!("stop: {e}")))?;
            Ok(FleetStep::Upgrade)
        }
        FleetStep::Upgrade => {
            let wasm = store::read_all(wasm_sha256).map_err(|e| retry(format!("the wasm artefact: {e}")))?;
            let status = mgmt::canister_status(&mgmt::CanisterStatusArgs { canister_id: id })
                .await
                .map_err(|e| retry(format!("canister_status: {e}")))?;
            if status.module_hash.as_deref() != Some(Sha256::digest(&wasm).as_slice()) {
                let arg = candid::encode_one(Some(ControllerArgs::Upgrade(ControllerUpgrade::default()))).unwrap();
                let mode = CanisterInstallMode::Upgrade(Some(UpgradeFlags {
                    skip_pre_upgrade: None,
                    wasm_memory_persistence: None,
                }));
                install_module(id, wasm, arg, mode).await?;
            }
            Ok(FleetStep::Start)
        }
        FleetStep::Start => {
            mgmt::start_canister(&mgmt::StartCanisterArgs { canister_id: id })
                .await
                .map_err(|e| retry(format!("start: {e}")))?;
            Ok(FleetStep::Check)
        }
        FleetStep::Check => {
            let health = Call::bounded_wait(id, "health").await.map_err(|e| retry(format!("health: {e}")))?;
            let report: HealthReport = health.candid().map_err(|e| retry(format!("health: undecodable: {e}")))?;
            if !report.timers_armed {
                return Err(retry("the upgraded controller has no timers armed"));
            }
            Ok(FleetStep::Done)
        }
        FleetStep::Done | FleetStep::Failed => Ok(target.step),
    }
}
