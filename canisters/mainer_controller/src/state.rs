//! Everything the controller keeps, in stable memory: config, counters,
//! ShareAgents, the LLM [`Pool`] and the [`WorkQueue`]. [`State`] composes
//! them behind methods that say what happens in the domain (an item is
//! enqueued, assigned, answered, handed on, fails, is dropped) and keeps the
//! pool, the queue and the counters consistent with each other;
//! [`read_state`] / [`mutate_state`] are the only door to the instance.
//!
//! Upgrade compatibility: memory ids are never reused and the records keep
//! their Candid encodings; the index of the work queue (new in schema 1) and
//! its lanes (schema 2) are built once from the items of an older release
//! ([`State::migrate`]).

use std::cell::RefCell;

use candid::{CandidType, Principal};
use ic_stable_structures::memory_manager::MemoryManager;
use ic_stable_structures::{DefaultMemoryImpl, StableBTreeMap, StableCell};
use mainer_types::controller::{
    Answer, ControllerError, ControllerSettings, Counters, LlmStatus, WorkItem, WorkOrigin, WorkState,
};
use mainer_types::game::Challenge;
use mainer_types::llm_client::LlmError;
use mainer_types::stable::Stored;
use mainer_types::{MainerRole, Page, PageRequest};
use serde::Deserialize;

use crate::budget::Budget;
pub use crate::memory::Memory;
use crate::memory::{
    AGENT_ITEMS, AGENTS, ANSWERED_LANE, BUDGET, CONFIG, COUNTERS, GAME_TASK, HISTORY, IN_FLIGHT_LANE, LLMS, QUEUE,
    QUEUED_LANE, SCHEMA, WAITLIST, WAITLIST_AGENTS, WORK_INDEX,
};
use crate::pool::{LlmSlot, Pool};
use crate::turns::Turns;
use crate::work::{Fault, QueueCounts, QueueMemories, WorkQueue};

/// Version of the layout: 1 added the work index, 2 the queue's lanes and
/// the count of each agent's items.
const SCHEMA_VERSION: u64 = 2;

/// ShareService: unfinished items one ShareAgent may hold at a time (its
/// share of the queue; the agent sends its next challenge when one is done).
pub const AGENT_SHARE: u64 = 1;

const NANOS: u64 = 1_000_000_000;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub role: MainerRole,
    pub game_state: Principal,
    pub creator: Principal,
    pub owner: Principal,
    pub share_service: Option<Principal>,
    pub settings: ControllerSettings,
    pub paused: bool,
}

/// Counters and id sequences that must survive upgrades.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
struct PersistentCounters {
    next_item_id: u64,
    counters: Counters,
    /// When an answer was last submitted or delivered.
    last_handed_on_ns: Option<u64>,
    /// Since when work (an offered challenge, an agent's request) has waited
    /// with no answer handed on; None while there is nothing to do.
    waiting_since_ns: Option<u64>,
}

pub struct State {
    config: StableCell<Stored<Option<Config>>, Memory>,
    counters: StableCell<Stored<PersistentCounters>, Memory>,
    agents: StableBTreeMap<Principal, (), Memory>,
    schema: StableCell<u64, Memory>,
    budget: StableCell<Stored<Budget>, Memory>,
    pool: Pool,
    work: WorkQueue,
    game_task: StableCell<Stored<Option<crate::game_roles::GameTask>>, Memory>,
    turns: Turns,
}

impl State {
    pub fn new(memory: DefaultMemoryImpl) -> Self {
        let mm = MemoryManager::init(memory);
        State {
            config: StableCell::init(mm.get(CONFIG), Stored(None)),
            counters: StableCell::init(mm.get(COUNTERS), Stored(PersistentCounters::default())),
            agents: StableBTreeMap::init(mm.get(AGENTS)),
            schema: StableCell::init(mm.get(SCHEMA), 0),
            budget: StableCell::init(mm.get(BUDGET), Stored(Budget::default())),
            pool: Pool::init(mm.get(LLMS)),
            work: WorkQueue::init(QueueMemories {
                queue: mm.get(QUEUE),
                history: mm.get(HISTORY),
                index: mm.get(WORK_INDEX),
                queued: mm.get(QUEUED_LANE),
                in_flight: mm.get(IN_FLIGHT_LANE),
                answered: mm.get(ANSWERED_LANE),
                by_agent: mm.get(AGENT_ITEMS),
            }),
            turns: Turns::init(mm.get(WAITLIST), mm.get(WAITLIST_AGENTS)),
            game_task: StableCell::init(mm.get(GAME_TASK), Stored(None)),
        }
    }

