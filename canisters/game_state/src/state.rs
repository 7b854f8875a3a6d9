//! Storage: every record lives in stable memory, so an upgrade keeps it all
//! without a pre_upgrade copy. [`State`] groups the stable structures and
//! keeps their secondary indexes consistent; `read_state` / `mutate_state`
//! are the only door to the canister's instance of it.

use std::cell::RefCell;
use std::collections::BTreeSet;

use candid::{CandidType, Principal};
use ic_stable_structures::memory_manager::{MemoryManager, VirtualMemory};
use ic_stable_structures::{DefaultMemoryImpl, StableBTreeMap, StableBTreeSet, StableCell, StableLog};
use mainer_types::game::{
    Challenge, ChallengeId, GameCounts, GameStateInit, GameStateUpgrade, MainerCyclesReport, MainerInfo, Submission,
};
use serde::Deserialize;

pub use crate::records::{Candid, ChallengeBody, ChallengeMeta, CyclesTally, MainerRecord, ModuleCheck, SubmissionRef};

pub type Memory = VirtualMemory<DefaultMemoryImpl>;

/// Stable memory ids. Never reuse or renumber one: the data of an old
/// release stays in its memory.
pub mod memory_ids {
    use ic_stable_structures::memory_manager::MemoryId;

    /// `Config` (cell).
    pub const CONFIG: MemoryId = MemoryId::new(0);
    /// challenge id -> `ChallengeBody`: question and settings.
    pub const CHALLENGE_BODIES: MemoryId = MemoryId::new(1);
    /// challenge id -> `ChallengeMeta`: status and counters.
    pub const CHALLENGE_META: MemoryId = MemoryId::new(2);
    /// The ids of the open challenges.
    pub const OPEN_CHALLENGES: MemoryId = MemoryId::new(3);
    /// Open challenges with a deadline: (deadline_ns, id).
    pub const DEADLINES: MemoryId = MemoryId::new(4);
    /// mAIner -> `MainerRecord`.
    pub const MAINERS: MemoryId = MemoryId::new(5);
    /// (challenge id, mAIner) -> `SubmissionRef`: where the body is, and the status.
    pub const SUBMISSIONS: MemoryId = MemoryId::new(6);
    /// The submission log (index and data): bodies, appended in arrival
    /// order, at a cost that does not depend on how many are stored.
    pub const SUBMISSION_LOG_INDEX: MemoryId = MemoryId::new(7);
    pub const SUBMISSION_LOG_DATA: MemoryId = MemoryId::new(8);
    /// (mAIner, challenge id): the submissions of one mAIner in order.
    pub const SUBMISSIONS_BY_MAINER: MemoryId = MemoryId::new(9);
    /// mAIner -> (challenge id, handed out at ns): its outstanding hand-out.
    pub const HANDOUTS: MemoryId = MemoryId::new(10);
    /// (handed out at ns, mAIner): hand-outs in age order, for expiry.
    pub const HANDOUT_EXPIRY: MemoryId = MemoryId::new(11);
    /// (mAIner, challenge id): challenges a mAIner gave back (will not answer).
    pub const RELEASED: MemoryId = MemoryId::new(12);
    /// The SHA-256 of every module the creator installs in mAIners.
    pub const KNOWN_MODULES: MemoryId = MemoryId::new(13);
    /// mAIner -> `ModuleCheck`: its module hash as last read.
    pub const MODULE_CHECKS: MemoryId = MemoryId::new(14);
    /// mAIner -> `CyclesTally`: the cycles it reported last.
    pub const MAINER_CYCLES: MemoryId = MemoryId::new(15);
    // 20 and up: the game's (`play_state.rs`).
}

/// Default for `max_answer_bytes`.
pub const DEFAULT_MAX_ANSWER_BYTES: u64 = 16 * 1024;
/// Upper limit for `max_answer_bytes`: answers are stored inline in B-tree
/// nodes and arrive in ingress messages (2 MiB).
pub const MAX_ANSWER_BYTES_LIMIT: u64 = 1024 * 1024;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Config {
    pub admins: Vec<Principal>,
    pub registrars: Vec<Principal>,
    pub max_answer_bytes: u64,
}

