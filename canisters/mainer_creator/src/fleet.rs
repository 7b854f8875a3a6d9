//! Fleet jobs, durable like the factory's jobs (the record and its pure
//! logic; `fleet_steps` runs them), a batch of targets at a time:
//! - upgrade controllers: stop, upgrade, start, health check (LLMs and their
//!   models untouched);
//! - upgrade LLMs: drain it in its controller and wait until no answer is in
//!   flight (a stopped LLM would fail the answer it is generating), stop,
//!   upgrade, start, reload the model, set max tokens, check ready (an upgrade
//!   empties the LLM's heap, where the model lives), put it back to work;
//! - remove an LLM: drain it in its controller, wait until no answer is in
//!   flight, unregister it, stop and delete it.
//!
//! A target that gives up where it was left stopped or drained is restored
//! first (started, put back to work), in a step of its own retried for
//! longer, and only then marked failed.

use candid::{CandidType, Principal};
use mainer_types::creator::{FleetJobView, FleetStep, FleetTargetView, JobKind, JobStatus};
use serde::Deserialize;

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetKind {
    UpgradeControllers,
    UpgradeLlms,
    RemoveLlm,
}

impl FleetKind {
    /// Every step a target goes through, in order.
    fn steps(self) -> &'static [FleetStep] {
        use FleetStep::*;
        match self {
            FleetKind::UpgradeControllers => &[Stop, Upgrade, Start, Check, Done],
            FleetKind::UpgradeLlms => &[Drain, WaitIdle, Stop, Upgrade, Start, Reload, Configure, Check, Undrain, Done],
            FleetKind::RemoveLlm => &[Drain, WaitIdle, Unregister, ReturnCycles, Stop, Delete, Done],
        }
    }

    fn first_step(self) -> FleetStep {
        self.steps()[0]
    }

    pub fn job_kind(self) -> JobKind {
        match self {
            FleetKind::UpgradeControllers => JobKind::UpgradeControllers,
            FleetKind::UpgradeLlms => JobKind::UpgradeLlms,
            FleetKind::RemoveLlm => JobKind::RemoveLlm,
        }
    }

    pub fn after(self, step: FleetStep) -> FleetStep {
        let steps = self.steps();
        match steps.iter().position(|s| *s == step) {
            Some(i) if i + 1 < steps.len() => steps[i + 1],
            _ => FleetStep::Done,
        }
    }

    /// Whether a target that gives up at `step` must first be restored: an
    /// LLM this job drained is put back to work (a drained LLM gets no
    /// answers) and a canister it stopped is started again.
    pub fn restores_after(self, step: FleetStep) -> bool {
        use FleetStep::*;
        match self {
            FleetKind::UpgradeControllers => matches!(step, Upgrade | Start),
            FleetKind::UpgradeLlms => !matches!(step, Drain | Done | Failed | Restore),
            FleetKind::RemoveLlm => matches!(step, WaitIdle | Unregister),
        }
    }

    /// Whether this job drains its targets (and `Restore` undrains them).
    pub fn drains(self) -> bool {
        self.first_step() == FleetStep::Drain
    }
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

    pub fn settle(&mut self) {
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
            kind: self.kind.job_kind(),
            wasm_sha256: self.wasm_sha256.clone(),
            batch_size: self.batch_size,
            status: self.status.clone(),
            targets: self
                .targets
                .iter()
                .map(|t| FleetTargetView { canister: t.canister, step: t.step, error: t.error.clone() })
                .collect(),
            created_at_ns: self.created_at_ns,
            updated_at_ns: self.updated_at_ns,
        }
    }
}
