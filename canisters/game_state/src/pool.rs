//! The reward pool's books and the owners' payout choices. Admins fund the
//! pool with attached cycles; a challenge takes its reward from `available`
//! when it is finalized (moving it to `owed`), and a payout moves its amount
//! from `owed` to `paid` when it arrives. `funded = available + owed + paid`
//! at all times.

use candid::Principal;
use mainer_types::game::{GameError, GameResult};
use mainer_types::game_play::{Payout, PayoutTo, RewardPool};
use mainer_types::{Page, PageRequest};

use crate::access::{Caller, require_admin, require_admin_or_mainer};
use crate::state::{Candid, State};

/// Admins only: adds `cycles` (what the call attached and the canister accepted).
pub fn fund(state: &mut State, caller: &Caller, cycles: u128) -> GameResult<RewardPool> {
    require_admin(state.config(), caller)?;
    if cycles == 0 {
        return Err(GameError::InvalidInput("attach the cycles to add to the pool".into()));
    }
    let mut pool = state.play.pool();
    pool.available += cycles;
    pool.funded += cycles;
    state.play.set_pool(pool.clone());
    Ok(pool)
}

/// Admins only.
pub fn get(state: &State, caller: &Caller) -> GameResult<RewardPool> {
    require_admin(state.config(), caller)?;
    Ok(state.play.pool())
}

/// Takes up to `wanted` from the available cycles and owes it; returns what it took.
pub(crate) fn take(state: &mut State, wanted: u128) -> u128 {
    let mut pool = state.play.pool();
    let taken = wanted.min(pool.available);
    if taken > 0 {
        pool.available -= taken;
        pool.owed += taken;
        state.play.set_pool(pool);
    }
    taken
}

/// A payout of `amount` arrived.
pub(crate) fn paid(state: &mut State, amount: u128) {
    let mut pool = state.play.pool();
    pool.owed -= amount;
    pool.paid += amount;
    state.play.set_pool(pool);
}

/// Admins, the mAIner and its owner: where the mAIner's future rewards go.
/// Payouts already made keep their destination.
pub fn set_payout_to(state: &mut State, caller: &Caller, mainer: Principal, to: PayoutTo) -> GameResult<()> {
    require_admin_or_mainer(state, caller, &mainer)?;
    if state.mainer(&mainer).is_none() {
        return Err(GameError::NotRegistered(mainer));
    }
    if let PayoutTo::OwnerLedger { subaccount: Some(s) } = &to
        && s.len() != 32
    {
        return Err(GameError::InvalidInput("a subaccount has 32 bytes".into()));
    }
    state.play.payout_prefs.insert(mainer, Candid(to));
    Ok(())
}

/// Admins only, in id order.
pub fn list_payouts(state: &State, caller: &Caller, page: PageRequest) -> GameResult<Page<Payout>> {
    require_admin(state.config(), caller)?;
    Ok(crate::paging::page_of(state.play.payouts.values(), state.play.payouts.len(), page, |p| p.0))
}

/// Where `mainer`'s rewards go (its controller canister unless its owner chose otherwise).
pub fn payout_to(state: &State, mainer: &Principal) -> PayoutTo {
    state.play.payout_prefs.get(mainer).map_or(PayoutTo::Mainer, |p| p.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn admins_fund_the_pool_and_challenges_take_from_it() {
        let mut s = state();
        assert!(matches!(fund(&mut s, &Caller::user(p(50)), 10), Err(GameError::Unauthorized(_))));
        assert!(matches!(get(&s, &Caller::user(p(50))), Err(GameError::Unauthorized(_))));
        assert!(matches!(fund(&mut s, &admin(), 0), Err(GameError::InvalidInput(_))));
        fund(&mut s, &admin(), 100).unwrap();
        assert_eq!(take(&mut s, 70), 70);
        assert_eq!(take(&mut s, 70), 30, "no more than is there");
        assert_eq!(take(&mut s, 70), 0);
        paid(&mut s, 60);
        assert_eq!(get(&s, &admin()).unwrap(), RewardPool { available: 0, owed: 40, paid: 60, funded: 100 });
    }

    #[test]
    fn owners_choose_where_rewards_go() {
        let mut s = state();
        register_mainer(&mut s, p(10));
        assert_eq!(payout_to(&s, &p(10)), PayoutTo::Mainer);
        let ledger = PayoutTo::OwnerLedger { subaccount: None };
        let stranger = Caller::user(p(50));
        assert!(matches!(set_payout_to(&mut s, &stranger, p(10), ledger.clone()), Err(GameError::Unauthorized(_))));
        set_payout_to(&mut s, &Caller::user(owner_of(p(10))), p(10), ledger.clone()).unwrap();
        assert_eq!(payout_to(&s, &p(10)), ledger);
        let bad = PayoutTo::OwnerLedger { subaccount: Some(vec![1; 31]) };
        assert!(matches!(set_payout_to(&mut s, &admin(), p(10), bad), Err(GameError::InvalidInput(_))));
        assert_eq!(set_payout_to(&mut s, &admin(), p(11), ledger), Err(GameError::NotRegistered(p(11))));
    }
}
