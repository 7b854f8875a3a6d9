//! The game played on the game state: topics, challengers and judges, the
//! judging queue with its leases, scores, results with rewards, the reward
//! pool and payouts. The challenges and submissions themselves are in
//! [`crate::game`].

use candid::{CandidType, Principal};
use serde::Deserialize;

use crate::PageRequest;
use crate::game::{ChallengeId, GenerationSettings};

pub type TopicId = u64;
pub type LeaseId = u64;
pub type PayoutId = u64;

/// A topic as an admin sets it: challengers turn it into questions.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct NewTopic {
    /// What the questions are about (filled into the challenger's prompt template).
    pub text: String,
    /// Relative frequency: a topic of weight 2 is handed out twice as often as one of weight 1; 0 pauses it.
    pub weight: u32,
    /// How the mAIners generate their answers to its challenges.
    pub settings: GenerationSettings,
    /// The closing rule of its challenges: after this many submissions,
    pub max_submissions: Option<u64>,
    /// after this many scored answers (default: the game settings' `scored_to_close`),
    pub scored_to_close: Option<u64>,
    /// or this many seconds after the challenge was added.
    pub open_seconds: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct Topic {
    pub id: TopicId,
    pub text: String,
    pub weight: u32,
    pub settings: GenerationSettings,
    pub max_submissions: Option<u64>,
    pub scored_to_close: Option<u64>,
    pub open_seconds: Option<u64>,
    /// Challenges generated from it so far.
    pub challenges: u64,
}

/// The two game roles a canister can be registered for.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GameAgentKind {
    /// Generates challenges from topics.
    Challenger,
    /// Scores submissions.
    Judge,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GameAgent {
    pub agent: Principal,
    pub kind: GameAgentKind,
    pub registered_at_ns: u64,
    /// Challenges added (a challenger) or submissions judged (a judge).
    pub done: u64,
}

/// What a challenger is asked to write a question about.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct TopicTicket {
    pub topic: Topic,
    pub open_challenges: u64,
    pub max_open_challenges: u64,
}

/// How a generated question (or a score) was produced.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LlmEvidence {
    /// SHA-256 (hex) of the exact prompt given to the LLM.
    pub prompt_sha256: String,
    pub llm_canister: Principal,
    pub model_sha256: Option<String>,
    pub llm_calls: u32,
    pub prompt_tokens: Option<u64>,
    pub generated_tokens: Option<u64>,
}

/// A challenge a challenger generated from a topic.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GeneratedChallenge {
    pub topic_id: TopicId,
    pub question: String,
    pub evidence: LlmEvidence,
}

/// Who added a challenge, and how it was generated.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChallengeOrigin {
    pub challenge_id: ChallengeId,
    pub author: Principal,
    pub topic_id: Option<TopicId>,
    /// The challenger's evidence; none for an admin's challenge.
    pub evidence: Option<LlmEvidence>,
    pub scored_to_close: u64,
}

/// A submission leased to a judge until `expires_at_ns`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct JudgeTask {
    pub lease_id: LeaseId,
    pub challenge_id: ChallengeId,
    pub mainer: Principal,
    pub question: String,
    pub answer: String,
    pub answer_sha256: String,
    pub score_min: u32,
    pub score_max: u32,
    pub expires_at_ns: u64,
    /// 1 for the first lease of this submission.
    pub attempt: u32,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ScoreOutcome {
    Scored {
        score: u32,
    },
    /// The judge's LLM gave no score it could read, after its own retries.
    Unscorable {
        raw_output: String,
    },
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ScoreReport {
    pub lease_id: LeaseId,
    pub outcome: ScoreOutcome,
    /// The judge prompt's SHA-256, the LLM, the model and tokens.
    pub evidence: LlmEvidence,
}

/// A submission's judgement as stored.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub challenge_id: ChallengeId,
    pub mainer: Principal,
    pub judge: Principal,
    pub lease_id: LeaseId,
    pub outcome: ScoreOutcome,
    /// None when the last lease expired without a report.
    pub evidence: Option<LlmEvidence>,
    /// Leases this submission took, this one included.
    pub attempts: u32,
    pub judged_at_ns: u64,
}

/// What a score report did.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ScoreAccepted {
    /// The judgement is final (a score, or unscorable after the last attempt).
    Final(Box<Judgement>),
    /// Unscorable this time: the submission goes back to the queue for another attempt.
    Requeued { attempts: u32 },
}

