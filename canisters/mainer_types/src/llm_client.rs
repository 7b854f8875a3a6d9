//! The client side of the llama.cpp canister's multi-call generation
//! protocol, as a state machine without I/O: the caller asks for the next
//! call, makes it however it likes (an inter-canister call in the controller,
//! a direct call in tests) and feeds the result back.
//!
//! It drives every llama.cpp canister release in use — v0.7.x, which reports
//! no token counts, and v0.15+, which does — and our `llm` canister, which
//! speaks the same protocol:
//!
//! 1. `get_max_tokens`: the LLM's `max_tokens_update` `M`, the tokens one
//!    call may evaluate (a failed call: [`ClientLimits::tokens_per_call`]).
//! 2. `new_chat` with a prompt-cache name of the answer's own.
//! 3. `run_update` with the **full prompt** and `-n 1` until
//!    `prompt_remaining` is empty: the LLM keeps what it has ingested and
//!    skips it the next time. (Sending `prompt_remaining` instead would start
//!    a new input and throw the ingested part away.) The output of these
//!    calls is not used: the one token the last of them samples is not kept
//!    by the LLM, and the first generating call samples it again.
//! 4. `run_update` with an empty prompt until the answer has `max_tokens`
//!    tokens or the LLM says `generated_eog`. Each call asks for
//!    `-n M+1` — so that `M` ends the call and every token it samples is
//!    kept (with `-n M` the LLM would return its last token without keeping
//!    it, and the next call would sample it again: a repeated token under
//!    greedy decoding) — or, for the answer's last tokens, `-n left`.
//!    Tokens are counted from `n_tokens_generated` when the LLM reports it,
//!    otherwise as asked for (`M` per call). With `M = 0` (no per-call cap)
//!    the rest of the answer is asked for in one call.
//! 5. `remove_prompt_cache` (also after a failure).
//!
//! Special tokens in the prompt (ChatML) are parsed by the LLM without `-sp`;
//! `-sp` would only print special tokens (`<|im_end|>`) into the answer, so
//! it is not sent. `--no-escape` keeps the prompt's backslashes as they are.

use candid::CandidType;
use serde::Deserialize;

use crate::game::GenerationSettings;
use crate::llama_args::LlamaArgs;
use crate::llama_cpp::{InputRecord, MaxTokensRecord, OutputRecordResult, RunOutputRecord, methods};

/// Caps that stop a misbehaving LLM from keeping a mAIner busy forever.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Calls for one answer, `new_chat` included, `get_max_tokens` and
    /// `remove_prompt_cache` not.
    pub max_calls: u32,
    /// Tokens generated beyond the request's `max_tokens` before giving up.
    pub token_slack: u64,
    /// The LLM's `max_tokens_update` when `get_max_tokens` cannot tell it;
    /// None: no per-call cap. It must be the LLM's own setting: a smaller
    /// one repeats a token per call, a larger one miscounts the tokens.
    pub tokens_per_call: Option<u64>,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits { max_calls: 400, token_slack: 16, tokens_per_call: None }
    }
}

/// One call the client wants made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LlmCall {
    /// `get_max_tokens` (a query without arguments), answered with [`LlmReply::MaxTokens`].
    MaxTokens,
    /// `new_chat`, `run_update` or `remove_prompt_cache`, answered with [`LlmReply::Run`].
    Run { method: &'static str, arg: InputRecord },
}

impl LlmCall {
    pub fn method(&self) -> &'static str {
        match self {
            LlmCall::MaxTokens => methods::GET_MAX_TOKENS,
            LlmCall::Run { method, .. } => method,
        }
    }
}

/// The decoded reply of an [`LlmCall`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LlmReply {
    MaxTokens(MaxTokensRecord),
    Run(OutputRecordResult),
}

/// Why a generation failed.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LlmError {
    /// The call did not reach the LLM or was rejected by the system or the
    /// canister (reject code and message), e.g. the LLM trapped or is stopped.
    CallFailed {
        method: String,
        reject_code: u32,
        message: String,
    },
    /// The LLM answered `Err` (its status code and error text).
    LlmRefused {
        method: String,
        status_code: u16,
        error: String,
    },
    /// `prompt_remaining` did not shrink (or its token count, when the LLM
    /// reports it), or a generating call generated nothing: the LLM made no progress.
    NoProgress,
    TooManyCalls {
        calls: u32,
    },
    TooManyTokens {
        tokens: u64,
    },
}

