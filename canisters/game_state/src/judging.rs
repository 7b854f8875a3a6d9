//! The judging queue: every submission to a challenge of this release waits
//! in arrival order; a registered judge leases the next one for
//! `lease_seconds` and reports a score (or that its LLM gave none) with its
//! evidence. A judge holds one lease at a time and asking again returns it,
//! so a judge that restarts picks up where it was. A lease that times out
//! sends the submission back to the queue; only a live lease's report is
//! taken, so no submission is ever scored twice. After `max_judging_attempts`
//! leases without a score a submission is recorded unscorable, with the last
//! raw output.

use candid::Principal;
use mainer_types::game::{ChallengeId, ClaimedEvidence, GameError, GameResult, SubmissionStatus};
use mainer_types::game_play::{
    GameAgentKind, JudgeTask, Judgement, LeaseId, LlmEvidence, ScoreAccepted, ScoreOutcome, ScoreReport,
};
use mainer_types::{Page, PageRequest};

use crate::access::{Caller, require_admin};
use crate::agents;
use crate::paging::page_of;
use crate::play_records::{LeaseRecord, LeaseState, ScoreEntry, ToJudge};
use crate::state::{Candid, State, min_principal};

/// How much of an unreadable judge output is kept, in bytes.
pub const MAX_RAW_OUTPUT_BYTES: usize = 2 * 1024;
/// Leases an ordinary call expires on its way; the timer does the rest.
const LAZY_EXPIRY_LIMIT: usize = 16;
const NS_PER_SECOND: u64 = 1_000_000_000;

/// The same checks as a mAIner's evidence.
pub fn validate_llm_evidence(e: &LlmEvidence) -> GameResult<()> {
    crate::submissions::validate_evidence(&ClaimedEvidence {
        prompt_sha256: e.prompt_sha256.clone(),
        llm_canister: e.llm_canister,
        model_sha256: e.model_sha256.clone(),
        llm_calls: e.llm_calls,
        prompt_tokens: e.prompt_tokens,
        generated_tokens: e.generated_tokens,
        cycles_spent: None,
    })
}

fn normalized(mut e: LlmEvidence) -> LlmEvidence {
    e.prompt_sha256.make_ascii_lowercase();
    if let Some(m) = e.model_sha256.as_mut() {
        m.make_ascii_lowercase();
    }
    e
}

/// Queues a new submission for judging, if its challenge is judged (every
/// challenge added since the game came; not older ones).
pub(crate) fn enqueue(
    state: &mut State,
    challenge_id: ChallengeId,
    mainer: Principal,
    owner: Principal,
    submitted_at_ns: u64,
) {
    if !state.play.tallies.contains_key(&challenge_id) {
        return;
    }
    let Some(r) = state.submissions.get(&(challenge_id, mainer)) else { return };
    let item = ToJudge { seq: r.seq, challenge_id, mainer, owner, submitted_at_ns, attempts: 0 };
    state.play.pending.insert(r.seq, item);
}

fn set_status(state: &mut State, item: &ToJudge, status: SubmissionStatus) {
    let key = (item.challenge_id, item.mainer);
    if let Some(mut r) = state.submissions.get(&key) {
        r.status = status;
        state.submissions.insert(key, r);
    }
}

fn task(state: &State, id: LeaseId, lease: &LeaseRecord) -> JudgeTask {
    let item = &lease.item;
    let question = state.challenge_bodies.get(&item.challenge_id).map(|b| b.0.question).unwrap_or_default();
    let submission = state.submission(item.challenge_id, item.mainer).expect("a queued submission exists");
    let settings = state.play.settings();
    JudgeTask {
        lease_id: id,
        challenge_id: item.challenge_id,
        mainer: item.mainer,
        question,
        answer: submission.answer,
        answer_sha256: submission.evidence.answer_sha256,
        score_min: settings.score_min,
        score_max: settings.score_max,
        expires_at_ns: lease.expires_ns,
        attempt: item.attempts,
    }
}

