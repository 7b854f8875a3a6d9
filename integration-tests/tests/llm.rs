//! Our `llm` canister with the real stories260K model: the llama.cpp
//! protocol as clients drive it, its splits over calls, access control,
//! upgrades, and the mAIner controller answering a challenge through it.
//! Runs on PocketIC too when `POCKET_IC_BIN` is set.

use candid::{CandidType, Deserialize, Principal};
use integration_tests::deploy::{
    TEST_MODEL_PATH, add_challenge, add_llm, admin, deploy_controller, deploy_game_state, deploy_llm_with_model,
    run_for, settle,
};
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use llm_engine::{GgufFile, Model, Sampler, SamplerConfig, Session, Tokenizer};
use mainer_types::MainerRole;
use mainer_types::calls::llm as llm_calls;
use mainer_types::game::{GameResult, Submission};
use mainer_types::llama_cpp::{
    AccessInputRecord, AccessRecordResult, FileUploadInputRecord, FileUploadRecordResult, InputRecord, MaxTokensRecord,
    OutputRecordResult, RunOutputRecord, StatusCodeRecordResult, methods,
};
use mainer_types::{Page, PageRequest};
use sha2::{Digest, Sha256};

const JOE: &str = "Joe loves writing stories";

fn stories() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models/stories260Ktok512.gguf");
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

// The canister's own types, as much of them as the tests read.
#[derive(CandidType, Deserialize, Debug, PartialEq)]
enum AccessListResult {
    Ok(Vec<Principal>),
    Err(mainer_types::llama_cpp::ApiError),
}

#[derive(CandidType, Deserialize, Debug)]
struct LoadedModelInfo {
    weight_bytes: u64,
    file_bytes: u64,
    vocab_size: u64,
    session_capacity: u64,
    load_instructions: u64,
}

#[derive(CandidType, Deserialize, Debug)]
enum ModelState {
    NotLoaded,
    Reloading,
    ReloadFailed(String),
    Loaded(LoadedModelInfo),
}

#[derive(CandidType, Deserialize, Debug)]
struct MemoryStatus {
    heap_bytes: u64,
    stable_bytes: u64,
    model: ModelState,
    conversations: u64,
}

#[derive(CandidType)]
struct FileDetailsInputRecord {
    filename: String,
}

fn call(env: &dyn TestEnv, who: Principal, llm: Principal, method: &str, args: &[&str]) -> OutputRecordResult {
    env.update_one(who, llm, method, InputRecord::new(args.iter().copied())).unwrap()
}

fn ok(r: OutputRecordResult) -> RunOutputRecord {
    match r {
        OutputRecordResult::Ok(r) => r,
        OutputRecordResult::Err(r) => panic!("expected Ok, got Err {r:?}"),
    }
}

fn err(r: OutputRecordResult) -> RunOutputRecord {
    match r {
        OutputRecordResult::Err(r) => r,
        OutputRecordResult::Ok(r) => panic!("expected Err, got Ok {r:?}"),
    }
}

fn set_max_tokens(env: &dyn TestEnv, llm: Principal, max_tokens_update: u64) {
    let record = MaxTokensRecord { max_tokens_update, max_tokens_query: 0 };
    let r: StatusCodeRecordResult = env.update_one(admin(), llm, methods::SET_MAX_TOKENS, record).unwrap();
    assert!(matches!(r, StatusCodeRecordResult::Ok(_)), "{r:?}");
}

fn grant(env: &dyn TestEnv, llm: Principal, who: Principal) -> AccessListResult {
    env.update_one(admin(), llm, "grant_access", who).unwrap()
}

fn memory_status(env: &dyn TestEnv, llm: Principal) -> MemoryStatus {
    env.query_one(admin(), llm, "memory_status", ()).unwrap()
}

/// One answer, as a client of the llama.cpp canister gets it.
#[derive(Debug, Default)]
struct Answer {
    text: String,
    calls: usize,
    last: RunOutputRecord,
}

/// new_chat, run_update with the prompt and then with `prompt_remaining`
/// until it is empty, run_update with an empty prompt until
/// `generated_eog`, remove_prompt_cache: the mAIner controller's protocol.
fn generate(env: &dyn TestEnv, who: Principal, llm: Principal, cache: &str, prompt: &str, extra: &[&str]) -> Answer {
    ok(call(env, who, llm, methods::NEW_CHAT, &["--prompt-cache", cache]));
    let answer = continue_chat(env, who, llm, cache, prompt, extra);
    ok(call(env, who, llm, methods::REMOVE_PROMPT_CACHE, &["--prompt-cache", cache]));
    answer
}

