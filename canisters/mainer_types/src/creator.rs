//! The mAIner creator's interface: the artefact store (uploads of controller
//! wasm, LLM wasm and GGUF models), the factory's jobs, and typed errors.

use candid::{CandidType, Principal};
use serde::Deserialize;

use crate::MainerRole;
use crate::controller::ControllerSettings;

/// Largest chunk of an artefact upload (`upload_chunk`) in one message.
pub const MAX_ARTEFACT_CHUNK_BYTES: u64 = 2_000_000;

#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtefactKind {
    ControllerWasm,
    LlmWasm,
    Model,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StartUploadRequest {
    pub kind: ArtefactKind,
    pub name: String,
    pub total_size: u64,
    /// If given, `finish_upload` refuses a file with another SHA-256 (hex).
    pub expected_sha256: Option<String>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadChunkRequest {
    pub upload_id: u64,
    pub offset: u64,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// An upload in progress: `received` is where the uploader resumes.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadStatus {
    pub upload_id: u64,
    pub kind: ArtefactKind,
    pub name: String,
    pub total_size: u64,
    pub received: u64,
    pub expected_sha256: Option<String>,
    pub started_by: Principal,
    pub started_at_ns: u64,
}

/// A stored artefact, keyed by its SHA-256 (computed on-chain).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ArtefactInfo {
    pub sha256: String,
    pub kind: ArtefactKind,
    pub name: String,
    pub size: u64,
    pub uploaded_by: Principal,
    pub uploaded_at_ns: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CreateMainerRequest {
    pub role: MainerRole,
    pub owner: Principal,
    /// Required for a ShareAgent, refused otherwise.
    pub share_service: Option<Principal>,
    /// LLM canisters to create (Own, ShareService: at least 1; ShareAgent: 0).
    pub llm_count: u32,
    /// Cycles for the controller canister (default: the creator's setting).
    pub controller_cycles: Option<u128>,
    /// Cycles for each LLM canister (default: the creator's setting).
    pub llm_cycles: Option<u128>,
    /// SHA-256 of the stored artefacts to use (default: the newest of the kind).
    pub controller_wasm: Option<String>,
    pub llm_wasm: Option<String>,
    pub model: Option<String>,
    pub controller_settings: Option<ControllerSettings>,
    /// `max_tokens_update` to configure in each LLM (default: the creator's setting).
    pub max_tokens_update: Option<u64>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    Done,
    /// Gave up; `retry_job` resumes from the failed step with the same canisters.
    Failed {
        reason: String,
    },
}

/// The step one canister of a factory job is at. The controller goes
/// `Create → Install → Register → Done` (registering waits for its LLMs);
/// an LLM goes `Create → Install → UploadModel → LoadModel → Configure →
/// GrantAccess → AddToController → Done`.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    Create,
    Install,
    UploadModel,
    LoadModel,
    Configure,
    GrantAccess,
    AddToController,
    /// Controller only: waits for the LLMs, then registers.
    Register,
    Done,
}

