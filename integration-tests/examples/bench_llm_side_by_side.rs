//! Side by side on the simulator: our `llm` canister and the llama.cpp
//! canister v0.7.3 (`../shared/peers/llama_cpp.wasm`), the same stories260K
//! model and prompts, the same calls: instructions per `file_upload_chunk`
//! (per MB), for `load_model`, per prompt token and per generated token
//! (the slope between calls of two sizes, so the fixed cost of a call is
//! reported apart), and the heap after `load_model`, with the ratios
//! llama.cpp / ours.
//!
//! Run with `cargo run --release -p integration-tests --example
//! bench_llm_side_by_side` (a few minutes); prints a Markdown report to
//! stdout (committed as `benchmarks/llm_side_by_side.md`), progress to stderr.

use candid::{Decode, Encode, Principal};
use ic_sim::Simulator;
use integration_tests::deploy::peer_llama_cpp_wasm;
use integration_tests::factory::stories_model;
use integration_tests::{user, wasm};
use mainer_types::llama_cpp::{
    FileUploadInputRecord, FileUploadRecordResult, InputRecord, MaxTokensRecord, OutputRecordResult, RunOutputRecord,
};

const CHUNK: usize = 2_000_000;
const MODEL_PATH: &str = "models/model.gguf";
/// Prompts of the kind the stories model was trained on (more than 40 tokens each).
const PROMPTS: [&str; 2] = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her \
     friends. One day, she saw a big red ball under a tree.",
    "Tom and Sue went to the beach with their mom. They wanted to build a big sand castle with a tall tower \
     and a deep moat, and they found a shiny shell.",
];
/// Calls of two sizes: the difference of their costs is the per-token cost.
const PROMPT_SMALL: u64 = 4;
const PROMPT_LARGE: u64 = 20;
const GENERATE_SMALL: u64 = 2;
const GENERATE_LARGE: u64 = 10;

fn admin() -> Principal {
    user(0)
}

struct Subject {
    name: &'static str,
    sim: Simulator,
    id: Principal,
}

