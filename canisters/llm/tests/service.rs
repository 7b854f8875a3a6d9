//! The canister's logic, natively: the llama.cpp protocol on the real
//! stories260K model (driven by `llm_client`, the controller's client, and
//! call by call), its splits over calls, limits, access and upgrades.

use std::cell::Cell;

use candid::Principal;
use ic_stable_structures::VectorMemory;
use llm::api::{AccessListResult, ModelState};
use llm::chat::Meter;
use llm::conversations::ConversationLimits;
use llm::files::MAX_FILES;
use llm::service::{Memories, Service};
use llm::settings::Caller;
use llm_engine::{GgufFile, Model, Sampler, SamplerConfig, Session, Tokenizer};
use mainer_types::game::GenerationSettings;
use mainer_types::llama_cpp::{
    AccessInputRecord, FileUploadInputRecord, FileUploadRecordResult, InputRecord, MaxTokensRecord, OutputRecordResult,
    RunOutputRecord, StatusCodeRecordResult, methods,
};
use mainer_types::llm_client::{ClientLimits, Generation, LlmCall, LlmReply, LlmSession};

const MODEL: &str = "models/model.gguf";
const JOE: &str = "Joe loves writing stories";

fn stories() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/models/stories260Ktok512.gguf");
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// A counter that only moves when the service reads it: each read costs `step`.
struct FakeMeter {
    now: Cell<u64>,
    step: u64,
}

impl FakeMeter {
    fn free() -> Self {
        FakeMeter { now: Cell::new(0), step: 0 }
    }
}

impl Meter for FakeMeter {
    fn instructions(&self) -> u64 {
        self.now.set(self.now.get() + self.step);
        self.now.get()
    }
}

fn admin() -> Caller {
    Caller { principal: Principal::self_authenticating([0; 32]), controller: true }
}

fn user(n: u8) -> Caller {
    Caller { principal: Principal::self_authenticating([n; 32]), controller: false }
}

#[derive(Clone)]
struct Stable {
    directory: VectorMemory,
    settings: VectorMemory,
    prefixes: [VectorMemory; 2],
    slots: Vec<VectorMemory>,
}

impl Stable {
    fn new() -> Self {
        Stable {
            directory: VectorMemory::default(),
            settings: VectorMemory::default(),
            prefixes: Default::default(),
            slots: (0..MAX_FILES).map(|_| VectorMemory::default()).collect(),
        }
    }

    /// A service over these memories, as after an install or an upgrade.
    fn service(&self, limits: ConversationLimits) -> Service<VectorMemory> {
        let memories = Memories {
            directory: self.directory.clone(),
            settings: self.settings.clone(),
            prefix_directory: self.prefixes[0].clone(),
            prefix_data: self.prefixes[1].clone(),
            file_slots: self.slots.clone(),
        };
        Service::with_limits(memories, limits)
    }
}

fn upload(s: &mut Service<VectorMemory>, bytes: &[u8]) {
    for (i, part) in bytes.chunks(300_000).enumerate() {
        let input = FileUploadInputRecord {
            filename: MODEL.into(),
            chunk: part.to_vec(),
            chunksize: part.len() as u64,
            offset: (i * 300_000) as u64,
        };
        assert!(matches!(s.file_upload_chunk(admin(), &input), FileUploadRecordResult::Ok(_)));
    }
}

fn input(args: &[&str]) -> InputRecord {
    InputRecord::new(args.iter().copied())
}

fn ok(r: OutputRecordResult) -> RunOutputRecord {
    match r {
        OutputRecordResult::Ok(r) => r,
        OutputRecordResult::Err(r) => panic!("expected Ok, got {r:?}"),
    }
}

fn err(r: OutputRecordResult) -> RunOutputRecord {
    match r {
        OutputRecordResult::Err(r) => r,
        OutputRecordResult::Ok(r) => panic!("expected Err, got {r:?}"),
    }
}

/// A service with the stories model loaded and `max_tokens_update` set.
fn loaded(max_tokens_update: u64, load_args: &[&str]) -> (Stable, Service<VectorMemory>) {
    let stable = Stable::new();
    let mut s = stable.service(ConversationLimits::default());
    upload(&mut s, &stories());
    let mut args = vec!["--model", MODEL];
    args.extend_from_slice(load_args);
    ok(s.load_model(admin(), &input(&args), &FakeMeter::free()));
    set_max(&mut s, max_tokens_update);
    (stable, s)
}

fn set_max(s: &mut Service<VectorMemory>, max_tokens_update: u64) {
    let r = s.set_max_tokens(admin(), MaxTokensRecord { max_tokens_update, max_tokens_query: 0 });
    assert!(matches!(r, StatusCodeRecordResult::Ok(_)));
}

