//! The cycles budget as endpoints and timer rounds use it: reads and
//! changes of the [`Budget`] record through the state door (the record and
//! its pure rules are `budget.rs`).

use mainer_types::controller::{BurnRate, ControllerError, CyclesReport, LlmFunding};

use crate::budget::{MAX_BURN_PER_DAY, per_day};
use crate::state::{mutate_state, read_state};

/// Samples the balance (every timer round); logs a LowCycles change.
pub fn observe(balance: u128, now_ns: u64) {
    mutate_state(|s| {
        s.update_budget(|b| {
            if b.observe(balance, now_ns) {
                if b.low_cycles {
                    canister_common::warn!("LowCycles: balance {balance} below the floor {}; paused", b.floor_cycles);
                } else {
                    canister_common::info!("balance {balance} above the floor again: resumed");
                }
            }
        })
    });
}

pub fn report(balance: u128, now_ns: u64) -> CyclesReport {
    read_state(|s| {
        let b = s.budget();
        let answers = s.answers_handed_on();
        CyclesReport {
            balance,
            floor_cycles: b.floor_cycles,
            low_cycles: b.low_cycles,
            spent: b.spent(),
            llm_spent: b.llm_spent(),
            total_spent: b.total_spent(),
            cycles_per_day: b.cycles_per_day(now_ns),
            received: b.received,
            answers,
            cycles_per_answer: b.cycles_per_answer(answers),
            burn_per_day: b.burn_per_day,
            pull_interval_seconds: s.settings().pull_interval_seconds,
            llm_funding: b.llm_funding.clone().unwrap_or_default(),
            llm_funded: b.llm_funded.unwrap_or(0),
        }
    })
}

/// Sets the burn rate: the pull interval follows. Returns the interval.
pub fn set_burn_rate(rate: &BurnRate) -> Result<u64, ControllerError> {
    let per_day = per_day(rate)?;
    mutate_state(|s| {
        let answers = s.answers_handed_on();
        let seconds = s.update_budget(|b| {
            b.burn_per_day = Some(per_day);
            b.pull_interval(per_day, answers)
        });
        s.update_config(|c| c.settings.pull_interval_seconds = seconds);
        Ok(seconds)
    })
}

/// The creator reports a top-up it made (for the cycles-per-answer figure).
pub fn note_top_up(amount: u128) {
    mutate_state(|s| s.update_budget(|b| b.received = b.received.saturating_add(amount)));
}

pub fn llm_funding() -> LlmFunding {
    read_state(|s| s.budget().llm_funding.unwrap_or_default())
}

/// Sets how LLMs are funded (bounded: no LLM drains the controller at once).
pub fn set_llm_funding(f: LlmFunding) -> Result<(), ControllerError> {
    if f.floor > MAX_BURN_PER_DAY || f.amount > MAX_BURN_PER_DAY || !(60..=86_400 * 30).contains(&f.check_seconds) {
        return Err(ControllerError::InvalidInput(format!(
            "LLM funding: floor and amount at most {MAX_BURN_PER_DAY}, a check every 60 s to 30 days"
        )));
    }
    mutate_state(|s| s.update_budget(|b| b.llm_funding = Some(f)));
    Ok(())
}

/// Records an LLM's balance read by a funding check.
pub fn note_llm_balance(llm: candid::Principal, balance: u128) {
    mutate_state(|s| s.update_budget(|b| b.observe_llm(llm, balance)));
}

/// The controller's and its LLMs' spending so far (for submissions).
pub fn total_spent() -> u128 {
    read_state(|s| s.budget().total_spent())
}

/// Records cycles given to an LLM.
pub fn note_llm_funded(amount: u128) {
    mutate_state(|s| s.update_budget(|b| b.llm_funded = Some(b.llm_funded.unwrap_or(0).saturating_add(amount))));
}

/// The floor below which the controller itself pauses.
pub fn floor() -> u128 {
    read_state(|s| s.budget().floor_cycles)
}

/// Sets the floor (at most 1e15 cycles); the next round applies it.
pub fn set_floor(floor: u128) -> Result<(), ControllerError> {
    if floor > MAX_BURN_PER_DAY {
        return Err(ControllerError::InvalidInput(format!("the floor is at most {MAX_BURN_PER_DAY} cycles")));
    }
    mutate_state(|s| s.update_budget(|b| b.floor_cycles = floor));
    Ok(())
}
