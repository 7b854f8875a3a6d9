//! The factory job record and its pure logic (which step is next, retries,
//! views); stored by `state`, advanced by `steps`.
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

use candid::{CandidType, Principal};
use mainer_types::MainerRole;
use mainer_types::controller::ControllerSettings;
use mainer_types::creator::{JobKind, JobStatus, JobView, MainerView, SlotView, Step};
use mainer_types::economy::OrderView;
use serde::Deserialize;

use crate::economy::{Funds, refund_view};

/// Where the model goes in the LLM canister (the llama.cpp canister's convention).
pub const MODEL_PATH: &str = "models/model.gguf";

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

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub canister: Option<Principal>,
    pub step: Step,
    pub bytes_copied: u64,
    /// Set just before `create_canister` is called and cleared when its
    /// outcome is known: still set with no canister means the reply was lost
    /// (an upgrade of the creator, a time-out), and a canister may exist.
    pub create_started_ns: Option<u64>,
}

impl Slot {
    fn new() -> Self {
        Slot { canister: None, step: Step::Create, bytes_copied: 0, create_started_ns: None }
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
    /// The order's money, for a job a user paid for (`order_mainer`).
    pub funds: Option<Funds>,
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
            funds: None,
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
            // A paid job that cannot finish owes back what it has not spent
            // (unless its payer asked to keep it for a retry).
            if let Some(funds) = &mut self.funds {
                funds.on_failure();
            }
        } else {
            // 2, 4, 8, ... seconds, at most a minute.
            let delay = (1u64 << self.attempts.min(6)).min(60);
            self.next_attempt_ns = now_ns.saturating_add(delay * NANOS);
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

    /// The order behind a paid job (None for an admin's `create_mainer`).
    pub fn order_view(&self) -> Option<OrderView> {
        let f = self.funds.as_ref()?;
        Some(OrderView {
            job: self.id,
            owner: self.plan.owner,
            kind: f.kind.clone(),
            payer: f.payer.clone(),
            paid: f.paid,
            spent: f.spent,
            fee: f.fee,
            refund: f.refund.as_ref().map(refund_view),
            status: self.status.clone(),
            controller: self.controller.canister,
        })
    }

    pub fn view(&self) -> JobView {
        let slot_view = |label: String, s: &Slot, total: u64| SlotView {
            label,
            canister: s.canister,
            step: s.step,
            bytes_copied: s.bytes_copied,
            bytes_total: total,
        };
        let mut slots = vec![slot_view(format!("{:?} controller", self.plan.role), &self.controller, 0)];
        for (i, s) in self.llms.iter().enumerate() {
            slots.push(slot_view(format!("LLM {}", i + 1), s, self.plan.model_size));
        }
        JobView {
            id: self.id,
            kind: JobKind::CreateMainer(self.plan.role),
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
            cycles: None,
        })
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn plan(role: MainerRole) -> MainerPlan {
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
