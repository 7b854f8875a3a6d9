//! Queries over finalized challenges: a challenge's result and ranking, a
//! mAIner's and an owner's results and earnings, and the leaderboard (all
//! time, or over a period). Results are public (anyone may see who won
//! what); a mAIner's or owner's own listing is for them and admins.

use std::collections::BTreeMap;

use candid::Principal;
use mainer_types::game::{ChallengeId, GameError, GameResult};
use mainer_types::game_play::{ChallengeResult, Earnings, LeaderboardEntry, LeaderboardRequest, RankedAnswer};
use mainer_types::{Page, PageRequest};

use crate::access::{Caller, is_admin, require_admin_or_mainer};
use crate::finalize::ranked_answer;
use crate::paging::page_of;
use crate::play_records::Totals;
use crate::state::State;

/// Most ranked answers a period's leaderboard adds up in one query; a longer
/// period is refused (ask for shorter ones).
pub const MAX_PERIOD_ANSWERS: usize = 50_000;

fn earnings(t: Totals) -> Earnings {
    Earnings { earned: t.earned, wins: t.wins, podiums: t.podiums, answers: t.answers }
}

/// Anyone.
pub fn result(state: &State, id: ChallengeId) -> GameResult<ChallengeResult> {
    match state.play.results.get(&id) {
        Some(r) => Ok(r.0),
        None if state.meta(id).is_some() => Err(GameError::NotFinalized(id)),
        None => Err(GameError::ChallengeNotFound(id)),
    }
}

/// Anyone: a finalized challenge's answers in rank order.
pub fn ranking(state: &State, id: ChallengeId, page: PageRequest) -> GameResult<Page<RankedAnswer>> {
    let r = result(state, id)?;
    let entries = state.play.ranking.range((id, 0)..=(id, u32::MAX));
    Ok(page_of(entries, r.scored, page, |e| ranked_answer(id, e.key().1, &e.value())))
}

/// Admins, the mAIner and its owner: its ranked answers, oldest challenge first.
pub fn mainer_results(
    state: &State,
    caller: &Caller,
    mainer: Principal,
    page: PageRequest,
) -> GameResult<Page<RankedAnswer>> {
    require_admin_or_mainer(state, caller, &mainer)?;
    let total = state.play.mainer_totals.get(&mainer).map_or(0, |t| t.answers);
    let keys = state.play.awards_by_mainer.range((mainer, 0)..=(mainer, u64::MAX));
    Ok(page_of(keys, total, page, |e| {
        let (id, rank) = (e.key().1, e.value());
        ranked_answer(id, rank, &state.play.ranking.get(&(id, rank)).expect("an award is ranked"))
    }))
}

/// Admins, the mAIner and its owner.
pub fn mainer_earnings(state: &State, caller: &Caller, mainer: Principal) -> GameResult<Earnings> {
    require_admin_or_mainer(state, caller, &mainer)?;
    Ok(earnings(state.play.mainer_totals.get(&mainer).unwrap_or_default()))
}

fn require_admin_or_self(state: &State, caller: &Caller, owner: &Principal) -> GameResult<()> {
    if is_admin(state.config(), caller) || caller.principal == *owner {
        Ok(())
    } else {
        Err(GameError::Unauthorized("admins and the owner only".into()))
    }
}

/// Admins and the owner: the ranked answers of all its mAIners, oldest challenge first.
pub fn owner_results(
    state: &State,
    caller: &Caller,
    owner: Principal,
    page: PageRequest,
) -> GameResult<Page<RankedAnswer>> {
    require_admin_or_self(state, caller, &owner)?;
    let total = state.play.owner_totals.get(&owner).map_or(0, |t| t.answers);
    let keys = state.play.awards_by_owner.range((owner, 0, 0)..=(owner, u64::MAX, u32::MAX));
    Ok(page_of(keys, total, page, |(_, id, rank)| {
        ranked_answer(id, rank, &state.play.ranking.get(&(id, rank)).expect("an award is ranked"))
    }))
}

/// Admins and the owner.
pub fn owner_earnings(state: &State, caller: &Caller, owner: Principal) -> GameResult<Earnings> {
    require_admin_or_self(state, caller, &owner)?;
    Ok(earnings(state.play.owner_totals.get(&owner).unwrap_or_default()))
}

