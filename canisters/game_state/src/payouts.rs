//! Paying rewards exactly once. A payout is created `Pending` when its
//! challenge is finalized; a timer round takes the due ones, writes each as
//! `InFlight` (before the call, in the same message that takes it off the
//! queue) and sends it: a top-up of the mAIner's controller canister, or a
//! deposit to its owner's cycles-ledger account with the payout id as memo.
//! A reply settles it `Paid`; a reject (the cycles came back) puts it back
//! `Pending` with an exponential back-off. A payout found `InFlight` after an
//! upgrade without a stop (its reply can no longer arrive) may or may not
//! have arrived, so it becomes `Unknown` and is never sent again by itself;
//! an admin checks the receiver (the ledger's blocks carry the memo) and
//! resolves it. A stop before an upgrade lets every reply arrive first.

use mainer_types::cycles_ledger::DepositArgs;
use mainer_types::game::{GameError, GameResult};
use mainer_types::game_play::{Payout, PayoutId, PayoutState, PayoutTo};

use crate::access::{Caller, require_admin};
use crate::payout_ic::{PayoutRuntime, Rejected};
use crate::state::{State, mutate_state};

/// Payouts one timer round sends at most.
pub const PAYOUTS_PER_ROUND: usize = 20;
/// The first retry waits this long, each next one twice as long, up to the cap.
pub const FIRST_RETRY_NS: u64 = 30 * 1_000_000_000;
pub const MAX_RETRY_NS: u64 = 60 * 60 * 1_000_000_000;

/// The wait before attempt `attempts + 1`, after `attempts` rejects.
pub fn backoff_ns(attempts: u32) -> u64 {
    FIRST_RETRY_NS.saturating_mul(1u64 << attempts.saturating_sub(1).min(20)).min(MAX_RETRY_NS)
}

/// A transfer to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transfer {
    TopUp { canister: candid::Principal, cycles: u128 },
    Ledger { ledger: candid::Principal, args: DepositArgs, cycles: u128 },
}

fn transfer(state: &State, p: &Payout) -> Result<Transfer, String> {
    match &p.to {
        PayoutTo::Mainer => Ok(Transfer::TopUp { canister: p.mainer, cycles: p.amount }),
        PayoutTo::OwnerLedger { subaccount } => {
            let ledger = state.play.settings().cycles_ledger.ok_or("no cycles ledger is set (set_game_settings)")?;
            let args = DepositArgs::new(p.owner, subaccount.clone(), p.id.to_be_bytes().to_vec());
            Ok(Transfer::Ledger { ledger, args, cycles: p.amount })
        }
    }
}

fn retry_later(state: &mut State, old: Payout, why: String, now_ns: u64) {
    let mut p = old.clone();
    p.state = PayoutState::Pending;
    p.attempts += 1;
    p.next_attempt_ns = now_ns.saturating_add(backoff_ns(p.attempts));
    p.last_error = Some(why);
    state.play.save_payout(Some(&old), p);
}

/// Takes up to `limit` due payouts off the queue and writes them `InFlight`;
/// returns what to send. One that cannot be sent yet is rescheduled.
pub fn take_due(state: &mut State, now_ns: u64, limit: usize) -> Vec<(PayoutId, Transfer)> {
    let due: Vec<PayoutId> =
        state.play.payout_queue.iter().take_while(|(at, _)| *at <= now_ns).take(limit).map(|(_, id)| id).collect();
    let mut out = vec![];
    for id in due {
        let p = state.play.payout(id).expect("a queued payout exists");
        match transfer(state, &p) {
            Ok(t) => {
                let mut sent = p.clone();
                sent.state = PayoutState::InFlight { since_ns: now_ns };
                state.play.save_payout(Some(&p), sent);
                state.play.payouts_in_flight.insert(id);
                out.push((id, t));
            }
            Err(why) => retry_later(state, p, why, now_ns),
        }
    }
    out
}

