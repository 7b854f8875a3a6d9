//! Closing and finalizing: a challenge closes when it has `scored_to_close`
//! scored answers (besides its deadline, `max_submissions` and admins), and
//! is finalized once it is closed and every submission it took is judged
//! (scored or unscorable). Finalizing ranks the scored answers (score, then
//! the earlier submission), takes the challenge's reward from the pool,
//! splits it (`rewards.rs`), records every ranked answer with its reward,
//! updates the mAIners' and owners' totals, and creates one payout per
//! rewarded answer. It runs once per challenge: `Tally::finalized` is written
//! in the same message.

use candid::Principal;
use mainer_types::game::{ChallengeId, CloseReason};
use mainer_types::game_play::{ChallengeOrigin, ChallengeResult, Payout, PayoutState, RankedAnswer};

use crate::challenges::{close_meta, refresh};
use crate::play_records::{AwardRecord, ScoreEntry, Tally, Totals};
use crate::rewards::{rank_key, split};
use crate::state::{Candid, State, min_principal};

/// Starts judging a new challenge.
pub(crate) fn track(state: &mut State, origin: ChallengeOrigin) {
    let id = origin.challenge_id;
    let tally = Tally { scored: 0, unscorable: 0, scored_to_close: origin.scored_to_close, finalized: false };
    state.play.tallies.insert(id, tally);
    state.play.origins.insert(id, Candid(origin));
    state.play.unfinalized.insert(id);
}

/// One more submission of challenge `id` is judged.
pub(crate) fn on_judged(state: &mut State, id: ChallengeId, scored: bool, now_ns: u64) {
    let Some(mut t) = state.play.tallies.get(&id) else { return };
    if scored {
        t.scored += 1;
    } else {
        t.unscorable += 1;
    }
    state.play.tallies.insert(id, t.clone());
    if scored
        && t.scored >= t.scored_to_close
        && let Some(meta) = refresh(state, id, now_ns)
        && meta.is_open()
    {
        close_meta(state, id, meta, CloseReason::EnoughScores, now_ns);
    }
    try_finalize(state, id, now_ns);
}

/// Finalizes challenge `id` if it is closed and fully judged; returns whether it did.
pub fn try_finalize(state: &mut State, id: ChallengeId, now_ns: u64) -> bool {
    let Some(tally) = state.play.tallies.get(&id).filter(|t| !t.finalized) else { return false };
    let Some(meta) = refresh(state, id, now_ns) else { return false };
    if meta.is_open() || tally.judged() < meta.submissions {
        return false;
    }
    finalize(state, id, tally, now_ns);
    true
}

fn add_totals(old: Option<Totals>, owner: Principal, rank: u32, reward: u128) -> Totals {
    let mut t = old.unwrap_or_default();
    t.owner = Some(owner);
    t.earned += reward;
    t.wins += (rank == 1) as u64;
    t.podiums += (rank <= 3) as u64;
    t.answers += 1;
    t
}