impl std::fmt::Display for LlmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LlmError::CallFailed { method, reject_code, message } => {
                write!(f, "{method} failed (reject code {reject_code}): {message}")
            }
            LlmError::LlmRefused { method, status_code, error } => {
                write!(f, "{method} returned an error (status {status_code}): {error}")
            }
            LlmError::NoProgress => write!(f, "the LLM made no progress"),
            LlmError::TooManyCalls { calls } => write!(f, "gave up after {calls} calls"),
            LlmError::TooManyTokens { tokens } => write!(f, "gave up after {tokens} generated tokens"),
        }
    }
}

impl LlmError {
    /// Failures that say the LLM canister itself is in trouble (so the
    /// controller should stop using it for a while), as opposed to this one
    /// answer going wrong.
    pub fn blames_llm(&self) -> bool {
        !matches!(self, LlmError::TooManyTokens { .. })
    }
}

/// A finished generation and what it cost.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    pub text: String,
    /// Calls made, `new_chat` included, `get_max_tokens` and the final clean-up not.
    pub calls: u32,
    /// As the LLM reported them (None from an LLM without token counts).
    pub prompt_tokens: Option<u64>,
    pub generated_tokens: Option<u64>,
}

/// What is left of the prompt: the tokens when the LLM counts them, else
/// the length of `prompt_remaining`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Left {
    Tokens(u64),
    Bytes(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    MaxTokens,
    NewChat,
    /// `left`: how much of the prompt the last call left (None before the first call).
    Ingest {
        left: Option<Left>,
    },
    Generate,
    Cleanup {
        outcome: Result<Generation, LlmError>,
    },
    Done {
        outcome: Result<Generation, LlmError>,
    },
}

/// One answer being generated.
#[derive(Clone, Debug)]
pub struct LlmSession {
    cache_name: String,
    prompt: String,
    settings: GenerationSettings,
    limits: ClientLimits,
    phase: Phase,
    /// The LLM's per-call budget; 0: none.
    per_call: u64,
    calls: u32,
    text: String,
    /// Tokens of the answer so far (reported or counted).
    generated: u64,
    reported_counts: bool,
    prompt_tokens: Option<u64>,
}

impl LlmSession {
    /// `cache_name` must be unique per answer (e.g. derived from the work item id).
    pub fn new(
        cache_name: impl Into<String>,
        prompt: impl Into<String>,
        settings: GenerationSettings,
        limits: ClientLimits,
    ) -> Self {
        LlmSession {
            cache_name: cache_name.into(),
            prompt: prompt.into(),
            settings,
            limits,
            phase: Phase::MaxTokens,
            per_call: 0,
            calls: 0,
            text: String::new(),
            generated: 0,
            reported_counts: false,
            prompt_tokens: None,
        }
    }

    /// The next call to make, or None when the session is over.
    pub fn next_call(&self) -> Option<LlmCall> {
        let cache_only = || LlamaArgs { prompt_cache: Some(self.cache_name.clone()), ..Default::default() };
        let run = |method, args: LlamaArgs| LlmCall::Run { method, arg: InputRecord { args: args.to_args() } };
        match &self.phase {
            Phase::MaxTokens => Some(LlmCall::MaxTokens),
            Phase::NewChat => Some(run(methods::NEW_CHAT, cache_only())),
            Phase::Ingest { .. } => Some(run(methods::RUN_UPDATE, self.run_args(&self.prompt, 1))),
            Phase::Generate => Some(run(methods::RUN_UPDATE, self.run_args("", self.asked().0))),
            Phase::Cleanup { .. } => Some(run(methods::REMOVE_PROMPT_CACHE, cache_only())),
            Phase::Done { .. } => None,
        }
    }

    fn run_args(&self, prompt: &str, n_predict: u64) -> LlamaArgs {
        let s = &self.settings;
        LlamaArgs {
            prompt: Some(prompt.to_string()),
            n_predict: Some(n_predict.min(i32::MAX as u64) as i32),
            prompt_cache: Some(self.cache_name.clone()),
            prompt_cache_all: true,
            temperature: Some(s.temperature),
            seed: Some(s.seed),
            top_k: s.top_k.map(|k| k.min(i32::MAX as u32) as i32),
            top_p: s.top_p,
            escape: Some(false),
            ..Default::default()
        }
    }

