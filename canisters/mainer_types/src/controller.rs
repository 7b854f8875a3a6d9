//! The mAIner controller's interface: install arguments, settings, the work
//! queue, the ShareAgent ⇄ ShareService messages, diagnostics and errors.

use candid::{CandidType, Principal};
use serde::Deserialize;

use crate::MainerRole;
use crate::game::{Challenge, ChallengeId, ChallengeStatus, ClaimedEvidence, GenerationSettings};
use crate::llm_client::ClientLimits;

/// How the prompt is written from a challenge's question.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum PromptFormat {
    /// ChatML, as Qwen models expect: a system turn, the user turn, then the
    /// start of the assistant turn.
    ChatMl { system: String },
    /// The question as it is (tiny test models without a chat template).
    Plain,
}

impl PromptFormat {
    pub fn render(&self, question: &str) -> String {
        match self {
            PromptFormat::ChatMl { system } => format!(
                "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
            ),
            PromptFormat::Plain => question.to_string(),
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ControllerSettings {
    /// Seconds between pulls of a challenge (Own, ShareAgent).
    pub pull_interval_seconds: u64,
    /// Seconds between processing rounds (Own, ShareService).
    pub process_interval_seconds: u64,
    /// Work items held at most (queued, in flight or answered).
    pub max_queue: u32,
    /// Attempts per item before it is given up.
    pub max_attempts: u32,
    /// Back-off after a failed attempt: base × 2^(attempts-1), capped.
    pub retry_base_seconds: u64,
    pub retry_max_seconds: u64,
    /// How long an LLM that failed is left alone.
    pub llm_rest_seconds: u64,
    /// An item in flight for longer than this is taken back and retried.
    pub in_flight_timeout_seconds: u64,
    pub prompt_format: PromptFormat,
    pub llm_limits: ClientLimits,
    /// Finished items kept for `recent_work`.
    pub history_size: u32,
    /// `health` reports a problem when work has waited this long without an
    /// answer being submitted (or delivered).
    pub stall_alert_seconds: u64,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings {
            pull_interval_seconds: 60,
            process_interval_seconds: 5,
            max_queue: 16,
            max_attempts: 5,
            retry_base_seconds: 10,
            retry_max_seconds: 600,
            llm_rest_seconds: 60,
            in_flight_timeout_seconds: 900,
            prompt_format: PromptFormat::ChatMl { system: "You are a helpful assistant.".into() },
            llm_limits: ClientLimits::default(),
            history_size: 200,
            stall_alert_seconds: 3_600,
        }
    }
}

impl ControllerSettings {
    /// Refuses settings that would break the timers or the queue.
    pub fn validate(&self) -> Result<(), ControllerError> {
        let bad = |why: &str| Err(ControllerError::InvalidInput(why.to_string()));
        if self.pull_interval_seconds == 0 || self.process_interval_seconds == 0 {
            return bad("timer intervals must be at least 1 second");
        }
        if self.pull_interval_seconds > 86_400 * 30 || self.process_interval_seconds > 86_400 * 30 {
            return bad("timer intervals must be at most 30 days");
        }
        if !(1..=10_000).contains(&self.max_queue) {
            return bad("max_queue must be between 1 and 10000");
        }
        if !(1..=100).contains(&self.max_attempts) {
            return bad("max_attempts must be between 1 and 100");
        }
        if self.retry_base_seconds == 0 || self.retry_max_seconds < self.retry_base_seconds {
            return bad("retry_base_seconds must be positive and at most retry_max_seconds");
        }
        if self.in_flight_timeout_seconds == 0 || self.llm_limits.max_calls == 0 {
            return bad("in_flight_timeout_seconds and llm_limits.max_calls must be positive");
        }
        if self.history_size > 100_000 {
            return bad("history_size must be at most 100000");
        }
        if self.stall_alert_seconds == 0 || self.stall_alert_seconds > 86_400 * 30 {
            return bad("stall_alert_seconds must be between 1 second and 30 days");
        }
        Ok(())
    }

    /// The back-off before attempt number `attempts + 1`.
    pub fn retry_delay_seconds(&self, attempts: u32) -> u64 {
        let exp = attempts.saturating_sub(1).min(30);
        self.retry_base_seconds.saturating_mul(1u64 << exp).min(self.retry_max_seconds)
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ControllerInit {
    pub role: MainerRole,
    pub game_state: Principal,
    /// The mAIner creator canister (may manage LLMs and ShareAgents).
    pub creator: Principal,
    pub owner: Principal,
    /// Required for a ShareAgent, refused for other roles.
    pub share_service: Option<Principal>,
    pub settings: Option<ControllerSettings>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ControllerUpgrade {
    pub settings: Option<ControllerSettings>,
}

/// Install arguments: `Init` on install, `Upgrade` on upgrade.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ControllerArgs {
    Init(ControllerInit),
    Upgrade(ControllerUpgrade),
}

/// Who the work is for.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkOrigin {
    /// Pulled by this controller from the game state.
    Pulled,
    /// Sent by this ShareAgent-served canister (ShareService side).
    Agent(Principal),
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum WorkState {
    Queued,
    /// Being answered: by one of our LLMs, or (ShareAgent) by the ShareService.
    InFlight {
        since_ns: u64,
        llm: Option<Principal>,
    },
    Answered,
    /// Submitted to the game state (Own, ShareAgent).
    Submitted {
        at_ns: u64,
    },
    /// Handed back to the ShareAgent (ShareService).
    Delivered {
        at_ns: u64,
    },
    Failed {
        reason: String,
    },
    /// Not answered on purpose, e.g. the challenge closed meanwhile.
    Dropped {
        reason: String,
    },
}

impl WorkState {
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Submitted { .. } | Self::Delivered { .. } | Self::Failed { .. } | Self::Dropped { .. })
    }
}

/// An answer with the evidence of how it was made.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub evidence: ClaimedEvidence,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct WorkItem {
    pub id: u64,
    pub challenge: Challenge,
    pub origin: WorkOrigin,
    pub state: WorkState,
    /// Failed attempts that count towards `max_attempts`: answers the LLM
    /// (or the ShareService) itself refused.
    pub attempts: u32,
    /// Retries after someone else's outage (an LLM stopped, trapping or slow,
    /// the game state or the ShareService unreachable or paused, our own
    /// upgrade): they back off but never make the item fail.
    pub outages: u32,
    /// Not retried before this time.
    pub next_attempt_ns: u64,
    pub last_error: Option<String>,
    pub answer: Option<Answer>,
    pub created_at_ns: u64,
    pub updated_at_ns: u64,
}

/// ShareAgent → ShareService: please answer this challenge for me.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct ServiceRequest {
    pub challenge: ServiceChallenge,
}