    // ------------------------------------------------------------------
    // Install and upgrade
    // ------------------------------------------------------------------

    /// At install: the configuration, on fresh (so already indexed) memory.
    pub fn install(&mut self, config: Config) {
        self.config.set(Stored(Some(config)));
        self.schema.set(SCHEMA_VERSION);
    }

    /// After an upgrade: indexes the work of an older release (once), and
    /// puts back in the queue what was generating (no generation survives an
    /// upgrade) with every LLM freed.
    pub fn after_upgrade(&mut self, now_ns: u64) -> Vec<u64> {
        self.migrate();
        let back = self.reclaim_generations(now_ns, true);
        self.pool.release_all();
        back
    }

    fn migrate(&mut self) {
        if *self.schema.get() >= SCHEMA_VERSION {
            return;
        }
        self.work.reindex();
        self.schema.set(SCHEMA_VERSION);
    }

    // ------------------------------------------------------------------
    // Configuration
    // ------------------------------------------------------------------

    pub fn config(&self) -> Config {
        self.config.get().0.clone().expect("the controller is initialized at install")
    }

    pub fn update_config(&mut self, f: impl FnOnce(&mut Config)) {
        let mut c = self.config();
        f(&mut c);
        self.config.set(Stored(Some(c)));
    }

    pub fn settings(&self) -> ControllerSettings {
        self.config().settings
    }

    pub fn role(&self) -> MainerRole {
        self.config().role
    }

    pub fn paused(&self) -> bool {
        self.config().paused
    }

    // ------------------------------------------------------------------
    // Counters and the stall clock
    // ------------------------------------------------------------------

    pub fn counters(&self) -> Counters {
        self.counters.get().0.counters.clone()
    }

    pub fn count(&mut self, f: impl FnOnce(&mut Counters)) {
        self.persistent(|c| f(&mut c.counters));
    }

    fn persistent(&mut self, f: impl FnOnce(&mut PersistentCounters)) {
        let mut c = self.counters.get().0.clone();
        f(&mut c);
        self.counters.set(Stored(c));
    }

    fn next_item_id(&mut self) -> u64 {
        let mut id = 0;
        self.persistent(|c| {
            id = c.next_item_id;
            c.next_item_id += 1;
        });
        id
    }

    pub fn last_handed_on_ns(&self) -> Option<u64> {
        self.counters.get().0.last_handed_on_ns
    }

    pub fn waiting_since_ns(&self) -> Option<u64> {
        self.counters.get().0.waiting_since_ns
    }

    /// Work arrived (a challenge pulled or offered again, an agent's request):
    /// the stall clock starts unless it runs already.
    pub fn work_offered(&mut self, now_ns: u64) {
        if self.waiting_since_ns().is_none() {
            self.persistent(|c| c.waiting_since_ns = Some(now_ns));
        }
    }

    /// An answer went out: the stall clock restarts if more work waits.
    fn handed_on(&mut self, now_ns: u64) {
        let more = !self.work.is_empty();
        self.persistent(|c| {
            c.last_handed_on_ns = Some(now_ns);
            c.waiting_since_ns = more.then_some(now_ns);
        });
    }

    /// Nothing offered and nothing queued: not stalled, just idle.
    pub fn idle(&mut self) {
        if self.work.is_empty() && self.waiting_since_ns().is_some() {
            self.persistent(|c| c.waiting_since_ns = None);
        }
    }

    // ------------------------------------------------------------------
    // The cycles budget
    // ------------------------------------------------------------------

