//! `mainer upload` on the simulator: resuming, skipping, hash checks, retries.

mod common;

use common::*;
use integration_tests::SimEnv;
use integration_tests::TestEnvExt;
use integration_tests::deploy::admin;
use integration_tests::factory::deploy_factory;
use mainer_cli::commands::upload::sha256_hex;
use mainer_types::PageRequest;
use mainer_types::calls::creator as creator_calls;
use mainer_types::creator::{ArtefactInfo, CreatorResult, UploadStatus};

const SIZE: usize = 1_050_000;

fn uploads(env: &SimEnv, f: &integration_tests::factory::Factory) -> Vec<UploadStatus> {
    env.call(admin(), f.creator, &creator_calls::LIST_UPLOADS, (PageRequest::first(50),)).unwrap().unwrap().items
}

fn stored(env: &SimEnv, f: &integration_tests::factory::Factory, sha: &str) -> CreatorResult<ArtefactInfo> {
    env.call(admin(), f.creator, &creator_calls::ARTEFACT_INFO, (sha.to_string(),)).unwrap()
}

#[test]
fn an_interrupted_upload_resumes_at_the_right_offset() {
    let env = SimEnv::new();
    let f = deploy_factory(&env, None);
    let data = bytes(SIZE, 1);
    let sha = sha256_hex(&data);
    let file = temp_file("model.gguf", &data);
    let path = file.to_str().unwrap();
    let args = ["--retries", "2", "upload", "--kind", "model", path, "--chunk-size", "100000"];

    // The connection dies after 5 of the 11 chunks.
    let mut crashing = Faulty::new(SimClient::admin(&env));
    crashing.crash_after_chunks = Some(5);
    let run = mainer(&crashing, &f, &args);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.err.contains("stopped at byte 500000 of 1050000"), "{}", run.err);
    assert!(run.err.contains("run the same command again to resume"), "{}", run.err);
    let open = uploads(&env, &f);
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].received, open[0].expected_sha256.as_deref()), (500_000, Some(sha.as_str())));

    // Run again: it finds the upload, resumes at 500000 and sends only the rest.
    let client = Faulty::new(SimClient::admin(&env));
    let run = mainer(&client, &f, &args);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.err.contains(&format!("resuming upload {} at byte 500000 of 1050000", open[0].upload_id)),
        "{}",
        run.err
    );
    assert_eq!(client.bytes_sent.get(), 550_000);
    assert_eq!(client.count(creator_calls::START_UPLOAD.name), 0);
    assert!(
        run.out.contains(&format!("resumed Model `model.gguf` (1.05 MB): SHA-256 {sha} verified on-chain")),
        "{}",
        run.out
    );
    assert_eq!(stored(&env, &f, &sha).unwrap().size, SIZE as u64);
    assert!(uploads(&env, &f).is_empty());
}