fn continue_chat(
    env: &dyn TestEnv,
    who: Principal,
    llm: Principal,
    cache: &str,
    prompt: &str,
    extra: &[&str],
) -> Answer {
    let mut answer = Answer::default();
    let mut remaining = prompt.to_string();
    let mut ingesting = true;
    loop {
        let p = if ingesting { remaining.clone() } else { String::new() };
        let mut args = vec!["--prompt-cache", cache, "--prompt-cache-all", "-sp"];
        args.extend_from_slice(extra);
        args.extend(["-p", &p]);
        let r = ok(call(env, who, llm, methods::RUN_UPDATE, &args));
        answer.calls += 1;
        answer.text.push_str(&r.output);
        if ingesting && !r.prompt_remaining.is_empty() {
            assert!(r.prompt_remaining.len() < remaining.len(), "the prompt shrinks");
            remaining = r.prompt_remaining.clone();
        } else {
            ingesting = false;
        }
        let done = !ingesting && r.generated_eog;
        answer.last = r;
        if done {
            return answer;
        }
        assert!(answer.calls < 300, "never ends");
    }
}

/// The engine alone on the same file.
fn native_greedy(prompt: &str, n: usize) -> String {
    let bytes = stories();
    let file = GgufFile::parse(bytes.as_slice()).unwrap();
    let tokenizer = Tokenizer::from_gguf(&file).unwrap();
    let model = Model::from_file_bytes(&file, bytes).unwrap();
    let mut session = Session::new(&model, model.config().context_length).unwrap();
    session.feed(&model, &tokenizer.encode(prompt, true, true)).unwrap();
    let mut sampler = Sampler::new(SamplerConfig::greedy());
    let mut out = Vec::new();
    for _ in 0..n {
        let token = session.sample_next(&model, &mut sampler).unwrap();
        if tokenizer.is_end_of_generation(token) {
            break;
        }
        out.push(token);
        session.feed(&model, &[token]).unwrap();
    }
    tokenizer.decode(&out)
}

#[test]
fn uploads_hash_on_chain_restart_at_zero_and_refuse_oversized_chunks() {
    let env = new_env();
    let llm = env.create_canister(admin());
    env.install(admin(), llm, &wasm("llm"), candid::encode_args(()).unwrap()).unwrap();
    let model = stories();
    let upload = |part: &[u8], offset: usize| -> FileUploadRecordResult {
        let input = FileUploadInputRecord {
            filename: TEST_MODEL_PATH.into(),
            chunk: part.to_vec(),
            chunksize: part.len() as u64,
            offset: offset as u64,
        };
        env.update_one(admin(), llm, methods::FILE_UPLOAD_CHUNK, input).unwrap()
    };
    let chunk = 400_000;
    for (i, part) in model.chunks(chunk).enumerate() {
        let end = i * chunk + part.len();
        match upload(part, i * chunk) {
            FileUploadRecordResult::Ok(r) => {
                assert_eq!(r.filesize, end as u64);
                assert_eq!(r.filesha256, hex::encode(Sha256::digest(&model[..end])), "SHA-256 of the file so far");
            }
            FileUploadRecordResult::Err(e) => panic!("chunk {i}: {e}"),
        }
    }
    let details: FileUploadRecordResult = env
        .query_one(admin(), llm, "uploaded_file_details", FileDetailsInputRecord { filename: TEST_MODEL_PATH.into() })
        .unwrap();
    match details {
        FileUploadRecordResult::Ok(r) => assert_eq!(r.filesha256, hex::encode(Sha256::digest(&model))),
        FileUploadRecordResult::Err(e) => panic!("{e}"),
    }
    // Out of order: refused; offset 0: the file starts again.
    assert!(matches!(upload(&model[..10], 5), FileUploadRecordResult::Err(_)));
    match upload(&model[..1000], 0) {
        FileUploadRecordResult::Ok(r) => {
            assert_eq!((r.filesize, r.filesha256), (1000, hex::encode(Sha256::digest(&model[..1000]))))
        }
        FileUploadRecordResult::Err(e) => panic!("{e}"),
    }
    // Larger than 2,097,152 bytes: refused (by the ingress size limit already).
    let oversized = vec![0u8; 2_097_153];
    let input = FileUploadInputRecord {
        filename: "big".into(),
        chunksize: oversized.len() as u64,
        chunk: oversized,
        offset: 0,
    };
    let refused = env
        .update_one::<_, FileUploadRecordResult>(admin(), llm, methods::FILE_UPLOAD_CHUNK, input)
        .map_or(true, |r| matches!(r, FileUploadRecordResult::Err(_)));
    assert!(refused);
    // Only controllers upload.
    let input = FileUploadInputRecord { filename: "x".into(), chunk: vec![1], chunksize: 1, offset: 0 };
    let r: FileUploadRecordResult = env.update_one(user(1), llm, methods::FILE_UPLOAD_CHUNK, input).unwrap();
    assert!(matches!(r, FileUploadRecordResult::Err(_)));
    // The truncated file is not a model.
    assert_eq!(err(call(&*env, admin(), llm, methods::LOAD_MODEL, &["--model", TEST_MODEL_PATH])).status_code, 500);
}

