//! Synthetic models exercise what stories260K does not: qwen2 (biases, split-half
//! RoPE, tied embeddings), byte-level BPE, F16 and Q8_0 weights.

use llm_engine::synthetic::{Layout, SyntheticSpec, build};
use llm_engine::{Architecture, Error, GgufFile, Model, Sampler, Session, TensorType, Tokenizer};

fn load(spec: &SyntheticSpec) -> (Tokenizer, Model) {
    let bytes = build(spec).unwrap().to_bytes();
    let file = GgufFile::parse(bytes.as_slice()).unwrap();
    let tokenizer = Tokenizer::from_gguf(&file).unwrap();
    let model = Model::from_file_bytes(&file, bytes).unwrap();
    (tokenizer, model)
}

fn generate(model: &Model, prompt: &[u32], chunk: usize, n: usize) -> (Vec<u32>, Vec<f32>) {
    let mut session = Session::new(model, model.config().context_length).unwrap();
    for c in prompt.chunks(chunk) {
        session.feed(model, c).unwrap();
    }
    let mut sampler = Sampler::greedy();
    let mut out = Vec::new();
    for _ in 0..n {
        let t = session.sample_next(model, &mut sampler).unwrap();
        out.push(t);
        session.feed(model, &[t]).unwrap();
    }
    (out, session.logits(model).unwrap().to_vec())
}

#[test]
fn every_architecture_and_weight_type_runs_and_batches_exactly() {
    for arch in [Architecture::Llama, Architecture::Qwen2] {
        for ty in [TensorType::F32, TensorType::F16, TensorType::Q8_0] {
            let spec = SyntheticSpec { weight_type: ty, ..SyntheticSpec::tiny(arch) };
            let (tokenizer, model) = load(&spec);
            assert_eq!(model.config().architecture, arch);
            assert_eq!(model.has_tied_embeddings(), arch == Architecture::Qwen2);
            let prompt = tokenizer.encode("Once upon a time, there was a little girl", true, false);
            let (tokens, logits) = generate(&model, &prompt, prompt.len(), 12);
            assert!(logits.iter().all(|l| l.is_finite()));
            assert_eq!(generate(&model, &prompt, 3, 12), (tokens.clone(), logits), "{arch:?} {ty}");
        }
    }
}

#[test]
fn quantized_weights_stay_close_to_f32() {
    let spec = SyntheticSpec::tiny(Architecture::Qwen2);
    let (tokenizer, f32_model) = load(&spec);
    let prompt = tokenizer.encode("She loved to play outside", true, false);
    let (_, reference) = generate(&f32_model, &prompt, 100, 0);
    for ty in [TensorType::F16, TensorType::Q8_0] {
        let (_, model) = load(&SyntheticSpec { weight_type: ty, ..spec.clone() });
        let (_, logits) = generate(&model, &prompt, 100, 0);
        let max_diff = reference.iter().zip(&logits).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let scale = reference.iter().map(|a| a.abs()).fold(0f32, f32::max);
        assert!(max_diff < 0.05 * scale, "{ty}: {max_diff} vs scale {scale}");
    }
}

#[test]
fn byte_level_tokenizer_round_trips_and_parses_specials() {
    let (tokenizer, _) = load(&SyntheticSpec::tiny(Architecture::Qwen2));
    let text = "Once upon a time, Lily's café had 1234 naïve birds!\n\n  Done.";
    let tokens = tokenizer.encode(text, true, false);
    assert!(tokens.len() < text.len(), "merges were used");
    assert_eq!(tokenizer.decode(&tokens), text);
    // No BOS for qwen2 (add_bos_token = false).
    assert_eq!(tokenizer.encode("a", true, false).len(), 1);

    let im_start = tokenizer.token_id("<|im_start|>").unwrap();
    let im_end = tokenizer.token_id("<|im_end|>").unwrap();
    let chat = tokenizer.encode("<|im_start|>user\nHi<|im_end|>", false, true);
    assert_eq!(chat[0], im_start);
    assert_eq!(*chat.last().unwrap(), im_end);
    assert_eq!(tokenizer.decode(&chat), "user\nHi");
    assert!(tokenizer.is_end_of_generation(im_end));
    assert!(tokenizer.is_end_of_generation(tokenizer.token_id("<|endoftext|>").unwrap()));
    // Without parse_special the text is spelled out.
    let plain = tokenizer.encode("<|im_start|>", false, false);
    assert!(!plain.contains(&im_start));
    assert_eq!(tokenizer.decode(&plain), "<|im_start|>");
}

