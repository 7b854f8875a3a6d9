//! The whole factory in a [`TestEnv`]: the game state and the creator wired
//! together, artefacts uploaded, mAIners ordered and followed. Used by the
//! factory tests and by the offline demo.

use candid::{Encode, Principal};
use mainer_types::calls::{creator as creator_calls, game_state as game_calls};
use mainer_types::creator::*;
use mainer_types::game::{GameStateArgs, GameStateInit, Submission};
use mainer_types::{MainerRole, PageRequest};

use crate::deploy::{admin, owner, run_for, test_settings};
use crate::{TestEnv, TestEnvExt, wasm};

/// Cycles the creator starts with in tests and the demo.
pub const CREATOR_CYCLES: u128 = 1_000_000_000_000_000;

/// The tiny llama model shipped in `../shared/models`.
pub fn stories_model() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models/stories260Ktok512.gguf");
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

pub struct Factory {
    pub game: Principal,
    pub creator: Principal,
}

/// Installs the creator and a game state that lets it register mAIners.
pub fn deploy_factory(env: &dyn TestEnv, settings: Option<CreatorSettings>) -> Factory {
    let creator = env.create_canister_with(vec![admin()], CREATOR_CYCLES);
    let game = env.create_canister(admin());
    let args =
        GameStateArgs::Init(GameStateInit { admins: vec![admin()], registrars: vec![creator], max_answer_bytes: None });
    env.install(admin(), game, &wasm("game_state"), Encode!(&args).unwrap()).expect("game_state installs");
    let init = CreatorInit { admins: vec![admin()], game_state: game, allowed_creators: vec![], settings };
    env.install(admin(), creator, &wasm("mainer_creator"), Encode!(&CreatorArgs::Init(init)).unwrap())
        .expect("creator installs");
    Factory { game, creator }
}

/// Uploads `bytes` into the creator's store in 2,000,000-byte chunks.
pub fn upload_artefact(
    env: &dyn TestEnv,
    creator: Principal,
    kind: ArtefactKind,
    name: &str,
    bytes: &[u8],
) -> ArtefactInfo {
    let start = StartUploadRequest { kind, name: name.into(), total_size: bytes.len() as u64, expected_sha256: None };
    let status: UploadStatus =
        env.call(admin(), creator, &creator_calls::START_UPLOAD, (start,)).unwrap().expect("upload starts");
    for (i, chunk) in bytes.chunks(MAX_ARTEFACT_CHUNK_BYTES as usize).enumerate() {
        let req = UploadChunkRequest {
            upload_id: status.upload_id,
            offset: i as u64 * MAX_ARTEFACT_CHUNK_BYTES,
            bytes: chunk.to_vec(),
        };
        env.call(admin(), creator, &creator_calls::UPLOAD_CHUNK, (req,)).unwrap().expect("chunk accepted");
    }
    env.call(admin(), creator, &creator_calls::FINISH_UPLOAD, (status.upload_id,)).unwrap().expect("upload finishes")
}

/// A request for a mAIner with the test settings (plain prompts, short timers).
pub fn mainer_request(
    role: MainerRole,
    llm_count: u32,
    share_service: Option<Principal>,
    max_tokens_update: u64,
) -> CreateMainerRequest {
    CreateMainerRequest {
        role,
        owner: owner(),
        share_service,
        llm_count,
        controller_cycles: None,
        llm_cycles: None,
        controller_wasm: None,
        llm_wasm: None,
        model: None,
        controller_settings: Some(test_settings()),
        max_tokens_update: Some(max_tokens_update),
    }
}

pub fn create_mainer(env: &dyn TestEnv, creator: Principal, req: CreateMainerRequest) -> CreatorResult<JobView> {
    env.call(admin(), creator, &creator_calls::CREATE_MAINER, (req,)).unwrap()
}

pub fn job(env: &dyn TestEnv, creator: Principal, id: u64) -> JobView {
    env.call(admin(), creator, &creator_calls::JOB, (id,)).unwrap().expect("the job exists")
}

/// Runs the world until job `id` is no longer running; panics after `max_seconds`.
pub fn run_until_job_done(env: &dyn TestEnv, creator: Principal, id: u64, max_seconds: u64) -> JobView {
    for _ in 0..max_seconds {
        let j = job(env, creator, id);
        if j.status != JobStatus::Running {
            return j;
        }
        run_for(env, 1);
    }
    panic!("job {id} still running: {:?}", job(env, creator, id));
}

/// The controller canister a job made.
pub fn controller_of(j: &JobView) -> Principal {
    j.slots[0].canister.expect("the controller exists")
}

pub fn submissions_by_mainer(env: &dyn TestEnv, game: Principal, mainer: Principal) -> Vec<Submission> {
    env.call(admin(), game, &game_calls::SUBMISSIONS_BY_MAINER, (mainer, PageRequest::first(500)))
        .unwrap()
        .expect("admins may list submissions")
        .items
}