    /// The `-n` of the next generating call, and whether it asks for the answer's last tokens.
    fn asked(&self) -> (u64, bool) {
        let left = self.settings.max_tokens.saturating_sub(self.generated);
        match self.per_call {
            m if m > 0 && left > m => (m + 1, false),
            _ => (left, true),
        }
    }

    /// Feeds back the result of the call `next_call` asked for: the decoded
    /// reply, or the reject code and message of a failed call.
    pub fn on_result(&mut self, result: Result<LlmReply, (u32, String)>) {
        let Some(call) = self.next_call() else { return };
        let method = call.method();
        match &mut self.phase {
            Phase::MaxTokens => {
                // An LLM that cannot tell is used with the configured budget.
                self.per_call = match result {
                    Ok(LlmReply::MaxTokens(m)) => m.max_tokens_update,
                    _ => self.limits.tokens_per_call.unwrap_or(0),
                };
                self.phase = Phase::NewChat;
                return;
            }
            Phase::Cleanup { outcome } => {
                // Clean-up is best effort: its failure does not change the outcome.
                let outcome = std::mem::replace(outcome, Err(LlmError::NoProgress));
                self.phase = Phase::Done { outcome };
                return;
            }
            _ => {}
        }
        self.calls += 1;
        let record = match result {
            Ok(LlmReply::Run(OutputRecordResult::Ok(r))) => r,
            Ok(LlmReply::Run(OutputRecordResult::Err(r))) => {
                return self.fail(LlmError::LlmRefused {
                    method: method.into(),
                    status_code: r.status_code,
                    error: r.error,
                });
            }
            Ok(LlmReply::MaxTokens(_)) => {
                return self.fail(LlmError::CallFailed {
                    method: method.into(),
                    reject_code: 0,
                    message: "a reply of get_max_tokens where a run record was expected".into(),
                });
            }
            Err((reject_code, message)) => {
                return self.fail(LlmError::CallFailed { method: method.into(), reject_code, message });
            }
        };
        self.advance(record);
        if !matches!(self.phase, Phase::Cleanup { .. } | Phase::Done { .. }) && self.calls >= self.limits.max_calls {
            self.fail(LlmError::TooManyCalls { calls: self.calls });
        }
    }

    fn advance(&mut self, r: RunOutputRecord) {
        match &self.phase {
            Phase::NewChat => self.phase = Phase::Ingest { left: None },
            Phase::Ingest { left } => {
                let left = *left;
                self.prompt_tokens = r.n_prompt_tokens.or(self.prompt_tokens);
                if r.prompt_remaining.is_empty() {
                    self.phase = Phase::Generate;
                    if self.settings.max_tokens == 0 {
                        self.finish();
                    }
                } else {
                    // Counted tokens when the LLM reports them: text may not
                    // shrink with every token (a character split over tokens).
                    let now = match r.n_prompt_tokens_remaining {
                        Some(tokens) => Left::Tokens(tokens),
                        None => Left::Bytes(r.prompt_remaining.len()),
                    };
                    match left {
                        Some(before) if now >= before => self.fail(LlmError::NoProgress),
                        _ => self.phase = Phase::Ingest { left: Some(now) },
                    }
                }
            }
            Phase::Generate => self.take_output(r),
            _ => {}
        }
    }

    fn take_output(&mut self, r: RunOutputRecord) {
        let (asked, last) = self.asked();
        self.text.push_str(&r.output);
        let counted = match r.n_tokens_generated {
            Some(kept) => {
                self.reported_counts = true;
                // A last call ends by -n: its last token is shown but not
                // kept, so not counted by the LLM. (Other calls ask for M+1
                // and end by M, with every token kept.)
                kept + u64::from(last && kept + 1 == asked)
            }
            None if last => asked,
            None => self.per_call,
        };
        self.generated += counted;
        if r.generated_eog || (last && counted >= asked) {
            self.finish();
        } else if r.n_tokens_generated == Some(0) {
            self.fail(LlmError::NoProgress);
        } else if self.generated > self.settings.max_tokens + self.limits.token_slack {
            self.fail(LlmError::TooManyTokens { tokens: self.generated });
        }
    }

    fn finish(&mut self) {
        let generation = Generation {
            text: std::mem::take(&mut self.text),
            calls: self.calls,
            prompt_tokens: self.prompt_tokens,
            generated_tokens: self.reported_counts.then_some(self.generated),
        };
        self.phase = Phase::Cleanup { outcome: Ok(generation) };
    }