    pub fn budget(&self) -> Budget {
        self.budget.get().0.clone()
    }

    pub fn update_budget<R>(&mut self, f: impl FnOnce(&mut Budget) -> R) -> R {
        let mut b = self.budget();
        let r = f(&mut b);
        self.budget.set(Stored(b));
        r
    }

    /// Paused by itself: the balance fell below the floor.
    pub fn low_cycles(&self) -> bool {
        self.budget.get().0.low_cycles
    }

    /// Answers handed on (submitted or delivered).
    pub fn answers_handed_on(&self) -> u64 {
        let c = self.counters();
        c.submissions + c.deliveries
    }

    // ------------------------------------------------------------------
    // ShareAgents (ShareService)
    // ------------------------------------------------------------------

    pub fn add_agent(&mut self, agent: Principal) {
        self.agents.insert(agent, ());
    }

    /// False if `agent` was not served.
    pub fn remove_agent(&mut self, agent: Principal) -> bool {
        self.turns.forget(agent);
        self.agents.remove(&agent).is_some()
    }

    /// Agents waiting for a place in the full queue.
    pub fn agents_waiting(&self) -> u64 {
        self.turns.waiting()
    }

    pub fn is_agent(&self, p: &Principal) -> bool {
        self.agents.contains_key(p)
    }

    pub fn agent_count(&self) -> u64 {
        self.agents.len()
    }

    pub fn agents_page(&self, page: PageRequest) -> Page<Principal> {
        Page::collect(self.agents.keys(), self.agents.len(), page)
    }

    // ------------------------------------------------------------------
    // The LLM pool
    // ------------------------------------------------------------------

    pub fn llm(&self, id: Principal) -> Option<LlmSlot> {
        self.pool.get(id)
    }

    pub fn llm_ids(&self) -> Vec<Principal> {
        self.pool.ids()
    }

    pub fn add_llm(&mut self, id: Principal, model_sha256: Option<String>) -> Result<LlmStatus, ControllerError> {
        self.pool.add(id, model_sha256)?;
        Ok(self.pool.status(id, 0).expect("just added"))
    }

    pub fn remove_llm(&mut self, id: Principal) -> Result<(), ControllerError> {
        self.pool.remove(id)
    }

    pub fn set_draining(&mut self, id: Principal, draining: bool) -> Result<LlmStatus, ControllerError> {
        self.pool.set_draining(id, draining)?;
        Ok(self.pool.status(id, 0).expect("just written"))
    }

    pub fn llm_statuses(&self, now_ns: u64) -> Vec<LlmStatus> {
        self.pool.statuses(now_ns)
    }

    // ------------------------------------------------------------------
    // Work: reading
    // ------------------------------------------------------------------

    pub fn item(&self, id: u64) -> Option<WorkItem> {
        self.work.item(id)
    }

    pub fn finished_item(&self, id: u64) -> Option<WorkItem> {
        self.work.finished_item(id)
    }

    pub fn find(&self, challenge_id: u64, origin: WorkOrigin) -> Option<WorkItem> {
        self.work.find(challenge_id, origin)
    }

    pub fn find_finished(&self, challenge_id: u64, origin: WorkOrigin) -> Option<WorkItem> {
        self.work.find_finished(challenge_id, origin)
    }

    pub fn knows(&self, challenge_id: u64, origin: WorkOrigin) -> bool {
        self.work.knows(challenge_id, origin)
    }

    pub fn queue_full(&self) -> bool {
        self.work.len() >= self.settings().max_queue as u64
    }

    pub fn queued_ahead(&self, id: u64) -> u64 {
        self.work.queued_ahead(id)
    }

    pub fn next_queued(&self, now_ns: u64) -> Option<WorkItem> {
        self.work.next_queued(now_ns)
    }

    pub fn answered_due(&self, now_ns: u64) -> Vec<WorkItem> {
        self.work.answered_due(now_ns)
    }

    /// Unfinished items by state (O(1)).
    pub fn queue_counts(&self) -> QueueCounts {
        self.work.counts()
    }

