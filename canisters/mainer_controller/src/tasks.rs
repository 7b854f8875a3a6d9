//! The controller's work steps, run by timers or by hand: pull a challenge,
//! forward it (ShareAgent), generate answers with the LLM pool, submit
//! answers (Own, ShareAgent) or deliver them (ShareService).
//!
//! Each step writes the item's new state before it makes the next call, and
//! checks after every call that the item is still the one it was working on.
//! The steps ask the IC for everything through a [`Runtime`] (`ic.rs`), so
//! their failure branches are unit-tested with a fake (`testing.rs`).

use std::cell::RefCell;
use std::collections::BTreeSet;

use candid::Principal;
use canister_common::guard::Guard;
use mainer_types::MainerRole;
use mainer_types::calls::{controller, game_state};
use mainer_types::controller::{
    Answer, AnswerDelivery, ControllerError, DeliveryOutcome, ServiceChallenge, ServiceRequest, ServiceTicket,
    StepReport, WorkItem, WorkOrigin, WorkState,
};
use mainer_types::game::{ClaimedEvidence, GameError, SubmitRequest};
use mainer_types::llm_client::LlmSession;
use sha2::{Digest, Sha256};

use crate::calls;
use crate::ic::Runtime;
use crate::state::{mutate_state, read_state};
use crate::work::{Fault, agent_of};

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
    read_state(|s| s.paused() || s.low_cycles())
}

// ----------------------------------------------------------------------
// Pull (Own, ShareAgent)
// ----------------------------------------------------------------------

