//! The llama.cpp command-line grammar that the llama.cpp canister's methods
//! take as `args` — one parser and one formatter, used by our LLM canister,
//! the test fixture and the client (`llm_client`).
//!
//! The grammar is llama.cpp's own (`common_params_parse` of the main example
//! in llama.cpp b4531, which the llama.cpp canister v0.7.3 runs):
//! - every argument is looked up as a flag; a flag that takes a value
//!   consumes the next argument whatever it looks like (a prompt may start
//!   with `-`), so a positional argument is an unknown flag;
//! - in a flag starting with `--`, `_` counts as `-` (`--prompt_cache`);
//! - a repeated flag overrides the earlier one;
//! - numbers: `-n`, `-c`, `--top-k` are C `int`s, `--temp`, `--top-p`
//!   `float`s (f32); `--seed` is read as a C `unsigned long` and kept in 32
//!   bits, so `--seed -1` is `0xFFFFFFFF`, llama.cpp's `LLAMA_DEFAULT_SEED`;
//!   a negative `--temp` is 0 (greedy);
//! - the prompt's backslash escapes (`\n`, `\t`, `\\`, `\xNN`, ...) are
//!   processed unless `--no-escape` is given ([`process_escapes`]).
//!
//! Where llama.cpp does something a client cannot want, this grammar says
//! no with an [`ArgsError`] instead: the llama.cpp canister **traps** on an
//! unknown flag, a missing value or a number it cannot read; it reads the
//! leading number of `"12abc"` and ignores the rest (refused here); it takes
//! `nan` and `inf` as a temperature or top-p (refused here).
//!
//! Flags are known by name and by how many values they take (the full table
//! of the main example, [`IGNORED_FLAGS`]); the ones the mAIner canisters
//! act on are fields of [`LlamaArgs`], the others are kept in
//! [`LlamaArgs::other`] so that formatting gives back what was parsed.

/// llama.cpp's `LLAMA_DEFAULT_SEED`: llama.cpp draws a random seed for it.
pub const DEFAULT_SEED: u32 = 0xFFFF_FFFF;
/// llama.cpp's defaults for flags that are absent.
pub const DEFAULT_TEMPERATURE: f32 = 0.8;
pub const DEFAULT_TOP_K: i32 = 40;
pub const DEFAULT_TOP_P: f32 = 0.95;
/// `-n -1`: no limit.
pub const DEFAULT_N_PREDICT: i32 = -1;
/// `-c`: llama.cpp's default context size.
pub const DEFAULT_CTX_SIZE: i32 = 4096;

/// The flags of one call. `None` / `false`: the flag was absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LlamaArgs {
    /// `-p` / `--prompt`, as sent (escapes not processed: see [`LlamaArgs::prompt_text`]).
    pub prompt: Option<String>,
    /// `-n` / `--predict` / `--n-predict`: tokens to sample in this call;
    /// -1 no limit, -2 until the context is full.
    pub n_predict: Option<i32>,
    /// `--prompt-cache NAME`
    pub prompt_cache: Option<String>,
    /// `--prompt-cache-all`
    pub prompt_cache_all: bool,
    /// `--prompt-cache-ro`
    pub prompt_cache_ro: bool,
    /// `--temp`, never negative.
    pub temperature: Option<f32>,
    /// `-s` / `--seed`
    pub seed: Option<u32>,
    /// `--top-k`; 0 or less disables it.
    pub top_k: Option<i32>,
    /// `--top-p`; 1 or more disables it.
    pub top_p: Option<f32>,
    /// `-sp` / `--special`: special tokens are *printed* (in `output` and
    /// `conversation`). Special-token texts in the prompt are always parsed
    /// into their tokens, with or without it.
    pub special: bool,
    /// `-e` / `--escape` (Some(true)), `--no-escape` (Some(false)); absent: escapes are processed.
    pub escape: Option<bool>,
    /// `-m` / `--model PATH`
    pub model: Option<String>,
    /// `-c` / `--ctx-size N`; 0 means the model's own.
    pub ctx_size: Option<i32>,
    /// Other llama.cpp flags, in order, with their values (not acted on).
    pub other: Vec<(String, Vec<String>)>,
}

