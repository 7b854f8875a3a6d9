//! The game's stable structures (topics, challengers and judges, the judging
//! queue and its leases, scores, results, the reward pool and payouts). They
//! are a part of [`crate::state::State`], opened with it from the same memory
//! manager, so `read_state` / `mutate_state` stay the one door.

use candid::Principal;
use ic_stable_structures::memory_manager::MemoryManager;
use ic_stable_structures::{DefaultMemoryImpl, StableBTreeMap, StableBTreeSet, StableCell};
use mainer_types::game::ChallengeId;
use mainer_types::game_play::{
    ChallengeOrigin, ChallengeResult, GameSettings, Judgement, LeaseId, Payout, PayoutId, PayoutTo, RewardPool, Topic,
    TopicId,
};

use crate::play_records::{AgentRecord, AwardRecord, LeaseRecord, ScoreEntry, Tally, ToJudge, Totals};
use crate::state::{Candid, Memory};

/// Stable memory ids of the game (20 and up; 13 to 19 are left for the
/// registration side). Never reuse or renumber one.
pub mod memory_ids {
    use ic_stable_structures::memory_manager::MemoryId;

    /// `GameSettings` (cell).
    pub const SETTINGS: MemoryId = MemoryId::new(20);
    /// `RewardPool` (cell): the pool's books.
    pub const POOL: MemoryId = MemoryId::new(21);
    /// topic id -> `Topic`.
    pub const TOPICS: MemoryId = MemoryId::new(22);
    /// topic id -> its credit in the smooth weighted round robin.
    pub const TOPIC_CREDIT: MemoryId = MemoryId::new(23);
    /// challenger or judge -> `AgentRecord`.
    pub const AGENTS: MemoryId = MemoryId::new(24);
    /// challenge id -> `ChallengeOrigin`: author, topic, evidence.
    pub const ORIGINS: MemoryId = MemoryId::new(25);
    /// challenge id -> `Tally`: judging progress.
    pub const TALLIES: MemoryId = MemoryId::new(26);
    /// Challenges not finalized yet.
    pub const UNFINALIZED: MemoryId = MemoryId::new(27);
    /// submission seq -> `ToJudge`: the judging queue, first come first judged.
    pub const PENDING: MemoryId = MemoryId::new(28);
    /// lease id -> `LeaseRecord`.
    pub const LEASES: MemoryId = MemoryId::new(29);
    /// judge -> its live lease.
    pub const LEASE_BY_JUDGE: MemoryId = MemoryId::new(30);
    /// (expires at ns, lease id) of the live leases.
    pub const LEASE_EXPIRY: MemoryId = MemoryId::new(31);
    /// (challenge, mAIner) -> `ScoreEntry`.
    pub const SCORES: MemoryId = MemoryId::new(32);
    /// (challenge, mAIner) -> `Judgement` with its evidence.
    pub const JUDGEMENTS: MemoryId = MemoryId::new(33);
    /// challenge id -> `ChallengeResult`.
    pub const RESULTS: MemoryId = MemoryId::new(34);
    /// (finalized at ns, challenge id).
    pub const RESULTS_BY_TIME: MemoryId = MemoryId::new(35);
    /// (challenge, rank) -> `AwardRecord`.
    pub const RANKING: MemoryId = MemoryId::new(36);
    /// (mAIner, challenge) -> rank.
    pub const AWARDS_BY_MAINER: MemoryId = MemoryId::new(37);
    /// (owner, challenge, rank).
    pub const AWARDS_BY_OWNER: MemoryId = MemoryId::new(38);
    /// mAIner -> `Totals`.
    pub const MAINER_TOTALS: MemoryId = MemoryId::new(39);
    /// owner -> `Totals`.
    pub const OWNER_TOTALS: MemoryId = MemoryId::new(40);
    /// (u128::MAX - earned, mAIner): the all-time leaderboard.
    pub const LEADERBOARD: MemoryId = MemoryId::new(41);
    /// mAIner -> `PayoutTo`, as its owner chose.
    pub const PAYOUT_PREFS: MemoryId = MemoryId::new(42);
    /// payout id -> `Payout`.
    pub const PAYOUTS: MemoryId = MemoryId::new(43);
    /// (next attempt at ns, payout id) of the payouts still to send.
    pub const PAYOUT_QUEUE: MemoryId = MemoryId::new(44);
    /// The payouts in flight (their transfer sent, no answer yet).
    pub const PAYOUTS_IN_FLIGHT: MemoryId = MemoryId::new(45);
}

