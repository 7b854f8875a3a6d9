//! The factory's durable jobs.
//!
//! A job is a record in stable memory: one slot for the controller canister
//! and one per LLM canister, each at a step. A timer advances running jobs
//! one step at a time; every step is idempotent and its result is written
//! before the next one starts, so a failed call, a trap or an upgrade of the
//! creator only delays the job: it resumes where it stopped, with the same
//! canisters (a created canister's id is recorded the moment it is known).
//!
//! Order: the controller is created and installed; then each LLM is created,
//! installed, given the model (streamed in chunks, its SHA-256 checked), loaded,
//! configured, opened to the controller and added to it; the mAIner is
//! registered with the game state (and a ShareAgent with its ShareService)
//! only at the very end, so a job that gives up has registered nothing.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use candid::{CandidType, Principal};
use ic_stable_structures::StableBTreeMap;
use mainer_types::MainerRole;
use mainer_types::controller::ControllerSettings;
use mainer_types::creator::{JobStatus, JobView, MainerView, SlotView};
use serde::Deserialize;

use crate::config;
use crate::memory::{self, Memory, Stored};

/// Failed attempts of one step before the job gives up.
pub const MAX_STEP_ATTEMPTS: u32 = 8;
const MAX_ERRORS_KEPT: usize = 20;
const NANOS: u64 = 1_000_000_000;

/// What a job is to make.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MainerPlan {
    pub role: MainerRole,
    pub owner: Principal,
    pub share_service: Option<Principal>,
    pub controller_wasm: String,
    pub llm_wasm: Option<String>,
    pub model: Option<String>,
    pub model_size: u64,
    pub controller_cycles: u128,
    pub llm_cycles: u128,
    pub max_tokens_update: u64,
    pub controller_settings: Option<ControllerSettings>,
}

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Create,
    Install,
    UploadModel,
    LoadModel,
    Configure,
    GrantAccess,
    AddToController,
    /// Controller only: waits for the LLMs, then registers.
    Register,
    Done,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub canister: Option<Principal>,
    pub step: Step,
    pub bytes_copied: u64,
}

impl Slot {
    fn new() -> Self {
        Slot { canister: None, step: Step::Create, bytes_copied: 0 }
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: u64,
    pub plan: MainerPlan,
    pub status: JobStatus,
    pub controller: Slot,
    pub llms: Vec<Slot>,
    pub errors: Vec<String>,
    /// Failed attempts of the current step.
    pub attempts: u32,
    pub next_attempt_ns: u64,
    pub created_at_ns: u64,
    pub updated_at_ns: u64,
}

/// Which slot a job works on next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Controller,
    Llm(usize),
}

impl Job {
    pub fn new(id: u64, plan: MainerPlan, llm_count: u32, now_ns: u64) -> Self {
        Job {
            id,
            plan,
            status: JobStatus::Running,
            controller: Slot::new(),
            llms: (0..llm_count).map(|_| Slot::new()).collect(),
            errors: Vec::new(),
            attempts: 0,
            next_attempt_ns: 0,
            created_at_ns: now_ns,
            updated_at_ns: now_ns,
        }
    }

    /// The slot and step to work on next, or None when everything is done.
    pub fn next(&self) -> Option<(Target, Step)> {
        if let s @ (Step::Create | Step::Install) = self.controller.step {
            return Some((Target::Controller, s));
        }
        if let Some((i, slot)) = self.llms.iter().enumerate().find(|(_, s)| s.step != Step::Done) {
            return Some((Target::Llm(i), slot.step));
        }
        match self.controller.step {
            Step::Done => None,
            _ => Some((Target::Controller, Step::Register)),
        }
    }

    pub fn slot_mut(&mut self, target: Target) -> &mut Slot {
        match target {
            Target::Controller => &mut self.controller,
            Target::Llm(i) => &mut self.llms[i],
        }
    }

    pub fn slot(&self, target: Target) -> &Slot {
        match target {
            Target::Controller => &self.controller,
            Target::Llm(i) => &self.llms[i],
        }
    }

    /// Records a failed attempt; gives up after `MAX_STEP_ATTEMPTS`, or at
    /// once when `fatal`.
    pub fn failed(&mut self, error: String, fatal: bool, now_ns: u64) {
        self.errors.push(error.clone());
        if self.errors.len() > MAX_ERRORS_KEPT {
            self.errors.remove(0);
        }
        self.attempts += 1;
        self.updated_at_ns = now_ns;
        if fatal || self.attempts >= MAX_STEP_ATTEMPTS {
            canister_common::error!("job {}: failed after {} attempts: {error}", self.id, self.attempts);
            self.status = JobStatus::Failed { reason: error };
        } else {
            // 2, 4, 8, ... seconds, at most a minute.
            let delay = (1u64 << self.attempts.min(6)).min(60);
            self.next_attempt_ns = now_ns + delay * NANOS;
            canister_common::warn!("job {}: attempt {} failed ({error}); retry in {delay} s", self.id, self.attempts);
        }
    }

