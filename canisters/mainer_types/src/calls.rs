//! Typed call descriptors: one per endpoint another canister, the CLI or a
//! test calls, grouped by callee. A descriptor names the method and fixes its
//! argument and reply types, so a renamed method or a changed type breaks at
//! compile time at every call site instead of at run time.
//!
//! The argument type `A` is the tuple of Candid arguments (`()`, `(T,)`,
//! `(T, U)`); the reply `R` is the method's one result. Callers encode with
//! [`Method::encode`] and decode with [`Method::decode`]; how the bytes travel
//! (ic-cdk, ic-agent, a test environment) is the caller's business.

use std::marker::PhantomData;

use candid::CandidType;
use candid::utils::ArgumentEncoder;
use serde::de::DeserializeOwned;

/// How an endpoint is called from outside the IC (canisters call both kinds
/// as updates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Query,
    /// An update that must not run twice by accident.
    Update,
    /// An update that is harmless to repeat (a lost reply may be retried).
    IdempotentUpdate,
}

/// An endpoint: its name, how it is called, its argument tuple `A` and reply `R`.
pub struct Method<A, R> {
    pub name: &'static str,
    pub mode: Mode,
    types: PhantomData<fn(A) -> R>,
}

// Manual impls: a derive would demand `A: Clone` and `R: Clone`.
impl<A, R> Clone for Method<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, R> Copy for Method<A, R> {}

impl<A, R> std::fmt::Debug for Method<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.name, self.mode)
    }
}

impl<A, R> Method<A, R> {
    pub const fn query(name: &'static str) -> Self {
        Method { name, mode: Mode::Query, types: PhantomData }
    }

    pub const fn update(name: &'static str) -> Self {
        Method { name, mode: Mode::Update, types: PhantomData }
    }

    pub const fn idempotent_update(name: &'static str) -> Self {
        Method { name, mode: Mode::IdempotentUpdate, types: PhantomData }
    }

    pub fn is_query(&self) -> bool {
        self.mode == Mode::Query
    }
}

impl<A: ArgumentEncoder, R: CandidType + DeserializeOwned> Method<A, R> {
    /// The Candid bytes of the arguments.
    pub fn encode(&self, args: A) -> Result<Vec<u8>, candid::Error> {
        candid::encode_args(args)
    }

    /// The reply from its Candid bytes.
    pub fn decode(&self, bytes: &[u8]) -> Result<R, candid::Error> {
        candid::decode_one(bytes)
    }
}