/// What a ShareService needs to answer a challenge, and no more: the
/// challenge's status and counts as the ShareAgent pulled them are stale by
/// the time the service works on it (it asks the game state whether the
/// challenge is still open). A [`Challenge`] record has these fields too, so
/// a service also accepts the requests of agents that send the whole record.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct ServiceChallenge {
    pub id: ChallengeId,
    pub question: String,
    pub settings: GenerationSettings,
}

impl From<&Challenge> for ServiceChallenge {
    fn from(c: &Challenge) -> Self {
        ServiceChallenge { id: c.id, question: c.question.clone(), settings: c.settings.clone() }
    }
}

impl ServiceChallenge {
    /// The challenge as the service's work item holds it: open, no
    /// submissions or limits known (the game state has the truth).
    pub fn into_challenge(self, received_at_ns: u64) -> Challenge {
        Challenge {
            id: self.id,
            question: self.question,
            settings: self.settings,
            max_submissions: None,
            deadline_ns: None,
            created_at_ns: received_at_ns,
            status: ChallengeStatus::Open,
            submissions: 0,
        }
    }
}

/// The ShareService's acceptance: the item and its place in the queue.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ServiceTicket {
    pub item_id: u64,
    /// At most this many queued items are taken before it (the others
    /// queued when it is; 0 once it is in flight).
    pub queued_ahead: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Answered(Answer),
    Failed(String),
}

/// ShareService → ShareAgent: the answer (or the failure) for a challenge.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AnswerDelivery {
    pub challenge_id: ChallengeId,
    pub outcome: DeliveryOutcome,
}