    #[cfg(test)]
    pub fn count_in(&self, pred: impl Fn(&WorkState) -> bool) -> u64 {
        self.work.count_in(pred)
    }

    pub fn history_len(&self) -> u64 {
        self.work.history_len()
    }

    pub fn queue_page(&self, page: PageRequest) -> Page<WorkItem> {
        self.work.queue_page(page)
    }

    pub fn history_page(&self, page: PageRequest) -> Page<WorkItem> {
        self.work.history_page(page)
    }

    // ------------------------------------------------------------------
    // Work: what happens to an item
    // ------------------------------------------------------------------

    /// Adds a challenge at the end of the queue; refuses when full.
    pub fn enqueue(
        &mut self,
        challenge: Challenge,
        origin: WorkOrigin,
        now_ns: u64,
    ) -> Result<WorkItem, ControllerError> {
        let capacity = self.settings().max_queue;
        let id = self.counters.get().0.next_item_id;
        let item = self.work.enqueue(id, challenge, origin, now_ns, capacity)?;
        self.next_item_id();
        Ok(item)
    }

    // ------------------------------------------------------------------
    // The game roles' task (Challenger, Judge)
    // ------------------------------------------------------------------

    pub fn game_task(&self) -> Option<crate::game_roles::GameTask> {
        self.game_task.get().0.clone()
    }

    pub fn set_game_task(&mut self, task: Option<crate::game_roles::GameTask>) {
        self.game_task.set(Stored(task));
    }

    /// The next usable LLM, occupied for the game task before any call.
    pub fn take_llm_for_game(&mut self, now_ns: u64) -> Option<Principal> {
        let llm = self.pool.pick(now_ns)?;
        self.pool.occupy(llm, crate::game_roles::GAME_ITEM);
        Some(llm)
    }

    /// The game task's generation with `llm` ended (`error`: how it failed).
    pub fn game_generation_done(&mut self, llm: Principal, error: Option<&LlmError>, calls: u32, now_ns: u64) {
        self.pool.release(llm, crate::game_roles::GAME_ITEM);
        self.count(|c| c.llm_calls += calls as u64);
        match error {
            None => {
                self.pool.answered(llm);
                self.count(|c| c.answers_generated += 1);
            }
            Some(e) => {
                let rest_until = e.blames_llm().then(|| now_ns + self.settings().llm_rest_seconds * NANOS);
                self.pool.failed(llm, e.to_string(), rest_until);
                self.count(|c| c.generation_failures += 1);
            }
        }
    }

    /// ShareService: queues `agent`'s challenge if the agent has less than
    /// its share in the queue ([`AGENT_SHARE`], else `Busy`) and it is its
    /// turn for a place ([`Turns`], else `QueueFull`: ask again later).
    pub fn enqueue_for_agent(
        &mut self,
        agent: Principal,
        challenge: Challenge,
        now_ns: u64,
    ) -> Result<WorkItem, ControllerError> {
        if self.work.items_of_agent(agent) >= AGENT_SHARE {
            return Err(ControllerError::Busy(format!(
                "ShareAgent {agent} has {AGENT_SHARE} challenge(s) in the queue already; send the next when it is answered"
            )));
        }
        let capacity = self.settings().max_queue;
        let free = (capacity as u64).saturating_sub(self.work.len());
        if !self.turns.admit(agent, free, now_ns) {
            return Err(ControllerError::QueueFull { capacity });
        }
        self.enqueue(challenge, WorkOrigin::Agent(agent), now_ns)
    }

    /// The oldest item due and the next usable LLM, if there are both.
    pub fn next_assignment(&mut self, now_ns: u64) -> Option<(WorkItem, Principal)> {
        let item = self.work.next_queued(now_ns)?;
        let llm = self.pool.pick(now_ns)?;
        Some((item, llm))
    }

