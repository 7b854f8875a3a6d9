//! Our `llm` canister with the real stories260K model: the llama.cpp
//! protocol as clients drive it, its splits over calls, access control,
//! upgrades, and the mAIner controller answering a challenge through it.
//! Runs on PocketIC too when `POCKET_IC_BIN` is set.

use candid::{CandidType, Deserialize, Principal};
use integration_tests::deploy::{
    TEST_MODEL_PATH, add_challenge, add_llm, admin, deploy_controller, deploy_game_state, deploy_llm_with_model,
    run_for, settle,
};
use integration_tests::llm_driver::{ask, greedy};
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use llm_engine::{GgufFile, Model, Sampler, SamplerConfig, Session, Tokenizer};
use mainer_types::MainerRole;
use mainer_types::calls::llm as llm_calls;
use mainer_types::game::{GameResult, GenerationSettings, Submission};
mod probe;

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

/// One answer through `llm_client`, the controller's client: its text and
/// the `run_update` calls it took.
fn generate(
    env: &dyn TestEnv,
    who: Principal,
    llm: Principal,
    cache: &str,
    prompt: &str,
    settings: GenerationSettings,
) -> (String, usize) {
    let driven = ask(env, who, llm, cache, prompt, settings);
    (driven.generation().text.clone(), driven.run_updates())
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
    let r = env.update_one::<_, FileUploadRecordResult>(user(1), llm, methods::FILE_UPLOAD_CHUNK, input);
    assert!(r.is_err_and(|e| e.error_code == Some("IC0406")), "refused at inspection");
    // The truncated file is not a model.
    assert_eq!(err(call(&*env, admin(), llm, methods::LOAD_MODEL, &["--model", TEST_MODEL_PATH])).status_code, 500);
}

#[test]
fn joe_loves_writing_stories_in_small_steps_and_in_one_go() {
    let env = new_env();
    let llm = deploy_llm_with_model(&*env, &stories(), 4);
    let driven = ask(&*env, admin(), llm, "joe", JOE, greedy(3));
    let g = driven.generation();
    assert_eq!(g.text, ". He li");
    // 16 prompt tokens, 4 per call: 4 calls with -n 1; then -n 3 for the 3 tokens.
    assert_eq!(driven.n_predict, [1, 1, 1, 1, 3]);
    assert_eq!((g.prompt_tokens, g.generated_tokens), (Some(16), Some(3)));

    set_max_tokens(&*env, llm, 0);
    let driven = ask(&*env, admin(), llm, "joe", JOE, greedy(3));
    assert_eq!((driven.generation().text.as_str(), driven.n_predict.as_slice()), (". He li", &[1, 3][..]));
}

#[test]
fn minus_n_caps_each_call_and_a_later_call_generates_more() {
    let env = new_env();
    let llm = deploy_llm_with_model(&*env, &stories(), 0);
    let run = |args: &[&str]| {
        ok(call(
            &*env,
            admin(),
            llm,
            methods::RUN_UPDATE,
            &[&["--prompt-cache", "n", "--temp", "0"][..], args].concat(),
        ))
    };
    let first = run(&["-n", "1", "-p", JOE]);
    assert_eq!((first.output.as_str(), first.generated_eog), (".", false));
    let next = run(&["-n", "3", "-p", ""]);
    assert_eq!((next.output.as_str(), next.n_tokens_generated), (". He li", Some(2)), "the unkept token comes again");
    assert!(!next.generated_eog, "-n ends the call, not the answer");
    let more = run(&["-n", "30", "-p", ""]);
    assert!(more.output.starts_with(" liked to play"), "{:?}", more.output);
}

#[test]
fn a_longer_greedy_generation_equals_the_engine_run_natively() {
    let env = new_env();
    let llm = deploy_llm_with_model(&*env, &stories(), 5);
    let prompt = "Once upon a time, there was a little girl named Lily";
    let expected = native_greedy(prompt, 64);
    assert!(expected.len() > 100, "{expected:?}");
    let (text, calls) = generate(&*env, admin(), llm, "long", prompt, greedy(64));
    assert_eq!(text, expected);
    assert!(calls > 12, "split over {calls} calls");
}

#[test]
fn seeded_sampling_is_reproducible_however_it_is_split() {
    let env = new_env();
    let llm = deploy_llm_with_model(&*env, &stories(), 3);
    let sample = |seed: u32| {
        let settings =
            GenerationSettings { max_tokens: 40, temperature: 0.9, seed, top_k: Some(40), top_p: Some(0.95) };
        generate(&*env, admin(), llm, "s", "The little dog", settings).0
    };
    let a = sample(7);
    assert_eq!(sample(7), a);
    set_max_tokens(&*env, llm, 0);
    assert_eq!(sample(7), a, "one call or many, the same text");
    assert_ne!(sample(8), a);
}