impl Config {
    pub fn from_init(init: GameStateInit) -> Result<Config, String> {
        let config = Config {
            admins: init.admins,
            registrars: init.registrars,
            max_answer_bytes: init.max_answer_bytes.unwrap_or(DEFAULT_MAX_ANSWER_BYTES),
        };
        config.validate()?;
        Ok(config)
    }

    /// Applies the fields that are `Some`.
    pub fn upgrade(&self, up: GameStateUpgrade) -> Result<Config, String> {
        let mut config = self.clone();
        if let Some(admins) = up.admins {
            config.admins = admins;
        }
        if let Some(registrars) = up.registrars {
            config.registrars = registrars;
        }
        if let Some(max) = up.max_answer_bytes {
            config.max_answer_bytes = max;
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.admins.iter().chain(&self.registrars).any(|p| *p == Principal::anonymous()) {
            return Err("the anonymous principal cannot be an admin or registrar".into());
        }
        if !(1..=MAX_ANSWER_BYTES_LIMIT).contains(&self.max_answer_bytes) {
            return Err(format!("max_answer_bytes must be in 1..={MAX_ANSWER_BYTES_LIMIT}"));
        }
        Ok(())
    }
}

/// The smallest principal, a lower bound for ranges keyed by principal.
pub fn min_principal() -> Principal {
    Principal::from_slice(&[])
}

pub struct State {
    config: StableCell<Candid<Config>, Memory>,
    pub(crate) challenge_bodies: StableBTreeMap<ChallengeId, Candid<ChallengeBody>, Memory>,
    pub(crate) challenge_meta: StableBTreeMap<ChallengeId, ChallengeMeta, Memory>,
    pub(crate) open_challenges: StableBTreeSet<ChallengeId, Memory>,
    /// Cache: the open challenges ordered by load (submissions plus
    /// hand-outs, then id), rebuilt on load. It changes on every hand-out and
    /// submission, which the heap does at no cost; the open set is small.
    by_load: BTreeSet<(u64, ChallengeId)>,
    pub(crate) deadlines: StableBTreeSet<(u64, ChallengeId), Memory>,
    pub(crate) mainers: StableBTreeMap<Principal, MainerRecord, Memory>,
    pub(crate) submissions: StableBTreeMap<(ChallengeId, Principal), SubmissionRef, Memory>,
    submission_log: StableLog<Candid<Submission>, Memory, Memory>,
    pub(crate) submissions_by_mainer: StableBTreeSet<(Principal, ChallengeId), Memory>,
    pub(crate) handouts: StableBTreeMap<Principal, (ChallengeId, u64), Memory>,
    pub(crate) handout_expiry: StableBTreeSet<(u64, Principal), Memory>,
    pub(crate) released: StableBTreeSet<(Principal, ChallengeId), Memory>,
    /// The game around the challenges: topics, judging, results, rewards, payouts.
    pub(crate) play: crate::play_state::PlayState,
    pub(crate) known_modules: StableBTreeSet<[u8; 32], Memory>,
    pub(crate) module_checks: StableBTreeMap<Principal, ModuleCheck, Memory>,
    pub(crate) mainer_cycles: StableBTreeMap<Principal, CyclesTally, Memory>,
}

impl State {
    /// Opens (or creates) every structure in its memory.
    pub fn init(mm: &MemoryManager<DefaultMemoryImpl>) -> State {
        use memory_ids::*;
        let mut state = State {
            config: StableCell::init(mm.get(CONFIG), Candid(Config::default())),
            challenge_bodies: StableBTreeMap::init(mm.get(CHALLENGE_BODIES)),
            challenge_meta: StableBTreeMap::init(mm.get(CHALLENGE_META)),
            open_challenges: StableBTreeSet::init(mm.get(OPEN_CHALLENGES)),
            by_load: BTreeSet::new(),
            deadlines: StableBTreeSet::init(mm.get(DEADLINES)),
            mainers: StableBTreeMap::init(mm.get(MAINERS)),
            submissions: StableBTreeMap::init(mm.get(SUBMISSIONS)),
            submission_log: StableLog::init(mm.get(SUBMISSION_LOG_INDEX), mm.get(SUBMISSION_LOG_DATA)),
            submissions_by_mainer: StableBTreeSet::init(mm.get(SUBMISSIONS_BY_MAINER)),
            handouts: StableBTreeMap::init(mm.get(HANDOUTS)),
            handout_expiry: StableBTreeSet::init(mm.get(HANDOUT_EXPIRY)),
            released: StableBTreeSet::init(mm.get(RELEASED)),
            play: crate::play_state::PlayState::init(mm),
            known_modules: StableBTreeSet::init(mm.get(KNOWN_MODULES)),
            module_checks: StableBTreeMap::init(mm.get(MODULE_CHECKS)),
            mainer_cycles: StableBTreeMap::init(mm.get(MAINER_CYCLES)),
        };
        let by_load = state
            .open_challenges
            .iter()
            .map(|id| (state.meta(id).expect("an open challenge has its meta").load(), id))
            .collect();
        state.by_load = by_load;
        state
    }

