//! `canister_inspect_message` on every canister: a stranger's update (or
//! an oversize one) is refused before it is inducted, so it costs the
//! canister nothing, while the callers each endpoint allows still get in.

use candid::{Encode, Principal};
use integration_tests::deploy::*;
use integration_tests::{TestEnv, TestEnvExt, new_env, user};
use mainer_types::MainerRole;
use mainer_types::controller::{ControllerResult, ServiceRequest};
use mainer_types::game::{ClaimedEvidence, GameResult, MainerInfo, RegisterMainerRequest, SubmitRequest};

const TWO_MB: usize = 1_900_000;

/// Sends `arg` to `method` from `sender` and asserts it was refused at
/// inspection and that the canister's cycle balance did not move.
fn refused_for_free(env: &dyn TestEnv, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) {
    let before = env.cycle_balance(canister);
    let err = env.update(sender, canister, method, arg).expect_err(method);
    assert!(
        err.message.contains("inspect_message") || err.error_code == Some("IC0406"),
        "{method}: refused at inspection, not later: {err:?}"
    );
    assert_eq!(env.cycle_balance(canister), before, "{method}: the canister paid for a refused message");
}

fn big_submit() -> Vec<u8> {
    let req = SubmitRequest {
        challenge_id: 1,
        answer: "x".repeat(TWO_MB),
        evidence: ClaimedEvidence {
            prompt_sha256: "0".repeat(64),
            llm_canister: user(99),
            model_sha256: None,
            llm_calls: 1,
            prompt_tokens: None,
            generated_tokens: None,
            cycles_spent: None,
        },
    };
    Encode!(&req).unwrap()
}

#[test]
fn the_game_state_refuses_strangers_and_oversize_updates_for_free() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let c = add_challenge(&*env, game, "q", 4);
    let stranger = user(66);
    refused_for_free(&*env, stranger, game, "submit", big_submit());
    refused_for_free(&*env, stranger, game, "get_challenge", Encode!().unwrap());
    refused_for_free(&*env, stranger, game, "add_challenge", Encode!(&"x".repeat(TWO_MB)).unwrap());
    refused_for_free(&*env, stranger, game, "counts", Encode!().unwrap());
    // A registered mAIner gets in, but not with an answer larger than any it may submit.
    let mainer = user(67);
    let reg = RegisterMainerRequest { mainer, role: MainerRole::Own, owner: owner() };
    env.update_one::<_, GameResult<MainerInfo>>(admin(), game, "register_mainer", reg).unwrap().unwrap();
    refused_for_free(&*env, mainer, game, "submit", big_submit());
    let taken: GameResult<mainer_types::game::Challenge> = env.update_one(mainer, game, "get_challenge", ()).unwrap();
    assert_eq!(taken.unwrap().id, c.id);
    // Queries stay open to anyone.
    let _: mainer_types::game::GameCounts = env.query_one(stranger, game, "counts", ()).unwrap();
}

#[test]
fn a_controller_refuses_strangers_and_oversize_updates_for_free() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let service = deploy_controller(&*env, MainerRole::ShareService, game, None);
    let agent = deploy_controller(&*env, MainerRole::ShareAgent, game, Some(service));
    let stranger = user(66);
    let c = add_challenge(&*env, game, "q", 4);
    let big = mainer_types::game::Challenge { question: "x".repeat(TWO_MB), ..c.clone() };
    refused_for_free(
        &*env,
        stranger,
        service,
        "enqueue_challenge",
        Encode!(&ServiceRequest { challenge: (&big).into() }).unwrap(),
    );
    refused_for_free(&*env, stranger, service, "pause", Encode!().unwrap());
    refused_for_free(&*env, stranger, service, "trigger_process", Encode!().unwrap());
    refused_for_free(&*env, stranger, agent, "deliver_answer", Encode!(&"x".repeat(TWO_MB)).unwrap());
    refused_for_free(&*env, stranger, service, "health", Encode!().unwrap());
    // Admins and the owner still get in.
    env.update_one::<_, ControllerResult<()>>(admin(), service, "pause", ()).unwrap().unwrap();
    env.update_one::<_, ControllerResult<()>>(owner(), service, "resume", ()).unwrap().unwrap();
}