/// Takes one open challenge from the game state into the queue.
pub async fn pull<RT: Runtime + Clone + 'static>(rt: &RT) -> StepReport {
    let mut r = Report::default();
    if paused() {
        r.note("paused");
        return r.done();
    }
    let (game, full) = read_state(|s| (s.config().game_state, s.queue_full()));
    if full {
        r.note("queue full: not pulling");
        return r.done();
    }
    r.started += 1;
    match calls::call(rt, game, &game_state::GET_CHALLENGE, ()).await {
        Ok(Ok(challenge)) => {
            let id = challenge.id;
            let now = rt.time();
            let finished_before = mutate_state(|s| {
                s.work_offered(now);
                if s.find(id, WorkOrigin::Pulled).is_some() {
                    r.note(format!("challenge {id} already queued"));
                    return false;
                }
                if s.knows(id, WorkOrigin::Pulled) {
                    return true;
                }
                match s.enqueue(challenge, WorkOrigin::Pulled, now) {
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
                let outcome = release(rt, game, id).await;
                r.note(format!("challenge {id} already finished here; given back: {outcome}"));
            }
        }
        Ok(Err(GameError::NoOpenChallenge)) => {
            mutate_state(|s| s.idle());
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
async fn release<RT: Runtime>(rt: &RT, game: Principal, challenge_id: u64) -> String {
    match calls::call(rt, game, &game_state::RELEASE_CHALLENGE, (challenge_id,)).await {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(e)) => format!("refused: {e}"),
        Err(e) => format!("failed: {e}"),
    }
}

/// What follows an item's end that the other side must hear of: a pulled
/// challenge that failed for good is given back to the game state; a
/// ShareAgent's item that failed or was dropped is reported to the agent.
fn after_finish<RT: Runtime + Clone + 'static>(rt: &RT, id: u64) {
    let finished = read_state(|s| Some((s.finished_item(id)?, s.config().game_state)));
    let Some((item, game)) = finished else { return };
    match (&item.state, agent_of(&item)) {
        (WorkState::Failed { .. }, None) => {
            let challenge_id = item.challenge.id;
            let bg = rt.clone();
            rt.spawn(async move {
                release(&bg, game, challenge_id).await;
            });
        }
        (WorkState::Failed { reason } | WorkState::Dropped { reason }, Some(agent)) => {
            let delivery =
                AnswerDelivery { challenge_id: item.challenge.id, outcome: DeliveryOutcome::Failed(reason.clone()) };
            let bg = rt.clone();
            rt.spawn(async move {
                let _ = calls::call(&bg, agent, &controller::DELIVER_ANSWER, (delivery,)).await;
            });
        }
        _ => {}
    }
}

/// Whether the challenge is still open (an unreachable game state counts as open).
async fn still_open<RT: Runtime>(rt: &RT, game: Principal, challenge_id: u64) -> bool {
    !matches!(calls::call(rt, game, &game_state::IS_CHALLENGE_OPEN, (challenge_id,)).await, Ok(Ok(false)))
}

fn drop_closed<RT: Runtime>(rt: &RT, id: u64, r: &mut Report) {
    mutate_state(|s| s.dropped(id, "the challenge closed".into(), rt.time()));
    r.note(format!("item {id}: challenge closed, dropped"));
}

// ----------------------------------------------------------------------
// Forward (ShareAgent)
// ----------------------------------------------------------------------

/// Sends queued challenges to the ShareService; takes back those it never answered.
pub async fn forward<RT: Runtime + Clone + 'static>(rt: &RT) -> StepReport {
    let mut r = Report::default();
    // A slow ShareService is no reason to give up: the item is sent again
    // (the ShareService accepts a challenge once, so this only asks where it
    // is, or re-queues it if the service lost it), and a late answer is taken.
    mutate_state(|s| s.reclaim_forwarded(rt.time()));
    if paused() {
        r.note("paused");
        return r.done();
    }
    let (game, service) = read_state(|s| (s.config().game_state, s.config().share_service));
    let Some(service) = service else {
        r.note("no ShareService configured");
        return r.done();
    };
    while let Some(item) = read_state(|s| s.next_queued(rt.time())) {
        r.started += 1;
        if !still_open(rt, game, item.challenge.id).await {
            drop_closed(rt, item.id, &mut r);
            after_finish(rt, item.id);
            continue;
        }
        let request = ServiceRequest { challenge: ServiceChallenge::from(&item.challenge) };
        let result = calls::call(rt, service, &controller::ENQUEUE_CHALLENGE, (request,)).await;
        let now = rt.time();
        let full = matches!(result, Ok(Err(ControllerError::QueueFull { .. } | ControllerError::Busy(_))));
        mutate_state(|s| {
            if s.item(item.id).map(|i| i.state) != Some(WorkState::Queued) {
                return; // changed meanwhile (e.g. the answer already came back)
            }
            match result {
                Ok(Ok(ticket)) => {
                    s.forwarded(item.id, now);
                    r.finished += 1;
                    r.note(format!("item {} accepted by the ShareService ({} ahead)", item.id, ticket.queued_ahead));
                }
                // No place for us yet (the service keeps our turn while we
                // ask again at every round): the base delay, no back-off.
                Ok(Err(e @ (ControllerError::QueueFull { .. } | ControllerError::Busy(_)))) => {
                    let why = format!("ShareService busy: {e}");
                    s.attempt_failed(item.id, why.clone(), WorkState::Queued, now, Fault::Busy);
                    r.note(format!("item {}: {why}", item.id));
                }
                // Refusals that are about the service, not the challenge (paused,
                // not told about us yet) and outages: try later, never give up.
                Ok(Err(
                    e @ (ControllerError::Paused
                    | ControllerError::Unauthorized(_)
                    | ControllerError::WrongRole { .. }
                    | ControllerError::CallFailed { .. }),
                )) => {
                    let why = format!("ShareService busy or unavailable: {e}");
                    s.attempt_failed(item.id, why.clone(), WorkState::Queued, now, Fault::Outage);
                    r.note(format!("item {}: {why}", item.id));
                }
                Err(e) => {
                    let why = format!("ShareService unreachable: {e}");
                    s.attempt_failed(item.id, why.clone(), WorkState::Queued, now, Fault::Outage);
                    r.note(format!("item {}: {why}", item.id));
                }
                Ok(Err(e)) => {
                    let why = format!("refused by the ShareService: {e}");
                    s.attempt_failed(item.id, why, WorkState::Queued, now, Fault::Refusal);
                    r.note(format!("item {} refused: {e}", item.id));
                }
            }
        });
        after_finish(rt, item.id);
        if full || r.started >= 32 {
            break; // the service has no place for more now
        }
    }
    r.done()
}

// ----------------------------------------------------------------------
// Generate (Own, ShareService)
// ----------------------------------------------------------------------

/// Reclaims stale generations and gives queued items to free LLMs.
pub async fn process<RT: Runtime + Clone + 'static>(rt: &RT) -> StepReport {
    let mut r = Report::default();
    for id in mutate_state(|s| s.reclaim_generations(rt.time(), false)) {
        r.note(format!("item {id}: generation timed out, requeued"));
    }
    assign_free_llms(rt, &mut r).await;
    r.done()
}

/// Gives queued items to free LLMs until either runs out: several items in
/// flight across the pool, one per LLM.
async fn assign_free_llms<RT: Runtime + Clone + 'static>(rt: &RT, r: &mut Report) {
    if paused() {
        r.note("paused");
        return;
    }
    let game = read_state(|s| s.config().game_state);
    while let Some((item, llm)) = mutate_state(|s| s.next_assignment(rt.time())) {
        if !still_open(rt, game, item.challenge.id).await {
            drop_closed(rt, item.id, r);
            after_finish(rt, item.id);
            continue;
        }
        // The LLM may have been taken while we awaited: pick again if so.
        if mutate_state(|s| s.assign(item.id, llm, rt.time())) {
            r.started += 1;
            r.note(format!("item {} → LLM {llm}", item.id));
            rt.spawn(generate(rt.clone(), item, llm));
        }
    }
}

