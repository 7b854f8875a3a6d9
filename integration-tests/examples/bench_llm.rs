//! Benchmark of our `llm` canister on the simulator: instructions to load a
//! model and per prompt / generated token, tokens per update call, and the
//! heap a loaded model takes. Models: stories260K (shipped) and a
//! random-weight model with the shapes of Qwen2.5-0.5B-Instruct in q8_0
//! (`llm_engine::synthetic`; instruction counts do not depend on the weight
//! values), uploaded through the canister in 2,000,000-byte chunks as the
//! creator does. The synthetic file is cached in `target/bench-models/`.
//!
//! For the Qwen-shaped models also by context position (16, 256, 1,000,
//! 4,000; `BENCH_LLM_POSITIONS=16,256` for fewer): a conversation whose
//! prompt is the first P tokens of a long text, re-sent with growing P so
//! that the canister's prompt cache ingests each part once; per position the
//! cost of the last ingestion call and of 8 generated tokens.
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
use llm_engine::{GgufFile, Tokenizer};
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
    positions: Vec<AtPosition>,
}

/// Costs with a conversation at about one of the positions.
struct AtPosition {
    /// The ingestion call with the most tokens on the way to the position: tokens, instructions.
    ingested_tokens: u64,
    ingested_instructions: u64,
    generated_tokens: u64,
    generated_instructions: u64,
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
fn measure(
    name: &str,
    gguf: &[u8],
    prompt: &str,
    prompt_batch: u64,
    generate_batch: u64,
    positions: &[u64],
) -> Figures {
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

    let positions = at_positions(&mut sim, llm, name, gguf, positions);

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
        positions,
    }
}

/// A text of more than `tokens` tokens for the model's tokenizer, cut
/// into prefixes of about each of `positions` tokens.
fn prompt_prefixes(gguf: &[u8], positions: &[u64]) -> Vec<String> {
    let file = GgufFile::parse(gguf).expect("a GGUF file");
    let tokenizer = Tokenizer::from_gguf(&file).expect("a tokenizer");
    let sentence = "Lily went to the park with her mother, and under the big old tree she found a small red box \
        with a note that said: open me when the sun goes down. She waited all day. ";
    let longest = positions.iter().copied().max().unwrap_or(0) as usize;
    let mut text = String::new();
    let tokens = loop {
        text.push_str(sentence);
        let tokens = tokenizer.encode(&text, true, false);
        if tokens.len() > longest {
            break tokens;
        }
    };
    positions.iter().map(|&p| tokenizer.decode(&tokens[..p as usize])).collect()
}

fn at_positions(sim: &mut Simulator, llm: Principal, name: &str, gguf: &[u8], positions: &[u64]) -> Vec<AtPosition> {
    let prefixes = prompt_prefixes(gguf, positions);
    let args = |n: u64, p: &str| -> Vec<String> {
        let n = n.to_string();
        ["--prompt-cache", "positions", "--temp", "0", "-n", n.as_str(), "-p", p].map(String::from).to_vec()
    };
    run(sim, llm, "new_chat", &["--prompt-cache", "positions"]);
    let mut out = Vec::new();
    for (&position, prefix) in positions.iter().zip(&prefixes) {
        // Ingest (the cache keeps the common prefix of the previous prompt).
        set_max_tokens(sim, llm, 0);
        let (mut ingested_tokens, mut ingested_instructions) = (0, 0);
        loop {
            let (r, instructions) = run(sim, llm, "run_update", &strs(&args(1, prefix)));
            let decoded = r.n_prompt_tokens_decoded.unwrap_or(0);
            if decoded >= ingested_tokens {
                (ingested_tokens, ingested_instructions) = (decoded, instructions);
            }
            if r.prompt_remaining.is_empty() {
                break;
            }
        }
        // A warm-up call (its first step feeds nothing), then the measured one.
        set_max_tokens(sim, llm, 8);
        run(sim, llm, "run_update", &strs(&args(9, "")));
        let (r, generated_instructions) = run(sim, llm, "run_update", &strs(&args(9, "")));
        let generated_tokens = r.n_tokens_generated.unwrap_or(0);
        eprintln!(
            "{name}: at position {position}: ingested {ingested_tokens} tokens with {ingested_instructions} \
             instructions, generated {generated_tokens} with {generated_instructions}"
        );
        out.push(AtPosition { ingested_tokens, ingested_instructions, generated_tokens, generated_instructions });
    }
    out
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
    let positions: Vec<u64> = std::env::var("BENCH_LLM_POSITIONS")
        .map(|v| v.split(',').map(|p| p.trim().parse().expect("a position")).collect())
        .unwrap_or_else(|_| vec![16, 256, 1000, 4000]);
    let figures = [
        measure("stories260K (F32)", &stories, STORIES_PROMPT, 16, 8, &[]),
        measure("Qwen2.5-0.5B shape, q8_0 (synthetic)", &qwen_shape("q8_0"), qwen_prompt, 32, 8, &positions),
        measure("Qwen2.5-0.5B shape, q4_k_m layout (synthetic)", &qwen_shape("q4_k_m"), qwen_prompt, 32, 8, &positions),
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
    // By context position, for the models measured there.
    let measured: Vec<&Figures> = figures.iter().filter(|f| !f.positions.is_empty()).collect();
    println!("\n### By context position\n");
    println!(
        "A conversation whose prompt is the first P tokens of a long text, re-sent with growing P (the prompt \
         cache keeps the common prefix, so each part is ingested once). Prompt: the ingesting call with the \
         most tokens on the way to P (the canister ingests in growing batches and stops at its guard); \
         generated: 8 tokens in one call right after P. Per 40B call is computed from the per-token cost.\n"
    );
    let heads: Vec<String> =
        measured.iter().flat_map(|f| [format!("{}: prompt", f.name), format!("{}: generated", f.name)]).collect();
    println!("| position | {} |", heads.join(" | "));
    println!("|---:|{}", "---:|".repeat(heads.len()));
    for (i, &position) in positions.iter().enumerate() {
        let cells: Vec<String> = measured
            .iter()
            .flat_map(|f| {
                let p = &f.positions[i];
                let prompt = p.ingested_instructions as f64 / p.ingested_tokens.max(1) as f64;
                let generated = p.generated_instructions as f64 / p.generated_tokens.max(1) as f64;
                [
                    format!(
                        "**{:.0}** per call ({}/token, {} tokens in the call)",
                        LIMIT / prompt,
                        millions(prompt as u64),
                        p.ingested_tokens
                    ),
                    format!("**{:.0}** per call ({}/token)", LIMIT / generated, millions(generated as u64)),
                ]
            })
            .collect();
        println!("| {position} | {} |", cells.join(" | "));
    }
}