    /// Gives queued item `item` to `llm` if both are still free: both records
    /// are written before any call. False if either changed meanwhile.
    pub fn assign(&mut self, item: u64, llm: Principal, now_ns: u64) -> bool {
        let queued = self.work.item(item).is_some_and(|i| i.state == WorkState::Queued);
        if !(queued && self.pool.is_free(llm)) {
            return false;
        }
        self.pool.occupy(llm, item);
        let history = self.settings().history_size;
        self.work.set_state(item, WorkState::InFlight { since_ns: now_ns, llm: Some(llm) }, now_ns, history);
        true
    }

    /// Whether `llm` still holds `item` as it was when the generation
    /// started (`tries`: its attempts and outages then): not reclaimed after
    /// a time-out, and perhaps given to this LLM again since.
    pub fn generation_is_current(&self, item: u64, llm: Principal, tries: (u32, u32)) -> bool {
        self.pool.is_working_on(llm, item)
            && self.work.item(item).is_some_and(|i| {
                (i.attempts, i.outages) == tries
                    && matches!(i.state, WorkState::InFlight { llm: Some(l), .. } if l == llm)
            })
    }

    /// Frees `llm` from `item` unless a newer try of the item holds it (this
    /// generation was reclaimed after a time-out and the item given to the
    /// same LLM again).
    fn end_generation(&mut self, item: u64, llm: Principal, current: bool) {
        let newer_try = !current
            && self
                .work
                .item(item)
                .is_some_and(|i| matches!(i.state, WorkState::InFlight { llm: Some(l), .. } if l == llm));
        if !newer_try {
            self.pool.release(llm, item);
        }
    }

    /// A generation ended: `llm` is free again and counts the outcome;
    /// `answer` (if `current`) is recorded on the item.
    pub fn generated(&mut self, item: u64, llm: Principal, answer: Answer, current: bool, now_ns: u64) {
        self.end_generation(item, llm, current);
        self.pool.answered(llm);
        self.count(|c| c.answers_generated += 1);
        if current {
            self.work.set_answer(item, answer, now_ns);
        }
    }

    /// A generation failed: `llm` is free again, counts the failure and
    /// rests unless the failure was the request's; the item (if `current`)
    /// is retried (see [`Fault::of_generation`]).
    pub fn generation_failed(&mut self, item: u64, llm: Principal, error: &LlmError, current: bool, now_ns: u64) {
        let rest = error.blames_llm();
        let rest_until = rest.then(|| now_ns + self.settings().llm_rest_seconds * NANOS);
        canister_common::warn!("LLM {llm} failed{}: {error}", if rest { ", resting" } else { "" });
        self.end_generation(item, llm, current);
        self.pool.failed(llm, error.to_string(), rest_until);
        self.count(|c| c.generation_failures += 1);
        if current {
            self.attempt_failed(item, error.to_string(), WorkState::Queued, now_ns, Fault::of_generation(error));
        }
    }

    /// ShareAgent: the ShareService accepted item `id`.
    pub fn forwarded(&mut self, id: u64, now_ns: u64) -> Option<WorkItem> {
        self.set_state(id, WorkState::InFlight { since_ns: now_ns, llm: None }, now_ns)
    }

    pub fn set_answer(&mut self, id: u64, answer: Answer, now_ns: u64) -> Option<WorkItem> {
        self.work.set_answer(id, answer, now_ns)
    }

    /// A failed item whose answer came after all: answered again, to be submitted.
    pub fn revive_answered(&mut self, id: u64, answer: Answer, now_ns: u64) -> Option<WorkItem> {
        let item = self.work.revive_answered(id, answer, now_ns)?;
        self.count(|c| c.items_failed = c.items_failed.saturating_sub(1));
        Some(item)
    }

    /// The game state took the answer of item `id`.
    pub fn submitted(&mut self, id: u64, now_ns: u64) {
        if self.set_state(id, WorkState::Submitted { at_ns: now_ns }, now_ns).is_some() {
            self.count(|c| c.submissions += 1);
            self.handed_on(now_ns);
        }
    }

    /// The ShareAgent took the answer of item `id`.
    pub fn delivered(&mut self, id: u64, now_ns: u64) {
        if self.set_state(id, WorkState::Delivered { at_ns: now_ns }, now_ns).is_some() {
            self.count(|c| c.deliveries += 1);
            self.handed_on(now_ns);
        }
    }

