//! One conversation (one prompt cache) and how a `run_update` call steps it,
//! as the llama.cpp canister (v0.7.3) steps its prompt cache: each of its
//! calls is one run of llama.cpp's main loop over the cache file, and this
//! module reproduces what a client sees of that run.
//!
//! **The input.** A call with `-p TEXT` tokenizes the text (escapes
//! processed unless `--no-escape`, a BOS in front when the model wants one,
//! special-token texts such as `<|im_start|>` always parsed into their
//! tokens: llama.cpp parses them with or without `-sp`). A call with an
//! empty `-p` takes the whole cache as its input (an empty cache: just the
//! BOS). The cache is cut back to the longest prefix it shares with the
//! input; when the input is all prefix of a longer cache, its last token is
//! evaluated again (to have its logits). So clients resend the **full
//! prompt** until `prompt_remaining` is empty — the part already in the
//! cache costs nothing — and then send empty prompts. Sending
//! `prompt_remaining` back instead starts a new input after the BOS and
//! throws the ingested part away, as in llama.cpp.
//!
//! **The budgets.** `M = max_tokens_update` (0: none) caps the tokens
//! *evaluated* by one call, prompt and generated; `-n N` caps the tokens
//! *sampled* by one call (-1 and other negatives: no cap). A call
//! evaluates at most `M` new prompt tokens; once the prompt is in, it
//! samples and evaluates tokens until `N` are sampled, `M` evaluated, an
//! end-of-generation token is sampled and evaluated, or the context is full.
//! The token that uses up `N` is returned in `output` but **not evaluated**
//! (llama.cpp's loop ends before it): it is not in the cache nor in
//! `conversation`, and the next call samples again from the same place (the
//! same token under greedy decoding). A client that wants every sampled
//! token kept asks for `-n M+1`, so that `M` ends the call.
//!
//! **The answer's end.** `generated_eog` is true when an end-of-generation
//! token was sampled (or, as llama.cpp does, when the prompt's last token is
//! one), or when the context is full — then `error` says so (status 200):
//! llama.cpp would shift the context instead and go on. llama.cpp's default
//! context is 4096 positions whatever the model; ours is the model's own
//! length when smaller (stories260K: 128).
//!
//! **Text.** `output` and `conversation` print tokens as llama.cpp does:
//! control tokens (BOS, `<|im_end|>` ...) only with `-sp`. `output` holds a
//! character split over tokens back until it is complete (llama.cpp sends
//! the raw bytes, which may not be UTF-8). `prompt_remaining` prints the rest
//! of the input with its special tokens.
//!
//! **Counts** (as the llama.cpp canister v0.15+ reports them, per call):
//! prompt tokens of the input, reused from the cache, evaluated and
//! remaining (they add up), and the generated tokens this call evaluated.
//!
//! **Ours only.** A call also stops before about 36B instructions (the IC
//! limit is 40B), measured with the performance counter, whatever `M` says;
//! it stops before sampling, so every token it returns is kept (and never
//! one token short of `-n`, which a client reads as "ended by `-n`"). The
//! sampler's random state is kept between calls (llama.cpp seeds a fresh
//! sampler in every call): a seeded answer is the same however it is split,
//! and a token returned but not kept is sampled again with the same state.

use llm_engine::{Sampler, SamplerConfig, Session, Tokenizer, Utf8Stream};
use mainer_types::llama_args::{DEFAULT_SEED, DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P, LlamaArgs};
use mainer_types::llama_cpp::RunOutputRecord;

use crate::engine::Engine;

/// Instructions a call may use before it stops and returns what it has.
pub const INSTRUCTION_LIMIT: u64 = 36_000_000_000;
/// Largest batch of prompt tokens fed to the engine at once (batches grow
/// 1, 2, 4, ... so the first measurement is cheap).
const MAX_PROMPT_BATCH: usize = 32;
/// llama.cpp refuses a prompt that leaves fewer positions free.
const CONTEXT_MARGIN: usize = 4;

