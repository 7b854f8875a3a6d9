//! Challenges: adding and closing them, handing them out fairly, and the
//! sweep that closes them at their deadline and expires stale hand-outs.

use mainer_types::game::{Challenge, ChallengeId, ChallengeStatus, CloseReason, GameError, GameResult, NewChallenge};
use mainer_types::game_play::ChallengeOrigin;
use mainer_types::{Page, PageRequest};

use crate::access::{Caller, require_admin, require_registered};
use crate::paging::page_of;
use crate::state::{ChallengeBody, ChallengeMeta, State, assemble};

/// Longest question accepted, in bytes.
pub const MAX_QUESTION_BYTES: usize = 4 * 1024;
/// A hand-out not answered within this time stops counting towards its
/// challenge's load, so a dead mAIner does not skew the spread for ever.
pub const HANDOUT_TTL_NS: u64 = 60 * 60 * 1_000_000_000;
/// How many overdue deadlines and hand-outs an ordinary call handles on its
/// way; the timer handles the rest, so no call's cost depends on a backlog.
pub const LAZY_SWEEP_LIMIT: usize = 16;

fn invalid(why: impl Into<String>) -> GameError {
    GameError::InvalidInput(why.into())
}

pub fn validate(new: &NewChallenge, now_ns: u64) -> GameResult<()> {
    if new.question.trim().is_empty() {
        return Err(invalid("the question is empty"));
    }
    if new.question.len() > MAX_QUESTION_BYTES {
        return Err(invalid(format!("the question is longer than {MAX_QUESTION_BYTES} bytes")));
    }
    let s = &new.settings;
    if s.max_tokens == 0 {
        return Err(invalid("max_tokens must be positive"));
    }
    if !s.temperature.is_finite() || s.temperature < 0.0 {
        return Err(invalid("temperature must be a finite number >= 0"));
    }
    if let Some(p) = s.top_p
        && !(p.is_finite() && p > 0.0 && p <= 1.0)
    {
        return Err(invalid("top_p must be in (0, 1]"));
    }
    if new.max_submissions == Some(0) {
        return Err(invalid("max_submissions must be positive"));
    }
    if let Some(d) = new.deadline_ns
        && d <= now_ns
    {
        return Err(invalid("the deadline has passed already"));
    }
    Ok(())
}

pub fn add(state: &mut State, caller: &Caller, new: NewChallenge, now_ns: u64) -> GameResult<Challenge> {
    require_admin(state.config(), caller)?;
    validate(&new, now_ns)?;
    let challenge = insert_new(state, new, now_ns);
    let scored_to_close = state.play.settings().scored_to_close;
    let origin = ChallengeOrigin {
        challenge_id: challenge.id,
        author: caller.principal,
        topic_id: None,
        evidence: None,
        scored_to_close,
    };
    crate::finalize::track(state, origin);
    Ok(challenge)
}

/// Stores a validated new challenge, open, under the next id.
pub(crate) fn insert_new(state: &mut State, new: NewChallenge, now_ns: u64) -> Challenge {
    let id = state.next_challenge_id();
    let body = ChallengeBody { question: new.question, settings: new.settings, created_at_ns: now_ns };
    let meta = ChallengeMeta {
        status: ChallengeStatus::Open,
        submissions: 0,
        handed_out: 0,
        max_submissions: new.max_submissions,
        deadline_ns: new.deadline_ns,
    };
    state.insert_challenge(id, body.clone(), meta.clone());
    assemble(id, body, meta)
}

/// Closes an open challenge; closing a closed one changes nothing.
pub fn close(state: &mut State, caller: &Caller, id: ChallengeId, now_ns: u64) -> GameResult<Challenge> {
    require_admin(state.config(), caller)?;
    let meta = refresh(state, id, now_ns).ok_or(GameError::ChallengeNotFound(id))?;
    if meta.is_open() {
        close_meta(state, id, meta, CloseReason::ClosedByAdmin, now_ns);
    }
    Ok(state.challenge(id).expect("the challenge exists"))
}

pub(crate) fn close_meta(
    state: &mut State,
    id: ChallengeId,
    old: ChallengeMeta,
    reason: CloseReason,
    at_ns: u64,
) -> ChallengeMeta {
    let mut new = old.clone();
    new.status = ChallengeStatus::Closed { reason, at_ns };
    state.save_meta(id, Some(&old), new.clone());
    new
}

