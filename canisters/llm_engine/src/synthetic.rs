//! Synthetic models: complete GGUF files of any llama/qwen2 shape with
//! seeded random weights and a small working tokenizer, for tests and for
//! measuring the engine on model sizes we cannot ship.

use crate::error::{Error, Result};
use crate::gguf::{Array, GgufWriter, TensorType, Value};
use crate::kernels;
use crate::model::Architecture;
use crate::sampling::SplitMix64;
use crate::tokenizer::byte_level_alphabet;
use crate::tokenizer::pretokenize::PreTokenizer;

#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticSpec {
    pub architecture: Architecture,
    /// At least 259 (llama: 3 specials + 256 byte tokens; qwen2: 256 bytes + 3 specials).
    pub vocab_size: usize,
    pub embedding_length: usize,
    pub block_count: usize,
    pub head_count: usize,
    pub head_count_kv: usize,
    pub feed_forward_length: usize,
    pub context_length: usize,
    /// Encoding of the weight matrices; norms and biases are always F32.
    pub weight_type: TensorType,
    /// Which matrix gets which type: all `weight_type`, or llama.cpp's mix.
    pub layout: Layout,
    /// Leave out `output.weight` so the token embedding doubles as output.
    pub tied_embeddings: bool,
    pub rope_freq_base: f32,
    pub seed: u64,
}

impl SyntheticSpec {
    /// A tiny model, quick to run in tests.
    pub fn tiny(architecture: Architecture) -> Self {
        SyntheticSpec {
            architecture,
            vocab_size: 400,
            embedding_length: 64,
            block_count: 2,
            head_count: 4,
            head_count_kv: 2,
            feed_forward_length: 96,
            context_length: 64,
            weight_type: TensorType::F32,
            layout: Layout::Uniform,
            tied_embeddings: architecture == Architecture::Qwen2,
            rope_freq_base: if architecture == Architecture::Qwen2 { 1_000_000.0 } else { 10_000.0 },
            seed: 1,
        }
    }

    /// The shape of Qwen2.5-0.5B (896 wide, 24 blocks, 14 heads over 2 kv heads).
    pub fn qwen2_5_0_5b_shape(weight_type: TensorType, context_length: usize) -> Self {
        SyntheticSpec {
            architecture: Architecture::Qwen2,
            vocab_size: 151_936,
            embedding_length: 896,
            block_count: 24,
            head_count: 14,
            head_count_kv: 2,
            feed_forward_length: 4864,
            context_length,
            weight_type,
            layout: Layout::Uniform,
            tied_embeddings: true,
            rope_freq_base: 1_000_000.0,
            seed: 1,
        }
    }
}

/// How the weight matrices of a synthetic model are typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Every matrix in `weight_type`.
    Uniform,
    /// As llama.cpp's `llama-quantize ... Q4_K_M` types them
    /// (`llama_tensor_get_type`): Q4_K by default; Q6_K for `attn_v` and
    /// `ffn_down` in the layers `use_more_bits` picks (the first and last
    /// eighth, and every third in between); Q6_K for the output matrix (the
    /// token embedding when tied); and where a row is not a whole number of
    /// 256-element super-blocks, Q4_K falls back to Q5_0 and Q6_K to Q8_0
    /// (Qwen2.5-0.5B: 896 wide, so only `ffn_down` keeps K types).
    Q4KM,
}

/// llama.cpp's choice of layers that get more bits.
fn use_more_bits(layer: usize, layers: usize) -> bool {
    let eighth = layers / 8;
    layer < eighth || layer >= 7 * layers / 8 || (layer - eighth) % 3 == 2
}

/// What a matrix is, for choosing its type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Embedding,
    Output,
    AttnV(usize),
    FfnDown(usize),
    Other,
}

