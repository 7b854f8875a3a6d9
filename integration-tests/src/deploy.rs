//! Deploys the project's canisters into a [`TestEnv`] the way tests need them:
//! the game state, test LLMs with a model loaded, controllers in each role.

use std::time::Duration;

use candid::{CandidType, Principal};
use mainer_types::MainerRole;
use mainer_types::calls::{controller as controller_calls, game_state as game_calls, llm as llm_calls};
use mainer_types::controller::{AddLlmRequest, ControllerArgs, ControllerInit, ControllerSettings, PromptFormat};
use mainer_types::game::{
    Challenge, GameStateArgs, GameStateInit, GenerationSettings, NewChallenge, RegisterMainerRequest,
};
use mainer_types::llama_cpp::{
    FileUploadInputRecord, FileUploadRecordResult, InputRecord, MaxTokensRecord, OutputRecordResult,
    StatusCodeRecordResult,
};
use serde::Deserialize;

use crate::{TestEnv, TestEnvExt, user, wasm};

/// The admin of every deployed canister in tests.
pub fn admin() -> Principal {
    user(0)
}

/// The owner of the mAIners deployed in tests.
pub fn owner() -> Principal {
    user(5)
}

pub fn deploy_game_state(env: &dyn TestEnv) -> Principal {
    let id = env.create_canister(admin());
    let args = GameStateArgs::Init(GameStateInit { admins: vec![admin()], registrars: vec![], max_answer_bytes: None });
    env.install(admin(), id, &wasm("game_state"), candid::encode_one(args).unwrap()).expect("game_state installs");
    id
}

pub fn add_challenge(env: &dyn TestEnv, game: Principal, question: &str, max_tokens: u64) -> Challenge {
    let challenge = NewChallenge {
        question: question.to_string(),
        settings: GenerationSettings { max_tokens, ..Default::default() },
        max_submissions: None,
        deadline_ns: None,
    };
    env.call(admin(), game, &game_calls::ADD_CHALLENGE, (challenge,)).unwrap().expect("challenge added")
}

/// The fault switches of the test LLM fixture.
#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct Faults {
    pub trap_next_calls: u32,
    pub err_next_calls: u32,
    pub refuse_access: bool,
    pub fail_next_uploads: u32,
    pub corrupt_uploads: Option<bool>,
}

pub const TEST_MODEL_PATH: &str = "models/model.gguf";

/// A test LLM with a (tiny, fake) model uploaded and loaded.
pub fn deploy_test_llm(env: &dyn TestEnv, max_tokens_update: u64) -> Principal {
    let id = env.create_canister(admin());
    env.install(admin(), id, &wasm("test_llm"), candid::encode_args(()).unwrap()).expect("test_llm installs");
    let model = b"not really a model, but bytes to upload".to_vec();
    let chunk = FileUploadInputRecord {
        filename: TEST_MODEL_PATH.into(),
        chunksize: model.len() as u64,
        chunk: model,
        offset: 0,
    };
    let r: FileUploadRecordResult = env.call(admin(), id, &llm_calls::FILE_UPLOAD_CHUNK, (chunk,)).unwrap();
    assert!(matches!(r, FileUploadRecordResult::Ok(_)), "{r:?}");
    let load = InputRecord::new(["--model", TEST_MODEL_PATH]);
    let r: OutputRecordResult = env.call(admin(), id, &llm_calls::LOAD_MODEL, (load,)).unwrap();
    assert!(matches!(r, OutputRecordResult::Ok(_)), "{r:?}");
    let limits = MaxTokensRecord { max_tokens_update, max_tokens_query: 0 };
    let r: StatusCodeRecordResult = env.call(admin(), id, &llm_calls::SET_MAX_TOKENS, (limits,)).unwrap();
    assert!(matches!(r, StatusCodeRecordResult::Ok(_)), "{r:?}");
    id
}

pub fn set_faults(env: &dyn TestEnv, llm: Principal, faults: Faults) {
    set_faults_as(env, admin(), llm, faults);
}

/// [`set_faults`] sent by `controller` (the creator, for the LLMs it made).
pub fn set_faults_as(env: &dyn TestEnv, controller: Principal, llm: Principal, faults: Faults) {
    let _: () = env.update_one(controller, llm, "fixture_set_faults", faults).unwrap();
}

/// Settings that make tests quick: short intervals, plain prompts.
pub fn test_settings() -> ControllerSettings {
    ControllerSettings {
        pull_interval_seconds: 10,
        process_interval_seconds: 2,
        retry_base_seconds: 4,
        retry_max_seconds: 30,
        llm_rest_seconds: 20,
        in_flight_timeout_seconds: 300,
        prompt_format: PromptFormat::Plain,
        ..ControllerSettings::default()
    }
}