#[test]
fn a_file_already_stored_is_skipped() {
    let env = SimEnv::new();
    let f = deploy_factory(&env, None);
    let file = temp_file("controller.wasm", &bytes(300_000, 2));
    let path = file.to_str().unwrap();
    let first = mainer(&SimClient::admin(&env), &f, &["upload", "--kind", "controller-wasm", path]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.out.starts_with("uploaded ControllerWasm `controller.wasm`"), "{}", first.out);

    let client = Faulty::new(SimClient::admin(&env));
    let again = mainer(&client, &f, &["--json", "upload", "--kind", "controller-wasm", path]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(client.count(creator_calls::START_UPLOAD.name) + client.count(creator_calls::UPLOAD_CHUNK.name), 0);
    let json: serde_json::Value = serde_json::from_str(&again.out).unwrap();
    assert_eq!(json["status"], "already_stored");
    assert_eq!(json["artefact"]["kind"], "ControllerWasm");
    assert_eq!(json["artefact"]["sha256"], sha256_hex(&bytes(300_000, 2)));
}

#[test]
fn a_hash_mismatch_is_refused_with_exit_code_4() {
    let env = SimEnv::new();
    let f = deploy_factory(&env, None);
    let data = bytes(400_000, 3);
    let sha = sha256_hex(&data);
    let file = temp_file("llm.wasm", &data);
    let path = file.to_str().unwrap();

    // A published hash that the file does not have: refused before any call.
    let client = Faulty::new(SimClient::admin(&env));
    let wrong = "ab".repeat(32);
    let run = mainer(&client, &f, &["upload", "--kind", "llm-wasm", path, "--sha256", &wrong]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.err.contains(&format!("has SHA-256 {sha}, not the expected {wrong}")), "{}", run.err);
    assert!(client.calls.borrow().is_empty());

    // A chunk damaged on the way: the creator's hash differs, the upload is cancelled.
    let mut damaging = Faulty::new(SimClient::admin(&env));
    damaging.corrupt_chunk = Some(2);
    let run =
        mainer(&damaging, &f, &["upload", "--kind", "llm-wasm", path, "--chunk-size", "150000", "--sha256", &sha]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.err.contains("bytes were damaged on the way; the upload was cancelled"), "{}", run.err);
    assert!(uploads(&env, &f).is_empty());
    assert!(stored(&env, &f, &sha).is_err());

    // The next run uploads it cleanly.
    let run = mainer(&SimClient::admin(&env), &f, &["upload", "--kind", "llm-wasm", path]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(stored(&env, &f, &sha).unwrap().name, "llm.wasm");
}

#[test]
fn lost_answers_are_retried_without_harm() {
    let env = SimEnv::new();
    let f = deploy_factory(&env, None);
    let data = bytes(500_000, 4);
    let sha = sha256_hex(&data);
    let file = temp_file("lost.gguf", &data);
    let mut client = Faulty::new(SimClient::admin(&env));
    client.lose_answer_of_chunk = Some(2);
    client.lose_finish_answer = true;
    let args = ["upload", "--kind", "model", file.to_str().unwrap(), "--chunk-size", "100000", "--name", "tiny model"];
    let run = mainer(&client, &f, &args);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.err.contains("upload_chunk: no answer: injected: the answer was lost; trying again in 1s"),
        "{}",
        run.err
    );
    assert_eq!(client.count(creator_calls::UPLOAD_CHUNK.name), 6);
    assert_eq!(client.count(creator_calls::FINISH_UPLOAD.name), 2);
    assert_eq!(stored(&env, &f, &sha).unwrap().name, "tiny model");
}

#[test]
fn strangers_and_wrong_canisters_get_clear_errors() {
    let env = SimEnv::new();
    let f = deploy_factory(&env, None);
    let file = temp_file("x.wasm", &bytes(1000, 5));
    let path = file.to_str().unwrap();

    let stranger = SimClient { env: &env, sender: integration_tests::user(9) };
    let run = mainer(&stranger, &f, &["upload", "--kind", "controller-wasm", path]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.err.contains("unauthorized: only an admin of the creator may call this"), "{}", run.err);
    assert!(run.err.contains(&format!("you are calling as {}", integration_tests::user(9))), "{}", run.err);

    let anonymous = SimClient { env: &env, sender: candid::Principal::anonymous() };
    let run = mainer(&anonymous, &f, &["artefacts"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.err.contains("anonymous principal: pass --identity NAME or --pem FILE"), "{}", run.err);

    let run = mainer(&SimClient::admin(&env), &f, &["--json", "whoami"]);
    assert_eq!(run.code, 0, "{run:?}");
    let me: serde_json::Value = serde_json::from_str(&run.out).unwrap();
    assert_eq!(me["principal"], integration_tests::deploy::admin().to_text());
    assert_eq!(me["controller_of_creator"], true);

    // A canister id that does not exist.
    let missing = candid::Principal::from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 1, 1, 1]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = mainer_cli::run(
        ["mainer", "--project", "/nonexistent", "--creator", &missing.to_text(), "artefacts"],
        &SimClient::admin(&env),
        &mut out,
        &mut err,
    );
    let err = String::from_utf8(err).unwrap();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("does not exist on this network"), "{err}");

    // The game state is not a creator.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = mainer_cli::run(
        ["mainer", "--project", "/nonexistent", "--creator", &f.game.to_text(), "artefacts"],
        &SimClient::admin(&env),
        &mut out,
        &mut err,
    );
    let err = String::from_utf8(err).unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("has no method `list_artefacts`"), "{err}");

    // Usage: no creator id, a bad principal, a missing file.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = mainer_cli::run(
        ["mainer", "--project", "/nonexistent", "uploads"],
        &SimClient::admin(&env),
        &mut out,
        &mut err,
    );
    assert_eq!(code, 2);
    assert!(String::from_utf8(err).unwrap().contains("no mainer_creator canister id"));
    let run = mainer(&SimClient::admin(&env), &f, &["submissions", "--mainer", "not-a-principal"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = mainer(&SimClient::admin(&env), &f, &["upload", "--kind", "model", "/nonexistent/file"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = mainer(&SimClient::admin(&env), &f, &["upload", "--kind", "weights", path]);
    assert_eq!(run.code, 2, "{run:?}");
}
