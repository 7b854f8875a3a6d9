//! Endpoints of the factory: create mAIners, follow and retry jobs, list
//! what was made.

use candid::Principal;
use ic_cdk::api::msg_caller;
use ic_cdk::{query, update};
use mainer_types::creator::{
    ArtefactKind, CreateMainerRequest, CreatorError, CreatorResult, FleetJobView, JobStatus, JobView, MainerView,
    UpgradeControllersRequest,
};
use mainer_types::{MainerRole, Page, PageRequest};

use crate::fleet::FleetKind;
use crate::jobs::{self, Job, MainerPlan};
use crate::{access, config, fleet, store};

/// The stored artefact `sha` of `kind`, or the newest of that kind.
fn resolve(kind: ArtefactKind, sha: Option<String>) -> CreatorResult<mainer_types::creator::ArtefactInfo> {
    let info = match sha {
        Some(sha) => store::artefact(&sha).ok_or_else(|| CreatorError::NotFound(format!("artefact {sha}")))?,
        None => store::newest(kind).ok_or(CreatorError::NoArtefact(kind))?,
    };
    if info.kind != kind {
        return Err(CreatorError::InvalidInput(format!(
            "artefact {} is a {:?}, not a {kind:?}",
            info.sha256, info.kind
        )));
    }
    Ok(info)
}

/// Checks the request and turns it into a plan, or says what is wrong.
fn plan(req: CreateMainerRequest) -> CreatorResult<(MainerPlan, u32)> {
    match (req.role, req.share_service, req.llm_count) {
        (MainerRole::ShareAgent, _, n) if n > 0 => return Err(CreatorError::ShareAgentHasNoLlms),
        (MainerRole::ShareAgent, None, _) => return Err(CreatorError::MissingShareService),
        (MainerRole::Own | MainerRole::ShareService, Some(_), _) => {
            return Err(CreatorError::InvalidInput("only a ShareAgent has a share_service".into()));
        }
        (MainerRole::Own | MainerRole::ShareService, None, 0) => {
            return Err(CreatorError::InvalidInput("an Own or ShareService mAIner needs at least one LLM".into()));
        }
        (_, _, n) if n > 20 => return Err(CreatorError::InvalidInput("at most 20 LLMs per mAIner".into())),
        _ => {}
    }
    if req.owner == Principal::anonymous() {
        return Err(CreatorError::InvalidInput("the owner cannot be the anonymous principal".into()));
    }
    if let Some(s) = &req.controller_settings {
        s.validate().map_err(|e| CreatorError::InvalidInput(e.to_string()))?;
    }
    let settings = config::get().settings;
    let controller_wasm = resolve(ArtefactKind::ControllerWasm, req.controller_wasm)?;
    let (llm_wasm, model) = if req.llm_count > 0 {
        (Some(resolve(ArtefactKind::LlmWasm, req.llm_wasm)?), Some(resolve(ArtefactKind::Model, req.model)?))
    } else {
        (None, None)
    };
    let plan = MainerPlan {
        role: req.role,
        owner: req.owner,
        share_service: req.share_service,
        controller_wasm: controller_wasm.sha256,
        llm_wasm: llm_wasm.map(|a| a.sha256),
        model_size: model.as_ref().map_or(0, |m| m.size),
        model: model.map(|m| m.sha256),
        controller_cycles: req.controller_cycles.unwrap_or(settings.controller_cycles),
        llm_cycles: req.llm_cycles.unwrap_or(settings.llm_cycles),
        max_tokens_update: req.max_tokens_update.unwrap_or(settings.max_tokens_update),
        controller_settings: req.controller_settings,
    };
    Ok((plan, req.llm_count))
}

/// Cycles that running jobs will still spend on canisters not yet created.
fn committed_cycles() -> u128 {
    jobs::newest_first()
        .iter()
        .filter(|j| j.status == JobStatus::Running)
        .map(|j| {
            let controller = if j.controller.canister.is_none() { j.plan.controller_cycles } else { 0 };
            controller + j.llms.iter().filter(|s| s.canister.is_none()).count() as u128 * j.plan.llm_cycles
        })
        .sum()
}

/// Starts making a mAIner; returns its job at once (follow it with `job`).
#[update]
fn create_mainer(req: CreateMainerRequest) -> CreatorResult<JobView> {
    access::require_creator(&msg_caller())?;
    let (plan, llm_count) = plan(req)?;
    let fee = ic_cdk::api::cost_create_canister();
    let needed = plan.controller_cycles + fee + llm_count as u128 * (plan.llm_cycles + fee);
    let reserve = config::get().settings.reserve_cycles;
    let available = ic_cdk::api::canister_liquid_cycle_balance().saturating_sub(reserve + committed_cycles());
    if available < needed {
        return Err(CreatorError::InsufficientCycles { needed, available });
    }
    let job = Job::new(jobs::next_id(), plan, llm_count, ic_cdk::api::time());
    jobs::put(job.clone());
    Ok(job.view())
}