/// The instruction counter (`ic0.performance_counter(0)` in the canister).
pub trait Meter {
    fn instructions(&self) -> u64;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallLimits {
    /// Tokens evaluated per call, prompt or generated; 0: no limit.
    pub max_tokens: u64,
    pub instruction_limit: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChatError {
    /// An empty prompt on an empty conversation, with a model that adds no BOS.
    EmptyInput,
    PromptTooLong {
        tokens: usize,
        max: usize,
    },
    Engine(llm_engine::Error),
    /// A sampling flag's value is not a number it can take.
    BadArgument {
        flag: String,
        value: String,
    },
}

impl From<llm_engine::Error> for ChatError {
    fn from(e: llm_engine::Error) -> Self {
        ChatError::Engine(e)
    }
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatError::EmptyInput => {
                write!(f, "input is empty: send a prompt with -p (the model adds no BOS to start from)")
            }
            ChatError::PromptTooLong { tokens, max } => {
                write!(f, "prompt is too long ({tokens} tokens, max {max}); start a new chat or shorten it")
            }
            ChatError::Engine(e) => write!(f, "inference failed: {e}"),
            ChatError::BadArgument { flag, value } => write!(f, "invalid value for {flag}: {value}"),
        }
    }
}

/// The sampling flags of a call, with llama.cpp's defaults: `--temp`,
/// `--top-k`, `--top-p`, `--seed`, and `--min-p`, `--repeat-penalty`,
/// `--repeat-last-n` (-1: the whole context, 0: off), `--frequency-penalty`,
/// `--presence-penalty`. A malformed value is an error (as llama.cpp's
/// argument parser refuses it).
pub fn sampling(args: &LlamaArgs) -> Result<SamplerConfig, ChatError> {
    let bad = |flag: &str, value: &str| ChatError::BadArgument { flag: flag.to_string(), value: value.to_string() };
    let float = |flag: &str, default: f32| -> Result<f32, ChatError> {
        match args.other_value(flag) {
            None => Ok(default),
            Some(v) => v.trim_start().parse::<f32>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad(flag, v)),
        }
    };
    let defaults = SamplerConfig::default();
    let repeat_last_n = match args.other_value("--repeat-last-n") {
        None => defaults.repeat_last_n,
        Some(v) => match v.trim_start().parse::<i32>() {
            Ok(-1) => None,
            Ok(n) if n >= 0 => Some(n as usize),
            _ => return Err(bad("--repeat-last-n", v)),
        },
    };
    Ok(SamplerConfig {
        temperature: args.temperature.unwrap_or(DEFAULT_TEMPERATURE),
        top_k: args.top_k.unwrap_or(DEFAULT_TOP_K).max(0) as usize,
        top_p: args.top_p.unwrap_or(DEFAULT_TOP_P),
        min_p: float("--min-p", defaults.min_p)?,
        repeat_penalty: float("--repeat-penalty", defaults.repeat_penalty)?,
        repeat_last_n,
        frequency_penalty: float("--frequency-penalty", defaults.frequency_penalty)?,
        presence_penalty: float("--presence-penalty", defaults.presence_penalty)?,
        seed: args.seed.unwrap_or(DEFAULT_SEED) as u64,
    })
}

pub struct Conversation {
    /// The cache: every token of it is evaluated (its keys and values held).
    session: Session,
    /// The sampler's random state since the input last changed.
    rng_state: Option<u64>,
    /// Bytes of a character not yet complete in `output`.
    utf8: Utf8Stream,
    pub last_used_ns: u64,
}

/// Whether `cost` more instructions still fit, with a quarter of margin.
fn fits(meter: &dyn Meter, limits: &CallLimits, cost: Option<u64>) -> bool {
    cost.is_none_or(|c| meter.instructions().saturating_add(c.saturating_add(c / 4)) <= limits.instruction_limit)
}