/// Runs `llm_client`'s session against the service, each call with a fresh
/// meter from `meter`; the generation and the `run_update` calls it took.
fn ask(
    s: &mut Service<VectorMemory>,
    cache: &str,
    prompt: &str,
    settings: GenerationSettings,
    meter: &dyn Fn() -> FakeMeter,
) -> (Generation, u32) {
    let mut session = LlmSession::new(cache, prompt, settings, ClientLimits::default());
    let mut run_updates = 0;
    while let Some(call) = session.next_call() {
        let reply = match call {
            LlmCall::MaxTokens => LlmReply::MaxTokens(s.get_max_tokens()),
            LlmCall::Run { method, arg } => LlmReply::Run(match method {
                methods::NEW_CHAT => s.new_chat(admin(), &arg, 1),
                methods::RUN_UPDATE => {
                    run_updates += 1;
                    s.run_update(admin(), &arg, 1, &meter())
                }
                methods::REMOVE_PROMPT_CACHE => s.remove_prompt_cache(admin(), &arg),
                other => panic!("unexpected {other}"),
            }),
        };
        session.on_result(Ok(reply));
    }
    (session.outcome().unwrap().clone().unwrap(), run_updates)
}

fn greedy(max_tokens: u64) -> GenerationSettings {
    GenerationSettings { max_tokens, temperature: 0.0, ..Default::default() }
}

fn run(s: &mut Service<VectorMemory>, args: &[&str]) -> RunOutputRecord {
    ok(s.run_update(admin(), &input(args), 1, &FakeMeter::free()))
}

fn native() -> (Tokenizer, Model) {
    let bytes = stories();
    let file = GgufFile::parse(bytes.as_slice()).unwrap();
    (Tokenizer::from_gguf(&file).unwrap(), Model::from_file_bytes(&file, bytes).unwrap())
}

/// The engine alone: `prompt` then `n` sampled tokens (stopping at EOS).
fn native_generate(tokens: &[u32], n: usize, config: SamplerConfig) -> Vec<u32> {
    let (tokenizer, model) = native();
    let mut session = Session::new(&model, 128).unwrap();
    session.feed(&model, tokens).unwrap();
    let mut sampler = Sampler::new(config);
    let mut out = Vec::new();
    for _ in 0..n {
        let t = session.sample_next(&model, &mut sampler).unwrap();
        out.push(t);
        if tokenizer.is_end_of_generation(t) {
            break;
        }
        session.feed(&model, &[t]).unwrap();
    }
    out
}

#[test]
fn joe_loves_writing_stories_however_the_calls_are_split() {
    for max in [0, 1, 2, 3, 4, 5, 16, 17, 100] {
        let (_, mut s) = loaded(max, &[]);
        let (g, calls) = ask(&mut s, "c", JOE, greedy(3), &FakeMeter::free);
        assert_eq!(g.text, ". He li", "max_tokens_update {max}");
        assert_eq!((g.prompt_tokens, g.generated_tokens), (Some(16), Some(3)));
        if max == 4 {
            // 16 prompt tokens, 4 per call; then 3 tokens with -n 3 (the last shown, not kept).
            assert_eq!(calls, 4 + 1);
        }
        if max == 0 {
            assert_eq!(calls, 1 + 1, "one call to ingest, one to generate");
        }
        assert_eq!(s.memory_status(0, 0).conversations, 0, "the client removed its cache");
    }
}

