//! End-to-end checks on the real stories260K model against llama.cpp's behaviour.

mod common;

use llm_engine::{GgufFile, Model, Sampler, Session, Tokenizer};

fn load() -> (Tokenizer, Model) {
    let bytes = common::stories_bytes();
    let file = GgufFile::parse(bytes.as_slice()).unwrap();
    let tokenizer = Tokenizer::from_gguf(&file).unwrap();
    let model = Model::from_file_bytes(&file, bytes).unwrap();
    (tokenizer, model)
}

fn greedy(model: &Model, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut session = Session::new(model, model.config().context_length).unwrap();
    session.feed(model, prompt).unwrap();
    let mut sampler = Sampler::greedy();
    let mut out = Vec::new();
    for _ in 0..n {
        let token = session.sample_next(model, &mut sampler).unwrap();
        out.push(token);
        session.feed(model, &[token]).unwrap();
    }
    out
}

#[test]
fn joe_loves_writing_stories() {
    let (tokenizer, model) = load();
    let prompt = tokenizer.encode("Joe loves writing stories", true, false);
    println!("{prompt:?}");
    assert_eq!(prompt.len(), 16);
    assert_eq!(prompt[0], 1);
    let generated = greedy(&model, &prompt, 3);
    println!("{generated:?} {:?}", tokenizer.decode(&generated));
    assert_eq!(tokenizer.decode(&generated), ". He li");
}

#[test]
fn prompt_tokens_decode_back_to_the_text() {
    let (tokenizer, _) = load();
    let prompt = tokenizer.encode("Joe loves writing stories", true, false);
    // The SentencePiece space prefix comes back as a leading space; BOS as nothing.
    assert_eq!(tokenizer.decode(&prompt), " Joe loves writing stories");
    assert_eq!(tokenizer.encode("Joe loves writing stories", false, false), prompt[1..]);
}

#[test]
fn unknown_characters_fall_back_to_byte_tokens() {
    let (tokenizer, _) = load();
    let tokens = tokenizer.encode("a\né😀", false, false);
    let byte_token = |b: u8| tokenizer.token_id(&format!("<0x{b:02X}>")).unwrap();
    assert!(tokens.contains(&byte_token(b'\n')));
    for b in "😀".bytes() {
        assert!(tokens.contains(&byte_token(b)));
    }
    assert_eq!(tokenizer.decode(&tokens), " a\né😀");
    assert_eq!(tokenizer.encode("", true, false), [1]);
    assert!(tokenizer.encode("", false, true).is_empty());
    // Special-token texts are plain text unless asked for.
    assert!(!tokenizer.encode("<s>", false, false).contains(&1));
    assert_eq!(tokenizer.encode("<s>hi", false, true)[0], 1);
    assert!(tokenizer.is_end_of_generation(2));
    assert!(!tokenizer.is_end_of_generation(1));
}

fn logits_after(model: &Model, chunks: &[&[u32]]) -> Vec<f32> {
    let mut session = Session::new(model, 128).unwrap();
    for chunk in chunks {
        session.feed(model, chunk).unwrap();
    }
    session.logits(model).unwrap().to_vec()
}

#[test]
fn chunked_feeding_gives_identical_logits() {
    let (tokenizer, model) = load();
    let prompt = tokenizer.encode("Joe loves writing stories", true, false);
    let whole = logits_after(&model, &[&prompt]);
    let chunked = logits_after(&model, &[&prompt[..5], &prompt[5..10], &prompt[10..]]);
    let one_by_one: Vec<&[u32]> = prompt.chunks(1).collect();
    assert_eq!(whole, chunked);
    assert_eq!(whole, logits_after(&model, &one_by_one));

    // Generation continues identically too.
    let mut a = Session::new(&model, 128).unwrap();
    a.feed(&model, &prompt).unwrap();
    let mut b = Session::new(&model, 128).unwrap();
    for chunk in prompt.chunks(3) {
        b.feed(&model, chunk).unwrap();
    }
    let mut sampler = Sampler::greedy();
    for _ in 0..20 {
        let (ta, tb) = (a.sample_next(&model, &mut sampler).unwrap(), b.sample_next(&model, &mut sampler).unwrap());
        assert_eq!(ta, tb);
        assert_eq!(a.logits(&model).unwrap(), b.logits(&model).unwrap());
        a.feed(&model, &[ta]).unwrap();
        b.feed(&model, &[tb]).unwrap();
    }
    assert_eq!(a.len(), prompt.len() + 20);
}