/// `add_llm`: an LLM canister joins the controller's pool.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AddLlmRequest {
    pub canister: Principal,
    /// SHA-256 (hex) of the model the LLM has loaded, reported as evidence.
    pub model_sha256: Option<String>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LlmStatus {
    pub canister: Principal,
    pub healthy: bool,
    pub draining: bool,
    pub resting_until_ns: Option<u64>,
    pub in_flight: Option<u64>,
    pub answers: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LlmCheck {
    pub canister: Principal,
    pub ready: bool,
    pub detail: String,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Counters {
    pub challenges_pulled: u64,
    pub answers_generated: u64,
    pub submissions: u64,
    pub deliveries: u64,
    pub generation_failures: u64,
    pub items_failed: u64,
    pub items_dropped: u64,
    pub llm_calls: u64,
    /// Instructions this canister spent on generations (its own side only).
    pub generation_instructions: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    pub role: MainerRole,
    pub paused: bool,
    pub ready: bool,
    /// Why not ready, if not.
    pub problems: Vec<String>,
    pub queued: u64,
    pub in_flight: u64,
    pub answered: u64,
    pub llms: u64,
    pub healthy_llms: u64,
    pub cycles: u128,
    pub timers_armed: bool,
    /// When an answer was last submitted (Own, ShareAgent) or delivered (ShareService).
    pub last_handed_on_ns: Option<u64>,
    /// Since when work has been waiting without an answer handed on.
    pub waiting_since_ns: Option<u64>,
    /// Paused by itself: the balance fell below its floor (resumes after a top-up).
    pub low_cycles: bool,
    /// Cycles spent per answer handed on: this controller and its LLMs (see `CyclesReport`).
    pub cycles_per_answer: Option<u128>,
}

/// How fast a mAIner may spend its cycles: sets its pull interval.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum BurnRate {
    /// 0.5 T cycles a day.
    Low,
    /// 2 T a day.
    Medium,
    /// 8 T a day.
    High,
    CyclesPerDay(u128),
}

/// How a controller keeps its LLMs funded: an LLM whose balance is below
/// `floor` gets `amount` from the controller (checked every `check_seconds`);
/// never on every call.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LlmFunding {
    pub floor: u128,
    pub amount: u128,
    pub check_seconds: u64,
}

impl Default for LlmFunding {
    fn default() -> Self {
        LlmFunding { floor: 1_000_000_000_000, amount: 2_000_000_000_000, check_seconds: 600 }
    }
}

/// The controller's cycles: balance, floor, and what it spent per answer.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CyclesReport {
    pub balance: u128,
    /// Below this it pauses itself (LowCycles).
    pub floor_cycles: u128,
    pub low_cycles: bool,
    /// The balance at the first timer round plus the reported top-ups, less
    /// the balance now.
    pub spent: u128,
    /// What its LLMs spent since their first funding check, net of what
    /// they were given (0 for a ShareAgent: its service's LLMs are not its).
    pub llm_spent: u128,
    /// `spent` less what went to the LLMs, plus what the LLMs spent.
    pub total_spent: u128,
    /// `total_spent` per day since the first timer round (at least an hour).
    pub cycles_per_day: Option<u128>,
    /// Top-ups the creator reported.
    pub received: u128,
    /// Answers submitted or delivered.
    pub answers: u64,
    /// `total_spent` per answer.
    pub cycles_per_answer: Option<u128>,
    pub burn_per_day: Option<u128>,
    pub pull_interval_seconds: u64,
    pub llm_funding: LlmFunding,
    /// Cycles given to LLMs that ran below the funding floor.
    pub llm_funded: u128,
}

