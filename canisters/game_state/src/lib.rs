//! The game state canister: registers mAIners, hands out challenges and
//! keeps submissions with their evidence; around them the game: topics,
//! challengers and judges, the judging queue, results, rewards and payouts.
//!
//! This file (and `play_api.rs`, the game's) holds only the endpoints: each one reads the caller and the
//! time, then calls the logic in the modules, which run natively in tests.
//! Access rules are documented in `game_state.did`.

pub mod access;
pub mod agents;
pub mod challenges;
pub mod finalize;
pub mod inspect;
pub mod judging;
pub mod mainers;
pub mod modules;
mod paging;
pub mod payout_ic;
pub mod payouts;
mod play_api;
pub mod play_records;
pub mod play_state;
pub mod pool;
pub mod records;
pub mod results;
pub mod rewards;
pub mod rules;
pub mod state;
pub mod submissions;
mod timers;
pub mod topics;

#[cfg(test)]
mod testing;

use candid::Principal;
use mainer_types::game::{
    Challenge, ChallengeId, GameCounts, GameError, GameStateArgs, MainerInfo, ModuleReport, NewChallenge,
    RegisterMainerRequest, Submission, SubmitRequest,
};
use mainer_types::{Page, PageRequest};

use access::Caller;
use mainer_types::http::{HttpRequest, HttpResponse};
use state::{Config, mutate_state, read_state};