/// The outcome of an in-flight payout's transfer.
pub fn settle(state: &mut State, id: PayoutId, outcome: Result<Option<u128>, Rejected>, now_ns: u64) {
    let Some(p) = state.play.payout(id).filter(|p| matches!(p.state, PayoutState::InFlight { .. })) else {
        return;
    };
    state.play.payouts_in_flight.remove(&id);
    match outcome {
        Ok(ledger_block) => {
            let mut paid = p.clone();
            paid.state = PayoutState::Paid { at_ns: now_ns, ledger_block };
            paid.attempts += 1;
            paid.last_error = None;
            crate::pool::paid(state, p.amount);
            state.play.save_payout(Some(&p), paid);
        }
        Err(Rejected(why)) => retry_later(state, p, why, now_ns),
    }
}

/// After an upgrade: payouts whose reply can no longer arrive become `Unknown`.
pub fn in_flight_unknown(state: &mut State) -> usize {
    let ids: Vec<PayoutId> = state.play.payouts_in_flight.iter().collect();
    for id in &ids {
        if let Some(p) = state.play.payout(*id) {
            let mut unknown = p.clone();
            unknown.state = PayoutState::Unknown;
            unknown.last_error = Some("in flight during an upgrade: check the receiver, then resolve".into());
            state.play.save_payout(Some(&p), unknown);
        }
        state.play.payouts_in_flight.remove(id);
    }
    ids.len()
}

/// Admins only: settles an `Unknown` payout after checking its receiver:
/// `arrived` marks it paid; otherwise it is sent again.
pub fn resolve(state: &mut State, caller: &Caller, id: PayoutId, arrived: bool, now_ns: u64) -> GameResult<Payout> {
    require_admin(state.config(), caller)?;
    let p = state.play.payout(id).ok_or(GameError::PayoutNotFound(id))?;
    if p.state != PayoutState::Unknown {
        return Err(GameError::InvalidInput(format!("payout {id} is not Unknown")));
    }
    let mut new = p.clone();
    if arrived {
        new.state = PayoutState::Paid { at_ns: now_ns, ledger_block: None };
        crate::pool::paid(state, p.amount);
    } else {
        new.state = PayoutState::Pending;
        new.next_attempt_ns = now_ns;
    }
    state.play.save_payout(Some(&p), new.clone());
    Ok(new)
}

async fn send<R: PayoutRuntime>(rt: &R, t: Transfer) -> Result<Option<u128>, Rejected> {
    match t {
        Transfer::TopUp { canister, cycles } => rt.deposit_cycles(canister, cycles).await.map(|()| None),
        Transfer::Ledger { ledger, args, cycles } => rt.ledger_deposit(ledger, args, cycles).await,
    }
}

