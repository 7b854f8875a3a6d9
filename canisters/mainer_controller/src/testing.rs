//! A fake IC for unit tests of the controller's tasks ([`Fake`], a
//! [`Runtime`]): a game state that hands out challenges and takes
//! submissions, LLMs that answer in two calls, a ShareService and a
//! ShareAgent, and switches that lose a reply (the callee acted), reject a
//! call (stopped canister), trap (a panic), hang (a call that never comes
//! back, until released: the step is abandoned with its state written), or
//! make an LLM refuse or the balance fall. The tests below drive the failure branches of pull,
//! forward, generate, submit and deliver with it and check the work-fate
//! rules of `work.rs`: nothing lost, nothing duplicated, refusals counted as
//! attempts and outages as outages. Each test runs on its own thread, so
//! with its own state.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use candid::Principal;
use mainer_types::MainerRole;
use mainer_types::controller::{
    AnswerDelivery, ControllerError, ControllerSettings, DeliveryOutcome, ServiceChallenge, ServiceRequest,
    ServiceTicket, WorkItem, WorkOrigin, WorkState,
};
use mainer_types::game::{Evidence, GameError, Submission, SubmissionStatus, SubmitRequest};
use mainer_types::llama_cpp::{MaxTokensRecord, OutputRecordResult, RunOutputRecord};

use crate::ic::{CallError, Runtime};
use crate::state::tests::config;
use crate::state::{mutate_state, read_state};
use crate::work::tests::challenge;
use crate::{tasks, timers};

const SEC: u64 = 1_000_000_000;

/// Reject code of a call whose outcome is unknown (the reply was lost).
const SYS_UNKNOWN: u32 = 6;

fn principal(n: u8) -> Principal {
    Principal::from_slice(&[n; 10])
}

pub fn game() -> Principal {
    principal(100)
}

pub fn service() -> Principal {
    principal(101)
}

pub fn agent() -> Principal {
    principal(102)
}

pub fn llm(n: u8) -> Principal {
    principal(n)
}

#[derive(Default)]
pub struct World {
    pub now: u64,
    /// What `get_challenge` hands out next (the game state offers a
    /// challenge again until it is submitted or given back).
    pub handouts: VecDeque<u64>,
    pub closed: BTreeSet<u64>,
    /// Submissions the game state took, by challenge.
    pub submitted: Vec<u64>,
    pub released: Vec<u64>,
    /// What the ShareService was asked, and what the ShareAgent was delivered.
    pub service_requests: Vec<ServiceRequest>,
    pub delivered: Vec<AnswerDelivery>,
    /// The ShareService's reply to the next `enqueue_challenge`s (else a ticket).
    pub service_refusals: VecDeque<ControllerError>,
    /// The ShareAgent refuses deliveries.
    pub agent_refuses: bool,
    /// Canisters that reject every call (stopped).
    pub stopped: BTreeSet<Principal>,
    /// The next call of this method acts but its reply is lost.
    pub lose_reply_of: Option<&'static str>,
    /// Calls of this method trap the controller (a panic here).
    pub trap_on: Option<&'static str>,
    /// The next call of this method never returns, until `release_hung`.
    pub hang_next: Option<&'static str>,
    /// LLMs refuse to generate (an error record, not a reject).
    pub llm_refuses: bool,
    /// The controller's balance (None: plenty).
    pub balance: Option<u128>,
    /// What the controller told the creator (`report_cycles`).
    pub cycles_reports: Vec<mainer_types::game::MainerCyclesReport>,
    /// The cycles figure each submission carried.
    pub submitted_cycles: Vec<Option<u128>>,
    /// What the creator says of each LLM's balance (`llm_cycles`; default 5 T).
    pub llm_balances: BTreeMap<Principal, u128>,
    /// `deposit_cycles` made: (to, amount).
    pub deposits: Vec<(Principal, u128)>,
    /// Every call made, as "method canister".
    pub log: Vec<String>,
    /// `run_update`s of each LLM since its last `new_chat`.
    runs: BTreeMap<Principal, u32>,
    hung: BTreeSet<u64>,
    next_hang: u64,
    spawned: Vec<Pin<Box<dyn Future<Output = ()>>>>,
}

#[derive(Clone, Default)]
pub struct Fake(pub Rc<RefCell<World>>);

/// A call that never comes back until released.
struct Hang(Rc<RefCell<World>>, u64);

impl Future for Hang {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0.borrow().hung.contains(&self.1) { Poll::Pending } else { Poll::Ready(()) }
    }
}

/// Polls `f` until it is done or stuck on a hung call (then it is dropped:
/// the step is abandoned, as a trap in its callback would).
pub fn run<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

fn encode<T: candid::CandidType>(v: T) -> Vec<u8> {
    candid::encode_one(v).unwrap()
}

fn run_record(output: &str, eog: bool) -> OutputRecordResult {
    OutputRecordResult::Ok(RunOutputRecord {
        status_code: 200,
        output: output.into(),
        generated_eog: eog,
        ..Default::default()
    })
}

