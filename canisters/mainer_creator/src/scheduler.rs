//! The job timer: every round starts the next step of each due factory job
//! (at most `max_parallel_jobs` at once), of each running fleet job, and
//! each open refund. A
//! job whose step is still under way is busy and skipped; its [`JobKey`] is
//! held by a [`Guard`] for as long as the step runs, released when it ends,
//! fails or traps.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use crate::ic::{IcRuntime, Runtime};
use crate::state::read_state;
use crate::{fleet_steps, payment, steps};
use canister_common::guard::Guard;

/// What a timer round works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum JobKey {
    Factory(u64),
    Fleet(u64),
    /// The refund of a paid factory job.
    Refund(u64),
}

thread_local! {
    /// Jobs with a step under way in this execution of the canister.
    static BUSY: RefCell<BTreeSet<JobKey>> = const { RefCell::new(BTreeSet::new()) };
    static TIMER: RefCell<Option<ic_cdk_timers::TimerId>> = const { RefCell::new(None) };
}

/// (Re)arms the job timer: from `init` and `post_upgrade`.
pub fn arm_timer() {
    if let Some(old) = TIMER.with(|t| t.borrow_mut().take()) {
        ic_cdk_timers::clear_timer(old);
    }
    let every = Duration::from_secs(read_state(|s| s.config().settings.job_interval_seconds).max(1));
    let id = ic_cdk_timers::set_timer_interval(every, || async {
        run_round(&IcRuntime).await;
    });
    TIMER.with(|t| *t.borrow_mut() = Some(id));
}

pub fn is_busy(key: JobKey) -> bool {
    Guard::is_held(&BUSY, &key)
}

/// Starts one step of every due job that is not busy; returns how many.
/// Only the running-jobs index is read, so finished jobs cost nothing.
pub async fn run_round<RT: Runtime + Clone + 'static>(rt: &RT) -> u32 {
    let now = rt.time();
    let max = read_state(|s| s.config().settings.max_parallel_jobs).max(1) as usize;
    let due = read_state(|s| s.due_jobs(now, max, |id| !is_busy(JobKey::Factory(id))));
    let fleet: Vec<u64> =
        read_state(|s| s.running_fleet()).into_iter().filter(|id| !is_busy(JobKey::Fleet(*id))).collect();
    let mut started = 0;
    for id in due {
        let step_rt = rt.clone();
        started += spawn_guarded(rt, JobKey::Factory(id), async move { steps::advance(&step_rt, id).await }) as u32;
    }
    for id in fleet {
        let step_rt = rt.clone();
        started += spawn_guarded(rt, JobKey::Fleet(id), async move { fleet_steps::advance(&step_rt, id).await }) as u32;
    }
    for id in read_state(|s| s.refunds_due()) {
        let step_rt = rt.clone();
        started +=
            spawn_guarded(rt, JobKey::Refund(id), async move { payment::send_refund(&step_rt, id).await }) as u32;
    }
    started
}

/// Runs `step` in the background while holding `key`; false if it is held.
fn spawn_guarded<RT: Runtime>(rt: &RT, key: JobKey, step: impl Future<Output = ()> + 'static) -> bool {
    let Some(guard) = Guard::take(&BUSY, key) else { return false };
    rt.spawn(async move {
        let _guard = guard;
        step.await;
    });
    true
}