#[query]
fn job(id: u64) -> CreatorResult<JobView> {
    access::require_creator(&msg_caller())?;
    jobs::get(id).map(|j| j.view()).ok_or_else(|| CreatorError::NotFound(format!("job {id}")))
}

/// Jobs, newest first.
#[query]
fn list_jobs(page: PageRequest) -> CreatorResult<Page<JobView>> {
    access::require_admin(&msg_caller())?;
    Ok(Page::collect(jobs::newest_first().iter().map(Job::view), jobs::count(), page))
}

/// Resumes a failed job from the step where it stopped, with its canisters.
#[update]
fn retry_job(id: u64) -> CreatorResult<JobView> {
    access::require_admin(&msg_caller())?;
    let job = jobs::get(id).ok_or_else(|| CreatorError::NotFound(format!("job {id}")))?;
    if !matches!(job.status, JobStatus::Failed { .. }) {
        return Err(CreatorError::InvalidInput(format!("job {id} has not failed")));
    }
    let job = jobs::update(id, |j| {
        j.status = JobStatus::Running;
        j.attempts = 0;
        j.next_attempt_ns = 0;
    })
    .unwrap();
    Ok(job.view())
}

/// Advances due jobs now instead of waiting for the timer.
#[update]
async fn run_jobs_now() -> CreatorResult<u32> {
    access::require_admin(&msg_caller())?;
    Ok(jobs::run_round().await)
}

/// mAIners made by this creator (ready or still being made), newest first.
#[query]
fn list_mainers(page: PageRequest) -> CreatorResult<Page<MainerView>> {
    access::require_admin(&msg_caller())?;
    let all: Vec<MainerView> = jobs::newest_first().iter().filter_map(Job::mainer_view).collect();
    let total = all.len() as u64;
    Ok(Page::collect(all.into_iter(), total, page))
}

#[update]
fn set_game_state(game_state: Principal) -> CreatorResult<()> {
    access::require_admin(&msg_caller())?;
    config::update(|c| c.game_state = game_state);
    Ok(())
}

#[query]
fn game_state() -> Principal {
    config::get().game_state
}

/// Upgrades mAIner controllers to a stored controller wasm, `batch_size` at
/// a time (stop, upgrade, start, health check); returns the fleet job.
#[update]
fn upgrade_controllers(req: UpgradeControllersRequest) -> CreatorResult<FleetJobView> {
    access::require_admin(&msg_caller())?;
    let made: Vec<Principal> = jobs::newest_first().iter().filter_map(|j| j.controller.canister).collect();
    start_fleet(FleetKind::UpgradeControllers, ArtefactKind::ControllerWasm, req, made)
}

/// Upgrades LLM canisters to a stored LLM wasm, then reloads their model and
/// sets their max tokens again (stop, upgrade, start, reload, configure, check).
#[update]
fn upgrade_llms(req: UpgradeControllersRequest) -> CreatorResult<FleetJobView> {
    access::require_admin(&msg_caller())?;
    start_fleet(FleetKind::UpgradeLlms, ArtefactKind::LlmWasm, req, jobs::all_llms())
}

/// Removes an LLM from its mAIner: drains it (no answer in flight),
/// unregisters it from the controller, stops and deletes it.
#[update]
fn remove_llm(llm: Principal) -> CreatorResult<FleetJobView> {
    access::require_admin(&msg_caller())?;
    if jobs::controller_of_llm(llm).is_none() {
        return Err(CreatorError::NotFound(format!("{llm} is not an LLM of a mAIner made by this creator")));
    }
    let job =
        fleet::FleetJob::new(fleet::next_id(), FleetKind::RemoveLlm, String::new(), vec![llm], 1, ic_cdk::api::time());
    fleet::put(job.clone());
    Ok(job.view())
}

fn start_fleet(
    kind: FleetKind,
    wasm_kind: ArtefactKind,
    req: UpgradeControllersRequest,
    made: Vec<Principal>,
) -> CreatorResult<FleetJobView> {
    if !(1..=50).contains(&req.batch_size) {
        return Err(CreatorError::InvalidInput("batch_size must be between 1 and 50".into()));
    }
    let wasm = resolve(wasm_kind, req.wasm_sha256)?;
    let targets = match req.targets {
        Some(targets) => {
            if let Some(stranger) = targets.iter().find(|t| !made.contains(t)) {
                return Err(CreatorError::NotFound(format!("{stranger} was not made by this creator")));
            }
            targets
        }
        None => made,
    };
    if targets.is_empty() {
        return Err(CreatorError::InvalidInput("nothing to upgrade".into()));
    }
    let job = fleet::FleetJob::new(fleet::next_id(), kind, wasm.sha256, targets, req.batch_size, ic_cdk::api::time());
    fleet::put(job.clone());
    Ok(job.view())
}

#[query]
fn fleet_job(id: u64) -> CreatorResult<FleetJobView> {
    access::require_admin(&msg_caller())?;
    fleet::get(id).map(|j| j.view()).ok_or_else(|| CreatorError::NotFound(format!("fleet job {id}")))
}
