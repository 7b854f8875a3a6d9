//! Saved sessions (prompt caches): a restored session goes on exactly as the
//! saved one, and bytes that do not fit the model are typed errors.

use llm_engine::synthetic::{SyntheticSpec, build};
use llm_engine::{Architecture, CacheType, Error, GgufFile, Model, Sampler, Session, TensorType, Tokenizer};

fn load(spec: &SyntheticSpec) -> (Tokenizer, Model) {
    let bytes = build(spec).unwrap().to_bytes();
    let file = GgufFile::parse(bytes.as_slice()).unwrap();
    (Tokenizer::from_gguf(&file).unwrap(), Model::from_file_bytes(&file, bytes).unwrap())
}

/// `n` greedy tokens from the session, and the logits after them.
fn continue_greedily(model: &Model, session: &mut Session, n: usize) -> (Vec<u32>, Vec<u32>) {
    let mut sampler = Sampler::greedy();
    let mut out = Vec::new();
    for _ in 0..n {
        let t = session.sample_next(model, &mut sampler).unwrap();
        out.push(t);
        session.feed(model, &[t]).unwrap();
    }
    let logits = session.logits(model).unwrap().iter().map(|l| l.to_bits()).collect();
    (out, logits)
}

const ID: [u8; 32] = [7; 32];

#[test]
fn a_restored_session_goes_on_exactly_as_the_saved_one() {
    for (arch, ty, cache) in [
        (Architecture::Llama, TensorType::F32, CacheType::F32),
        (Architecture::Qwen2, TensorType::Q8_0, CacheType::F32),
        (Architecture::Qwen2, TensorType::Q8_0, CacheType::F16),
    ] {
        let (tokenizer, model) = load(&SyntheticSpec { weight_type: ty, ..SyntheticSpec::tiny(arch) });
        let prompt = tokenizer.encode("<|im_start|>system\nYou are a helpful assistant.", true, true);
        let mut saved = Session::with_cache_type(&model, 64, cache).unwrap();
        saved.feed(&model, &prompt).unwrap();
        let bytes = saved.snapshot(&ID);
        let mut restored = Session::restore(&model, &ID, 64, &bytes).unwrap();
        assert_eq!((restored.tokens(), restored.cache_type()), (saved.tokens(), cache));
        assert_eq!(restored.cache_bytes(), saved.cache_bytes());
        assert_eq!(
            continue_greedily(&model, &mut restored, 10),
            continue_greedily(&model, &mut saved, 10),
            "{arch:?} {ty} {cache:?}"
        );
        // A restored session can also be rewound and fed a different continuation.
        let mut other = Session::restore(&model, &ID, 64, &bytes).unwrap();
        other.truncate(prompt.len() - 1);
        other.feed(&model, &prompt[prompt.len() - 1..]).unwrap();
        let mut fresh = Session::with_cache_type(&model, 64, cache).unwrap();
        fresh.feed(&model, &prompt).unwrap();
        assert_eq!(continue_greedily(&model, &mut other, 5), continue_greedily(&model, &mut fresh, 5));
    }
}

#[test]
fn snapshots_of_another_model_or_corrupt_bytes_are_refused() {
    let (tokenizer, model) = load(&SyntheticSpec::tiny(Architecture::Qwen2));
    let mut session = Session::new(&model, 32).unwrap();
    session.feed(&model, &tokenizer.encode("Once upon a time", true, false)).unwrap();
    let bytes = session.snapshot(&ID);
    let bad = |r: Result<Session, Error>| matches!(r, Err(Error::BadSnapshot(_)));

    assert!(bad(Session::restore(&model, &[8; 32], 32, &bytes)), "another model id");
    let deeper = SyntheticSpec { block_count: 3, ..SyntheticSpec::tiny(Architecture::Qwen2) };
    assert_ne!(deeper.block_count, SyntheticSpec::tiny(Architecture::Qwen2).block_count);
    assert!(bad(Session::restore(&load(&deeper).1, &ID, 32, &bytes)), "another shape, even with the same id");
    for len in 0..bytes.len() {
        assert!(bad(Session::restore(&model, &ID, 32, &bytes[..len])), "truncated to {len}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(bad(Session::restore(&model, &ID, 32, &longer)), "trailing byte");
    let mut magic = bytes.clone();
    magic[0] ^= 1;
    assert!(bad(Session::restore(&model, &ID, 32, &magic)), "magic");
    let too_small = Session::restore(&model, &ID, session.len() - 1, &bytes);
    assert!(matches!(too_small, Err(Error::ContextFull { .. })), "capacity below the saved tokens");
}
