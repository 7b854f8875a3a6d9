//! Rationing the controller's cycles (the owner's money):
//! - a floor: a controller whose balance falls below it pauses itself
//!   (`LowCycles`, shown in `health`) and resumes by itself once a top-up
//!   brings it a tenth above the floor again;
//! - a burn rate (cycles per day, with presets) that sets the pull interval
//!   from the measured cost of an answer, within validated bounds;
//! - the cycles spent per answer: the balance at the first timer round plus
//!   the top-ups the creator reported, less the balance now (a top-up made
//!   straight with `deposit_cycles` is not reported and lowers the figure;
//!   cycles reserved for calls in flight raise it while they are out).
//!
//! The pure rules are [`Budget`]'s; [`observe`] samples the balance.

use candid::CandidType;
use mainer_types::controller::{BurnRate, ControllerError, LlmFunding};
use serde::Deserialize;

/// Cycles per answer assumed before one has been measured.
pub const DEFAULT_CYCLES_PER_ANSWER: u128 = 20_000_000_000;
/// The default floor: what keeps the controller answering calls and out of
/// the freezing threshold for a while.
pub const DEFAULT_FLOOR_CYCLES: u128 = 200_000_000_000;
/// Burn rates accepted, in cycles per day.
pub const MIN_BURN_PER_DAY: u128 = 10_000_000_000;
pub const MAX_BURN_PER_DAY: u128 = 1_000_000_000_000_000;
/// Pull intervals a burn rate may set.
pub const MIN_PULL_SECONDS: u64 = 10;
pub const MAX_PULL_SECONDS: u64 = 86_400 * 30;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    pub floor_cycles: u128,
    pub low_cycles: bool,
    /// The balance at the first sample.
    pub first_balance: Option<u128>,
    /// The latest sample.
    pub last_balance: Option<u128>,
    /// Top-ups the creator reported.
    pub received: u128,
    /// Cycles per day the owner chose, if any.
    pub burn_per_day: Option<u128>,
    /// How LLMs are kept funded (None: the default); `opt` so that a budget
    /// stored by an older release still decodes.
    pub llm_funding: Option<LlmFunding>,
    /// Cycles given to LLMs below the funding floor.
    pub llm_funded: Option<u128>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            floor_cycles: DEFAULT_FLOOR_CYCLES,
            low_cycles: false,
            first_balance: None,
            last_balance: None,
            received: 0,
            burn_per_day: None,
            llm_funding: None,
            llm_funded: None,
        }
    }
}

impl Budget {
    /// Takes a balance sample; returns whether LowCycles changed.
    pub fn observe(&mut self, balance: u128) -> bool {
        self.first_balance.get_or_insert(balance);
        self.last_balance = Some(balance);
        let was = self.low_cycles;
        if balance < self.floor_cycles {
            self.low_cycles = true;
        } else if balance >= self.floor_cycles.saturating_add(self.floor_cycles / 10) {
            self.low_cycles = false;
        }
        was != self.low_cycles
    }

    /// Cycles spent since the first sample (as of the latest one).
    pub fn spent(&self) -> u128 {
        match (self.first_balance, self.last_balance) {
            (Some(first), Some(last)) => first.saturating_add(self.received).saturating_sub(last),
            _ => 0,
        }
    }

    pub fn cycles_per_answer(&self, answers: u64) -> Option<u128> {
        (answers > 0).then(|| self.spent() / answers as u128)
    }

    /// The pull interval that spends about `per_day` cycles a day.
    pub fn pull_interval(&self, per_day: u128, answers: u64) -> u64 {
        let per_answer = self.cycles_per_answer(answers).unwrap_or(DEFAULT_CYCLES_PER_ANSWER).max(1);
        // per_day is at least MIN_BURN_PER_DAY: no division by zero.
        let seconds = per_answer.saturating_mul(86_400) / per_day.max(1);
        (seconds.min(MAX_PULL_SECONDS as u128) as u64).max(MIN_PULL_SECONDS)
    }
}

/// Cycles per day of a burn rate, validated.
pub fn per_day(rate: &BurnRate) -> Result<u128, ControllerError> {
    let n = match rate {
        BurnRate::Low => 500_000_000_000,
        BurnRate::Medium => 2_000_000_000_000,
        BurnRate::High => 8_000_000_000_000,
        BurnRate::CyclesPerDay(n) => *n,
    };
    if !(MIN_BURN_PER_DAY..=MAX_BURN_PER_DAY).contains(&n) {
        return Err(ControllerError::InvalidInput(format!(
            "a burn rate is between {MIN_BURN_PER_DAY} and {MAX_BURN_PER_DAY} cycles per day"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_balance_pauses_and_a_top_up_resumes_with_a_margin() {
        let mut b = Budget { floor_cycles: 1_000, ..Budget::default() };
        assert!(!b.observe(2_000));
        assert!(b.observe(900) && b.low_cycles, "below the floor");
        assert!(!b.observe(1_050) && b.low_cycles, "not yet a tenth above");
        assert!(b.observe(1_100) && !b.low_cycles, "topped up");
        b.received = 500;
        assert_eq!(b.spent(), 2_000 + 500 - 1_100);
    }

    #[test]
    fn the_burn_rate_sets_a_bounded_pull_interval() {
        let mut b = Budget::default();
        // 20 B per answer (assumed), 1.728 T a day: one answer every 1000 s.
        assert_eq!(b.pull_interval(1_728_000_000_000, 0), 1_000);
        b.observe(100_000_000_000);
        b.observe(60_000_000_000);
        assert_eq!(b.pull_interval(1_728_000_000_000, 1), 2_000, "measured: 40 B an answer");
        assert_eq!(b.pull_interval(MAX_BURN_PER_DAY, 1), MIN_PULL_SECONDS);
        assert_eq!(b.pull_interval(MIN_BURN_PER_DAY, 0), 172_800);
        b.first_balance = Some(u128::MAX);
        assert_eq!(b.pull_interval(MIN_BURN_PER_DAY, 1), MAX_PULL_SECONDS);
        assert!(per_day(&BurnRate::CyclesPerDay(0)).is_err(), "no division by zero");
        assert!(per_day(&BurnRate::CyclesPerDay(u128::MAX)).is_err());
        assert!(per_day(&BurnRate::Medium).is_ok());
    }
}