/// Why `args` are not llama.cpp flags (the llama.cpp canister traps on each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// Not a flag of llama.cpp's main example (a positional argument is one too).
    UnknownFlag(String),
    MissingValue {
        flag: String,
    },
    BadNumber {
        flag: String,
        value: String,
    },
}

impl std::fmt::Display for ArgsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgsError::UnknownFlag(a) => write!(f, "invalid argument: {a} (not a llama.cpp flag)"),
            ArgsError::MissingValue { flag } => write!(f, "flag {flag} needs a value"),
            ArgsError::BadNumber { flag, value } => write!(f, "flag {flag}: {value:?} is not a valid number"),
        }
    }
}

impl std::error::Error for ArgsError {}

impl LlamaArgs {
    /// The `--prompt-cache` name; "" without one.
    pub fn cache_name(&self) -> &str {
        self.prompt_cache.as_deref().unwrap_or("")
    }

    /// The prompt as llama.cpp tokenizes it: escapes processed unless `--no-escape`.
    pub fn prompt_text(&self) -> String {
        let prompt = self.prompt.as_deref().unwrap_or("");
        if self.escape.unwrap_or(true) { process_escapes(prompt) } else { prompt.to_string() }
    }

    pub fn n_predict_or_default(&self) -> i32 {
        self.n_predict.unwrap_or(DEFAULT_N_PREDICT)
    }

    /// The value of an ignored flag, if given (its last value).
    pub fn other_value(&self, flag: &str) -> Option<&str> {
        self.other.iter().rev().find(|(f, _)| f == flag).and_then(|(_, v)| v.first()).map(String::as_str)
    }

    /// The arguments that parse back into `self`: the known flags in a fixed
    /// order, then the others as given, the prompt last.
    pub fn to_args(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |flag: &str, value: Option<String>| {
            out.push(flag.to_string());
            out.extend(value);
        };
        if let Some(name) = &self.prompt_cache {
            push("--prompt-cache", Some(name.clone()));
        }
        if self.prompt_cache_all {
            push("--prompt-cache-all", None);
        }
        if self.prompt_cache_ro {
            push("--prompt-cache-ro", None);
        }
        if self.special {
            push("-sp", None);
        }
        match self.escape {
            Some(true) => push("--escape", None),
            Some(false) => push("--no-escape", None),
            None => {}
        }
        if let Some(m) = &self.model {
            push("--model", Some(m.clone()));
        }
        if let Some(c) = self.ctx_size {
            push("--ctx-size", Some(c.to_string()));
        }
        if let Some(n) = self.n_predict {
            push("-n", Some(n.to_string()));
        }
        if let Some(t) = self.temperature {
            push("--temp", Some(t.to_string()));
        }
        if let Some(s) = self.seed {
            push("--seed", Some(s.to_string()));
        }
        if let Some(k) = self.top_k {
            push("--top-k", Some(k.to_string()));
        }
        if let Some(p) = self.top_p {
            push("--top-p", Some(p.to_string()));
        }
        for (flag, values) in &self.other {
            out.push(flag.clone());
            out.extend(values.iter().cloned());
        }
        if let Some(p) = &self.prompt {
            out.push("-p".to_string());
            out.push(p.clone());
        }
        out
    }
}

