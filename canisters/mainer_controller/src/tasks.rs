//! The controller's work steps, run by timers or by hand: pull a challenge,
//! forward it (ShareAgent), generate answers with the LLM pool, submit
//! answers (Own, ShareAgent) or deliver them (ShareService).
//!
//! Each step writes the item's new state before it makes the next call, and
//! checks after every call that the item is still the one it was working on.

use candid::Principal;
use mainer_types::MainerRole;
use mainer_types::calls::{controller, game_state};
use mainer_types::controller::{
    Answer, AnswerDelivery, ControllerError, DeliveryOutcome, ServiceRequest, ServiceTicket, StepReport, WorkItem,
    WorkOrigin, WorkState,
};
use mainer_types::game::{ClaimedEvidence, GameError, SubmitRequest};
use mainer_types::llm_client::{LlmError, LlmSession};
use sha2::{Digest, Sha256};

use crate::calls;
use crate::storage::{self, State};
use crate::work::Fault;

fn now() -> u64 {
    ic_cdk::api::time()
}

#[derive(Default)]
struct Report {
    started: u64,
    finished: u64,
    notes: Vec<String>,
}

impl Report {
    /// Also logged: the notes are the steps, retries and refusals of a run.
    fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        canister_common::info!("{n}");
        self.notes.push(n);
    }
    fn done(self) -> StepReport {
        StepReport { started: self.started, finished: self.finished, notes: self.notes }
    }
}

/// Paused by an admin, or by itself for want of cycles (`budget`).
fn paused() -> bool {
    storage::read(|s| s.config().paused) || crate::budget::is_low()
}

// ----------------------------------------------------------------------
// Pull (Own, ShareAgent)
// ----------------------------------------------------------------------

/// Takes one open challenge from the game state into the queue.
pub async fn pull() -> StepReport {
    let mut r = Report::default();
    if paused() {
        r.note("paused");
        return r.done();
    }
    let (game, full) = storage::read(|s| (s.config().game_state, s.queue.len() >= s.settings().max_queue as u64));
    if full {
        r.note("queue full: not pulling");
        return r.done();
    }
    r.started += 1;
    match calls::call(game, &game_state::GET_CHALLENGE, ()).await {
        Ok(Ok(challenge)) => {
            let id = challenge.id;
            let finished_before = storage::mutate(|s| {
                s.work_offered(now());
                if s.find(id, WorkOrigin::Pulled).is_some() {
                    r.note(format!("challenge {id} already queued"));
                    return false;
                }
                if s.knows(id, WorkOrigin::Pulled) {
                    return true;
                }
                match s.enqueue(challenge, WorkOrigin::Pulled, now()) {
                    Ok(item) => {
                        s.count(|c| c.challenges_pulled += 1);
                        r.finished += 1;
                        r.note(format!("queued challenge {} as item {}", item.challenge.id, item.id));
                    }
                    Err(e) => r.note(e.to_string()),
                }
                false
            });
            // We gave up on it before (the give-back was lost): give it back
            // again, so the game state hands out another one.
            if finished_before {
                let outcome = release(game, id).await;
                r.note(format!("challenge {id} already finished here; given back: {outcome}"));
            }
        }
        Ok(Err(GameError::NoOpenChallenge)) => {
            storage::mutate(|s| s.idle());
            r.note("game state: no open challenge");
        }
        Ok(Err(e)) => r.note(format!("game state: {e}")),
        Err(e) => r.note(format!("get_challenge failed: {e}")),
    }
    r.done()
}

/// Tells the game state that we will not answer `challenge_id`, so that it
/// hands this mAIner other challenges (best effort: a hand-out also expires,
/// and a pull that is offered it again gives it back again).
async fn release(game: Principal, challenge_id: u64) -> String {
    match calls::call(game, &game_state::RELEASE_CHALLENGE, (challenge_id,)).await {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(e)) => format!("refused: {e}"),
        Err(e) => format!("failed: {e}"),
    }
}

/// What follows an item's end that the other side must hear of: a pulled
/// challenge that failed for good is given back to the game state; a
/// ShareAgent's item that failed or was dropped is reported to the agent.
fn after_finish(id: u64) {
    let finished = storage::read(|s| {
        let item = s.history.get(&id)?.0;
        Some((item, s.config().game_state))
    });
    let Some((item, game)) = finished else { return };
    match (&item.state, State::agent_of(&item)) {
        (WorkState::Failed { .. }, None) => {
            let challenge_id = item.challenge.id;
            ic_cdk::futures::spawn(async move {
                release(game, challenge_id).await;
            });
        }
        (WorkState::Failed { reason } | WorkState::Dropped { reason }, Some(agent)) => {
            let delivery =
                AnswerDelivery { challenge_id: item.challenge.id, outcome: DeliveryOutcome::Failed(reason.clone()) };
            ic_cdk::futures::spawn(async move {
                let _ = calls::call(agent, &controller::DELIVER_ANSWER, (delivery,)).await;
            });
        }
        _ => {}
    }
}