    /// Moves `target` to `step` after a success.
    pub fn advanced(&mut self, target: Target, step: Step, now_ns: u64) {
        canister_common::info!("job {}: {target:?} now at {step:?}", self.id);
        self.slot_mut(target).step = step;
        self.attempts = 0;
        self.next_attempt_ns = 0;
        self.updated_at_ns = now_ns;
        if self.next().is_none() {
            canister_common::info!("job {}: done", self.id);
            self.status = JobStatus::Done;
        }
    }

    pub fn uses_artefact(&self, sha256: &str) -> bool {
        let p = &self.plan;
        p.controller_wasm == sha256 || p.llm_wasm.as_deref() == Some(sha256) || p.model.as_deref() == Some(sha256)
    }

    pub fn view(&self) -> JobView {
        let slot_view = |label: String, s: &Slot, total: u64| SlotView {
            label,
            canister: s.canister,
            step: format!("{:?}", s.step),
            bytes_copied: s.bytes_copied,
            bytes_total: total,
        };
        let mut slots = vec![slot_view(format!("{:?} controller", self.plan.role), &self.controller, 0)];
        for (i, s) in self.llms.iter().enumerate() {
            slots.push(slot_view(format!("LLM {}", i + 1), s, self.plan.model_size));
        }
        JobView {
            id: self.id,
            kind: format!("create {:?} mAIner", self.plan.role),
            status: self.status.clone(),
            slots,
            errors: self.errors.clone(),
            attempts: self.attempts,
            created_at_ns: self.created_at_ns,
            updated_at_ns: self.updated_at_ns,
        }
    }

    pub fn mainer_view(&self) -> Option<MainerView> {
        Some(MainerView {
            controller: self.controller.canister?,
            role: self.plan.role,
            owner: self.plan.owner,
            share_service: self.plan.share_service,
            llms: self.llms.iter().filter_map(|s| s.canister).collect(),
            job: self.id,
            ready: self.status == JobStatus::Done,
        })
    }
}

thread_local! {
    static JOBS: RefCell<StableBTreeMap<u64, Stored<Job>, Memory>> =
        RefCell::new(StableBTreeMap::init(memory::get(memory::JOBS)));
    /// Jobs with a step under way in this execution of the canister
    /// (`false`: factory jobs, `true`: fleet jobs).
    static BUSY: RefCell<BTreeSet<(bool, u64)>> = const { RefCell::new(BTreeSet::new()) };
    static TIMER: RefCell<Option<ic_cdk_timers::TimerId>> = const { RefCell::new(None) };
}

pub fn get(id: u64) -> Option<Job> {
    JOBS.with(|j| j.borrow().get(&id).map(|s| s.0))
}

pub fn put(job: Job) {
    JOBS.with(|j| j.borrow_mut().insert(job.id, Stored(job)));
}

pub fn next_id() -> u64 {
    JOBS.with(|j| j.borrow().last_key_value().map_or(0, |(k, _)| k + 1))
}

pub fn count() -> u64 {
    JOBS.with(|j| j.borrow().len())
}

/// Jobs newest first.
pub fn newest_first() -> Vec<Job> {
    JOBS.with(|j| j.borrow().iter().rev().map(|e| e.value().0).collect())
}

/// Updates job `id` in place.
pub fn update(id: u64, f: impl FnOnce(&mut Job)) -> Option<Job> {
    let mut job = get(id)?;
    f(&mut job);
    put(job.clone());
    Some(job)
}

/// The controller of the mAIner that uses LLM `llm`.
pub fn controller_of_llm(llm: Principal) -> Option<Principal> {
    newest_first()
        .into_iter()
        .find(|j| j.llms.iter().any(|s| s.canister == Some(llm)))
        .and_then(|j| j.controller.canister)
}

/// The `max_tokens_update` the LLM was configured with when it was made.
pub fn max_tokens_update_of(llm: Principal) -> Option<u64> {
    newest_first()
        .into_iter()
        .find(|j| j.llms.iter().any(|s| s.canister == Some(llm)))
        .map(|j| j.plan.max_tokens_update)
}

/// Forgets a deleted LLM: it leaves its mAIner's job record.
pub fn forget_llm(llm: Principal) {
    if let Some(job) = newest_first().into_iter().find(|j| j.llms.iter().any(|s| s.canister == Some(llm))) {
        update(job.id, |j| j.llms.retain(|s| s.canister != Some(llm)));
    }
}

/// Every LLM canister made by the creator.
pub fn all_llms() -> Vec<Principal> {
    newest_first().iter().flat_map(|j| j.llms.iter().filter_map(|s| s.canister)).collect()
}

