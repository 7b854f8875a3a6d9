//! Telling the creator what this mAIner spends: once an hour the controller
//! sends its cycles figures (its own and its LLMs' spending, per answer and
//! per day) with `report_cycles`, so the creator's `list_mainers` shows
//! them without calling every mAIner. Best effort: a failed report is sent
//! again at the next hour.

use std::cell::Cell;

use mainer_types::calls::creator as creator_calls;
use mainer_types::game::MainerCyclesReport;

use crate::ic::Runtime;
use crate::state::read_state;
use crate::{budget_api, calls};

/// Seconds between two reports.
pub const REPORT_SECONDS: u64 = 3_600;

thread_local! {
    /// When the last report was sent (heap: after an upgrade, one goes out soon).
    static LAST_REPORT_NS: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Whether a report is due at `now_ns` after one sent at `last`.
pub fn due(last: Option<u64>, now_ns: u64) -> bool {
    last.is_none_or(|l| now_ns.saturating_sub(l) >= REPORT_SECONDS.saturating_mul(1_000_000_000))
}

/// Sends a report when one is due.
pub async fn maybe_report<RT: Runtime>(rt: &RT) {
    let now = rt.time();
    if !due(LAST_REPORT_NS.with(|c| c.get()), now) {
        return;
    }
    LAST_REPORT_NS.with(|c| c.set(Some(now)));
    let figures = budget_api::report(rt.cycle_balance(), now);
    let report = MainerCyclesReport {
        spent: figures.total_spent,
        per_answer: figures.cycles_per_answer,
        per_day: figures.cycles_per_day,
        reported_at_ns: now,
    };
    let creator = read_state(|s| s.config().creator);
    match calls::call(rt, creator, &creator_calls::REPORT_CYCLES, (report,)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => canister_common::warn!("report_cycles: {e}"),
        Err(e) => canister_common::warn!("report_cycles: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_goes_out_at_the_first_round_and_then_hourly() {
        let hour = REPORT_SECONDS * 1_000_000_000;
        assert!(due(None, 0));
        assert!(!due(Some(10), 10 + hour - 1));
        assert!(due(Some(10), 10 + hour));
    }
}
