//! The `test_llm` fixture: the llama.cpp interface as the mAIner creator and
//! controller drive it, its fault switches, access levels and upgrades.
//! Runs on PocketIC too when `POCKET_IC_BIN` is set.

use candid::{CandidType, Deserialize, Principal};
use integration_tests::{RejectCode, TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::llama_cpp::{
    AccessInputRecord, AccessRecordResult, ApiError, FileUploadInputRecord, FileUploadRecord, FileUploadRecordResult,
    InputRecord, MaxTokensRecord, OutputRecordResult, RunOutputRecord, StatusCodeRecordResult, methods,
};
use sha2::{Digest, Sha256};

// The fixture-only types, as in `fixtures/test_llm/test_llm.did`.
#[derive(CandidType, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
struct FixtureFaults {
    trap_next_calls: u32,
    err_next_calls: u32,
    refuse_access: bool,
    fail_next_uploads: u32,
}

#[derive(CandidType, Deserialize, Default)]
struct FixtureConfigArg {
    answer_tokens: Option<u32>,
    word_prefix: Option<String>,
}

#[derive(CandidType, Deserialize, Debug)]
struct FixtureConfig {
    answer_tokens: u32,
    word_prefix: String,
}

#[derive(CandidType, Deserialize, Debug, Default, PartialEq, Eq)]
struct FixtureStats {
    new_chat_calls: u64,
    run_update_calls: u64,
    remove_prompt_cache_calls: u64,
    load_model_calls: u64,
    uploads: u64,
    injected_traps: u64,
    injected_errors: u64,
    injected_upload_failures: u64,
    refused_calls: u64,
    tokens_generated: u64,
    open_chats: u64,
}

const MODEL: &str = "models/model.gguf";

fn admin() -> Principal {
    user(0)
}

fn client() -> Principal {
    user(1)
}

fn install(env: &dyn TestEnv) -> Principal {
    let llm = env.create_canister(admin());
    env.install(admin(), llm, &wasm("test_llm"), candid::encode_args(()).unwrap()).expect("test_llm installs");
    llm
}

/// Deterministic bytes standing in for a GGUF file.
fn model_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8).collect()
}

fn upload_chunk(env: &dyn TestEnv, llm: Principal, name: &str, chunk: &[u8], offset: u64) -> FileUploadRecordResult {
    let input =
        FileUploadInputRecord { filename: name.into(), chunk: chunk.to_vec(), chunksize: chunk.len() as u64, offset };
    env.update_one(admin(), llm, methods::FILE_UPLOAD_CHUNK, input).unwrap()
}