impl Fake {
    pub fn w(&self) -> std::cell::RefMut<'_, World> {
        self.0.borrow_mut()
    }

    pub fn advance(&self, seconds: u64) {
        self.w().now += seconds * SEC;
    }

    /// Runs everything spawned until all is done or waits on a hung call.
    pub fn run_spawned(&self) {
        let mut waiting = Vec::new();
        loop {
            let next = {
                let mut w = self.w();
                if w.spawned.is_empty() { None } else { Some(w.spawned.remove(0)) }
            };
            let Some(mut f) = next else { break };
            if f.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending() {
                waiting.push(f);
            }
        }
        self.w().spawned = waiting;
    }

    /// Lets the oldest hung call come back (its step resumes at the next `run_spawned`).
    pub fn release_hung(&self) {
        let mut w = self.w();
        let first = w.hung.first().copied();
        if let Some(t) = first {
            w.hung.remove(&t);
        }
    }

    /// Drops every step still waiting (a trap in their callbacks).
    pub fn abandon_spawned(&self) -> usize {
        std::mem::take(&mut self.w().spawned).len()
    }

    pub fn calls(&self, prefix: &str) -> usize {
        self.w().log.iter().filter(|l| l.starts_with(prefix)).count()
    }

    /// One process round (generate, hand on) and the generations it started.
    pub fn process_round(&self) {
        run(timers::process_round(self)).expect("the round waits on nothing");
        self.run_spawned();
        run(tasks::hand_on(self)).expect("hand-on waits on nothing");
        self.run_spawned();
    }

    fn reply(&self, method: &'static str, canister: Principal, arg: &[u8]) -> Vec<u8> {
        let mut w = self.w();
        match method {
            "get_challenge" => match w.handouts.pop_front() {
                Some(id) => encode(Ok::<_, GameError>(challenge(id))),
                None => encode(Err::<mainer_types::game::Challenge, _>(GameError::NoOpenChallenge)),
            },
            "release_challenge" => {
                w.released.push(candid::decode_one(arg).unwrap());
                encode(Ok::<(), GameError>(()))
            }
            "report_cycles" => {
                w.cycles_reports.push(candid::decode_one(arg).unwrap());
                encode(Ok::<(), mainer_types::creator::CreatorError>(()))
            }
            // The creator reads an LLM's balance for its controller.
            "llm_cycles" => {
                let llm: Principal = candid::decode_one(arg).unwrap();
                let b = w.llm_balances.get(&llm).copied().unwrap_or(5_000_000_000_000);
                encode(Ok::<u128, mainer_types::creator::CreatorError>(b))
            }
            // The game state's own record of a challenge: `challenge(id)`.
            "challenge" => encode(Ok::<_, GameError>(challenge(candid::decode_one(arg).unwrap()))),
            "is_challenge_open" => {
                let id: u64 = candid::decode_one(arg).unwrap();
                encode(Ok::<bool, GameError>(!w.closed.contains(&id)))
            }
            "submit" => {
                let r: SubmitRequest = candid::decode_one(arg).unwrap();
                if w.submitted.contains(&r.challenge_id) {
                    return encode(Err::<Submission, _>(GameError::AlreadySubmitted(r.challenge_id)));
                }
                if w.closed.contains(&r.challenge_id) {
                    return encode(Err::<Submission, _>(GameError::ChallengeClosed(r.challenge_id)));
                }
                w.submitted.push(r.challenge_id);
                w.submitted_cycles.push(r.evidence.cycles_spent);
                encode(Ok::<_, GameError>(Submission {
                    challenge_id: r.challenge_id,
                    mainer: principal(0),
                    owner: principal(0),
                    role: MainerRole::Own,
                    answer: r.answer,
                    evidence: Evidence {
                        prompt_sha256: r.evidence.prompt_sha256,
                        answer_sha256: String::new(),
                        llm_canister: r.evidence.llm_canister,
                        model_sha256: None,
                        llm_calls: r.evidence.llm_calls,
                        prompt_tokens: None,
                        generated_tokens: None,
                    },
                    status: SubmissionStatus::Submitted,
                    submitted_at_ns: w.now,
                }))
            }
            "enqueue_challenge" => {
                w.service_requests.push(candid::decode_one(arg).unwrap());
                match w.service_refusals.pop_front() {
                    Some(e) => encode(Err::<ServiceTicket, _>(e)),
                    None => encode(Ok::<_, ControllerError>(ServiceTicket { item_id: 0, queued_ahead: 0 })),
                }
            }
            "deliver_answer" => {
                if w.agent_refuses {
                    return encode(Err::<(), _>(ControllerError::NotFound("no such challenge".into())));
                }
                w.delivered.push(candid::decode_one(arg).unwrap());
                encode(Ok::<(), ControllerError>(()))
            }
            "get_max_tokens" => encode(MaxTokensRecord { max_tokens_update: 100, max_tokens_query: 0 }),
            "new_chat" => {
                w.runs.insert(canister, 0);
                encode(run_record("", false))
            }
            "remove_prompt_cache" => encode(run_record("", false)),
            // The prompt in one call, then the answer in one more.
            "run_update" if w.llm_refuses => encode(OutputRecordResult::Err(RunOutputRecord {
                status_code: 500,
                error: "the model is not loaded".into(),
                ..Default::default()
            })),
            "run_update" => {
                let runs = w.runs.entry(canister).or_default();
                *runs += 1;
                encode(if *runs == 1 { run_record("", false) } else { run_record("an answer", true) })
            }
            other => panic!("the fake does not know {other}"),
        }
    }
}