    /// A state on fresh (heap) memory, for unit tests.
    #[cfg(test)]
    pub fn for_tests(config: Config) -> State {
        let mut s = State::init(&MemoryManager::init(DefaultMemoryImpl::default()));
        s.set_config(config);
        s
    }

    pub fn config(&self) -> &Config {
        &self.config.get().0
    }

    pub fn set_config(&mut self, config: Config) {
        self.config.set(Candid(config));
    }

    /// Kept by the structures themselves, so counting costs nothing. A
    /// challenge whose deadline just passed counts as open until the sweep
    /// or the next update closes it.
    pub fn counts(&self) -> GameCounts {
        GameCounts {
            mainers: self.mainers.len(),
            challenges: self.challenge_meta.len(),
            open_challenges: self.open_challenges.len(),
            submissions: self.submissions.len(),
        }
    }

    pub fn next_challenge_id(&self) -> ChallengeId {
        self.challenge_meta.last_key_value().map_or(1, |(id, _)| id + 1)
    }

    pub fn meta(&self, id: ChallengeId) -> Option<ChallengeMeta> {
        self.challenge_meta.get(&id)
    }

    /// The whole challenge as stored (an overdue one still shows as open).
    pub fn challenge(&self, id: ChallengeId) -> Option<Challenge> {
        Some(assemble(id, self.challenge_bodies.get(&id)?.0, self.meta(id)?))
    }

    pub fn insert_challenge(&mut self, id: ChallengeId, body: ChallengeBody, meta: ChallengeMeta) {
        self.challenge_bodies.insert(id, Candid(body));
        self.save_meta(id, None, meta);
    }

    /// Stores a challenge's meta and moves its index entries from what `old`
    /// was to what `new` is: the only place the open indexes change.
    pub fn save_meta(&mut self, id: ChallengeId, old: Option<&ChallengeMeta>, new: ChallengeMeta) {
        let was_open = old.is_some_and(ChallengeMeta::is_open);
        if let Some(old) = old.filter(|o| o.is_open()) {
            self.by_load.remove(&(old.load(), id));
        }
        if new.is_open() {
            self.by_load.insert((new.load(), id));
        }
        // The stable indexes change only when a challenge opens or closes.
        if was_open != new.is_open() {
            if new.is_open() {
                self.open_challenges.insert(id);
            } else {
                self.open_challenges.remove(&id);
            }
            if let Some(d) = new.deadline_ns {
                if new.is_open() {
                    self.deadlines.insert((d, id));
                } else {
                    self.deadlines.remove(&(d, id));
                }
            }
        }
        self.challenge_meta.insert(id, new);
    }

