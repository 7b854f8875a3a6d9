//! The mAIner controller canister: one wasm, three roles.
//!
//! - Own: pulls challenges from the game state, answers them with its own
//!   LLM canisters and submits the answers.
//! - ShareAgent: pulls challenges, forwards them to its ShareService and
//!   submits the answers that come back.
//! - ShareService: answers the challenges of its ShareAgents with its LLMs.
//!
//! This file holds the endpoints only: each checks its caller and calls the
//! logic in the modules below.

mod access;
mod budget;
mod budget_api;
mod calls;
mod cycles_push;
mod game_roles;
mod ic;
mod idle;
mod inspect;
mod llm_funding;
mod memory;
mod metrics;
mod pool;
mod share_check;
mod state;
mod tasks;
#[cfg(test)]
mod testing;
mod timers;
mod turns;
mod work;

use candid::Principal;
use ic_cdk::api::msg_caller;
use ic_cdk::{init, post_upgrade, query, update};
use mainer_types::calls::llm as llm_calls;
use mainer_types::controller::{
    AddLlmRequest, AnswerDelivery, BurnRate, ControllerArgs, ControllerConfigView, ControllerError, ControllerResult,
    ControllerSettings, Counters, CyclesReport, HealthReport, LlmCheck, LlmFunding, LlmStatus, ServiceRequest,
    ServiceTicket, StepReport, WorkItem,
};
use mainer_types::http::{HttpRequest, HttpResponse};
use mainer_types::llama_cpp::StatusCodeRecordResult;
use mainer_types::{MainerRole, Page, PageRequest};

use crate::ic::IcRuntime;
use crate::state::{Config, mutate_state, read_state};

/// The roles with LLMs of their own.
const LLM_ROLES: [MainerRole; 4] =
    [MainerRole::Own, MainerRole::ShareService, MainerRole::Challenger, MainerRole::Judge];

fn now() -> u64 {
    ic_cdk::api::time()
}

// ----------------------------------------------------------------------
// Lifecycle
// ----------------------------------------------------------------------

#[init]
fn init(args: ControllerArgs) {
    let ControllerArgs::Init(init) = args else { ic_cdk::trap("install needs ControllerArgs::Init") };
    let settings = init.settings.unwrap_or_default();
    if let Err(e) = settings.validate() {
        ic_cdk::trap(format!("invalid settings: {e}"));
    }
    match (init.role, init.share_service) {
        (MainerRole::ShareAgent, None) => ic_cdk::trap("a ShareAgent needs its share_service"),
        (MainerRole::Own | MainerRole::ShareService | MainerRole::Challenger | MainerRole::Judge, Some(_)) => {
            ic_cdk::trap("only a ShareAgent has a share_service")
        }
        _ => {}
    }
    let config = Config {
        role: init.role,
        game_state: init.game_state,
        creator: init.creator,
        owner: init.owner,
        share_service: init.share_service,
        settings,
        paused: false,
    };
    mutate_state(|s| s.install(config));
    timers::arm();
    canister_common::info!("installed as {:?}", init.role);
}

#[post_upgrade]
fn post_upgrade(args: Option<ControllerArgs>) {
    if let Some(ControllerArgs::Upgrade(up)) = args
        && let Some(settings) = up.settings
    {
        if let Err(e) = settings.validate() {
            ic_cdk::trap(format!("invalid settings: {e}"));
        }
        mutate_state(|s| s.update_config(|c| c.settings = settings));
    }
    // No generation survives an upgrade: what was in flight with our LLMs goes back to the queue.
    mutate_state(|s| s.after_upgrade(now()));
    timers::arm();
    canister_common::info!("upgraded; in-flight work went back to the queue");
}

/// Refuses strangers' and oversize ingress before this canister pays for it
/// (see `inspect.rs`); the endpoints check everything again.
#[ic_cdk::inspect_message]
fn inspect_message() {
    let caller = msg_caller();
    let operator = inspect::caller_is_operator(&caller);
    canister_common::inspect::accept_if(|method, bytes| {
        read_state(|s| inspect::accepts(s, &caller, operator, method, bytes))
    });
}

