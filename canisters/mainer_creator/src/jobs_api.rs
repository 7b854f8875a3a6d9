//! Endpoints of the factory: create mAIners, follow and retry jobs, list
//! what was made.

use candid::Principal;
use ic_cdk::api::msg_caller;
use ic_cdk::{query, update};
use mainer_types::creator::{
    ArtefactKind, CreateMainerRequest, CreatorError, CreatorResult, FleetJobView, JobView, MainerView,
    UpgradeControllersRequest,
};
use mainer_types::{MainerRole, Page, PageRequest};

use crate::fleet::{FleetJob, FleetKind};
use crate::ic::{IcRuntime, Runtime};
use crate::job::{Job, MainerPlan};
use crate::state::{mutate_state, read_state};
use crate::{access, scheduler};

/// The stored artefact `sha` of `kind`, or the newest of that kind.
fn resolve(kind: ArtefactKind, sha: Option<String>) -> CreatorResult<mainer_types::creator::ArtefactInfo> {
    let info = match sha {
        Some(sha) => read_state(|s| s.store.artefact_info(&sha))
            .map_err(|_| CreatorError::NotFound(format!("artefact {sha}")))?,
        None => read_state(|s| s.store.newest(kind)).ok_or(CreatorError::NoArtefact(kind))?,
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
pub(crate) fn plan(req: CreateMainerRequest) -> CreatorResult<(MainerPlan, u32)> {
    match (req.role, req.share_service, req.llm_count) {
        (MainerRole::ShareAgent, _, n) if n > 0 => return Err(CreatorError::ShareAgentHasNoLlms),
        (MainerRole::ShareAgent, None, _) => return Err(CreatorError::MissingShareService),
        (MainerRole::Own | MainerRole::ShareService | MainerRole::Challenger | MainerRole::Judge, Some(_), _) => {
            return Err(CreatorError::InvalidInput("only a ShareAgent has a share_service".into()));
        }
        (MainerRole::Own | MainerRole::ShareService | MainerRole::Challenger | MainerRole::Judge, None, 0) => {
            return Err(CreatorError::InvalidInput(
                "an Own, ShareService, Challenger or Judge controller needs at least one LLM".into(),
            ));
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
    let settings = read_state(|s| s.config().settings);
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

/// What a job with this plan will spend, or None if it does not fit a u128.
fn cycles_needed(plan: &MainerPlan, llm_count: u32, fee: u128) -> Option<u128> {
    let per_llm = plan.llm_cycles.checked_add(fee)?;
    plan.controller_cycles.checked_add(fee)?.checked_add(per_llm.checked_mul(llm_count as u128)?)
}

/// Starts making a mAIner; returns its job at once (follow it with `job`).
#[update]
fn create_mainer(req: CreateMainerRequest) -> CreatorResult<JobView> {
    access::require_creator(&msg_caller())?;
    // The game's roles are the game's operators' (allow-listed callers make mAIners only).
    if req.role.is_game_role() && !access::is_admin(&msg_caller()) {
        return Err(CreatorError::Unauthorized("only admins create Challengers and Judges".into()));
    }
    let (plan, llm_count) = plan(req)?;
    let rt = IcRuntime;
    let needed = cycles_needed(&plan, llm_count, rt.create_canister_fee())
        .ok_or_else(|| CreatorError::InvalidInput("the cycles of this mAIner overflow".into()))?;
    let reserve = read_state(|s| s.config().settings.reserve_cycles);
    let available = rt.liquid_cycles().saturating_sub(reserve.saturating_add(read_state(|s| s.committed_cycles())));
    if available < needed {
        return Err(CreatorError::InsufficientCycles { needed, available });
    }
    let now = rt.time();
    Ok(mutate_state(|s| {
        let job = Job::new(s.next_job_id(), plan, llm_count, now);
        let view = job.view();
        s.insert_job(job);
        view
    }))
}

/// Admins, allow-listed callers, and the owner of the job's mAIner.
#[query]
fn job(id: u64) -> CreatorResult<JobView> {
    let caller = msg_caller();
    let job = read_state(|s| s.job(id));
    if job.as_ref().is_none_or(|j| j.plan.owner != caller) {
        access::require_creator(&caller)?;
    }
    job.map(|j| j.view()).ok_or_else(|| CreatorError::NotFound(format!("job {id}")))
}

/// Jobs, newest first.
#[query]
fn list_jobs(page: PageRequest) -> CreatorResult<Page<JobView>> {
    access::require_admin(&msg_caller())?;
    Ok(read_state(|s| s.jobs_page(page)))
}

/// Resumes a failed job from the step where it stopped, with its canisters.
/// A model copy that failed (its SHA-256 did not match, say) starts over.
/// Admins, and the owner of a paid order that kept its funds.
#[update]
fn retry_job(id: u64) -> CreatorResult<JobView> {
    crate::orders_api::require_order_party(&msg_caller(), id)?;
    mutate_state(|s| s.retry_job(id)).map(|j| j.view())
}

/// Advances due jobs now instead of waiting for the timer.
#[update]
async fn run_jobs_now() -> CreatorResult<u32> {
    access::require_admin(&msg_caller())?;
    Ok(scheduler::run_round(&IcRuntime).await)
}

/// mAIners made by this creator (ready or still being made), newest first.
#[query]
fn list_mainers(page: PageRequest) -> CreatorResult<Page<MainerView>> {
    access::require_admin(&msg_caller())?;
    Ok(read_state(|s| s.mainers_page(page)))
}

/// A controller this creator made reports its cycles (see the controller's
/// `cycles_push.rs`); shown by `list_mainers`.
#[update]
fn report_cycles(report: mainer_types::game::MainerCyclesReport) -> CreatorResult<()> {
    let caller = msg_caller();
    mutate_state(|s| s.record_cycles(caller, report))
}

#[update]
fn set_game_state(game_state: Principal) -> CreatorResult<()> {
    access::require_admin(&msg_caller())?;
    mutate_state(|s| s.update_config(|c| c.game_state = game_state));
    Ok(())
}

#[query]
fn game_state() -> Principal {
    read_state(|s| s.config().game_state)
}

/// Upgrades mAIner controllers to a stored controller wasm, `batch_size` at
/// a time (stop, upgrade, start, health check); returns the fleet job.
#[update]
fn upgrade_controllers(req: UpgradeControllersRequest) -> CreatorResult<FleetJobView> {
    access::require_admin(&msg_caller())?;
    let made = read_state(|s| s.all_controllers());
    start_fleet(FleetKind::UpgradeControllers, ArtefactKind::ControllerWasm, req, made)
}

/// Upgrades LLM canisters to a stored LLM wasm, then reloads their model and
/// sets their max tokens again (stop, upgrade, start, reload, configure, check).
#[update]
fn upgrade_llms(req: UpgradeControllersRequest) -> CreatorResult<FleetJobView> {
    access::require_admin(&msg_caller())?;
    start_fleet(FleetKind::UpgradeLlms, ArtefactKind::LlmWasm, req, read_state(|s| s.all_llms()))
}

/// Removes an LLM from its mAIner: drains it (no answer in flight),
/// unregisters it from the controller, stops and deletes it.
#[update]
fn remove_llm(llm: Principal) -> CreatorResult<FleetJobView> {
    access::require_admin(&msg_caller())?;
    if read_state(|s| s.job_of_llm(&llm).and_then(|j| j.controller.canister)).is_none() {
        return Err(CreatorError::NotFound(format!("{llm} is not an LLM of a mAIner made by this creator")));
    }
    Ok(new_fleet_job(FleetKind::RemoveLlm, String::new(), vec![llm], 1))
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
    Ok(new_fleet_job(kind, wasm.sha256, targets, req.batch_size))
}

fn new_fleet_job(kind: FleetKind, wasm_sha256: String, targets: Vec<Principal>, batch_size: u32) -> FleetJobView {
    let now = IcRuntime.time();
    mutate_state(|s| {
        let job = FleetJob::new(s.next_fleet_id(), kind, wasm_sha256, targets, batch_size, now);
        let view = job.view();
        s.put_fleet_job(job);
        view
    })
}

#[query]
fn fleet_job(id: u64) -> CreatorResult<FleetJobView> {
    access::require_admin(&msg_caller())?;
    read_state(|s| s.fleet_job(id)).map(|j| j.view()).ok_or_else(|| CreatorError::NotFound(format!("fleet job {id}")))
}