#[test]
fn the_creator_refuses_strangers_and_oversize_updates_for_free() {
    use integration_tests::factory::{deploy_factory, mainer_request};
    use mainer_types::creator::{ArtefactKind, CreatorResult, StartUploadRequest, UploadChunkRequest, UploadStatus};
    let env = new_env();
    let f = deploy_factory(&*env, None);
    let stranger = user(66);
    let chunk = |bytes: usize| Encode!(&UploadChunkRequest { upload_id: 0, offset: 0, bytes: vec![7; bytes] }).unwrap();
    refused_for_free(&*env, stranger, f.creator, "upload_chunk", chunk(TWO_MB));
    refused_for_free(
        &*env,
        stranger,
        f.creator,
        "create_mainer",
        Encode!(&mainer_request(MainerRole::Own, 1, None, 4)).unwrap(),
    );
    refused_for_free(&*env, stranger, f.creator, "run_jobs_now", Encode!().unwrap());
    refused_for_free(&*env, stranger, f.creator, "set_game_state", Encode!(&stranger).unwrap());
    refused_for_free(
        &*env,
        stranger,
        f.creator,
        "list_jobs",
        Encode!(&mainer_types::PageRequest { offset: 0, limit: 10 }).unwrap(),
    );
    // An admin gets in, but not with a chunk larger than the store ever takes.
    let start =
        StartUploadRequest { kind: ArtefactKind::Model, name: "m".into(), total_size: 10, expected_sha256: None };
    let status: CreatorResult<UploadStatus> = env.update_one(admin(), f.creator, "start_upload", start).unwrap();
    assert!(status.is_ok(), "{status:?}");
    refused_for_free(&*env, admin(), f.creator, "upload_chunk", chunk(2_050_000));
}

#[test]
fn our_llm_refuses_strangers_and_oversize_updates_for_free() {
    use mainer_types::llama_cpp::{FileUploadInputRecord, InputRecord};
    let env = new_env();
    let llm = env.create_canister(admin());
    env.install(admin(), llm, &integration_tests::wasm("llm"), Encode!().unwrap()).expect("llm installs");
    let stranger = user(66);
    let upload = |bytes: usize| {
        Encode!(&FileUploadInputRecord {
            filename: "m.gguf".into(),
            chunk: vec![1; bytes],
            chunksize: bytes as u64,
            offset: 0
        })
        .unwrap()
    };
    let prompt = |text: String| Encode!(&InputRecord::new(["-p".to_string(), text])).unwrap();
    refused_for_free(&*env, stranger, llm, "file_upload_chunk", upload(TWO_MB));
    refused_for_free(&*env, stranger, llm, "run_update", prompt("Once".into()));
    refused_for_free(&*env, stranger, llm, "new_chat", prompt("Once".into()));
    refused_for_free(&*env, stranger, llm, "load_model", prompt("x".into()));
    refused_for_free(&*env, stranger, llm, "return_cycles", Encode!(&stranger).unwrap());
    refused_for_free(&*env, stranger, llm, "grant_access", Encode!(&stranger).unwrap());
    // A granted caller may infer (and is then refused by the endpoint, no model
    // being loaded), not upload; nobody sends a prompt the context can never hold.
    let granted = user(67);
    /// `grant_access`'s reply (our `llm`'s extension of the llama.cpp interface).
    #[derive(candid::CandidType, serde::Deserialize, Debug)]
    enum Granted {
        Ok(Vec<Principal>),
        Err(candid::Reserved),
    }
    let r: Granted = env.update_one(admin(), llm, "grant_access", granted).unwrap();
    assert!(matches!(&r, Granted::Ok(list) if list.contains(&granted)), "{r:?}");
    refused_for_free(&*env, granted, llm, "file_upload_chunk", upload(100));
    refused_for_free(&*env, granted, llm, "run_update", prompt("x".repeat(TWO_MB)));
    let through: mainer_types::llama_cpp::OutputRecordResult =
        env.update_one(granted, llm, "new_chat", InputRecord::new(["--prompt-cache", "p.cache"])).unwrap();
    assert!(matches!(through, mainer_types::llama_cpp::OutputRecordResult::Err(_)), "no model loaded: {through:?}");
    // Controllers upload.
    let up: mainer_types::llama_cpp::FileUploadRecordResult = env
        .update_one(
            admin(),
            llm,
            "file_upload_chunk",
            FileUploadInputRecord { filename: "m.gguf".into(), chunk: vec![1; 100], chunksize: 100, offset: 0 },
        )
        .unwrap();
    assert!(matches!(up, mainer_types::llama_cpp::FileUploadRecordResult::Ok(_)), "{up:?}");
}
