//! One conversation (one prompt cache) and how a `run_update` call steps it.
//!
//! The conversation keeps its KV cache (an engine `Session`) between calls.
//! A call has a token budget `M = max_tokens_update` (0: none) and always
//! stops before about 36B instructions (the IC limit is 40B), measured with
//! the performance counter, whatever `M` says.
//!
//! **Prompts.** `-p TEXT` starts a new turn: the text is tokenized (with BOS
//! when the conversation is empty, as llama.cpp does; special-token texts are
//! parsed with `-sp`) and appended. A call ingests at most `M` of its tokens
//! (the BOS the canister adds rides along for free, so every call makes
//! progress) and returns the rest as `prompt_remaining`, decoded back to text.
//! The pending tokens are kept here, in the conversation: a later call whose
//! `-p` is exactly that `prompt_remaining` — or the whole text of the turn
//! again, as llama.cpp clients send it — continues with them, so the text is
//! a confirmation and never re-tokenized (re-tokenizing a piece of text need
//! not give the same tokens). An empty `-p` continues too. Any other text
//! abandons the unfinished turn (its ingested part is dropped from the cache)
//! and starts a new one. The split point is moved so that `prompt_remaining`
//! does not start inside a UTF-8 character (which may cost a call a few
//! tokens more or less than `M`).
//!
//! **Generation.** Once the prompt is in, the same call goes on generating
//! with what is left of its budget (like the llama.cpp canister); calls with
//! an empty `-p` generate up to `M` tokens each. `output` is the text of this
//! call's tokens (a UTF-8 character split over tokens comes out whole, in the
//! call that completes it). The answer ends — `generated_eog = true`, on that
//! call and every later one — at an end-of-generation token (not shown), when
//! `-n` tokens were generated, or when the context is full (then `error`
//! says so). The sampler's random state lives in the conversation and the
//! seed applies when an answer starts, so a seeded answer is the same however
//! it is split into calls. The last sampled token is fed to the model only
//! when the conversation goes on (the next call), which saves a forward pass
//! at the end of every answer.

use llm_engine::tokenizer::TokenType;
use llm_engine::{Sampler, SamplerConfig, Session, Tokenizer, Utf8Stream};
use mainer_types::llama_cpp::RunOutputRecord;

use crate::args::LlmArgs;
use crate::engine::Engine;

/// Instructions a call may use before it stops and returns what it has.
pub const INSTRUCTION_LIMIT: u64 = 36_000_000_000;
/// Largest batch of prompt tokens fed to the engine at once (batches grow
/// 1, 2, 4, ... so the first measurement is cheap).
const MAX_PROMPT_BATCH: usize = 32;