pub struct PlayState {
    settings: StableCell<Candid<GameSettings>, Memory>,
    pool: StableCell<Candid<RewardPool>, Memory>,
    pub(crate) topics: StableBTreeMap<TopicId, Candid<Topic>, Memory>,
    /// Credits are `i64` stored as their two's complement bits.
    pub(crate) topic_credit: StableBTreeMap<TopicId, u64, Memory>,
    pub(crate) agents: StableBTreeMap<Principal, AgentRecord, Memory>,
    pub(crate) origins: StableBTreeMap<ChallengeId, Candid<ChallengeOrigin>, Memory>,
    pub(crate) tallies: StableBTreeMap<ChallengeId, Tally, Memory>,
    pub(crate) unfinalized: StableBTreeSet<ChallengeId, Memory>,
    pub(crate) pending: StableBTreeMap<u64, ToJudge, Memory>,
    pub(crate) leases: StableBTreeMap<LeaseId, LeaseRecord, Memory>,
    pub(crate) lease_by_judge: StableBTreeMap<Principal, LeaseId, Memory>,
    pub(crate) lease_expiry: StableBTreeSet<(u64, LeaseId), Memory>,
    pub(crate) scores: StableBTreeMap<(ChallengeId, Principal), ScoreEntry, Memory>,
    pub(crate) judgements: StableBTreeMap<(ChallengeId, Principal), Candid<Judgement>, Memory>,
    pub(crate) results: StableBTreeMap<ChallengeId, Candid<ChallengeResult>, Memory>,
    pub(crate) results_by_time: StableBTreeSet<(u64, ChallengeId), Memory>,
    pub(crate) ranking: StableBTreeMap<(ChallengeId, u32), AwardRecord, Memory>,
    pub(crate) awards_by_mainer: StableBTreeMap<(Principal, ChallengeId), u32, Memory>,
    pub(crate) awards_by_owner: StableBTreeSet<(Principal, ChallengeId, u32), Memory>,
    pub(crate) mainer_totals: StableBTreeMap<Principal, Totals, Memory>,
    pub(crate) owner_totals: StableBTreeMap<Principal, Totals, Memory>,
    pub(crate) leaderboard: StableBTreeSet<(u128, Principal), Memory>,
    pub(crate) payout_prefs: StableBTreeMap<Principal, Candid<PayoutTo>, Memory>,
    pub(crate) payouts: StableBTreeMap<PayoutId, Candid<Payout>, Memory>,
    pub(crate) payout_queue: StableBTreeSet<(u64, PayoutId), Memory>,
    pub(crate) payouts_in_flight: StableBTreeSet<PayoutId, Memory>,
}

impl PlayState {
    pub fn init(mm: &MemoryManager<DefaultMemoryImpl>) -> PlayState {
        use memory_ids::*;
        let empty_pool = RewardPool { available: 0, owed: 0, paid: 0, funded: 0 };
        PlayState {
            settings: StableCell::init(mm.get(SETTINGS), Candid(GameSettings::default())),
            pool: StableCell::init(mm.get(POOL), Candid(empty_pool)),
            topics: StableBTreeMap::init(mm.get(TOPICS)),
            topic_credit: StableBTreeMap::init(mm.get(TOPIC_CREDIT)),
            agents: StableBTreeMap::init(mm.get(AGENTS)),
            origins: StableBTreeMap::init(mm.get(ORIGINS)),
            tallies: StableBTreeMap::init(mm.get(TALLIES)),
            unfinalized: StableBTreeSet::init(mm.get(UNFINALIZED)),
            pending: StableBTreeMap::init(mm.get(PENDING)),
            leases: StableBTreeMap::init(mm.get(LEASES)),
            lease_by_judge: StableBTreeMap::init(mm.get(LEASE_BY_JUDGE)),
            lease_expiry: StableBTreeSet::init(mm.get(LEASE_EXPIRY)),
            scores: StableBTreeMap::init(mm.get(SCORES)),
            judgements: StableBTreeMap::init(mm.get(JUDGEMENTS)),
            results: StableBTreeMap::init(mm.get(RESULTS)),
            results_by_time: StableBTreeSet::init(mm.get(RESULTS_BY_TIME)),
            ranking: StableBTreeMap::init(mm.get(RANKING)),
            awards_by_mainer: StableBTreeMap::init(mm.get(AWARDS_BY_MAINER)),
            awards_by_owner: StableBTreeSet::init(mm.get(AWARDS_BY_OWNER)),
            mainer_totals: StableBTreeMap::init(mm.get(MAINER_TOTALS)),
            owner_totals: StableBTreeMap::init(mm.get(OWNER_TOTALS)),
            leaderboard: StableBTreeSet::init(mm.get(LEADERBOARD)),
            payout_prefs: StableBTreeMap::init(mm.get(PAYOUT_PREFS)),
            payouts: StableBTreeMap::init(mm.get(PAYOUTS)),
            payout_queue: StableBTreeSet::init(mm.get(PAYOUT_QUEUE)),
            payouts_in_flight: StableBTreeSet::init(mm.get(PAYOUTS_IN_FLIGHT)),
        }
    }

    pub fn settings(&self) -> GameSettings {
        self.settings.get().0.clone()
    }

    pub fn set_settings(&mut self, settings: GameSettings) {
        self.settings.set(Candid(settings));
    }

    pub fn pool(&self) -> RewardPool {
        self.pool.get().0.clone()
    }

    pub fn set_pool(&mut self, pool: RewardPool) {
        self.pool.set(Candid(pool));
    }

    pub fn agent_kind(&self, p: &Principal) -> Option<mainer_types::game_play::GameAgentKind> {
        self.agents.get(p).map(|a| a.kind)
    }

    pub fn payout(&self, id: PayoutId) -> Option<Payout> {
        self.payouts.get(&id).map(|p| p.0)
    }

    /// Stores a payout and keeps the send queue in step with its state: only
    /// a `Pending` payout is queued (by its next attempt).
    pub fn save_payout(&mut self, old: Option<&Payout>, new: Payout) {
        use mainer_types::game_play::PayoutState::Pending;
        if let Some(o) = old.filter(|o| o.state == Pending) {
            self.payout_queue.remove(&(o.next_attempt_ns, o.id));
        }
        if new.state == Pending {
            self.payout_queue.insert((new.next_attempt_ns, new.id));
        }
        self.payouts.insert(new.id, Candid(new));
    }
}