fn render(tokenizer: &Tokenizer, tokens: &[u32], special: bool) -> String {
    let bytes: Vec<u8> = tokens.iter().flat_map(|&t| tokenizer.token_piece(t, special)).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The rest of the input as text, with its special tokens. Bytes that
/// continue a character whose start this call ingested are left out, so the
/// text stays valid and shrinks with every call (llama.cpp sends the raw
/// bytes, which may not be UTF-8).
fn remaining_text(tokenizer: &Tokenizer, rest: &[u32]) -> String {
    let bytes: Vec<u8> = rest.iter().flat_map(|&t| tokenizer.token_piece(t, true)).collect();
    let start = bytes.iter().take_while(|&&b| (b & 0xC0) == 0x80).count();
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// What one call did, for its record.
struct Step {
    input: usize,
    reused: usize,
    consumed: usize,
    generated: u64,
    output: String,
    eog: bool,
    context_full: bool,
}

impl Conversation {
    pub fn new(session: Session, now_ns: u64) -> Self {
        Conversation { session, rng_state: None, utf8: Utf8Stream::new(), last_used_ns: now_ns }
    }

    /// The conversation's session state as bytes (see `llm_engine::snapshot`).
    pub fn snapshot(&self, model_id: &[u8; 32]) -> Vec<u8> {
        self.session.snapshot(model_id)
    }

    /// Positions held in the KV cache.
    pub fn positions(&self) -> usize {
        self.session.len()
    }

    /// Every token of the cache.
    pub fn tokens(&self) -> &[u32] {
        self.session.tokens()
    }

    /// One `run_update` call. `prefix(model, input)` may give a saved
    /// session to start from when the conversation is still empty (a shared
    /// prompt prefix, see `prefixes`).
    pub fn run(
        &mut self,
        engine: &mut Engine,
        args: &LlamaArgs,
        limits: &CallLimits,
        meter: &dyn Meter,
        prefix: &dyn Fn(&llm_engine::Model, &[u32]) -> Option<Session>,
    ) -> Result<RunOutputRecord, ChatError> {
        let prompt = args.prompt_text();
        let input = self.input(&engine.tokenizer, &prompt)?;
        let max = self.session.capacity().saturating_sub(CONTEXT_MARGIN);
        if !prompt.is_empty() && input.len() > max {
            return Err(ChatError::PromptTooLong { tokens: input.len(), max });
        }
        let n_predict = args.n_predict_or_default();
        if n_predict == 0 {
            // llama.cpp's loop does not run at all: nothing is read or written.
            return Ok(RunOutputRecord {
                status_code: 200,
                prompt_remaining: prompt,
                n_prompt_tokens: Some(input.len() as u64),
                n_prompt_tokens_cached: Some(0),
                n_prompt_tokens_decoded: Some(0),
                n_tokens_generated: Some(0),
                n_prompt_tokens_remaining: Some(input.len() as u64),
                ..Default::default()
            });
        }
        if self.session.is_empty()
            && let Some(session) = prefix(&engine.model, &input)
        {
            self.session = session;
        }
        if !prompt.is_empty() {
            self.rng_state = None;
            self.utf8 = Utf8Stream::new();
        }
        let step = self.step(engine, &input, n_predict, args, limits, meter)?;
        let tokenizer = &engine.tokenizer;
        let error = match step.context_full {
            true => format!(
                "context full: the answer stopped at {} positions (generated_eog is set); start a new chat",
                self.session.capacity()
            ),
            false => String::new(),
        };
        Ok(RunOutputRecord {
            status_code: 200,
            output: step.output,
            conversation: render(tokenizer, self.session.tokens(), args.special),
            error,
            prompt_remaining: remaining_text(tokenizer, &input[step.consumed..]),
            generated_eog: step.eog,
            n_prompt_tokens: Some(step.input as u64),
            n_prompt_tokens_cached: Some(step.reused as u64),
            n_prompt_tokens_decoded: Some((step.consumed - step.reused) as u64),
            n_tokens_generated: Some(step.generated),
            n_prompt_tokens_remaining: Some((step.input - step.consumed) as u64),
        })
    }

    /// llama.cpp's `embd_inp`: the prompt's tokens, or the cache for an empty prompt.
    fn input(&self, tokenizer: &Tokenizer, prompt: &str) -> Result<Vec<u32>, ChatError> {
        let mut input = match prompt.is_empty() {
            false => tokenizer.encode(prompt, true, true),
            true => self.session.tokens().to_vec(),
        };
        if input.is_empty() {
            input = tokenizer.encode("", true, true);
        }
        if input.is_empty() { Err(ChatError::EmptyInput) } else { Ok(input) }
    }

    fn step(
        &mut self,
        engine: &mut Engine,
        input: &[u32],
        n_predict: i32,
        args: &LlamaArgs,
        limits: &CallLimits,
        meter: &dyn Meter,
    ) -> Result<Step, ChatError> {
        let cache = self.session.tokens();
        let matched = cache.iter().zip(input).take_while(|(a, b)| a == b).count();
        let reused = if matched == input.len() && cache.len() > input.len() { input.len() - 1 } else { matched };
        self.session.truncate(reused);

        let m = limits.max_tokens as usize;
        let end = if m > 0 { input.len().min(matched + m) } else { input.len() };
        let mut step = Step {
            input: input.len(),
            reused,
            consumed: reused,
            generated: 0,
            output: String::new(),
            eog: false,
            context_full: false,
        };
        // llama.cpp's display counts a batch of one token as generated text.
        if end == 1 {
            step.output = render(&engine.tokenizer, &input[..1], args.special);
        }
        self.ingest(engine, &input[..end], limits, meter)?;
        step.consumed = self.session.len();
        let mut evaluated = step.consumed - reused;
        if step.consumed < input.len() {
            return Ok(step);
        }
        step.eog = engine.tokenizer.is_end_of_generation(input[input.len() - 1]);
        if evaluated > 0 && (step.eog || (m > 0 && evaluated >= m)) {
            return Ok(step);
        }

        let sampling = sampling(args)?;
        let mut to_sample = (n_predict > 0).then_some(n_predict as u64);
        loop {
            if to_sample == Some(0) {
                break;
            }
            if self.session.remaining() == 0 {
                step.context_full = true;
                step.eog = true;
                break;
            }
            let last = to_sample == Some(1);
            // The guard is not applied to the last token, which is sampled
            // but not evaluated (a small part of a step): so a call that
            // ends one token short of -n always ended by -n.
            if !last && !fits(meter, limits, engine.step_cost) {
                break;
            }
            let before = meter.instructions();
            let mut sampler = match self.rng_state {
                None => Sampler::new(sampling.clone()),
                Some(state) => Sampler::new(sampling.clone()).with_rng_state(state),
            };
            let token = self.session.sample_next(&engine.model, &mut sampler)?;
            to_sample = to_sample.map(|n| n - 1);
            let piece = engine.tokenizer.token_piece(token, args.special);
            let end_of_generation = engine.tokenizer.is_end_of_generation(token);
            step.eog |= end_of_generation;
            if last {
                // Not kept: shown from a copy of the stream and the random
                // state, so that sampling it again next call gives it again.
                let mut stream = self.utf8.clone();
                step.output.push_str(&stream.push(&piece));
                if end_of_generation {
                    step.output.push_str(&stream.finish());
                }
                break;
            }
            self.rng_state = Some(sampler.rng_state());
            step.output.push_str(&self.utf8.push(&piece));
            self.session.feed(&engine.model, &[token])?;
            engine.step_cost = Some(meter.instructions() - before);
            evaluated += 1;
            step.generated += 1;
            if step.eog || (m > 0 && evaluated >= m) {
                break;
            }
        }
        if step.eog {
            step.output.push_str(&self.utf8.finish());
        }
        Ok(step)
    }

    /// Evaluates the tokens of `input` the cache does not hold yet, in
    /// growing batches, as far as the instruction limit allows.
    fn ingest(
        &mut self,
        engine: &mut Engine,
        input: &[u32],
        limits: &CallLimits,
        meter: &dyn Meter,
    ) -> Result<(), ChatError> {
        let mut batch = 1;
        while self.session.len() < input.len() {
            let next = self.session.len();
            let mut n = batch.min(input.len() - next);
            if let Some(cost) = engine.prompt_token_cost {
                let room = limits.instruction_limit.saturating_sub(meter.instructions());
                let affordable = (room / cost.saturating_add(cost / 4).max(1)) as usize;
                if affordable == 0 {
                    break;
                }
                n = n.min(affordable);
            }
            let before = meter.instructions();
            self.session.feed(&engine.model, &input[next..next + n])?;
            engine.prompt_token_cost = Some((meter.instructions() - before) / n as u64);
            batch = (batch * 2).min(MAX_PROMPT_BATCH);
        }
        Ok(())
    }
}