#[test]
fn joe_loves_writing_stories_in_small_steps_and_in_one_go() {
    let env = new_env();
    let llm = deploy_llm_with_model(&*env, &stories(), 4);
    let answer = generate(&*env, admin(), llm, "joe", JOE, &["-n", "3", "--temp", "0"]);
    assert_eq!(answer.text, ". He li");
    // 16 prompt tokens: BOS + 4, 4, 4, then the last 3 and one generated token; then 2.
    assert_eq!(answer.calls, 5);
    assert_eq!((answer.last.n_prompt_tokens, answer.last.n_tokens_generated), (Some(16), Some(3)));
    assert_eq!(answer.last.conversation, " Joe loves writing stories. He li");

    set_max_tokens(&*env, llm, 0);
    let answer = generate(&*env, admin(), llm, "joe", JOE, &["-n", "3", "--temp", "0"]);
    assert_eq!((answer.text.as_str(), answer.calls), (". He li", 1), "no limit: one call");
}

#[test]
fn a_longer_greedy_generation_equals_the_engine_run_natively() {
    let env = new_env();
    let llm = deploy_llm_with_model(&*env, &stories(), 5);
    let prompt = "Once upon a time, there was a little girl named Lily";
    let expected = native_greedy(prompt, 64);
    assert!(expected.len() > 100, "{expected:?}");
    let answer = generate(&*env, admin(), llm, "long", prompt, &["-n", "64", "--temp", "0"]);
    assert_eq!(answer.text, expected);
    assert!(answer.calls > 12, "split over {} calls", answer.calls);
}

#[test]
fn seeded_sampling_is_reproducible_however_it_is_split() {
    let env = new_env();
    let llm = deploy_llm_with_model(&*env, &stories(), 3);
    let sample = |seed: &str| {
        let args = ["-n", "40", "--temp", "0.9", "--top-k", "40", "--top-p", "0.95", "--seed", seed];
        generate(&*env, admin(), llm, "s", "The little dog", &args).text
    };
    let a = sample("7");
    assert_eq!(sample("7"), a);
    set_max_tokens(&*env, llm, 0);
    assert_eq!(sample("7"), a, "one call or many, the same text");
    assert_ne!(sample("8"), a);
}

#[test]
fn access_is_for_controllers_and_granted_principals() {
    let env = new_env();
    let llm = deploy_llm_with_model(&*env, &stories(), 0);
    let chat = |who: Principal| call(&*env, who, llm, methods::NEW_CHAT, &["--prompt-cache", "a"]);
    let check =
        |who: Principal| -> StatusCodeRecordResult { env.call(who, llm, &llm_calls::CHECK_ACCESS, ()).unwrap() };

    // Level 0 (the default): a non-controller is refused.
    let refused = err(chat(user(1)));
    assert_eq!((refused.status_code, refused.error.as_str()), (401, "Access Denied"));
    assert!(matches!(check(user(1)), StatusCodeRecordResult::Err(_)));
    assert_eq!(err(call(&*env, user(1), llm, methods::RUN_UPDATE, &["-p", JOE])).status_code, 401);

    // A controller grants a principal, which is let in; others are not.
    assert!(matches!(
        env.update_one::<_, AccessListResult>(user(1), llm, "grant_access", user(1)).unwrap(),
        AccessListResult::Err(_)
    ));
    assert_eq!(grant(&*env, llm, user(1)), AccessListResult::Ok(vec![user(1)]));
    assert!(matches!(check(user(1)), StatusCodeRecordResult::Ok(_)));
    assert_eq!(generate(&*env, user(1), llm, "g", JOE, &["-n", "3", "--temp", "0"]).text, ". He li");
    assert_eq!(err(chat(user(2))).status_code, 401);
    let listed: AccessListResult = env.query_one(admin(), llm, "list_access", ()).unwrap();
    assert_eq!(listed, AccessListResult::Ok(vec![user(1)]));

    // Level 1: everyone signed in; never the anonymous principal.
    let r: AccessRecordResult =
        env.update_one(admin(), llm, methods::SET_ACCESS, AccessInputRecord { level: 1 }).unwrap();
    assert!(matches!(r, AccessRecordResult::Ok(ref a) if a.explanation == "All except anonymous"), "{r:?}");
    ok(chat(user(2)));
    assert_eq!(err(chat(Principal::anonymous())).status_code, 401);
    let r: AccessRecordResult =
        env.update_one(user(2), llm, methods::SET_ACCESS, AccessInputRecord { level: 0 }).unwrap();
    assert!(matches!(r, AccessRecordResult::Err(_)), "only controllers set the level");

    // Back to 0 and revoked: refused again.
    let _: AccessRecordResult =
        env.update_one(admin(), llm, methods::SET_ACCESS, AccessInputRecord { level: 0 }).unwrap();
    let r: AccessListResult = env.update_one(admin(), llm, "revoke_access", user(1)).unwrap();
    assert_eq!(r, AccessListResult::Ok(vec![]));
    assert_eq!(err(chat(user(1))).status_code, 401);
    assert_eq!(err(call(&*env, user(1), llm, methods::LOAD_MODEL, &["--model", TEST_MODEL_PATH])).status_code, 401);
}

