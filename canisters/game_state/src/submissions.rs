//! Submissions: one answer per mAIner per challenge, stored with evidence
//! whose answer hash the game state computes itself.

use std::ops::Bound;

use candid::Principal;
use mainer_types::game::{
    ChallengeId, ChallengeStatus, ClaimedEvidence, CloseReason, Evidence, GameError, GameResult, Submission,
    SubmissionStatus, SubmitRequest,
};
use mainer_types::{Page, PageRequest};
use sha2::{Digest, Sha256};

use crate::access::{Caller, require_admin, require_admin_or_mainer};
use crate::challenges::refresh;
use crate::paging::page_of;
use crate::state::{CyclesTally, State, min_principal};

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn validate_evidence(e: &ClaimedEvidence) -> GameResult<()> {
    if !is_sha256_hex(&e.prompt_sha256) {
        return Err(GameError::InvalidInput("prompt_sha256 must be 64 hex digits".into()));
    }
    if let Some(m) = &e.model_sha256
        && !is_sha256_hex(m)
    {
        return Err(GameError::InvalidInput("model_sha256 must be 64 hex digits".into()));
    }
    if e.llm_canister == Principal::anonymous() {
        return Err(GameError::InvalidInput("llm_canister is the anonymous principal".into()));
    }
    Ok(())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn submit(state: &mut State, caller: &Caller, req: SubmitRequest, now_ns: u64) -> GameResult<Submission> {
    let me = caller.principal;
    // The record itself, not `require_registered`'s view: it is rewritten below.
    let mut mainer = state.mainers.get(&me).ok_or(GameError::NotRegistered(me))?;
    crate::modules::require_known_module(state, &me, now_ns)?;
    let max = state.config().max_answer_bytes;
    let bytes = req.answer.len() as u64;
    if bytes > max {
        return Err(GameError::AnswerTooLarge { bytes, max });
    }
    if req.answer.trim().is_empty() {
        return Err(GameError::InvalidInput("the answer is empty".into()));
    }
    validate_evidence(&req.evidence)?;
    let id = req.challenge_id;
    let meta = refresh(state, id, now_ns).ok_or(GameError::ChallengeNotFound(id))?;
    if !meta.is_open() {
        let answered = state.submissions.contains_key(&(id, me));
        return Err(if answered { GameError::AlreadySubmitted(id) } else { GameError::ChallengeClosed(id) });
    }

    let claimed = req.evidence;
    let submission = Submission {
        challenge_id: id,
        mainer: me,
        owner: mainer.owner,
        role: mainer.role,
        evidence: Evidence {
            prompt_sha256: claimed.prompt_sha256.to_ascii_lowercase(),
            answer_sha256: sha256_hex(req.answer.as_bytes()),
            llm_canister: claimed.llm_canister,
            model_sha256: claimed.model_sha256.map(|m| m.to_ascii_lowercase()),
            llm_calls: claimed.llm_calls,
            prompt_tokens: claimed.prompt_tokens,
            generated_tokens: claimed.generated_tokens,
        },
        answer: req.answer,
        status: SubmissionStatus::Submitted,
        submitted_at_ns: now_ns,
    };
    if !state.add_submission(&submission) {
        return Err(GameError::AlreadySubmitted(id));
    }

    // One write of the challenge's meta covers the count, the answered
    // hand-out and closing at the quota.
    let mut new = meta.clone();
    new.submissions += 1;
    if state.handout(&me).is_some_and(|(h, _)| h == id) {
        state.take_handout_entry(&me);
        new.handed_out = new.handed_out.saturating_sub(1);
    }
    if new.max_submissions.is_some_and(|m| new.submissions >= m) {
        new.status = ChallengeStatus::Closed { reason: CloseReason::EnoughSubmissions, at_ns: now_ns };
    }
    state.save_meta(id, Some(&meta), new);

    // Judged in arrival order (see judging.rs).
    crate::judging::enqueue(state, id, me, mainer.owner, now_ns);
    mainer.submissions += 1;
    mainer.last_submission_ns = Some(now_ns);
    state.mainers.insert(me, mainer);
    if let Some(spent) = claimed.cycles_spent {
        state.mainer_cycles.insert(me, CyclesTally { spent, reported_at_ns: now_ns });
    }
    Ok(submission)
}

/// Admins only, in mAIner order.
pub fn by_challenge(
    state: &State,
    caller: &Caller,
    id: ChallengeId,
    page: PageRequest,
) -> GameResult<Page<Submission>> {
    require_admin(state.config(), caller)?;
    let meta = state.meta(id).ok_or(GameError::ChallengeNotFound(id))?;
    // Every key of this challenge: from (id, smallest principal) up to the next id.
    let range = (Bound::Included((id, min_principal())), Bound::Excluded((id.saturating_add(1), min_principal())));
    let keys = state.submissions.keys_range(range);
    Ok(page_of(keys, meta.submissions, page, |key| state.submission(key.0, key.1).expect("the key exists")))
}

/// Admins, the mAIner itself and its owner; oldest challenge first.
pub fn by_mainer(state: &State, caller: &Caller, mainer: Principal, page: PageRequest) -> GameResult<Page<Submission>> {
    require_admin_or_mainer(state, caller, &mainer)?;
    let keys = || state.submissions_by_mainer.range((mainer, 0)..=(mainer, u64::MAX));
    // The registration keeps the count; only an unregistered mAIner's is counted.
    let total = match state.mainer(&mainer) {
        Some(info) => info.submissions,
        None => keys().count() as u64,
    };
    Ok(page_of(keys(), total, page, |(_, id)| state.submission(id, mainer).expect("indexed submissions exist")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenges::{add, take};
    use crate::testing::*;

    #[test]
    fn a_submission_is_stored_with_computed_evidence() {
        let mut s = state();
        let c = add(&mut s, &admin(), question("q"), 1).unwrap();
        register_mainer(&mut s, p(10));
        let req = SubmitRequest {
            challenge_id: c.id,
            answer: "four".into(),
            evidence: ClaimedEvidence { model_sha256: Some("AB".repeat(32)), ..evidence() },
        };
        let sub = submit(&mut s, &Caller::user(p(10)), req, 7).unwrap();
        assert_eq!(sub.evidence.answer_sha256, sha256_hex(b"four"));
        assert_eq!(sub.evidence.model_sha256, Some("ab".repeat(32)), "hex is stored lower case");
        assert_eq!(
            (sub.owner, sub.role, sub.status.clone(), sub.submitted_at_ns),
            (owner_of(p(10)), mainer_types::MainerRole::Own, SubmissionStatus::Submitted, 7)
        );
        assert_eq!(s.submission(c.id, p(10)).unwrap(), sub);
        let info = s.mainer(&p(10)).unwrap();
        assert_eq!((info.submissions, info.last_submission_ns), (1, Some(7)));
        assert_eq!(s.meta(c.id).unwrap().submissions, 1);
    }

    #[test]
    fn the_answer_hash_is_sha256_of_the_answer_bytes() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn one_submission_per_mainer_and_challenge() {
        let mut s = state();
        let c = add(&mut s, &admin(), question("q"), 1).unwrap();
        register_mainer(&mut s, p(10));
        submit_answer(&mut s, p(10), c.id, 2).unwrap();
        assert_eq!(submit_answer(&mut s, p(10), c.id, 3), Err(GameError::AlreadySubmitted(c.id)));
        assert_eq!(s.meta(c.id).unwrap().submissions, 1);
    }

    #[test]
    fn only_registered_mainers_submit_to_existing_open_challenges() {
        let mut s = state();
        let c = add(&mut s, &admin(), question("q"), 1).unwrap();
        assert_eq!(submit_answer(&mut s, p(10), c.id, 2), Err(GameError::NotRegistered(p(10))));
        register_mainer(&mut s, p(10));
        assert_eq!(submit_answer(&mut s, p(10), 42, 2), Err(GameError::ChallengeNotFound(42)));
        crate::challenges::close(&mut s, &admin(), c.id, 3).unwrap();
        assert_eq!(submit_answer(&mut s, p(10), c.id, 4), Err(GameError::ChallengeClosed(c.id)));
        assert!(s.submissions.is_empty());
    }

    #[test]
    fn oversize_and_empty_answers_are_refused() {
        let mut s = state();
        let c = add(&mut s, &admin(), question("q"), 1).unwrap();
        register_mainer(&mut s, p(10));
        let max = s.config().max_answer_bytes;
        let mut req = SubmitRequest { challenge_id: c.id, answer: "x".repeat(max as usize + 1), evidence: evidence() };
        let err = submit(&mut s, &Caller::user(p(10)), req.clone(), 2).unwrap_err();
        assert_eq!(err, GameError::AnswerTooLarge { bytes: max + 1, max });
        req.answer = " \n".into();
        assert!(matches!(submit(&mut s, &Caller::user(p(10)), req.clone(), 2), Err(GameError::InvalidInput(_))));
        req.answer = "x".repeat(max as usize);
        submit(&mut s, &Caller::user(p(10)), req, 2).unwrap();
    }

    #[test]
    fn evidence_is_validated() {
        let bad = [
            ClaimedEvidence { prompt_sha256: "ab".into(), ..evidence() },
            ClaimedEvidence { prompt_sha256: "g".repeat(64), ..evidence() },
            ClaimedEvidence { prompt_sha256: "a".repeat(65), ..evidence() },
            ClaimedEvidence { model_sha256: Some("".into()), ..evidence() },
            ClaimedEvidence { model_sha256: Some("z".repeat(64)), ..evidence() },
            ClaimedEvidence { llm_canister: Principal::anonymous(), ..evidence() },
        ];
        let mut s = state();
        let c = add(&mut s, &admin(), question("q"), 1).unwrap();
        register_mainer(&mut s, p(10));
        for e in bad {
            let req = SubmitRequest { challenge_id: c.id, answer: "a".into(), evidence: e.clone() };
            assert!(matches!(submit(&mut s, &Caller::user(p(10)), req, 2), Err(GameError::InvalidInput(_))), "{e:?}");
        }
        assert!(s.submissions.is_empty());
    }

    #[test]
    fn a_challenge_closes_when_it_has_enough_submissions() {
        let mut s = state();
        let mut q = question("q");
        q.max_submissions = Some(2);
        let c = add(&mut s, &admin(), q, 1).unwrap();
        for n in 10..13 {
            register_mainer(&mut s, p(n));
        }
        assert_eq!(take(&mut s, &Caller::user(p(10)), 2).unwrap().id, c.id);
        submit_answer(&mut s, p(10), c.id, 3).unwrap();
        assert!(s.meta(c.id).unwrap().is_open());
        submit_answer(&mut s, p(11), c.id, 4).unwrap();
        let meta = s.meta(c.id).unwrap();
        assert_eq!(meta.status, ChallengeStatus::Closed { reason: CloseReason::EnoughSubmissions, at_ns: 4 });
        assert_eq!((meta.submissions, meta.handed_out), (2, 0));
        assert!(s.open_challenges.is_empty() && s.open_by_load().next().is_none());
        assert_eq!(submit_answer(&mut s, p(12), c.id, 5), Err(GameError::ChallengeClosed(c.id)));
    }

    #[test]
    fn a_submission_after_the_deadline_is_refused_and_closes_the_challenge() {
        let mut s = state();
        let mut q = question("q");
        q.deadline_ns = Some(100);
        let c = add(&mut s, &admin(), q, 1).unwrap();
        register_mainer(&mut s, p(10));
        submit_answer(&mut s, p(10), c.id, 99).unwrap();
        register_mainer(&mut s, p(11));
        assert_eq!(submit_answer(&mut s, p(11), c.id, 100), Err(GameError::ChallengeClosed(c.id)));
        let status = s.meta(c.id).unwrap().status;
        assert_eq!(status, ChallengeStatus::Closed { reason: CloseReason::DeadlinePassed, at_ns: 100 });
        assert!(s.deadlines.is_empty());
    }

    #[test]
    fn submissions_are_listed_in_pages_by_challenge_and_by_mainer() {
        let mut s = state();
        let ids: Vec<_> = (0..4).map(|n| add(&mut s, &admin(), question(&format!("q{n}")), 1).unwrap().id).collect();
        for n in 10..17 {
            register_mainer(&mut s, p(n));
            for id in &ids {
                submit_answer(&mut s, p(n), *id, 2).unwrap();
            }
        }
        // Walk challenge 2's submissions three at a time.
        let mut got = vec![];
        let mut req = PageRequest::first(3);
        loop {
            let page = by_challenge(&s, &admin(), ids[1], req).unwrap();
            assert_eq!(page.total, 7);
            assert!(page.items.iter().all(|x| x.challenge_id == ids[1]));
            got.extend(page.items.iter().map(|x| x.mainer));
            match page.next_offset {
                Some(o) => req.offset = o,
                None => break,
            }
        }
        let mut expected: Vec<_> = (10..17).map(p).collect();
        expected.sort();
        assert_eq!(got, expected);

        let page = by_mainer(&s, &Caller::user(p(12)), p(12), PageRequest { offset: 1, limit: 2 }).unwrap();
        assert_eq!(page.items.iter().map(|x| x.challenge_id).collect::<Vec<_>>(), vec![ids[1], ids[2]]);
        assert_eq!((page.total, page.next_offset), (4, Some(3)));
        let page = by_mainer(&s, &Caller::user(owner_of(p(12))), p(12), PageRequest { offset: 3, limit: 2 }).unwrap();
        assert_eq!((page.items.len(), page.next_offset), (1, None));

        // Strangers and other mAIners see nothing.
        assert!(matches!(
            by_mainer(&s, &Caller::user(p(13)), p(12), PageRequest::first(5)),
            Err(GameError::Unauthorized(_))
        ));
        assert!(matches!(
            by_challenge(&s, &Caller::user(p(12)), ids[0], PageRequest::first(5)),
            Err(GameError::Unauthorized(_))
        ));
        assert_eq!(by_challenge(&s, &admin(), 99, PageRequest::first(5)), Err(GameError::ChallengeNotFound(99)));

        // An unregistered mAIner's history stays readable by admins, and a
        // new registration counts it again.
        crate::mainers::unregister(&mut s, &admin(), p(12)).unwrap();
        assert_eq!(by_mainer(&s, &admin(), p(12), PageRequest::first(10)).unwrap().total, 4);
        register_mainer(&mut s, p(12));
        let info = s.mainer(&p(12)).unwrap();
        assert_eq!((info.submissions, info.last_submission_ns), (4, Some(2)));
    }
}
