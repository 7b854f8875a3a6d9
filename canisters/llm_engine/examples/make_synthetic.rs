//! Writes a synthetic model (random weights, small working tokenizer).
//! Usage: make_synthetic PRESET OUT.gguf
//! Presets: tiny-llama-T, tiny-qwen2-T, qwen2.5-0.5b-T with T = f32, f16 or q8_0.

use llm_engine::synthetic::{SyntheticSpec, build};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(preset), Some(out)) = (args.get(1), args.get(2)) else {
        return Err("usage: make_synthetic PRESET OUT.gguf".into());
    };
    let spec = SyntheticSpec::preset(preset).ok_or_else(|| format!("unknown preset {preset}"))?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    build(&spec)?.write_to(&mut file)?;
    Ok(())
}
