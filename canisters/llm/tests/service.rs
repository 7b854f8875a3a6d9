//! The canister's logic, natively: the llama.cpp protocol on the real
//! stories260K model, its splits over calls, limits, access and upgrades.

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
use mainer_types::llama_cpp::{
    AccessInputRecord, FileUploadInputRecord, FileUploadRecordResult, InputRecord, MaxTokensRecord, OutputRecordResult,
    RunOutputRecord, StatusCodeRecordResult,
};

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
    slots: Vec<VectorMemory>,
}

impl Stable {
    fn new() -> Self {
        Stable {
            directory: VectorMemory::default(),
            settings: VectorMemory::default(),
            slots: (0..MAX_FILES).map(|_| VectorMemory::default()).collect(),
        }
    }

    /// A service over these memories, as after an install or an upgrade.
    fn service(&self, limits: ConversationLimits) -> Service<VectorMemory> {
        let memories = Memories {
            directory: self.directory.clone(),
            settings: self.settings.clone(),
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

/// What a client records of one answer.
#[derive(Debug, Default)]
struct Run {
    text: String,
    ingest_calls: usize,
    generate_calls: usize,
    last: RunOutputRecord,
}

/// Drives the protocol like the mAIner client: `prompt_remaining` goes back
/// as the next prompt, then empty prompts until `generated_eog`.
/// `resend_full`: send the whole prompt each time instead (llama.cpp style).
fn drive(
    s: &mut Service<VectorMemory>,
    who: Caller,
    cache: &str,
    prompt: &str,
    extra: &[&str],
    resend_full: bool,
    meter: &dyn Meter,
) -> Run {
    let mut run = Run::default();
    let call = |s: &mut Service<VectorMemory>, p: &str| {
        let mut args = vec!["--prompt-cache", cache];
        args.extend_from_slice(extra);
        args.extend(["-p", p]);
        ok(s.run_update(who, &input(&args), 1, meter))
    };
    let mut remaining = prompt.to_string();
    loop {
        let r = call(s, if resend_full { prompt } else { &remaining });
        run.ingest_calls += 1;
        run.text.push_str(&r.output);
        if r.prompt_remaining.is_empty() {
            run.last = r;
            break;
        }
        assert!(r.output.is_empty() && !r.generated_eog);
        assert!(r.prompt_remaining.len() < remaining.len(), "progress: {:?} after {remaining:?}", r.prompt_remaining);
        remaining = r.prompt_remaining;
        assert!(run.ingest_calls < 200);
    }
    while !run.last.generated_eog {
        let r = call(s, "");
        run.generate_calls += 1;
        run.text.push_str(&r.output);
        run.last = r;
        assert!(run.generate_calls < 500, "never ends");
    }
    run
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
        ok(s.new_chat(admin(), &input(&["--prompt-cache", "c"]), 0));
        let run = drive(&mut s, admin(), "c", JOE, &["-n", "3", "--temp", "0"], false, &FakeMeter::free());
        assert_eq!(run.text, ". He li", "max_tokens_update {max}");
        let r = &run.last;
        assert_eq!((r.n_prompt_tokens, r.n_tokens_generated), (Some(16), Some(3)));
        assert_eq!(r.conversation, " Joe loves writing stories. He li");
        if max == 4 {
            // 16 prompt tokens: BOS + 4, 4, 4, then 3 + one generated; then 2.
            assert_eq!((run.ingest_calls, run.generate_calls), (4, 1));
        }
        if max == 0 {
            assert_eq!((run.ingest_calls, run.generate_calls), (1, 0), "everything in one call");
        }
    }
}

#[test]
fn llama_cpp_clients_may_resend_the_whole_prompt() {
    let (_, mut s) = loaded(5, &[]);
    let run = drive(&mut s, admin(), "c", JOE, &["-n", "3", "--temp", "0"], true, &FakeMeter::free());
    assert_eq!(run.text, ". He li");
}

#[test]
fn the_first_call_reports_counts_and_decoded_remaining_text() {
    let (_, mut s) = loaded(4, &[]);
    let r = ok(s.run_update(admin(), &input(&["-n", "3", "--temp", "0", "-p", JOE]), 1, &FakeMeter::free()));
    assert_eq!(r.n_prompt_tokens, Some(16));
    assert_eq!(
        (r.n_prompt_tokens_cached, r.n_prompt_tokens_decoded, r.n_prompt_tokens_remaining),
        (Some(0), Some(5), Some(11))
    );
    assert!(JOE.ends_with(&r.prompt_remaining), "{:?} is the rest of the prompt", r.prompt_remaining);
    assert_eq!(format!("{}{}", r.conversation, r.prompt_remaining), format!(" {JOE}"));
    let r = ok(s.run_update(admin(), &input(&["-p", &r.prompt_remaining]), 1, &FakeMeter::free()));
    assert_eq!((r.n_prompt_tokens_cached, r.n_prompt_tokens_decoded), (Some(5), Some(4)));
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
        let run = drive(&mut s, admin(), "c", prompt, &["-n", "60", "--temp", "0"], false, &FakeMeter::free());
        assert_eq!(run.text, expected_text, "max_tokens_update {max}");
    }
}

#[test]
fn seeded_sampling_is_reproducible_across_splits() {
    let (tokenizer, _) = native();
    let prompt = "The little dog";
    let config = SamplerConfig { temperature: 0.9, top_k: 40, top_p: 0.95, seed: 1234, ..SamplerConfig::default() };
    let expected = tokenizer.decode(&native_generate(&tokenizer.encode(prompt, true, false), 40, config));
    let sampled = |max: u64, seed: &str| {
        let (_, mut s) = loaded(max, &[]);
        let args = ["-n", "40", "--temp", "0.9", "--top-k", "40", "--top-p", "0.95", "--seed", seed];
        drive(&mut s, admin(), "c", prompt, &args, false, &FakeMeter::free()).text
    };
    assert_eq!(sampled(0, "1234"), expected);
    assert_eq!(sampled(3, "1234"), expected);
    assert_eq!(sampled(1, "1234"), expected);
    assert_ne!(sampled(3, "99"), expected, "another seed, another story");
}

#[test]
fn the_instruction_guard_stops_calls_early_without_changing_the_text() {
    let (_, mut s) = loaded(0, &[]);
    // Every read of the counter costs 1,000: a call may read it a few dozen times.
    s.instruction_limit = 12_000;
    let fresh = || FakeMeter { now: Cell::new(0), step: 1_000 };
    let mut remaining = JOE.to_string();
    let mut calls = 0;
    let mut text = String::new();
    let mut eog = false;
    while !eog {
        let p = if calls == 0 || !remaining.is_empty() { remaining.clone() } else { String::new() };
        let m = fresh();
        let r = ok(s.run_update(admin(), &input(&["-n", "12", "--temp", "0", "-p", &p]), 1, &m));
        text.push_str(&r.output);
        remaining = r.prompt_remaining;
        eog = r.generated_eog;
        calls += 1;
        assert!(calls < 100);
    }
    assert!(calls >= 4, "the guard split the work: {calls} calls");
    let (_, mut unguarded) = loaded(0, &[]);
    let whole = drive(&mut unguarded, admin(), "c", JOE, &["-n", "12", "--temp", "0"], false, &FakeMeter::free());
    assert_eq!(text, whole.text);
}

#[test]
fn a_full_context_ends_the_answer_with_an_error_and_long_prompts_are_refused() {
    let (_, mut s) = loaded(0, &["-c", "20"]);
    let run = drive(&mut s, admin(), "c", JOE, &["--temp", "0"], false, &FakeMeter::free());
    assert!(run.last.generated_eog);
    assert!(run.last.error.contains("context full"), "{:?}", run.last.error);
    assert_eq!(run.last.n_tokens_generated, Some(5), "16 prompt tokens + 4 fed + 1 sampled");
    let again = ok(s.run_update(admin(), &input(&["--prompt-cache", "c", "-p", ""]), 1, &FakeMeter::free()));
    assert!(again.generated_eog && again.output.is_empty());
    let long = "word ".repeat(30);
    let e = err(s.run_update(admin(), &input(&["--prompt-cache", "d", "-p", &long]), 1, &FakeMeter::free()));
    assert_eq!(e.status_code, 413);
    assert!(e.error.contains("context full"), "{}", e.error);
}

#[test]
fn another_prompt_mid_ingestion_starts_over_and_a_second_turn_continues_the_conversation() {
    let (tokenizer, _) = native();
    let (_, mut s) = loaded(4, &[]);
    let first = ok(s.run_update(admin(), &input(&["-p", "The cat sat on the mat and"]), 1, &FakeMeter::free()));
    assert!(!first.prompt_remaining.is_empty());
    let run = drive(&mut s, admin(), "", JOE, &["-n", "3", "--temp", "0"], false, &FakeMeter::free());
    assert_eq!(run.text, ". He li", "the abandoned turn left nothing behind");

    // A second turn: the answer's last token, then the new text, without BOS.
    let second = drive(&mut s, admin(), "", " And then", &["-n", "8", "--temp", "0"], false, &FakeMeter::free());
    let history = tokenizer.encode(JOE, true, false);
    let answer = native_generate(&history, 3, SamplerConfig::greedy());
    let mut all = history.clone();
    all.extend(&answer);
    all.extend(tokenizer.encode(" And then", false, false));
    let expected = tokenizer.decode(&native_generate(&all, 8, SamplerConfig::greedy()));
    assert_eq!(second.text, expected);
}

#[test]
fn multi_byte_characters_stay_whole_in_prompt_remaining() {
    let (_, mut s) = loaded(1, &[]);
    let prompt = "Zoë ate crème brûlée";
    let mut remaining = prompt.to_string();
    loop {
        let r = ok(s.run_update(admin(), &input(&["-n", "2", "--temp", "0", "-p", &remaining]), 1, &FakeMeter::free()));
        assert!(!r.prompt_remaining.contains('\u{fffd}'), "{:?}", r.prompt_remaining);
        if r.prompt_remaining.is_empty() {
            break;
        }
        assert!(prompt.ends_with(&r.prompt_remaining));
        remaining = r.prompt_remaining;
    }
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
    assert_eq!(ok(run(&mut s, user(1), "c", "", 30)).n_prompt_tokens_cached, Some(18), "user 1's cache is intact");
    // A third conversation drops the least recently used (user 2's).
    ok(run(&mut s, user(3), "c", "A bird", 40));
    assert_eq!(err(run(&mut s, user(2), "c", "", 50)).status_code, 400);
    // Idle for longer than max_idle_ns: dropped when another call comes.
    ok(run(&mut s, user(3), "c", "", 2_000));
    assert_eq!(err(run(&mut s, user(1), "c", "", 2_001)).status_code, 400);
    // remove_prompt_cache drops it; again is fine.
    ok(s.remove_prompt_cache(user(3), &input(&["--prompt-cache", "c"])));
    ok(s.remove_prompt_cache(user(3), &input(&["--prompt-cache", "c"])));
    assert_eq!(err(run(&mut s, user(3), "c", "", 2_002)).status_code, 400);
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
    ok(s.run_update(admin(), &input(&["-p", JOE]), 0, &FakeMeter::free()));

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
    let e = err(upgraded.run_update(admin(), &input(&["-p", ""]), 0, &FakeMeter::free()));
    assert_eq!(e.status_code, 400, "conversations end with an upgrade");
    let run = drive(&mut upgraded, admin(), "n", JOE, &["-n", "3", "--temp", "0"], false, &FakeMeter::free());
    assert_eq!(run.text, ". He li");

    // A load_model before the reload timer makes the reload a no-op.
    let mut again = stable.service(ConversationLimits::default());
    assert!(again.begin_reload());
    ok(again.load_model(admin(), &input(&["--model", MODEL]), &FakeMeter::free()));
    ok(again.run_update(admin(), &input(&["-p", JOE]), 0, &FakeMeter::free()));
    again.reload_after_upgrade(&FakeMeter::free());
    assert_eq!(again.memory_status(0, 0).conversations, 1, "the conversation was kept");

    // Without a model loaded before, nothing is reloaded.
    let mut fresh = Stable::new().service(ConversationLimits::default());
    assert!(!fresh.begin_reload());
    assert!(matches!(fresh.memory_status(0, 0).model, ModelState::NotLoaded));
}

#[test]
fn abandoning_a_turn_after_a_finished_prompt_keeps_the_conversation_usable() {
    let (tokenizer, _) = native();
    let (_, mut s) = loaded(5, &[]);
    // 16 tokens: BOS + 5, 5, 5: the prompt is in, nothing generated yet.
    let mut remaining = JOE.to_string();
    while !remaining.is_empty() {
        let r = ok(s.run_update(admin(), &input(&["-n", "4", "--temp", "0", "-p", &remaining]), 1, &FakeMeter::free()));
        assert!(r.output.is_empty(), "the budget ends with the prompt");
        remaining = r.prompt_remaining;
    }
    let r = ok(s.run_update(admin(), &input(&["-p", "The cat sat on the mat"]), 1, &FakeMeter::free()));
    assert!(!r.prompt_remaining.is_empty(), "a second turn, not finished");
    let run = drive(&mut s, admin(), "", " And then", &["-n", "4", "--temp", "0"], false, &FakeMeter::free());
    let mut tokens = tokenizer.encode(JOE, true, false);
    tokens.extend(tokenizer.encode(" And then", false, false));
    assert_eq!(run.text, tokenizer.decode(&native_generate(&tokens, 4, SamplerConfig::greedy())));
}