impl Runtime for Fake {
    fn time(&self) -> u64 {
        self.w().now
    }

    fn instruction_counter(&self) -> u64 {
        1_000
    }

    fn cycle_balance(&self) -> u128 {
        self.w().balance.unwrap_or(1_000_000_000_000)
    }

    fn spawn(&self, f: impl Future<Output = ()> + 'static) {
        self.w().spawned.push(Box::pin(f));
    }

    async fn call_raw(&self, canister: Principal, method: &'static str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let hang = {
            let mut w = self.w();
            w.log.push(format!("{method} {canister}"));
            if w.trap_on == Some(method) {
                drop(w);
                panic!("trap in {method}");
            }
            if w.stopped.contains(&canister) {
                return Err(CallError { code: 5, message: format!("canister {canister} is stopped") });
            }
            if w.hang_next == Some(method) {
                w.hang_next = None;
                w.next_hang += 1;
                let ticket = w.next_hang;
                w.hung.insert(ticket);
                Some(ticket)
            } else {
                None
            }
        };
        if let Some(ticket) = hang {
            Hang(self.0.clone(), ticket).await;
        }
        let reply = self.reply(method, canister, &arg);
        let mut w = self.w();
        if w.lose_reply_of == Some(method) {
            w.lose_reply_of = None;
            return Err(CallError { code: SYS_UNKNOWN, message: format!("the reply of {method} was lost") });
        }
        Ok(reply)
    }

    async fn deposit_cycles(&self, canister: Principal, cycles: u128) -> Result<(), CallError> {
        let mut w = self.w();
        w.log.push(format!("deposit_cycles {canister}"));
        w.deposits.push((canister, cycles));
        if let Some(b) = w.llm_balances.get_mut(&canister) {
            *b += cycles;
        }
        Ok(())
    }
}

// ----------------------------------------------------------------------
// Set-up
// ----------------------------------------------------------------------

fn settings() -> ControllerSettings {
    ControllerSettings {
        max_attempts: 3,
        retry_base_seconds: 10,
        retry_max_seconds: 10,
        llm_rest_seconds: 30,
        in_flight_timeout_seconds: 300,
        ..ControllerSettings::default()
    }
}

/// A controller of `role` with LLMs 1..=`llms`, and the fake around it.
fn setup(role: MainerRole, llms: u8) -> Fake {
    mutate_state(|s| {
        let mut c = config(role, settings());
        c.game_state = game();
        if role == MainerRole::ShareAgent {
            c.share_service = Some(service());
        }
        s.install(c);
        for n in 1..=llms {
            s.add_llm(llm(n), Some("model".into())).unwrap();
        }
        if role == MainerRole::ShareService {
            s.add_agent(agent());
        }
    });
    Fake::default()
}

fn queued(challenge_id: u64) -> u64 {
    mutate_state(|s| s.enqueue(challenge(challenge_id), WorkOrigin::Pulled, 0).unwrap().id)
}

fn item(id: u64) -> WorkItem {
    read_state(|s| s.item(id).or_else(|| s.finished_item(id))).expect("the item is kept")
}

fn pull(fake: &Fake) -> mainer_types::controller::StepReport {
    run(tasks::pull(fake)).expect("pull waits on nothing")
}

// ----------------------------------------------------------------------
// Pull
// ----------------------------------------------------------------------

#[test]
fn a_lost_pull_reply_and_a_repeated_offer_queue_the_challenge_once() {
    let fake = setup(MainerRole::Own, 1);
    fake.w().handouts.extend([7, 7, 7]);
    fake.w().lose_reply_of = Some("get_challenge");
    let lost = pull(&fake);
    assert!(lost.notes.iter().any(|n| n.contains("was lost")), "{lost:?}");
    assert_eq!(read_state(|s| s.count_in(|_| true)), 0, "nothing taken on a lost reply");
    // The game state offers it again (its hand-out stands): taken once.
    assert_eq!(pull(&fake).finished, 1);
    let again = pull(&fake);
    assert_eq!(again.finished, 0);
    assert!(again.notes.iter().any(|n| n.contains("already queued")), "{again:?}");
    assert_eq!(read_state(|s| (s.count_in(|_| true), s.counters().challenges_pulled)), (1, 1));
}

#[test]
fn a_challenge_given_up_before_is_given_back_when_offered_again() {
    let fake = setup(MainerRole::Own, 1);
    let id = queued(9);
    mutate_state(|s| s.failed(id, "refused".into(), 0));
    fake.w().handouts.push_back(9);
    let r = pull(&fake);
    assert_eq!(r.finished, 0);
    assert_eq!(fake.w().released, vec![9], "given back, not queued again");
    assert_eq!(read_state(|s| s.count_in(|_| true)), 0);
}

