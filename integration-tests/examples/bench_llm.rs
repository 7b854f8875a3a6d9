//! Benchmark of our `llm` canister on the simulator: instructions to load a
//! model and per prompt / generated token, tokens per update call, and the
//! heap a loaded model takes. Models: stories260K (shipped) and a
//! random-weight model with the shapes of Qwen2.5-0.5B-Instruct in q8_0
//! (`llm_engine::synthetic`; instruction counts do not depend on the weight
//! values), uploaded through the canister in 2,000,000-byte chunks as the
//! creator does. The synthetic file is cached in `target/bench-models/`.
//!
//! Run with `scripts/bench.sh` (or `cargo run -p integration-tests --example
//! bench_llm`); prints a Markdown report to stdout, progress to stderr.
//! Instructions are the simulator's, which counts what the IC charges (see the README).

use std::path::PathBuf;
use std::time::Instant;

use candid::{Decode, Encode, Principal};
use ic_sim::Simulator;
use integration_tests::{user, wasm, wasm_dir};
use llm_engine::synthetic::{SyntheticSpec, build};
use mainer_types::llama_cpp::{
    FileUploadInputRecord, FileUploadRecordResult, InputRecord, MaxTokensRecord, OutputRecordResult, RunOutputRecord,
};

const CHUNK: usize = 2_000_000;
const MODEL_PATH: &str = "models/model.gguf";
const LIMIT: f64 = 40e9;
const STORIES_PROMPT: &str = "Once upon a time, there was a little girl named Lily. She loved to play outside \
    in the park with her friends. One day, she saw a big red ball under a tree.";

struct Figures {
    name: String,
    file_bytes: u64,
    upload_seconds: f64,
    load_instructions: u64,
    heap_after_load: u64,
    prompt_tokens: u64,
    prompt_instructions: u64,
    generated_tokens: u64,
    generated_instructions: u64,
    /// One `run_update` with no token limit: tokens generated, instructions, why it stopped.
    full_call_tokens: u64,
    full_call_instructions: u64,
    full_call_note: String,
}

fn admin() -> Principal {
    user(0)
}

fn update(sim: &mut Simulator, llm: Principal, method: &str, arg: Vec<u8>) -> (Vec<u8>, u64) {
    let outcome = sim.update_call_traced(admin(), llm, method, arg);
    let bytes = outcome.result.unwrap_or_else(|e| panic!("{method} rejected: {e:?}"));
    (bytes, outcome.instructions)
}