    /// The open challenges, least loaded first (the oldest on a tie).
    pub fn open_by_load(&self) -> impl Iterator<Item = ChallengeId> + '_ {
        self.by_load.iter().map(|(_, id)| *id)
    }

    /// Appends the body to the log and indexes it by challenge and by
    /// mAIner; stores nothing and returns false if this mAIner has answered
    /// this challenge already.
    pub fn add_submission(&mut self, submission: &Submission) -> bool {
        // Inserting into the by-mAIner index doubles as the duplicate check:
        // one walk down a large B-tree instead of two.
        if !self.submissions_by_mainer.insert((submission.mainer, submission.challenge_id)) {
            return false;
        }
        let seq = self.submission_log.append(&Candid(submission.clone())).expect("stable memory can grow");
        let status = submission.status.clone();
        self.submissions.insert((submission.challenge_id, submission.mainer), SubmissionRef { seq, status });
        true
    }

    /// The submission with its current status.
    fn submission_at(&self, r: SubmissionRef) -> Submission {
        let mut s = self.submission_log.get(r.seq).expect("an indexed submission is in the log").0;
        s.status = r.status;
        s
    }

    pub fn submission(&self, id: ChallengeId, mainer: Principal) -> Option<Submission> {
        self.submissions.get(&(id, mainer)).map(|r| self.submission_at(r))
    }

    /// The registration with what was checked and reported about it.
    pub fn mainer(&self, mainer: &Principal) -> Option<MainerInfo> {
        let record = self.mainers.get(mainer)?;
        let registered_at_ns = record.registered_at_ns;
        let mut info = record.info(*mainer);
        info.module_hash = self.module_checks.get(mainer).and_then(|c| c.module_hash).map(hex::encode);
        info.cycles = self.mainer_cycles.get(mainer).map(|t| cycles_report(&t, info.submissions, registered_at_ns));
        Some(info)
    }

    pub fn handout(&self, mainer: &Principal) -> Option<(ChallengeId, u64)> {
        self.handouts.get(mainer)
    }

    /// Records that `mainer` was given challenge `id`, replacing its earlier hand-out.
    pub fn give_handout(&mut self, mainer: Principal, id: ChallengeId, now_ns: u64) {
        self.drop_handout(&mainer);
        if let Some(old) = self.meta(id) {
            let mut new = old.clone();
            new.handed_out += 1;
            self.save_meta(id, Some(&old), new);
        }
        self.handouts.insert(mainer, (id, now_ns));
        self.handout_expiry.insert((now_ns, mainer));
    }

    /// Removes the mAIner's hand-out entries, leaving its challenge's count
    /// to the caller (who may be rewriting that record anyway).
    pub fn take_handout_entry(&mut self, mainer: &Principal) -> Option<(ChallengeId, u64)> {
        let (id, at) = self.handouts.remove(mainer)?;
        self.handout_expiry.remove(&(at, *mainer));
        Some((id, at))
    }

    /// Forgets the mAIner's hand-out, if any, and returns it.
    pub fn drop_handout(&mut self, mainer: &Principal) -> Option<(ChallengeId, u64)> {
        let (id, at) = self.take_handout_entry(mainer)?;
        if let Some(old) = self.meta(id) {
            let mut new = old.clone();
            new.handed_out = new.handed_out.saturating_sub(1);
            self.save_meta(id, Some(&old), new);
        }
        Some((id, at))
    }
}

/// Per answer over the answers submitted, per day over the time since it
/// registered (at least an hour, so a new mAIner's figure is not blown up).
pub fn cycles_report(t: &CyclesTally, submissions: u64, registered_at_ns: u64) -> MainerCyclesReport {
    const HOUR_NS: u128 = 3_600_000_000_000;
    const DAY_NS: u128 = 24 * HOUR_NS;
    let elapsed = (t.reported_at_ns.saturating_sub(registered_at_ns) as u128).max(HOUR_NS);
    MainerCyclesReport {
        spent: t.spent,
        per_answer: (submissions > 0).then(|| t.spent / submissions as u128),
        per_day: Some(t.spent.saturating_mul(DAY_NS) / elapsed),
        reported_at_ns: t.reported_at_ns,
    }
}