/// The reward split in basis points (sum 10,000).
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RewardSplit {
    pub first_bp: u32,
    pub second_bp: u32,
    pub third_bp: u32,
    /// Shared equally by every scored participant (the top three included).
    pub participants_bp: u32,
}

impl Default for RewardSplit {
    /// The reference game's 35 / 15 / 5 / 45 %.
    fn default() -> Self {
        RewardSplit { first_bp: 3_500, second_bp: 1_500, third_bp: 500, participants_bp: 4_500 }
    }
}

/// The rules of the game, set by admins.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GameSettings {
    /// Challengers are refused new challenges while this many are open.
    pub max_open_challenges: u64,
    /// A challenge closes when it has this many scored answers (unless its topic says otherwise).
    pub scored_to_close: u64,
    /// How long a judge holds a submission before it goes back to the queue.
    pub lease_seconds: u64,
    /// Leases a submission takes at most before it is recorded unscorable.
    pub max_judging_attempts: u32,
    pub score_min: u32,
    pub score_max: u32,
    /// The reward of one challenge, in cycles, taken from the pool when it is finalized.
    pub reward_per_challenge: u128,
    pub split: RewardSplit,
    /// The cycles ledger that payouts to owners' accounts go through (none: they wait).
    pub cycles_ledger: Option<Principal>,
}

impl Default for GameSettings {
    fn default() -> Self {
        GameSettings {
            max_open_challenges: 4,
            scored_to_close: 27,
            lease_seconds: 600,
            max_judging_attempts: 3,
            score_min: 1,
            score_max: 5,
            reward_per_challenge: 1_000_000_000_000,
            split: RewardSplit::default(),
            cycles_ledger: None,
        }
    }
}

/// One ranked answer of a finalized challenge.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RankedAnswer {
    pub challenge_id: ChallengeId,
    /// 1 is the winner.
    pub rank: u32,
    pub mainer: Principal,
    pub owner: Principal,
    pub score: u32,
    pub submitted_at_ns: u64,
    /// Cycles: its place's share (top three) plus its participant's share.
    pub reward: u128,
}

/// A finalized challenge's outcome.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChallengeResult {
    pub challenge_id: ChallengeId,
    pub finalized_at_ns: u64,
    /// Cycles taken from the pool for it (the sum of its answers' rewards).
    pub reward: u128,
    pub scored: u64,
    pub unscorable: u64,
    /// The first three, in rank order.
    pub winners: Vec<RankedAnswer>,
}

/// A mAIner's standing.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LeaderboardEntry {
    pub mainer: Principal,
    pub owner: Principal,
    pub earned: u128,
    pub wins: u64,
    /// Places in the top three.
    pub podiums: u64,
    /// Ranked answers.
    pub answers: u64,
}

/// What a mAIner (or all of an owner's mAIners) earned in finalized challenges.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Earnings {
    pub earned: u128,
    pub wins: u64,
    pub podiums: u64,
    pub answers: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LeaderboardRequest {
    /// Only challenges finalized in [from_ns, to_ns); none: all time.
    pub period: Option<(u64, u64)>,
    pub page: PageRequest,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RewardPool {
    /// Cycles not yet promised to any challenge.
    pub available: u128,
    /// Promised to payouts not yet paid.
    pub owed: u128,
    pub paid: u128,
    /// Everything ever put in: available + owed + paid.
    pub funded: u128,
}

/// Where a mAIner's rewards go, as its owner chose.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum PayoutTo {
    /// A top-up of the mAIner's controller canister, so winning keeps it mining (the default).
    Mainer,
    /// The owner's account on the cycles ledger.
    OwnerLedger { subaccount: Option<Vec<u8>> },
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum PayoutState {
    /// Waiting for its (next) attempt.
    Pending,
    /// A transfer is on its way.
    InFlight {
        since_ns: u64,
    },
    Paid {
        at_ns: u64,
        ledger_block: Option<u128>,
    },
    /// A transfer was under way when the game state was upgraded without a
    /// stop: it may or may not have arrived, so it is never sent again
    /// automatically (an admin checks and resolves it).
    Unknown,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Payout {
    pub id: PayoutId,
    pub challenge_id: ChallengeId,
    pub mainer: Principal,
    pub owner: Principal,
    pub amount: u128,
    pub to: PayoutTo,
    pub state: PayoutState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_ns: u64,
    pub created_at_ns: u64,
}
