//! Conformance with the real llama.cpp canister: the same script of calls
//! (upload of stories260K, load_model, new_chat, prompt ingestion in steps,
//! generation in steps, remove_prompt_cache, errors) runs against our
//! `target/wasm/llm.wasm` and `../shared/peers/llama_cpp.wasm` (v0.7.3), and
//! every field a client can observe is compared: the result variant or the
//! reject, `status_code`, `output`, `conversation`, `error`,
//! `prompt_remaining`, `generated_eog` (greedy sampling, `--temp 0`). Where
//! the two must differ, the step names the fields and says why; any other
//! difference fails. Skipped, with the reason printed, when the peer wasm is
//! missing or cannot run here. `CONFORMANCE_PRINT=1` prints every observation side by side.

use candid::Principal;
use integration_tests::deploy::{TEST_MODEL_PATH, admin, runnable_llama_cpp_wasm};
use integration_tests::factory::stories_model;
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::llama_cpp::{
    FileUploadInputRecord, FileUploadRecordResult, InputRecord, MaxTokensRecord, OutputRecordResult,
    StatusCodeRecordResult, methods,
};

const JOE: &str = "Joe loves writing stories";

/// What a client can observe of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    /// "Ok", "Err" or "reject <code>".
    result: String,
    status_code: u16,
    output: String,
    conversation: String,
    error: String,
    prompt_remaining: String,
    generated_eog: bool,
}

impl Seen {
    fn field(&self, name: &str) -> String {
        match name {
            "result" => self.result.clone(),
            "status_code" => self.status_code.to_string(),
            "output" => self.output.clone(),
            "conversation" => self.conversation.clone(),
            "error" => self.error.clone(),
            "prompt_remaining" => self.prompt_remaining.clone(),
            "generated_eog" => self.generated_eog.to_string(),
            other => panic!("no field {other}"),
        }
    }
}

const FIELDS: [&str; 7] =
    ["result", "status_code", "output", "conversation", "error", "prompt_remaining", "generated_eog"];

fn seen(reply: Result<OutputRecordResult, integration_tests::Reject>) -> Seen {
    let (result, r) = match reply {
        Ok(OutputRecordResult::Ok(r)) => ("Ok".to_string(), r),
        Ok(OutputRecordResult::Err(r)) => ("Err".to_string(), r),
        Err(reject) => {
            let none = Default::default();
            return Seen { result: format!("reject {:?}", reject.code), error: reject.message, ..seen_of(none) };
        }
    };
    Seen { result, ..seen_of(r) }
}

fn seen_of(r: mainer_types::llama_cpp::RunOutputRecord) -> Seen {
    Seen {
        result: String::new(),
        status_code: r.status_code,
        output: r.output,
        conversation: r.conversation,
        error: r.error,
        prompt_remaining: r.prompt_remaining,
        generated_eog: r.generated_eog,
    }
}

/// One LLM canister under test.
struct Subject<'e> {
    env: &'e dyn TestEnv,
    id: Principal,
}

impl Subject<'_> {
    fn run(&self, who: Principal, method: &str, args: &[&str]) -> Seen {
        seen(self.env.update_one::<_, OutputRecordResult>(who, self.id, method, InputRecord::new(args.iter().copied())))
    }

    fn upload(&self, bytes: &[u8]) -> (u64, String) {
        let mut last = (0, String::new());
        for (i, part) in bytes.chunks(2_000_000).enumerate() {
            let chunk = FileUploadInputRecord {
                filename: TEST_MODEL_PATH.into(),
                chunk: part.to_vec(),
                chunksize: part.len() as u64,
                offset: (i * 2_000_000) as u64,
            };
            match self.env.update_one(admin(), self.id, methods::FILE_UPLOAD_CHUNK, chunk).unwrap() {
                FileUploadRecordResult::Ok(r) => last = (r.filesize, r.filesha256),
                FileUploadRecordResult::Err(e) => panic!("chunk {i}: {e}"),
            }
        }
        last
    }

    fn set_max_tokens(&self, max_tokens_update: u64) {
        let record = MaxTokensRecord { max_tokens_update, max_tokens_query: 0 };
        let r: StatusCodeRecordResult = self.env.update_one(admin(), self.id, methods::SET_MAX_TOKENS, record).unwrap();
        assert!(matches!(r, StatusCodeRecordResult::Ok(_)), "{r:?}");
    }
}

