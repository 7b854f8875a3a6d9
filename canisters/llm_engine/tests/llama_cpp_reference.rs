//! Reproduces what llama.cpp does on the test models (testdata/llama_cpp_reference.txt,
//! written by testdata/llama_cpp_reference.py): tokenization, the prompt's
//! last logits, and greedy continuations, token for token.

mod common;

use std::collections::BTreeMap;

use llm_engine::synthetic::{SyntheticSpec, build};
use llm_engine::{CacheType, GgufFile, Model, Sampler, Session, Tokenizer};

type Record = BTreeMap<String, String>;

fn records() -> Vec<Record> {
    records_from("llama_cpp_reference.txt")
}

fn records_from(file: &str) -> Vec<Record> {
    let path = format!("{}/testdata/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("reference file");
    text.split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once(": ").map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect::<Record>()
        })
        .filter(|r| !r.is_empty())
        .collect()
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn numbers<T: std::str::FromStr>(text: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    text.split_whitespace().map(|v| v.parse().unwrap()).collect()
}

fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn load_model(records: &[Record], name: &str) -> (Tokenizer, Model) {
    let bytes = match records.iter().find(|r| r["model"] == name && r["kind"] == "synthetic") {
        None => common::stories_bytes(),
        Some(r) => {
            let bytes = build(&SyntheticSpec::preset(&r["preset"]).unwrap()).unwrap().to_bytes();
            assert_eq!(
                (bytes.len().to_string(), format!("{:016x}", fnv1a64(&bytes))),
                (r["bytes"].clone(), r["fnv1a64"].clone()),
                "{name}: the synthetic model generator changed; rerun testdata/llama_cpp_reference.py"
            );
            bytes
        }
    };
    let file = GgufFile::parse(bytes.as_slice()).unwrap();
    (Tokenizer::from_gguf(&file).unwrap(), Model::from_file_bytes(&file, bytes).unwrap())
}

#[test]
fn matches_llama_cpp() {
    let records = records();
    let mut models: Vec<&str> = records.iter().map(|r| r["model"].as_str()).collect();
    models.dedup();
    assert_eq!(models, ["stories260K", "tiny-qwen2-f32", "tiny-qwen2-q8_0", "tiny-llama-f16"]);
    let mut generations = 0;
    for name in models {
        let (tokenizer, model) = load_model(&records, name);
        for r in records.iter().filter(|r| r["model"] == name) {
            let text = r.get("text").map(|t| unescape(t)).unwrap_or_default();
            match r["kind"].as_str() {
                "tokenize" => {
                    let parse_special = r["special"] == "1";
                    let got = tokenizer.encode(&text, true, parse_special);
                    assert_eq!(
                        got,
                        numbers::<u32>(&r["tokens"]),
                        "{name} tokenizing {text:?} (special {parse_special})"
                    );
                }
                "generate" => {
                    let prompt = tokenizer.encode(&text, true, false);
                    assert_eq!(prompt, numbers::<u32>(&r["tokens"]), "{name} tokenizing {text:?}");
                    let mut session = Session::new(&model, model.config().context_length).unwrap();
                    session.feed(&model, &prompt).unwrap();

                    // llama.cpp's own batched and token-by-token paths differ by up to
                    // ~3e-4 of the scale on F16 weights; F32 and Q8_0 agree to ~1e-6.
                    let want: Vec<f32> = numbers(&r["logits"]);
                    let got = session.logits(&model).unwrap();
                    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let diff = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                    assert!(diff <= 1e-3 * scale, "{name} {text:?}: logits differ by {diff} (scale {scale})");
                    println!("{name} {text:?}: max logit difference {:.2e} of scale {scale:.2}", diff);

                    let expected: Vec<u32> = numbers(&r["generated"]);
                    let mut sampler = Sampler::greedy();
                    let mut generated = Vec::new();
                    for _ in 0..expected.len() {
                        let token = session.sample_next(&model, &mut sampler).unwrap();
                        generated.push(token);
                        session.feed(&model, &[token]).unwrap();
                    }
                    assert_eq!(generated, expected, "{name} continuing {text:?}");
                    generations += 1;
                }
                "synthetic" => {}
                other => panic!("unknown record kind {other}"),
            }
        }
    }
    assert_eq!(generations, 5 + 3 * 3);
}

/// Largest absolute difference between two logit vectors.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// Greedy tokens after `prompt`.
fn greedy(model: &Model, session: &mut Session, n: usize) -> Vec<u32> {
    let mut sampler = Sampler::greedy();
    let mut out = Vec::new();
    for _ in 0..n {
        let token = session.sample_next(model, &mut sampler).unwrap();
        out.push(token);
        session.feed(model, &[token]).unwrap();
    }
    out
}

/// The `-ctk/-ctv f16` cache against llama.cpp's default F16 cache
/// (testdata/llama_cpp_reference_f16_cache.txt, the stories model): the
/// prompt's last logits and the greedy continuation, and how far an F16
/// cache moves the logits from an F32 one on either side.
#[test]
fn the_f16_cache_follows_llama_cpps_default_f16_cache() {
    let f16 = records_from("llama_cpp_reference_f16_cache.txt");
    let f32_records = records();
    let (tokenizer, model) = load_model(&f32_records, "stories260K");
    let mut same_tokens = 0;
    for r in &f16 {
        let text = unescape(&r["text"]);
        let prompt = tokenizer.encode(&text, true, false);
        assert_eq!(prompt, numbers::<u32>(&r["tokens"]), "tokenizing {text:?}");
        let want: Vec<f32> = numbers(&r["logits"]);
        let llama_f32: Vec<f32> = f32_records
            .iter()
            .find(|x| x["model"] == "stories260K" && x["kind"] == "generate" && x["text"] == r["text"])
            .map(|x| numbers(&x["logits"]))
            .expect("the same prompt in the F32 reference");
        let ctx = model.config().context_length;
        let mut ours16 = Session::with_cache_type(&model, ctx, CacheType::F16).unwrap();
        ours16.feed(&model, &prompt).unwrap();
        let mut ours32 = Session::new(&model, ctx).unwrap();
        ours32.feed(&model, &prompt).unwrap();
        let (got16, got32) = (ours16.logits(&model).unwrap(), ours32.logits(&model).unwrap());
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = max_diff(got16, &want);
        println!(
            "{text:?}: ours f16 vs llama.cpp f16 {:.2e}; f16 vs f32 cache: ours {:.2e}, llama.cpp {:.2e} (scale {scale:.2})",
            diff,
            max_diff(got16, got32),
            max_diff(&want, &llama_f32)
        );
        assert!(diff <= 1e-3 * scale, "{text:?}: logits differ by {diff} (scale {scale})");
        let expected: Vec<u32> = numbers(&r["generated"]);
        let generated = greedy(&model, &mut ours16, expected.len());
        same_tokens += generated.iter().zip(&expected).take_while(|(a, b)| a == b).count();
        assert_eq!(generated, expected, "continuing {text:?} with an f16 cache");
    }
    assert_eq!(f16.len(), 5);
    println!("{same_tokens} greedy tokens equal to llama.cpp's with its f16 cache");
}
