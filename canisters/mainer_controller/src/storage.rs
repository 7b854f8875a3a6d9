//! Everything the controller keeps lives here, in stable memory: config,
//! LLM pool, ShareAgents, the work queue, finished work and counters.
//! The only door to it is `read` / `mutate`.

use std::cell::RefCell;

use candid::{CandidType, Principal};
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{DefaultMemoryImpl, StableBTreeMap, StableCell};
use mainer_types::MainerRole;
use mainer_types::controller::{ControllerSettings, Counters, WorkItem};
pub use mainer_types::stable::Stored;
use serde::Deserialize;

type Memory = VirtualMemory<DefaultMemoryImpl>;

// Memory ids are never reused.
const CONFIG: MemoryId = MemoryId::new(0);
const LLMS: MemoryId = MemoryId::new(1);
const AGENTS: MemoryId = MemoryId::new(2);
const QUEUE: MemoryId = MemoryId::new(3);
const HISTORY: MemoryId = MemoryId::new(4);
const COUNTERS: MemoryId = MemoryId::new(5);
/// The cycles budget (budget.rs); a high id, clear of the state's own.
const BUDGET: MemoryId = MemoryId::new(20);

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

/// One LLM canister of the pool.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct LlmSlot {
    /// Not given work before this time (after a failure).
    pub resting_until_ns: u64,
    /// Being emptied before removal: no new work.
    pub draining: bool,
    pub in_flight: Option<u64>,
    pub answers: u64,
    pub failures: u64,
    pub last_error: Option<String>,
    pub model_sha256: Option<String>,
}

pub struct State {
    pub config: StableCell<Stored<Option<Config>>, Memory>,
    pub llms: StableBTreeMap<Principal, Stored<LlmSlot>, Memory>,
    pub agents: StableBTreeMap<Principal, (), Memory>,
    /// Unfinished work, by item id (ids grow, so this is FIFO order).
    pub queue: StableBTreeMap<u64, Stored<WorkItem>, Memory>,
    /// Finished work, by item id, trimmed to the history size.
    pub history: StableBTreeMap<u64, Stored<WorkItem>, Memory>,
    pub counters: StableCell<Stored<PersistentCounters>, Memory>,
    pub budget: StableCell<Stored<crate::budget::Budget>, Memory>,
    /// Where the round robin over LLMs resumes (a heap cache; losing it is harmless).
    pub next_llm_after: Option<Principal>,
}

/// Counters and id sequences that must survive upgrades.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct PersistentCounters {
    pub next_item_id: u64,
    pub counters: Counters,
    /// When an answer was last submitted or delivered.
    pub last_handed_on_ns: Option<u64>,
    /// Since when work (an offered challenge, an agent's request) has waited
    /// with no answer handed on; None while there is nothing to do.
    pub waiting_since_ns: Option<u64>,
}

impl State {
    pub fn new(memory: DefaultMemoryImpl) -> Self {
        let mm = MemoryManager::init(memory);
        State {
            config: StableCell::init(mm.get(CONFIG), Stored(None)),
            llms: StableBTreeMap::init(mm.get(LLMS)),
            agents: StableBTreeMap::init(mm.get(AGENTS)),
            queue: StableBTreeMap::init(mm.get(QUEUE)),
            history: StableBTreeMap::init(mm.get(HISTORY)),
            counters: StableCell::init(mm.get(COUNTERS), Stored(PersistentCounters::default())),
            budget: StableCell::init(mm.get(BUDGET), Stored(crate::budget::Budget::default())),
            next_llm_after: None,
        }
    }

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

    pub fn counters(&self) -> Counters {
        self.counters.get().0.counters.clone()
    }

    pub fn count(&mut self, f: impl FnOnce(&mut Counters)) {
        let mut c = self.counters.get().0.clone();
        f(&mut c.counters);
        self.counters.set(Stored(c));
    }

    fn persistent(&mut self, f: impl FnOnce(&mut PersistentCounters)) {
        let mut c = self.counters.get().0.clone();
        f(&mut c);
        self.counters.set(Stored(c));
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
    pub fn handed_on(&mut self, now_ns: u64) {
        let more = !self.queue.is_empty();
        self.persistent(|c| {
            c.last_handed_on_ns = Some(now_ns);
            c.waiting_since_ns = more.then_some(now_ns);
        });
    }

    /// Nothing offered and nothing queued: not stalled, just idle.
    pub fn idle(&mut self) {
        if self.queue.is_empty() && self.waiting_since_ns().is_some() {
            self.persistent(|c| c.waiting_since_ns = None);
        }
    }

    pub fn next_item_id(&mut self) -> u64 {
        let mut c = self.counters.get().0.clone();
        let id = c.next_item_id;
        c.next_item_id += 1;
        self.counters.set(Stored(c));
        id
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::new(DefaultMemoryImpl::default()));
}

pub fn read<R>(f: impl FnOnce(&State) -> R) -> R {
    STATE.with(|s| f(&s.borrow()))
}

pub fn mutate<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}