/// Judges only: the caller's live lease, or a new one on the oldest queued submission.
pub fn next(state: &mut State, caller: &Caller, now_ns: u64) -> GameResult<JudgeTask> {
    agents::require(state, caller, GameAgentKind::Judge)?;
    expire(state, now_ns, LAZY_EXPIRY_LIMIT);
    let judge = caller.principal;
    if let Some(id) = state.play.lease_by_judge.get(&judge)
        && let Some(lease) = state.play.leases.get(&id)
        && lease.state == LeaseState::Live
    {
        return Ok(task(state, id, &lease));
    }
    let (_, mut item) = state.play.pending.pop_first().ok_or(GameError::NothingToJudge)?;
    item.attempts += 1;
    let id = state.play.leases.last_key_value().map_or(1, |(id, _)| id + 1);
    let expires_ns = now_ns.saturating_add(state.play.settings().lease_seconds * NS_PER_SECOND);
    let lease = LeaseRecord { item: item.clone(), judge, expires_ns, state: LeaseState::Live };
    state.play.leases.insert(id, lease.clone());
    state.play.lease_by_judge.insert(judge, id);
    state.play.lease_expiry.insert((expires_ns, id));
    set_status(state, &item, SubmissionStatus::Judging);
    Ok(task(state, id, &lease))
}

/// Ends a live lease (reported or expired): it no longer blocks its judge.
fn end_lease(state: &mut State, id: LeaseId, mut lease: LeaseRecord, how: LeaseState) {
    state.play.lease_expiry.remove(&(lease.expires_ns, id));
    if state.play.lease_by_judge.get(&lease.judge) == Some(id) {
        state.play.lease_by_judge.remove(&lease.judge);
    }
    lease.state = how;
    state.play.leases.insert(id, lease);
}

/// The submission is back in the queue for another lease, or, after the
/// last attempt, recorded unscorable.
fn retry_or_give_up(
    state: &mut State,
    id: LeaseId,
    lease: &LeaseRecord,
    raw_output: String,
    evidence: Option<LlmEvidence>,
    now_ns: u64,
) -> ScoreAccepted {
    let item = lease.item.clone();
    if item.attempts < state.play.settings().max_judging_attempts {
        set_status(state, &item, SubmissionStatus::Submitted);
        state.play.pending.insert(item.seq, item.clone());
        return ScoreAccepted::Requeued { attempts: item.attempts };
    }
    let judgement = Judgement {
        challenge_id: item.challenge_id,
        mainer: item.mainer,
        judge: lease.judge,
        lease_id: id,
        outcome: ScoreOutcome::Unscorable { raw_output },
        evidence,
        attempts: item.attempts,
        judged_at_ns: now_ns,
    };
    state.play.judgements.insert((item.challenge_id, item.mainer), Candid(judgement.clone()));
    set_status(state, &item, SubmissionStatus::Unscorable);
    crate::finalize::on_judged(state, item.challenge_id, false, now_ns);
    ScoreAccepted::Final(Box::new(judgement))
}