/// A step of the script: a call, and the fields where the two canisters
/// must differ, with why.
struct Step {
    name: &'static str,
    who: Principal,
    method: &'static str,
    args: Vec<String>,
    differ: &'static [(&'static str, &'static str)],
}

fn step(name: &'static str, method: &'static str, args: &[&str]) -> Step {
    Step { name, who: admin(), method, args: args.iter().map(|a| a.to_string()).collect(), differ: &[] }
}

impl Step {
    fn by(mut self, who: Principal) -> Self {
        self.who = who;
        self
    }
    fn differ(mut self, fields: &'static [(&'static str, &'static str)]) -> Self {
        self.differ = fields;
        self
    }
}

const MESSAGE: &str = "an informational message of our own";
const TRAPS: &str = "the llama.cpp canister traps on arguments it cannot parse; ours answers a typed Err (400)";
const INSPECTED: &str = "ours refuses a stranger's ingress in canister_inspect_message, before it pays for it; \
     the llama.cpp canister accepts the message and answers 401 (a canister caller gets 401 from both)";
const STATUS: &str = "the llama.cpp canister answers 500 for every failure; ours tells them apart (400, 503)";

/// The part of the script after the model is loaded, with `M = 4`.
fn script() -> Vec<Step> {
    let cache = |more: &[&str]| -> Vec<String> {
        let mut args = vec!["--prompt-cache", "c", "--prompt-cache-all", "--temp", "0"];
        args.extend_from_slice(more);
        args.into_iter().map(String::from).collect()
    };
    let run = |name, more: &[&str]| Step { args: cache(more), ..step(name, methods::RUN_UPDATE, &[]) };
    vec![
        step("new_chat", methods::NEW_CHAT, &["--prompt-cache", "c"]),
        // 16 prompt tokens (with the BOS), 4 evaluated per call, the full prompt resent.
        run("ingest 1", &["-n", "1", "-p", JOE]),
        run("ingest 2", &["-n", "1", "-p", JOE]),
        run("ingest 3", &["-n", "1", "-p", JOE]),
        run("ingest 4 (the last 4 tokens: M ends the call, nothing sampled)", &["-n", "1", "-p", JOE]),
        run("generate -n 5 (M ends the call)", &["-n", "5", "-p", ""]),
        run("generate -n 5 again", &["-n", "5", "-p", ""]),
        run("generate -n 3 (-n ends the call, the 3rd not kept)", &["-n", "3", "-p", ""]),
        run("generate -n 3 again (the 3rd comes again)", &["-n", "3", "-p", ""]),
        run("the full prompt again (reuses the cache, drops the answer)", &["-n", "1", "-p", JOE]),
        run("-sp prints special tokens", &["-sp", "-n", "2", "-p", ""]),
        step("remove_prompt_cache", methods::REMOVE_PROMPT_CACHE, &["--prompt-cache", "c"]),
        step("remove_prompt_cache again", methods::REMOVE_PROMPT_CACHE, &["--prompt-cache", "c"]),
        step(
            "an unknown cache starts from the BOS",
            methods::RUN_UPDATE,
            &["--prompt-cache", "zz", "--temp", "0", "-n", "3", "-p", ""],
        ),
        step("no --prompt-cache: a call of its own", methods::RUN_UPDATE, &["--temp", "0", "-n", "3", "-p", JOE]),
        step(
            "a prompt ending in </s>",
            methods::RUN_UPDATE,
            &["--prompt-cache", "e", "--temp", "0", "-n", "2", "-p", "Joe</s>"],
        ),
        step("a non-controller", methods::RUN_UPDATE, &["--prompt-cache", "c", "-p", JOE]).by(user(9)).differ(&[
            ("result", INSPECTED),
            ("status_code", INSPECTED),
            ("error", INSPECTED),
        ]),
        step("new_chat without --prompt-cache", methods::NEW_CHAT, &[])
            .differ(&[("status_code", STATUS), ("error", "each says what is missing in its own words")]),
        step("an unknown flag", methods::RUN_UPDATE, &["--no-such-flag", "-p", JOE]).differ(&[
            ("result", TRAPS),
            ("status_code", TRAPS),
            ("error", TRAPS),
        ]),
    ]
}