/// Whether a job that is not finished uses the artefact `sha256`.
pub fn artefact_in_use(sha256: &str) -> bool {
    let factory = JOBS
        .with(|j| j.borrow().values().any(|s| matches!(s.0.status, JobStatus::Running) && s.0.uses_artefact(sha256)));
    factory || crate::fleet::uses_artefact(sha256)
}

/// (Re)arms the job timer: from `init`, `post_upgrade` and settings changes.
pub fn arm_timer() {
    if let Some(old) = TIMER.with(|t| t.borrow_mut().take()) {
        ic_cdk_timers::clear_timer(old);
    }
    let every = Duration::from_secs(config::get().settings.job_interval_seconds.max(1));
    let id = ic_cdk_timers::set_timer_interval(every, || async {
        run_round().await;
    });
    TIMER.with(|t| *t.borrow_mut() = Some(id));
}

/// Advances every due running job by one step, at most `max_parallel_jobs`
/// factory jobs at once, and every running fleet upgrade.
pub async fn run_round() -> u32 {
    let now = ic_cdk::api::time();
    let max = config::get().settings.max_parallel_jobs.max(1) as usize;
    let busy = |key: (bool, u64)| BUSY.with(|b| b.borrow().contains(&key));
    let due: Vec<u64> = JOBS.with(|j| {
        j.borrow()
            .values()
            .map(|s| s.0)
            .filter(|job| job.status == JobStatus::Running && job.next_attempt_ns <= now)
            .map(|job| job.id)
            .filter(|id| !busy((false, *id)))
            .take(max)
            .collect()
    });
    let fleet: Vec<u64> = crate::fleet::running().into_iter().filter(|id| !busy((true, *id))).collect();
    let started = (due.len() + fleet.len()) as u32;
    for id in due {
        spawn_guarded((false, id), async move { crate::steps::advance(id).await });
    }
    for id in fleet {
        spawn_guarded((true, id), async move { crate::fleet::advance(id).await });
    }
    started
}

fn spawn_guarded(key: (bool, u64), step: impl std::future::Future<Output = ()> + 'static) {
    BUSY.with(|b| b.borrow_mut().insert(key));
    ic_cdk::futures::spawn(async move {
        let _guard = BusyGuard(key);
        step.await;
    });
}

/// Frees the job for the next round even if its step trapped.
struct BusyGuard((bool, u64));

impl Drop for BusyGuard {
    fn drop(&mut self) {
        BUSY.with(|b| b.borrow_mut().remove(&self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(role: MainerRole) -> MainerPlan {
        MainerPlan {
            role,
            owner: Principal::anonymous(),
            share_service: None,
            controller_wasm: "c".into(),
            llm_wasm: Some("l".into()),
            model: Some("m".into()),
            model_size: 10,
            controller_cycles: 1,
            llm_cycles: 1,
            max_tokens_update: 4,
            controller_settings: None,
        }
    }

    #[test]
    fn steps_run_controller_then_llms_then_registration() {
        let mut job = Job::new(0, plan(MainerRole::Own), 2, 0);
        let mut seen = Vec::new();
        while let Some((target, step)) = job.next() {
            seen.push((target, step));
            let next = match (target, step) {
                (Target::Controller, Step::Create) => Step::Install,
                (Target::Controller, Step::Install) => Step::Register,
                (Target::Controller, Step::Register) => Step::Done,
                (_, Step::Create) => Step::Install,
                (_, Step::Install) => Step::UploadModel,
                (_, Step::UploadModel) => Step::LoadModel,
                (_, Step::LoadModel) => Step::Configure,
                (_, Step::Configure) => Step::GrantAccess,
                (_, Step::GrantAccess) => Step::AddToController,
                (_, Step::AddToController) => Step::Done,
                other => panic!("{other:?}"),
            };
            job.advanced(target, next, 1);
        }
        assert_eq!(seen.len(), 3 + 2 * 7);
        assert_eq!(seen[2], (Target::Llm(0), Step::Create));
        assert_eq!(*seen.last().unwrap(), (Target::Controller, Step::Register));
        assert_eq!(job.status, JobStatus::Done);
    }

    #[test]
    fn a_step_is_retried_with_back_off_then_the_job_gives_up() {
        let mut job = Job::new(0, plan(MainerRole::ShareAgent), 0, 0);
        job.failed("busy".into(), false, 0);
        assert_eq!((job.status.clone(), job.next_attempt_ns), (JobStatus::Running, 2 * NANOS));
        for _ in 1..MAX_STEP_ATTEMPTS {
            job.failed("busy".into(), false, 0);
        }
        assert!(matches!(job.status, JobStatus::Failed { .. }));
        let mut job = Job::new(1, plan(MainerRole::Own), 1, 0);
        job.failed("hash mismatch".into(), true, 0);
        assert_eq!(job.status, JobStatus::Failed { reason: "hash mismatch".into() });
        assert!(job.uses_artefact("m") && !job.uses_artefact("x"));
    }
}
