//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "mainer",
    version,
    about = "Operates the mAIner factory: uploads, mAIners, jobs, fleet upgrades, challenges, submissions.",
    after_help = "Exit codes: 0 ok, 1 the canister answered with an error, 2 usage, \
                  3 connection/transport (also: unknown canister, time-out), 4 SHA-256 mismatch."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// `local` (http://127.0.0.1:4943, or the bind address in dfx.json), `ic`, or a URL.
    #[arg(long, global = true, default_value = "local", env = "MAINER_NETWORK")]
    pub network: String,
    /// A dfx identity: ~/.config/dfx/identity/NAME/identity.pem, or (keyring, encrypted) `dfx identity export NAME`.
    #[arg(long, global = true, conflicts_with = "pem")]
    pub identity: Option<String>,
    /// A PEM key file (secp256k1, Ed25519 or prime256v1). Anonymous without this and --identity.
    #[arg(long, global = true)]
    pub pem: Option<PathBuf>,
    /// The mainer_creator canister (default: from dfx's canister_ids.json).
    #[arg(long, global = true, env = "CANISTER_ID_MAINER_CREATOR")]
    pub creator: Option<String>,
    /// The game_state canister (default: from dfx's files, else the creator's).
    #[arg(long = "game-state", global = true, env = "CANISTER_ID_GAME_STATE")]
    pub game_state: Option<String>,
    /// The dfx project whose canister ids are used (default: the nearest directory with a dfx.json).
    #[arg(long, global = true)]
    pub project: Option<PathBuf>,
    /// Machine-readable output: JSON of the Candid values.
    #[arg(long, global = true)]
    pub json: bool,
    /// Tries per call on transient failures (time-outs, unreachable network).
    #[arg(long, global = true, default_value_t = 6)]
    pub retries: u32,
    /// Stop following a job after this many seconds (default: follow to the end).
    #[arg(long, global = true)]
    pub follow_timeout: Option<u64>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Uploads an artefact into the creator (resumable; skipped if already stored).
    Upload(UploadArgs),
    /// Lists the stored artefacts.
    Artefacts {
        #[arg(long)]
        kind: Option<KindArg>,
    },
    /// Lists unfinished uploads.
    Uploads,
    /// Cancels an unfinished upload and frees its space.
    CancelUpload { id: u64 },
    /// Orders a mAIner from the creator.
    CreateMainer(CreateArgs),
    /// Lists the factory's jobs, or shows (and follows) one.
    Jobs(JobsArgs),
    /// Resumes a failed job from where it stopped.
    RetryJob {
        id: u64,
        #[arg(long)]
        follow: bool,
    },
    /// Lists the mAIners made by the creator, with their health.
    Mainers,
    /// Lists the LLM canisters of every mAIner, with their health.
    Llms,
    /// Upgrades mAIner controllers to a stored controller wasm, in batches.
    FleetUpgrade(FleetArgs),
    /// Upgrades LLM canisters to a stored LLM wasm (the model is reloaded), in batches.
    UpgradeLlms(FleetArgs),
    /// Removes an LLM from its mAIner: drains, unregisters, stops and deletes it.
    RemoveLlm {
        /// The LLM canister.
        llm: String,
        /// Return at once instead of following the removal.
        #[arg(long)]
        no_follow: bool,
    },
    /// Shows (and follows) a fleet operation.
    FleetJob {
        id: u64,
        #[arg(long)]
        follow: bool,
    },
    /// Adds, lists or closes challenges of the game.
    #[command(subcommand)]
    Challenge(ChallengeCmd),
    /// Lists the submissions to a challenge or of a mAIner.
    Submissions(SubmissionsArgs),
    /// Shows who you are and which canisters you talk to.
    Whoami,
    /// Quotes what an order costs (anyone).
    Price(KindArgs),
    /// Orders a mAIner for yourself and pays on the cycles ledger: approves the creator for the
    /// quote, then orders (you become the owner).
    Order(OrderArgs),
    /// Your orders: their jobs, what they paid and spent, refunds.
    Orders,
    /// Tops up a mAIner made by the creator, paid on the cycles ledger (approves the creator first).
    TopUp {
        /// The mAIner's controller canister.
        mainer: String,
        /// Cycles it gets, e.g. 2T.
        amount: String,
    },
    /// Sets a mAIner's burn rate (owner or operators): low, medium, high, or cycles per day (e.g. 3T).
    BurnRate {
        /// The mAIner's controller canister.
        mainer: String,
        rate: String,
    },
    /// A mAIner's cycles: balance, floor, LowCycles, cycles per answer.
    Cycles {
        /// The mAIner's controller canister.
        mainer: String,
    },
    /// The creator's books and its prices (admins).
    Books,
    /// The whole fleet on one screen: mAIners by role and state, work, LLMs, cycles, jobs, the
    /// game, and what is wrong.
    Status,
    /// A canister's log (its `/logs`, JSON; controllers of the canister only, as `log_visibility` says).
    Logs {
        canister: String,
        /// Only these priorities, e.g. ERROR,WARN.
        #[arg(long)]
        priority: Option<String>,
        /// Only the latest N records.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// A canister's metrics (its `/metrics`, Prometheus text).
    Metrics { canister: String },
    /// Pauses every ready mAIner made by the creator (or those of one role).
    Pause {
        #[arg(long)]
        role: Option<RoleArg>,
    },
    /// Resumes every ready mAIner made by the creator (or those of one role).
    Resume {
        #[arg(long)]
        role: Option<RoleArg>,
    },
}