#[test]
fn our_llm_and_the_llama_cpp_canister_answer_the_same_script_alike() {
    let env = new_env();
    let peer = match runnable_llama_cpp_wasm(&*env) {
        Ok(bytes) => bytes,
        Err(why) => return println!("{why}"),
    };
    let print = std::env::var("CONFORMANCE_PRINT").is_ok_and(|v| v == "1");
    let install = |bytes: &[u8]| {
        let id = env.create_canister(admin());
        env.install(admin(), id, bytes, candid::encode_args(()).unwrap())
            .unwrap_or_else(|e| panic!("the LLM wasm installs: {e:?}"));
        Subject { env: &*env, id }
    };
    let ours = install(&wasm("llm"));
    let theirs = install(&peer);
    let model = stories_model();
    let mut unexplained = Vec::new();
    let mut compare = |name: &str, a: &Seen, b: &Seen, differ: &[(&str, &str)]| {
        if print {
            println!("== {name}\n  ours:      {a:?}\n  llama.cpp: {b:?}");
        }
        for field in FIELDS {
            let (x, y) = (a.field(field), b.field(field));
            match differ.iter().find(|(f, _)| *f == field) {
                Some((_, why)) if x != y => println!("{name}: {field} differs as expected ({why})"),
                Some(_) => {}
                None if x != y => unexplained.push(format!("{name}: {field}: ours {x:?}, llama.cpp {y:?}")),
                None => {}
            }
        }
    };

    // Before anything is loaded.
    for s in [&ours, &theirs] {
        let ready: StatusCodeRecordResult = env.query_one(admin(), s.id, methods::READY, ()).unwrap();
        assert!(matches!(ready, StatusCodeRecordResult::Err(_)), "{ready:?}");
    }
    let before = [&ours, &theirs].map(|s| s.run(admin(), methods::RUN_UPDATE, &["--prompt-cache", "c", "-p", JOE]));
    compare("run_update before load_model", &before[0], &before[1], &[("status_code", STATUS), ("error", MESSAGE)]);

    // Upload and load: the same file, the same hash.
    let uploaded = [&ours, &theirs].map(|s| s.upload(&model));
    assert_eq!(uploaded[0], uploaded[1], "file_upload_chunk: size and SHA-256 of the file");
    let loaded = [&ours, &theirs].map(|s| s.run(admin(), methods::LOAD_MODEL, &["--model", TEST_MODEL_PATH]));
    compare("load_model", &loaded[0], &loaded[1], &[("output", MESSAGE)]);
    for s in [&ours, &theirs] {
        s.set_max_tokens(4);
    }

    for step in script() {
        let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
        let [a, b] = [&ours, &theirs].map(|s| s.run(step.who, step.method, &args));
        compare(step.name, &a, &b, step.differ);
    }

    // No per-call cap: the llama.cpp canister's README answer in one call.
    for s in [&ours, &theirs] {
        s.set_max_tokens(0);
    }
    let one = ["--prompt-cache", "one", "--temp", "0", "-n", "30", "-p", JOE];
    let [a, b] = [&ours, &theirs].map(|s| s.run(admin(), methods::RUN_UPDATE, &one));
    compare("one call, -n 30", &a, &b, &[]);
    assert_eq!(b.output, ". He liked to play with his toys and run around the house. He liked to play with his");

    assert!(unexplained.is_empty(), "differences nobody explained:\n{}", unexplained.join("\n"));
}