/// Generates the answer of `item` with `llm` and records the outcome.
async fn generate<RT: Runtime + Clone + 'static>(rt: RT, item: WorkItem, llm: Principal) {
    let (settings, model_sha256) = read_state(|s| (s.settings(), s.llm(llm).and_then(|l| l.model_sha256)));
    let prompt = settings.prompt_format.render(&item.challenge.question);
    let cache_name = format!("item-{}-try-{}", item.id, item.attempts + item.outages);
    let mut session = LlmSession::new(cache_name, prompt.clone(), item.challenge.settings.clone(), settings.llm_limits);
    let mut instructions = 0u64;
    while let Some(call) = session.next_call() {
        instructions += rt.instruction_counter();
        let result = calls::llm(&rt, llm, &call).await;
        session.on_result(result);
    }
    instructions += rt.instruction_counter();
    let outcome = session.outcome().cloned().expect("the session is over");
    let now = rt.time();
    mutate_state(|s| {
        s.count(|c| {
            c.llm_calls += session.calls() as u64;
            c.generation_instructions += instructions;
        });
        // Only record the outcome if the item is still ours: not reclaimed
        // after a time-out (and perhaps given to this LLM again since).
        let current = s.generation_is_current(item.id, llm, (item.attempts, item.outages));
        match outcome {
            Ok(generation) => {
                let evidence = ClaimedEvidence {
                    prompt_sha256: hex::encode(Sha256::digest(prompt.as_bytes())),
                    llm_canister: llm,
                    model_sha256,
                    llm_calls: generation.calls,
                    prompt_tokens: generation.prompt_tokens,
                    generated_tokens: generation.generated_tokens,
                    // Filled in by whoever submits (a ShareAgent: its own).
                    cycles_spent: None,
                };
                s.generated(item.id, llm, Answer { text: generation.text, evidence }, current, now);
            }
            Err(e) => s.generation_failed(item.id, llm, &e, current, now),
        }
    });
    after_finish(&rt, item.id);
    // Keep the pool busy and the answer moving: the freed LLM takes the next
    // queued item and the answer is handed on now, not at the next round.
    let mut r = Report::default();
    assign_free_llms(&rt, &mut r).await;
    hand_on_item(&rt, item.id, &mut r).await;
}

// ----------------------------------------------------------------------
// Submit (Own, ShareAgent) and deliver (ShareService)
// ----------------------------------------------------------------------

thread_local! {
    /// Items whose answer is being handed on (a call in flight): a round and
    /// the end of a generation never send the same answer twice at once.
    static HANDING_ON: RefCell<BTreeSet<u64>> = const { RefCell::new(BTreeSet::new()) };
}

/// Hands every answered item on: to the game state, or back to its ShareAgent.
pub async fn hand_on<RT: Runtime + Clone + 'static>(rt: &RT) -> StepReport {
    let mut r = Report::default();
    let due = read_state(|s| s.answered_due(rt.time()));
    for item in due {
        hand_on_item(rt, item.id, &mut r).await;
    }
    r.done()
}

/// Hands item `id` on if it is answered and due, and not on its way already.
async fn hand_on_item<RT: Runtime + Clone + 'static>(rt: &RT, id: u64, r: &mut Report) {
    let Some(_guard) = Guard::take(&HANDING_ON, id) else { return };
    let (role, game) = read_state(|s| (s.role(), s.config().game_state));
    let due = read_state(|s| s.item(id)).filter(|i| i.state == WorkState::Answered && i.next_attempt_ns <= rt.time());
    let Some(item) = due else { return };
    r.started += 1;
    let answer = item.answer.clone().expect("an answered item has its answer");
    match (role, agent_of(&item)) {
        (MainerRole::ShareService, Some(agent)) => deliver(rt, item, agent, answer, r).await,
        _ => submit(rt, item, game, answer, r).await,
    }
}

async fn submit<RT: Runtime + Clone + 'static>(
    rt: &RT,
    item: WorkItem,
    game: Principal,
    answer: Answer,
    r: &mut Report,
) {
    let evidence = ClaimedEvidence { cycles_spent: Some(crate::budget_api::total_spent()), ..answer.evidence };
    let request = SubmitRequest { challenge_id: item.challenge.id, answer: answer.text, evidence };
    let result = calls::call(rt, game, &game_state::SUBMIT, (request,)).await;
    let id = item.id;
    let now = rt.time();
    mutate_state(|s| {
        if s.item(id).map(|i| i.state) != Some(WorkState::Answered) {
            return;
        }
        match result {
            // A submission whose reply was lost shows up as AlreadySubmitted.
            Ok(Ok(_)) | Ok(Err(GameError::AlreadySubmitted(_))) => {
                s.submitted(id, now);
                r.finished += 1;
                r.note(format!("item {id} submitted"));
            }
            Ok(Err(e @ (GameError::ChallengeClosed(_) | GameError::ChallengeNotFound(_)))) => {
                s.dropped(id, e.to_string(), now);
                r.note(format!("item {id} dropped: {e}"));
            }
            Ok(Err(e @ (GameError::AnswerTooLarge { .. } | GameError::InvalidInput(_)))) => {
                s.failed(id, e.to_string(), now);
                r.note(format!("item {id} refused: {e}"));
            }
            // Not registered yet, or the game state unreachable: retry later, keep the answer.
            Ok(Err(e)) => retry_answered(s, id, e.to_string(), now, r),
            Err(e) => retry_answered(s, id, format!("submit failed: {e}"), now, r),
        }
    });
    after_finish(rt, id);
}

