//! The pull and process timers: armed by one function from `init` and
//! `post_upgrade` (timers do not survive upgrades), re-armed when the
//! intervals change, never duplicated, and guarded against overlapping runs.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use ic_cdk_timers::TimerId;
use mainer_types::MainerRole;

use crate::{storage, tasks};

thread_local! {
    static TIMERS: RefCell<Vec<TimerId>> = const { RefCell::new(Vec::new()) };
    static PULL_RUNNING: Cell<bool> = const { Cell::new(false) };
    static PROCESS_RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// Held while a timer task runs; dropped (also on a trap, by the cleanup
/// callback) it lets the next run start.
struct RunGuard(&'static std::thread::LocalKey<Cell<bool>>);

impl RunGuard {
    fn take(flag: &'static std::thread::LocalKey<Cell<bool>>) -> Option<Self> {
        if flag.with(|f| f.replace(true)) { None } else { Some(RunGuard(flag)) }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.0.with(|f| f.set(false));
    }
}

/// (Re)arms the timers the role needs, clearing any armed before.
pub fn arm() {
    disarm();
    let (role, settings) = storage::read(|s| (s.config().role, s.settings()));
    let mut ids = Vec::new();
    if matches!(role, MainerRole::Own | MainerRole::ShareAgent) {
        let every = Duration::from_secs(settings.pull_interval_seconds);
        ids.push(ic_cdk_timers::set_timer_interval(every, || async { pull_round().await }));
    }
    if matches!(role, MainerRole::Own | MainerRole::ShareService) {
        let every = Duration::from_secs(settings.process_interval_seconds);
        ids.push(ic_cdk_timers::set_timer_interval(every, || async { process_round().await }));
    }
    TIMERS.with(|t| *t.borrow_mut() = ids);
}

fn disarm() {
    for id in TIMERS.with(|t| std::mem::take(&mut *t.borrow_mut())) {
        ic_cdk_timers::clear_timer(id);
    }
}

pub fn armed() -> usize {
    TIMERS.with(|t| t.borrow().len())
}

/// Own: pull; ShareAgent: pull, forward, submit.
pub async fn pull_round() {
    let Some(_guard) = RunGuard::take(&PULL_RUNNING) else { return };
    crate::budget::observe(ic_cdk::api::canister_cycle_balance());
    tasks::pull().await;
    if storage::read(|s| s.config().role) == MainerRole::ShareAgent {
        tasks::forward().await;
        tasks::hand_on().await;
    }
}

/// Own and ShareService: generate, then submit or deliver.
pub async fn process_round() {
    let Some(_guard) = RunGuard::take(&PROCESS_RUNNING) else { return };
    crate::budget::observe(ic_cdk::api::canister_cycle_balance());
    tasks::process().await;
    tasks::hand_on().await;
}