/// Fleet-wide switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetSwitch {
    Pause,
    Resume,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct KindGroup {
    /// An Own mAIner with this many LLM canisters.
    #[arg(long)]
    pub own: Option<u32>,
    /// A ShareAgent (on the ShareService with the most room, or `--share-service`).
    #[arg(long)]
    pub share_agent: bool,
}

#[derive(Args, Debug)]
pub struct KindArgs {
    #[command(flatten)]
    pub kind: KindGroup,
    /// A ShareAgent's ShareService (its controller canister).
    #[arg(long)]
    pub share_service: Option<String>,
}

#[derive(Args, Debug)]
pub struct OrderArgs {
    #[command(flatten)]
    pub kind: KindArgs,
    /// Names the order (nanoseconds, within the ledger's 24 h): the same value again is the same
    /// order, charged once, so a failed call can be repeated safely. Default: the creator's time.
    #[arg(long)]
    pub created_at: Option<u64>,
    /// Do not approve first (an approval for the quote's `approve` amount is in place).
    #[arg(long)]
    pub no_approve: bool,
    /// Follow the job until it is done.
    #[arg(long)]
    pub follow: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindArg {
    ControllerWasm,
    LlmWasm,
    Model,
}

#[derive(Args, Debug)]
pub struct UploadArgs {
    #[arg(long)]
    pub kind: KindArg,
    /// The file: a canister wasm or a GGUF model.
    pub file: PathBuf,
    /// The artefact's name (default: the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Refuse the file unless its SHA-256 is this (e.g. the published hash of a model).
    #[arg(long)]
    pub sha256: Option<String>,
    /// Bytes per upload_chunk message (at most 2000000).
    #[arg(long, default_value_t = 2_000_000)]
    pub chunk_size: u64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleArg {
    Own,
    ShareService,
    ShareAgent,
    /// Generates the game's challenges from its topics (admins).
    Challenger,
    /// Scores the game's submissions (admins).
    Judge,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptArg {
    /// ChatML (Qwen and other chat models).
    Chatml,
    /// The question as it is (tiny models without a chat template).
    Plain,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[arg(long)]
    pub role: RoleArg,
    /// The principal that owns the mAIner.
    #[arg(long)]
    pub owner: String,
    /// A ShareAgent's ShareService (its controller canister).
    #[arg(long)]
    pub share_service: Option<String>,
    /// LLM canisters to create (default: 1 for own and share-service, 0 for share-agent).
    #[arg(long)]
    pub llms: Option<u32>,
    /// Cycles for the controller canister (e.g. 2T; default: the creator's setting).
    #[arg(long)]
    pub controller_cycles: Option<String>,
    /// Cycles for each LLM canister (e.g. 5T; default: the creator's setting).
    #[arg(long)]
    pub llm_cycles: Option<String>,
    /// SHA-256 of the stored controller wasm (default: the newest).
    #[arg(long)]
    pub controller_wasm: Option<String>,
    /// SHA-256 of the stored LLM wasm (default: the newest).
    #[arg(long)]
    pub llm_wasm: Option<String>,
    /// SHA-256 of the stored model (default: the newest).
    #[arg(long)]
    pub model: Option<String>,
    /// Tokens per LLM call (default: the creator's setting).
    #[arg(long)]
    pub max_tokens_update: Option<u64>,
    /// How prompts are written (default: the controller's, ChatML).
    #[arg(long)]
    pub prompt: Option<PromptArg>,
    /// The system turn of ChatML prompts.
    #[arg(long)]
    pub system: Option<String>,
    /// Seconds between pulls of a challenge.
    #[arg(long)]
    pub pull_interval: Option<u64>,
    /// Seconds between processing rounds.
    #[arg(long)]
    pub process_interval: Option<u64>,
    /// Follow the job until it is done.
    #[arg(long)]
    pub follow: bool,
}

#[derive(Args, Debug)]
pub struct JobsArgs {
    /// A job to show; without it, the newest jobs are listed.
    pub id: Option<u64>,
    /// Follow the job until it is done, printing its steps as they change.
    #[arg(long, requires = "id")]
    pub follow: bool,
    /// Jobs listed at most.
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
}

#[derive(Args, Debug)]
pub struct FleetArgs {
    /// SHA-256 of the stored wasm (default: the newest of the kind).
    #[arg(long)]
    pub wasm: Option<String>,
    /// Canisters upgraded at the same time (1 to 50).
    #[arg(long, default_value_t = 5)]
    pub batch: u32,
    /// Only these canisters (default: every controller, or LLM, the creator made).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Return at once instead of following the upgrade.
    #[arg(long)]
    pub no_follow: bool,
}

#[derive(Subcommand, Debug)]
pub enum ChallengeCmd {
    /// Adds a challenge.
    Add(ChallengeAddArgs),
    /// Lists the challenges, oldest first.
    List,
    /// Closes a challenge.
    Close { id: u64 },
}

#[derive(Args, Debug)]
pub struct ChallengeAddArgs {
    #[arg(long)]
    pub question: String,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: u64,
    /// 0 is greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 42)]
    pub seed: u32,
    #[arg(long)]
    pub top_k: Option<u32>,
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Close after this many submissions.
    #[arg(long)]
    pub max_submissions: Option<u64>,
    /// Close this many seconds from now.
    #[arg(long)]
    pub deadline_in: Option<u64>,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct SubmissionsArgs {
    #[arg(long)]
    pub challenge: Option<u64>,
    /// A mAIner's controller canister.
    #[arg(long)]
    pub mainer: Option<String>,
}