#[test]
fn after_an_upgrade_the_model_is_reloaded_from_the_kept_file() {
    let env = new_env();
    let model = stories();
    let llm = deploy_llm_with_model(&*env, &model, 4);
    grant(&*env, llm, user(1));
    ok(call(&*env, admin(), llm, methods::RUN_UPDATE, &["--prompt-cache", "c", "-p", JOE]));

    env.upgrade(admin(), llm, &wasm("llm"), candid::encode_args(()).unwrap()).expect("upgrade");
    // Until the reload (a timer right after the upgrade) has run: 503 and a clear message.
    if env.simulator().is_some() {
        let ready: StatusCodeRecordResult = env.query_one(admin(), llm, methods::READY, ()).unwrap();
        assert!(matches!(ready, StatusCodeRecordResult::Err(_)), "{ready:?}");
        let e = err(call(&*env, admin(), llm, methods::RUN_UPDATE, &["-p", JOE]));
        assert_eq!(e.status_code, 503);
        assert!(e.error.contains("reloaded after an upgrade"), "{}", e.error);
    }
    settle(&*env);
    let ready: StatusCodeRecordResult = env.query_one(admin(), llm, methods::READY, ()).unwrap();
    assert!(matches!(ready, StatusCodeRecordResult::Ok(_)), "{ready:?}");

    // The file, the settings and the grants survived; the conversation did not.
    let details: FileUploadRecordResult = env
        .query_one(admin(), llm, "uploaded_file_details", FileDetailsInputRecord { filename: TEST_MODEL_PATH.into() })
        .unwrap();
    assert!(
        matches!(details, FileUploadRecordResult::Ok(ref r) if r.filesha256 == hex::encode(Sha256::digest(&model)))
    );
    let max: MaxTokensRecord = env.query_one(admin(), llm, methods::GET_MAX_TOKENS, ()).unwrap();
    assert_eq!(max.max_tokens_update, 4);
    let e = err(call(&*env, admin(), llm, methods::RUN_UPDATE, &["--prompt-cache", "c", "-p", ""]));
    assert_eq!(e.status_code, 400);
    assert_eq!(generate(&*env, user(1), llm, "c", JOE, &["-n", "3", "--temp", "0"]).text, ". He li");

    // load_model again works as well (a client that reloads by itself).
    ok(call(&*env, admin(), llm, methods::LOAD_MODEL, &["--model", TEST_MODEL_PATH, "-c", "64"]));
    match memory_status(&*env, llm).model {
        ModelState::Loaded(info) => {
            assert_eq!((info.session_capacity, info.vocab_size, info.file_bytes), (64, 512, model.len() as u64));
            assert!(info.load_instructions > 0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_a_model_inference_says_to_load_one() {
    let env = new_env();
    let llm = env.create_canister(admin());
    env.install(admin(), llm, &wasm("llm"), candid::encode_args(()).unwrap()).unwrap();
    let health: StatusCodeRecordResult = env.query_one(admin(), llm, methods::HEALTH, ()).unwrap();
    assert!(matches!(health, StatusCodeRecordResult::Ok(_)));
    let ready: StatusCodeRecordResult = env.query_one(admin(), llm, methods::READY, ()).unwrap();
    assert!(matches!(ready, StatusCodeRecordResult::Err(_)));
    let e = err(call(&*env, admin(), llm, methods::NEW_CHAT, &["--prompt-cache", "x"]));
    assert_eq!((e.status_code, e.error.as_str()), (503, "model not loaded: call load_model"));
    assert_eq!(err(call(&*env, admin(), llm, methods::LOAD_MODEL, &["--model", "nothing.gguf"])).status_code, 404);
    // An upgrade with no model loaded stays without one.
    env.upgrade(admin(), llm, &wasm("llm"), candid::encode_args(()).unwrap()).unwrap();
    settle(&*env);
    assert!(matches!(memory_status(&*env, llm).model, ModelState::NotLoaded));
}

#[test]
fn remove_prompt_cache_and_two_callers_with_the_same_cache_name() {
    let env = new_env();
    let llm = deploy_llm_with_model(&*env, &stories(), 3);
    for who in [user(1), user(2)] {
        grant(&*env, llm, who);
    }
    let greedy = ["-n", "20", "--temp", "0"];
    let alone_a = generate(&*env, user(1), llm, "same", JOE, &greedy).text;
    let alone_b = generate(&*env, user(2), llm, "same", "The little dog", &greedy).text;
    assert_ne!(alone_a, alone_b);

    // Interleaved call by call: each caller's conversation is its own.
    for who in [user(1), user(2)] {
        ok(call(&*env, who, llm, methods::NEW_CHAT, &["--prompt-cache", "same"]));
    }
    let step = |who: Principal, p: &str| {
        let mut args = vec!["--prompt-cache", "same"];
        args.extend_from_slice(&greedy);
        args.extend(["-p", p]);
        ok(call(&*env, who, llm, methods::RUN_UPDATE, &args))
    };
    let (mut text_a, mut text_b) = (String::new(), String::new());
    let (mut rem_a, mut rem_b) = (JOE.to_string(), "The little dog".to_string());
    let (mut eog_a, mut eog_b) = (false, false);
    while !(eog_a && eog_b) {
        if !eog_a {
            let r = step(user(1), &rem_a);
            text_a.push_str(&r.output);
            rem_a = r.prompt_remaining;
            eog_a = r.generated_eog;
        }
        if !eog_b {
            let r = step(user(2), &rem_b);
            text_b.push_str(&r.output);
            rem_b = r.prompt_remaining;
            eog_b = r.generated_eog;
        }
    }
    assert_eq!((text_a.as_str(), text_b.as_str()), (alone_a.as_str(), alone_b.as_str()));
    assert_eq!(memory_status(&*env, llm).conversations, 2);

    // remove_prompt_cache ends user 1's conversation only.
    ok(call(&*env, user(1), llm, methods::REMOVE_PROMPT_CACHE, &["--prompt-cache", "same"]));
    assert_eq!(
        err(call(&*env, user(1), llm, methods::RUN_UPDATE, &["--prompt-cache", "same", "-p", ""])).status_code,
        400
    );
    let r = ok(call(&*env, user(2), llm, methods::RUN_UPDATE, &["--prompt-cache", "same", "-p", ""]));
    assert!(r.generated_eog && r.conversation.contains("The little dog"));
    let status = memory_status(&*env, llm);
    assert_eq!(status.conversations, 1);
    match &status.model {
        ModelState::Loaded(info) => {
            assert!(status.heap_bytes > info.weight_bytes && status.stable_bytes > info.file_bytes, "{status:?}");
        }
        other => panic!("{other:?}"),
    }
}

fn submissions_for(env: &dyn TestEnv, game: Principal, challenge: u64) -> Vec<Submission> {
    let page: GameResult<Page<Submission>> = env
        .query_candid(admin(), game, "submissions_by_challenge", (challenge, PageRequest::first(10)))
        .map(|(p,)| p)
        .unwrap();
    page.unwrap().items
}

#[test]
fn an_own_mainer_answers_a_challenge_with_real_model_output() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let controller = deploy_controller(&*env, MainerRole::Own, game, None);
    let llm = deploy_llm_with_model(&*env, &stories(), 4);
    grant(&*env, llm, controller);
    add_llm(&*env, controller, llm);
    let challenge = add_challenge(&*env, game, JOE, 3);
    for _ in 0..120 {
        if !submissions_for(&*env, game, challenge.id).is_empty() {
            break;
        }
        run_for(&*env, 1);
    }
    let submissions = submissions_for(&*env, game, challenge.id);
    assert_eq!(submissions.len(), 1, "answered within two simulated minutes");
    assert_eq!(submissions[0].answer, ". He li");
    assert_eq!(submissions[0].evidence.llm_canister, llm);
}