fn run(sim: &mut Simulator, llm: Principal, method: &str, args: &[&str]) -> (RunOutputRecord, u64) {
    let (bytes, instructions) = update(sim, llm, method, Encode!(&InputRecord::new(args.iter().copied())).unwrap());
    match Decode!(&bytes, OutputRecordResult).unwrap() {
        OutputRecordResult::Ok(r) => (r, instructions),
        OutputRecordResult::Err(r) => panic!("{method} failed: {r:?}"),
    }
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn set_max_tokens(sim: &mut Simulator, llm: Principal, max_tokens_update: u64) {
    let record = MaxTokensRecord { max_tokens_update, max_tokens_query: 0 };
    update(sim, llm, "set_max_tokens", Encode!(&record).unwrap());
}

/// Uploads, loads and measures one model; `prompt` must have more than
/// `prompt_batch` tokens.
fn measure(name: &str, gguf: &[u8], prompt: &str, prompt_batch: u64, generate_batch: u64) -> Figures {
    let mut sim = Simulator::new();
    let llm = sim.create_canister(admin());
    sim.install_canister(admin(), llm, &wasm("llm"), Encode!().unwrap()).expect("llm installs");

    let started = Instant::now();
    for (i, part) in gguf.chunks(CHUNK).enumerate() {
        let chunk = FileUploadInputRecord {
            filename: MODEL_PATH.into(),
            chunk: part.to_vec(),
            chunksize: part.len() as u64,
            offset: (i * CHUNK) as u64,
        };
        let (bytes, _) = update(&mut sim, llm, "file_upload_chunk", Encode!(&chunk).unwrap());
        assert!(matches!(Decode!(&bytes, FileUploadRecordResult).unwrap(), FileUploadRecordResult::Ok(_)));
    }
    let upload_seconds = started.elapsed().as_secs_f64();
    eprintln!("{name}: uploaded {} bytes in {upload_seconds:.1} s", gguf.len());

    let (_, load_instructions) = run(&mut sim, llm, "load_model", &["--model", MODEL_PATH]);
    let heap_after_load = sim.heap_bytes(llm);
    eprintln!("{name}: loaded with {load_instructions} instructions, heap {heap_after_load} bytes");

    // Prompt: one call that only ingests `prompt_batch` tokens (the full
    // prompt is sent each time; the part in the cache costs nothing).
    set_max_tokens(&mut sim, llm, prompt_batch);
    let call_args = |n: u64, p: &str| -> Vec<String> {
        let n = n.to_string();
        ["--prompt-cache", "bench", "--temp", "0", "-n", n.as_str(), "-p", p].map(String::from).to_vec()
    };
    run(&mut sim, llm, "new_chat", &["--prompt-cache", "bench"]);
    let ingest = call_args(1, prompt);
    let (r, prompt_instructions) = run(&mut sim, llm, "run_update", &strs(&ingest));
    let prompt_tokens = r.n_prompt_tokens_decoded.unwrap_or(0);
    assert!(!r.prompt_remaining.is_empty() && r.output.is_empty(), "the prompt needs more than one call: {r:?}");
    eprintln!("{name}: {prompt_tokens} prompt tokens, {prompt_instructions} instructions");

    // The rest of the prompt, then a warm-up generation call (the first step
    // of an answer has no token to feed), then the measured one; `-n M+1`
    // so that `M` ends each call.
    set_max_tokens(&mut sim, llm, r.n_prompt_tokens_remaining.unwrap_or(0).max(1));
    run(&mut sim, llm, "run_update", &strs(&ingest));
    set_max_tokens(&mut sim, llm, generate_batch);
    let generate = call_args(generate_batch + 1, "");
    run(&mut sim, llm, "run_update", &strs(&generate));
    let (after, generated_instructions) = run(&mut sim, llm, "run_update", &strs(&generate));
    let generated_tokens = after.n_tokens_generated.unwrap_or(0);
    eprintln!("{name}: {generated_tokens} generated tokens, {generated_instructions} instructions");

    // One call without a token limit: the instruction guard (or the context) ends it.
    set_max_tokens(&mut sim, llm, 0);
    let t = Instant::now();
    let (full, full_call_instructions) = run(&mut sim, llm, "run_update", &strs(&call_args(100_000, "")));
    let full_call_tokens = full.n_tokens_generated.unwrap_or(0);
    let full_call_note = if full.generated_eog {
        format!("answer ended ({})", if full.error.is_empty() { "end of generation" } else { full.error.as_str() })
    } else {
        "stopped by the instruction guard".to_string()
    };
    eprintln!(
        "{name}: one unlimited call: {full_call_tokens} tokens, {full_call_instructions} instructions, {:.1} s",
        t.elapsed().as_secs_f64()
    );

    Figures {
        name: name.to_string(),
        file_bytes: gguf.len() as u64,
        upload_seconds,
        load_instructions,
        heap_after_load,
        prompt_tokens,
        prompt_instructions,
        generated_tokens,
        generated_instructions,
        full_call_tokens,
        full_call_instructions,
        full_call_note,
    }
}

/// The Qwen2.5-0.5B-shaped file in `q8_0` or `q4_k_m` (llama.cpp's mix),
/// built once and kept under target/.
fn qwen_shape(kind: &str) -> Vec<u8> {
    let dir: PathBuf = wasm_dir().parent().map(|p| p.join("bench-models")).unwrap_or_else(|| "bench-models".into());
    let path = dir.join(format!("qwen2.5-0.5b-shape-{kind}.gguf"));
    if let Ok(bytes) = std::fs::read(&path) {
        return bytes;
    }
    let t = Instant::now();
    let preset = SyntheticSpec::preset(&format!("qwen2.5-0.5b-{kind}")).expect("a preset");
    let spec = SyntheticSpec { context_length: 32_768, ..preset };
    let bytes = build(&spec).expect("synthetic spec").to_bytes();
    eprintln!("built the synthetic Qwen2.5-0.5B-shaped model in {:.1} s", t.elapsed().as_secs_f64());
    std::fs::create_dir_all(&dir).ok();
    std::fs::write(&path, &bytes).ok();
    bytes
}

fn millions(n: u64) -> String {
    format!("{:.1} M", n as f64 / 1e6)
}

fn main() {
    let stories_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/stories260Ktok512.gguf");
    let stories = std::fs::read(&stories_path).expect("the stories model");
    let qwen_prompt = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n\
        Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her \
        friends. Tell me a story about what she saw under a big tree.<|im_end|>\n<|im_start|>assistant\n";
    let figures = [
        measure("stories260K (F32)", &stories, STORIES_PROMPT, 16, 8),
        measure("Qwen2.5-0.5B shape, q8_0 (synthetic)", &qwen_shape("q8_0"), qwen_prompt, 32, 8),
        measure("Qwen2.5-0.5B shape, q4_k_m layout (synthetic)", &qwen_shape("q4_k_m"), qwen_prompt, 32, 8),
    ];

    println!("## LLM canister benchmark\n");
    println!(
        "Our `llm` canister (llm_engine with wasm SIMD) on the embedded simulator. Instructions are \
         IC-weighted: the simulator counts what the IC charges (its operator cost table, system API \
         overheads and dirty pages; see the README, \"What the meter follows\"). A call stops itself at \
         36B instructions (the limit is 40B).\n"
    );
    let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
    println!("| | {} |", names.join(" | "));
    println!("|---|{}", "---:|".repeat(figures.len()));
    let row = |label: &str, f: &dyn Fn(&Figures) -> String| {
        let cells: Vec<String> = figures.iter().map(f).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    row("model file", &|f| format!("{:.1} MB", f.file_bytes as f64 / 1e6));
    row("upload in 2 MB chunks (simulator wall time)", &|f| {
        format!("{} × `file_upload_chunk`, {:.1} s", f.file_bytes.div_ceil(CHUNK as u64), f.upload_seconds)
    });
    row("`load_model` instructions", &|f| millions(f.load_instructions));
    row("heap after `load_model`", &|f| {
        format!(
            "{:.1} MB ({:.2} × file)",
            f.heap_after_load as f64 / 1e6,
            f.heap_after_load as f64 / f.file_bytes as f64
        )
    });
    row("instructions per prompt token", &|f| {
        format!("{} ({} tokens in one call)", millions(f.prompt_instructions / f.prompt_tokens), f.prompt_tokens)
    });
    row("instructions per generated token", &|f| {
        format!(
            "{} ({} tokens in one call)",
            millions(f.generated_instructions / f.generated_tokens),
            f.generated_tokens
        )
    });
    row("prompt tokens per 40B-instruction call (computed)", &|f| {
        format!("{:.0}", LIMIT / (f.prompt_instructions as f64 / f.prompt_tokens as f64))
    });
    row("generated tokens per 40B-instruction call (computed)", &|f| {
        format!("{:.0}", LIMIT / (f.generated_instructions as f64 / f.generated_tokens as f64))
    });
    row("one `run_update` with no token limit (measured)", &|f| {
        format!(
            "{} tokens, {:.1} B instructions: {}",
            f.full_call_tokens,
            f.full_call_instructions as f64 / 1e9,
            f.full_call_note
        )
    });
}
