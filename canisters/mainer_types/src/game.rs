//! The game state canister's interface: challenges, mAIner registrations,
//! submissions with their evidence, and typed errors.

use candid::{CandidType, Principal};
use serde::Deserialize;

use crate::MainerRole;

pub type ChallengeId = u64;

/// How an answer is generated: passed to the LLM as llama.cpp arguments.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct GenerationSettings {
    /// Most tokens to generate (llama.cpp `-n`).
    pub max_tokens: u64,
    /// 0.0 is greedy decoding (llama.cpp `--temp`).
    pub temperature: f32,
    pub seed: u32,
    pub top_k: Option<u32>,
    pub top_p: Option<f32>,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        GenerationSettings { max_tokens: 64, temperature: 0.0, seed: 42, top_k: None, top_p: None }
    }
}

/// A challenge as an admin adds it. It closes after `max_submissions`
/// submissions or at `deadline_ns`, whichever comes first (or when an admin
/// closes it).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct NewChallenge {
    pub question: String,
    pub settings: GenerationSettings,
    pub max_submissions: Option<u64>,
    pub deadline_ns: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    EnoughSubmissions,
    DeadlinePassed,
    ClosedByAdmin,
    /// It has as many scored answers as its closing rule asks.
    EnoughScores,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ChallengeStatus {
    Open,
    Closed { reason: CloseReason, at_ns: u64 },
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct Challenge {
    pub id: ChallengeId,
    pub question: String,
    pub settings: GenerationSettings,
    pub max_submissions: Option<u64>,
    pub deadline_ns: Option<u64>,
    pub created_at_ns: u64,
    pub status: ChallengeStatus,
    pub submissions: u64,
}

/// How an answer was produced, as the mAIner reports it.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ClaimedEvidence {
    /// SHA-256 (hex) of the exact prompt given to the LLM.
    pub prompt_sha256: String,
    /// The LLM canister that generated the answer.
    pub llm_canister: Principal,
    /// SHA-256 (hex) of the model file, if the mAIner knows it.
    pub model_sha256: Option<String>,
    /// Inter-canister calls made to the LLM for this answer.
    pub llm_calls: u32,
    pub prompt_tokens: Option<u64>,
    pub generated_tokens: Option<u64>,
    /// The mAIner's cycles spent so far (its controller and its share of its
    /// LLMs), as of this submission: the game state keeps the latest figure
    /// per mAIner for `mainer_info`.
    pub cycles_spent: Option<u128>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SubmitRequest {
    pub challenge_id: ChallengeId,
    pub answer: String,
    pub evidence: ClaimedEvidence,
}

/// What the game state stores: the claimed evidence plus what it computed itself.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub prompt_sha256: String,
    /// Computed by the game state from the answer it received.
    pub answer_sha256: String,
    pub llm_canister: Principal,
    pub model_sha256: Option<String>,
    pub llm_calls: u32,
    pub prompt_tokens: Option<u64>,
    pub generated_tokens: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum SubmissionStatus {
    Submitted,
    Judging,
    Judged {
        score: u32,
    },
    /// No judge gave it a score within the bounded attempts.
    Unscorable,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub challenge_id: ChallengeId,
    pub mainer: Principal,
    pub owner: Principal,
    pub role: MainerRole,
    pub answer: String,
    pub evidence: Evidence,
    pub status: SubmissionStatus,
    pub submitted_at_ns: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RegisterMainerRequest {
    /// The controller canister of the mAIner.
    pub mainer: Principal,
    pub role: MainerRole,
    pub owner: Principal,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MainerInfo {
    pub mainer: Principal,
    pub role: MainerRole,
    pub owner: Principal,
    pub registered_at_ns: u64,
    pub submissions: u64,
    pub last_submission_ns: Option<u64>,
    /// The mAIner's module hash (hex) as the game state last read it with
    /// `canister_info`, if it has checked it.
    pub module_hash: Option<String>,
    /// What the mAIner reported with its latest submission.
    pub cycles: Option<MainerCyclesReport>,
}

/// A mAIner's cycles as it reports them: spent so far, per answer and per
/// day (over the time since it registered).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MainerCyclesReport {
    pub spent: u128,
    pub per_answer: Option<u128>,
    pub per_day: Option<u128>,
    pub reported_at_ns: u64,
}

/// A module (the SHA-256 of a wasm as installed) the creator installs in
/// mAIners, reported before it installs it; `mainer`: the one it is about
/// to upgrade, whose cached module hash the game state then reads again.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ModuleReport {
    #[serde(with = "serde_bytes")]
    pub module_hash: Vec<u8>,
    pub mainer: Option<Principal>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GameCounts {
    pub mainers: u64,
    pub challenges: u64,
    pub open_challenges: u64,
    pub submissions: u64,
}

/// Install arguments: `Init` on install, `Upgrade` (fields that are `Some`
/// change) on upgrade.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum GameStateArgs {
    Init(GameStateInit),
    Upgrade(GameStateUpgrade),
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GameStateInit {
    pub admins: Vec<Principal>,
    /// Canisters (the mAIner creator) allowed to register mAIners.
    pub registrars: Vec<Principal>,
    /// Largest answer accepted, in bytes (default 16 KiB).
    pub max_answer_bytes: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct GameStateUpgrade {
    pub admins: Option<Vec<Principal>>,
    pub registrars: Option<Vec<Principal>>,
    pub max_answer_bytes: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum GameError {
    /// The caller may not do this.
    Unauthorized(String),
    /// The caller is not a registered mAIner.
    NotRegistered(Principal),
    AlreadyRegistered(Principal),
    ChallengeNotFound(ChallengeId),
    ChallengeClosed(ChallengeId),
    /// Every open challenge has already been answered by this mAIner.
    NoOpenChallenge,
    AlreadySubmitted(ChallengeId),
    AnswerTooLarge {
        bytes: u64,
        max: u64,
    },
    InvalidInput(String),
    /// The caller is not a registered challenger.
    NotAChallenger(Principal),
    /// The caller is not a registered judge.
    NotAJudge(Principal),
    TopicNotFound(u64),
    /// No topic has a weight above zero.
    NoTopic,
    /// Challengers wait: as many challenges are open as the game allows.
    TooManyOpenChallenges {
        open: u64,
        max: u64,
    },
    /// No submission is waiting for a judge.
    NothingToJudge,
    /// No live lease of the caller's has this id (unknown, expired or another judge's).
    LeaseNotFound(u64),
    ScoreOutOfRange {
        score: u32,
        min: u32,
        max: u32,
    },
    /// The challenge has not been finalized yet.
    NotFinalized(ChallengeId),
    PayoutNotFound(u64),
    /// The calling mAIner runs code the creator did not install (hex hash;
    /// None: no code), so its submissions are refused.
    UnknownModule {
        mainer: Principal,
        module_hash: Option<String>,
    },
    /// The game state could not check something it needs (e.g. the caller's
    /// module hash): a transient failure, try again.
    Unavailable(String),
}

impl std::fmt::Display for GameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GameError::Unauthorized(why) => write!(f, "unauthorized: {why}"),
            GameError::NotRegistered(p) => write!(f, "{p} is not a registered mAIner"),
            GameError::AlreadyRegistered(p) => write!(f, "{p} is already registered"),
            GameError::ChallengeNotFound(id) => write!(f, "challenge {id} does not exist"),
            GameError::ChallengeClosed(id) => write!(f, "challenge {id} is closed"),
            GameError::NoOpenChallenge => write!(f, "no open challenge left for this mAIner"),
            GameError::AlreadySubmitted(id) => write!(f, "already submitted an answer to challenge {id}"),
            GameError::AnswerTooLarge { bytes, max } => write!(f, "answer of {bytes} bytes exceeds {max} bytes"),
            GameError::InvalidInput(why) => write!(f, "invalid input: {why}"),
            GameError::NotAChallenger(p) => write!(f, "{p} is not a registered challenger"),
            GameError::NotAJudge(p) => write!(f, "{p} is not a registered judge"),
            GameError::TopicNotFound(id) => write!(f, "topic {id} does not exist"),
            GameError::NoTopic => write!(f, "no topic has a weight above zero"),
            GameError::TooManyOpenChallenges { open, max } => {
                write!(f, "{open} challenges are open, the game allows {max}")
            }
            GameError::NothingToJudge => write!(f, "no submission is waiting for a judge"),
            GameError::LeaseNotFound(id) => write!(f, "no live lease {id} of the caller's"),
            GameError::ScoreOutOfRange { score, min, max } => write!(f, "score {score} is not in {min}..={max}"),
            GameError::NotFinalized(id) => write!(f, "challenge {id} is not finalized yet"),
            GameError::PayoutNotFound(id) => write!(f, "payout {id} does not exist"),
            GameError::UnknownModule { mainer, module_hash } => write!(
                f,
                "{mainer} runs a module the creator did not install ({})",
                module_hash.as_deref().unwrap_or("no module")
            ),
            GameError::Unavailable(why) => write!(f, "unavailable, try again: {why}"),
        }
    }
}

pub type GameResult<T> = Result<T, GameError>;