// ----------------------------------------------------------------------
// LLM pool and ShareAgents (admins and the creator)
// ----------------------------------------------------------------------

#[update]
fn add_llm(req: AddLlmRequest) -> ControllerResult<LlmStatus> {
    access::require_manager(&msg_caller())?;
    access::require_role(&LLM_ROLES, "LLMs of its own")?;
    mutate_state(|s| s.add_llm(req.canister, req.model_sha256))
}

#[update]
fn remove_llm(canister: Principal) -> ControllerResult<()> {
    access::require_manager(&msg_caller())?;
    mutate_state(|s| s.remove_llm(canister))
}

/// A draining LLM gets no new work; remove it once `in_flight` is empty.
#[update]
fn set_llm_draining(canister: Principal, draining: bool) -> ControllerResult<LlmStatus> {
    access::require_manager(&msg_caller())?;
    mutate_state(|s| s.set_draining(canister, draining))
}

#[query]
fn list_llms() -> ControllerResult<Vec<LlmStatus>> {
    access::require_admin(&msg_caller())?;
    Ok(read_state(|s| s.llm_statuses(now())))
}

/// Asks every LLM whether it is ready and whether it lets us in.
#[update]
async fn check_llms() -> ControllerResult<Vec<LlmCheck>> {
    access::require_admin(&msg_caller())?;
    let llms = read_state(|s| s.llm_ids());
    let mut checks = Vec::new();
    for llm in llms {
        let ready = calls::call(&IcRuntime, llm, &llm_calls::READY, ()).await;
        let access = calls::call(&IcRuntime, llm, &llm_calls::CHECK_ACCESS, ()).await;
        let (ok, detail) = match (ready, access) {
            (Ok(StatusCodeRecordResult::Ok(_)), Ok(StatusCodeRecordResult::Ok(_))) => {
                (true, "ready, access granted".into())
            }
            (Ok(StatusCodeRecordResult::Err(e)), _) => (false, format!("not ready: {e}")),
            (_, Ok(StatusCodeRecordResult::Err(e))) => (false, format!("no access: {e}")),
            (Err(e), _) | (_, Err(e)) => (false, format!("unreachable: {e}")),
        };
        checks.push(LlmCheck { canister: llm, ready: ok, detail });
    }
    Ok(checks)
}

#[update]
fn add_share_agent(agent: Principal) -> ControllerResult<()> {
    access::require_manager(&msg_caller())?;
    access::require_role(&[MainerRole::ShareService], "ShareAgents")?;
    mutate_state(|s| s.add_agent(agent));
    Ok(())
}

#[update]
fn remove_share_agent(agent: Principal) -> ControllerResult<()> {
    access::require_manager(&msg_caller())?;
    if mutate_state(|s| s.remove_agent(agent)) {
        Ok(())
    } else {
        Err(ControllerError::NotFound(format!("ShareAgent {agent}")))
    }
}

#[query]
fn list_share_agents(page: PageRequest) -> ControllerResult<Page<Principal>> {
    access::require_admin(&msg_caller())?;
    Ok(read_state(|s| s.agents_page(page)))
}

// ----------------------------------------------------------------------
// Between ShareAgents and their ShareService
// ----------------------------------------------------------------------

/// ShareService: a ShareAgent asks for an answer. Accepted once per
/// challenge, and only as the game state has the challenge (`share_check`).
#[update]
async fn enqueue_challenge(request: ServiceRequest) -> ControllerResult<ServiceTicket> {
    let caller = msg_caller();
    access::require_role(&[MainerRole::ShareService], "ShareAgents")?;
    access::require_agent(&caller)?;
    if read_state(|s| s.paused() || s.low_cycles()) {
        return Err(ControllerError::Paused);
    }
    share_check::verify(&IcRuntime, &request.challenge).await?;
    tasks::accept_from_agent(caller, request, now())
}