pub fn assemble(id: ChallengeId, body: ChallengeBody, meta: ChallengeMeta) -> Challenge {
    Challenge {
        id,
        question: body.question,
        settings: body.settings,
        max_submissions: meta.max_submissions,
        deadline_ns: meta.deadline_ns,
        created_at_ns: body.created_at_ns,
        status: meta.status,
        submissions: meta.submissions,
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::init(&MemoryManager::init(DefaultMemoryImpl::default())));
}

pub fn read_state<R>(f: impl FnOnce(&State) -> R) -> R {
    STATE.with(|s| f(&s.borrow()))
}

pub fn mutate_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

/// Puts `state` behind the door, for unit tests of code that uses it.
#[cfg(test)]
pub fn replace_state_for_tests(state: State) {
    STATE.with(|s| *s.borrow_mut() = state);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Caller;
    use crate::testing::*;

    #[test]
    fn config_comes_from_init_and_upgrades_change_only_what_is_set() {
        let init = GameStateInit { admins: vec![ADMIN], registrars: vec![REGISTRAR], max_answer_bytes: None };
        let config = Config::from_init(init.clone()).unwrap();
        assert_eq!(config.max_answer_bytes, DEFAULT_MAX_ANSWER_BYTES);
        assert_eq!(config.upgrade(GameStateUpgrade::default()).unwrap(), config);
        let up = GameStateUpgrade { max_answer_bytes: Some(100), ..Default::default() };
        let upgraded = config.upgrade(up).unwrap();
        assert_eq!(
            (upgraded.max_answer_bytes, &upgraded.admins, &upgraded.registrars),
            (100, &config.admins, &config.registrars)
        );

        for bad in [0, MAX_ANSWER_BYTES_LIMIT + 1] {
            assert!(Config::from_init(GameStateInit { max_answer_bytes: Some(bad), ..init.clone() }).is_err());
        }
        assert!(Config::from_init(GameStateInit { admins: vec![Principal::anonymous()], ..init.clone() }).is_err());
        let up = GameStateUpgrade { registrars: Some(vec![Principal::anonymous()]), ..Default::default() };
        assert!(config.upgrade(up).is_err());
    }

    #[test]
    fn everything_is_found_again_in_the_same_memory() {
        // What an upgrade does: a new heap opens the structures in the old memory.
        let memory = DefaultMemoryImpl::default();
        let mut s = State::init(&MemoryManager::init(memory.clone()));
        s.set_config(Config { admins: vec![ADMIN], registrars: vec![], max_answer_bytes: 77 });
        let c = crate::challenges::add(&mut s, &admin(), question("q"), 1).unwrap();
        register_mainer(&mut s, p(10));
        register_mainer(&mut s, p(11));
        crate::challenges::take(&mut s, &Caller::user(p(11)), 2).unwrap();
        submit_answer(&mut s, p(10), c.id, 3).unwrap();
        let before = (s.counts(), s.challenge(c.id), s.meta(c.id), s.handout(&p(11)), s.mainer(&p(10)));
        drop(s);

        let s = State::init(&MemoryManager::init(memory));
        assert_eq!(s.config().max_answer_bytes, 77);
        assert_eq!((s.counts(), s.challenge(c.id), s.meta(c.id), s.handout(&p(11)), s.mainer(&p(10))), before);
        assert!(s.submission(c.id, p(10)).is_some() && s.submissions_by_mainer.contains(&(p(10), c.id)));
        assert_eq!((s.open_challenges.len(), s.handout_expiry.len()), (1, 1));
        assert_eq!(s.open_by_load().collect::<Vec<_>>(), vec![c.id], "the cache is rebuilt");
    }
}