    /// Item `id` is not answered on purpose (e.g. its challenge closed).
    pub fn dropped(&mut self, id: u64, reason: String, now_ns: u64) {
        self.set_state(id, WorkState::Dropped { reason }, now_ns);
    }

    /// Item `id` fails for good, whatever its attempts.
    pub fn failed(&mut self, id: u64, reason: String, now_ns: u64) {
        self.set_state(id, WorkState::Failed { reason }, now_ns);
    }

    fn set_state(&mut self, id: u64, state: WorkState, now_ns: u64) -> Option<WorkItem> {
        let item = self.work.set_state(id, state, now_ns, self.settings().history_size)?;
        match item.state {
            WorkState::Dropped { .. } => self.count(|c| c.items_dropped += 1),
            WorkState::Failed { .. } => self.count(|c| c.items_failed += 1),
            _ => {}
        }
        Some(item)
    }

    /// Records a failed attempt (see [`WorkQueue::attempt_failed`]).
    pub fn attempt_failed(
        &mut self,
        id: u64,
        error: String,
        retry_state: WorkState,
        now_ns: u64,
        fault: Fault,
    ) -> Option<WorkItem> {
        let settings = self.settings();
        let item = self.work.attempt_failed(id, error, retry_state, now_ns, fault, &settings)?;
        if matches!(item.state, WorkState::Failed { .. }) {
            self.count(|c| c.items_failed += 1);
        }
        Some(item)
    }

    /// Items in flight with one of our LLMs for longer than the time-out, or
    /// whose generation cannot be running any more (`all_local`: after an
    /// upgrade), go back to the queue, their LLM freed; an outage.
    pub fn reclaim_generations(&mut self, now_ns: u64, all_local: bool) -> Vec<u64> {
        let timeout = self.settings().in_flight_timeout_seconds * NANOS;
        let why = if all_local {
            "the controller was upgraded during the generation"
        } else {
            "the generation did not finish in time"
        };
        let mut ids = Vec::new();
        for item in self.work.stale_generations(now_ns, timeout, all_local) {
            if let WorkState::InFlight { llm: Some(llm), .. } = item.state {
                self.pool.release(llm, item.id);
            }
            self.attempt_failed(item.id, why.into(), WorkState::Queued, now_ns, Fault::Outage);
            ids.push(item.id);
        }
        ids
    }

    /// ShareAgent: items the ShareService kept too long are sent again (an outage).
    pub fn reclaim_forwarded(&mut self, now_ns: u64) -> Vec<u64> {
        let timeout = self.settings().in_flight_timeout_seconds * NANOS;
        let overdue = self.work.forwarded_overdue(now_ns, timeout);
        for item in &overdue {
            let why = "the ShareService did not answer in time".to_string();
            self.attempt_failed(item.id, why, WorkState::Queued, now_ns, Fault::Outage);
        }
        overdue.into_iter().map(|i| i.id).collect()
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::new(DefaultMemoryImpl::default()));
}

pub fn read_state<R>(f: impl FnOnce(&State) -> R) -> R {
    STATE.with(|s| f(&s.borrow()))
}