/// Parses `args` as llama.cpp does (see the module docs for the differences).
pub fn parse(args: &[String]) -> Result<LlamaArgs, ArgsError> {
    let mut out = LlamaArgs::default();
    let mut it = args.iter();
    while let Some(raw) = it.next() {
        let flag = normalize(raw);
        let mut value = || it.next().cloned().ok_or_else(|| ArgsError::MissingValue { flag: raw.clone() });
        match flag.as_str() {
            "-p" | "--prompt" => out.prompt = Some(value()?),
            "-n" | "--predict" | "--n-predict" => out.n_predict = Some(c_int(raw, &value()?)?),
            "--prompt-cache" => out.prompt_cache = Some(value()?),
            "--prompt-cache-all" => out.prompt_cache_all = true,
            "--prompt-cache-ro" => out.prompt_cache_ro = true,
            "--temp" => out.temperature = Some(c_float(raw, &value()?)?.max(0.0)),
            "-s" | "--seed" => out.seed = Some(c_unsigned_long(raw, &value()?)?),
            "--top-k" => out.top_k = Some(c_int(raw, &value()?)?),
            "--top-p" => out.top_p = Some(c_float(raw, &value()?)?),
            "-sp" | "--special" => out.special = true,
            "-e" | "--escape" => out.escape = Some(true),
            "--no-escape" => out.escape = Some(false),
            "-m" | "--model" => out.model = Some(value()?),
            "-c" | "--ctx-size" => out.ctx_size = Some(c_int(raw, &value()?)?),
            other => {
                let arity = arity(other).ok_or_else(|| ArgsError::UnknownFlag(raw.clone()))?;
                let values = (0..arity).map(|_| value()).collect::<Result<Vec<_>, _>>()?;
                out.other.push((other.to_string(), values));
            }
        }
    }
    Ok(out)
}

/// `--foo_bar` is `--foo-bar` (llama.cpp rewrites `_` in `--` flags).
fn normalize(arg: &str) -> String {
    if arg.starts_with("--") { arg.replace('_', "-") } else { arg.to_string() }
}

/// How many values a flag of llama.cpp's main example takes, None if it is not one.
fn arity(flag: &str) -> Option<usize> {
    IGNORED_FLAGS.iter().find(|(names, _)| names.split(' ').any(|n| n == flag)).map(|&(_, n)| n)
}

/// What `std::stoi` reads, without its leniency: optional leading
/// whitespace, a sign, digits, nothing after.
fn c_int(flag: &str, text: &str) -> Result<i32, ArgsError> {
    text.trim_start().parse().map_err(|_| bad(flag, text))
}

/// `std::stof`: a finite decimal number (nan and inf refused).
fn c_float(flag: &str, text: &str) -> Result<f32, ArgsError> {
    text.trim_start().parse::<f32>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad(flag, text))
}

/// `std::stoul` with a 32-bit `unsigned long` (wasm32): a negative number
/// wraps around (`-1` is `0xFFFFFFFF`); beyond 32 bits is out of range.
fn c_unsigned_long(flag: &str, text: &str) -> Result<u32, ArgsError> {
    let t = text.trim_start();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(flag, text));
    }
    let magnitude: u32 = digits.parse().map_err(|_| bad(flag, text))?;
    Ok(if negative { magnitude.wrapping_neg() } else { magnitude })
}

fn bad(flag: &str, text: &str) -> ArgsError {
    ArgsError::BadNumber { flag: flag.to_string(), value: text.to_string() }
}