#[test]
fn a_trap_in_a_pull_round_records_nothing_and_frees_the_round() {
    let fake = setup(MainerRole::Own, 1);
    fake.w().handouts.push_back(3);
    fake.w().trap_on = Some("get_challenge");
    let f = fake.clone();
    let trapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(timers::pull_round(&f))));
    assert!(trapped.is_err());
    assert!(!timers::is_running(timers::Round::Pull), "the guard was released");
    fake.w().trap_on = None;
    assert_eq!(run(timers::pull_round(&fake)), Some(true));
    assert_eq!(read_state(|s| s.count_in(|st| *st == WorkState::Queued)), 1);
}

#[test]
fn rounds_do_not_overlap_and_an_abandoned_round_frees_its_guard() {
    let fake = setup(MainerRole::Own, 1);
    fake.w().handouts.push_back(3);
    fake.w().hang_next = Some("get_challenge");
    let mut first = Box::pin(timers::pull_round(&fake));
    assert!(first.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
    assert_eq!(run(timers::pull_round(&fake)), Some(false), "the first round still runs");
    assert_eq!(fake.calls("get_challenge"), 1);
    // The process round is another rule: it runs.
    assert_eq!(run(timers::process_round(&fake)), Some(true));
    drop(first); // its callback trapped
    assert!(!timers::is_running(timers::Round::Pull));
    assert_eq!(run(timers::pull_round(&fake)), Some(true));
}

// ----------------------------------------------------------------------
// Generate
// ----------------------------------------------------------------------

#[test]
fn a_generation_answers_and_the_answer_is_submitted_once() {
    let fake = setup(MainerRole::Own, 1);
    let id = queued(1);
    fake.process_round();
    assert_eq!(item(id).state, WorkState::Submitted { at_ns: 0 });
    assert_eq!(fake.w().submitted, vec![1]);
    let n = read_state(|s| s.counters());
    assert_eq!((n.answers_generated, n.submissions, n.llm_calls), (1, 1, 3), "new_chat, the prompt, the answer");
    assert!(read_state(|s| s.llm(llm(1)).unwrap().in_flight.is_none()));
}

#[test]
fn a_stopped_llm_is_an_outage_it_rests_and_the_item_is_answered_later() {
    let fake = setup(MainerRole::Own, 1);
    let id = queued(1);
    fake.w().stopped.insert(llm(1));
    fake.process_round();
    let i = item(id);
    assert_eq!((i.state.clone(), i.attempts, i.outages), (WorkState::Queued, 0, 1), "an outage spends no attempt");
    assert!(i.last_error.as_deref().is_some_and(|e| e.contains("stopped")), "{i:?}");
    let slot = read_state(|s| s.llm(llm(1)).unwrap());
    assert!(slot.in_flight.is_none() && slot.failures == 1 && slot.resting_until_ns == 30 * SEC);
    // Stopped for many rounds: still never given up.
    for _ in 0..10 {
        fake.advance(31);
        fake.process_round();
    }
    let i = item(id);
    assert_eq!((i.state.clone(), i.attempts), (WorkState::Queued, 0));
    assert!(i.outages > 3, "beyond max_attempts, still queued: {i:?}");
    fake.w().stopped.clear();
    fake.advance(31);
    fake.process_round();
    assert!(matches!(item(id).state, WorkState::Submitted { .. }));
    assert_eq!(fake.w().submitted, vec![1]);
}

#[test]
fn a_lost_llm_reply_is_an_outage_and_the_item_is_generated_again() {
    let fake = setup(MainerRole::Own, 1);
    let id = queued(1);
    fake.w().lose_reply_of = Some("run_update");
    fake.process_round();
    let i = item(id);
    assert_eq!((i.state.clone(), i.attempts, i.outages), (WorkState::Queued, 0, 1));
    fake.advance(31);
    fake.process_round();
    assert!(matches!(item(id).state, WorkState::Submitted { .. }));
    assert_eq!(read_state(|s| s.counters().generation_failures), 1);
}

#[test]
fn an_llm_that_refuses_spends_attempts_then_the_challenge_is_given_back() {
    let fake = setup(MainerRole::Own, 1);
    let id = queued(4);
    fake.w().llm_refuses = true;
    for _ in 0..3 {
        fake.process_round();
        fake.advance(31);
    }
    let i = item(id);
    assert!(matches!(i.state, WorkState::Failed { .. }), "{i:?}");
    assert_eq!((i.attempts, i.outages), (3, 0));
    assert_eq!(fake.w().released, vec![4], "given back to the game state once");
    assert_eq!(read_state(|s| s.counters().items_failed), 1);
    assert!(fake.w().submitted.is_empty());
}

#[test]
fn an_abandoned_generation_is_reclaimed_and_its_late_reply_ignored() {
    let fake = setup(MainerRole::Own, 1);
    let id = queued(1);
    fake.w().hang_next = Some("run_update");
    fake.process_round();
    // The step waits, its state written: the item and the LLM are held.
    assert!(matches!(item(id).state, WorkState::InFlight { llm: Some(l), .. } if l == llm(1)));
    assert_eq!(read_state(|s| s.llm(llm(1)).unwrap().in_flight), Some(id));
    // Before the time-out nothing moves; after it the item goes back (an outage).
    fake.advance(200);
    fake.process_round();
    assert!(matches!(item(id).state, WorkState::InFlight { .. }));
    fake.advance(101);
    fake.process_round();
    let i = item(id);
    assert_eq!((i.state.clone(), i.attempts, i.outages), (WorkState::Queued, 0, 1));
    assert!(read_state(|s| s.llm(llm(1)).unwrap().in_flight.is_none()), "the LLM is free again");
    // The same LLM takes the second try, which waits too.
    fake.advance(11);
    fake.w().hang_next = Some("run_update");
    fake.process_round();
    assert_eq!(read_state(|s| s.llm(llm(1)).unwrap().in_flight), Some(id));
    // The first try's reply comes back now: it neither answers the item nor
    // frees the LLM the second try holds.
    fake.release_hung();
    fake.run_spawned();
    assert!(matches!(item(id).state, WorkState::InFlight { .. }));
    assert_eq!(read_state(|s| s.llm(llm(1)).unwrap().in_flight), Some(id), "one answer in flight per LLM");
    fake.release_hung();
    fake.process_round();
    assert!(matches!(item(id).state, WorkState::Submitted { .. }));
    assert_eq!(fake.w().submitted, vec![1]);
    let n = read_state(|s| s.counters());
    assert_eq!((n.submissions, n.answers_generated), (1, 2), "two generations, one submission");
    assert!(read_state(|s| s.llm(llm(1)).unwrap().in_flight.is_none()));
}

#[test]
fn a_generation_abandoned_by_an_upgrade_goes_back_to_the_queue() {
    let fake = setup(MainerRole::Own, 2);
    let a = queued(1);
    let b = queued(2);
    fake.w().hang_next = Some("new_chat");
    fake.process_round();
    assert_eq!(fake.abandon_spawned(), 1, "one generation waits");
    assert!(matches!(item(a).state, WorkState::InFlight { .. }));
    assert!(matches!(item(b).state, WorkState::Submitted { .. }));
    mutate_state(|s| s.after_upgrade(fake.time()));
    let i = item(a);
    assert_eq!((i.state.clone(), i.attempts, i.outages), (WorkState::Queued, 0, 1));
    assert!(read_state(|s| s.llm_ids().iter().all(|l| s.llm(*l).unwrap().in_flight.is_none())));
    fake.advance(11);
    fake.process_round();
    assert!(matches!(item(a).state, WorkState::Submitted { .. }));
    assert_eq!(fake.w().submitted, vec![2, 1]);
}

#[test]
fn a_challenge_that_closed_is_dropped_not_generated() {
    let fake = setup(MainerRole::Own, 1);
    let id = queued(5);
    fake.w().closed.insert(5);
    fake.process_round();
    assert!(matches!(item(id).state, WorkState::Dropped { .. }));
    assert_eq!(fake.calls("new_chat"), 0);
    assert_eq!(read_state(|s| s.counters().items_dropped), 1);
}

// ----------------------------------------------------------------------
// Submit
// ----------------------------------------------------------------------

fn an_answer() -> mainer_types::controller::Answer {
    mainer_types::controller::Answer {
        text: "an answer".into(),
        evidence: mainer_types::game::ClaimedEvidence {
            prompt_sha256: String::new(),
            llm_canister: llm(1),
            model_sha256: None,
            llm_calls: 2,
            prompt_tokens: None,
            generated_tokens: None,
            cycles_spent: None,
        },
    }
}

/// Item `id` answered, not yet handed on (a generation hands its answer on
/// at once; these tests look at the hand-on by itself).
fn set_answered(fake: &Fake, id: u64) -> u64 {
    mutate_state(|s| s.set_answer(id, an_answer(), fake.time()));
    assert_eq!(item(id).state, WorkState::Answered);
    id
}

/// An Own controller with item `challenge_id` answered, not yet submitted.
fn answered(fake: &Fake, challenge_id: u64) -> u64 {
    set_answered(fake, queued(challenge_id))
}

#[test]
fn a_lost_submit_reply_is_an_outage_and_the_answer_counts_once() {
    let fake = setup(MainerRole::Own, 1);
    fake.w().lose_reply_of = Some("submit");
    // The process round answers and submits; the submission's reply is lost.
    let id = queued(1);
    fake.process_round();
    let i = item(id);
    assert_eq!((i.state.clone(), i.attempts, i.outages), (WorkState::Answered, 0, 1), "the answer is kept");
    assert_eq!(fake.w().submitted, vec![1], "the game state has it already");
    fake.advance(11);
    let r = run(tasks::hand_on(&fake)).unwrap();
    assert_eq!(r.finished, 1, "AlreadySubmitted counts as submitted");
    assert!(matches!(item(id).state, WorkState::Submitted { .. }));
    assert_eq!(read_state(|s| s.counters().submissions), 1);
    assert_eq!(fake.w().submitted, vec![1]);
}

#[test]
fn an_unreachable_game_state_keeps_the_answer_without_spending_attempts() {
    let fake = setup(MainerRole::Own, 1);
    let id = answered(&fake, 1);
    fake.w().stopped.insert(game());
    for _ in 0..5 {
        fake.advance(11);
        run(tasks::hand_on(&fake)).unwrap();
    }
    let i = item(id);
    assert_eq!((i.state.clone(), i.attempts, i.outages), (WorkState::Answered, 0, 5));
    assert!(i.answer.is_some());
    fake.w().stopped.clear();
    fake.advance(11);
    run(tasks::hand_on(&fake)).unwrap();
    assert!(matches!(item(id).state, WorkState::Submitted { .. }));
}

#[test]
fn a_trap_while_submitting_leaves_the_answer_to_submit_again() {
    let fake = setup(MainerRole::Own, 1);
    let id = answered(&fake, 1);
    fake.w().trap_on = Some("submit");
    let f = fake.clone();
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(timers::process_round(&f)))).is_err());
    assert!(!timers::is_running(timers::Round::Process), "the guard was released");
    assert_eq!(item(id).state, WorkState::Answered, "nothing written");
    fake.w().trap_on = None;
    fake.process_round();
    assert!(matches!(item(id).state, WorkState::Submitted { .. }));
    assert_eq!(fake.w().submitted, vec![1]);
}