#[test]
fn minus_n_caps_the_tokens_a_call_samples_and_the_last_is_not_kept() {
    let (_, mut s) = loaded(0, &[]);
    let cache = ["--prompt-cache", "c", "--temp", "0"];
    let with = |more: &[&'static str]| [&cache[..], more].concat();
    // The whole prompt and one sampled token, shown but not kept.
    let r = run(&mut s, &with(&["-n", "1", "-p", JOE]));
    assert_eq!((r.output.as_str(), r.conversation.as_str()), (".", " Joe loves writing stories"));
    assert_eq!((r.n_prompt_tokens_decoded, r.n_tokens_generated), (Some(16), Some(0)));
    let r = run(&mut s, &with(&["-n", "3", "-p", ""]));
    assert_eq!(r.output, ". He li", "the same token again, then two more");
    assert_eq!(r.conversation, " Joe loves writing stories. He", "the third is not kept");
    assert_eq!((r.n_prompt_tokens, r.n_prompt_tokens_cached, r.n_tokens_generated), (Some(16), Some(16), Some(2)));
    assert!(!r.generated_eog, "-n does not end the answer");
    let r = run(&mut s, &with(&["-n", "3", "-p", ""]));
    assert!(r.output.starts_with(" li"), "{:?}: a later call generates more", r.output);
    assert_eq!(r.n_prompt_tokens_cached, Some(18));
    // -n 0: nothing at all.
    let r = run(&mut s, &with(&["-n", "0", "-p", ""]));
    assert_eq!((r.output.as_str(), r.conversation.as_str()), ("", ""));
}

#[test]
fn max_tokens_update_caps_the_tokens_a_call_evaluates_and_the_prompt_is_resent_whole() {
    let (_, mut s) = loaded(4, &[]);
    let r = run(&mut s, &["--prompt-cache", "c", "-n", "1", "-p", JOE]);
    assert_eq!(
        (r.n_prompt_tokens, r.n_prompt_tokens_cached, r.n_prompt_tokens_decoded, r.n_prompt_tokens_remaining),
        (Some(16), Some(0), Some(4), Some(12))
    );
    assert_eq!(format!("{}{}", r.conversation, r.prompt_remaining), format!(" {JOE}"));
    assert_eq!(r.output, "", "no token sampled before the prompt is in");
    let r2 = run(&mut s, &["--prompt-cache", "c", "-n", "1", "-p", JOE]);
    assert_eq!((r2.n_prompt_tokens_cached, r2.n_prompt_tokens_decoded), (Some(4), Some(4)));
    // Sending prompt_remaining back starts a new input: only the BOS is reused.
    let r3 = run(&mut s, &["--prompt-cache", "c", "-n", "1", "-p", &r2.prompt_remaining]);
    assert!(r3.n_prompt_tokens_cached < Some(8), "{r3:?}: the 8 ingested tokens are not reused");
    // A generating call evaluates M tokens: -n M+1 keeps them all.
    let (_, mut s) = loaded(4, &[]);
    while !run(&mut s, &["--prompt-cache", "c", "-n", "1", "-p", JOE]).prompt_remaining.is_empty() {}
    let r = run(&mut s, &["--prompt-cache", "c", "-n", "5", "--temp", "0", "-p", ""]);
    assert_eq!((r.n_tokens_generated, r.output.as_str()), (Some(4), ". He liked"));
    assert_eq!(r.conversation, format!(" {JOE}. He liked"));
}

#[test]
fn special_tokens_in_the_prompt_are_parsed_with_or_without_sp_which_only_prints_them() {
    let (_, mut s) = loaded(0, &[]);
    let eos = format!("{JOE}</s>");
    for sp in [&[][..], &["-sp"][..]] {
        let r = run(&mut s, &[sp, &["-n", "1", "-p", &eos]].concat());
        assert_eq!(r.n_prompt_tokens, Some(17), "</s> is one token, -sp {sp:?}");
        // As in llama.cpp, a prompt that ends with an end-of-generation token ends the answer.
        assert!(r.generated_eog && r.output.is_empty(), "{r:?}");
    }
    let plain = run(&mut s, &["--prompt-cache", "p", "-n", "1", "-p", JOE]);
    let special = run(&mut s, &["--prompt-cache", "p", "-sp", "-n", "1", "-p", JOE]);
    assert_eq!(plain.conversation, " Joe loves writing stories");
    assert_eq!(special.conversation, "<s> Joe loves writing stories", "-sp prints the BOS");
}

#[test]
fn a_long_greedy_answer_equals_the_engine_however_it_is_split() {
    let (tokenizer, _) = native();
    let prompt = "Once upon a time, there was a little girl named Lily";
    let tokens = tokenizer.encode(prompt, true, false);
    let expected = native_generate(&tokens, 60, SamplerConfig::greedy());
    let expected_text = tokenizer.decode(&expected);
    assert!(expected_text.len() > 100, "{expected_text:?}");
    for max in [0, 1, 3, 7] {
        let (_, mut s) = loaded(max, &[]);
        let (g, _) = ask(&mut s, "c", prompt, greedy(60), &FakeMeter::free);
        assert_eq!(g.text, expected_text, "max_tokens_update {max}");
    }
}

#[test]
fn seeded_sampling_is_reproducible_across_splits() {
    let (tokenizer, _) = native();
    let prompt = "The little dog";
    let config = SamplerConfig { temperature: 0.9, top_k: 40, top_p: 0.95, seed: 1234, ..SamplerConfig::default() };
    let expected = tokenizer.decode(&native_generate(&tokenizer.encode(prompt, true, false), 40, config));
    let sampled = |max: u64, seed: u32| {
        let (_, mut s) = loaded(max, &[]);
        let settings =
            GenerationSettings { max_tokens: 40, temperature: 0.9, seed, top_k: Some(40), top_p: Some(0.95) };
        ask(&mut s, "c", prompt, settings, &FakeMeter::free).0.text
    };
    assert_eq!(sampled(0, 1234), expected);
    assert_eq!(sampled(3, 1234), expected);
    assert_eq!(sampled(1, 1234), expected);
    assert_ne!(sampled(3, 99), expected, "another seed, another story");
}

#[test]
fn penalty_and_min_p_flags_reach_the_sampler_and_bad_values_are_refused() {
    let (tokenizer, _) = native();
    let prompt = "The little dog";
    let tokens = tokenizer.encode(prompt, true, false);
    let plain = tokenizer.decode(&native_generate(&tokens, 31, SamplerConfig::greedy()));
    let flags =
        ["--repeat-penalty", "1.5", "--repeat-last-n", "16", "--frequency-penalty", "0.2", "--presence-penalty", "0.1"];
    let penalized = SamplerConfig {
        repeat_penalty: 1.5,
        repeat_last_n: Some(16),
        frequency_penalty: 0.2,
        presence_penalty: 0.1,
        ..SamplerConfig::greedy()
    };
    let expected = tokenizer.decode(&native_generate(&tokens, 31, penalized));
    assert_ne!(expected, plain, "the penalties change the greedy text");
    let (_, mut s) = loaded(0, &[]);
    let args = [&["--prompt-cache", "c", "--temp", "0"][..], &flags, &["-n", "31", "-p", prompt]].concat();
    assert_eq!(run(&mut s, &args).output, expected);

    // Sampled with min-p 0.3 as the engine does it, and another min-p gives another text.
    let sampled = |min_p: f32| {
        let config = SamplerConfig { temperature: 1.0, top_k: 0, top_p: 1.0, min_p, seed: 7, ..Default::default() };
        tokenizer.decode(&native_generate(&tokens, 31, config))
    };
    let (_, mut s) = loaded(0, &[]);
    let args = ["--prompt-cache", "c", "--temp", "1", "--top-k", "0", "--top-p", "1", "--seed", "7"];
    let r = run(&mut s, &[&args[..], &["--min-p", "0.3", "-n", "31", "-p", prompt]].concat());
    assert_eq!(r.output, sampled(0.3));
    assert_ne!(sampled(0.3), sampled(0.0), "min-p changes the sampled text");

    // Malformed values are refused before anything changes.
    let (_, mut s) = loaded(0, &[]);
    for (flag, value) in
        [("--min-p", "abc"), ("--repeat-penalty", "nan"), ("--repeat-last-n", "-2"), ("--presence-penalty", "")]
    {
        let r = err(s.run_update(
            admin(),
            &input(&["--prompt-cache", "c", flag, value, "-p", prompt]),
            1,
            &FakeMeter::free(),
        ));
        assert_eq!(r.status_code, 400, "{flag} {value}");
        assert!(r.error.contains(flag), "{flag}: {}", r.error);
    }
    let r = run(&mut s, &["--prompt-cache", "c", "--temp", "0", "-n", "31", "-p", prompt]);
    assert_eq!((r.output.as_str(), r.n_prompt_tokens_cached), (plain.as_str(), Some(0)), "nothing was ingested before");
}

#[test]
fn the_instruction_guard_stops_calls_early_without_changing_the_text() {
    let (_, mut s) = loaded(0, &[]);
    // Every read of the counter costs 1,000: a call may read it a few dozen times.
    s.instruction_limit = 12_000;
    let (guarded, calls) = ask(&mut s, "c", JOE, greedy(12), &|| FakeMeter { now: Cell::new(0), step: 1_000 });
    assert!(calls >= 4, "the guard split the work: {calls} calls");
    let (_, mut unguarded) = loaded(0, &[]);
    let (whole, _) = ask(&mut unguarded, "c", JOE, greedy(12), &FakeMeter::free);
    assert_eq!(guarded.text, whole.text);
    assert_eq!(guarded.generated_tokens, Some(12));
}

#[test]
fn a_full_context_ends_the_answer_with_an_error_and_long_prompts_are_refused() {
    let (_, mut s) = loaded(0, &["-c", "20"]);
    run(&mut s, &["--prompt-cache", "c", "-n", "1", "-p", JOE]);
    let r = run(&mut s, &["--prompt-cache", "c", "--temp", "0", "-p", ""]);
    assert!(r.generated_eog);
    assert!(r.error.contains("context full"), "{:?}", r.error);
    assert_eq!(r.n_tokens_generated, Some(4), "16 prompt tokens + 4 = 20 positions");
    let (g, _) = ask(&mut s, "d", JOE, greedy(30), &FakeMeter::free);
    assert_eq!(g.generated_tokens, Some(4), "the client stops at the full context");
    let long = "word ".repeat(30);
    let e = err(s.run_update(admin(), &input(&["--prompt-cache", "d", "-p", &long]), 1, &FakeMeter::free()));
    assert_eq!(e.status_code, 413);
    assert!(e.error.contains("prompt is too long"), "{}", e.error);
}

#[test]
fn a_longer_prompt_reuses_the_cache_and_continues_the_conversation() {
    let (tokenizer, _) = native();
    let (_, mut s) = loaded(4, &[]);
    let (first, _) = ask(&mut s, "keep", JOE, greedy(3), &FakeMeter::free);
    // The same cache name again (the client removed it: make it again).
    while !run(&mut s, &["--prompt-cache", "t", "-n", "1", "-p", JOE]).prompt_remaining.is_empty() {}
    let turn2 = format!("{JOE}{} And then", first.text);
    let r = run(&mut s, &["--prompt-cache", "t", "-n", "1", "-p", &turn2]);
    assert_eq!(r.n_prompt_tokens_cached, Some(16), "the first prompt is reused");
    let (g, _) = ask(&mut s, "t", &turn2, greedy(8), &FakeMeter::free);
    let expected = native_generate(&tokenizer.encode(&turn2, true, false), 8, SamplerConfig::greedy());
    assert_eq!(g.text, tokenizer.decode(&expected));
}

#[test]
fn multi_byte_characters_are_ingested_token_by_token() {
    let (tokenizer, _) = native();
    let (_, mut s) = loaded(1, &[]);
    let prompt = "Zoë ate crème brûlée";
    let (g, calls) = ask(&mut s, "c", prompt, greedy(6), &FakeMeter::free);
    let tokens = tokenizer.encode(prompt, true, false);
    assert_eq!(calls as usize, tokens.len() + 6);
    assert_eq!(g.text, tokenizer.decode(&native_generate(&tokens, 6, SamplerConfig::greedy())));
}

#[test]
fn access_levels_and_grants() {
    let (_, mut s) = loaded(0, &[]);
    let chat = input(&["--prompt-cache", "x"]);
    assert_eq!(err(s.new_chat(user(1), &chat, 0)).status_code, 401, "default: controllers only");
    assert!(matches!(s.check_access(user(1)), StatusCodeRecordResult::Err(_)));
    assert!(matches!(s.grant_access(user(1), user(2).principal), AccessListResult::Err(_)));
    assert_eq!(s.grant_access(admin(), user(1).principal), AccessListResult::Ok(vec![user(1).principal]));
    ok(s.new_chat(user(1), &chat, 0));
    assert!(matches!(s.check_access(user(1)), StatusCodeRecordResult::Ok(_)));
    assert_eq!(err(s.new_chat(user(2), &chat, 0)).status_code, 401);
    s.set_access(admin(), AccessInputRecord { level: 1 });
    ok(s.new_chat(user(2), &chat, 0));
    let anonymous = Caller { principal: Principal::anonymous(), controller: false };
    assert_eq!(err(s.new_chat(anonymous, &chat, 0)).status_code, 401);
    s.set_access(admin(), AccessInputRecord { level: 0 });
    assert_eq!(s.revoke_access(admin(), user(1).principal), AccessListResult::Ok(vec![]));
    assert_eq!(err(s.run_update(user(1), &input(&["-p", "hi"]), 0, &FakeMeter::free())).status_code, 401);
    assert_eq!(err(s.load_model(user(1), &input(&["--model", MODEL]), &FakeMeter::free())).status_code, 401);
    assert!(matches!(s.set_max_tokens(user(1), MaxTokensRecord::default()), StatusCodeRecordResult::Err(_)));
}

#[test]
fn conversations_are_per_caller_and_bounded() {
    let stable = Stable::new();
    let limits = ConversationLimits { max_conversations: 2, max_idle_ns: 1_000, kv_budget_bytes: 1 << 30 };
    let mut s = stable.service(limits);
    upload(&mut s, &stories());
    ok(s.load_model(admin(), &input(&["--model", MODEL]), &FakeMeter::free()));
    s.set_access(admin(), AccessInputRecord { level: 1 });
    let run = |s: &mut Service<VectorMemory>, who: Caller, cache: &str, p: &str, now: u64| {
        s.run_update(
            who,
            &input(&["--prompt-cache", cache, "-n", "3", "--temp", "0", "-p", p]),
            now,
            &FakeMeter::free(),
        )
    };
    // Two callers, the same cache name: separate conversations.
    let a = ok(run(&mut s, user(1), "c", JOE, 10));
    let b = ok(run(&mut s, user(2), "c", "The dog", 20));
    assert_eq!(a.output, ". He li");
    assert_ne!(a.conversation, b.conversation);
    // 16 prompt tokens and 2 of the 3 sampled: the third is shown, not kept.
    assert_eq!(ok(run(&mut s, user(1), "c", "", 30)).n_prompt_tokens_cached, Some(18), "user 1's cache is intact");
    // A gone cache is a new, empty one: an empty prompt starts from the BOS.
    let gone = |r: OutputRecordResult| ok(r).n_prompt_tokens_cached == Some(0);
    // A third conversation drops the least recently used (user 2's).
    ok(run(&mut s, user(3), "c", "A bird", 40));
    assert!(gone(run(&mut s, user(2), "c", "", 50)));
    // Idle for longer than max_idle_ns: dropped when another call comes.
    ok(run(&mut s, user(3), "c", "", 2_000));
    assert!(gone(run(&mut s, user(1), "c", "", 2_001)));
    // remove_prompt_cache drops it; again is fine, and says so.
    let removed = ok(s.remove_prompt_cache(user(3), &input(&["--prompt-cache", "c"])));
    assert!(removed.output.ends_with("/sessions/c deleted successfully"), "{}", removed.output);
    let again = ok(s.remove_prompt_cache(user(3), &input(&["--prompt-cache", "c"])));
    assert!(again.output.ends_with("not found. Nothing to delete."), "{}", again.output);
    assert!(gone(run(&mut s, user(3), "c", "", 2_002)));
    assert_eq!(err(s.new_chat(user(3), &input(&[]), 0)).status_code, 400, "new_chat needs --prompt-cache");
    match s.memory_status(0, 0).model {
        ModelState::Loaded(info) => assert_eq!((info.vocab_size, info.session_capacity), (512, 128)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_a_model_calls_say_so_and_an_upgrade_reloads_it() {
    let stable = Stable::new();
    let mut s = stable.service(ConversationLimits::default());
    assert!(matches!(s.ready(), StatusCodeRecordResult::Err(_)));
    let e = err(s.new_chat(admin(), &input(&[]), 0));
    assert_eq!((e.status_code, e.error.as_str()), (503, "model not loaded: call load_model"));
    assert_eq!(err(s.load_model(admin(), &input(&["--model", MODEL]), &FakeMeter::free())).status_code, 404);
    upload(&mut s, b"GGUF but not really a model");
    assert_eq!(err(s.load_model(admin(), &input(&["--model", MODEL]), &FakeMeter::free())).status_code, 500);
    assert_eq!(err(s.load_model(admin(), &input(&["-c", "5"]), &FakeMeter::free())).status_code, 400);
    upload(&mut s, &stories());
    ok(s.load_model(admin(), &input(&["--model", MODEL, "-c", "64"]), &FakeMeter::free()));
    set_max(&mut s, 4);
    s.set_access(admin(), AccessInputRecord { level: 1 });
    assert!(matches!(s.ready(), StatusCodeRecordResult::Ok(_)));
    ok(s.run_update(admin(), &input(&["--prompt-cache", "k", "-p", JOE]), 0, &FakeMeter::free()));

    // An upgrade: a new heap over the same stable memory.
    let mut upgraded = stable.service(ConversationLimits::default());
    assert!(upgraded.begin_reload());
    let e = err(upgraded.run_update(admin(), &input(&["-p", JOE]), 0, &FakeMeter::free()));
    assert_eq!(e.status_code, 503);
    assert!(e.error.contains("reloaded after an upgrade"), "{}", e.error);
    upgraded.reload_after_upgrade(&FakeMeter::free());
    assert!(matches!(upgraded.ready(), StatusCodeRecordResult::Ok(_)));
    assert_eq!(upgraded.get_max_tokens().max_tokens_update, 4, "settings survive");
    assert!(matches!(upgraded.check_access(user(7)), StatusCodeRecordResult::Ok(_)), "level 1 survives");
    match upgraded.memory_status(0, 0).model {
        ModelState::Loaded(info) => assert_eq!(info.session_capacity, 64, "-c survives"),
        other => panic!("{other:?}"),
    }
    let r = ok(upgraded.run_update(admin(), &input(&["--prompt-cache", "k", "-p", ""]), 0, &FakeMeter::free()));
    assert_eq!(r.n_prompt_tokens_cached, Some(0), "conversations end with an upgrade");
    assert_eq!(ask(&mut upgraded, "n", JOE, greedy(3), &FakeMeter::free).0.text, ". He li");

    // A load_model before the reload timer makes the reload a no-op.
    let mut again = stable.service(ConversationLimits::default());
    assert!(again.begin_reload());
    ok(again.load_model(admin(), &input(&["--model", MODEL]), &FakeMeter::free()));
    ok(again.run_update(admin(), &input(&["--prompt-cache", "k", "-p", JOE]), 0, &FakeMeter::free()));
    again.reload_after_upgrade(&FakeMeter::free());
    assert_eq!(again.memory_status(0, 0).conversations, 1, "the conversation was kept");

    // Without a model loaded before, nothing is reloaded.
    let mut fresh = Stable::new().service(ConversationLimits::default());
    assert!(!fresh.begin_reload());
    assert!(matches!(fresh.memory_status(0, 0).model, ModelState::NotLoaded));
}

const SYSTEM: &str = "Once upon a time, there was a little girl";

#[test]
fn a_saved_prompt_prefix_spares_new_conversations_its_ingestion_and_outlives_upgrades() {
    let question = format!("{SYSTEM} named Lily. She");
    // Without a prefix: the reference answer.
    let (_, mut plain) = loaded(0, &[]);
    let want = run(&mut plain, &["--prompt-cache", "c", "--temp", "0", "-n", "12", "-p", &question]);

    let (stable, mut s) = loaded(0, &[]);
    let ingested = run(&mut s, &["--prompt-cache", "sys", "--temp", "0", "-n", "1", "-p", SYSTEM]);
    let prefix_tokens = ingested.n_prompt_tokens.unwrap();
    let saved = ok(s.save_prompt_prefix(admin(), &input(&["--prompt-cache", "sys"])));
    assert_eq!(saved.n_prompt_tokens, Some(prefix_tokens));
    let listed = s.list_prompt_prefixes(admin()).unwrap();
    assert_eq!((listed.len(), listed[0].name.as_str(), listed[0].tokens), (1, "sys", prefix_tokens));

    // Another caller's new conversation starts from it: the same answer,
    // the prefix's tokens cached rather than evaluated.
    assert!(matches!(s.grant_access(admin(), user(1).principal), AccessListResult::Ok(_)));
    let args = ["--prompt-cache", "c", "--temp", "0", "-n", "12", "-p", &question];
    let got = ok(s.run_update(user(1), &input(&args), 1, &FakeMeter::free()));
    assert_eq!(got.output, want.output);
    assert_eq!(got.n_prompt_tokens_cached, Some(prefix_tokens));
    assert_eq!(got.n_prompt_tokens_decoded.unwrap() + prefix_tokens, want.n_prompt_tokens_decoded.unwrap());
    // A prompt that does not start with it is evaluated whole.
    let other =
        ok(s.run_update(user(1), &input(&["--prompt-cache", "d", "-n", "1", "-p", "The dog"]), 1, &FakeMeter::free()));
    assert_eq!(other.n_prompt_tokens_cached, Some(0));

    // After an upgrade (stable memory kept, conversations gone) it is still used.
    let mut upgraded = stable.service(ConversationLimits::default());
    assert!(upgraded.begin_reload());
    upgraded.reload_after_upgrade(&FakeMeter::free());
    let again = ok(upgraded.run_update(admin(), &input(&args), 1, &FakeMeter::free()));
    assert_eq!((again.output.as_str(), again.n_prompt_tokens_cached), (want.output.as_str(), Some(prefix_tokens)));

    // Removed: conversations start from nothing again.
    ok(upgraded.remove_prompt_prefix(admin(), &input(&["--prompt-cache", "sys"])));
    assert!(upgraded.list_prompt_prefixes(admin()).unwrap().is_empty());
    let args = ["--prompt-cache", "e", "--temp", "0", "-n", "12", "-p", &question];
    assert_eq!(ok(upgraded.run_update(admin(), &input(&args), 1, &FakeMeter::free())).n_prompt_tokens_cached, Some(0));
}

#[test]
fn prompt_prefixes_are_for_controllers_and_one_model_file() {
    let (_, mut s) = loaded(0, &[]);
    run(&mut s, &["--prompt-cache", "sys", "--temp", "0", "-n", "1", "-p", SYSTEM]);
    assert!(matches!(s.grant_access(admin(), user(1).principal), AccessListResult::Ok(_)));
    ok(s.run_update(user(1), &input(&["--prompt-cache", "sys", "-n", "1", "-p", SYSTEM]), 1, &FakeMeter::free()));
    // Strangers and granted users may not save, remove or list.
    for caller in [user(1), user(9)] {
        assert_eq!(err(s.save_prompt_prefix(caller, &input(&["--prompt-cache", "sys"]))).status_code, 401);
        assert_eq!(err(s.remove_prompt_prefix(caller, &input(&["--prompt-cache", "sys"]))).status_code, 401);
        assert!(s.list_prompt_prefixes(caller).is_err());
    }
    assert!(s.list_prompt_prefixes(admin()).unwrap().is_empty(), "nothing was saved");
    // Typed errors: no such conversation, no name.
    assert_eq!(err(s.save_prompt_prefix(admin(), &input(&["--prompt-cache", "none"]))).status_code, 404);
    assert_eq!(err(s.save_prompt_prefix(admin(), &input(&[]))).status_code, 400);
    ok(s.save_prompt_prefix(admin(), &input(&["--prompt-cache", "sys"])));

    // Reloading the same file keeps it; loading another file drops it.
    ok(s.load_model(admin(), &input(&["--model", MODEL]), &FakeMeter::free()));
    assert_eq!(s.list_prompt_prefixes(admin()).unwrap().len(), 1);
    let mut other = stories();
    other.extend_from_slice(&[0u8; 32]); // another file (padding after the tensor data)
    for (i, part) in other.chunks(300_000).enumerate() {
        let chunk = FileUploadInputRecord {
            filename: "models/other.gguf".into(),
            chunk: part.to_vec(),
            chunksize: part.len() as u64,
            offset: (i * 300_000) as u64,
        };
        assert!(matches!(s.file_upload_chunk(admin(), &chunk), FileUploadRecordResult::Ok(_)));
    }
    ok(s.load_model(admin(), &input(&["--model", "models/other.gguf"]), &FakeMeter::free()));
    assert!(s.list_prompt_prefixes(admin()).unwrap().is_empty(), "computed with another file");
}

#[test]
fn a_prompt_prefix_exported_in_chunks_imports_into_another_llm_checked_by_sha256() {
    use llm::api::{PrefixChunkRequest, PrefixImport};
    let (_, mut a) = loaded(0, &[]);
    run(&mut a, &["--prompt-cache", "sys", "--temp", "0", "-n", "1", "-p", SYSTEM]);
    ok(a.save_prompt_prefix(admin(), &input(&["--prompt-cache", "sys"])));
    let info = a.list_prompt_prefixes(admin()).unwrap().remove(0);
    let mut bytes = Vec::new();
    while (bytes.len() as u64) < info.bytes {
        let request = PrefixChunkRequest { name: "sys".into(), offset: bytes.len() as u64, length: 50_000 };
        let chunk = a.export_prompt_prefix(admin(), &request).unwrap();
        assert_eq!((chunk.total, chunk.sha256.as_str()), (info.bytes, info.sha256.as_str()));
        assert!(!chunk.chunk.is_empty() && chunk.chunk.len() <= 50_000);
        bytes.extend_from_slice(&chunk.chunk);
    }
    let request = PrefixChunkRequest { name: "sys".into(), offset: 0, length: 10 };
    assert!(a.export_prompt_prefix(user(9), &request).is_err(), "strangers cannot export");

    // Another LLM with the same model: upload, import, use.
    let (_, mut b) = loaded(0, &[]);
    let upload_as = |s: &mut Service<VectorMemory>, filename: &str, bytes: &[u8]| {
        let chunk = FileUploadInputRecord {
            filename: filename.into(),
            chunk: bytes.to_vec(),
            chunksize: bytes.len() as u64,
            offset: 0,
        };
        match s.file_upload_chunk(admin(), &chunk) {
            FileUploadRecordResult::Ok(r) => r.filesha256,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(upload_as(&mut b, "prefixes/sys", &bytes), info.sha256, "the file's SHA-256 is the exported one");
    let import = |name: &str, filename: &str, sha256: &str| PrefixImport {
        name: name.into(),
        filename: filename.into(),
        sha256: sha256.into(),
    };
    let wrong = "0".repeat(64);
    assert_eq!(err(b.import_prompt_prefix(admin(), &import("sys", "prefixes/sys", &wrong))).status_code, 400);
    assert_eq!(err(b.import_prompt_prefix(user(9), &import("sys", "prefixes/sys", &info.sha256))).status_code, 401);
    assert_eq!(err(b.import_prompt_prefix(admin(), &import("sys", "missing", &info.sha256))).status_code, 404);
    // Bytes that are not a saved session of this model are refused too.
    let corrupt_sha = upload_as(&mut b, "prefixes/corrupt", &bytes[..bytes.len() - 1]);
    assert_eq!(err(b.import_prompt_prefix(admin(), &import("sys", "prefixes/corrupt", &corrupt_sha))).status_code, 400);
    assert!(b.list_prompt_prefixes(admin()).unwrap().is_empty(), "nothing saved by the refused imports");

    let imported = ok(b.import_prompt_prefix(admin(), &import("sys", "prefixes/sys", &info.sha256)));
    assert_eq!(imported.n_prompt_tokens, Some(info.tokens));
    assert_eq!(b.list_prompt_prefixes(admin()).unwrap(), vec![info.clone()]);
    let question = format!("{SYSTEM} named Lily. She");
    let args = ["--prompt-cache", "c", "--temp", "0", "-n", "12", "-p", &question];
    let (want, got) = (run(&mut a, &args), run(&mut b, &args));
    assert_eq!((got.output, got.n_prompt_tokens_cached), (want.output, Some(info.tokens)));
}

#[test]
fn an_f16_kv_cache_is_a_load_model_option_kept_across_upgrades() {
    use llm::api::ModelState;
    use llm_engine::CacheType;
    let per_position = |s: &Service<VectorMemory>| match s.memory_status(0, 0).model {
        ModelState::Loaded(info) => info.kv_bytes_per_position,
        other => panic!("{other:?}"),
    };
    let (_, f32_service) = loaded(0, &[]);
    let (stable, mut s) = loaded(0, &["-ctk", "f16", "--cache-type-v", "f16"]);
    assert_eq!(per_position(&s) * 2, per_position(&f32_service), "half the bytes per position");

    // The text is the engine's with an f16 cache.
    let (tokenizer, model) = native();
    let mut session = Session::with_cache_type(&model, 128, CacheType::F16).unwrap();
    session.feed(&model, &tokenizer.encode(JOE, true, false)).unwrap();
    let mut sampler = Sampler::greedy();
    let mut want = Vec::new();
    for _ in 0..12 {
        let t = session.sample_next(&model, &mut sampler).unwrap();
        want.push(t);
        session.feed(&model, &[t]).unwrap();
    }
    let r = run(&mut s, &["--prompt-cache", "c", "--temp", "0", "-n", "12", "-p", JOE]);
    assert_eq!(r.output, tokenizer.decode(&want));

    let mut upgraded = stable.service(ConversationLimits::default());
    assert!(upgraded.begin_reload());
    upgraded.reload_after_upgrade(&FakeMeter::free());
    assert_eq!(per_position(&upgraded), per_position(&s), "still f16 after the upgrade");

    for flags in [&["-ctk", "q8_0", "-ctv", "q8_0"][..], &["-ctk", "f16"], &["-ctk", "f16", "-ctv", "f32"]] {
        let args = [&["--model", MODEL][..], flags].concat();
        assert_eq!(err(s.load_model(admin(), &input(&args), &FakeMeter::free())).status_code, 400, "{flags:?}");
    }
}