async fn deliver<RT: Runtime>(rt: &RT, item: WorkItem, agent: Principal, answer: Answer, r: &mut Report) {
    let delivery = AnswerDelivery { challenge_id: item.challenge.id, outcome: DeliveryOutcome::Answered(answer) };
    let result = calls::call(rt, agent, &controller::DELIVER_ANSWER, (delivery,)).await;
    let id = item.id;
    let now = rt.time();
    mutate_state(|s| {
        if s.item(id).map(|i| i.state) != Some(WorkState::Answered) {
            return;
        }
        match result {
            Ok(Ok(())) => {
                s.delivered(id, now);
                r.finished += 1;
                r.note(format!("item {id} delivered to {agent}"));
            }
            Ok(Err(e)) => {
                s.dropped(id, format!("the ShareAgent refused the answer: {e}"), now);
                r.note(format!("item {id}: {agent} refused the answer: {e}"));
            }
            Err(e) => {
                // The agent is stopped or upgrading: keep the answer, never give up.
                s.attempt_failed(id, format!("delivery failed: {e}"), WorkState::Answered, now, Fault::Outage);
                r.note(format!("item {id}: delivery to {agent} failed: {e}"));
            }
        }
    });
}

fn retry_answered(s: &mut crate::state::State, id: u64, why: String, now: u64, r: &mut Report) {
    s.attempt_failed(id, why.clone(), WorkState::Answered, now, Fault::Outage);
    r.note(format!("item {id}: {why}; will retry"));
}

// ----------------------------------------------------------------------
// Incoming from the other side of a share
// ----------------------------------------------------------------------

/// ShareService: a ShareAgent's challenge joins the queue (once).
pub fn accept_from_agent(
    agent: Principal,
    request: ServiceRequest,
    now: u64,
) -> Result<ServiceTicket, ControllerError> {
    mutate_state(|s| {
        let origin = WorkOrigin::Agent(agent);
        s.work_offered(now);
        let item = match s.find(request.challenge.id, origin) {
            Some(existing) => existing,
            None => s.enqueue_for_agent(agent, request.challenge.into_challenge(now), now)?,
        };
        Ok(ServiceTicket { item_id: item.id, queued_ahead: s.queued_ahead(item.id) })
    })
}

/// ShareAgent: the ShareService's answer (or failure) for one of our
/// challenges. An answer is taken whenever it comes: while we wait, after we
/// sent the challenge again, or even after we gave up on it (a late answer
/// is still an answer); a repeated delivery is acknowledged.
pub fn receive_delivery<RT: Runtime + Clone + 'static>(
    rt: &RT,
    delivery: AnswerDelivery,
) -> Result<(), ControllerError> {
    let id = delivery.challenge_id;
    let now = rt.time();
    let not_waiting = || ControllerError::NotFound(format!("no challenge {id} waiting for an answer"));
    let retried = mutate_state(|s| {
        if let Some(item) = s.find(id, WorkOrigin::Pulled) {
            match (&item.state, delivery.outcome) {
                (WorkState::Answered, _) => {}
                (_, DeliveryOutcome::Answered(answer)) => {
                    s.set_answer(item.id, answer, now);
                }
                (_, DeliveryOutcome::Failed(reason)) => {
                    let why = format!("the ShareService failed: {reason}");
                    s.attempt_failed(item.id, why, WorkState::Queued, now, Fault::Refusal);
                    return Ok(Some(item.id));
                }
            }
            return Ok(None);
        }
        let finished = s.find_finished(id, WorkOrigin::Pulled).ok_or_else(not_waiting)?;
        match (&finished.state, delivery.outcome) {
            (WorkState::Submitted { .. }, _) => Ok(None),
            (WorkState::Failed { .. }, DeliveryOutcome::Answered(answer)) => {
                s.revive_answered(finished.id, answer, now);
                Ok(None)
            }
            _ => Err(not_waiting()),
        }
    })?;
    if let Some(item) = retried {
        after_finish(rt, item);
    }
    Ok(())
}