/// Installs a controller of `role`, registers it with the game state and
/// (ShareAgent) with its ShareService.
pub fn deploy_controller(
    env: &dyn TestEnv,
    role: MainerRole,
    game: Principal,
    share_service: Option<Principal>,
) -> Principal {
    let id = env.create_canister(admin());
    let init = ControllerInit {
        role,
        game_state: game,
        creator: admin(),
        owner: owner(),
        share_service,
        settings: Some(test_settings()),
    };
    env.install(admin(), id, &wasm("mainer_controller"), candid::encode_one(ControllerArgs::Init(init)).unwrap())
        .expect("mainer_controller installs");
    let reg = RegisterMainerRequest { mainer: id, role, owner: owner() };
    env.call(admin(), game, &game_calls::REGISTER_MAINER, (reg,)).unwrap().expect("registered");
    if let Some(service) = share_service {
        env.call(admin(), service, &controller_calls::ADD_SHARE_AGENT, (id,)).unwrap().expect("agent added");
    }
    id
}

pub fn add_llm(env: &dyn TestEnv, controller: Principal, llm: Principal) {
    let req = AddLlmRequest { canister: llm, model_sha256: Some("ab".repeat(32)) };
    env.call(admin(), controller, &controller_calls::ADD_LLM, (req,)).unwrap().expect("LLM added");
}

/// Lets `seconds` of simulated time pass in one-second steps, running each
/// step's work to completion (PocketIC: a fixed number of rounds).
pub fn run_for(env: &dyn TestEnv, seconds: u64) {
    for _ in 0..seconds {
        env.advance_time(Duration::from_secs(1));
        settle(env);
    }
}

/// Runs queued work to completion without moving the clock much.
pub fn settle(env: &dyn TestEnv) {
    match env.simulator() {
        Some(mut sim) => {
            sim.run_until_idle(10_000);
        }
        None => {
            for _ in 0..30 {
                env.tick();
            }
        }
    }
}

/// Our `llm` canister with `gguf` uploaded (in 2,000,000-byte chunks, as the
/// creator sends them) and loaded from `TEST_MODEL_PATH`, and
/// `max_tokens_update` set. Access stays at its default (controllers only):
/// grant callers with `grant_access`.
pub fn deploy_llm_with_model(env: &dyn TestEnv, gguf: &[u8], max_tokens_update: u64) -> Principal {
    deploy_llm_wasm_with_model(env, &wasm("llm"), gguf, max_tokens_update)
}

/// [`deploy_llm_with_model`] for any wasm speaking the llama.cpp canister's
/// interface (ours, or the llama.cpp canister from [`peer_llama_cpp_wasm`]).
pub fn deploy_llm_wasm_with_model(
    env: &dyn TestEnv,
    llm_wasm: &[u8],
    gguf: &[u8],
    max_tokens_update: u64,
) -> Principal {
    const CHUNK: usize = 2_000_000;
    let id = env.create_canister(admin());
    env.install(admin(), id, llm_wasm, candid::encode_args(()).unwrap()).expect("the LLM wasm installs");
    for (i, part) in gguf.chunks(CHUNK).enumerate() {
        let chunk = FileUploadInputRecord {
            filename: TEST_MODEL_PATH.into(),
            chunk: part.to_vec(),
            chunksize: part.len() as u64,
            offset: (i * CHUNK) as u64,
        };
        let r: FileUploadRecordResult = env.call(admin(), id, &llm_calls::FILE_UPLOAD_CHUNK, (chunk,)).unwrap();
        assert!(matches!(r, FileUploadRecordResult::Ok(_)), "chunk {i}: {r:?}");
    }
    let load = InputRecord::new(["--model", TEST_MODEL_PATH]);
    let r: OutputRecordResult = env.call(admin(), id, &llm_calls::LOAD_MODEL, (load,)).unwrap();
    assert!(matches!(r, OutputRecordResult::Ok(_)), "{r:?}");
    let limits = MaxTokensRecord { max_tokens_update, max_tokens_query: 0 };
    let r: StatusCodeRecordResult = env.call(admin(), id, &llm_calls::SET_MAX_TOKENS, (limits,)).unwrap();
    assert!(matches!(r, StatusCodeRecordResult::Ok(_)), "{r:?}");
    id
}

/// Where the llama.cpp canister v0.7.3 lives, next to the project (see `../shared/peers/README.md`).
pub fn peer_llama_cpp_path() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/llama_cpp.wasm")
}

/// The llama.cpp canister's wasm, or why a test cannot use it (to print when skipping).
pub fn peer_llama_cpp_wasm() -> Result<Vec<u8>, String> {
    let path = peer_llama_cpp_path();
    std::fs::read(&path).map_err(|e| format!("SKIPPED: no llama.cpp canister wasm at {} ({e})", path.display()))
}

/// The llama.cpp canister's wasm if this environment can run it, or why not
/// (to print when skipping): the file may be missing, or the simulator may
/// lack what its start function needs (stable memory while `_initialize`
/// runs, issue 9 item 1).
pub fn runnable_llama_cpp_wasm(env: &dyn TestEnv) -> Result<Vec<u8>, String> {
    let bytes = peer_llama_cpp_wasm()?;
    let probe = env.create_canister(admin());
    match env.install(admin(), probe, &bytes, candid::encode_args(()).unwrap()) {
        Ok(()) => Ok(bytes),
        Err(e) => Err(format!(
            "SKIPPED: the {} cannot install the llama.cpp canister (its start function uses stable memory, \
             which the simulator does not give it yet): {}",
            env.backend(),
            e.message
        )),
    }
}