#[test]
fn a_submission_to_a_closed_challenge_is_dropped() {
    let fake = setup(MainerRole::Own, 1);
    let id = answered(&fake, 1);
    fake.w().closed.insert(1);
    run(tasks::hand_on(&fake)).unwrap();
    assert!(matches!(item(id).state, WorkState::Dropped { .. }));
    assert!(fake.w().submitted.is_empty());
}

// ----------------------------------------------------------------------
// Deliver (ShareService)
// ----------------------------------------------------------------------

/// A ShareService with the agent's challenge answered.
fn service_answered(fake: &Fake, challenge_id: u64) -> u64 {
    let request = ServiceRequest { challenge: ServiceChallenge::from(&challenge(challenge_id)) };
    let ticket = tasks::accept_from_agent(agent(), request, 0).unwrap();
    set_answered(fake, ticket.item_id)
}

#[test]
fn a_lost_delivery_reply_is_an_outage_and_the_item_is_delivered_once() {
    let fake = setup(MainerRole::ShareService, 1);
    let id = service_answered(&fake, 1);
    fake.w().lose_reply_of = Some("deliver_answer");
    run(tasks::hand_on(&fake)).unwrap();
    let i = item(id);
    assert_eq!((i.state.clone(), i.attempts, i.outages), (WorkState::Answered, 0, 1));
    fake.advance(11);
    run(tasks::hand_on(&fake)).unwrap();
    assert!(matches!(item(id).state, WorkState::Delivered { .. }));
    assert_eq!(read_state(|s| s.counters().deliveries), 1);
    // The agent heard twice (at least once is the rule); it acknowledges repeats.
    assert_eq!(fake.w().delivered.len(), 2);
    assert!(fake.w().delivered.iter().all(|d| matches!(d.outcome, DeliveryOutcome::Answered(_))));
}

