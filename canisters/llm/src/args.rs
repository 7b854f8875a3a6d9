//! The llama.cpp command-line flags the canister understands.
//!
//! A flag that takes a value always consumes the next argument, even one that
//! starts with `-` (a prompt may). Unknown flags are tolerated as llama.cpp
//! clients send many (`--samplers temperature`, `--repeat-penalty 1.1`): an
//! unknown flag followed by an argument that does not start with `-` is
//! taken to be a flag with that value, and both are skipped.

/// llama.cpp's default sampling settings, used when a flag is absent.
pub const DEFAULT_TEMPERATURE: f32 = 0.8;
pub const DEFAULT_TOP_K: usize = 40;
pub const DEFAULT_TOP_P: f32 = 0.95;
/// The seed without `--seed` (or with a negative one, llama.cpp's "random"):
/// llama.cpp's default seed value, so runs stay reproducible.
pub const DEFAULT_SEED: u64 = 0xFFFF_FFFF;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LlmArgs {
    /// `-p` / `--prompt`
    pub prompt: Option<String>,
    /// `-n` / `--n-predict`: `Some(None)` is a negative value (no limit).
    pub n_predict: Option<Option<u64>>,
    /// `--prompt-cache NAME`
    pub prompt_cache: Option<String>,
    /// `--temp`
    pub temperature: Option<f32>,
    /// `--seed` / `-s`; negative values are `Some(None)`.
    pub seed: Option<Option<u64>>,
    /// `--top-k`; 0 or negative disables it.
    pub top_k: Option<usize>,
    /// `--top-p`
    pub top_p: Option<f32>,
    /// `-sp` / `--special`: special-token texts in the prompt become their tokens.
    pub special: bool,
    /// `-m` / `--model PATH`
    pub model: Option<String>,
    /// `-c` / `--ctx-size N`; 0 means the model's own.
    pub ctx_size: Option<u64>,
}

impl LlmArgs {
    /// The conversation a call is about; "" without `--prompt-cache`.
    pub fn cache_name(&self) -> &str {
        self.prompt_cache.as_deref().unwrap_or("")
    }

    pub fn sampling(&self) -> llm_engine::SamplerConfig {
        llm_engine::SamplerConfig {
            temperature: self.temperature.unwrap_or(DEFAULT_TEMPERATURE),
            top_k: self.top_k.unwrap_or(DEFAULT_TOP_K),
            top_p: self.top_p.unwrap_or(DEFAULT_TOP_P),
            seed: self.seed.flatten().unwrap_or(DEFAULT_SEED),
            ..llm_engine::SamplerConfig::default()
        }
    }
}

/// Parses `args`; the error names the offending flag.
pub fn parse(args: &[String]) -> Result<LlmArgs, String> {
    let mut out = LlmArgs::default();
    let mut it = args.iter().peekable();
    while let Some(flag) = it.next() {
        let mut value = || it.next().map(String::as_str).ok_or_else(|| format!("flag {flag} needs a value"));
        match flag.as_str() {
            "-p" | "--prompt" => out.prompt = Some(value()?.to_string()),
            "-n" | "--n-predict" => out.n_predict = Some(u64::try_from(number::<i64>(flag, value()?)?).ok()),
            "--prompt-cache" => out.prompt_cache = Some(value()?.to_string()),
            "--temp" => out.temperature = Some(finite(flag, number(flag, value()?)?)?),
            "-s" | "--seed" => out.seed = Some(u64::try_from(number::<i64>(flag, value()?)?).ok()),
            "--top-k" => out.top_k = Some(usize::try_from(number::<i64>(flag, value()?)?).unwrap_or(0)),
            "--top-p" => {
                let p = finite(flag, number(flag, value()?)?)?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("flag {flag}: {p} is not between 0 and 1"));
                }
                out.top_p = Some(p);
            }
            "-m" | "--model" => out.model = Some(value()?.to_string()),
            "-c" | "--ctx-size" => out.ctx_size = Some(number(flag, value()?)?),
            "-sp" | "--special" => out.special = true,
            unknown if unknown.starts_with('-') => {
                if it.peek().is_some_and(|next| !next.starts_with('-')) {
                    it.next();
                }
            }
            stray => return Err(format!("unexpected argument {stray:?} (not a flag)")),
        }
    }
    Ok(out)
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.trim().parse().map_err(|_| format!("flag {flag}: {text:?} is not a valid number"))
}

fn finite(flag: &str, x: f32) -> Result<f32, String> {
    if x.is_finite() { Ok(x) } else { Err(format!("flag {flag}: {x} is not a finite number")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<LlmArgs, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_what_the_mainer_client_sends() {
        let a = p(&[
            "--prompt-cache",
            "w7",
            "--prompt-cache-all",
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
        assert_eq!((a.n_predict, a.cache_name(), a.special), (Some(Some(20)), "w7", true));
        let s = a.sampling();
        assert_eq!((s.temperature, s.top_k, s.top_p, s.seed), (0.7, 5, 0.9, 42));
        let m = p(&["--model", "models/model.gguf", "-c", "128"]).unwrap();
        assert_eq!((m.model.as_deref(), m.ctx_size), (Some("models/model.gguf"), Some(128)));
    }

    #[test]
    fn defaults_and_negative_values() {
        let d = p(&[]).unwrap();
        assert_eq!(d.cache_name(), "");
        let s = d.sampling();
        assert_eq!((s.temperature, s.top_k, s.top_p, s.seed), (0.8, 40, 0.95, DEFAULT_SEED));
        let n = p(&["-n", "-1", "--seed", "-1", "--top-k", "-3"]).unwrap();
        assert_eq!((n.n_predict, n.seed, n.top_k), (Some(None), Some(None), Some(0)));
        assert_eq!(n.sampling().seed, DEFAULT_SEED);
    }

    #[test]
    fn values_may_start_with_a_dash_or_be_empty_and_unknown_flags_pass() {
        assert_eq!(p(&["-p", "-5 degrees"]).unwrap().prompt.as_deref(), Some("-5 degrees"));
        assert_eq!(p(&["-p", ""]).unwrap().prompt.as_deref(), Some(""));
        let a = p(&["--samplers", "temperature", "--no-warmup", "-p", "hi", "--mystery"]).unwrap();
        assert_eq!(a.prompt.as_deref(), Some("hi"));
    }

    #[test]
    fn bad_values_are_errors_naming_the_flag() {
        assert!(p(&["-n", "ten"]).unwrap_err().contains("-n"));
        assert!(p(&["--temp", "hot"]).unwrap_err().contains("--temp"));
        assert!(p(&["--temp", "NaN"]).unwrap_err().contains("finite"));
        assert!(p(&["--top-p", "1.5"]).unwrap_err().contains("between"));
        assert!(p(&["-p"]).unwrap_err().contains("needs a value"));
        assert!(p(&["hello"]).unwrap_err().contains("not a flag"));
    }
}