    fn fail(&mut self, error: LlmError) {
        // A chat that never started needs no clean-up.
        self.phase = if self.calls <= 1 && matches!(error, LlmError::CallFailed { .. }) && self.text.is_empty() {
            Phase::Done { outcome: Err(error) }
        } else {
            Phase::Cleanup { outcome: Err(error) }
        };
    }

    /// Calls made so far (`get_max_tokens` and clean-up excluded).
    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// The outcome, once `next_call` returns None.
    pub fn outcome(&self) -> Option<&Result<Generation, LlmError>> {
        match &self.phase {
            Phase::Done { outcome } => Some(outcome),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llama_args;

    /// A scripted LLM that follows the llama.cpp canister's rules on words:
    /// `max_tokens_update` words evaluated per call, `-n` words sampled per
    /// call (the one that uses it up shown but not kept), the full prompt
    /// resent and matched against the cache; the answer is `answer` words,
    /// then an end-of-generation word. `counts`: report token counts (v0.15+).
    struct Scripted {
        max_tokens_update: u64,
        counts: bool,
        answer: Vec<&'static str>,
        cache: Vec<String>,
        prompt_len: usize,
        calls: Vec<LlamaArgs>,
        has_max_tokens: bool,
    }

    const EOG: &str = "</s>";

    impl Scripted {
        fn new(max_tokens_update: u64, counts: bool, answer_len: usize) -> Self {
            Scripted {
                max_tokens_update,
                counts,
                answer: vec!["w"; answer_len],
                cache: Vec::new(),
                prompt_len: 0,
                calls: Vec::new(),
                has_max_tokens: true,
            }
        }

        fn reply(&mut self, call: &LlmCall) -> Result<LlmReply, (u32, String)> {
            let (method, arg) = match call {
                LlmCall::MaxTokens if self.has_max_tokens => {
                    let m = MaxTokensRecord { max_tokens_update: self.max_tokens_update, max_tokens_query: 0 };
                    return Ok(LlmReply::MaxTokens(m));
                }
                LlmCall::MaxTokens => return Err((3, "no get_max_tokens".into())),
                LlmCall::Run { method, arg } => (*method, arg),
            };
            let args = llama_args::parse(&arg.args).expect("the client sends llama.cpp flags");
            let mut r = RunOutputRecord { status_code: 200, ..Default::default() };
            if method == methods::RUN_UPDATE {
                self.calls.push(args.clone());
                self.run(&args, &mut r);
                if !self.counts {
                    r.n_prompt_tokens = None;
                    r.n_tokens_generated = None;
                }
            }
            Ok(LlmReply::Run(OutputRecordResult::Ok(r)))
        }

        fn run(&mut self, args: &LlamaArgs, r: &mut RunOutputRecord) {
            let prompt = args.prompt_text();
            let input: Vec<String> = match prompt.is_empty() {
                false => prompt.split_whitespace().map(String::from).collect(),
                true => self.cache.clone(),
            };
            let matched = self.cache.iter().zip(&input).take_while(|(a, b)| a == b).count();
            self.cache.truncate(matched);
            let m = self.max_tokens_update as usize;
            let end = if m > 0 { input.len().min(matched + m) } else { input.len() };
            self.cache.extend_from_slice(&input[matched..end]);
            r.n_prompt_tokens = Some(input.len() as u64);
            r.n_tokens_generated = Some(0);
            if end < input.len() {
                r.prompt_remaining = input[end..].join(" ");
                return;
            }
            if !prompt.is_empty() {
                self.prompt_len = input.len();
            }
            let mut evaluated = end - matched;
            if m > 0 && evaluated >= m {
                return;
            }
            let mut to_sample = args.n_predict.unwrap();
            let mut kept = 0;
            while to_sample != 0 {
                let at = self.cache.len() - self.prompt_len;
                let word = self.answer.get(at).copied().unwrap_or(EOG);
                to_sample -= 1;
                if word == EOG {
                    r.generated_eog = true;
                } else {
                    r.output.push_str(&format!(" {word}{at}"));
                }
                if to_sample == 0 {
                    break;
                }
                self.cache.push(word.to_string());
                evaluated += 1;
                kept += 1;
                if r.generated_eog || (m > 0 && evaluated >= m) {
                    break;
                }
            }
            r.n_tokens_generated = Some(kept);
        }
    }

    fn run(session: &mut LlmSession, llm: &mut Scripted) -> Vec<&'static str> {
        let mut methods = Vec::new();
        while let Some(call) = session.next_call() {
            methods.push(call.method());
            let reply = llm.reply(&call);
            session.on_result(reply);
        }
        methods
    }

    fn settings(max_tokens: u64) -> GenerationSettings {
        GenerationSettings { max_tokens, ..Default::default() }
    }

    fn answer(n: usize) -> String {
        (0..n).map(|i| format!(" w{i}")).collect()
    }

    const PROMPT: &str = "one two three four five";

    #[test]
    fn drives_llama_cpp_without_token_counts_to_the_answers_token_limit() {
        // v0.7.x: no counts, M = 3; the model would say 50 words.
        let mut llm = Scripted::new(3, false, 50);
        let mut s = LlmSession::new("item-7", PROMPT, settings(10), ClientLimits::default());
        let methods = run(&mut s, &mut llm);
        let g = s.outcome().unwrap().clone().unwrap();
        assert_eq!(g.text, answer(10), "every token once, none repeated, 10 in all");
        assert_eq!((g.prompt_tokens, g.generated_tokens), (None, None));
        // get_max_tokens, new_chat, 2 ingesting calls (5 words, 3 per call), 4 generating (3+3+3+1), clean-up.
        assert_eq!(methods.len(), 9, "{methods:?}");
        assert_eq!(g.calls, 7);
        assert_eq!(
            (methods[0], methods[1], methods[8]),
            (methods::GET_MAX_TOKENS, methods::NEW_CHAT, methods::REMOVE_PROMPT_CACHE)
        );
        let asked: Vec<_> = llm.calls.iter().map(|a| a.n_predict.unwrap()).collect();
        assert_eq!(asked, [1, 1, 4, 4, 4, 1], "-n 1 to ingest, M+1 to generate, the rest at the end");
        for a in &llm.calls[..2] {
            assert_eq!(a.prompt.as_deref(), Some(PROMPT), "the full prompt each time");
        }
        assert!(llm.calls.iter().all(|a| !a.special && a.escape == Some(false) && a.prompt_cache_all));
    }

    #[test]
    fn drives_llama_cpp_with_token_counts_the_same_way() {
        let mut llm = Scripted::new(3, true, 50);
        let mut s = LlmSession::new("c", PROMPT, settings(10), ClientLimits::default());
        run(&mut s, &mut llm);
        let g = s.outcome().unwrap().clone().unwrap();
        assert_eq!(g.text, answer(10));
        assert_eq!((g.prompt_tokens, g.generated_tokens), (Some(5), Some(10)));
    }

    #[test]
    fn stops_at_generated_eog_whichever_comes_first() {
        for counts in [false, true] {
            let mut llm = Scripted::new(3, counts, 4);
            let mut s = LlmSession::new("c", PROMPT, settings(10), ClientLimits::default());
            run(&mut s, &mut llm);
            let g = s.outcome().unwrap().clone().unwrap();
            assert_eq!(g.text, answer(4), "counts {counts}");
            // 4 words and the end token, 3 per call: 2 generating calls.
            assert_eq!(llm.calls.len(), 2 + 2);
        }
    }

    #[test]
    fn an_llm_without_a_per_call_cap_gets_the_answer_in_one_call() {
        for counts in [false, true] {
            let mut llm = Scripted::new(0, counts, 50);
            let mut s = LlmSession::new("c", PROMPT, settings(12), ClientLimits::default());
            run(&mut s, &mut llm);
            assert_eq!(s.outcome().unwrap().clone().unwrap().text, answer(12));
            let asked: Vec<_> = llm.calls.iter().map(|a| a.n_predict.unwrap()).collect();
            assert_eq!(asked, [1, 12]);
        }
    }

    #[test]
    fn without_get_max_tokens_the_configured_budget_is_used() {
        let mut llm = Scripted::new(2, false, 50);
        llm.has_max_tokens = false;
        let limits = ClientLimits { tokens_per_call: Some(2), ..Default::default() };
        let mut s = LlmSession::new("c", "a b c", settings(5), limits);
        run(&mut s, &mut llm);
        assert_eq!(s.outcome().unwrap().clone().unwrap().text, answer(5));
        let asked: Vec<_> = llm.calls.iter().map(|a| a.n_predict.unwrap()).collect();
        assert_eq!(asked, [1, 1, 3, 3, 1]);
    }

    #[test]
    fn an_err_record_is_a_typed_error_and_the_cache_is_still_removed() {
        let mut s = LlmSession::new("c", "x y", settings(10), ClientLimits::default());
        s.on_result(Ok(LlmReply::MaxTokens(MaxTokensRecord::default())));
        s.on_result(Ok(LlmReply::Run(OutputRecordResult::Ok(RunOutputRecord::default()))));
        let refused = RunOutputRecord { status_code: 500, error: "model not loaded".into(), ..Default::default() };
        s.on_result(Ok(LlmReply::Run(OutputRecordResult::Err(refused))));
        assert_eq!(s.next_call().unwrap().method(), methods::REMOVE_PROMPT_CACHE);
        s.on_result(Err((5, "gone".into())));
        match s.outcome().unwrap() {
            Err(LlmError::LlmRefused { status_code: 500, error, .. }) => assert_eq!(error, "model not loaded"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_first_call_ends_at_once() {
        let mut s = LlmSession::new("c", "x", settings(10), ClientLimits::default());
        s.on_result(Err((5, "trapped".into()))); // get_max_tokens: falls back
        assert_eq!(s.next_call().unwrap().method(), methods::NEW_CHAT);
        s.on_result(Err((5, "trapped".into())));
        assert!(s.next_call().is_none());
        assert!(matches!(s.outcome(), Some(Err(LlmError::CallFailed { reject_code: 5, .. }))));
    }

    #[test]
    fn no_progress_and_call_caps_stop_a_misbehaving_llm() {
        let ok = |r: RunOutputRecord| Ok(LlmReply::Run(OutputRecordResult::Ok(r)));
        let mut s = LlmSession::new("c", "a b c", settings(10), ClientLimits::default());
        s.on_result(Ok(LlmReply::MaxTokens(MaxTokensRecord { max_tokens_update: 1, max_tokens_query: 0 })));
        s.on_result(ok(RunOutputRecord::default()));
        let stuck = RunOutputRecord { prompt_remaining: "b c".into(), ..Default::default() };
        s.on_result(ok(stuck.clone()));
        s.on_result(ok(stuck));
        s.on_result(ok(RunOutputRecord::default())); // clean-up
        assert_eq!(s.outcome(), Some(&Err(LlmError::NoProgress)));

        let mut s = LlmSession::new("c", "a", settings(10), ClientLimits::default());
        s.on_result(Ok(LlmReply::MaxTokens(MaxTokensRecord { max_tokens_update: 2, max_tokens_query: 0 })));
        s.on_result(ok(RunOutputRecord::default()));
        s.on_result(ok(RunOutputRecord::default()));
        s.on_result(ok(RunOutputRecord { n_tokens_generated: Some(0), ..Default::default() }));
        s.on_result(ok(RunOutputRecord::default()));
        assert_eq!(s.outcome(), Some(&Err(LlmError::NoProgress)), "a generating call that generates nothing");

        let limits = ClientLimits { max_calls: 5, ..Default::default() };
        let mut s = LlmSession::new("c", "a", settings(1000), limits);
        let mut llm = Scripted::new(1, false, 1000);
        run(&mut s, &mut llm);
        assert_eq!(s.outcome(), Some(&Err(LlmError::TooManyCalls { calls: 5 })));
    }

    #[test]
    fn an_llm_reporting_more_tokens_than_asked_is_stopped() {
        let ok = |r: RunOutputRecord| Ok(LlmReply::Run(OutputRecordResult::Ok(r)));
        let mut s = LlmSession::new("c", "a", settings(4), ClientLimits { token_slack: 2, ..Default::default() });
        s.on_result(Ok(LlmReply::MaxTokens(MaxTokensRecord { max_tokens_update: 1, max_tokens_query: 0 })));
        s.on_result(ok(RunOutputRecord::default()));
        s.on_result(ok(RunOutputRecord::default()));
        s.on_result(ok(RunOutputRecord { n_tokens_generated: Some(9), ..Default::default() }));
        s.on_result(ok(RunOutputRecord::default()));
        assert_eq!(s.outcome(), Some(&Err(LlmError::TooManyTokens { tokens: 9 })));
    }
}
