//! Rationing the controller's cycles (the owner's money):
//! - a floor: a controller whose balance falls below it pauses itself
//!   (`LowCycles`, shown in `health`) and resumes by itself once a top-up
//!   brings it a tenth above the floor again;
//! - a burn rate (cycles per day, with presets) that sets the pull interval
//!   from the measured cost of an answer, within validated bounds;
//! - the cycles spent per answer: the balance at the first timer round plus
//!   the top-ups the creator reported, less the balance now (a top-up made
//!   straight with `deposit_cycles` is not reported and lowers the figure;
//!   cycles reserved for calls in flight raise it while they are out), plus
//!   what its LLMs spent: their balances as the funding checks read them,
//!   first less latest (what the controller gave them is in both its own
//!   spending and their balances, so it cancels out).
//!
//! The pure rules are [`Budget`]'s; [`observe`] samples the balance.

use candid::{CandidType, Principal};
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
    /// When the first sample was taken (`opt`: older releases lack it).
    pub first_sample_ns: Option<u64>,
    /// Each LLM's balance at the first and the latest funding check.
    pub llm_balances: Option<Vec<LlmBalance>>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LlmBalance {
    pub llm: Principal,
    pub first: u128,
    pub last: u128,
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
            first_sample_ns: None,
            llm_balances: None,
        }
    }
}

impl Budget {
    /// Takes a balance sample; returns whether LowCycles changed.
    pub fn observe(&mut self, balance: u128, now_ns: u64) -> bool {
        self.first_balance.get_or_insert(balance);
        self.first_sample_ns.get_or_insert(now_ns);
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

    /// Notes an LLM's balance as a funding check read it.
    pub fn observe_llm(&mut self, llm: Principal, balance: u128) {
        let all = self.llm_balances.get_or_insert_with(Vec::new);
        match all.iter_mut().find(|b| b.llm == llm) {
            Some(b) => b.last = balance,
            None => all.push(LlmBalance { llm, first: balance, last: balance }),
        }
    }

    /// What the LLMs spent since their first check (net of what they were given).
    pub fn llm_spent(&self) -> u128 {
        let all = self.llm_balances.as_deref().unwrap_or_default();
        let first: u128 = all.iter().map(|b| b.first).fold(0, u128::saturating_add);
        let last: u128 = all.iter().map(|b| b.last).fold(0, u128::saturating_add);
        // Funding moved cycles from our balance to theirs: it is in `spent()`
        // and in their `last`, so the total subtracts it once.
        first.saturating_sub(last)
    }

    /// The controller's spending and its LLMs', as one figure.
    pub fn total_spent(&self) -> u128 {
        let all = self.llm_balances.as_deref().unwrap_or_default();
        let first: u128 = all.iter().map(|b| b.first).fold(0, u128::saturating_add);
        let last: u128 = all.iter().map(|b| b.last).fold(0, u128::saturating_add);
        self.spent().saturating_add(first).saturating_sub(last)
    }

    pub fn cycles_per_answer(&self, answers: u64) -> Option<u128> {
        (answers > 0).then(|| self.total_spent() / answers as u128)
    }

    /// Spending per day since the first sample (at least an hour of it).
    pub fn cycles_per_day(&self, now_ns: u64) -> Option<u128> {
        const HOUR_NS: u128 = 3_600_000_000_000;
        let since = self.first_sample_ns?;
        let elapsed = (now_ns.saturating_sub(since) as u128).max(HOUR_NS);
        Some(self.total_spent().saturating_mul(24 * HOUR_NS) / elapsed)
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
        assert!(!b.observe(2_000, 1));
        assert!(b.observe(900, 2) && b.low_cycles, "below the floor");
        assert!(!b.observe(1_050, 3) && b.low_cycles, "not yet a tenth above");
        assert!(b.observe(1_100, 4) && !b.low_cycles, "topped up");
        b.received = 500;
        assert_eq!(b.spent(), 2_000 + 500 - 1_100);
    }

    #[test]
    fn the_burn_rate_sets_a_bounded_pull_interval() {
        let mut b = Budget::default();
        // 20 B per answer (assumed), 1.728 T a day: one answer every 1000 s.
        assert_eq!(b.pull_interval(1_728_000_000_000, 0), 1_000);
        b.observe(100_000_000_000, 1);
        b.observe(60_000_000_000, 2);
        assert_eq!(b.pull_interval(1_728_000_000_000, 1), 2_000, "measured: 40 B an answer");
        assert_eq!(b.pull_interval(MAX_BURN_PER_DAY, 1), MIN_PULL_SECONDS);
        assert_eq!(b.pull_interval(MIN_BURN_PER_DAY, 0), 172_800);
        b.first_balance = Some(u128::MAX);
        assert_eq!(b.pull_interval(MIN_BURN_PER_DAY, 1), MAX_PULL_SECONDS);
        assert!(per_day(&BurnRate::CyclesPerDay(0)).is_err(), "no division by zero");
        assert!(per_day(&BurnRate::CyclesPerDay(u128::MAX)).is_err());
        assert!(per_day(&BurnRate::Medium).is_ok());
    }

    #[test]
    fn spending_counts_the_llms_and_funding_once() {
        const HOUR: u64 = 3_600_000_000_000;
        let llm = Principal::from_slice(&[1]);
        let mut b = Budget::default();
        b.observe(10_000, 0);
        b.observe_llm(llm, 5_000);
        // The LLM spends 3,000 of its own; then we give it 2,000 (our
        // balance drops by that and by 500 of our own spending).
        b.observe(7_500, HOUR);
        b.observe_llm(llm, 4_000);
        assert_eq!(b.spent(), 2_500);
        assert_eq!(b.llm_spent(), 1_000, "net of what it was given");
        assert_eq!(b.total_spent(), 500 + 3_000);
        assert_eq!(b.cycles_per_answer(2), Some(1_750));
        assert_eq!(b.cycles_per_day(2 * HOUR), Some(3_500 * 12));
        assert_eq!(b.cycles_per_day(1), Some(3_500 * 24), "at least an hour");
        assert_eq!(Budget::default().cycles_per_day(5), None);
    }
}