/// Whether the challenge is still open (an unreachable game state counts as open).
async fn still_open(game: Principal, challenge_id: u64) -> bool {
    !matches!(calls::call(game, &game_state::IS_CHALLENGE_OPEN, (challenge_id,)).await, Ok(Ok(false)))
}

fn drop_closed(id: u64, r: &mut Report) {
    storage::mutate(|s| s.set_state(id, WorkState::Dropped { reason: "the challenge closed".into() }, now()));
    r.note(format!("item {id}: challenge closed, dropped"));
}

// ----------------------------------------------------------------------
// Forward (ShareAgent)
// ----------------------------------------------------------------------

/// Sends queued challenges to the ShareService; takes back those it never answered.
pub async fn forward() -> StepReport {
    let mut r = Report::default();
    // A slow ShareService is no reason to give up: the item is sent again
    // (the ShareService accepts a challenge once, so this only asks where it
    // is, or re-queues it if the service lost it), and a late answer is taken.
    storage::mutate(|s| {
        for item in s.forwarded_overdue(now()) {
            s.attempt_failed(
                item.id,
                "the ShareService did not answer in time".into(),
                WorkState::Queued,
                now(),
                Fault::Outage,
            );
        }
    });
    if paused() {
        r.note("paused");
        return r.done();
    }
    let (game, service) = storage::read(|s| (s.config().game_state, s.config().share_service));
    let Some(service) = service else {
        r.note("no ShareService configured");
        return r.done();
    };
    while let Some(item) = storage::read(|s| s.next_queued(now())) {
        r.started += 1;
        if !still_open(game, item.challenge.id).await {
            drop_closed(item.id, &mut r);
            after_finish(item.id);
            continue;
        }
        let request = ServiceRequest { challenge: item.challenge.clone() };
        let result = calls::call(service, &controller::ENQUEUE_CHALLENGE, (request,)).await;
        storage::mutate(|s| {
            if s.item(item.id).map(|i| i.state) != Some(WorkState::Queued) {
                return; // changed meanwhile (e.g. the answer already came back)
            }
            match result {
                Ok(Ok(ticket)) => {
                    s.set_state(item.id, WorkState::InFlight { since_ns: now(), llm: None }, now());
                    r.finished += 1;
                    r.note(format!("item {} accepted by the ShareService ({} ahead)", item.id, ticket.queued_ahead));
                }
                // Refusals that are about the service, not the challenge (full,
                // paused, not told about us yet) and outages: try later, never give up.
                Ok(Err(
                    e @ (ControllerError::QueueFull { .. }
                    | ControllerError::Paused
                    | ControllerError::Unauthorized(_)
                    | ControllerError::WrongRole { .. }
                    | ControllerError::Busy(_)
                    | ControllerError::CallFailed { .. }),
                )) => {
                    let why = format!("ShareService busy or unavailable: {e}");
                    s.attempt_failed(item.id, why.clone(), WorkState::Queued, now(), Fault::Outage);
                    r.note(format!("item {}: {why}", item.id));
                }
                Err(e) => {
                    let why = format!("ShareService unreachable: {e}");
                    s.attempt_failed(item.id, why.clone(), WorkState::Queued, now(), Fault::Outage);
                    r.note(format!("item {}: {why}", item.id));
                }
                Ok(Err(e)) => {
                    s.attempt_failed(
                        item.id,
                        format!("refused by the ShareService: {e}"),
                        WorkState::Queued,
                        now(),
                        Fault::Refusal,
                    );
                    r.note(format!("item {} refused: {e}", item.id));
                }
            }
        });
        after_finish(item.id);
        if r.started >= 32 {
            break;
        }
    }
    r.done()
}

// ----------------------------------------------------------------------
// Generate (Own, ShareService)
// ----------------------------------------------------------------------

/// Reclaims stale generations and gives queued items to free LLMs.
pub async fn process() -> StepReport {
    let mut r = Report::default();
    storage::mutate(|s| {
        for id in s.reclaim_in_flight(now(), false) {
            r.note(format!("item {id}: generation timed out, requeued"));
        }
    });
    if paused() {
        r.note("paused");
        return r.done();
    }
    let game = storage::read(|s| s.config().game_state);
    loop {
        let next = storage::mutate(|s| {
            let item = s.next_queued(now())?;
            let llm = s.pick_llm(now())?;
            Some((item, llm))
        });
        let Some((item, llm)) = next else { break };
        if !still_open(game, item.challenge.id).await {
            drop_closed(item.id, &mut r);
            after_finish(item.id);
            continue;
        }
        // The LLM may have been taken while we awaited: pick again if so.
        let assigned = storage::mutate(|s| {
            let free = s.llm(llm).is_some_and(|l| l.in_flight.is_none());
            let still_queued = s.item(item.id).is_some_and(|i| i.state == WorkState::Queued);
            if free && still_queued {
                s.assign(item.id, llm, now());
            }
            free && still_queued
        });
        if assigned {
            r.started += 1;
            r.note(format!("item {} → LLM {llm}", item.id));
            ic_cdk::futures::spawn(generate(item, llm));
        }
    }
    r.done()
}