/// Declares a callee's descriptors and `ALL`, the (name, mode) of every one
/// (checked against the callee's `.did` by a test).
macro_rules! endpoints {
    ($( $(#[$doc:meta])* $name:ident : $ctor:ident($method:expr) => $args:ty, $reply:ty; )*) => {
        $( $(#[$doc])* pub const $name: Method<$args, $reply> = Method::$ctor($method); )*
        /// Every endpoint of this callee that is described here: (name, mode).
        pub const ALL: &[(&str, super::Mode)] = &[$( ($name.name, $name.mode) ),*];
    };
}

/// The game state canister.
pub mod game_state {
    use super::Method;
    use crate::game::*;
    use crate::game_play::*;
    use crate::{Page, PageRequest, Principal};

    endpoints! {
        REGISTER_MAINER: update("register_mainer") => (RegisterMainerRequest,), GameResult<MainerInfo>;
        UNREGISTER_MAINER: update("unregister_mainer") => (Principal,), GameResult<()>;
        ADD_CHALLENGE: update("add_challenge") => (NewChallenge,), GameResult<Challenge>;
        CLOSE_CHALLENGE: idempotent_update("close_challenge") => (ChallengeId,), GameResult<Challenge>;
        GET_CHALLENGE: update("get_challenge") => (), GameResult<Challenge>;
        RELEASE_CHALLENGE: idempotent_update("release_challenge") => (ChallengeId,), GameResult<()>;
        IS_CHALLENGE_OPEN: query("is_challenge_open") => (ChallengeId,), GameResult<bool>;
        /// A challenge as the game state has it (admins and registered mAIners).
        CHALLENGE: query("challenge") => (ChallengeId,), GameResult<Challenge>;
        SUBMIT: update("submit") => (SubmitRequest,), GameResult<Submission>;
        SUBMISSIONS_BY_CHALLENGE: query("submissions_by_challenge") => (ChallengeId, PageRequest), GameResult<Page<Submission>>;
        SUBMISSIONS_BY_MAINER: query("submissions_by_mainer") => (Principal, PageRequest), GameResult<Page<Submission>>;
        LIST_CHALLENGES: query("list_challenges") => (PageRequest,), GameResult<Page<Challenge>>;
        LIST_MAINERS: query("list_mainers") => (PageRequest,), GameResult<Page<MainerInfo>>;
        MAINER_INFO: query("mainer_info") => (Principal,), GameResult<MainerInfo>;
        COUNTS: query("counts") => (), GameCounts;
        HEALTH: query("health") => (), bool;
        WHOAMI: query("whoami") => (), Principal;
        // The game (see `crate::game_play`).
        ADD_TOPIC: update("add_topic") => (NewTopic,), GameResult<Topic>;
        UPDATE_TOPIC: idempotent_update("update_topic") => (TopicId, NewTopic), GameResult<Topic>;
        REMOVE_TOPIC: update("remove_topic") => (TopicId,), GameResult<()>;
        LIST_TOPICS: query("list_topics") => (PageRequest,), GameResult<Page<Topic>>;
        REGISTER_GAME_AGENT: idempotent_update("register_game_agent") => (Principal, GameAgentKind), GameResult<GameAgent>;
        UNREGISTER_GAME_AGENT: update("unregister_game_agent") => (Principal,), GameResult<()>;
        LIST_GAME_AGENTS: query("list_game_agents") => (PageRequest,), GameResult<Page<GameAgent>>;
        SET_GAME_SETTINGS: idempotent_update("set_game_settings") => (GameSettings,), GameResult<GameSettings>;
        GAME_SETTINGS: query("game_settings") => (), GameSettings;
        /// Called with the cycles attached.
        FUND_REWARD_POOL: update("fund_reward_pool") => (), GameResult<RewardPool>;
        REWARD_POOL: query("reward_pool") => (), GameResult<RewardPool>;
        SET_PAYOUT_TO: idempotent_update("set_payout_to") => (Principal, PayoutTo), GameResult<()>;
        LIST_PAYOUTS: query("list_payouts") => (PageRequest,), GameResult<Page<Payout>>;
        RUN_PAYOUTS: update("run_payouts") => (), GameResult<u64>;
        RESOLVE_PAYOUT: update("resolve_payout") => (PayoutId, bool), GameResult<Payout>;
        NEXT_TOPIC: update("next_topic") => (), GameResult<TopicTicket>;
        ADD_GENERATED_CHALLENGE: update("add_generated_challenge") => (GeneratedChallenge,), GameResult<Challenge>;
        CHALLENGE_ORIGIN: query("challenge_origin") => (ChallengeId,), GameResult<ChallengeOrigin>;
        /// The caller's live lease again, or a new one: safe to repeat.
        NEXT_TO_JUDGE: idempotent_update("next_to_judge") => (), GameResult<JudgeTask>;
        /// The same report again returns what the first did.
        SUBMIT_SCORE: idempotent_update("submit_score") => (ScoreReport,), GameResult<ScoreAccepted>;
        JUDGEMENTS_BY_CHALLENGE: query("judgements_by_challenge") => (ChallengeId, PageRequest), GameResult<Page<Judgement>>;
        CHALLENGE_RESULT: query("challenge_result") => (ChallengeId,), GameResult<ChallengeResult>;
        CHALLENGE_RANKING: query("challenge_ranking") => (ChallengeId, PageRequest), GameResult<Page<RankedAnswer>>;
        MAINER_RESULTS: query("mainer_results") => (Principal, PageRequest), GameResult<Page<RankedAnswer>>;
        MAINER_EARNINGS: query("mainer_earnings") => (Principal,), GameResult<Earnings>;
        OWNER_RESULTS: query("owner_results") => (Principal, PageRequest), GameResult<Page<RankedAnswer>>;
        OWNER_EARNINGS: query("owner_earnings") => (Principal,), GameResult<Earnings>;
        LEADERBOARD: query("leaderboard") => (LeaderboardRequest,), GameResult<Page<LeaderboardEntry>>;
        /// The creator reports a module it installs in a mAIner (idempotent).
        REPORT_MODULE: idempotent_update("report_module") => (ModuleReport,), GameResult<()>;
        FORGET_MODULE: idempotent_update("forget_module") => (Vec<u8>,), GameResult<()>;
        KNOWN_MODULES: query("known_modules") => (), GameResult<Vec<String>>;
    }
}

/// A mAIner controller canister (any role).
pub mod controller {
    use super::Method;
    use crate::controller::*;
    use crate::{MainerRole, Page, PageRequest, Principal};

    endpoints! {
        ADD_LLM: update("add_llm") => (AddLlmRequest,), ControllerResult<LlmStatus>;
        REMOVE_LLM: update("remove_llm") => (Principal,), ControllerResult<()>;
        SET_LLM_DRAINING: update("set_llm_draining") => (Principal, bool), ControllerResult<LlmStatus>;
        LIST_LLMS: query("list_llms") => (), ControllerResult<Vec<LlmStatus>>;
        CHECK_LLMS: update("check_llms") => (), ControllerResult<Vec<LlmCheck>>;
        ADD_SHARE_AGENT: update("add_share_agent") => (Principal,), ControllerResult<()>;
        REMOVE_SHARE_AGENT: update("remove_share_agent") => (Principal,), ControllerResult<()>;
        LIST_SHARE_AGENTS: query("list_share_agents") => (PageRequest,), ControllerResult<Page<Principal>>;
        ENQUEUE_CHALLENGE: update("enqueue_challenge") => (ServiceRequest,), ControllerResult<ServiceTicket>;
        DELIVER_ANSWER: update("deliver_answer") => (AnswerDelivery,), ControllerResult<()>;
        TRIGGER_PULL: update("trigger_pull") => (), ControllerResult<StepReport>;
        TRIGGER_FORWARD: update("trigger_forward") => (), ControllerResult<StepReport>;
        TRIGGER_PROCESS: update("trigger_process") => (), ControllerResult<StepReport>;
        TRIGGER_SUBMIT: update("trigger_submit") => (), ControllerResult<StepReport>;
        PAUSE: idempotent_update("pause") => (), ControllerResult<()>;
        RESUME: idempotent_update("resume") => (), ControllerResult<()>;
        SET_SETTINGS: idempotent_update("set_settings") => (ControllerSettings,), ControllerResult<ControllerSettings>;
        SET_BURN_RATE: idempotent_update("set_burn_rate") => (BurnRate,), ControllerResult<u64>;
        SET_CYCLES_FLOOR: idempotent_update("set_cycles_floor") => (u128,), ControllerResult<()>;
        CYCLES_REPORT: query("cycles_report") => (), ControllerResult<CyclesReport>;
        NOTE_TOP_UP: update("note_top_up") => (u128,), ControllerResult<()>;
        SET_LLM_FUNDING: idempotent_update("set_llm_funding") => (LlmFunding,), ControllerResult<()>;
        CONFIG: query("config") => (), ControllerResult<ControllerConfigView>;
        QUEUE: query("queue") => (PageRequest,), ControllerResult<Page<WorkItem>>;
        RECENT_WORK: query("recent_work") => (PageRequest,), ControllerResult<Page<WorkItem>>;
        COUNTERS: query("counters") => (), ControllerResult<Counters>;
        HEALTH: query("health") => (), HealthReport;
        READY: query("ready") => (), bool;
        ROLE: query("role") => (), MainerRole;
        AM_I_CONTROLLER: query("am_i_controller") => (), bool;
        WHOAMI: query("whoami") => (), Principal;
    }
}

/// The mAIner creator canister.
pub mod creator {
    use super::Method;
    use crate::creator::*;
    use crate::economy::*;
    use crate::{Page, PageRequest, Principal};

    endpoints! {
        START_UPLOAD: update("start_upload") => (StartUploadRequest,), CreatorResult<UploadStatus>;
        UPLOAD_CHUNK: idempotent_update("upload_chunk") => (UploadChunkRequest,), CreatorResult<UploadStatus>;
        UPLOAD_STATUS: query("upload_status") => (u64,), CreatorResult<UploadStatus>;
        FINISH_UPLOAD: idempotent_update("finish_upload") => (u64,), CreatorResult<ArtefactInfo>;
        CANCEL_UPLOAD: idempotent_update("cancel_upload") => (u64,), CreatorResult<()>;
        LIST_UPLOADS: query("list_uploads") => (PageRequest,), CreatorResult<Page<UploadStatus>>;
        LIST_ARTEFACTS: query("list_artefacts") => (Option<ArtefactKind>, PageRequest), CreatorResult<Page<ArtefactInfo>>;
        ARTEFACT_INFO: query("artefact_info") => (String,), CreatorResult<ArtefactInfo>;
        DELETE_ARTEFACT: idempotent_update("delete_artefact") => (String,), CreatorResult<()>;
        CREATE_MAINER: update("create_mainer") => (CreateMainerRequest,), CreatorResult<JobView>;
        JOB: query("job") => (u64,), CreatorResult<JobView>;
        LIST_JOBS: query("list_jobs") => (PageRequest,), CreatorResult<Page<JobView>>;
        RETRY_JOB: update("retry_job") => (u64,), CreatorResult<JobView>;
        REFUND_ORDER: update("refund_order") => (u64,), CreatorResult<OrderView>;
        SETTLE_REFUND: update("settle_refund") => (u64, bool), CreatorResult<OrderView>;
        RUN_JOBS_NOW: update("run_jobs_now") => (), CreatorResult<u32>;
        LIST_MAINERS: query("list_mainers") => (PageRequest,), CreatorResult<Page<MainerView>>;
        /// A controller this creator made reports its cycles (hourly).
        REPORT_CYCLES: idempotent_update("report_cycles") => (crate::game::MainerCyclesReport,), CreatorResult<()>;
        SET_GAME_STATE: idempotent_update("set_game_state") => (Principal,), CreatorResult<()>;
        GAME_STATE: query("game_state") => (), Principal;
        UPGRADE_CONTROLLERS: update("upgrade_controllers") => (UpgradeControllersRequest,), CreatorResult<FleetJobView>;
        UPGRADE_LLMS: update("upgrade_llms") => (UpgradeControllersRequest,), CreatorResult<FleetJobView>;
        REMOVE_LLM: update("remove_llm") => (Principal,), CreatorResult<FleetJobView>;
        FLEET_JOB: query("fleet_job") => (u64,), CreatorResult<FleetJobView>;
        SETTINGS: query("settings") => (), CreatorSettings;
        HEALTH: query("health") => (), bool;
        WHOAMI: query("whoami") => (), Principal;
        AM_I_CONTROLLER: query("am_i_controller") => (), bool;
        PRICE_OF: query("price_of") => (OrderKind,), CreatorResult<Quote>;
        ORDER_MAINER: update("order_mainer") => (OrderRequest,), CreatorResult<OrderView>;
        ORDER: query("order") => (u64,), CreatorResult<OrderView>;
        MY_ORDERS: query("my_orders") => (), Vec<OrderView>;
        TOP_UP: update("top_up") => (TopUpRequest,), CreatorResult<u128>;
        ECONOMY: query("economy") => (), EconomySettings;
        SET_ECONOMY: idempotent_update("set_economy") => (EconomySettings,), CreatorResult<()>;
        BOOKS: query("books") => (), CreatorResult<Books>;
        LLM_CYCLES: update("llm_cycles") => (Principal,), CreatorResult<u128>;
    }
}

/// DFINITY's cycles ledger (the methods the creator and the tests call).
pub mod cycles_ledger {
    use super::Method;
    use crate::cycles_ledger::*;
    use candid::Nat;

    endpoints! {
        BALANCE_OF: query("icrc1_balance_of") => (Account,), Nat;
        TRANSFER: update("icrc1_transfer") => (TransferArgs,), Result<Nat, TransferError>;
        APPROVE: update("icrc2_approve") => (ApproveArgs,), Result<Nat, ApproveError>;
        ALLOWANCE: query("icrc2_allowance") => (AllowanceArgs,), Allowance;
        TRANSFER_FROM: update("icrc2_transfer_from") => (TransferFromArgs,), Result<Nat, TransferFromError>;
        DEPOSIT: update("deposit") => (DepositArgs,), DepositResult;
        WITHDRAW: update("withdraw") => (WithdrawArgs,), Result<Nat, WithdrawError>;
    }
}

/// An LLM canister: the llama.cpp canister's interface, which our `llm`
/// canister and the test fixture speak too, plus `return_cycles` (ours only).
pub mod llm {
    use super::Method;
    use crate::Principal;
    use crate::llama_cpp::*;

    /// The three calls of a generation (and `load_model`): one shape.
    pub type ChatMethod = Method<(InputRecord,), OutputRecordResult>;

    endpoints! {
        HEALTH: query(methods::HEALTH) => (), StatusCodeRecordResult;
        READY: query(methods::READY) => (), StatusCodeRecordResult;
        NEW_CHAT: update(methods::NEW_CHAT) => (InputRecord,), OutputRecordResult;
        RUN_UPDATE: update(methods::RUN_UPDATE) => (InputRecord,), OutputRecordResult;
        REMOVE_PROMPT_CACHE: update(methods::REMOVE_PROMPT_CACHE) => (InputRecord,), OutputRecordResult;
        LOAD_MODEL: update(methods::LOAD_MODEL) => (InputRecord,), OutputRecordResult;
        SET_MAX_TOKENS: idempotent_update(methods::SET_MAX_TOKENS) => (MaxTokensRecord,), StatusCodeRecordResult;
        GET_MAX_TOKENS: query(methods::GET_MAX_TOKENS) => (), MaxTokensRecord;
        FILE_UPLOAD_CHUNK: idempotent_update(methods::FILE_UPLOAD_CHUNK) => (FileUploadInputRecord,), FileUploadRecordResult;
        SET_ACCESS: idempotent_update(methods::SET_ACCESS) => (AccessInputRecord,), AccessRecordResult;
        GET_ACCESS: query("get_access") => (), AccessRecordResult;
        CHECK_ACCESS: query(methods::CHECK_ACCESS) => (), StatusCodeRecordResult;
        /// Ours only: lets a principal use the inference endpoints (controllers may call it).
        GRANT_ACCESS: idempotent_update("grant_access") => (Principal,), AccessListResult;
        /// Ours and the fixture's, not the llama.cpp canister's: sends the
        /// canister's cycles above a small reserve to the principal.
        RETURN_CYCLES: update("return_cycles") => (Principal,), Result<u128, ApiError>;
    }

    /// The descriptor of a chat-shaped method the LLM client asks for.
    pub fn chat_method(name: &str) -> Option<ChatMethod> {
        [NEW_CHAT, RUN_UPDATE, REMOVE_PROMPT_CACHE, LOAD_MODEL].into_iter().find(|m| m.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PageRequest;

    #[test]
    fn a_descriptor_encodes_its_arguments_and_decodes_its_reply() {
        let m = creator::LIST_UPLOADS;
        let bytes = m.encode((PageRequest::first(3),)).unwrap();
        assert_eq!(candid::decode_one::<PageRequest>(&bytes).unwrap(), PageRequest::first(3));
        let reply: crate::creator::CreatorResult<crate::Page<crate::creator::UploadStatus>> =
            Ok(crate::Page { items: vec![], total: 0, next_offset: None });
        assert_eq!(m.decode(&candid::encode_one(&reply).unwrap()).unwrap(), reply);
        assert!(m.decode(&candid::encode_one(7u32).unwrap()).is_err());
        assert!(m.is_query() && !creator::UPLOAD_CHUNK.is_query());
        assert_eq!(llm::chat_method("run_update").unwrap().name, "run_update");
        assert!(llm::chat_method("set_access").is_none());
    }

    /// Every descriptor names a method of its callee's `.did`, as a query
    /// exactly when the `.did` says so. (`files/llama_cpp.did` is the
    /// llama.cpp canister's; our `llm.did` has `return_cycles` besides.)
    #[test]
    fn descriptors_match_the_did_files() {
        use candid_parser::IDLProg;
        use candid_parser::syntax::IDLType;
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let callees: [(&str, &[(&str, Mode)]); 5] = [
            ("canisters/game_state/game_state.did", game_state::ALL),
            ("canisters/mainer_controller/mainer_controller.did", controller::ALL),
            ("canisters/mainer_creator/mainer_creator.did", creator::ALL),
            ("canisters/llm/llm.did", llm::ALL),
            // DFINITY's, next to the project (see ../shared/peers/README.md).
            ("../shared/peers/cycles_ledger.did", cycles_ledger::ALL),
        ];
        for (path, all) in callees {
            let Ok(text) = std::fs::read_to_string(format!("{root}/{path}")) else {
                assert!(path.starts_with("../"), "{path} is missing");
                println!("SKIPPED: no {path}");
                continue;
            };
            let prog: IDLProg = text.parse().unwrap_or_else(|e| panic!("{path}: {e}"));
            let service = prog.actor.unwrap_or_else(|| panic!("{path} has no service")).typ;
            let service = match service {
                IDLType::ClassT(_, s) => *s,
                s => s,
            };
            let IDLType::ServT(methods) = service else { panic!("{path}: not a service") };
            for (name, mode) in all {
                let m = methods.iter().find(|m| m.id == *name).unwrap_or_else(|| panic!("{path} has no {name}"));
                let IDLType::FuncT(f) = &m.typ else { panic!("{path}: {name} is not a function") };
                let query = f.modes.iter().any(|m| matches!(m, candid::types::FuncMode::Query));
                assert_eq!(query, *mode == Mode::Query, "{path}: {name} is called as {mode:?}");
            }
        }
    }
}