pub fn mutate_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::work::tests::challenge;

    pub fn config(role: MainerRole, settings: ControllerSettings) -> Config {
        let p = Principal::anonymous();
        Config { role, game_state: p, creator: p, owner: p, share_service: None, settings, paused: false }
    }

    pub fn state(settings: ControllerSettings) -> State {
        let mut s = State::new(DefaultMemoryImpl::default());
        s.install(config(MainerRole::Own, settings));
        s
    }

    fn llm(n: u8) -> Principal {
        Principal::from_slice(&[n; 10])
    }

    #[test]
    fn an_assignment_writes_both_sides_and_is_refused_when_either_changed() {
        let mut s = state(ControllerSettings::default());
        s.add_llm(llm(1), None).unwrap();
        let a = s.enqueue(challenge(1), WorkOrigin::Pulled, 0).unwrap();
        let b = s.enqueue(challenge(2), WorkOrigin::Pulled, 0).unwrap();
        let (item, l) = s.next_assignment(0).unwrap();
        assert_eq!((item.id, l), (a.id, llm(1)));
        assert!(s.assign(a.id, llm(1), 0));
        assert_eq!(s.llm(llm(1)).unwrap().in_flight, Some(a.id));
        assert!(matches!(s.item(a.id).unwrap().state, WorkState::InFlight { llm: Some(l), .. } if l == llm(1)));
        assert!(!s.assign(b.id, llm(1), 0), "the LLM is busy");
        assert!(s.next_assignment(0).is_none(), "no free LLM");
        assert!(s.generation_is_current(a.id, llm(1), (0, 0)));
        assert!(!s.generation_is_current(a.id, llm(1), (0, 1)), "another try");
    }

    #[test]
    fn item_ids_are_taken_only_by_accepted_items() {
        let mut s = state(ControllerSettings { max_queue: 1, ..Default::default() });
        assert_eq!(s.enqueue(challenge(1), WorkOrigin::Pulled, 0).unwrap().id, 0);
        assert!(s.enqueue(challenge(2), WorkOrigin::Pulled, 0).is_err());
        s.submitted(0, 1);
        assert_eq!(s.enqueue(challenge(3), WorkOrigin::Pulled, 0).unwrap().id, 1);
    }

    #[test]
    fn outcomes_count_once_and_the_stall_clock_follows_the_work() {
        let mut s = state(ControllerSettings::default());
        s.work_offered(5);
        let a = s.enqueue(challenge(1), WorkOrigin::Pulled, 5).unwrap();
        let b = s.enqueue(challenge(2), WorkOrigin::Pulled, 5).unwrap();
        let c = s.enqueue(challenge(3), WorkOrigin::Pulled, 5).unwrap();
        s.submitted(a.id, 10);
        s.submitted(a.id, 11);
        assert_eq!(s.counters().submissions, 1, "a finished item is not submitted twice");
        assert_eq!((s.last_handed_on_ns(), s.waiting_since_ns()), (Some(10), Some(10)), "more work waits");
        s.dropped(b.id, "closed".into(), 12);
        s.failed(c.id, "too large".into(), 13);
        let n = s.counters();
        assert_eq!((n.items_dropped, n.items_failed), (1, 1));
        s.idle();
        assert_eq!(s.waiting_since_ns(), None, "nothing queued: idle");
    }

    #[test]
    fn an_upgrade_requeues_generations_frees_llms_and_indexes_old_data() {
        let mut s = state(ControllerSettings::default());
        s.add_llm(llm(1), None).unwrap();
        let a = s.enqueue(challenge(1), WorkOrigin::Pulled, 0).unwrap();
        assert!(s.assign(a.id, llm(1), 0));
        s.schema.set(0); // as if written by a release without the index (see work.rs for the rebuild)
        assert_eq!(s.after_upgrade(1), vec![a.id]);
        assert_eq!(*s.schema.get(), SCHEMA_VERSION);
        let item = s.item(a.id).unwrap();
        assert_eq!((item.state, item.attempts, item.outages), (WorkState::Queued, 0, 1), "an outage");
        assert!(s.llm(llm(1)).unwrap().in_flight.is_none());
        assert!(s.knows(1, WorkOrigin::Pulled));
    }

    #[test]
    fn stale_generations_are_reclaimed() {
        let mut s = state(ControllerSettings { in_flight_timeout_seconds: 60, ..Default::default() });
        s.add_llm(llm(1), None).unwrap();
        let item = s.enqueue(challenge(1), WorkOrigin::Pulled, 0).unwrap();
        assert!(s.assign(item.id, llm(1), 0));
        assert!(s.reclaim_generations(30 * NANOS, false).is_empty());
        assert_eq!(s.reclaim_generations(61 * NANOS, false), vec![item.id]);
        assert_eq!(s.item(item.id).unwrap().state, WorkState::Queued);
        assert_eq!(s.llm(llm(1)).unwrap().in_flight, None, "the LLM is free again");
    }
}