#[test]
fn a_stopped_agent_is_an_outage_and_a_refusing_one_drops_the_item() {
    let fake = setup(MainerRole::ShareService, 1);
    let id = service_answered(&fake, 1);
    fake.w().stopped.insert(agent());
    for _ in 0..4 {
        fake.advance(11);
        run(tasks::hand_on(&fake)).unwrap();
    }
    let i = item(id);
    assert_eq!((i.state.clone(), i.attempts, i.outages), (WorkState::Answered, 0, 4));
    fake.w().stopped.clear();
    fake.w().agent_refuses = true;
    fake.advance(11);
    run(tasks::hand_on(&fake)).unwrap();
    assert!(matches!(item(id).state, WorkState::Dropped { .. }));
    assert_eq!(read_state(|s| s.counters().deliveries), 0);
}

#[test]
fn an_agent_asking_again_gets_the_same_item() {
    let _fake = setup(MainerRole::ShareService, 1);
    let req = || ServiceRequest { challenge: ServiceChallenge::from(&challenge(3)) };
    let a = tasks::accept_from_agent(agent(), req(), 0).unwrap();
    let b = tasks::accept_from_agent(agent(), req(), 5).unwrap();
    assert_eq!(a.item_id, b.item_id);
    assert_eq!(read_state(|s| s.count_in(|_| true)), 1);
}

// ----------------------------------------------------------------------
// Forward and answers coming back (ShareAgent)
// ----------------------------------------------------------------------