impl SyntheticSpec {
    /// The type `build` gives a matrix of `cols` columns.
    fn type_for(&self, role: Role, cols: usize) -> TensorType {
        if self.layout == Layout::Uniform {
            return self.weight_type;
        }
        let output = role == Role::Output || (role == Role::Embedding && self.tied_embeddings);
        let more = match role {
            Role::AttnV(layer) | Role::FfnDown(layer) => use_more_bits(layer, self.block_count),
            _ => false,
        };
        if output && !cols.is_multiple_of(256) {
            return TensorType::Q8_0;
        }
        let ty = if output || more { TensorType::Q6_K } else { TensorType::Q4_K };
        match (ty, cols.is_multiple_of(256)) {
            (_, true) => ty,
            (TensorType::Q6_K, false) => TensorType::Q8_0,
            _ => TensorType::Q5_0,
        }
    }

    /// Named presets: `tiny-llama-T`, `tiny-qwen2-T`, `qwen2.5-0.5b-T` with
    /// T one of `f32`, `f16`, `q8_0` (the weight type) or `q4_k_m` (the layout).
    pub fn preset(name: &str) -> Option<Self> {
        let (shape, ty) = name.rsplit_once('-')?;
        let (weight_type, layout) = match ty {
            "f32" => (TensorType::F32, Layout::Uniform),
            "f16" => (TensorType::F16, Layout::Uniform),
            "q8_0" => (TensorType::Q8_0, Layout::Uniform),
            "q4_k_m" => (TensorType::Q4_K, Layout::Q4KM),
            _ => return None,
        };
        let base = match shape {
            "tiny-llama" => Self::tiny(Architecture::Llama),
            "tiny-qwen2" => Self::tiny(Architecture::Qwen2),
            "qwen2.5-0.5b" => Self::qwen2_5_0_5b_shape(weight_type, 4096),
            _ => return None,
        };
        Some(SyntheticSpec { weight_type, layout, ..base })
    }
}

/// Builds the file; add metadata to the writer before `to_bytes` if needed.
pub fn build(spec: &SyntheticSpec) -> Result<GgufWriter> {
    let s = spec;
    if s.vocab_size < 259 || s.head_count == 0 || s.head_count_kv == 0 || !s.head_count.is_multiple_of(s.head_count_kv)
    {
        return Err(Error::InvalidArgument(format!("unusable synthetic spec {s:?}")));
    }
    let head_dim = s.embedding_length / s.head_count;
    let (q_dim, kv_dim) = (s.head_count * head_dim, s.head_count_kv * head_dim);
    let arch = s.architecture.name();
    let mut w = GgufWriter::new();
    w.metadata("general.architecture", Value::String(arch.into()));
    w.metadata("general.name", Value::String(format!("synthetic {arch}")));
    let mut count = |key: &str, v: usize| {
        w.metadata(format!("{arch}.{key}"), Value::U32(v as u32));
    };
    count("context_length", s.context_length);
    count("embedding_length", s.embedding_length);
    count("block_count", s.block_count);
    count("feed_forward_length", s.feed_forward_length);
    count("attention.head_count", s.head_count);
    count("attention.head_count_kv", s.head_count_kv);
    w.metadata(format!("{arch}.attention.layer_norm_rms_epsilon"), Value::F32(1e-6));
    w.metadata(format!("{arch}.rope.freq_base"), Value::F32(s.rope_freq_base));
    match s.architecture {
        Architecture::Llama => add_spm_vocab(&mut w, s.vocab_size),
        Architecture::Qwen2 => add_byte_level_vocab(&mut w, s.vocab_size),
    }

    let mut rng = SplitMix64::new(s.seed);
    let mut matrix = |w: &mut GgufWriter, name: &str, cols: usize, rows: usize, role: Role| -> Result<()> {
        let ty = s.type_for(role, cols);
        // Uniform with variance 1/cols keeps activations of order one.
        let bound = (3.0 / cols as f64).sqrt();
        let values = random_values(&mut rng, cols * rows, -bound, bound);
        let dims: &[u64] = if rows == 1 { &[cols as u64] } else { &[cols as u64, rows as u64] };
        w.tensor(name, dims, ty, kernels::encode(ty, &values)?)?;
        Ok(())
    };
    let mut norm_rng = SplitMix64::new(s.seed ^ 0x5eed);
    let mut vector = |w: &mut GgufWriter, name: &str, len: usize, center: f64, spread: f64| -> Result<()> {
        let values = random_values(&mut norm_rng, len, center - spread, center + spread);
        w.f32_tensor(name, &[len as u64], &values)?;
        Ok(())
    };

    let (emb, ff) = (s.embedding_length, s.feed_forward_length);
    // The embedding gets a larger scale so that logits are decisive (no near-ties).
    {
        let values = random_values(&mut SplitMix64::new(s.seed ^ 0xe3b), emb * s.vocab_size, -1.0, 1.0);
        let ty = s.type_for(Role::Embedding, emb);
        w.tensor("token_embd.weight", &[emb as u64, s.vocab_size as u64], ty, kernels::encode(ty, &values)?)?;
    }
    vector(&mut w, "output_norm.weight", emb, 1.0, 0.2)?;
    if !s.tied_embeddings {
        matrix(&mut w, "output.weight", emb, s.vocab_size, Role::Output)?;
    }
    for i in 0..s.block_count {
        let name = |suffix: &str| format!("blk.{i}.{suffix}");
        vector(&mut w, &name("attn_norm.weight"), emb, 1.0, 0.2)?;
        matrix(&mut w, &name("attn_q.weight"), emb, q_dim, Role::Other)?;
        matrix(&mut w, &name("attn_k.weight"), emb, kv_dim, Role::Other)?;
        matrix(&mut w, &name("attn_v.weight"), emb, kv_dim, Role::AttnV(i))?;
        if s.architecture == Architecture::Qwen2 {
            vector(&mut w, &name("attn_q.bias"), q_dim, 0.0, 0.5)?;
            vector(&mut w, &name("attn_k.bias"), kv_dim, 0.0, 0.5)?;
            vector(&mut w, &name("attn_v.bias"), kv_dim, 0.0, 0.5)?;
        }
        matrix(&mut w, &name("attn_output.weight"), q_dim, emb, Role::Other)?;
        vector(&mut w, &name("ffn_norm.weight"), emb, 1.0, 0.2)?;
        matrix(&mut w, &name("ffn_gate.weight"), emb, ff, Role::Other)?;
        matrix(&mut w, &name("ffn_up.weight"), emb, ff, Role::Other)?;
        matrix(&mut w, &name("ffn_down.weight"), ff, emb, Role::FfnDown(i))?;
    }
    Ok(w)
}