/// The instruction counter (`ic0.performance_counter(0)` in the canister).
pub trait Meter {
    fn instructions(&self) -> u64;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallLimits {
    /// Tokens per call, prompt or generated; 0: no limit.
    pub max_tokens: u64,
    pub instruction_limit: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChatError {
    /// An empty prompt on a conversation that has nothing to continue from.
    NothingToGenerate,
    PromptTooLong {
        tokens: usize,
        used: usize,
        capacity: usize,
    },
    Engine(llm_engine::Error),
}

impl From<llm_engine::Error> for ChatError {
    fn from(e: llm_engine::Error) -> Self {
        ChatError::Engine(e)
    }
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatError::NothingToGenerate => write!(
                f,
                "nothing to generate from: the conversation is empty (send a prompt with -p; \
                 an idle conversation may have been dropped)"
            ),
            ChatError::PromptTooLong { tokens, used, capacity } => write!(
                f,
                "context full: the prompt has {tokens} tokens but only {} of {capacity} positions are free; \
                 start a new chat",
                capacity - used
            ),
            ChatError::Engine(e) => write!(f, "inference failed: {e}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AnswerEnd {
    EndToken,
    Limit,
    ContextFull,
}

#[derive(Default)]
struct Answer {
    generated: u64,
    end: Option<AnswerEnd>,
    /// None until the first token: the seed applies then.
    rng_state: Option<u64>,
    utf8: Utf8Stream,
}

/// A prompt turn not yet fully ingested.
struct Pending {
    /// The previous answer's last token (if it was not fed yet), then the
    /// turn's tokens.
    tokens: Vec<u32>,
    /// Index of the next token to feed.
    next: usize,
    /// Leading tokens the caller did not write (that carried token, a BOS
    /// the canister added): they do not count against the budget.
    free: usize,
    carry: Option<u32>,
    /// The `-p` text that started the turn.
    text: String,
    /// The `prompt_remaining` last returned.
    remaining_text: String,
    special: bool,
    /// Session length when the turn started.
    turn_start: usize,
}

pub struct Conversation {
    session: Session,
    /// A sampled token not yet fed to the model.
    unfed: Option<u32>,
    pending: Option<Pending>,
    answer: Answer,
    /// Prompt tokens of the latest turn.
    turn_tokens: u64,
    /// `-n` as last given: the answer's length limit.
    n_predict: Option<u64>,
    pub last_used_ns: u64,
}

/// Tokens a call may still spend.
struct Budget(Option<u64>);

impl Budget {
    fn new(max_tokens: u64) -> Self {
        Budget((max_tokens > 0).then_some(max_tokens))
    }
    fn allow(&self, n: usize) -> usize {
        self.0.map_or(n, |left| n.min(left as usize))
    }
    fn spend(&mut self, n: usize) {
        if let Some(left) = &mut self.0 {
            *left = left.saturating_sub(n as u64);
        }
    }
    fn exhausted(&self) -> bool {
        self.0 == Some(0)
    }
}

/// Whether `cost` more instructions still fit, with a quarter of margin.
fn fits(meter: &dyn Meter, limits: &CallLimits, cost: Option<u64>) -> bool {
    cost.is_none_or(|c| meter.instructions().saturating_add(c.saturating_add(c / 4)) <= limits.instruction_limit)
}

/// The bytes a pending prompt token stands for in the caller's text.
fn source_bytes(tokenizer: &Tokenizer, token: u32, special: bool) -> Vec<u8> {
    match tokenizer.token_type(token) {
        Some(TokenType::Control) if special => tokenizer.token_text(token).unwrap_or_default().as_bytes().to_vec(),
        _ => tokenizer.token_bytes(token),
    }
}

impl Conversation {
    pub fn new(session: Session, now_ns: u64) -> Self {
        Conversation {
            session,
            unfed: None,
            pending: None,
            answer: Answer::default(),
            turn_tokens: 0,
            n_predict: None,
            last_used_ns: now_ns,
        }
    }

    /// Positions held in the KV cache.
    pub fn positions(&self) -> usize {
        self.session.len()
    }

    /// Every token of the conversation, the not yet fed one included.
    pub fn tokens(&self) -> Vec<u32> {
        let mut all = self.session.tokens().to_vec();
        all.extend(self.unfed);
        all
    }

    /// One `run_update` call.
    pub fn run(
        &mut self,
        engine: &mut Engine,
        args: &LlmArgs,
        limits: &CallLimits,
        meter: &dyn Meter,
    ) -> Result<RunOutputRecord, ChatError> {
        if let Some(n) = args.n_predict {
            self.n_predict = n;
        }
        let cached = self.session.len() as u64;
        let mut budget = Budget::new(limits.max_tokens);
        let prompt = args.prompt.as_deref().unwrap_or("");
        if !prompt.is_empty() && !self.continues_pending(prompt) {
            self.abandon_pending();
            self.start_turn(&engine.tokenizer, prompt, args.special)?;
        }
        let mut decoded = 0;
        if self.pending.is_some() {
            decoded = self.ingest(engine, prompt.len(), &mut budget, limits, meter)?;
        } else if self.session.is_empty() && self.unfed.is_none() {
            return Err(ChatError::NothingToGenerate);
        }
        let mut output = String::new();
        if self.pending.is_none() && !budget.exhausted() {
            output = self.generate(engine, &mut budget, &args.sampling(), limits, meter)?;
        }
        let (prompt_remaining, remaining) = match &self.pending {
            Some(p) => (p.remaining_text.clone(), (p.tokens.len() - p.next) as u64),
            None => (String::new(), 0),
        };
        let error = match self.answer.end {
            Some(AnswerEnd::ContextFull) if self.pending.is_none() => {
                format!("context full: the answer stopped at {} positions; start a new chat", self.session.capacity())
            }
            _ => String::new(),
        };
        Ok(RunOutputRecord {
            status_code: 200,
            output,
            conversation: engine.tokenizer.decode(&self.tokens()),
            error,
            prompt_remaining,
            generated_eog: self.pending.is_none() && self.answer.end.is_some(),
            n_prompt_tokens: Some(self.turn_tokens),
            n_prompt_tokens_cached: Some(cached),
            n_prompt_tokens_decoded: Some(decoded),
            n_tokens_generated: Some(self.answer.generated),
            n_prompt_tokens_remaining: Some(remaining),
        })
    }

    fn continues_pending(&self, prompt: &str) -> bool {
        self.pending.as_ref().is_some_and(|p| prompt == p.remaining_text || prompt == p.text)
    }

    /// Drops an unfinished turn: the cache goes back to where it started.
    fn abandon_pending(&mut self) {
        let Some(p) = self.pending.take() else { return };
        self.session.truncate(p.turn_start);
        self.unfed = p.carry;
        // A truncation loses the logits: without a carried token, the last
        // token is taken back to be fed again when the conversation goes on.
        if self.unfed.is_none() && p.next > 0 {
            let last = self.session.tokens().last().copied();
            if let Some(token) = last {
                self.session.truncate(self.session.len() - 1);
                self.unfed = Some(token);
            }
        }
    }

    fn start_turn(&mut self, tokenizer: &Tokenizer, text: &str, special: bool) -> Result<(), ChatError> {
        let fresh = self.session.is_empty() && self.unfed.is_none();
        let tokens = tokenizer.encode(text, fresh, special);
        let needed = tokens.len() + self.unfed.is_some() as usize;
        if needed > self.session.remaining() {
            return Err(ChatError::PromptTooLong {
                tokens: tokens.len(),
                used: self.session.len(),
                capacity: self.session.capacity(),
            });
        }
        let bos = fresh && !tokens.is_empty() && tokens.first().copied() == tokenizer.bos();
        let carry = self.unfed.take();
        self.answer = Answer::default();
        self.turn_tokens = tokens.len() as u64;
        self.pending = Some(Pending {
            tokens: carry.into_iter().chain(tokens).collect(),
            next: 0,
            free: usize::from(carry.is_some()) + usize::from(bos),
            carry,
            text: text.to_string(),
            remaining_text: String::new(),
            special,
            turn_start: self.session.len(),
        });
        Ok(())
    }

    /// Feeds pending prompt tokens; returns how many of the caller's.
    /// `sent` is the length of the prompt text of this call (0: none).
    fn ingest(
        &mut self,
        engine: &mut Engine,
        sent: usize,
        budget: &mut Budget,
        limits: &CallLimits,
        meter: &dyn Meter,
    ) -> Result<u64, ChatError> {
        let Conversation { session, pending, .. } = self;
        let Some(p) = pending.as_mut() else { return Ok(0) };
        let start = p.next;
        let len = p.tokens.len();
        let free = p.free.saturating_sub(start).min(len - start);
        let planned = start + free + budget.allow(len - start - free);
        // Progress a client can see: the text left must be shorter than the
        // text sent (a SentencePiece space-prefix token alone is not).
        let sizes: Vec<usize> = p.tokens.iter().map(|&t| source_bytes(&engine.tokenizer, t, p.special).len()).collect();
        let sent = if sent > 0 { sent } else { p.remaining_text.len() };
        let mut rest: usize = sizes[start..].iter().sum();
        let mut min_end = start;
        while min_end < len && (min_end < start + free + 1 || (sent > 0 && rest >= sent)) {
            rest -= sizes[min_end];
            min_end += 1;
        }
        let end = snap_to_char_start(&engine.tokenizer, p, planned.max(min_end), min_end);

        let mut batch = 1;
        while p.next < end {
            let mut n = batch.min(end - p.next);
            if let Some(cost) = engine.prompt_token_cost {
                let room = limits.instruction_limit.saturating_sub(meter.instructions());
                let affordable = (room / cost.saturating_add(cost / 4).max(1)) as usize;
                if affordable == 0 {
                    break;
                }
                n = n.min(affordable);
            }
            let before = meter.instructions();
            session.feed(&engine.model, &p.tokens[p.next..p.next + n])?;
            engine.prompt_token_cost = Some((meter.instructions() - before) / n as u64);
            p.next += n;
            batch = (batch * 2).min(MAX_PROMPT_BATCH);
        }
        let fed = p.next - start;
        budget.spend(fed - fed.min(free));
        let carried = usize::from(p.carry.is_some() && start == 0 && fed > 0);
        if p.next == p.tokens.len() {
            *pending = None;
        } else {
            let rest: Vec<u8> =
                p.tokens[p.next..].iter().flat_map(|&t| source_bytes(&engine.tokenizer, t, p.special)).collect();
            p.remaining_text = String::from_utf8_lossy(&rest).into_owned();
        }
        Ok((fed - carried) as u64)
    }

    fn generate(
        &mut self,
        engine: &mut Engine,
        budget: &mut Budget,
        sampling: &SamplerConfig,
        limits: &CallLimits,
        meter: &dyn Meter,
    ) -> Result<String, ChatError> {
        let mut output = String::new();
        if self.answer.end.is_some() {
            return Ok(output);
        }
        loop {
            if self.n_predict.is_some_and(|n| self.answer.generated >= n) {
                self.answer.end = Some(AnswerEnd::Limit);
                break;
            }
            if budget.exhausted() || !fits(meter, limits, engine.step_cost) {
                break;
            }
            let before = meter.instructions();
            let fed = self.unfed.is_some();
            if let Some(token) = self.unfed {
                if self.session.remaining() == 0 {
                    self.answer.end = Some(AnswerEnd::ContextFull);
                    break;
                }
                self.session.feed(&engine.model, &[token])?;
                self.unfed = None;
            }
            let mut sampler = match self.answer.rng_state {
                None => Sampler::new(sampling.clone()),
                Some(state) => Sampler::new(sampling.clone()).with_rng_state(state),
            };
            let token = self.session.sample_next(&engine.model, &mut sampler)?;
            self.answer.rng_state = Some(sampler.rng_state());
            self.answer.generated += 1;
            budget.spend(1);
            self.unfed = Some(token);
            if fed {
                // Steps without a feed (the first of an answer) are cheaper.
                engine.step_cost = Some(meter.instructions() - before);
            }
            if engine.tokenizer.is_end_of_generation(token) {
                self.answer.end = Some(AnswerEnd::EndToken);
                break;
            }
            output.push_str(&self.answer.utf8.push(&engine.tokenizer.token_bytes(token)));
        }
        if self.answer.end.is_some() {
            output.push_str(&self.answer.utf8.finish());
        }
        Ok(output)
    }
}

/// Moves `end` (exclusive) so that the prompt text left after it does not
/// start inside a UTF-8 character: back while above `min_end`, otherwise
/// forward.
fn snap_to_char_start(tokenizer: &Tokenizer, p: &Pending, end: usize, min_end: usize) -> usize {
    let starts_char = |i: usize| {
        i >= p.tokens.len()
            || source_bytes(tokenizer, p.tokens[i], p.special).first().is_none_or(|&b| (b & 0xC0) != 0x80)
    };
    let mut e = end;
    while e > min_end && !starts_char(e) {
        e -= 1;
    }
    if starts_char(e) {
        return e;
    }
    let mut e = end;
    while !starts_char(e) {
        e += 1;
    }
    e
}