#[test]
fn model_errors_are_typed() {
    let spec = SyntheticSpec::tiny(Architecture::Llama);
    let bytes = build(&spec).unwrap().to_bytes();
    let file = GgufFile::parse(bytes.as_slice()).unwrap();

    // Rebuild the file without one tensor, or with one tensor changed.
    let rewrite = |skip: &str, replace: Option<(&str, &[u64], TensorType, Vec<u8>)>| {
        let mut w = llm_engine::GgufWriter::new();
        for (k, v) in file.metadata() {
            w.metadata(k, v.clone());
        }
        for t in file.tensors() {
            if t.name == skip {
                continue;
            }
            match &replace {
                Some((name, dims, ty, data)) if *name == t.name => w.tensor(&t.name, dims, *ty, data.clone()),
                _ => w.tensor(&t.name, &t.dims, t.ty, file.read_tensor_data(bytes.as_slice(), t).unwrap()),
            }
            .unwrap();
        }
        let out = w.to_bytes();
        let f = GgufFile::parse(out.as_slice()).unwrap();
        Model::from_file_bytes(&f, out).err().unwrap()
    };
    assert_eq!(rewrite("blk.1.ffn_up.weight", None), Error::MissingTensor("blk.1.ffn_up.weight".into()));
    assert!(matches!(
        rewrite("", Some(("blk.0.attn_q.weight", &[64, 32], TensorType::F32, vec![0; 64 * 32 * 4]))),
        Error::WrongTensorShape { .. }
    ));
    assert!(matches!(
        rewrite("", Some(("blk.0.attn_q.weight", &[64, 64], TensorType::BF16, vec![0; 2 * 64 * 64]))),
        Error::UnsupportedTensorType { type_name: "BF16", .. }
    ));

    let mut w = llm_engine::GgufWriter::new();
    w.metadata("general.architecture", llm_engine::Value::String("mamba".into()));
    let out = w.to_bytes();
    let f = GgufFile::parse(out.as_slice()).unwrap();
    assert_eq!(Model::from_file_bytes(&f, out.clone()).err(), Some(Error::UnsupportedArchitecture("mamba".into())));
    assert!(matches!(Model::from_file_bytes(&file, out), Err(Error::InvalidArgument(_))));
}

#[test]
fn q4_k_m_layout_types_tensors_as_llama_cpp_and_runs_end_to_end() {
    // Qwen2.5-0.5B's width (896: not whole 256-element super-blocks, hence
    // the Q5_0 / Q8_0 fallbacks) with a smaller feed-forward (512: whole
    // super-blocks, so ffn_down keeps K types), three blocks (the last
    // gets more bits) and a small vocabulary, to stay quick.
    let spec = SyntheticSpec {
        block_count: 3,
        vocab_size: 600,
        feed_forward_length: 512,
        context_length: 64,
        ..SyntheticSpec::preset("qwen2.5-0.5b-q4_k_m").unwrap()
    };
    let bytes = build(&spec).unwrap().to_bytes();
    let file = GgufFile::parse(bytes.as_slice()).unwrap();
    let ty = |name: &str| file.tensor(name).unwrap().ty;
    use TensorType::*;
    assert_eq!(ty("token_embd.weight"), Q8_0);
    for i in 0..3 {
        for t in ["attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"] {
            assert_eq!(ty(&format!("blk.{i}.{t}.weight")), Q5_0, "blk.{i}.{t}");
        }
        assert_eq!(ty(&format!("blk.{i}.attn_v.weight")), if i == 2 { Q8_0 } else { Q5_0 });
        assert_eq!(ty(&format!("blk.{i}.ffn_down.weight")), if i == 2 { Q6_K } else { Q4_K });
        assert_eq!(ty(&format!("blk.{i}.attn_norm.weight")), F32);
    }

    let (tokenizer, model) = load(&spec);
    let prompt = tokenizer.encode("Once upon a time", true, false);
    let (tokens, logits) = generate(&model, &prompt, prompt.len(), 4);
    assert!(logits.iter().all(|l| l.is_finite()));
    assert_eq!(generate(&model, &prompt, 2, 4), (tokens, logits.clone()), "batching changes nothing");

    // The same random weights in F32: the mix only adds quantization error.
    let (_, f32_model) = load(&SyntheticSpec { layout: Layout::Uniform, weight_type: F32, ..spec });
    let (_, reference) = generate(&f32_model, &prompt, prompt.len(), 0);
    let (_, first) = generate(&model, &prompt, prompt.len(), 0);
    let max_diff = reference.iter().zip(&first).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let scale = reference.iter().map(|a| a.abs()).fold(0f32, f32::max);
    assert!(max_diff < 0.1 * scale, "{max_diff} vs scale {scale}");
}