/// Uploads `bytes` in chunks of `chunk` bytes; returns the last record.
fn upload(env: &dyn TestEnv, llm: Principal, name: &str, bytes: &[u8], chunk: usize) -> FileUploadRecord {
    let mut last = None;
    for (i, part) in bytes.chunks(chunk).enumerate() {
        match upload_chunk(env, llm, name, part, (i * chunk) as u64) {
            FileUploadRecordResult::Ok(r) => last = Some(r),
            FileUploadRecordResult::Err(e) => panic!("chunk {i}: {e}"),
        }
    }
    last.expect("at least one chunk")
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn call(env: &dyn TestEnv, sender: Principal, llm: Principal, method: &str, args: &[&str]) -> OutputRecordResult {
    env.update_one(sender, llm, method, InputRecord::new(args.iter().copied())).unwrap()
}

fn ok(result: OutputRecordResult) -> RunOutputRecord {
    match result {
        OutputRecordResult::Ok(r) => r,
        OutputRecordResult::Err(r) => panic!("expected Ok, got Err {r:?}"),
    }
}

fn err(result: OutputRecordResult) -> RunOutputRecord {
    match result {
        OutputRecordResult::Err(r) => r,
        OutputRecordResult::Ok(r) => panic!("expected Err, got Ok {r:?}"),
    }
}

fn load_model(env: &dyn TestEnv, llm: Principal) -> OutputRecordResult {
    call(env, admin(), llm, methods::LOAD_MODEL, &["--model", MODEL])
}

fn set_max_tokens(env: &dyn TestEnv, llm: Principal, max_tokens_update: u64) {
    let record = MaxTokensRecord { max_tokens_update, max_tokens_query: 0 };
    let r: StatusCodeRecordResult = env.update_one(admin(), llm, methods::SET_MAX_TOKENS, record).unwrap();
    assert!(matches!(r, StatusCodeRecordResult::Ok(_)), "{r:?}");
}

fn configure(env: &dyn TestEnv, llm: Principal, arg: FixtureConfigArg) -> FixtureConfig {
    env.update_one(admin(), llm, "fixture_configure", arg).unwrap()
}

fn set_faults(env: &dyn TestEnv, llm: Principal, faults: FixtureFaults) {
    let () = env.update_one(admin(), llm, "fixture_set_faults", faults).unwrap();
}

fn stats(env: &dyn TestEnv, llm: Principal) -> FixtureStats {
    env.query_one(admin(), llm, "fixture_stats", ()).unwrap()
}

/// A fixture with a small model uploaded and loaded.
fn ready_llm(env: &dyn TestEnv) -> Principal {
    let llm = install(env);
    upload(env, llm, MODEL, &model_bytes(1000), 400);
    ok(load_model(env, llm));
    llm
}

/// How a generation went, as a client sees it.
#[derive(Debug, PartialEq, Eq)]
struct Generation {
    ingest_calls: u64,
    generate_calls: u64,
    answer: String,
}

/// The protocol, as the mAIner controller runs it: `new_chat`, `run_update`
/// with the full prompt and `-n 1` until `prompt_remaining` is empty,
/// `run_update` with an empty prompt and `-n M+1` (`M = max_tokens_update`,
/// no cap when 0) until `generated_eog`, `remove_prompt_cache`.
fn generate(env: &dyn TestEnv, llm: Principal, cache: &str, prompt: &str, extra: &[&str]) -> Generation {
    let max: MaxTokensRecord = env.query_one(client(), llm, methods::GET_MAX_TOKENS, ()).unwrap();
    let per_call = match max.max_tokens_update {
        0 => "-1".to_string(),
        m => (m + 1).to_string(),
    };
    let run = |p: &str, n: &str| -> RunOutputRecord {
        let mut args = vec!["--prompt-cache", cache, "--prompt-cache-all"];
        args.extend_from_slice(extra);
        args.extend(["-n", n, "-p", p]);
        ok(env.update_one(client(), llm, methods::RUN_UPDATE, InputRecord::new(args)).unwrap())
    };
    ok(call(env, client(), llm, methods::NEW_CHAT, &["--prompt-cache", cache]));
    let mut done = Generation { ingest_calls: 0, generate_calls: 0, answer: String::new() };
    loop {
        let r = run(prompt, "1");
        done.ingest_calls += 1;
        if r.prompt_remaining.is_empty() {
            break;
        }
        assert!(!r.generated_eog, "{r:?}");
    }
    let mut answer = String::new();
    loop {
        let r = run("", &per_call);
        done.generate_calls += 1;
        answer.push_str(&r.output);
        if r.generated_eog {
            assert_eq!(r.conversation, format!(" {prompt}{answer}"), "the cache is the prompt and the answer");
            break;
        }
        assert!(done.generate_calls < 100, "no end of generation");
    }
    done.answer = answer.trim_start().to_string();
    ok(call(env, client(), llm, methods::REMOVE_PROMPT_CACHE, &["--prompt-cache", cache]));
    done
}

#[test]
fn uploads_append_in_order_and_hash_the_whole_file() {
    let env = new_env();
    let llm = install(&*env);
    let bytes = model_bytes(2_500_000);
    // Every chunk's record hashes the whole file so far.
    let chunk = 1_000_000;
    for (i, part) in bytes.chunks(chunk).enumerate() {
        let end = i * chunk + part.len();
        match upload_chunk(&*env, llm, MODEL, part, (i * chunk) as u64) {
            FileUploadRecordResult::Ok(r) => {
                assert_eq!((r.filename.as_str(), r.filesize), (MODEL, end as u64));
                assert_eq!(r.filesha256, sha(&bytes[..end]));
            }
            FileUploadRecordResult::Err(e) => panic!("{e}"),
        }
    }
    // A gap or an overlap is refused and changes nothing.
    for offset in [2_500_001, 2_000_000] {
        match upload_chunk(&*env, llm, MODEL, b"xyz", offset) {
            FileUploadRecordResult::Err(ApiError::Other(m)) => assert!(m.contains(&format!("offset {offset}")), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    let chunksize_lies = FileUploadInputRecord { filename: MODEL.into(), chunk: vec![1; 10], chunksize: 11, offset: 0 };
    let r: FileUploadRecordResult = env.update_one(admin(), llm, methods::FILE_UPLOAD_CHUNK, chunksize_lies).unwrap();
    assert!(matches!(r, FileUploadRecordResult::Err(ApiError::Other(_))), "{r:?}");
    let info: Option<FileUploadRecord> = env.query_one(client(), llm, "fixture_file", MODEL.to_string()).unwrap();
    assert_eq!(info.map(|i| (i.filesize, i.filesha256)), Some((2_500_000, sha(&bytes))));

    // Offset 0 starts the file again.
    let again = upload(&*env, llm, MODEL, b"a new beginning", 5);
    assert_eq!((again.filesize, again.filesha256), (15, sha(b"a new beginning")));
    assert_eq!(stats(&*env, llm).uploads, 3 + 3);

    // Only controllers upload.
    let input = FileUploadInputRecord { filename: "x".into(), chunk: vec![1], chunksize: 1, offset: 0 };
    let r: FileUploadRecordResult = env.update_one(client(), llm, methods::FILE_UPLOAD_CHUNK, input).unwrap();
    assert_eq!(r, FileUploadRecordResult::Err(ApiError::StatusCode(401)));
}

#[test]
fn nothing_runs_before_the_uploaded_model_is_loaded() {
    let env = new_env();
    let llm = install(&*env);
    let health: StatusCodeRecordResult = env.query_one(client(), llm, methods::HEALTH, ()).unwrap();
    assert!(matches!(health, StatusCodeRecordResult::Ok(_)));
    let ready: StatusCodeRecordResult = env.query_one(client(), llm, methods::READY, ()).unwrap();
    assert_eq!(ready, StatusCodeRecordResult::Err(ApiError::Other("model not loaded".into())));
    for method in [methods::NEW_CHAT, methods::RUN_UPDATE] {
        let r = err(call(&*env, client(), llm, method, &["--prompt-cache", "c", "-p", "hello"]));
        assert_eq!((r.status_code, r.error.as_str()), (500, "model not loaded"));
    }
    assert_eq!(err(load_model(&*env, llm)).status_code, 404, "not uploaded yet");
    upload(&*env, llm, MODEL, &model_bytes(100), 64);
    assert_eq!(err(call(&*env, client(), llm, methods::LOAD_MODEL, &["--model", MODEL])).status_code, 401);
    assert_eq!(err(call(&*env, admin(), llm, methods::LOAD_MODEL, &[])).status_code, 400, "no --model");
    ok(load_model(&*env, llm));
    let ready: StatusCodeRecordResult = env.query_one(client(), llm, methods::READY, ()).unwrap();
    assert!(matches!(ready, StatusCodeRecordResult::Ok(_)), "{ready:?}");
}

#[test]
fn the_protocol_takes_a_predictable_number_of_calls() {
    let env = new_env();
    let llm = ready_llm(&*env);
    let prompt = "<|im_start|>user Tell me something about the Internet Computer in one line <|im_end|>";
    let words = prompt.split_whitespace().count() as u64; // 13

    // No limit: one call to ingest, one to generate the default 12 tokens.
    let g = generate(&*env, llm, "a1", prompt, &["--seed", "1"]);
    assert_eq!((g.ingest_calls, g.generate_calls), (1, 1));
    assert_eq!(g.answer.split_whitespace().count(), 12);

    for (max, answer) in [(3u64, 10u32), (4, 12), (5, 10), (13, 1), (1, 5)] {
        set_max_tokens(&*env, llm, max);
        let got: MaxTokensRecord = env.query_one(client(), llm, methods::GET_MAX_TOKENS, ()).unwrap();
        assert_eq!(got.max_tokens_update, max);
        configure(&*env, llm, FixtureConfigArg { answer_tokens: Some(answer), word_prefix: None });
        let before = stats(&*env, llm);
        let g = generate(&*env, llm, &format!("c-{max}"), prompt, &["--seed", "1"]);
        // The end-of-generation token is evaluated like the answer's words.
        let expected = (words.div_ceil(max), (answer as u64 + 1).div_ceil(max));
        assert_eq!((g.ingest_calls, g.generate_calls), expected, "max {max}, answer {answer}");
        assert_eq!(g.answer.split_whitespace().count(), answer as usize);
        let after = stats(&*env, llm);
        assert_eq!(after.run_update_calls - before.run_update_calls, expected.0 + expected.1);
        assert_eq!(after.new_chat_calls - before.new_chat_calls, 1);
        assert_eq!(after.open_chats, 0, "remove_prompt_cache dropped it");
    }

    // The same prompt and seed give the same answer, whatever the chunking;
    // another seed gives another; the prefix marks every word.
    set_max_tokens(&*env, llm, 4);
    configure(&*env, llm, FixtureConfigArg { answer_tokens: Some(12), word_prefix: None });
    let first = generate(&*env, llm, "s", prompt, &["--seed", "1"]).answer;
    assert_eq!(first, g.answer, "same prompt and seed as the unlimited run above");
    assert_ne!(generate(&*env, llm, "s", prompt, &["--seed", "2"]).answer, first);
    configure(&*env, llm, FixtureConfigArg { answer_tokens: None, word_prefix: Some("llm7-".into()) });
    let marked = generate(&*env, llm, "s", prompt, &["--seed", "1"]).answer;
    assert_eq!(marked.replace("llm7-", ""), first);
    assert!(marked.split(' ').all(|w| w.starts_with("llm7-")));
}

#[test]
fn conversations_are_kept_per_caller_and_prompt_cache() {
    let env = new_env();
    let llm = ready_llm(&*env);
    // -n 1: the one word sampled is shown, not kept, so caches hold prompts only.
    let run = |who: Principal, cache: &str, p: &str| {
        ok(call(&*env, who, llm, methods::RUN_UPDATE, &["--prompt-cache", cache, "-n", "1", "-p", p]))
    };
    run(client(), "a", "one two");
    run(client(), "b", "other chat");
    assert_eq!(run(user(2), "a", "mine").conversation, " mine");
    let r = run(client(), "a", "one two three");
    assert_eq!((r.conversation.as_str(), r.n_prompt_tokens_cached), (" one two three", Some(2)));
    ok(call(&*env, client(), llm, methods::NEW_CHAT, &["--prompt-cache", "a"]));
    let r = run(client(), "a", "one two three four");
    assert_eq!(r.n_prompt_tokens_cached, Some(3), "new_chat keeps the cache, as llama.cpp's does");
    assert_eq!(run(client(), "a", "fresh").conversation, " fresh", "another prompt replaces it");
    let alone = ok(call(&*env, client(), llm, methods::RUN_UPDATE, &["-n", "1", "-p", "one two three"]));
    assert_eq!(alone.n_prompt_tokens_cached, Some(0), "without --prompt-cache a call stands alone");
    assert_eq!(stats(&*env, llm).open_chats, 3);
    // -n caps the words sampled by a call; the one that uses it up is not kept.
    ok(call(&*env, client(), llm, methods::RUN_UPDATE, &["--prompt-cache", "n", "-n", "1", "-p", "tell me"]));
    let generate_n =
        |n: &str| ok(call(&*env, client(), llm, methods::RUN_UPDATE, &["--prompt-cache", "n", "-n", n, "-p", ""]));
    let first = generate_n("5");
    assert_eq!((first.output.split_whitespace().count(), first.n_tokens_generated), (5, Some(4)));
    let second = generate_n("5");
    assert_eq!(second.output.split_whitespace().next(), first.output.split_whitespace().last());
    ok(call(&*env, client(), llm, methods::REMOVE_PROMPT_CACHE, &["--prompt-cache", "never-existed"]));
    let whoami: String = env.query_one(client(), llm, "whoami", ()).unwrap();
    assert_eq!(whoami, client().to_text());
}

#[test]
fn fault_switches_trap_fail_refuse_and_count_down() {
    let env = new_env();
    let llm = ready_llm(&*env);
    let run = |p: &str| {
        env.update_one::<_, OutputRecordResult>(
            client(),
            llm,
            methods::RUN_UPDATE,
            InputRecord::new(["--prompt-cache", "f", "-n", "1", "-p", p]),
        )
    };
    ok(run("before faults").unwrap());

    set_faults(&*env, llm, FixtureFaults { trap_next_calls: 2, err_next_calls: 1, ..Default::default() });
    for _ in 0..2 {
        let reject = run("trapped").unwrap_err();
        assert_eq!(reject.code, RejectCode::CanisterError, "{reject:?}");
        assert!(reject.message.contains("injected trap"), "{}", reject.message);
    }
    let faults: FixtureFaults = env.query_one(client(), llm, "fixture_faults", ()).unwrap();
    assert_eq!(faults, FixtureFaults { err_next_calls: 1, ..Default::default() }, "the traps were consumed");
    let e = err(run("failed").unwrap());
    assert_eq!((e.status_code, e.error.as_str()), (500, "injected error"));
    let r = ok(run("before faults after").unwrap());
    assert_eq!(r.n_prompt_tokens_cached, Some(2), "trapped and failed calls changed no conversation");
    assert_eq!(r.conversation, " before faults after");
    let s = stats(&*env, llm);
    assert_eq!((s.run_update_calls, s.injected_traps, s.injected_errors), (5, 2, 1));

    // new_chat is affected as well.
    set_faults(&*env, llm, FixtureFaults { err_next_calls: 1, ..Default::default() });
    assert_eq!(err(call(&*env, client(), llm, methods::NEW_CHAT, &[])).error, "injected error");

    set_faults(&*env, llm, FixtureFaults { refuse_access: true, ..Default::default() });
    assert_eq!(err(run("refused").unwrap()).status_code, 401);
    assert_eq!(err(call(&*env, admin(), llm, methods::NEW_CHAT, &[])).status_code, 401, "even for a controller");
    let access: StatusCodeRecordResult = env.query_one(client(), llm, methods::CHECK_ACCESS, ()).unwrap();
    assert_eq!(access, StatusCodeRecordResult::Err(ApiError::StatusCode(401)));
    set_faults(&*env, llm, FixtureFaults::default());
    ok(run("allowed again").unwrap());

    set_faults(&*env, llm, FixtureFaults { fail_next_uploads: 2, ..Default::default() });
    for _ in 0..2 {
        let r = upload_chunk(&*env, llm, "other", b"data", 0);
        assert_eq!(r, FileUploadRecordResult::Err(ApiError::Other("injected upload failure".into())));
    }
    assert!(matches!(upload_chunk(&*env, llm, "other", b"data", 0), FileUploadRecordResult::Ok(_)));
    assert_eq!(stats(&*env, llm).injected_upload_failures, 2);

    // Only controllers set faults or configure.
    let reject = env.update_one::<_, ()>(client(), llm, "fixture_set_faults", FixtureFaults::default()).unwrap_err();
    assert!(reject.message.contains("only a controller"), "{}", reject.message);
    let reject = env
        .update_one::<_, FixtureConfig>(client(), llm, "fixture_configure", FixtureConfigArg::default())
        .unwrap_err();
    assert!(reject.message.contains("only a controller"), "{}", reject.message);
}

#[test]
fn access_level_zero_refuses_non_controllers() {
    let env = new_env();
    let llm = ready_llm(&*env);
    let check =
        |who: Principal| -> StatusCodeRecordResult { env.query_one(who, llm, methods::CHECK_ACCESS, ()).unwrap() };
    assert!(matches!(check(client()), StatusCodeRecordResult::Ok(_)), "level 1 by default");
    assert_eq!(check(Principal::anonymous()), StatusCodeRecordResult::Err(ApiError::StatusCode(401)));
    assert_eq!(err(call(&*env, Principal::anonymous(), llm, methods::RUN_UPDATE, &["-p", "hi"])).status_code, 401);

    let r: AccessRecordResult =
        env.update_one(client(), llm, methods::SET_ACCESS, AccessInputRecord { level: 0 }).unwrap();
    assert_eq!(r, AccessRecordResult::Err(ApiError::StatusCode(401)), "only controllers set the level");
    let r: AccessRecordResult =
        env.update_one(admin(), llm, methods::SET_ACCESS, AccessInputRecord { level: 0 }).unwrap();
    assert!(matches!(r, AccessRecordResult::Ok(ref a) if a.level == 0), "{r:?}");

    assert_eq!(check(client()), StatusCodeRecordResult::Err(ApiError::StatusCode(401)));
    assert!(matches!(check(admin()), StatusCodeRecordResult::Ok(_)));
    for method in [methods::NEW_CHAT, methods::RUN_UPDATE, methods::REMOVE_PROMPT_CACHE] {
        let r = err(call(&*env, client(), llm, method, &["--prompt-cache", "c", "-p", "hi"]));
        assert_eq!(r.status_code, 401, "{method}");
    }
    ok(call(&*env, admin(), llm, methods::RUN_UPDATE, &["--prompt-cache", "c", "-p", "hi"]));
    assert_eq!(stats(&*env, llm).refused_calls, 4);
}

#[test]
fn after_an_upgrade_the_model_must_be_loaded_again_but_the_file_survives() {
    let env = new_env();
    let llm = install(&*env);
    let bytes = model_bytes(300_000);
    upload(&*env, llm, MODEL, &bytes[..200_000], 100_000);
    ok(load_model(&*env, llm));
    set_max_tokens(&*env, llm, 3);
    let before = generate(&*env, llm, "u", "a question before the upgrade", &[]);

    env.upgrade(admin(), llm, &wasm("test_llm"), candid::encode_args(()).unwrap()).unwrap();

    let ready: StatusCodeRecordResult = env.query_one(client(), llm, methods::READY, ()).unwrap();
    assert_eq!(ready, StatusCodeRecordResult::Err(ApiError::Other("model not loaded".into())));
    let max: MaxTokensRecord = env.query_one(client(), llm, methods::GET_MAX_TOKENS, ()).unwrap();
    assert_eq!(max.max_tokens_update, 0, "max_tokens lived in the heap");
    assert_eq!(err(call(&*env, client(), llm, methods::RUN_UPDATE, &["-p", "hi"])).error, "model not loaded");

    // The file is still there: its hash is rebuilt from stable memory and the
    // upload continues where it stopped.
    let info: Option<FileUploadRecord> = env.query_one(client(), llm, "fixture_file", MODEL.to_string()).unwrap();
    assert_eq!(info.map(|i| (i.filesize, i.filesha256)), Some((200_000, sha(&bytes[..200_000]))));
    match upload_chunk(&*env, llm, MODEL, &bytes[200_000..], 200_000) {
        FileUploadRecordResult::Ok(r) => assert_eq!((r.filesize, r.filesha256), (300_000, sha(&bytes))),
        FileUploadRecordResult::Err(e) => panic!("{e}"),
    }
    ok(load_model(&*env, llm));
    set_max_tokens(&*env, llm, 3);
    let after = generate(&*env, llm, "u", "a question before the upgrade", &[]);
    assert_eq!(after, before, "same prompt, same answer, same number of calls");
}

/// Simulator only: what a model-sized upload costs. A 2,000,000-byte chunk
/// (the creator's chunk size) is appended with its hash state kept in the
/// heap; after an upgrade the first chunk rehashes the whole file once.
#[test]
fn large_chunks_stay_far_below_the_instruction_limit() {
    let env = new_env();
    let llm = install(&*env);
    let Some(_) = env.simulator() else { return };
    let chunk = model_bytes(2_000_000);
    let instructions = |env: &dyn TestEnv, offset: u64| -> u64 {
        let input =
            FileUploadInputRecord { filename: MODEL.into(), chunk: chunk.clone(), chunksize: 2_000_000, offset };
        let mut sim = env.simulator().unwrap();
        sim.clear_executions();
        let outcome =
            sim.update_call_traced(admin(), llm, methods::FILE_UPLOAD_CHUNK, candid::encode_one(input).unwrap());
        let reply: FileUploadRecordResult = candid::decode_one(&outcome.result.unwrap()).unwrap();
        assert!(matches!(reply, FileUploadRecordResult::Ok(ref r) if r.filesize == offset + 2_000_000), "{reply:?}");
        sim.executions().map(|e| e.instructions).sum()
    };
    let appends: Vec<u64> = (0..4).map(|i| instructions(&*env, i * 2_000_000)).collect();
    env.upgrade(admin(), llm, &wasm("test_llm"), candid::encode_args(()).unwrap()).unwrap();
    let rehash = instructions(&*env, 8_000_000);
    eprintln!("append 2 MB: {appends:?} instructions; after an upgrade, rehash 8 MB + append 2 MB: {rehash}");
    assert!(appends.iter().all(|&n| n < 1_000_000_000), "{appends:?}");
    // The rehash reads the whole file: linear in its size, so a 100 MiB
    // model is rehashed in about 13 times this.
    assert!(rehash < 5_000_000_000, "{rehash}");
}