/// Generates the answer of `item` with `llm` and records the outcome.
async fn generate(item: WorkItem, llm: Principal) {
    let (settings, model_sha256) = storage::read(|s| (s.settings(), s.llm(llm).and_then(|l| l.model_sha256)));
    let prompt = settings.prompt_format.render(&item.challenge.question);
    let cache_name = format!("item-{}-try-{}", item.id, item.attempts + item.outages);
    let mut session = LlmSession::new(cache_name, prompt.clone(), item.challenge.settings.clone(), settings.llm_limits);
    let mut instructions = 0u64;
    while let Some(call) = session.next_call() {
        instructions += ic_cdk::api::performance_counter(0);
        let result = calls::llm(llm, &call).await;
        session.on_result(result);
    }
    instructions += ic_cdk::api::performance_counter(0);
    let outcome = session.outcome().cloned().expect("the session is over");
    storage::mutate(|s| {
        s.count(|c| {
            c.llm_calls += session.calls() as u64;
            c.generation_instructions += instructions;
        });
        // Only record the outcome if the item is still ours: not reclaimed
        // after a time-out (and perhaps given to this LLM again since).
        let ours = s.llm(llm).is_some_and(|l| l.in_flight == Some(item.id))
            && s.item(item.id).is_some_and(|i| {
                (i.attempts, i.outages) == (item.attempts, item.outages)
                    && matches!(i.state, WorkState::InFlight { llm: Some(l), .. } if l == llm)
            });
        s.release_llm(llm, item.id);
        match outcome {
            Ok(generation) => {
                s.llm_answered(llm);
                s.count(|c| c.answers_generated += 1);
                if ours {
                    let evidence = ClaimedEvidence {
                        prompt_sha256: hex::encode(Sha256::digest(prompt.as_bytes())),
                        llm_canister: llm,
                        model_sha256,
                        llm_calls: generation.calls,
                        prompt_tokens: generation.prompt_tokens,
                        generated_tokens: generation.generated_tokens,
                    };
                    s.set_answer(item.id, Answer { text: generation.text, evidence }, now());
                }
            }
            Err(e) => {
                s.llm_failed(llm, e.to_string(), e.blames_llm(), now());
                s.count(|c| c.generation_failures += 1);
                if ours {
                    // Only what the LLM answered counts; a call that never got
                    // an answer (stopped, trapped, upgrading, timed out) does not.
                    let fault = match e {
                        LlmError::CallFailed { .. } => Fault::Outage,
                        _ => Fault::Refusal,
                    };
                    s.attempt_failed(item.id, e.to_string(), WorkState::Queued, now(), fault);
                }
            }
        }
    });
    after_finish(item.id);
}

// ----------------------------------------------------------------------
// Submit (Own, ShareAgent) and deliver (ShareService)
// ----------------------------------------------------------------------

/// Hands every answered item on: to the game state, or back to its ShareAgent.
pub async fn hand_on() -> StepReport {
    let mut r = Report::default();
    let (role, game) = storage::read(|s| (s.config().role, s.config().game_state));
    let due = storage::read(|s| s.answered_due(now()));
    for item in due {
        r.started += 1;
        let answer = item.answer.clone().expect("an answered item has its answer");
        match (role, State::agent_of(&item)) {
            (MainerRole::ShareService, Some(agent)) => deliver(item, agent, answer, &mut r).await,
            _ => submit(item, game, answer, &mut r).await,
        }
    }
    r.done()
}