/// llama.cpp's `string_process_escapes`: `\n \r \t \' \" \\` and `\xNN`
/// (two hex digits, a byte); any other backslash stays as it is. Bytes that
/// do not form UTF-8 become U+FFFD.
pub fn process_escapes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        i += 1;
        let escaped = match bytes[i] {
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'\'' => Some(b'\''),
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'x' => hex_byte(bytes.get(i + 1..i + 3)).inspect(|_| i += 2),
            _ => None,
        };
        match escaped {
            Some(b) => out.push(b),
            None => out.extend_from_slice(&[b'\\', bytes[i]]),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte `strtol(xy, 16)` reads from two characters when it reads both:
/// two hex digits, or a space or sign then one.
fn hex_byte(two: Option<&[u8]>) -> Option<u8> {
    let &[a, b] = two? else { return None };
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    match (a, digit(a), digit(b)?) {
        (_, Some(hi), lo) => Some(hi * 16 + lo),
        (b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b'+', None, lo) => Some(lo),
        (b'-', None, lo) => Some(lo.wrapping_neg()),
        _ => None,
    }
}

/// The flags of llama.cpp's main example (b4531, as the llama.cpp canister
/// v0.7.3 builds it, without the thread flags it removed) that [`parse`]
/// accepts and ignores: names (aliases separated by spaces) and how many
/// values each takes.
pub const IGNORED_FLAGS: &[(&str, usize)] = &[
    ("-h --help --usage", 0),
    ("--version", 0),
    ("--verbose-prompt", 0),
    ("--no-display-prompt", 0),
    ("-co --color", 0),
    ("-C --cpu-mask", 1),
    ("-Cr --cpu-range", 1),
    ("--cpu-strict", 1),
    ("--prio", 1),
    ("--poll", 1),
    ("-Cb --cpu-mask-batch", 1),
    ("-Crb --cpu-range-batch", 1),
    ("--cpu-strict-batch", 1),
    ("--prio-batch", 1),
    ("--poll-batch", 1),
    ("-b --batch-size", 1),
    ("-ub --ubatch-size", 1),
    ("--keep", 1),
    ("--no-context-shift", 0),
    ("-fa --flash-attn", 0),
    ("--no-perf", 0),
    ("-f --file", 1),
    ("-bf --binary-file", 1),
    ("-ptc --print-token-count", 1),
    ("-r --reverse-prompt", 1),
    ("-cnv --conversation", 0),
    ("-no-cnv --no-conversation", 0),
    ("-i --interactive", 0),
    ("-if --interactive-first", 0),
    ("-mli --multiline-input", 0),
    ("--in-prefix-bos", 0),
    ("--in-prefix", 1),
    ("--in-suffix", 1),
    ("--no-warmup", 0),
    ("--samplers", 1),
    ("--sampling-seq --sampler-seq", 1),
    ("--ignore-eos", 0),
    ("--min-p", 1),
    ("--xtc-probability", 1),
    ("--xtc-threshold", 1),
    ("--typical", 1),
    ("--repeat-last-n", 1),
    ("--repeat-penalty", 1),
    ("--presence-penalty", 1),
    ("--frequency-penalty", 1),
    ("--dry-multiplier", 1),
    ("--dry-base", 1),
    ("--dry-allowed-length", 1),
    ("--dry-penalty-last-n", 1),
    ("--dry-sequence-breaker", 1),
    ("--dynatemp-range", 1),
    ("--dynatemp-exp", 1),
    ("--mirostat", 1),
    ("--mirostat-lr", 1),
    ("--mirostat-ent", 1),
    ("-l --logit-bias", 1),
    ("--grammar", 1),
    ("--grammar-file", 1),
    ("-j --json-schema", 1),
    ("--rope-scaling", 1),
    ("--rope-scale", 1),
    ("--rope-freq-base", 1),
    ("--rope-freq-scale", 1),
    ("--yarn-orig-ctx", 1),
    ("--yarn-ext-factor", 1),
    ("--yarn-attn-factor", 1),
    ("--yarn-beta-slow", 1),
    ("--yarn-beta-fast", 1),
    ("-gan --grp-attn-n", 1),
    ("-gaw --grp-attn-w", 1),
    ("-dkvc --dump-kv-cache", 0),
    ("-nkvo --no-kv-offload", 0),
    ("-ctk --cache-type-k", 1),
    ("-ctv --cache-type-v", 1),
    ("-dt --defrag-thold", 1),
    ("-np --parallel", 1),
    ("--rpc", 1),
    ("--mlock", 0),
    ("--no-mmap", 0),
    ("--numa", 1),
    ("-dev --device", 1),
    ("--list-devices", 0),
    ("-ngl --gpu-layers --n-gpu-layers", 1),
    ("-sm --split-mode", 1),
    ("-ts --tensor-split", 1),
    ("-mg --main-gpu", 1),
    ("--check-tensors", 0),
    ("--override-kv", 1),
    ("--lora", 1),
    ("--lora-scaled", 2),
    ("--control-vector", 1),
    ("--control-vector-scaled", 2),
    ("--control-vector-layer-range", 2),
    ("-mu --model-url", 1),
    ("-hf -hfr --hf-repo", 1),
    ("-hfd -hfrd --hf-repo-draft", 1),
    ("-hff --hf-file", 1),
    ("-hfv -hfrv --hf-repo-v", 1),
    ("-hffv --hf-file-v", 1),
    ("-hft --hf-token", 1),
    ("--jinja", 0),
    ("--chat-template", 1),
    ("--chat-template-file", 1),
    ("--simple-io", 0),
    ("--log-disable", 0),
    ("--log-file", 1),
    ("--log-colors", 0),
    ("-v --verbose --log-verbose", 0),
    ("-lv --verbosity --log-verbosity", 1),
    ("--log-prefix", 0),
    ("--log-timestamps", 0),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<LlamaArgs, ArgsError> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_what_mainer_clients_and_the_llama_cpp_readme_send() {
        let a = p(&[
            "--prompt-cache",
            "w7",
            "--prompt-cache-all",
            "--cache-type-k",
            "q8_0",
            "--repeat-penalty",
            "1.1",
            "-sp",
            "-n",
            "20",
            "--temp",
            "0.7",
            "--seed",
            "42",
            "--top-k",
            "5",
            "--top-p",
            "0.9",
            "-p",
            "<|im_start|>user hello",
        ])
        .unwrap();
        assert_eq!(a.prompt.as_deref(), Some("<|im_start|>user hello"));
        assert_eq!((a.n_predict, a.cache_name(), a.special, a.prompt_cache_all), (Some(20), "w7", true, true));
        assert_eq!((a.temperature, a.seed, a.top_k, a.top_p), (Some(0.7), Some(42), Some(5), Some(0.9)));
        assert_eq!(a.other_value("--cache-type-k"), Some("q8_0"));
        assert_eq!(a.other.len(), 2);
        let m = p(&["--model", "models/model.gguf", "-c", "128"]).unwrap();
        assert_eq!((m.model.as_deref(), m.ctx_size), (Some("models/model.gguf"), Some(128)));
    }

    /// The two parsers this one replaced disagreed here; llama.cpp's reading wins.
    #[test]
    fn seed_and_temperature_as_llama_cpp_reads_them() {
        assert_eq!(p(&["--seed", "-1"]).unwrap().seed, Some(DEFAULT_SEED));
        assert_eq!(p(&["--seed", "-2"]).unwrap().seed, Some(0xFFFF_FFFE));
        assert_eq!(p(&["--seed", "4294967295"]).unwrap().seed, Some(u32::MAX));
        assert!(matches!(p(&["--seed", "4294967296"]), Err(ArgsError::BadNumber { .. })), "beyond 32 bits");
        assert!(p(&["--seed", "1.5"]).is_err());
        // f32, as llama.cpp's float: 0.1 is the f32 nearest to it, not the f64.
        assert_eq!(p(&["--temp", "0.1"]).unwrap().temperature, Some(0.1f32));
        assert_eq!(p(&["--temp", "-3"]).unwrap().temperature, Some(0.0), "negative is greedy");
        assert_eq!(p(&["--temp", " 1e-1"]).unwrap().temperature, Some(0.1f32));
    }

    #[test]
    fn values_are_consumed_whatever_they_look_like() {
        assert_eq!(p(&["-p", "-5 degrees"]).unwrap().prompt.as_deref(), Some("-5 degrees"));
        assert_eq!(p(&["-p", "--temp"]).unwrap().prompt.as_deref(), Some("--temp"));
        assert_eq!(p(&["-p", ""]).unwrap().prompt.as_deref(), Some(""));
        assert_eq!(p(&["-n", "-1"]).unwrap().n_predict, Some(-1));
        assert_eq!(p(&["-n", "-2"]).unwrap().n_predict, Some(-2));
        assert_eq!(p(&["--repeat-last-n", "-1", "-p", "x"]).unwrap().prompt.as_deref(), Some("x"));
        assert_eq!(p(&["--lora-scaled", "a.gguf", "0.5", "-n", "3"]).unwrap().n_predict, Some(3));
        // Later flags override earlier ones.
        assert_eq!(p(&["-n", "1", "--n-predict", "7"]).unwrap().n_predict, Some(7));
    }

    #[test]
    fn double_dash_flags_take_underscores() {
        let a = p(&["--prompt_cache", "c", "--prompt_cache_all", "--n_predict", "4"]).unwrap();
        assert_eq!((a.cache_name(), a.prompt_cache_all, a.n_predict), ("c", true, Some(4)));
        assert!(matches!(p(&["-s_p"]), Err(ArgsError::UnknownFlag(_))), "single-dash flags are not rewritten");
    }

    #[test]
    fn what_llama_cpp_traps_on_is_a_typed_error() {
        assert_eq!(p(&["hello"]), Err(ArgsError::UnknownFlag("hello".into())));
        assert_eq!(p(&["--mystery"]), Err(ArgsError::UnknownFlag("--mystery".into())));
        assert_eq!(p(&["-t", "1"]), Err(ArgsError::UnknownFlag("-t".into())), "the canister removed -t");
        assert_eq!(p(&["-p"]), Err(ArgsError::MissingValue { flag: "-p".into() }));
        assert_eq!(p(&["--lora-scaled", "a"]), Err(ArgsError::MissingValue { flag: "--lora-scaled".into() }));
        assert!(matches!(p(&["-n", "ten"]), Err(ArgsError::BadNumber { .. })));
        assert!(matches!(p(&["-n", "12abc"]), Err(ArgsError::BadNumber { .. })), "llama.cpp would read 12");
        assert!(matches!(p(&["-n", "3000000000"]), Err(ArgsError::BadNumber { .. })), "beyond a C int");
        assert!(matches!(p(&["--temp", "nan"]), Err(ArgsError::BadNumber { .. })));
        assert!(matches!(p(&["--top-p", "inf"]), Err(ArgsError::BadNumber { .. })));
        assert!(p(&["-n", "ten"]).unwrap_err().to_string().contains("-n"));
    }

    #[test]
    fn formatting_parses_back() {
        let a = LlamaArgs {
            prompt: Some("-starts with a dash\\n".into()),
            n_predict: Some(-1),
            prompt_cache: Some("item-3".into()),
            prompt_cache_all: true,
            prompt_cache_ro: true,
            temperature: Some(0.7),
            seed: Some(DEFAULT_SEED),
            top_k: Some(-3),
            top_p: Some(0.35),
            special: true,
            escape: Some(false),
            model: Some("models/model.gguf".into()),
            ctx_size: Some(128),
            other: vec![("--repeat-penalty".into(), vec!["1.1".into()]), ("--no-warmup".into(), vec![])],
        };
        assert_eq!(parse(&a.to_args()).unwrap(), a);
        assert_eq!(parse(&LlamaArgs::default().to_args()).unwrap(), LlamaArgs::default());
        let args = LlamaArgs { prompt: Some("hi".into()), n_predict: Some(5), ..Default::default() }.to_args();
        assert_eq!(args, ["-n", "5", "-p", "hi"]);
    }

    #[test]
    fn the_prompt_escapes_as_in_llama_cpp() {
        assert_eq!(process_escapes(r#"a\nb\tc\\d\'e\"f"#), "a\nb\tc\\d'e\"f");
        assert_eq!(process_escapes(r"\x41\x4a!"), "AJ!");
        assert_eq!(process_escapes(r"\x4"), r"\x4", "one hex digit: kept");
        assert_eq!(process_escapes(r"\xzz \q end\"), r"\xzz \q end\");
        assert_eq!(process_escapes("no escapes: <|im_start|>"), "no escapes: <|im_start|>");
        let a = p(&["-p", r"line\nbreak"]).unwrap();
        assert_eq!(a.prompt_text(), "line\nbreak");
        let raw = p(&["--no-escape", "-p", r"line\nbreak"]).unwrap();
        assert_eq!(raw.prompt_text(), r"line\nbreak");
    }

    #[test]
    fn every_flag_of_the_table_is_accepted_with_its_values() {
        for &(names, arity) in IGNORED_FLAGS {
            for name in names.split(' ') {
                let mut args = vec![name.to_string()];
                args.extend((0..arity).map(|i| format!("{}", i + 1)));
                args.extend(["-n".to_string(), "9".to_string()]);
                let a = parse(&args).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(a.n_predict, Some(9), "{name} took the wrong number of values");
            }
        }
    }
}