fn finalize(state: &mut State, id: ChallengeId, mut tally: Tally, now_ns: u64) {
    let range = (id, min_principal())..(id.saturating_add(1), min_principal());
    let mut ranked: Vec<(Principal, ScoreEntry)> =
        state.play.scores.range(range).map(|e| (e.key().1, e.value())).collect();
    ranked.sort_by_key(|(_, e)| rank_key(e.score, e.seq));
    let settings = state.play.settings();
    let reward = if ranked.is_empty() { 0 } else { crate::pool::take(state, settings.reward_per_challenge) };
    let rewards = split(reward, &settings.split, ranked.len());
    let mut winners = vec![];
    for (i, ((mainer, e), reward)) in ranked.into_iter().zip(rewards).enumerate() {
        let rank = i as u32 + 1;
        let award = AwardRecord { mainer, owner: e.owner, score: e.score, submitted_at_ns: e.submitted_at_ns, reward };
        if rank <= 3 {
            winners.push(ranked_answer(id, rank, &award));
        }
        state.play.ranking.insert((id, rank), award);
        state.play.awards_by_mainer.insert((mainer, id), rank);
        state.play.awards_by_owner.insert((e.owner, id, rank));
        let old = state.play.mainer_totals.get(&mainer);
        if let Some(o) = &old {
            state.play.leaderboard.remove(&(u128::MAX - o.earned, mainer));
        }
        let new = add_totals(old, e.owner, rank, reward);
        state.play.leaderboard.insert((u128::MAX - new.earned, mainer));
        state.play.mainer_totals.insert(mainer, new);
        let owner_totals = add_totals(state.play.owner_totals.get(&e.owner), e.owner, rank, reward);
        state.play.owner_totals.insert(e.owner, owner_totals);
        if reward > 0 {
            let payout_id = state.play.payouts.last_key_value().map_or(1, |(id, _)| id + 1);
            let payout = Payout {
                id: payout_id,
                challenge_id: id,
                mainer,
                owner: e.owner,
                amount: reward,
                to: crate::pool::payout_to(state, &mainer),
                state: PayoutState::Pending,
                attempts: 0,
                last_error: None,
                next_attempt_ns: now_ns,
                created_at_ns: now_ns,
            };
            state.play.save_payout(None, payout);
        }
    }
    let result = ChallengeResult {
        challenge_id: id,
        finalized_at_ns: now_ns,
        reward,
        scored: tally.scored,
        unscorable: tally.unscorable,
        winners,
    };
    state.play.results.insert(id, Candid(result));
    state.play.results_by_time.insert((now_ns, id));
    tally.finalized = true;
    state.play.tallies.insert(id, tally);
    state.play.unfinalized.remove(&id);
}

pub(crate) fn ranked_answer(challenge_id: ChallengeId, rank: u32, a: &AwardRecord) -> RankedAnswer {
    RankedAnswer {
        challenge_id,
        rank,
        mainer: a.mainer,
        owner: a.owner,
        score: a.score,
        submitted_at_ns: a.submitted_at_ns,
        reward: a.reward,
    }
}