#[test]
fn forward_failures_follow_whose_fault_they_are() {
    let fake = setup(MainerRole::ShareAgent, 0);
    let id = queued(1);
    let forward = |f: &Fake| run(tasks::forward(f)).unwrap();
    fake.w().stopped.insert(service());
    forward(&fake);
    assert_eq!((item(id).attempts, item(id).outages), (0, 1), "unreachable: an outage");
    fake.w().stopped.clear();
    fake.w().service_refusals.push_back(ControllerError::QueueFull { capacity: 1 });
    fake.advance(11);
    forward(&fake);
    assert_eq!((item(id).attempts, item(id).outages), (0, 1), "full: our turn is kept, nothing spent");
    assert_eq!(item(id).next_attempt_ns, fake.time() + 10 * 1_000_000_000, "the base delay: back for our turn");
    fake.w().service_refusals.push_back(ControllerError::InvalidInput("no".into()));
    fake.advance(11);
    forward(&fake);
    assert_eq!((item(id).attempts, item(id).outages), (1, 1), "refused: an attempt");
    fake.w().lose_reply_of = Some("enqueue_challenge");
    fake.advance(11);
    forward(&fake);
    assert_eq!((item(id).state, item(id).outages), (WorkState::Queued, 2), "a lost reply: sent again later");
    fake.advance(11);
    forward(&fake);
    assert!(matches!(item(id).state, WorkState::InFlight { llm: None, .. }));
    assert_eq!(fake.w().service_requests.len(), 4, "the stopped service heard nothing");
}

#[test]
fn a_full_service_stops_the_forward_round_and_agents_wait_in_turn() {
    let fake = setup(MainerRole::ShareAgent, 0);
    let (a, b) = (queued(1), queued(2));
    fake.w().service_refusals.push_back(ControllerError::QueueFull { capacity: 1 });
    run(tasks::forward(&fake)).unwrap();
    assert_eq!(fake.w().service_requests.len(), 1, "no second request to a full service");
    assert_eq!((item(a).state, item(b).state), (WorkState::Queued, WorkState::Queued));
}

#[test]
fn a_service_takes_one_challenge_per_agent_and_lets_waiting_agents_in_in_turn() {
    let _fake = setup(MainerRole::ShareService, 1);
    mutate_state(|s| s.update_config(|c| c.settings.max_queue = 2));
    let other = |n: u8| principal(100 + n);
    for n in 0..4 {
        mutate_state(|s| s.add_agent(other(n)));
    }
    let ask = |who: Principal, challenge_id: u64, at: u64| {
        let request = ServiceRequest { challenge: ServiceChallenge::from(&challenge(challenge_id)) };
        tasks::accept_from_agent(who, request, at)
    };
    assert!(ask(other(0), 1, 0).is_ok());
    assert!(matches!(ask(other(0), 2, 0), Err(ControllerError::Busy(_))), "one at a time per agent");
    assert!(ask(other(1), 1, 0).is_ok());
    // Full: 2 then 3 wait, in that order.
    assert!(matches!(ask(other(2), 1, 1), Err(ControllerError::QueueFull { capacity: 2 })));
    assert!(matches!(ask(other(3), 1, 2), Err(ControllerError::QueueFull { .. })));
    assert_eq!(read_state(|s| s.agents_waiting()), 2);
    // Agent 0's item is delivered: one place; agent 0 (just served) and 3 must let 2 in first.
    let first = read_state(|s| s.find(1, WorkOrigin::Agent(other(0)))).unwrap();
    mutate_state(|s| s.delivered(first.id, 3));
    assert!(matches!(ask(other(0), 2, 4), Err(ControllerError::QueueFull { .. })), "served ones queue up again");
    assert!(matches!(ask(other(3), 1, 4), Err(ControllerError::QueueFull { .. })));
    assert!(ask(other(2), 1, 5).is_ok(), "the longest waiting agent takes the place");
    assert_eq!(read_state(|s| s.agents_waiting()), 2);
}

#[test]
fn an_answer_delivered_to_the_agent_is_submitted_once_even_when_repeated() {
    let fake = setup(MainerRole::ShareAgent, 0);
    let id = queued(1);
    run(tasks::forward(&fake)).unwrap();
    let answer = || AnswerDelivery { challenge_id: 1, outcome: DeliveryOutcome::Answered(an_answer()) };
    tasks::receive_delivery(&fake, answer()).unwrap();
    tasks::receive_delivery(&fake, answer()).unwrap();
    run(tasks::hand_on(&fake)).unwrap();
    tasks::receive_delivery(&fake, answer()).unwrap();
    assert!(matches!(item(id).state, WorkState::Submitted { .. }));
    assert_eq!(fake.w().submitted, vec![1]);
    let unknown = AnswerDelivery { challenge_id: 99, ..answer() };
    assert!(matches!(tasks::receive_delivery(&fake, unknown), Err(ControllerError::NotFound(_))));
}

#[test]
fn a_forwarded_challenge_the_service_never_answers_is_sent_again() {
    let fake = setup(MainerRole::ShareAgent, 0);
    let id = queued(1);
    run(tasks::forward(&fake)).unwrap();
    fake.advance(301);
    run(tasks::forward(&fake)).unwrap();
    let i = item(id);
    assert_eq!((i.attempts, i.outages), (0, 1), "slowness is an outage");
    assert!(matches!(i.state, WorkState::Queued), "waits out its back-off");
    fake.advance(11);
    run(tasks::forward(&fake)).unwrap();
    assert!(matches!(item(id).state, WorkState::InFlight { llm: None, .. }));
    assert_eq!(fake.w().service_requests.len(), 2);
}