fn random_values(rng: &mut SplitMix64, n: usize, low: f64, high: f64) -> Vec<f32> {
    (0..n).map(|_| (low + (high - low) * rng.next_f64()) as f32).collect()
}

/// Text the synthetic tokenizers learn their merges from.
const CORPUS: &str = "Once upon a time, there was a little girl named Lily. She loved to play \
outside in the park with her friends. One day, she saw a big red ball under a tree. \"Can I \
play with it?\" she asked her mom. Her mom said, \"Yes, but be careful!\" Lily was very happy. \
The sun was shining and the birds were singing. They played all day until it was time to go \
home. The end. 1234 + 5678 = 6912; it's what we'll do, isn't it? Ünïcödé wörds: naïve café.";

/// SentencePiece-style vocabulary: `<unk> <s> </s>`, the 256 byte tokens,
/// then pieces (with the ▁ space marker) scored by merge order.
fn add_spm_vocab(w: &mut GgufWriter, vocab_size: usize) {
    let mut texts: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    texts.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    types.extend([6; 256]);
    let words: Vec<Vec<String>> =
        CORPUS.split(' ').map(|word| format!("\u{2581}{word}").chars().map(String::from).collect()).collect();
    let pieces = learn_merges(words, vocab_size - texts.len(), &texts);
    // Single characters of the corpus come first in the learned list.
    texts.extend(pieces.into_iter().map(|(_, _, merged)| merged));
    types.resize(texts.len(), 1);
    let scores: Vec<f32> = (0..texts.len()).map(|i| if types[i] == 1 { -(i as f32) } else { 0.0 }).collect();
    w.metadata("tokenizer.ggml.model", Value::String("llama".into()));
    w.metadata("tokenizer.ggml.tokens", Value::Array(Array::String(texts)));
    w.metadata("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
    w.metadata("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    w.metadata("tokenizer.ggml.unknown_token_id", Value::U32(0));
    w.metadata("tokenizer.ggml.bos_token_id", Value::U32(1));
    w.metadata("tokenizer.ggml.eos_token_id", Value::U32(2));
}

/// Byte-level (Qwen2-style) vocabulary: the 256 byte characters, learned
/// merges, then the chat control tokens.
fn add_byte_level_vocab(w: &mut GgufWriter, vocab_size: usize) {
    let alphabet = byte_level_alphabet();
    let mut texts: Vec<String> = alphabet.iter().map(|c| c.to_string()).collect();
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    let words: Vec<Vec<String>> = PreTokenizer::Qwen2
        .split(CORPUS)
        .into_iter()
        .map(|word| word.bytes().map(|b| alphabet[b as usize].to_string()).collect())
        .collect();
    let merges = learn_merges(words, vocab_size - texts.len() - specials.len(), &texts);
    let merge_rules: Vec<String> =
        merges.iter().filter(|(l, _, _)| !l.is_empty()).map(|(l, r, _)| format!("{l} {r}")).collect();
    texts.extend(merges.into_iter().map(|(_, _, merged)| merged));
    let mut types = vec![1; texts.len()];
    let first_special = texts.len() as u32;
    texts.extend(specials.iter().map(|s| s.to_string()));
    types.extend([3; 3]);
    w.metadata("tokenizer.ggml.model", Value::String("gpt2".into()));
    w.metadata("tokenizer.ggml.pre", Value::String("qwen2".into()));
    w.metadata("tokenizer.ggml.tokens", Value::Array(Array::String(texts)));
    w.metadata("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    w.metadata("tokenizer.ggml.merges", Value::Array(Array::String(merge_rules)));
    w.metadata("tokenizer.ggml.bos_token_id", Value::U32(first_special));
    w.metadata("tokenizer.ggml.eos_token_id", Value::U32(first_special + 2));
    w.metadata("tokenizer.ggml.padding_token_id", Value::U32(first_special));
    w.metadata("tokenizer.ggml.add_bos_token", Value::Bool(false));
}

/// A minimal BPE trainer: repeatedly merges the most frequent adjacent pair
/// (ties: the smallest pair). Returns `(left, right, merged)` for each new
/// token, `count` of them; single symbols not yet in `known` come first (as
/// `("", symbol, symbol)`), and when the corpus runs out of pairs, made-up
/// pieces fill the rest.
fn learn_merges(mut words: Vec<Vec<String>>, count: usize, known: &[String]) -> Vec<(String, String, String)> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut seen: BTreeSet<String> = known.iter().cloned().collect();
    let mut out = Vec::new();
    for symbol in words.iter().flatten() {
        if out.len() < count && seen.insert(symbol.clone()) {
            out.push((String::new(), symbol.clone(), symbol.clone()));
        }
    }
    while out.len() < count {
        let mut pairs: BTreeMap<(String, String), usize> = BTreeMap::new();
        for word in &words {
            for pair in word.windows(2) {
                *pairs.entry((pair[0].clone(), pair[1].clone())).or_default() += 1;
            }
        }
        let best = pairs
            .into_iter()
            .filter(|(p, _)| !seen.contains(&format!("{}{}", p.0, p.1)))
            .max_by(|(pa, ca), (pb, cb)| ca.cmp(cb).then_with(|| pb.cmp(pa)));
        let Some(((left, right), _)) = best else { break };
        let merged = format!("{left}{right}");
        for word in &mut words {
            let mut i = 0;
            while i + 1 < word.len() {
                if word[i] == left && word[i + 1] == right {
                    word[i] = merged.clone();
                    word.remove(i + 1);
                }
                i += 1;
            }
        }
        seen.insert(merged.clone());
        out.push((left, right, merged));
    }
    let mut filler = 0;
    while out.len() < count {
        let piece = format!("zq{filler}");
        filler += 1;
        if seen.insert(piece.clone()) {
            out.push((String::new(), piece.clone(), piece));
        }
    }
    out
}