/// The challenge's meta, closed first if its deadline has passed.
pub(crate) fn refresh(state: &mut State, id: ChallengeId, now_ns: u64) -> Option<ChallengeMeta> {
    let meta = state.meta(id)?;
    Some(match meta.overdue(now_ns) {
        Some(deadline) => close_meta(state, id, meta, CloseReason::DeadlinePassed, deadline),
        None => meta,
    })
}

/// Closes up to `limit` challenges whose deadline has passed and expires
/// up to `limit` stale hand-outs; returns how many of each.
pub fn sweep(state: &mut State, now_ns: u64, limit: usize) -> (usize, usize) {
    let mut closed = 0;
    while closed < limit {
        match state.deadlines.first() {
            Some((deadline, id)) if deadline <= now_ns => {
                refresh(state, id, now_ns);
                // Closing removed the entry; removing it again makes sure the
                // sweep moves on even if the index ever disagreed.
                state.deadlines.remove(&(deadline, id));
                closed += 1;
            }
            _ => break,
        }
    }
    let mut expired = 0;
    while expired < limit {
        match state.handout_expiry.first() {
            Some((at, mainer)) if at.saturating_add(HANDOUT_TTL_NS) <= now_ns => {
                if state.handout(&mainer).is_some_and(|(_, given_at)| given_at == at) {
                    state.drop_handout(&mainer);
                }
                state.handout_expiry.remove(&(at, mainer));
                expired += 1;
            }
            _ => break,
        }
    }
    (closed, expired)
}

/// Hands the caller an open challenge it has not answered: the one it was
/// given before if that is still open (so asking again is idempotent),
/// otherwise the open challenge with the least load (submissions plus
/// outstanding hand-outs), the oldest on a tie.
pub fn take(state: &mut State, caller: &Caller, now_ns: u64) -> GameResult<Challenge> {
    require_registered(state, caller)?;
    sweep(state, now_ns, LAZY_SWEEP_LIMIT);
    let me = caller.principal;
    if let Some((id, at)) = state.handout(&me) {
        let fresh = at.saturating_add(HANDOUT_TTL_NS) > now_ns;
        if let Some(meta) = refresh(state, id, now_ns)
            && fresh
            && meta.is_open()
            && !state.submissions.contains_key(&(id, me))
        {
            return Ok(state.challenge(id).expect("the challenge exists"));
        }
        state.drop_handout(&me);
    }
    loop {
        // Skips the open challenges this mAIner answered or gave back, and
        // those whose quota is taken by submissions and outstanding hand-outs.
        let candidate = state.open_by_load().find(|id| {
            !state.submissions.contains_key(&(*id, me))
                && !state.released.contains(&(me, *id))
                && state.meta(*id).is_some_and(|m| m.has_room())
        });
        let Some(id) = candidate else {
            return Err(GameError::NoOpenChallenge);
        };
        if refresh(state, id, now_ns).expect("an indexed challenge exists").is_open() {
            state.give_handout(me, id, now_ns);
            return Ok(state.challenge(id).expect("the challenge exists"));
        }
        // Its deadline had passed; refresh closed it, so look again.
    }
}

/// The caller will not answer challenge `id` (its work failed for good):
/// its hand-out is dropped, freeing the place for another mAIner, and it is
/// not handed this challenge again. Giving back twice changes nothing.
pub fn release(state: &mut State, caller: &Caller, id: ChallengeId) -> GameResult<()> {
    require_registered(state, caller)?;
    let me = caller.principal;
    if state.meta(id).is_none() {
        return Err(GameError::ChallengeNotFound(id));
    }
    if state.submissions.contains_key(&(id, me)) {
        return Err(GameError::AlreadySubmitted(id));
    }
    if state.handout(&me).is_some_and(|(h, _)| h == id) {
        state.drop_handout(&me);
    }
    state.released.insert((me, id));
    Ok(())
}

pub fn is_open(state: &State, id: ChallengeId, now_ns: u64) -> GameResult<bool> {
    let meta = state.meta(id).ok_or(GameError::ChallengeNotFound(id))?;
    Ok(meta.status_at(now_ns) == ChallengeStatus::Open)
}