/// ShareAgent: the ShareService hands back an answer (or a failure).
#[update]
fn deliver_answer(delivery: AnswerDelivery) -> ControllerResult<()> {
    access::require_role(&[MainerRole::ShareAgent], "a ShareService")?;
    access::require_service(&msg_caller())?;
    tasks::receive_delivery(&IcRuntime, delivery)
}

// ----------------------------------------------------------------------
// Operating by hand (admins)
// ----------------------------------------------------------------------

#[update]
async fn trigger_pull() -> ControllerResult<StepReport> {
    access::require_admin(&msg_caller())?;
    access::require_role(&[MainerRole::Own, MainerRole::ShareAgent], "a game state to pull from")?;
    Ok(tasks::pull(&IcRuntime).await)
}

/// ShareAgent: forward queued challenges to the ShareService.
#[update]
async fn trigger_forward() -> ControllerResult<StepReport> {
    access::require_admin(&msg_caller())?;
    access::require_role(&[MainerRole::ShareAgent], "a ShareService")?;
    Ok(tasks::forward(&IcRuntime).await)
}

#[update]
async fn trigger_process() -> ControllerResult<StepReport> {
    access::require_admin(&msg_caller())?;
    access::require_role(&LLM_ROLES, "LLMs of its own")?;
    Ok(tasks::process(&IcRuntime).await)
}

/// Submits (Own, ShareAgent) or delivers (ShareService) answered items.
#[update]
async fn trigger_submit() -> ControllerResult<StepReport> {
    access::require_admin(&msg_caller())?;
    Ok(tasks::hand_on(&IcRuntime).await)
}

#[update]
fn pause() -> ControllerResult<()> {
    access::require_admin(&msg_caller())?;
    mutate_state(|s| s.update_config(|c| c.paused = true));
    Ok(())
}

#[update]
fn resume() -> ControllerResult<()> {
    access::require_admin(&msg_caller())?;
    mutate_state(|s| s.update_config(|c| c.paused = false));
    Ok(())
}

#[update]
fn set_settings(settings: ControllerSettings) -> ControllerResult<ControllerSettings> {
    access::require_admin(&msg_caller())?;
    settings.validate()?;
    mutate_state(|s| s.update_config(|c| c.settings = settings.clone()));
    timers::arm();
    Ok(settings)
}

/// Admins (the owner too): a burn rate, which sets the pull interval from
/// the measured cycles per answer; returns the interval in seconds.
#[update]
fn set_burn_rate(rate: BurnRate) -> ControllerResult<u64> {
    access::require_admin(&msg_caller())?;
    let seconds = budget_api::set_burn_rate(&rate)?;
    timers::arm();
    Ok(seconds)
}

/// Admins (the owner too): the balance below which the controller pauses
/// itself (LowCycles) until a top-up.
#[update]
fn set_cycles_floor(floor: u128) -> ControllerResult<()> {
    access::require_admin(&msg_caller())?;
    budget_api::set_floor(floor)?;
    budget_api::observe(ic_cdk::api::canister_cycle_balance(), ic_cdk::api::time());
    Ok(())
}

/// The creator: a top-up it made (the cycles arrived by `deposit_cycles` or
/// a ledger `withdraw`); counted in the cycles-per-answer figure.
#[update]
fn note_top_up(amount: u128) -> ControllerResult<()> {
    access::require_creator(&msg_caller())?;
    budget_api::note_top_up(amount);
    budget_api::observe(ic_cdk::api::canister_cycle_balance(), ic_cdk::api::time());
    Ok(())
}

/// Admins (the owner too): how the controller keeps its LLMs funded.
#[update]
fn set_llm_funding(funding: LlmFunding) -> ControllerResult<()> {
    access::require_admin(&msg_caller())?;
    access::require_role(&LLM_ROLES, "LLMs of its own")?;
    budget_api::set_llm_funding(funding)
}

#[query]
fn cycles_report() -> ControllerResult<CyclesReport> {
    access::require_admin(&msg_caller())?;
    Ok(budget_api::report(ic_cdk::api::canister_cycle_balance(), ic_cdk::api::time()))
}