async fn submit(item: WorkItem, game: Principal, answer: Answer, r: &mut Report) {
    let request = SubmitRequest { challenge_id: item.challenge.id, answer: answer.text, evidence: answer.evidence };
    let result = calls::call(game, &game_state::SUBMIT, (request,)).await;
    let id = item.id;
    storage::mutate(|s| {
        if s.item(id).map(|i| i.state) != Some(WorkState::Answered) {
            return;
        }
        match result {
            // A submission whose reply was lost shows up as AlreadySubmitted.
            Ok(Ok(_)) | Ok(Err(GameError::AlreadySubmitted(_))) => {
                s.set_state(id, WorkState::Submitted { at_ns: now() }, now());
                s.count(|c| c.submissions += 1);
                s.handed_on(now());
                r.finished += 1;
                r.note(format!("item {id} submitted"));
            }
            Ok(Err(e @ (GameError::ChallengeClosed(_) | GameError::ChallengeNotFound(_)))) => {
                s.set_state(id, WorkState::Dropped { reason: e.to_string() }, now());
                r.note(format!("item {id} dropped: {e}"));
            }
            Ok(Err(e @ (GameError::AnswerTooLarge { .. } | GameError::InvalidInput(_)))) => {
                s.set_state(id, WorkState::Failed { reason: e.to_string() }, now());
                s.count(|c| c.items_failed += 1);
                r.note(format!("item {id} refused: {e}"));
            }
            // Not registered yet, or the game state unreachable: retry later, keep the answer.
            Ok(Err(e)) => retry_answered(s, id, e.to_string(), r),
            Err(e) => retry_answered(s, id, format!("submit failed: {e}"), r),
        }
    });
    after_finish(id);
}

async fn deliver(item: WorkItem, agent: Principal, answer: Answer, r: &mut Report) {
    let delivery = AnswerDelivery { challenge_id: item.challenge.id, outcome: DeliveryOutcome::Answered(answer) };
    let result = calls::call(agent, &controller::DELIVER_ANSWER, (delivery,)).await;
    let id = item.id;
    storage::mutate(|s| {
        if s.item(id).map(|i| i.state) != Some(WorkState::Answered) {
            return;
        }
        match result {
            Ok(Ok(())) => {
                s.set_state(id, WorkState::Delivered { at_ns: now() }, now());
                s.count(|c| c.deliveries += 1);
                s.handed_on(now());
                r.finished += 1;
                r.note(format!("item {id} delivered to {agent}"));
            }
            Ok(Err(e)) => {
                s.set_state(
                    id,
                    WorkState::Dropped { reason: format!("the ShareAgent refused the answer: {e}") },
                    now(),
                );
                r.note(format!("item {id}: {agent} refused the answer: {e}"));
            }
            Err(e) => {
                // The agent is stopped or upgrading: keep the answer, never give up.
                s.attempt_failed(id, format!("delivery failed: {e}"), WorkState::Answered, now(), Fault::Outage);
                r.note(format!("item {id}: delivery to {agent} failed: {e}"));
            }
        }
    });
}

fn retry_answered(s: &mut State, id: u64, why: String, r: &mut Report) {
    s.attempt_failed(id, why.clone(), WorkState::Answered, now(), Fault::Outage);
    r.note(format!("item {id}: {why}; will retry"));
}

// ----------------------------------------------------------------------
// Incoming from the other side of a share
// ----------------------------------------------------------------------

/// ShareService: a ShareAgent's challenge joins the queue (once).
pub fn accept_from_agent(agent: Principal, request: ServiceRequest) -> Result<ServiceTicket, ControllerError> {
    storage::mutate(|s| {
        let origin = WorkOrigin::Agent(agent);
        s.work_offered(now());
        let item = match s.find(request.challenge.id, origin) {
            Some(existing) => existing,
            None => s.enqueue(request.challenge, origin, now())?,
        };
        Ok(ServiceTicket { item_id: item.id, queued_ahead: s.queued_ahead(item.id) })
    })
}

/// ShareAgent: the ShareService's answer (or failure) for one of our
/// challenges. An answer is taken whenever it comes: while we wait, after we
/// sent the challenge again, or even after we gave up on it (a late answer
/// is still an answer); a repeated delivery is acknowledged.
pub fn receive_delivery(delivery: AnswerDelivery) -> Result<(), ControllerError> {
    let id = delivery.challenge_id;
    let not_waiting = || ControllerError::NotFound(format!("no challenge {id} waiting for an answer"));
    let revived = storage::mutate(|s| {
        if let Some(item) = s.find(id, WorkOrigin::Pulled) {
            match (&item.state, delivery.outcome) {
                (WorkState::Answered, _) => {}
                (_, DeliveryOutcome::Answered(answer)) => {
                    s.set_answer(item.id, answer, now());
                }
                (_, DeliveryOutcome::Failed(reason)) => {
                    let why = format!("the ShareService failed: {reason}");
                    s.attempt_failed(item.id, why, WorkState::Queued, now(), Fault::Refusal);
                    return Ok(Some(item.id));
                }
            }
            return Ok(None);
        }
        let finished = s.find_finished(id, WorkOrigin::Pulled).ok_or_else(not_waiting)?;
        match (&finished.state, delivery.outcome) {
            (WorkState::Submitted { .. }, _) => Ok(None),
            (WorkState::Failed { .. }, DeliveryOutcome::Answered(answer)) => {
                s.revive_answered(finished.id, answer, now());
                Ok(None)
            }
            _ => Err(not_waiting()),
        }
    })?;
    if let Some(item) = revived {
        after_finish(item);
    }
    Ok(())
}
