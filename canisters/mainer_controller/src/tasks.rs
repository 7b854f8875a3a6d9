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
use mainer_types::llm_client::LlmSession;
use sha2::{Digest, Sha256};

use crate::calls;
use crate::storage::{self, State};

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

fn paused() -> bool {
    storage::read(|s| s.config().paused)
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
        Ok(Ok(challenge)) => storage::mutate(|s| {
            if s.knows(challenge.id, WorkOrigin::Pulled) {
                r.note(format!("challenge {} already taken", challenge.id));
                return;
            }
            match s.enqueue(challenge, WorkOrigin::Pulled, now()) {
                Ok(item) => {
                    s.count(|c| c.challenges_pulled += 1);
                    r.finished += 1;
                    r.note(format!("queued challenge {} as item {}", item.challenge.id, item.id));
                }
                Err(e) => r.note(e.to_string()),
            }
        }),
        Ok(Err(e)) => r.note(format!("game state: {e}")),
        Err(e) => r.note(format!("get_challenge failed: {e}")),
    }
    r.done()
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
    storage::mutate(|s| {
        for item in s.forwarded_overdue(now()) {
            s.attempt_failed(item.id, "the ShareService did not answer in time".into(), WorkState::Queued, now(), true);
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
                // A full or unreachable service: keep the item and try later.
                Ok(Err(ControllerError::QueueFull { .. })) | Err(_) => {
                    let why = match &result {
                        Err(e) => format!("ShareService unreachable: {e}"),
                        _ => "ShareService queue full".to_string(),
                    };
                    s.attempt_failed(item.id, why.clone(), WorkState::Queued, now(), false);
                    r.note(format!("item {}: {why}", item.id));
                }
                Ok(Err(e)) => {
                    s.attempt_failed(
                        item.id,
                        format!("refused by the ShareService: {e}"),
                        WorkState::Queued,
                        now(),
                        true,
                    );
                    r.note(format!("item {} refused: {e}", item.id));
                }
            }
        });
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
            notify_agent_if_failed(item.id);
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
    let cache_name = format!("item-{}-attempt-{}", item.id, item.attempts);
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
                i.attempts == item.attempts && matches!(i.state, WorkState::InFlight { llm: Some(l), .. } if l == llm)
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
                    s.attempt_failed(item.id, e.to_string(), WorkState::Queued, now(), true);
                }
            }
        }
    });
    notify_agent_if_failed(item.id);
}

/// ShareService: tells the ShareAgent when its item failed for good, so it
/// does not wait for its time-out (best effort).
fn notify_agent_if_failed(id: u64) {
    let failed = storage::read(|s| {
        let item = s.history.get(&id)?.0;
        let agent = State::agent_of(&item)?;
        match item.state {
            WorkState::Failed { reason } | WorkState::Dropped { reason } => Some((agent, item.challenge.id, reason)),
            _ => None,
        }
    });
    if let Some((agent, challenge_id, reason)) = failed {
        ic_cdk::futures::spawn(async move {
            let delivery = AnswerDelivery { challenge_id, outcome: DeliveryOutcome::Failed(reason) };
            let _ = calls::call(agent, &controller::DELIVER_ANSWER, (delivery,)).await;
        });
    }
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
                s.attempt_failed(id, format!("delivery failed: {e}"), WorkState::Answered, now(), true);
                r.note(format!("item {id}: delivery to {agent} failed: {e}"));
            }
        }
    });
}

fn retry_answered(s: &mut State, id: u64, why: String, r: &mut Report) {
    s.attempt_failed(id, why.clone(), WorkState::Answered, now(), false);
    r.note(format!("item {id}: {why}; will retry"));
}

// ----------------------------------------------------------------------
// Incoming from the other side of a share
// ----------------------------------------------------------------------

/// ShareService: a ShareAgent's challenge joins the queue (once).
pub fn accept_from_agent(agent: Principal, request: ServiceRequest) -> Result<ServiceTicket, ControllerError> {
    storage::mutate(|s| {
        let origin = WorkOrigin::Agent(agent);
        let item = match s.find(request.challenge.id, origin) {
            Some(existing) => existing,
            None => s.enqueue(request.challenge, origin, now())?,
        };
        Ok(ServiceTicket { item_id: item.id, queued_ahead: s.queued_ahead(item.id) })
    })
}

/// ShareAgent: the ShareService's answer (or failure) for one of our challenges.
pub fn receive_delivery(delivery: AnswerDelivery) -> Result<(), ControllerError> {
    storage::mutate(|s| {
        let item = s
            .find(delivery.challenge_id, WorkOrigin::Pulled)
            .filter(|i| matches!(i.state, WorkState::InFlight { .. } | WorkState::Queued))
            .ok_or_else(|| {
                ControllerError::NotFound(format!("no challenge {} waiting for an answer", delivery.challenge_id))
            })?;
        match delivery.outcome {
            DeliveryOutcome::Answered(answer) => {
                s.set_answer(item.id, answer, now());
            }
            DeliveryOutcome::Failed(reason) => {
                s.attempt_failed(item.id, format!("the ShareService failed: {reason}"), WorkState::Queued, now(), true);
            }
        }
        Ok(())
    })
}