// ----------------------------------------------------------------------
// Diagnostics
// ----------------------------------------------------------------------

#[query]
fn config() -> ControllerResult<ControllerConfigView> {
    access::require_admin(&msg_caller())?;
    let c = read_state(|s| s.config());
    Ok(ControllerConfigView {
        role: c.role,
        game_state: c.game_state,
        creator: c.creator,
        owner: c.owner,
        share_service: c.share_service,
        settings: c.settings,
        paused: c.paused,
    })
}

/// Unfinished work, oldest first.
#[query]
fn queue(page: PageRequest) -> ControllerResult<Page<WorkItem>> {
    access::require_admin(&msg_caller())?;
    Ok(read_state(|s| s.queue_page(page)))
}

/// Finished work (submitted, delivered, failed, dropped), newest first.
#[query]
fn recent_work(page: PageRequest) -> ControllerResult<Page<WorkItem>> {
    access::require_admin(&msg_caller())?;
    Ok(read_state(|s| s.history_page(page)))
}

#[query]
fn counters() -> ControllerResult<Counters> {
    access::require_admin(&msg_caller())?;
    Ok(read_state(|s| s.counters()))
}

#[query]
fn health() -> HealthReport {
    read_state(|s| {
        let c = s.config();
        let now = now();
        let llms = s.llm_statuses(now);
        let healthy_llms = llms.iter().filter(|l| l.healthy && !l.draining).count() as u64;
        let mut problems = Vec::new();
        if c.role.has_llms() && healthy_llms == 0 {
            problems.push("no healthy LLM".to_string());
        }
        if c.role == MainerRole::ShareService && s.agent_count() == 0 {
            problems.push("no ShareAgent to serve".to_string());
        }
        if timers::armed() == 0 {
            problems.push("timers are not armed".to_string());
        }
        // Outages never fail an item, so a long one shows here instead.
        let waiting_since = s.waiting_since_ns();
        if let Some(since) = waiting_since {
            let waited = now.saturating_sub(since) / 1_000_000_000;
            if waited >= c.settings.stall_alert_seconds {
                problems.push(format!("work has waited {waited} s with no answer submitted or delivered"));
            }
        }
        let cycles = budget_api::report(ic_cdk::api::canister_cycle_balance(), ic_cdk::api::time());
        if cycles.low_cycles {
            problems.push(format!(
                "LowCycles: the balance {} is below the floor {}; paused until topped up",
                cycles.balance, cycles.floor_cycles
            ));
        }
        let work = s.queue_counts();
        HealthReport {
            role: c.role,
            paused: c.paused || cycles.low_cycles,
            ready: problems.is_empty() && !c.paused,
            problems,
            queued: work.queued,
            in_flight: work.in_flight,
            answered: work.answered,
            llms: llms.len() as u64,
            healthy_llms,
            cycles: ic_cdk::api::canister_cycle_balance(),
            timers_armed: timers::armed() > 0,
            last_handed_on_ns: s.last_handed_on_ns(),
            waiting_since_ns: waiting_since,
            low_cycles: cycles.low_cycles,
            cycles_per_answer: cycles.cycles_per_answer,
        }
    })
}

/// `/logs` and `/metrics` for the HTTP gateway, which calls anonymously
/// (see `canister_common::http`: nothing secret is logged).
#[query]
fn http_request(req: HttpRequest) -> HttpResponse {
    canister_common::http::serve(&req, |w| read_state(|s| metrics::encode(s, now(), w)))
}

#[query]
fn ready() -> bool {
    health().ready
}

#[query]
fn role() -> MainerRole {
    read_state(|s| s.config().role)
}

#[query]
fn am_i_controller() -> bool {
    ic_cdk::api::is_controller(&msg_caller())
}

#[query]
fn whoami() -> Principal {
    msg_caller()
}

candid::export_service!();

#[cfg(test)]
canister_common::did_test!("mainer_controller.did");