/// The timer's part: expires up to `limit` leases and finalizes the
/// challenges that are ready (up to `limit` looked at).
pub fn sweep(state: &mut State, now_ns: u64, limit: usize) -> usize {
    crate::judging::expire(state, now_ns, limit);
    let ids: Vec<ChallengeId> = state.play.unfinalized.iter().take(limit).collect();
    ids.into_iter().filter(|id| try_finalize(state, *id, now_ns)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Caller;
    use crate::judging::{next, report};
    use crate::testing::*;
    use mainer_types::game::{ChallengeStatus, GameError};
    use mainer_types::game_play::{GameSettings, LlmEvidence, PayoutTo, RewardPool, ScoreOutcome, ScoreReport};

    fn score_next(s: &mut State, judge: Principal, score: Option<u32>, now: u64) -> Principal {
        let task = next(s, &Caller::user(judge), now).unwrap();
        let outcome = match score {
            Some(score) => ScoreOutcome::Scored { score },
            None => ScoreOutcome::Unscorable { raw_output: "?".into() },
        };
        let evidence: LlmEvidence = llm_evidence();
        report(s, &Caller::user(judge), ScoreReport { lease_id: task.lease_id, outcome, evidence }, now).unwrap();
        task.mainer
    }

    fn game(settings: GameSettings, pool: u128) -> State {
        let mut s = state();
        set_settings(&mut s, settings);
        if pool > 0 {
            crate::pool::fund(&mut s, &admin(), pool).unwrap();
        }
        make_judge(&mut s, p(20));
        s
    }

    #[test]
    fn a_challenge_closes_at_n_scores_and_is_finalized_when_all_its_answers_are_judged() {
        let settings = GameSettings {
            scored_to_close: 2,
            max_judging_attempts: 1,
            reward_per_challenge: 1_000,
            ..GameSettings::default()
        };
        let mut s = game(settings, 10_000);
        crate::challenges::add(&mut s, &admin(), question("q"), 1).unwrap();
        for n in 0..4u8 {
            register_mainer(&mut s, p(10 + n));
            submit_answer(&mut s, p(10 + n), 1, 2 + n as u64).unwrap();
        }
        score_next(&mut s, p(20), Some(3), 10);
        score_next(&mut s, p(20), None, 11);
        assert!(s.meta(1).unwrap().is_open());
        score_next(&mut s, p(20), Some(5), 12);
        assert_eq!(s.meta(1).unwrap().status, ChallengeStatus::Closed { reason: CloseReason::EnoughScores, at_ns: 12 });
        register_mainer(&mut s, p(19));
        assert_eq!(submit_answer(&mut s, p(19), 1, 13), Err(GameError::ChallengeClosed(1)));
        assert!(!s.play.results.contains_key(&1), "one answer still waits for its judge");
        score_next(&mut s, p(20), Some(5), 14);
        let r = s.play.results.get(&1).unwrap().0;
        assert_eq!((r.scored, r.unscorable, r.reward, r.finalized_at_ns), (3, 1, 1_000, 14));
        // Ties: p(12) and p(13) both scored 5; p(12) submitted first.
        let order: Vec<_> = r.winners.iter().map(|w| (w.mainer, w.score)).collect();
        assert_eq!(order, vec![(p(12), 5), (p(13), 5), (p(10), 3)]);
        // 1,000: places 350, 150, 50; participants 450 / 3 = 150 each.
        assert_eq!(r.winners.iter().map(|w| w.reward).collect::<Vec<_>>(), vec![500, 300, 200]);
        assert_eq!(s.play.pool(), RewardPool { available: 9_000, owed: 1_000, paid: 0, funded: 10_000 });
        assert_eq!(s.play.payouts.len(), 3);
        assert_eq!(s.play.payout_queue.len(), 3);
        assert!(!try_finalize(&mut s, 1, 20), "once");
        assert_eq!(s.play.payouts.len(), 3);
        assert_eq!(s.play.mainer_totals.get(&p(12)).unwrap().wins, 1);
        assert_eq!(s.play.owner_totals.get(&owner_of(p(10))).unwrap().earned, 200);
    }

    #[test]
    fn a_challenge_closed_by_its_deadline_is_finalized_by_the_sweep() {
        let settings = GameSettings { reward_per_challenge: 100, ..GameSettings::default() };
        let mut s = game(settings, 150);
        let mut q = question("q");
        q.deadline_ns = Some(100);
        crate::challenges::add(&mut s, &admin(), q.clone(), 1).unwrap();
        crate::challenges::add(&mut s, &admin(), q, 1).unwrap();
        register_mainer(&mut s, p(10));
        crate::pool::set_payout_to(&mut s, &admin(), p(10), PayoutTo::OwnerLedger { subaccount: None }).unwrap();
        submit_answer(&mut s, p(10), 1, 2).unwrap();
        score_next(&mut s, p(20), Some(1), 3);
        assert_eq!(sweep(&mut s, 99, 10), 0);
        assert_eq!(sweep(&mut s, 100, 10), 2, "both closed; the one without answers takes no reward");
        assert_eq!(s.play.results.get(&1).unwrap().0.reward, 100, "a lone answer takes it all");
        assert_eq!(s.play.results.get(&2).unwrap().0.reward, 0);
        let payout = s.play.payout(1).unwrap();
        assert_eq!((payout.amount, payout.to, payout.mainer), (100, PayoutTo::OwnerLedger { subaccount: None }, p(10)));
        assert_eq!(s.play.pool().available, 50);
        assert!(s.play.unfinalized.is_empty());
    }

    #[test]
    fn a_short_pool_pays_what_it_has_and_an_empty_one_nothing() {
        let settings = GameSettings { reward_per_challenge: 100, scored_to_close: 1, ..GameSettings::default() };
        let mut s = game(settings, 30);
        for c in 1..=2 {
            crate::challenges::add(&mut s, &admin(), question("q"), 1).unwrap();
            register_mainer(&mut s, p(10 + c));
            submit_answer(&mut s, p(10 + c), c as u64, 2).unwrap();
            score_next(&mut s, p(20), Some(4), 3);
        }
        assert_eq!(s.play.results.get(&1).unwrap().0.reward, 30);
        assert_eq!(s.play.results.get(&2).unwrap().0.reward, 0);
        assert_eq!(s.play.payouts.len(), 1, "no payout of nothing");
        assert_eq!(s.play.mainer_totals.get(&p(12)).unwrap().answers, 1, "still ranked");
    }
}
