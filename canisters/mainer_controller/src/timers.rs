//! The pull and process timers: armed by one function from `init` and
//! `post_upgrade` (timers do not survive upgrades), re-armed when the
//! intervals change, never duplicated, and guarded against overlapping runs.
//! Processing runs at its interval; each pull arms the next one, at the pull
//! interval or later while pulls find nothing to do (`idle.rs`). Rounds are guarded:
//! a [`Round`] is held by a [`Guard`] while it runs, released when it ends,
//! fails or traps (its future is dropped).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use canister_common::guard::Guard;
use ic_cdk_timers::TimerId;
use mainer_types::MainerRole;

use crate::ic::{IcRuntime, Runtime};
use crate::state::read_state;
use crate::{idle, tasks};

/// The timer rounds, each of which runs once at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Round {
    Pull,
    Process,
    /// A Challenger's or Judge's round (`game_roles.rs`).
    Game,
}

thread_local! {
    static TIMERS: RefCell<Vec<TimerId>> = const { RefCell::new(Vec::new()) };
    /// The next pull: a one-shot timer each pull round sets again, so that
    /// idle pulls back off (`idle.rs`).
    static PULL: RefCell<Option<TimerId>> = const { RefCell::new(None) };
    /// Rounds under way in this execution of the canister.
    static RUNNING: RefCell<BTreeSet<Round>> = const { RefCell::new(BTreeSet::new()) };
}

/// (Re)arms the timers the role needs, clearing any armed before.
pub fn arm() {
    disarm();
    let (role, settings) = read_state(|s| (s.role(), s.settings()));
    let mut ids = Vec::new();
    if matches!(role, MainerRole::Own | MainerRole::ShareAgent) {
        idle::reset();
        schedule_pull(Duration::from_secs(settings.pull_interval_seconds));
    }
    if matches!(role, MainerRole::Own | MainerRole::ShareService) {
        let every = Duration::from_secs(settings.process_interval_seconds);
        ids.push(ic_cdk_timers::set_timer_interval(every, || async {
            process_round(&IcRuntime).await;
        }));
    }
    if role.is_game_role() {
        let every = Duration::from_secs(settings.process_interval_seconds);
        ids.push(ic_cdk_timers::set_timer_interval(every, || async {
            game_round(&IcRuntime).await;
        }));
    }
    TIMERS.with(|t| *t.borrow_mut() = ids);
}

/// Challenger and Judge: one task's step. False if a game round runs already.
pub async fn game_round<RT: Runtime + Clone + 'static>(rt: &RT) -> bool {
    let Some(_guard) = Guard::take(&RUNNING, Round::Game) else { return false };
    crate::budget_api::observe(rt.cycle_balance(), rt.time());
    crate::llm_funding::maybe_fund(rt).await;
    crate::cycles_push::maybe_report(rt).await;
    crate::game_roles::game_round(rt).await;
    true
}

fn disarm() {
    for id in TIMERS.with(|t| std::mem::take(&mut *t.borrow_mut())) {
        ic_cdk_timers::clear_timer(id);
    }
    if let Some(id) = PULL.with(|p| p.borrow_mut().take()) {
        ic_cdk_timers::clear_timer(id);
    }
}

pub fn armed() -> usize {
    TIMERS.with(|t| t.borrow().len()) + PULL.with(|p| p.borrow().is_some() as usize)
}

/// Arms the next pull `after` from now, replacing the one armed before.
fn schedule_pull(after: Duration) {
    let id = ic_cdk_timers::set_timer(after, pull_tick());
    if let Some(old) = PULL.with(|p| p.borrow_mut().replace(id)) {
        ic_cdk_timers::clear_timer(old);
    }
}

async fn pull_tick() {
    let interval = read_state(|s| s.settings().pull_interval_seconds);
    // Armed before the round runs, so that a trap in it never stops the pulls.
    schedule_pull(Duration::from_secs(idle::next_delay_seconds(interval)));
    if pull_round(&IcRuntime).await {
        schedule_pull(Duration::from_secs(idle::next_delay_seconds(interval)));
    }
}

#[cfg(test)]
pub fn is_running(round: Round) -> bool {
    Guard::is_held(&RUNNING, &round)
}

/// Own: pull; ShareAgent: pull, forward, submit. False if a pull round runs already.
pub async fn pull_round<RT: Runtime + Clone + 'static>(rt: &RT) -> bool {
    let Some(_guard) = Guard::take(&RUNNING, Round::Pull) else { return false };
    crate::budget_api::observe(rt.cycle_balance(), rt.time());
    crate::cycles_push::maybe_report(rt).await;
    let pulled = tasks::pull(rt).await.finished > 0;
    if read_state(|s| s.role()) == MainerRole::ShareAgent {
        tasks::forward(rt).await;
        tasks::hand_on(rt).await;
    }
    let work = read_state(|s| s.queue_counts());
    idle::observe(pulled || work.queued + work.in_flight + work.answered > 0);
    true
}

/// Own and ShareService: generate, then submit or deliver. False if a
/// process round runs already.
pub async fn process_round<RT: Runtime + Clone + 'static>(rt: &RT) -> bool {
    let Some(_guard) = Guard::take(&RUNNING, Round::Process) else { return false };
    crate::budget_api::observe(rt.cycle_balance(), rt.time());
    crate::llm_funding::maybe_fund(rt).await;
    crate::cycles_push::maybe_report(rt).await;
    tasks::process(rt).await;
    tasks::hand_on(rt).await;
    true
}
