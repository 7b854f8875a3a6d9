//! The periodic sweep: closes challenges at their deadline, expires stale
//! hand-outs and judges' leases, and finalizes the challenges that are
//! ready, even when no call comes by to do it lazily.

use std::cell::Cell;
use std::time::Duration;

use crate::challenges::sweep;
use crate::state::mutate_state;

pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How often due payouts are sent.
pub const PAYOUT_INTERVAL: Duration = Duration::from_secs(10);
/// Items per kind one sweep handles; a larger backlog waits for the next.
const SWEEP_LIMIT: usize = 1_000;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

/// Arms every timer; called from both `init` and `post_upgrade` (an upgrade
/// drops timers with the heap). Arming twice is a no-op, so no duplicates.
pub fn arm() {
    if ARMED.with(|a| a.replace(true)) {
        return;
    }
    // The task never awaits, so two runs cannot overlap.
    ic_cdk_timers::set_timer_interval(SWEEP_INTERVAL, || async {
        mutate_state(|s| {
            let now = ic_cdk::api::time();
            sweep(s, now, SWEEP_LIMIT);
            crate::finalize::sweep(s, now, SWEEP_LIMIT);
        });
    });
    // Rounds may overlap (a round awaits its transfers); a payout in flight
    // is off the queue, so none is sent twice.
    ic_cdk_timers::set_timer_interval(PAYOUT_INTERVAL, || async {
        crate::payouts::run_round(&crate::payout_ic::IcPayouts);
    });
}