#[test]
fn truncating_rewinds_the_conversation() {
    let (tokenizer, model) = load();
    let prompt = tokenizer.encode("Joe loves writing stories", true, false);
    let mut session = Session::new(&model, 128).unwrap();
    session.feed(&model, &prompt).unwrap();
    session.feed(&model, &tokenizer.encode(" and more", false, false)).unwrap();
    session.truncate(10);
    assert_eq!(session.len(), 10);
    assert!(matches!(session.logits(&model), Err(llm_engine::Error::NothingFed)));
    session.feed(&model, &prompt[10..]).unwrap();
    assert_eq!(session.logits(&model).unwrap(), logits_after(&model, &[&prompt]));
    assert_eq!(session.tokens(), prompt);
}

#[test]
fn session_limits_are_typed_errors() {
    use llm_engine::Error;
    let (_, model) = load();
    assert!(matches!(Session::new(&model, 0), Err(Error::InvalidArgument(_))));
    assert!(matches!(Session::new(&model, 129), Err(Error::InvalidArgument(_))));
    let mut session = Session::new(&model, 4).unwrap();
    assert!(matches!(session.logits(&model), Err(Error::NothingFed)));
    assert_eq!(session.feed(&model, &[1, 512]), Err(Error::InvalidToken { token: 512, vocab_size: 512 }));
    assert_eq!(session.len(), 0);
    session.feed(&model, &[1, 2, 3]).unwrap();
    assert_eq!(session.feed(&model, &[4, 5]), Err(Error::ContextFull { capacity: 4, used: 3, requested: 2 }));
    session.feed(&model, &[4]).unwrap();
    assert_eq!(session.remaining(), 0);
}

#[test]
fn loading_through_a_byte_source_gives_the_same_model() {
    let (tokenizer, model) = load();
    let bytes = common::stories_bytes();
    let file = GgufFile::parse(bytes.as_slice()).unwrap();
    let loaded = Model::load(&file, bytes.as_slice()).unwrap();
    assert_eq!(loaded.config(), model.config());
    assert!(!loaded.has_tied_embeddings());
    let prompt = tokenizer.encode("Once upon a time", true, false);
    assert_eq!(logits_after(&loaded, &[&prompt]), logits_after(&model, &[&prompt]));
    assert_eq!(model.config().rope_freq_base, 10_000.0);
    assert_eq!(model.config().head_dim, 8);
}

#[test]
fn an_f16_cache_halves_the_memory_and_barely_moves_the_logits() {
    use llm_engine::CacheType;
    let (tokenizer, model) = load();
    let prompt = tokenizer.encode("Once upon a time, there was a little girl named Lily", true, false);
    let run = |ty: CacheType| {
        let mut s = Session::with_cache_type(&model, model.config().context_length, ty).unwrap();
        s.feed(&model, &prompt).unwrap();
        let mut sampler = Sampler::greedy();
        let mut logits = Vec::new();
        let mut tokens = Vec::new();
        for _ in 0..40 {
            logits.push(s.logits(&model).unwrap().to_vec());
            let t = s.sample_next(&model, &mut sampler).unwrap();
            tokens.push(t);
            s.feed(&model, &[t]).unwrap();
        }
        (tokens, logits, s.cache_bytes(), s.cache_type())
    };
    let (t32, l32, b32, ty32) = run(CacheType::F32);
    let (t16, l16, b16, ty16) = run(CacheType::F16);
    assert_eq!((ty32, ty16), (CacheType::F32, CacheType::F16));
    assert_eq!(b16 * 2, b32, "half the bytes");
    // Positions x (keys and values) x 5 layers x 32 values (4 kv heads of 8) x 4 bytes.
    assert_eq!(b32, (prompt.len() + 40) * 2 * 5 * 32 * 4);
    // Same greedy continuation while both follow the same tokens; logits within 1e-2 of their scale.
    let mut worst = 0f32;
    for (step, (a, b)) in l32.iter().zip(&l16).enumerate() {
        if t32[..step] != t16[..step] {
            break;
        }
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        worst = worst.max(diff / scale);
    }
    println!("f16 cache: worst logit difference {worst:.2e} of the scale over 40 steps");
    assert!(worst > 0.0 && worst < 1e-2, "{worst}");
    assert_eq!(t32, t16, "greedy tokens unchanged on this prompt");
}