thread_local! {
    /// Refused update calls since install or upgrade (for `/metrics`).
    static REFUSED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Logs an update's outcome: `done` describes a success at info; a refusal
/// is a warning, or debug for `quiet` errors (e.g. no open challenge, which
/// mAIners hear on every pull).
fn logged<T>(
    method: &str,
    result: Result<T, GameError>,
    done: impl FnOnce(&T) -> String,
    quiet: impl FnOnce(&GameError) -> bool,
) -> Result<T, GameError> {
    let caller = ic_cdk::api::msg_caller();
    match &result {
        Ok(value) => canister_common::info!("{method} by {caller}: {}", done(value)),
        Err(e) if quiet(e) => canister_common::debug!("{method} by {caller}: {e}"),
        Err(e) => {
            REFUSED.with(|r| r.set(r.get() + 1));
            canister_common::warn!("{method} by {caller} refused: {e}");
        }
    }
    result
}

fn loud(_: &GameError) -> bool {
    false
}

fn caller() -> Caller {
    let principal = ic_cdk::api::msg_caller();
    Caller { principal, is_controller: ic_cdk::api::is_controller(&principal) }
}

fn now() -> u64 {
    ic_cdk::api::time()
}

#[ic_cdk::init]
fn init(args: GameStateArgs) {
    let GameStateArgs::Init(init) = args else {
        ic_cdk::trap("install needs GameStateArgs::Init");
    };
    let config = Config::from_init(init).unwrap_or_else(|e| ic_cdk::trap(format!("invalid init arguments: {e}")));
    mutate_state(|s| s.set_config(config));
    timers::arm();
    canister_common::info!("installed");
}

/// Takes no argument, `(null)`, or `(opt GameStateArgs::Upgrade)`; only the
/// fields that are `Some` change. Everything else is already in stable memory.
#[ic_cdk::post_upgrade]
fn post_upgrade() {
    let bytes = ic_cdk::api::msg_arg_data();
    let args: Option<GameStateArgs> = if bytes.is_empty() {
        None
    } else {
        candid::decode_one(&bytes).unwrap_or_else(|e| ic_cdk::trap(format!("upgrade arguments do not decode: {e}")))
    };
    match args {
        None => {}
        Some(GameStateArgs::Upgrade(up)) => {
            let config = read_state(|s| s.config().upgrade(up))
                .unwrap_or_else(|e| ic_cdk::trap(format!("invalid upgrade arguments: {e}")));
            mutate_state(|s| s.set_config(config));
        }
        Some(GameStateArgs::Init(_)) => ic_cdk::trap("upgrade needs GameStateArgs::Upgrade"),
    }
    // Open the state (and rebuild its cache) now: if that fails, the upgrade
    // fails and is rolled back, instead of every later message.
    read_state(|_| ());
    // Replies to payouts sent before the upgrade can no longer arrive.
    let unknown = mutate_state(payouts::in_flight_unknown);
    if unknown > 0 {
        canister_common::warn!("{unknown} payouts were in flight during the upgrade: now Unknown, resolve them");
    }
    timers::arm();
    canister_common::info!("upgraded: {:?}", read_state(|s| s.counts()));
}

/// Refuses strangers' and oversize ingress before the canister pays for it
/// (see `inspect.rs`); the endpoints check everything again.
#[ic_cdk::inspect_message]
fn inspect_message() {
    let caller = caller();
    canister_common::inspect::accept_if(|method, bytes| {
        // Only `set_payout_to` names whom it is about (the mAIner) in its argument.
        let about = || {
            candid::decode_args::<(Principal, mainer_types::game_play::PayoutTo)>(&ic_cdk::api::msg_arg_data())
                .ok()
                .map(|a| a.0)
        };
        read_state(|s| inspect::accepts_about(s, &caller, method, bytes, about))
    });
}

#[ic_cdk::update]
fn register_mainer(req: RegisterMainerRequest) -> Result<MainerInfo, GameError> {
    let result = mutate_state(|s| mainers::register(s, &caller(), req, now()));
    logged("register_mainer", result, |m| format!("registered {} ({:?}, owner {})", m.mainer, m.role, m.owner), loud)
}

#[ic_cdk::update]
fn unregister_mainer(mainer: Principal) -> Result<(), GameError> {
    let result = mutate_state(|s| mainers::unregister(s, &caller(), mainer));
    logged("unregister_mainer", result, |_| format!("unregistered {mainer}"), loud)
}

#[ic_cdk::update]
fn add_challenge(new: NewChallenge) -> Result<Challenge, GameError> {
    let result = mutate_state(|s| challenges::add(s, &caller(), new, now()));
    logged("add_challenge", result, |c| format!("added challenge {}", c.id), loud)
}

#[ic_cdk::update]
fn close_challenge(id: ChallengeId) -> Result<Challenge, GameError> {
    let result = mutate_state(|s| {
        let closed = challenges::close(s, &caller(), id, now())?;
        // Fully judged already: its results need not wait for the sweep.
        finalize::try_finalize(s, id, now());
        Ok(closed)
    });
    logged("close_challenge", result, |c| format!("closed challenge {}", c.id), loud)
}

#[ic_cdk::update]
fn get_challenge() -> Result<Challenge, GameError> {
    let result = mutate_state(|s| challenges::take(s, &caller(), now()));
    let quiet = |e: &GameError| matches!(e, GameError::NoOpenChallenge);
    logged("get_challenge", result, |c| format!("handed out challenge {}", c.id), quiet)
}

/// A registered mAIner gives back a challenge it will not answer.
#[ic_cdk::update]
fn release_challenge(id: ChallengeId) -> Result<(), GameError> {
    mutate_state(|s| challenges::release(s, &caller(), id))
}

#[ic_cdk::query]
fn is_challenge_open(id: ChallengeId) -> Result<bool, GameError> {
    read_state(|s| challenges::is_open(s, id, now()))
}

/// A challenge as stored, for admins and registered mAIners.
#[ic_cdk::query]
fn challenge(id: ChallengeId) -> Result<Challenge, GameError> {
    read_state(|s| challenges::get(s, &caller(), id, now()))
}

/// A registered mAIner's answer. Its module hash is read first when the
/// cached one is missing or old (see `modules.rs`): the only call here, and
/// the submission itself is checked and stored after it, in one step.
#[ic_cdk::update]
async fn submit(req: SubmitRequest) -> Result<Submission, GameError> {
    let caller = caller();
    if read_state(|s| modules::needs_fetch(s, &caller, now())) {
        let args = ic_cdk::management_canister::CanisterInfoArgs {
            canister_id: caller.principal,
            num_requested_changes: None,
        };
        match ic_cdk::management_canister::canister_info(&args).await {
            Ok(info) => mutate_state(|s| modules::record(s, caller.principal, info.module_hash, now())),
            Err(e) => {
                let refused = Err(GameError::Unavailable(format!("canister_info of {}: {e}", caller.principal)));
                return logged("submit", refused, |_: &Submission| String::new(), loud);
            }
        }
    }
    let result = mutate_state(|s| submissions::submit(s, &caller, req, now()));
    logged("submit", result, |s| format!("answer to challenge {} accepted", s.challenge_id), loud)
}

/// Admins and registrars (the creator): a module installed in mAIners.
#[ic_cdk::update]
fn report_module(report: ModuleReport) -> Result<(), GameError> {
    let hash = hex::encode(&report.module_hash);
    let result = mutate_state(|s| modules::report(s, &caller(), report));
    logged("report_module", result, |_| format!("module {hash} known"), loud)
}

/// Admins retire a module: mAIners running it are refused from then on.
#[ic_cdk::update]
fn forget_module(module_hash: Vec<u8>) -> Result<(), GameError> {
    let hash = hex::encode(&module_hash);
    let result = mutate_state(|s| modules::forget(s, &caller(), module_hash));
    logged("forget_module", result, |_| format!("module {hash} retired"), loud)
}

/// The modules mAIners may run (hex SHA-256), for admins and registrars.
#[ic_cdk::query]
fn known_modules() -> Result<Vec<String>, GameError> {
    read_state(|s| modules::list(s, &caller()))
}

#[ic_cdk::query]
fn submissions_by_challenge(id: ChallengeId, page: PageRequest) -> Result<Page<Submission>, GameError> {
    read_state(|s| submissions::by_challenge(s, &caller(), id, page))
}

#[ic_cdk::query]
fn submissions_by_mainer(mainer: Principal, page: PageRequest) -> Result<Page<Submission>, GameError> {
    read_state(|s| submissions::by_mainer(s, &caller(), mainer, page))
}

#[ic_cdk::query]
fn list_challenges(page: PageRequest) -> Result<Page<Challenge>, GameError> {
    read_state(|s| challenges::list(s, &caller(), page, now()))
}

#[ic_cdk::query]
fn list_mainers(page: PageRequest) -> Result<Page<MainerInfo>, GameError> {
    read_state(|s| mainers::list(s, &caller(), page))
}

#[ic_cdk::query]
fn mainer_info(mainer: Principal) -> Result<MainerInfo, GameError> {
    read_state(|s| mainers::info(s, &caller(), mainer))
}

#[ic_cdk::query]
fn counts() -> GameCounts {
    read_state(|s| s.counts())
}

#[ic_cdk::query]
fn health() -> bool {
    true
}

/// `/logs` and `/metrics` for the HTTP gateway, which calls anonymously
/// (see `canister_common::http`: nothing secret is logged).
#[ic_cdk::query]
fn http_request(req: HttpRequest) -> HttpResponse {
    canister_common::http::serve(&req, |w| {
        let c = read_state(|s| s.counts());
        w.encode_gauge("game_mainers", c.mainers as f64, "Registered mAIners.")?;
        w.encode_gauge("game_challenges", c.challenges as f64, "Challenges, open and closed.")?;
        w.encode_gauge("game_open_challenges", c.open_challenges as f64, "Open challenges.")?;
        w.encode_gauge("game_submissions", c.submissions as f64, "Submissions kept.")?;
        let (queued, leased) = read_state(judging::queue_counts);
        w.encode_gauge("game_judging_queued", queued as f64, "Submissions waiting for a judge.")?;
        w.encode_gauge("game_judging_leased", leased as f64, "Submissions leased to judges.")?;
        w.encode_counter(
            "game_refused_calls_total",
            REFUSED.with(|r| r.get()) as f64,
            "Updates refused since the last upgrade.",
        )
    })
}

#[ic_cdk::query]
fn whoami() -> Principal {
    ic_cdk::api::msg_caller()
}

// The types of `play_api.rs`'s endpoints, which the export names unqualified.
#[cfg(test)]
use mainer_types::game::GameResult;
#[cfg(test)]
use mainer_types::game_play::*;

// Must follow every endpoint: it collects the interface they declared.
#[cfg(test)]
candid::export_service!();

#[cfg(test)]
canister_common::did_test!("game_state.did");