/// One timer round: the due payouts are written `InFlight` and sent
/// together (each call is made in this message, so what is `InFlight` has
/// really been sent), each settled as its answer comes. Rounds may overlap:
/// a payout in flight is off the queue, so no two rounds send the same one.
pub fn run_round<R: PayoutRuntime + Clone + 'static>(rt: &R) -> usize {
    let due = mutate_state(|s| take_due(s, rt.time(), PAYOUTS_PER_ROUND));
    let n = due.len();
    for (id, t) in due {
        let rt2 = rt.clone();
        rt.spawn(async move {
            let outcome = send(&rt2, t).await;
            mutate_state(|s| settle(s, id, outcome, rt2.time()));
        });
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use mainer_types::game_play::{GameSettings, RewardPool};

    /// A game with `n` rewarded payouts of mAIners 10.. (from one finalized challenge).
    fn with_payouts(n: u8, to_ledger: bool) -> State {
        let mut s = state();
        let settings = GameSettings {
            scored_to_close: n as u64,
            reward_per_challenge: 1_000,
            cycles_ledger: Some(p(90)),
            ..GameSettings::default()
        };
        set_settings(&mut s, settings);
        crate::pool::fund(&mut s, &admin(), 1_000).unwrap();
        make_judge(&mut s, p(20));
        crate::challenges::add(&mut s, &admin(), question("q"), 1).unwrap();
        for i in 0..n {
            register_mainer(&mut s, p(10 + i));
            if to_ledger {
                let to = PayoutTo::OwnerLedger { subaccount: Some(vec![7; 32]) };
                crate::pool::set_payout_to(&mut s, &admin(), p(10 + i), to).unwrap();
            }
            submit_answer(&mut s, p(10 + i), 1, 2).unwrap();
        }
        for _ in 0..n {
            let t = crate::judging::next(&mut s, &Caller::user(p(20)), 3).unwrap();
            let r = mainer_types::game_play::ScoreReport {
                lease_id: t.lease_id,
                outcome: mainer_types::game_play::ScoreOutcome::Scored { score: 3 },
                evidence: llm_evidence(),
            };
            crate::judging::report(&mut s, &Caller::user(p(20)), r, 3).unwrap();
        }
        assert_eq!(s.play.payouts.len(), n as u64);
        s
    }

    #[test]
    fn due_payouts_go_in_flight_before_the_call_and_are_paid_once() {
        let mut s = with_payouts(3, false);
        let due = take_due(&mut s, 10, 2);
        assert_eq!(due.len(), 2, "the limit holds");
        assert!(
            matches!(due[0].1, Transfer::TopUp { canister, .. } if canister == s.play.payout(due[0].0).unwrap().mainer)
        );
        assert!(take_due(&mut s, 10, 10).len() == 1, "an in-flight payout is not taken again");
        assert!(take_due(&mut s, 10, 10).is_empty());
        for (id, _) in &due {
            settle(&mut s, *id, Ok(None), 11);
            settle(&mut s, *id, Ok(None), 12);
        }
        assert!(matches!(s.play.payout(due[0].0).unwrap().state, PayoutState::Paid { at_ns: 11, .. }));
        let pool = s.play.pool();
        let paid: u128 = due.iter().map(|(id, _)| s.play.payout(*id).unwrap().amount).sum();
        assert_eq!((pool.paid, pool.owed + pool.paid, pool.funded), (paid, 1_000, 1_000), "settling twice pays once");
    }

    #[test]
    fn a_rejected_payout_is_retried_with_back_off() {
        let mut s = with_payouts(1, true);
        let (id, t) = take_due(&mut s, 10, 5).remove(0);
        let Transfer::Ledger { ledger, args, cycles } = t else { panic!("{t:?}") };
        assert_eq!((ledger, cycles, args.to.subaccount.unwrap().to_vec()), (p(90), 1_000, vec![7; 32]));
        assert_eq!(args.memo.unwrap().to_vec(), id.to_be_bytes().to_vec(), "the payout id is the memo");
        settle(&mut s, id, Err(Rejected("stopped".into())), 20);
        let p1 = s.play.payout(id).unwrap();
        assert_eq!((p1.state.clone(), p1.attempts, p1.next_attempt_ns), (PayoutState::Pending, 1, 20 + FIRST_RETRY_NS));
        assert_eq!(p1.last_error.as_deref(), Some("stopped"));
        assert!(take_due(&mut s, 20 + FIRST_RETRY_NS - 1, 5).is_empty(), "not before its time");
        let (id2, _) = take_due(&mut s, 20 + FIRST_RETRY_NS, 5).remove(0);
        settle(&mut s, id2, Err(Rejected("stopped".into())), 100);
        assert_eq!(s.play.payout(id).unwrap().next_attempt_ns, 100 + 2 * FIRST_RETRY_NS);
        assert_eq!(backoff_ns(30), MAX_RETRY_NS);
        assert_eq!(s.play.pool(), RewardPool { available: 0, owed: 1_000, paid: 0, funded: 1_000 });
    }

    #[test]
    fn a_payout_in_flight_at_an_upgrade_becomes_unknown_and_is_not_sent_again() {
        let mut s = with_payouts(2, false);
        let due = take_due(&mut s, 10, 1);
        assert_eq!(in_flight_unknown(&mut s), 1);
        let id = due[0].0;
        assert_eq!(s.play.payout(id).unwrap().state, PayoutState::Unknown);
        // A late settle (it cannot come after an upgrade, but still) changes nothing.
        settle(&mut s, id, Ok(None), 11);
        assert_eq!(s.play.payout(id).unwrap().state, PayoutState::Unknown);
        let rest = take_due(&mut s, 1 << 60, 10);
        assert_eq!(rest.len(), 1);
        assert_ne!(rest[0].0, id, "the unknown one is never taken");
        assert!(matches!(resolve(&mut s, &Caller::user(p(50)), id, true, 12), Err(GameError::Unauthorized(_))));
        assert!(matches!(resolve(&mut s, &admin(), rest[0].0, true, 12), Err(GameError::InvalidInput(_))));
        assert_eq!(resolve(&mut s, &admin(), 99, true, 12), Err(GameError::PayoutNotFound(99)));
        let resent = resolve(&mut s, &admin(), id, false, 12).unwrap();
        assert_eq!(resent.state, PayoutState::Pending);
        let again = take_due(&mut s, 12, 10);
        assert_eq!(again.len(), 1);
        settle(&mut s, id, Ok(Some(5)), 13);
        assert_eq!(s.play.payout(id).unwrap().state, PayoutState::Paid { at_ns: 13, ledger_block: Some(5) });
    }

    #[test]
    fn without_a_ledger_a_ledger_payout_waits() {
        let mut s = with_payouts(1, true);
        let settings = GameSettings { cycles_ledger: None, ..s.play.settings() };
        set_settings(&mut s, settings);
        assert!(take_due(&mut s, 10, 5).is_empty());
        let p1 = s.play.payout(1).unwrap();
        assert_eq!((p1.state, p1.attempts), (PayoutState::Pending, 1));
        assert!(p1.last_error.unwrap().contains("no cycles ledger"));
    }

    type Script = std::rc::Rc<std::cell::RefCell<Vec<Result<Option<u128>, Rejected>>>>;

    /// A fake IC: answers from a script, in order; a spawned task runs at once.
    #[derive(Clone, Default)]
    struct Fake {
        answers: Script,
        sent: std::rc::Rc<std::cell::RefCell<Vec<(candid::Principal, u128)>>>,
    }

    impl PayoutRuntime for Fake {
        fn time(&self) -> u64 {
            50
        }
        fn spawn(&self, f: impl std::future::Future<Output = ()> + 'static) {
            block_on(f)
        }
        async fn deposit_cycles(&self, canister: candid::Principal, cycles: u128) -> Result<(), Rejected> {
            self.sent.borrow_mut().push((canister, cycles));
            self.answers.borrow_mut().remove(0).map(|_| ())
        }
        async fn ledger_deposit(
            &self,
            l: candid::Principal,
            _: DepositArgs,
            cycles: u128,
        ) -> Result<Option<u128>, Rejected> {
            self.sent.borrow_mut().push((l, cycles));
            self.answers.borrow_mut().remove(0)
        }
    }

    #[test]
    fn a_round_sends_and_settles_each_due_payout() {
        let s = with_payouts(3, false);
        crate::state::replace_state_for_tests(s);
        let fake = Fake::default();
        *fake.answers.borrow_mut() = vec![Ok(None), Err(Rejected("no".into())), Ok(None)];
        assert_eq!(run_round(&fake), 3);
        assert_eq!(fake.sent.borrow().len(), 3);
        let states: Vec<_> = crate::state::read_state(|s| (1..=3).map(|id| s.play.payout(id).unwrap().state).collect());
        assert!(matches!(states[0], PayoutState::Paid { .. }) && matches!(states[2], PayoutState::Paid { .. }));
        assert_eq!(states[1], PayoutState::Pending);
        assert_eq!(run_round(&fake), 0, "the rejected one waits for its back-off");
    }
}