/// Anyone: mAIners by cycles earned (then principal). All time from the
/// kept index; a period `[from, to)` adds up the challenges finalized in it.
pub fn leaderboard(state: &State, req: LeaderboardRequest) -> GameResult<Page<LeaderboardEntry>> {
    let entry = |mainer: Principal, t: Totals| LeaderboardEntry {
        mainer,
        owner: t.owner.unwrap_or(Principal::anonymous()),
        earned: t.earned,
        wins: t.wins,
        podiums: t.podiums,
        answers: t.answers,
    };
    let Some((from, to)) = req.period else {
        let total = state.play.leaderboard.len();
        return Ok(page_of(state.play.leaderboard.iter(), total, req.page, |(_, m)| {
            entry(m, state.play.mainer_totals.get(&m).expect("a listed mAIner has totals"))
        }));
    };
    if from >= to {
        return Err(GameError::InvalidInput("the period is empty".into()));
    }
    let mut totals: BTreeMap<Principal, Totals> = BTreeMap::new();
    let mut seen = 0usize;
    for (_, id) in state.play.results_by_time.range((from, 0)..(to, 0)) {
        for e in state.play.ranking.range((id, 0)..=(id, u32::MAX)) {
            seen += 1;
            if seen > MAX_PERIOD_ANSWERS {
                return Err(GameError::InvalidInput(format!(
                    "the period holds more than {MAX_PERIOD_ANSWERS} ranked answers: ask for a shorter one"
                )));
            }
            let (rank, a) = (e.key().1, e.value());
            let t = totals.entry(a.mainer).or_default();
            t.owner = Some(a.owner);
            t.earned += a.reward;
            t.wins += (rank == 1) as u64;
            t.podiums += (rank <= 3) as u64;
            t.answers += 1;
        }
    }
    let mut board: Vec<_> = totals.into_iter().map(|(m, t)| entry(m, t)).collect();
    board.sort_by(|a, b| b.earned.cmp(&a.earned).then(a.mainer.cmp(&b.mainer)));
    let total = board.len() as u64;
    Ok(Page::collect(board.into_iter(), total, req.page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judging::{next, report};
    use crate::testing::*;
    use mainer_types::game_play::{GameSettings, ScoreOutcome, ScoreReport};

    /// Challenge `c` (added at `t`) answered by `mainers` in order, scored
    /// `scores`, closed by its scores and finalized at `t + 10`.
    fn play(s: &mut State, mainers: &[u8], scores: &[u32], t: u64) -> ChallengeId {
        let id = crate::challenges::add(s, &admin(), question("q"), t).unwrap().id;
        for (i, m) in mainers.iter().enumerate() {
            if s.mainer(&p(*m)).is_none() {
                register_mainer(s, p(*m));
            }
            submit_answer(s, p(*m), id, t + 1 + i as u64).unwrap();
        }
        for score in scores {
            let task = next(s, &Caller::user(p(20)), t + 10).unwrap();
            let r = ScoreReport {
                lease_id: task.lease_id,
                outcome: ScoreOutcome::Scored { score: *score },
                evidence: llm_evidence(),
            };
            report(s, &Caller::user(p(20)), r, t + 10).unwrap();
        }
        assert!(s.play.results.contains_key(&id));
        id
    }

    fn game() -> State {
        let mut s = state();
        set_settings(
            &mut s,
            GameSettings { scored_to_close: 3, reward_per_challenge: 1_000, ..GameSettings::default() },
        );
        crate::pool::fund(&mut s, &admin(), 1_000_000).unwrap();
        make_judge(&mut s, p(20));
        s
    }

    #[test]
    fn results_rankings_and_earnings_are_paged_and_guarded() {
        let mut s = game();
        let a = play(&mut s, &[10, 11, 12], &[2, 5, 3], 100);
        let b = play(&mut s, &[12, 11, 10], &[4, 4, 1], 200);
        assert_eq!(result(&s, 99), Err(GameError::ChallengeNotFound(99)));
        crate::challenges::add(&mut s, &admin(), question("open"), 300).unwrap();
        assert_eq!(result(&s, 3), Err(GameError::NotFinalized(3)));
        let page = ranking(&s, a, PageRequest::first(2)).unwrap();
        assert_eq!(page.items.iter().map(|r| (r.rank, r.mainer)).collect::<Vec<_>>(), vec![(1, p(11)), (2, p(12))]);
        assert_eq!((page.total, page.next_offset), (3, Some(2)));
        // p(12) was second in a and first in b (a tie with p(11), which submitted later).
        let mine = mainer_results(&s, &Caller::user(owner_of(p(12))), p(12), PageRequest::first(10)).unwrap();
        assert_eq!(mine.items.iter().map(|r| (r.challenge_id, r.rank)).collect::<Vec<_>>(), vec![(a, 2), (b, 1)]);
        let e = mainer_earnings(&s, &Caller::user(p(12)), p(12)).unwrap();
        assert_eq!((e.wins, e.podiums, e.answers, e.earned), (1, 2, 2, 300 + 500));
        let stranger = Caller::user(p(50));
        assert!(matches!(
            mainer_results(&s, &stranger, p(12), PageRequest::first(10)),
            Err(GameError::Unauthorized(_))
        ));
        assert!(matches!(mainer_earnings(&s, &stranger, p(12)), Err(GameError::Unauthorized(_))));
        let owner = owner_of(p(10));
        let theirs = owner_results(&s, &Caller::user(owner), owner, PageRequest::first(10)).unwrap();
        assert_eq!(theirs.total, 2);
        assert_eq!(owner_earnings(&s, &admin(), owner).unwrap().earned, 200 + 200);
        assert!(matches!(owner_results(&s, &stranger, owner, PageRequest::first(10)), Err(GameError::Unauthorized(_))));
        assert!(matches!(owner_earnings(&s, &Caller::user(p(10)), owner), Err(GameError::Unauthorized(_))));
    }

    #[test]
    fn the_leaderboard_ranks_by_earnings_all_time_and_over_a_period() {
        let mut s = game();
        play(&mut s, &[10, 11, 12], &[2, 5, 3], 100);
        play(&mut s, &[12, 11, 10], &[4, 4, 1], 200);
        let all = leaderboard(&s, LeaderboardRequest { period: None, page: PageRequest::first(10) }).unwrap();
        let board: Vec<_> = all.items.iter().map(|e| (e.mainer, e.earned)).collect();
        // A tie in earnings goes by principal.
        assert_eq!(board, vec![(p(11), 500 + 300), (p(12), 300 + 500), (p(10), 200 + 200)]);
        assert_eq!(all.items.iter().map(|e| e.earned).sum::<u128>(), 2_000);
        // Only the second challenge (finalized at 210).
        let period =
            leaderboard(&s, LeaderboardRequest { period: Some((201, 300)), page: PageRequest::first(10) }).unwrap();
        assert_eq!(period.items[0].mainer, p(12));
        assert_eq!(
            period.items.iter().map(|e| (e.earned, e.answers)).collect::<Vec<_>>(),
            vec![(500, 1), (300, 1), (200, 1)]
        );
        assert!(leaderboard(&s, LeaderboardRequest { period: Some((5, 5)), page: PageRequest::first(1) }).is_err());
    }
}