/// One challenge as stored (admins and registered mAIners): a ShareService
/// checks its agents' requests against it.
pub fn get(state: &State, caller: &Caller, id: ChallengeId, now_ns: u64) -> GameResult<Challenge> {
    if !crate::access::is_admin(state.config(), caller) {
        require_registered(state, caller)?;
    }
    let meta = state.meta(id).ok_or(GameError::ChallengeNotFound(id))?;
    let challenge = state.challenge(id).ok_or(GameError::ChallengeNotFound(id))?;
    Ok(Challenge { status: meta.status_at(now_ns), ..challenge })
}

/// Admins only, oldest first; an overdue challenge shows as closed.
pub fn list(state: &State, caller: &Caller, page: PageRequest, now_ns: u64) -> GameResult<Page<Challenge>> {
    require_admin(state.config(), caller)?;
    let keys = state.challenge_meta.keys();
    Ok(page_of(keys, state.challenge_meta.len(), page, |id| {
        let meta = state.meta(id).expect("a listed challenge exists");
        let body = state.challenge_bodies.get(&id).expect("a listed challenge exists").0;
        Challenge { status: meta.status_at(now_ns), ..assemble(id, body, meta) }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use mainer_types::game::GenerationSettings;

    #[test]
    fn only_admins_add_and_close_challenges() {
        let mut s = state();
        let stranger = Caller::user(p(50));
        assert!(matches!(add(&mut s, &stranger, question("q"), 1), Err(GameError::Unauthorized(_))));
        let c = add(&mut s, &admin(), question("q"), 1).unwrap();
        assert_eq!((c.id, c.status.clone(), c.created_at_ns), (1, ChallengeStatus::Open, 1));
        assert!(matches!(close(&mut s, &stranger, c.id, 2), Err(GameError::Unauthorized(_))));
        let closed = close(&mut s, &admin(), c.id, 2).unwrap();
        assert_eq!(closed.status, ChallengeStatus::Closed { reason: CloseReason::ClosedByAdmin, at_ns: 2 });
        assert_eq!(close(&mut s, &admin(), c.id, 3).unwrap(), closed, "closing twice changes nothing");
        assert_eq!(close(&mut s, &admin(), 9, 3), Err(GameError::ChallengeNotFound(9)));
        assert_eq!(add(&mut s, &admin(), question("next"), 4).unwrap().id, 2);
    }

    #[test]
    fn new_challenges_are_validated() {
        let mut s = state();
        let bad = |f: &dyn Fn(&mut NewChallenge)| {
            let mut n = question("what is 2+2?");
            f(&mut n);
            n
        };
        for n in [
            bad(&|n| n.question = "  ".into()),
            bad(&|n| n.question = "x".repeat(MAX_QUESTION_BYTES + 1)),
            bad(&|n| n.settings.max_tokens = 0),
            bad(&|n| n.settings.temperature = -0.1),
            bad(&|n| n.settings.temperature = f32::NAN),
            bad(&|n| n.settings.temperature = f32::INFINITY),
            bad(&|n| n.settings.top_p = Some(0.0)),
            bad(&|n| n.settings.top_p = Some(1.5)),
            bad(&|n| n.max_submissions = Some(0)),
            bad(&|n| n.deadline_ns = Some(100)),
            bad(&|n| n.deadline_ns = Some(99)),
        ] {
            assert!(matches!(add(&mut s, &admin(), n.clone(), 100), Err(GameError::InvalidInput(_))), "{n:?}");
        }
        let ok = bad(&|n| {
            n.question = "x".repeat(MAX_QUESTION_BYTES);
            n.deadline_ns = Some(101);
            n.max_submissions = Some(1);
            n.settings = GenerationSettings { top_p: Some(1.0), temperature: 0.7, ..Default::default() };
        });
        add(&mut s, &admin(), ok, 100).unwrap();
        assert_eq!(s.counts().challenges, 1);
    }

    #[test]
    fn unregistered_callers_take_nothing() {
        let mut s = state();
        add(&mut s, &admin(), question("q"), 1).unwrap();
        assert_eq!(take(&mut s, &Caller::user(p(10)), 2), Err(GameError::NotRegistered(p(10))));
        // Admins are not mAIners either.
        assert!(matches!(take(&mut s, &admin(), 2), Err(GameError::NotRegistered(_))));
    }

    #[test]
    fn hand_outs_spread_over_the_least_loaded_challenges() {
        let mut s = state();
        for q in ["a", "b", "c"] {
            add(&mut s, &admin(), question(q), 1).unwrap();
        }
        for n in 10..16 {
            register_mainer(&mut s, p(n));
        }
        let given: Vec<_> = (10..16).map(|n| take(&mut s, &Caller::user(p(n)), 2).unwrap().id).collect();
        assert_eq!(given, vec![1, 2, 3, 1, 2, 3], "round robin while loads are equal");
        // Submissions count too: answers to 1 make 2 and 3 the lighter ones.
        submit_answer(&mut s, p(10), 1, 3).unwrap();
        submit_answer(&mut s, p(13), 1, 3).unwrap();
        register_mainer(&mut s, p(20));
        register_mainer(&mut s, p(21));
        assert_eq!(
            take(&mut s, &Caller::user(p(20)), 4).unwrap().id,
            1,
            "1: two submissions, 2 and 3: two hand-outs, 1 is older"
        );
        assert_eq!(take(&mut s, &Caller::user(p(21)), 4).unwrap().id, 2);
    }

    #[test]
    fn asking_again_before_answering_returns_the_same_challenge() {
        let mut s = state();
        add(&mut s, &admin(), question("a"), 1).unwrap();
        add(&mut s, &admin(), question("b"), 1).unwrap();
        register_mainer(&mut s, p(10));
        let me = Caller::user(p(10));
        let first = take(&mut s, &me, 2).unwrap();
        for t in 3..6 {
            assert_eq!(take(&mut s, &me, t).unwrap(), first);
        }
        assert_eq!(s.meta(first.id).unwrap().handed_out, 1, "repeats are not counted twice");
        // Once it is answered, the next one comes.
        submit_answer(&mut s, p(10), first.id, 6).unwrap();
        assert_eq!(s.meta(first.id).unwrap().handed_out, 0);
        let second = take(&mut s, &me, 7).unwrap();
        assert_ne!(second.id, first.id);
        submit_answer(&mut s, p(10), second.id, 8).unwrap();
        assert_eq!(take(&mut s, &me, 9), Err(GameError::NoOpenChallenge), "it answered everything");
    }

    #[test]
    fn a_closed_hand_out_is_replaced() {
        let mut s = state();
        add(&mut s, &admin(), question("a"), 1).unwrap();
        add(&mut s, &admin(), question("b"), 1).unwrap();
        register_mainer(&mut s, p(10));
        let me = Caller::user(p(10));
        let first = take(&mut s, &me, 2).unwrap();
        close(&mut s, &admin(), first.id, 3).unwrap();
        assert_ne!(take(&mut s, &me, 4).unwrap().id, first.id);
    }

    #[test]
    fn stale_hand_outs_expire_and_stop_weighing() {
        let mut s = state();
        add(&mut s, &admin(), question("a"), 1).unwrap();
        add(&mut s, &admin(), question("b"), 1).unwrap();
        register_mainer(&mut s, p(10));
        register_mainer(&mut s, p(11));
        assert_eq!(take(&mut s, &Caller::user(p(10)), 10).unwrap().id, 1);
        // p(10) went silent; an hour later its hand-out no longer counts.
        let later = 10 + HANDOUT_TTL_NS;
        assert_eq!(sweep(&mut s, later, 100), (0, 1));
        assert_eq!(s.meta(1).unwrap().handed_out, 0);
        assert!(s.handout(&p(10)).is_none() && s.handout_expiry.is_empty());
        assert_eq!(take(&mut s, &Caller::user(p(11)), later).unwrap().id, 1);
    }

    #[test]
    fn a_given_back_challenge_frees_its_place_and_is_not_handed_out_again() {
        let mut s = state();
        add(&mut s, &admin(), question("a"), 1).unwrap();
        add(&mut s, &admin(), question("b"), 1).unwrap();
        register_mainer(&mut s, p(10));
        let me = Caller::user(p(10));
        assert_eq!(take(&mut s, &me, 2).unwrap().id, 1);
        assert_eq!(release(&mut s, &Caller::user(p(11)), 1), Err(GameError::NotRegistered(p(11))));
        assert_eq!(release(&mut s, &me, 9), Err(GameError::ChallengeNotFound(9)));
        release(&mut s, &me, 1).unwrap();
        release(&mut s, &me, 1).unwrap();
        assert_eq!(s.meta(1).unwrap().handed_out, 0, "its place is free");
        assert_eq!(take(&mut s, &me, 3).unwrap().id, 2, "not the given-back one, though it is the oldest");
        submit_answer(&mut s, p(10), 2, 4).unwrap();
        assert_eq!(take(&mut s, &me, 5), Err(GameError::NoOpenChallenge));
        assert_eq!(release(&mut s, &me, 2), Err(GameError::AlreadySubmitted(2)));
    }

    #[test]
    fn hand_outs_respect_the_quota() {
        let mut s = state();
        let mut one = question("takes one answer");
        one.max_submissions = Some(1);
        add(&mut s, &admin(), one, 1).unwrap();
        let mut two = question("takes two");
        two.max_submissions = Some(2);
        add(&mut s, &admin(), two, 1).unwrap();
        for n in 10..14 {
            register_mainer(&mut s, p(n));
        }
        let given: Vec<_> = (10..14).map(|n| take(&mut s, &Caller::user(p(n)), 2).map(|c| c.id)).collect();
        assert_eq!(given, vec![Ok(1), Ok(2), Ok(2), Err(GameError::NoOpenChallenge)], "3 places, 4 mAIners");
        // An expired hand-out frees its place.
        let later = 2 + HANDOUT_TTL_NS;
        assert_eq!(take(&mut s, &Caller::user(p(13)), later).unwrap().id, 1);
        // A submission takes the place of its hand-out; the quota closes the challenge.
        submit_answer(&mut s, p(13), 1, later + 1).unwrap();
        assert!(!s.meta(1).unwrap().is_open());
    }

    #[test]
    fn challenges_close_at_their_deadline() {
        let mut s = state();
        let mut q = question("a");
        q.deadline_ns = Some(1_000);
        let c = add(&mut s, &admin(), q.clone(), 1).unwrap();
        let c2 = add(&mut s, &admin(), q, 1).unwrap();
        register_mainer(&mut s, p(10));
        assert!(is_open(&s, c.id, 999).unwrap());
        // Queries see it closed at once; the state changes on the next update or sweep.
        assert!(!is_open(&s, c.id, 1_000).unwrap());
        assert_eq!(s.open_challenges.len(), 2);
        assert_eq!(sweep(&mut s, 1_000, 1), (1, 0), "the sweep is bounded");
        assert_eq!(s.open_challenges.len(), 1);
        let closed = s.meta(c.id).unwrap().status;
        assert_eq!(closed, ChallengeStatus::Closed { reason: CloseReason::DeadlinePassed, at_ns: 1_000 });
        // An update closes what the sweep left over.
        assert_eq!(take(&mut s, &Caller::user(p(10)), 1_001), Err(GameError::NoOpenChallenge));
        assert!(!s.meta(c2.id).unwrap().is_open());
        assert!(s.deadlines.is_empty() && s.open_challenges.is_empty() && s.open_by_load().next().is_none());
        assert_eq!(is_open(&s, 77, 1), Err(GameError::ChallengeNotFound(77)));
    }

    #[test]
    fn challenges_are_listed_in_pages_for_admins() {
        let mut s = state();
        for n in 0..7 {
            add(&mut s, &admin(), question(&format!("q{n}")), 1).unwrap();
        }
        assert!(matches!(list(&s, &Caller::user(p(1)), PageRequest::first(2), 1), Err(GameError::Unauthorized(_))));
        let page = list(&s, &admin(), PageRequest { offset: 5, limit: 10 }, 1).unwrap();
        assert_eq!(page.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![6, 7]);
        assert_eq!((page.total, page.next_offset), (7, None));
        let page = list(&s, &admin(), PageRequest { offset: 0, limit: 3 }, 1).unwrap();
        assert_eq!((page.items.len(), page.next_offset), (3, Some(3)));
    }
}