impl Subject {
    fn new(name: &'static str, wasm: &[u8]) -> Self {
        let mut sim = Simulator::new();
        let id = sim.create_canister(admin());
        sim.install_canister(admin(), id, wasm, Encode!().unwrap()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        Subject { name, sim, id }
    }

    fn update(&mut self, method: &str, arg: Vec<u8>) -> (Vec<u8>, u64) {
        let outcome = self.sim.update_call_traced(admin(), self.id, method, arg);
        let bytes = outcome.result.unwrap_or_else(|e| panic!("{}: {method} rejected: {e:?}", self.name));
        (bytes, outcome.instructions)
    }

    fn run(&mut self, method: &str, args: &[&str]) -> (RunOutputRecord, u64) {
        let (bytes, instructions) = self.update(method, Encode!(&InputRecord::new(args.iter().copied())).unwrap());
        match Decode!(&bytes, OutputRecordResult).unwrap() {
            OutputRecordResult::Ok(r) => (r, instructions),
            OutputRecordResult::Err(r) => panic!("{}: {method} failed: {r:?}", self.name),
        }
    }

    fn set_max_tokens(&mut self, max_tokens_update: u64) {
        let record = MaxTokensRecord { max_tokens_update, max_tokens_query: 0 };
        self.update("set_max_tokens", Encode!(&record).unwrap());
    }

    /// A fresh conversation: one call evaluating `m` prompt tokens (the BOS among them).
    fn prompt_call(&mut self, cache: &str, prompt: &str, m: u64) -> u64 {
        self.set_max_tokens(m);
        self.run("new_chat", &["--prompt-cache", cache]);
        let (r, instructions) =
            self.run("run_update", &["--prompt-cache", cache, "--prompt-cache-all", "-n", "1", "-p", prompt]);
        assert!(!r.prompt_remaining.is_empty(), "{}: the prompt is longer than {m} tokens", self.name);
        instructions
    }

    /// The rest of the prompt in, then one call generating `m` tokens (`-n m+1`:
    /// `m` ends the call, every sampled token is evaluated).
    fn generate_call(&mut self, cache: &str, prompt: &str, m: u64) -> (u64, String) {
        self.set_max_tokens(0);
        self.run("run_update", &["--prompt-cache", cache, "--prompt-cache-all", "-n", "1", "-p", prompt]);
        self.set_max_tokens(m);
        let n = (m + 1).to_string();
        let args = ["--prompt-cache", cache, "--prompt-cache-all", "--temp", "0", "-n", n.as_str(), "-p", ""];
        self.run("run_update", &args); // warm-up: the first step of an answer has no token to evaluate
        let (r, instructions) = self.run("run_update", &args);
        (instructions, r.output)
    }
}

struct Figures {
    upload_per_mb: f64,
    load: u64,
    heap: u64,
    prompt_per_token: f64,
    prompt_fixed: f64,
    generate_per_token: f64,
    generate_fixed: f64,
    outputs: Vec<String>,
}

/// Per-token slope and fixed part from two calls of `small` and `large` tokens.
fn split(small: u64, large: u64, i_small: u64, i_large: u64) -> (f64, f64) {
    let slope = (i_large as f64 - i_small as f64) / (large - small) as f64;
    (slope, i_small as f64 - slope * small as f64)
}

fn measure(name: &'static str, wasm: &[u8]) -> Figures {
    let model = stories_model();
    let mut s = Subject::new(name, wasm);
    let mut upload = 0;
    for (i, part) in model.chunks(CHUNK).enumerate() {
        let chunk = FileUploadInputRecord {
            filename: MODEL_PATH.into(),
            chunk: part.to_vec(),
            chunksize: part.len() as u64,
            offset: (i * CHUNK) as u64,
        };
        let (bytes, instructions) = s.update("file_upload_chunk", Encode!(&chunk).unwrap());
        assert!(matches!(Decode!(&bytes, FileUploadRecordResult).unwrap(), FileUploadRecordResult::Ok(_)));
        upload += instructions;
    }
    let (_, load) = s.run("load_model", &["--model", MODEL_PATH]);
    let heap = s.sim.heap_bytes(s.id);
    eprintln!("{name}: upload {upload}, load_model {load} instructions, heap {heap} bytes");

    let (mut prompt, mut generate) = ((0.0, 0.0), (0.0, 0.0));
    let mut outputs = Vec::new();
    for (k, p) in PROMPTS.iter().enumerate() {
        let small = s.prompt_call(&format!("ps{k}"), p, PROMPT_SMALL);
        let large = s.prompt_call(&format!("pl{k}"), p, PROMPT_LARGE);
        let (slope, fixed) = split(PROMPT_SMALL, PROMPT_LARGE, small, large);
        prompt = (prompt.0 + slope / PROMPTS.len() as f64, prompt.1 + fixed / PROMPTS.len() as f64);
        let (small, _) = s.generate_call(&format!("ps{k}"), p, GENERATE_SMALL);
        let (large, text) = s.generate_call(&format!("pl{k}"), p, GENERATE_LARGE);
        let (slope, fixed) = split(GENERATE_SMALL, GENERATE_LARGE, small, large);
        generate = (generate.0 + slope / PROMPTS.len() as f64, generate.1 + fixed / PROMPTS.len() as f64);
        outputs.push(text);
    }
    eprintln!("{name}: prompt {prompt:?}, generate {generate:?} (per token, fixed)");
    Figures {
        upload_per_mb: upload as f64 / (model.len() as f64 / 1e6),
        load,
        heap,
        prompt_per_token: prompt.0,
        prompt_fixed: prompt.1,
        generate_per_token: generate.0,
        generate_fixed: generate.1,
        outputs,
    }
}

fn m(x: f64) -> String {
    format!("{:.2} M", x / 1e6)
}

fn main() {
    let peer = match peer_llama_cpp_wasm() {
        Ok(bytes) => bytes,
        Err(why) => {
            eprintln!("{why}");
            std::process::exit(1);
        }
    };
    let ours = measure("llm", &wasm("llm"));
    let theirs = measure("llama.cpp v0.7.3", &peer);
    assert_eq!(ours.outputs, theirs.outputs, "greedy output of the same model and prompts");

    println!("## Our `llm` and the llama.cpp canister, side by side\n");
    println!(
        "The same stories260K model (`../shared/models/stories260Ktok512.gguf`, F32), the same two prompts and \
         calls, on the embedded simulator; instructions as the simulator meters them (see the README on the \
         meter). Per-token figures are the slope between calls of {PROMPT_SMALL} and {PROMPT_LARGE} prompt \
         tokens and of {GENERATE_SMALL} and {GENERATE_LARGE} generated tokens (`max_tokens_update` sets the \
         size, `-n M+1`), averaged over the prompts; the fixed part is what a call costs besides its tokens \
         (llama.cpp reads and writes its prompt-cache file in every call). Greedy outputs agree.\n"
    );
    println!("| | ours (`llm`) | llama.cpp v0.7.3 | llama.cpp / ours |");
    println!("|---|---:|---:|---:|");
    let row = |label: &str, a: f64, b: f64, fmt: &dyn Fn(f64) -> String| {
        println!("| {label} | {} | {} | {:.1}× |", fmt(a), fmt(b), b / a);
    };
    row("`file_upload_chunk`, instructions per MB", ours.upload_per_mb, theirs.upload_per_mb, &m);
    row("`load_model` instructions", ours.load as f64, theirs.load as f64, &m);
    row("heap after `load_model`", ours.heap as f64, theirs.heap as f64, &|x| format!("{:.1} MB", x / 1e6));
    row("instructions per prompt token", ours.prompt_per_token, theirs.prompt_per_token, &m);
    row("fixed instructions of an ingesting call", ours.prompt_fixed, theirs.prompt_fixed, &m);
    row("instructions per generated token", ours.generate_per_token, theirs.generate_per_token, &m);
    row("fixed instructions of a generating call", ours.generate_fixed, theirs.generate_fixed, &m);
    println!("\nGreedy outputs of the {GENERATE_LARGE}-token calls: {:?}", theirs.outputs);
}