// ----------------------------------------------------------------------
// The cycles floor and the ShareService's check of requests
// ----------------------------------------------------------------------

#[test]
fn a_balance_below_the_floor_pauses_the_rounds_until_a_top_up() {
    let fake = setup(MainerRole::Own, 1);
    fake.w().handouts.extend([1, 2]);
    fake.w().balance = Some(100_000_000_000); // below the default floor of 200 B
    run(timers::pull_round(&fake)).unwrap();
    assert!(read_state(|s| s.low_cycles()));
    assert_eq!(fake.calls("get_challenge"), 0, "paused: no pull");
    fake.w().balance = Some(210_000_000_000); // not yet a tenth above the floor
    run(timers::pull_round(&fake)).unwrap();
    assert_eq!(fake.calls("get_challenge"), 0);
    fake.w().balance = Some(300_000_000_000);
    run(timers::pull_round(&fake)).unwrap();
    assert!(!read_state(|s| s.low_cycles()));
    assert_eq!(read_state(|s| s.count_in(|st| *st == WorkState::Queued)), 1, "resumed by itself");
}

/// An LLM is funded only below the floor, at most once per check interval,
/// and never from below the controller's own floor.
#[test]
fn llms_are_funded_only_below_the_floor_once_per_check() {
    use mainer_types::controller::LlmFunding;
    let fake = setup(MainerRole::Own, 2);
    fake.w().now = 1_000_000_000_000;
    fake.w().llm_balances.insert(llm(1), 100);
    fake.w().llm_balances.insert(llm(2), 5_000);
    crate::budget_api::set_llm_funding(LlmFunding { floor: 1_000, amount: 2_000, check_seconds: 60 }).unwrap();
    run(crate::llm_funding::maybe_fund(&fake)).unwrap();
    assert_eq!(fake.w().deposits, vec![(llm(1), 2_000)], "only the LLM below the floor");
    fake.w().llm_balances.insert(llm(1), 100);
    fake.w().now += 30_000_000_000;
    run(crate::llm_funding::maybe_fund(&fake)).unwrap();
    assert_eq!(fake.w().deposits.len(), 1, "not before the next check");
    assert_eq!(fake.calls("llm_cycles"), 2, "one balance question per LLM per check");
    fake.w().now += 31_000_000_000;
    fake.w().balance = Some(crate::budget_api::floor() + 1_000);
    run(crate::llm_funding::maybe_fund(&fake)).unwrap();
    assert_eq!(fake.w().deposits.len(), 1, "it would take the controller below its own floor");
    assert_eq!(crate::budget_api::report(0, 0).llm_funded, 2_000);
}

/// What a mAIner spends (its own and its LLM's spending, funding counted
/// once) goes to the game state with each submission and to the creator
/// once an hour.
#[test]
fn cycles_spent_with_the_llms_share_reach_the_game_state_and_hourly_the_creator() {
    const HOUR: u64 = 3_600 * SEC;
    let fake = setup(MainerRole::Own, 1);
    fake.w().balance = Some(10_000_000_000_000);
    fake.w().llm_balances.insert(llm(1), 5_000_000_000_000);
    queued(1);
    fake.process_round();
    assert_eq!(fake.w().cycles_reports.len(), 1, "the first round reports");
    // The controller spent 1 B and its LLM 3 B by the next round.
    fake.w().balance = Some(9_999_000_000_000);
    fake.w().llm_balances.insert(llm(1), 4_997_000_000_000);
    fake.advance(601);
    queued(2);
    fake.process_round();
    assert_eq!(fake.w().submitted, vec![1, 2]);
    assert_eq!(fake.w().submitted_cycles.last(), Some(&Some(4_000_000_000)), "its own and its LLM's");
    assert_eq!(fake.w().cycles_reports.len(), 1, "not again within the hour");
    fake.w().now += HOUR;
    fake.process_round();
    let report = fake.w().cycles_reports.last().cloned().unwrap();
    assert_eq!(fake.w().cycles_reports.len(), 2);
    assert_eq!((report.spent, report.per_answer), (4_000_000_000, Some(2_000_000_000)));
    assert!(report.per_day.is_some_and(|d| d > 0));
}

#[test]
fn a_service_checks_a_request_against_the_game_state_once() {
    let fake = setup(MainerRole::ShareService, 1);
    let real = ServiceChallenge::from(&challenge(8));
    assert_eq!(run(crate::share_check::verify(&fake, &real)).unwrap(), Ok(()));
    let forged = ServiceChallenge { question: "my homework".into(), ..real.clone() };
    let refused = run(crate::share_check::verify(&fake, &forged)).unwrap();
    assert_eq!(refused, Err(ControllerError::ChallengeMismatch { challenge_id: 8 }));
    assert_eq!(fake.calls("challenge "), 1, "the game state was asked once");
    // An unreachable game state is an outage for the agent, not a verdict.
    fake.w().stopped.insert(game());
    let other = ServiceChallenge::from(&challenge(9));
    let r = run(crate::share_check::verify(&fake, &other)).unwrap();
    assert!(matches!(r, Err(ControllerError::CallFailed { .. })), "{r:?}");
}
