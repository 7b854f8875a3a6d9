//! Keeping the LLMs funded (Own, ShareService): every `check_seconds` the
//! controller asks the creator (the LLMs' only IC controller, so the only
//! one who can read their balance) for each LLM's balance, and gives an LLM
//! below the floor `amount` cycles with `deposit_cycles`, only if its own
//! balance stays above its own floor. Never on every call: an LLM with
//! enough cycles costs one balance query per check.

use std::cell::Cell;

use mainer_types::calls::creator as creator_calls;

use crate::ic::Runtime;
use crate::state::read_state;
use crate::{budget_api, calls};

thread_local! {
    /// When the LLMs were last checked (heap: after an upgrade they are checked soon).
    static LAST_CHECK_NS: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Whether an LLM with `balance` gets `amount` from a controller holding
/// `own`, which must keep `own_floor`.
pub fn should_fund(balance: u128, floor: u128, amount: u128, own: u128, own_floor: u128) -> bool {
    balance < floor && amount > 0 && own.saturating_sub(amount) >= own_floor
}

/// Runs a check when one is due.
pub async fn maybe_fund<RT: Runtime>(rt: &RT) {
    let funding = budget_api::llm_funding();
    let now = rt.time();
    let every = funding.check_seconds.saturating_mul(1_000_000_000);
    if LAST_CHECK_NS.with(|c| c.get()).is_some_and(|last| now.saturating_sub(last) < every) {
        return;
    }
    LAST_CHECK_NS.with(|c| c.set(Some(now)));
    let (creator, llms) = read_state(|s| (s.config().creator, s.llm_ids()));
    for llm in llms {
        let balance = match calls::call(rt, creator, &creator_calls::LLM_CYCLES, (llm,)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                canister_common::warn!("the balance of LLM {llm}: {e}");
                continue;
            }
            Err(e) => {
                canister_common::warn!("the balance of LLM {llm}: {e}");
                continue;
            }
        };
        budget_api::note_llm_balance(llm, balance);
        if !should_fund(balance, funding.floor, funding.amount, rt.cycle_balance(), budget_api::floor()) {
            continue;
        }
        match rt.deposit_cycles(llm, funding.amount).await {
            Ok(()) => {
                budget_api::note_llm_funded(funding.amount);
                budget_api::note_llm_balance(llm, balance.saturating_add(funding.amount));
                canister_common::info!("LLM {llm} had {balance} cycles: gave it {}", funding.amount);
            }
            Err(e) => canister_common::warn!("funding LLM {llm}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_llm_below_the_floor_is_funded_and_never_below_our_own_floor() {
        assert!(should_fund(5, 10, 3, 100, 50));
        assert!(!should_fund(10, 10, 3, 100, 50), "at the floor: nothing");
        assert!(!should_fund(5, 10, 60, 100, 50), "it would take us below our floor");
        assert!(!should_fund(5, 10, 0, 100, 50));
    }
}
