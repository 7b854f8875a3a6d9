//! Native timing: prompt processing and generation speed.
//! Usage: bench [FILE.gguf | PRESET] [PROMPT_TOKENS] [GENERATED_TOKENS]
//! PRESET is a synthetic model name such as qwen2.5-0.5b-q8_0 (see make_synthetic).

use std::time::Instant;

use llm_engine::synthetic::{SyntheticSpec, build};
use llm_engine::{GgufFile, Model, Sampler, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let source = args.get(1).map_or("../../../shared/models/stories260Ktok512.gguf", String::as_str);
    let prompt_len: usize = args.get(2).map_or(Ok(16), |s| s.parse())?;
    let generate: usize = args.get(3).map_or(Ok(32), |s| s.parse())?;

    let start = Instant::now();
    let bytes = match SyntheticSpec::preset(source) {
        Some(spec) => build(&spec)?.to_bytes(),
        None => std::fs::read(source)?,
    };
    let file = GgufFile::parse(bytes.as_slice())?;
    let model = Model::from_file_bytes(&file, bytes)?;
    let c = model.config();
    println!(
        "{source}: {} blocks, width {}, vocab {}, loaded in {:.2?}",
        c.block_count,
        c.embedding_length,
        c.vocab_size,
        start.elapsed()
    );

    let mut session = Session::new(&model, (prompt_len + generate).min(c.context_length))?;
    let prompt: Vec<u32> = (0..prompt_len as u32).map(|i| (i * 7919 + 13) % c.vocab_size as u32).collect();
    let start = Instant::now();
    session.feed(&model, &prompt)?;
    let prompt_time = start.elapsed();
    let mut sampler = Sampler::greedy();
    let start = Instant::now();
    for _ in 0..generate {
        let token = session.sample_next(&model, &mut sampler)?;
        session.feed(&model, &[token])?;
    }
    let generate_time = start.elapsed();
    println!(
        "prompt: {prompt_len} tokens in {prompt_time:.2?} ({:.3} ms/token); generation: {generate} tokens in {generate_time:.2?} ({:.3} ms/token)",
        prompt_time.as_secs_f64() * 1e3 / prompt_len as f64,
        generate_time.as_secs_f64() * 1e3 / generate.max(1) as f64
    );
    Ok(())
}