/// What one manual step did.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    pub started: u64,
    pub finished: u64,
    pub notes: Vec<String>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ControllerConfigView {
    pub role: MainerRole,
    pub game_state: Principal,
    pub creator: Principal,
    pub owner: Principal,
    pub share_service: Option<Principal>,
    pub settings: ControllerSettings,
    pub paused: bool,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ControllerError {
    Unauthorized(String),
    /// The operation does not exist for this controller's role.
    WrongRole {
        role: MainerRole,
        needs: String,
    },
    QueueFull {
        capacity: u32,
    },
    NotFound(String),
    AlreadyExists(String),
    /// The LLM still has an answer in flight.
    Busy(String),
    InvalidInput(String),
    Paused,
    /// ShareService: the request's question or settings are not those of the
    /// challenge with its id as the game state has it.
    ChallengeMismatch {
        challenge_id: ChallengeId,
    },
    /// A call to another canister failed.
    CallFailed {
        canister: Principal,
        method: String,
        reason: String,
    },
}

impl std::fmt::Display for ControllerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControllerError::Unauthorized(why) => write!(f, "unauthorized: {why}"),
            ControllerError::WrongRole { role, needs } => {
                write!(f, "a {role:?} controller cannot do this (needs {needs})")
            }
            ControllerError::QueueFull { capacity } => write!(f, "the queue is full ({capacity} items)"),
            ControllerError::NotFound(what) => write!(f, "not found: {what}"),
            ControllerError::AlreadyExists(what) => write!(f, "already exists: {what}"),
            ControllerError::Busy(what) => write!(f, "busy: {what}"),
            ControllerError::InvalidInput(why) => write!(f, "invalid input: {why}"),
            ControllerError::Paused => write!(f, "the controller is paused"),
            ControllerError::ChallengeMismatch { challenge_id } => {
                write!(f, "the request does not match challenge {challenge_id} as the game state has it")
            }
            ControllerError::CallFailed { canister, method, reason } => {
                write!(f, "call to {canister}.{method} failed: {reason}")
            }
        }
    }
}

pub type ControllerResult<T> = Result<T, ControllerError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_takes_requests_that_carry_the_whole_challenge() {
        // Agents of an earlier release send the whole record: its extra fields are ignored.
        #[derive(CandidType)]
        struct EarlierRequest {
            challenge: Challenge,
        }
        let c = Challenge {
            id: 4,
            question: "why?".into(),
            settings: GenerationSettings { max_tokens: 9, ..Default::default() },
            max_submissions: Some(3),
            deadline_ns: Some(5),
            created_at_ns: 1,
            status: ChallengeStatus::Closed { at_ns: 2, reason: crate::game::CloseReason::EnoughSubmissions },
            submissions: 3,
        };
        let bytes = candid::encode_one(EarlierRequest { challenge: c.clone() }).unwrap();
        let read: ServiceRequest = candid::decode_one(&bytes).unwrap();
        assert_eq!(read.challenge, ServiceChallenge::from(&c));
        let now = read.challenge.into_challenge(7);
        assert_eq!((now.id, now.question.as_str(), now.settings.max_tokens), (4, "why?", 9));
        assert_eq!((now.status, now.submissions, now.created_at_ns), (ChallengeStatus::Open, 0, 7));
        let new = candid::encode_one(ServiceRequest { challenge: ServiceChallenge::from(&c) }).unwrap();
        assert!(new.len() < bytes.len(), "the request carries less");
    }

    #[test]
    fn settings_are_validated() {
        assert!(ControllerSettings::default().validate().is_ok());
        let zero = ControllerSettings { process_interval_seconds: 0, ..Default::default() };
        assert!(matches!(zero.validate(), Err(ControllerError::InvalidInput(_))));
        let no_queue = ControllerSettings { max_queue: 0, ..Default::default() };
        assert!(no_queue.validate().is_err());
    }

    #[test]
    fn back_off_doubles_and_is_capped() {
        let s = ControllerSettings { retry_base_seconds: 10, retry_max_seconds: 100, ..Default::default() };
        let delays: Vec<u64> = (1..=6).map(|a| s.retry_delay_seconds(a)).collect();
        assert_eq!(delays, vec![10, 20, 40, 80, 100, 100]);
    }

    #[test]
    fn chatml_prompt_ends_with_the_assistant_turn() {
        let p = PromptFormat::ChatMl { system: "Be brief.".into() }.render("What is 2+2?");
        assert!(p.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n"));
        assert!(p.ends_with("<|im_start|>assistant\n"));
        assert_eq!(PromptFormat::Plain.render("Joe loves"), "Joe loves");
    }
}