#[test]
fn access_is_for_controllers_and_granted_principals() {
    let env = new_env();
    let llm = deploy_llm_with_model(&*env, &stories(), 0);
    let chat_input = || InputRecord::new(["--prompt-cache", "a"]);
    let chat = |who: Principal| call(&*env, who, llm, methods::NEW_CHAT, &["--prompt-cache", "a"]);
    // A refused caller's ingress never gets in: `canister_inspect_message`
    // applies the endpoint's own rule (see tests/inspect.rs).
    let refused = |who: Principal, method: &str| {
        let r = env.update_one::<_, OutputRecordResult>(who, llm, method, chat_input());
        assert!(r.as_ref().is_err_and(|e| e.error_code == Some("IC0406")), "{method} from {who}: {r:?}");
    };
    let check =
        |who: Principal| -> StatusCodeRecordResult { env.call(who, llm, &llm_calls::CHECK_ACCESS, ()).unwrap() };

    // Level 0 (the default): a non-controller is refused.
    refused(user(1), methods::NEW_CHAT);
    refused(user(1), methods::RUN_UPDATE);
    assert!(matches!(check(user(1)), StatusCodeRecordResult::Err(_)));
    // A canister's call is not inspected: the endpoint answers 401, as the llama.cpp canister does.
    let stranger_canister = probe::install_probe(&*env, "stranger");
    let forwarded = probe::forward(
        &*env,
        stranger_canister,
        llm,
        methods::NEW_CHAT,
        candid::encode_one(chat_input()).unwrap(),
        0,
        None,
    );
    let probe::Forwarded::Reply(reply) = forwarded else { panic!("{forwarded:?}") };
    let reply: OutputRecordResult = candid::decode_one(&reply).unwrap();
    assert_eq!((err(reply).status_code), 401);

    // A controller grants a principal, which is let in; others are not.
    let r = env.update_one::<_, AccessListResult>(user(1), llm, "grant_access", user(1));
    assert!(r.is_err_and(|e| e.error_code == Some("IC0406")), "only controllers grant");
    assert_eq!(grant(&*env, llm, user(1)), AccessListResult::Ok(vec![user(1)]));
    assert!(matches!(check(user(1)), StatusCodeRecordResult::Ok(_)));
    assert_eq!(generate(&*env, user(1), llm, "g", JOE, greedy(3)).0, ". He li");
    refused(user(2), methods::NEW_CHAT);
    let listed: AccessListResult = env.query_one(admin(), llm, "list_access", ()).unwrap();
    assert_eq!(listed, AccessListResult::Ok(vec![user(1)]));

    // Level 1: everyone signed in; never the anonymous principal.
    let r: AccessRecordResult =
        env.update_one(admin(), llm, methods::SET_ACCESS, AccessInputRecord { level: 1 }).unwrap();
    assert!(matches!(r, AccessRecordResult::Ok(ref a) if a.explanation == "All except anonymous"), "{r:?}");
    ok(chat(user(2)));
    refused(Principal::anonymous(), methods::NEW_CHAT);
    let r = env.update_one::<_, AccessRecordResult>(user(2), llm, methods::SET_ACCESS, AccessInputRecord { level: 0 });
    assert!(r.is_err_and(|e| e.error_code == Some("IC0406")), "only controllers set the level");

    // Back to 0 and revoked: refused again.
    let _: AccessRecordResult =
        env.update_one(admin(), llm, methods::SET_ACCESS, AccessInputRecord { level: 0 }).unwrap();
    let r: AccessListResult = env.update_one(admin(), llm, "revoke_access", user(1)).unwrap();
    assert_eq!(r, AccessListResult::Ok(vec![]));
    refused(user(1), methods::NEW_CHAT);
    refused(user(1), methods::LOAD_MODEL);
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
    let r = ok(call(&*env, admin(), llm, methods::RUN_UPDATE, &["--prompt-cache", "c", "-n", "1", "-p", ""]));
    assert_eq!(r.n_prompt_tokens_cached, Some(0), "a new, empty conversation");
    assert_eq!(generate(&*env, user(1), llm, "c", JOE, greedy(3)).0, ". He li");

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
    let alone_a = generate(&*env, user(1), llm, "same", JOE, greedy(20)).0;
    let alone_b = generate(&*env, user(2), llm, "same", "The little dog", greedy(20)).0;
    assert_ne!(alone_a, alone_b);

    // Interleaved call by call: each caller's conversation is its own.
    for who in [user(1), user(2)] {
        ok(call(&*env, who, llm, methods::NEW_CHAT, &["--prompt-cache", "same"]));
    }
    let step = |who: Principal, p: &str, n: &str| {
        ok(call(&*env, who, llm, methods::RUN_UPDATE, &["--prompt-cache", "same", "--temp", "0", "-n", n, "-p", p]))
    };
    let mut texts = [String::new(), String::new()];
    let prompts = [JOE, "The little dog"];
    let mut ingested = [false, false];
    // Ingest both (full prompt, -n 1), then 5 calls of -n 4 (M = 3: 3 tokens each), interleaved.
    while !(ingested[0] && ingested[1]) {
        for (k, who) in [user(1), user(2)].into_iter().enumerate() {
            if !ingested[k] {
                ingested[k] = step(who, prompts[k], "1").prompt_remaining.is_empty();
            }
        }
    }
    for _ in 0..5 {
        for (k, who) in [user(1), user(2)].into_iter().enumerate() {
            texts[k].push_str(&step(who, "", "4").output);
        }
    }
    assert!(alone_a.starts_with(&texts[0][..]) || texts[0].starts_with(&alone_a[..]), "{texts:?} {alone_a:?}");
    assert!(alone_b.starts_with(&texts[1][..]) || texts[1].starts_with(&alone_b[..]), "{texts:?} {alone_b:?}");
    assert_eq!(memory_status(&*env, llm).conversations, 2);

    // remove_prompt_cache ends user 1's conversation only.
    ok(call(&*env, user(1), llm, methods::REMOVE_PROMPT_CACHE, &["--prompt-cache", "same"]));
    let r = ok(call(&*env, user(1), llm, methods::RUN_UPDATE, &["--prompt-cache", "same", "-n", "1", "-p", ""]));
    assert_eq!(r.n_prompt_tokens_cached, Some(0), "gone: a new, empty one");
    let r = ok(call(&*env, user(2), llm, methods::RUN_UPDATE, &["--prompt-cache", "same", "-n", "1", "-p", ""]));
    assert!(r.conversation.contains("The little dog"), "{r:?}");
    ok(call(&*env, user(1), llm, methods::REMOVE_PROMPT_CACHE, &["--prompt-cache", "same"]));
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