fn clipped(mut s: String) -> String {
    if s.len() > MAX_RAW_OUTPUT_BYTES {
        let mut end = MAX_RAW_OUTPUT_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Judges only: the outcome of the caller's live lease. Sending the same
/// report again (a lost reply) returns what the first did.
pub fn report(state: &mut State, caller: &Caller, r: ScoreReport, now_ns: u64) -> GameResult<ScoreAccepted> {
    agents::require(state, caller, GameAgentKind::Judge)?;
    let judge = caller.principal;
    let lease =
        state.play.leases.get(&r.lease_id).filter(|l| l.judge == judge).ok_or(GameError::LeaseNotFound(r.lease_id))?;
    let key = (lease.item.challenge_id, lease.item.mainer);
    match lease.state {
        LeaseState::Done => {
            return Ok(match state.play.judgements.get(&key) {
                Some(j) if j.0.lease_id == r.lease_id => ScoreAccepted::Final(Box::new(j.0)),
                _ => ScoreAccepted::Requeued { attempts: lease.item.attempts },
            });
        }
        LeaseState::Expired => return Err(GameError::LeaseNotFound(r.lease_id)),
        LeaseState::Live if lease.expires_ns <= now_ns => {
            expire(state, now_ns, LAZY_EXPIRY_LIMIT);
            return Err(GameError::LeaseNotFound(r.lease_id));
        }
        LeaseState::Live => {}
    }
    validate_llm_evidence(&r.evidence)?;
    let settings = state.play.settings();
    let evidence = normalized(r.evidence);
    let accepted = match r.outcome {
        ScoreOutcome::Scored { score } => {
            if !(settings.score_min..=settings.score_max).contains(&score) {
                return Err(GameError::ScoreOutOfRange { score, min: settings.score_min, max: settings.score_max });
            }
            end_lease(state, r.lease_id, lease.clone(), LeaseState::Done);
            let item = &lease.item;
            let entry = ScoreEntry { seq: item.seq, score, owner: item.owner, submitted_at_ns: item.submitted_at_ns };
            state.play.scores.insert(key, entry);
            let judgement = Judgement {
                challenge_id: item.challenge_id,
                mainer: item.mainer,
                judge,
                lease_id: r.lease_id,
                outcome: ScoreOutcome::Scored { score },
                evidence: Some(evidence),
                attempts: item.attempts,
                judged_at_ns: now_ns,
            };
            state.play.judgements.insert(key, Candid(judgement.clone()));
            set_status(state, item, SubmissionStatus::Judged { score });
            crate::finalize::on_judged(state, item.challenge_id, true, now_ns);
            ScoreAccepted::Final(Box::new(judgement))
        }
        ScoreOutcome::Unscorable { raw_output } => {
            end_lease(state, r.lease_id, lease.clone(), LeaseState::Done);
            retry_or_give_up(state, r.lease_id, &lease, clipped(raw_output), Some(evidence), now_ns)
        }
    };
    agents::count_done(state, &judge);
    Ok(accepted)
}

/// Expires up to `limit` leases whose time is up; returns how many.
pub fn expire(state: &mut State, now_ns: u64, limit: usize) -> usize {
    let mut n = 0;
    while n < limit {
        let Some((at, id)) = state.play.lease_expiry.first() else { break };
        if at > now_ns {
            break;
        }
        match state.play.leases.get(&id).filter(|l| l.state == LeaseState::Live) {
            Some(lease) => {
                end_lease(state, id, lease.clone(), LeaseState::Expired);
                retry_or_give_up(state, id, &lease, String::new(), None, now_ns);
            }
            None => {
                state.play.lease_expiry.remove(&(at, id));
            }
        }
        n += 1;
    }
    n
}

/// Admins only: a challenge's judgements with their evidence, in mAIner order.
pub fn by_challenge(state: &State, caller: &Caller, id: ChallengeId, page: PageRequest) -> GameResult<Page<Judgement>> {
    require_admin(state.config(), caller)?;
    state.meta(id).ok_or(GameError::ChallengeNotFound(id))?;
    let range = (id, min_principal())..(id.saturating_add(1), min_principal());
    let total = state.play.tallies.get(&id).map_or(0, |t| t.judged());
    Ok(page_of(state.play.judgements.values_range(range), total, page, |j| j.0))
}

/// Submissions waiting for a judge, and leases out.
pub fn queue_counts(state: &State) -> (u64, u64) {
    (state.play.pending.len(), state.play.lease_expiry.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use mainer_types::game_play::GameSettings;

    fn scored(lease_id: LeaseId, score: u32) -> ScoreReport {
        ScoreReport { lease_id, outcome: ScoreOutcome::Scored { score }, evidence: llm_evidence() }
    }

    fn unreadable(lease_id: LeaseId, raw: &str) -> ScoreReport {
        ScoreReport { lease_id, outcome: ScoreOutcome::Unscorable { raw_output: raw.into() }, evidence: llm_evidence() }
    }

    /// A challenge with answers from mAIners 10.. (in that order) and judges 20 and 21.
    fn judged_game(answers: u8) -> State {
        let mut s = state();
        crate::challenges::add(&mut s, &admin(), question("q"), 1).unwrap();
        for n in 0..answers {
            register_mainer(&mut s, p(10 + n));
            submit_answer(&mut s, p(10 + n), 1, 2 + n as u64).unwrap();
        }
        make_judge(&mut s, p(20));
        make_judge(&mut s, p(21));
        s
    }

    #[test]
    fn judges_lease_submissions_in_arrival_order_and_never_the_same_one() {
        let mut s = judged_game(3);
        assert_eq!(next(&mut s, &Caller::user(p(50)), 10), Err(GameError::NotAJudge(p(50))));
        assert_eq!(next(&mut s, &Caller::user(p(10)), 10), Err(GameError::NotAJudge(p(10))), "mAIners are not judges");
        let a = next(&mut s, &Caller::user(p(20)), 10).unwrap();
        let b = next(&mut s, &Caller::user(p(21)), 10).unwrap();
        assert_eq!((a.mainer, b.mainer), (p(10), p(11)));
        assert_eq!((a.question.as_str(), a.answer.clone(), a.attempt), ("q", format!("answer of {}", p(10)), 1));
        assert_eq!((a.score_min, a.score_max), (1, 5));
        assert_eq!(next(&mut s, &Caller::user(p(20)), 11).unwrap(), a, "asking again returns the same lease");
        assert_eq!(s.submission(1, p(10)).unwrap().status, SubmissionStatus::Judging);
        // A judge cannot report another's lease.
        assert_eq!(
            report(&mut s, &Caller::user(p(21)), scored(a.lease_id, 3), 12),
            Err(GameError::LeaseNotFound(a.lease_id))
        );
        let done = report(&mut s, &Caller::user(p(20)), scored(a.lease_id, 4), 12).unwrap();
        let ScoreAccepted::Final(j) = &done else { panic!("{done:?}") };
        assert_eq!((j.outcome.clone(), j.judge, j.attempts), (ScoreOutcome::Scored { score: 4 }, p(20), 1));
        assert_eq!(
            report(&mut s, &Caller::user(p(20)), scored(a.lease_id, 1), 13).unwrap(),
            done,
            "a repeat changes nothing"
        );
        assert_eq!(s.submission(1, p(10)).unwrap().status, SubmissionStatus::Judged { score: 4 });
        let c = next(&mut s, &Caller::user(p(20)), 14).unwrap();
        assert_eq!(c.mainer, p(12));
        assert_eq!(next(&mut s, &Caller::user(p(20)), 14).unwrap(), c);
        report(&mut s, &Caller::user(p(20)), scored(c.lease_id, 5), 15).unwrap();
        assert_eq!(next(&mut s, &Caller::user(p(20)), 16), Err(GameError::NothingToJudge));
        assert_eq!(s.play.agents.get(&p(20)).unwrap().done, 2);
        assert_eq!(queue_counts(&s), (0, 1), "b is still out");
    }

    #[test]
    fn an_expired_lease_goes_back_and_its_late_report_is_refused() {
        let mut s = judged_game(1);
        let lease_ns = s.play.settings().lease_seconds * NS_PER_SECOND;
        let a = next(&mut s, &Caller::user(p(20)), 10).unwrap();
        assert_eq!(a.expires_at_ns, 10 + lease_ns);
        // Judge 20 dies; at its lease's end judge 21 gets the submission.
        assert_eq!(next(&mut s, &Caller::user(p(21)), 11), Err(GameError::NothingToJudge));
        let b = next(&mut s, &Caller::user(p(21)), 10 + lease_ns).unwrap();
        assert_eq!((b.mainer, b.attempt), (p(10), 2));
        assert_ne!(b.lease_id, a.lease_id);
        // Judge 20 comes back late: refused, and it gets a new task, not the old one.
        assert_eq!(
            report(&mut s, &Caller::user(p(20)), scored(a.lease_id, 5), 10 + lease_ns + 1),
            Err(GameError::LeaseNotFound(a.lease_id))
        );
        assert_eq!(next(&mut s, &Caller::user(p(20)), 10 + lease_ns + 1), Err(GameError::NothingToJudge));
        report(&mut s, &Caller::user(p(21)), scored(b.lease_id, 2), 10 + lease_ns + 2).unwrap();
        assert_eq!(s.play.scores.len(), 1);
        assert_eq!(s.play.tallies.get(&1).unwrap().scored, 1);
        // A report after its own lease's time is refused even before any sweep.
        let mut s = judged_game(1);
        let a = next(&mut s, &Caller::user(p(20)), 10).unwrap();
        assert_eq!(
            report(&mut s, &Caller::user(p(20)), scored(a.lease_id, 5), 10 + lease_ns),
            Err(GameError::LeaseNotFound(a.lease_id))
        );
        assert_eq!(s.play.pending.len(), 1, "and the submission is back in the queue");
    }

    #[test]
    fn unreadable_output_is_retried_then_recorded_unscorable_with_the_raw_output() {
        let mut s = judged_game(1);
        set_settings(&mut s, GameSettings { max_judging_attempts: 2, ..GameSettings::default() });
        let j = Caller::user(p(20));
        let a = next(&mut s, &j, 10).unwrap();
        assert_eq!(
            report(&mut s, &j, unreadable(a.lease_id, "great!"), 11).unwrap(),
            ScoreAccepted::Requeued { attempts: 1 }
        );
        assert_eq!(s.submission(1, p(10)).unwrap().status, SubmissionStatus::Submitted);
        let b = next(&mut s, &j, 12).unwrap();
        assert_eq!(b.attempt, 2);
        let long = "é".repeat(MAX_RAW_OUTPUT_BYTES);
        let done = report(&mut s, &j, unreadable(b.lease_id, &long), 13).unwrap();
        let ScoreAccepted::Final(judgement) = done else { panic!() };
        let ScoreOutcome::Unscorable { raw_output } = &judgement.outcome else { panic!() };
        assert!(raw_output.len() <= MAX_RAW_OUTPUT_BYTES && raw_output.starts_with('é'));
        assert_eq!(s.submission(1, p(10)).unwrap().status, SubmissionStatus::Unscorable);
        let t = s.play.tallies.get(&1).unwrap();
        assert_eq!((t.scored, t.unscorable), (0, 1));
        assert_eq!(next(&mut s, &j, 14), Err(GameError::NothingToJudge));
        // Leases that only expire give up too.
        let mut s = judged_game(1);
        set_settings(&mut s, GameSettings { max_judging_attempts: 1, lease_seconds: 1, ..GameSettings::default() });
        next(&mut s, &j, 10).unwrap();
        assert_eq!(expire(&mut s, 10 + NS_PER_SECOND, 10), 1);
        assert_eq!(s.submission(1, p(10)).unwrap().status, SubmissionStatus::Unscorable);
        let page = by_challenge(&s, &admin(), 1, PageRequest::first(10)).unwrap();
        assert_eq!((page.total, page.items[0].evidence.clone()), (1, None));
        assert!(matches!(by_challenge(&s, &j, 1, PageRequest::first(10)), Err(GameError::Unauthorized(_))));
    }

    #[test]
    fn bad_reports_are_refused_and_change_nothing() {
        let mut s = judged_game(1);
        let j = Caller::user(p(20));
        let a = next(&mut s, &j, 10).unwrap();
        assert_eq!(
            report(&mut s, &j, scored(a.lease_id, 6), 11),
            Err(GameError::ScoreOutOfRange { score: 6, min: 1, max: 5 })
        );
        assert_eq!(
            report(&mut s, &j, scored(a.lease_id, 0), 11),
            Err(GameError::ScoreOutOfRange { score: 0, min: 1, max: 5 })
        );
        let mut bad = scored(a.lease_id, 3);
        bad.evidence.prompt_sha256 = "nope".into();
        assert!(matches!(report(&mut s, &j, bad, 11), Err(GameError::InvalidInput(_))));
        assert_eq!(report(&mut s, &j, scored(99, 3), 11), Err(GameError::LeaseNotFound(99)));
        assert!(s.play.scores.is_empty());
        assert_eq!(next(&mut s, &j, 12).unwrap(), a, "the lease is still the judge's");
        let mut upper = scored(a.lease_id, 3);
        upper.evidence.prompt_sha256 = "AB".repeat(32);
        let ScoreAccepted::Final(done) = report(&mut s, &j, upper, 13).unwrap() else { panic!() };
        assert_eq!(done.evidence.unwrap().prompt_sha256, "ab".repeat(32));
    }

    #[test]
    fn submissions_to_challenges_of_an_older_release_are_not_queued() {
        let mut s = judged_game(0);
        s.play.tallies.remove(&1);
        register_mainer(&mut s, p(10));
        submit_answer(&mut s, p(10), 1, 2).unwrap();
        assert!(s.play.pending.is_empty());
    }
}