/// The step one target of a fleet job is at.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FleetStep {
    Drain,
    WaitIdle,
    Unregister,
    ReturnCycles,
    Stop,
    Upgrade,
    Start,
    Reload,
    Configure,
    Check,
    /// Back to work in its controller after an upgrade.
    Undrain,
    /// After a failure: started again and back to work, then `Failed`.
    Restore,
    Delete,
    Done,
    Failed,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::fmt::Display for FleetStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// What a job does.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// A factory job: a mAIner of this role with its LLMs.
    CreateMainer(MainerRole),
    UpgradeControllers,
    UpgradeLlms,
    RemoveLlm,
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobKind::CreateMainer(role) => write!(f, "create {role:?} mAIner"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Where one canister of a job is.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SlotView {
    pub label: String,
    pub canister: Option<Principal>,
    pub step: Step,
    pub bytes_copied: u64,
    pub bytes_total: u64,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct JobView {
    pub id: u64,
    pub kind: JobKind,
    pub status: JobStatus,
    pub slots: Vec<SlotView>,
    pub errors: Vec<String>,
    pub attempts: u32,
    pub created_at_ns: u64,
    pub updated_at_ns: u64,
}

/// A mAIner made by the creator.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MainerView {
    pub controller: Principal,
    pub role: MainerRole,
    pub owner: Principal,
    pub share_service: Option<Principal>,
    pub llms: Vec<Principal>,
    pub job: u64,
    pub ready: bool,
    /// What the controller reported last (`report_cycles`, hourly): its
    /// cycles spent with its LLMs', per answer and per day.
    pub cycles: Option<crate::game::MainerCyclesReport>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CreatorSettings {
    pub controller_cycles: u128,
    pub llm_cycles: u128,
    pub max_tokens_update: u64,
    /// Cycles the creator keeps for itself; spending below it is refused.
    pub reserve_cycles: u128,
    /// Seconds between job rounds.
    pub job_interval_seconds: u64,
    /// Jobs advanced concurrently.
    pub max_parallel_jobs: u32,
    /// Model chunks copied per job round.
    pub chunks_per_round: u32,
}

impl Default for CreatorSettings {
    fn default() -> Self {
        CreatorSettings {
            controller_cycles: 2_000_000_000_000,
            llm_cycles: 5_000_000_000_000,
            max_tokens_update: 16,
            reserve_cycles: 1_000_000_000_000,
            job_interval_seconds: 2,
            max_parallel_jobs: 4,
            chunks_per_round: 8,
        }
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CreatorInit {
    pub admins: Vec<Principal>,
    pub game_state: Principal,
    /// Principals allowed to call `create_mainer` besides admins.
    pub allowed_creators: Vec<Principal>,
    pub settings: Option<CreatorSettings>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct CreatorUpgrade {
    pub admins: Option<Vec<Principal>>,
    pub game_state: Option<Principal>,
    pub allowed_creators: Option<Vec<Principal>>,
    pub settings: Option<CreatorSettings>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CreatorArgs {
    Init(CreatorInit),
    Upgrade(CreatorUpgrade),
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CreatorError {
    Unauthorized(String),
    InvalidInput(String),
    NotFound(String),
    /// The chunk starts after the end of what was received.
    UploadGap {
        received: u64,
        offset: u64,
    },
    /// The chunk overlaps what was received with different bytes.
    UploadOverlap {
        received: u64,
        offset: u64,
    },
    ChunkTooLarge {
        size: u64,
        max: u64,
    },
    /// The chunk would end past the announced total size.
    SizeOverrun {
        end: u64,
        total_size: u64,
    },
    Incomplete {
        received: u64,
        total_size: u64,
    },
    HashMismatch {
        expected: String,
        actual: String,
    },
    /// The artefact is used by a job that is not finished.
    InUse(String),
    InsufficientCycles {
        needed: u128,
        available: u128,
    },
    /// A ShareAgent has no LLM of its own.
    ShareAgentHasNoLlms,
    MissingShareService,
    NoArtefact(ArtefactKind),
    /// The order or top-up was not paid (nothing was charged, or it was sent back).
    Payment(crate::economy::PaymentError),
    /// An order limit is reached.
    LimitReached {
        what: String,
        limit: u64,
    },
    /// No ShareService made by this creator has room for another ShareAgent.
    NoShareServiceWithRoom,
}

impl std::fmt::Display for CreatorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreatorError::Unauthorized(w) => write!(f, "unauthorized: {w}"),
            CreatorError::InvalidInput(w) => write!(f, "invalid input: {w}"),
            CreatorError::NotFound(w) => write!(f, "not found: {w}"),
            CreatorError::UploadGap { received, offset } => {
                write!(f, "gap: received {received} bytes, chunk starts at {offset}; resume at {received}")
            }
            CreatorError::UploadOverlap { received, offset } => {
                write!(f, "overlap: chunk at {offset} differs from the bytes already received (up to {received})")
            }
            CreatorError::ChunkTooLarge { size, max } => write!(f, "chunk of {size} bytes exceeds {max}"),
            CreatorError::SizeOverrun { end, total_size } => {
                write!(f, "chunk ends at {end}, past the total size {total_size}")
            }
            CreatorError::Incomplete { received, total_size } => {
                write!(f, "only {received} of {total_size} bytes received")
            }
            CreatorError::HashMismatch { expected, actual } => {
                write!(f, "SHA-256 mismatch: expected {expected}, got {actual}")
            }
            CreatorError::InUse(w) => write!(f, "in use: {w}"),
            CreatorError::InsufficientCycles { needed, available } => {
                write!(f, "the creator needs {needed} cycles but has {available} to spend")
            }
            CreatorError::ShareAgentHasNoLlms => write!(f, "a ShareAgent has no LLM canisters of its own"),
            CreatorError::MissingShareService => write!(f, "a ShareAgent needs a ShareService"),
            CreatorError::NoArtefact(kind) => write!(f, "no stored artefact of kind {kind:?}"),
            CreatorError::Payment(e) => write!(f, "payment: {e}"),
            CreatorError::LimitReached { what, limit } => write!(f, "limit reached: {what} (at most {limit})"),
            CreatorError::NoShareServiceWithRoom => write!(f, "no ShareService has room for another ShareAgent"),
        }
    }
}

pub type CreatorResult<T> = Result<T, CreatorError>;

/// Upgrade mAIner controllers (or LLM canisters) to a stored wasm, a batch at a time.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UpgradeControllersRequest {
    /// The wasm (default: the newest stored of the kind).
    pub wasm_sha256: Option<String>,
    /// Which canisters (default: every controller, or every LLM, this creator made).
    pub targets: Option<Vec<Principal>>,
    /// Controllers upgraded at the same time (1..=50).
    pub batch_size: u32,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FleetTargetView {
    pub canister: Principal,
    pub step: FleetStep,
    pub error: Option<String>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FleetJobView {
    pub id: u64,
    /// UpgradeControllers, UpgradeLlms or RemoveLlm.
    pub kind: JobKind,
    pub wasm_sha256: String,
    pub batch_size: u32,
    pub status: JobStatus,
    pub targets: Vec<FleetTargetView>,
    pub created_at_ns: u64,
    pub updated_at_ns: u64,
}
