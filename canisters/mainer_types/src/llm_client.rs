//! The client side of the llama.cpp canister's multi-call generation
//! protocol, as a state machine without I/O: the caller asks for the next
//! call, makes it however it likes (an inter-canister call in the controller,
//! a direct call in tests) and feeds the result back.
//!
//! The protocol: `new_chat` with a prompt-cache name of its own; `run_update`
//! with the full prompt, then with what `prompt_remaining` says, until the
//! prompt is ingested; `run_update` with an empty prompt until
//! `generated_eog`; then `remove_prompt_cache` (also after a failure).

use candid::CandidType;
use serde::Deserialize;

use crate::game::GenerationSettings;
use crate::llama_cpp::{InputRecord, OutputRecordResult, RunOutputRecord, methods};

/// Caps that stop a misbehaving LLM from keeping a mAIner busy forever.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Calls for one answer, `new_chat` included, `remove_prompt_cache` not.
    pub max_calls: u32,
    /// Tokens generated beyond the request's `max_tokens` before giving up.
    pub token_slack: u64,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits { max_calls: 400, token_slack: 16 }
    }
}

/// One call the client wants made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlmCall {
    pub method: &'static str,
    pub arg: InputRecord,
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
    /// `prompt_remaining` did not shrink: the LLM made no progress.
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
            LlmError::NoProgress => write!(f, "the LLM made no progress ingesting the prompt"),
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
    /// Calls made, `new_chat` included, the final clean-up not.
    pub calls: u32,
    pub prompt_tokens: Option<u64>,
    pub generated_tokens: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    NewChat,
    Ingest { remaining: String },
    Generate,
    Cleanup { outcome: Result<Generation, LlmError> },
    Done { outcome: Result<Generation, LlmError> },
}

/// One answer being generated.
#[derive(Clone, Debug)]
pub struct LlmSession {
    cache_name: String,
    prompt: String,
    settings: GenerationSettings,
    limits: ClientLimits,
    phase: Phase,
    calls: u32,
    text: String,
    prompt_tokens: Option<u64>,
    generated_tokens: Option<u64>,
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
            phase: Phase::NewChat,
            calls: 0,
            text: String::new(),
            prompt_tokens: None,
            generated_tokens: None,
        }
    }

    /// The next call to make, or None when the session is over.
    pub fn next_call(&self) -> Option<LlmCall> {
        let cache = || vec!["--prompt-cache".to_string(), self.cache_name.clone()];
        match &self.phase {
            Phase::NewChat => Some(LlmCall { method: methods::NEW_CHAT, arg: InputRecord { args: cache() } }),
            Phase::Ingest { remaining } => Some(self.run_update(remaining)),
            Phase::Generate => Some(self.run_update("")),
            Phase::Cleanup { .. } => {
                Some(LlmCall { method: methods::REMOVE_PROMPT_CACHE, arg: InputRecord { args: cache() } })
            }
            Phase::Done { .. } => None,
        }
    }

    fn run_update(&self, prompt: &str) -> LlmCall {
        let s = &self.settings;
        let mut args = vec![
            "--prompt-cache".to_string(),
            self.cache_name.clone(),
            "--prompt-cache-all".to_string(),
            "-sp".to_string(),
            "-n".to_string(),
            s.max_tokens.to_string(),
            "--temp".to_string(),
            s.temperature.to_string(),
            "--seed".to_string(),
            s.seed.to_string(),
        ];
        if let Some(k) = s.top_k {
            args.extend(["--top-k".to_string(), k.to_string()]);
        }
        if let Some(p) = s.top_p {
            args.extend(["--top-p".to_string(), p.to_string()]);
        }
        args.extend(["-p".to_string(), prompt.to_string()]);
        LlmCall { method: methods::RUN_UPDATE, arg: InputRecord { args } }
    }

    /// Feeds back the result of the call `next_call` asked for: the decoded
    /// reply, or the reject code and message of a failed call.
    pub fn on_result(&mut self, result: Result<OutputRecordResult, (u32, String)>) {
        let method = match self.next_call() {
            Some(call) => call.method,
            None => return,
        };
        if let Phase::Cleanup { outcome } = &mut self.phase {
            // Clean-up is best effort: its failure does not change the outcome.
            let outcome = std::mem::replace(outcome, Err(LlmError::NoProgress));
            self.phase = Phase::Done { outcome };
            return;
        }
        self.calls += 1;
        let record = match result {
            Ok(OutputRecordResult::Ok(r)) => r,
            Ok(OutputRecordResult::Err(r)) => {
                return self.fail(LlmError::LlmRefused {
                    method: method.into(),
                    status_code: r.status_code,
                    error: r.error,
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
        self.prompt_tokens = r.n_prompt_tokens.or(self.prompt_tokens);
        match std::mem::replace(&mut self.phase, Phase::Generate) {
            Phase::NewChat => self.phase = Phase::Ingest { remaining: self.prompt.clone() },
            Phase::Ingest { remaining } => {
                if !r.prompt_remaining.is_empty() {
                    if r.prompt_remaining.len() >= remaining.len() {
                        return self.fail(LlmError::NoProgress);
                    }
                    self.phase = Phase::Ingest { remaining: r.prompt_remaining };
                } else {
                    // The last ingesting call may already generate.
                    self.take_output(r);
                }
            }
            Phase::Generate => self.take_output(r),
            other => self.phase = other,
        }
    }

    fn take_output(&mut self, r: RunOutputRecord) {
        self.text.push_str(&r.output);
        self.generated_tokens = r.n_tokens_generated.or(self.generated_tokens);
        let generated = self.generated_tokens.unwrap_or(0);
        if r.generated_eog || (self.generated_tokens.is_some() && generated >= self.settings.max_tokens) {
            let generation = Generation {
                text: std::mem::take(&mut self.text),
                calls: self.calls,
                prompt_tokens: self.prompt_tokens,
                generated_tokens: self.generated_tokens,
            };
            self.phase = Phase::Cleanup { outcome: Ok(generation) };
        } else if generated > self.settings.max_tokens + self.limits.token_slack {
            self.fail(LlmError::TooManyTokens { tokens: generated });
        } else {
            self.phase = Phase::Generate;
        }
    }

    fn fail(&mut self, error: LlmError) {
        // A chat that never started needs no clean-up.
        self.phase = if self.calls <= 1 && matches!(error, LlmError::CallFailed { .. }) && self.text.is_empty() {
            Phase::Done { outcome: Err(error) }
        } else {
            Phase::Cleanup { outcome: Err(error) }
        };
    }

    /// Calls made so far (clean-up excluded).
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

    /// A scripted LLM: ingests `per_call` words per call, then emits one word
    /// per call for `answer` words.
    struct Scripted {
        per_call: usize,
        answer: Vec<&'static str>,
        generated: usize,
    }

    impl Scripted {
        fn reply(&mut self, call: &LlmCall) -> OutputRecordResult {
            let prompt = call.arg.args.iter().position(|a| a == "-p").map(|i| call.arg.args[i + 1].clone());
            let mut r = RunOutputRecord { status_code: 200, ..Default::default() };
            if call.method == methods::RUN_UPDATE {
                let words: Vec<&str> = prompt.as_deref().unwrap_or("").split_whitespace().collect();
                if words.len() > self.per_call {
                    r.prompt_remaining = words[self.per_call..].join(" ");
                } else if words.is_empty() {
                    r.output = format!("{} ", self.answer[self.generated]);
                    self.generated += 1;
                    r.n_tokens_generated = Some(self.generated as u64);
                    r.generated_eog = self.generated == self.answer.len();
                }
            }
            OutputRecordResult::Ok(r)
        }
    }

    fn run(session: &mut LlmSession, llm: &mut Scripted) -> Vec<&'static str> {
        let mut methods = Vec::new();
        while let Some(call) = session.next_call() {
            methods.push(call.method);
            let reply = llm.reply(&call);
            session.on_result(Ok(reply));
        }
        methods
    }

    fn settings() -> GenerationSettings {
        GenerationSettings { max_tokens: 10, ..Default::default() }
    }

    #[test]
    fn runs_the_whole_protocol() {
        let mut llm = Scripted { per_call: 2, answer: vec!["a", "b", "c"], generated: 0 };
        let mut s = LlmSession::new("item-7", "one two three four five", settings(), ClientLimits::default());
        let methods = run(&mut s, &mut llm);
        // new_chat, 3 ingesting calls (5 words, 2 per call), 3 generating, clean-up.
        assert_eq!(methods.len(), 8);
        assert_eq!((methods[0], methods[7]), (methods::NEW_CHAT, methods::REMOVE_PROMPT_CACHE));
        let g = s.outcome().unwrap().clone().unwrap();
        assert_eq!((g.text.as_str(), g.calls, g.generated_tokens), ("a b c ", 7, Some(3)));
    }

    #[test]
    fn sends_prompt_remaining_back_and_the_settings_as_flags() {
        let s = LlmSession::new(
            "c1",
            "hello",
            GenerationSettings { top_k: Some(5), ..settings() },
            ClientLimits::default(),
        );
        let mut s2 = s.clone();
        s2.on_result(Ok(OutputRecordResult::Ok(RunOutputRecord::default())));
        let call = s2.next_call().unwrap();
        assert_eq!(call.method, methods::RUN_UPDATE);
        let args = call.arg.args.join(" ");
        assert!(args.contains("--prompt-cache c1") && args.contains("-n 10") && args.contains("--top-k 5"), "{args}");
        assert!(args.ends_with("-p hello"), "{args}");
    }

    #[test]
    fn an_err_record_is_a_typed_error_and_the_cache_is_still_removed() {
        let mut s = LlmSession::new("c", "x y", settings(), ClientLimits::default());
        s.on_result(Ok(OutputRecordResult::Ok(RunOutputRecord::default())));
        let refused = RunOutputRecord { status_code: 500, error: "model not loaded".into(), ..Default::default() };
        s.on_result(Ok(OutputRecordResult::Err(refused)));
        assert_eq!(s.next_call().unwrap().method, methods::REMOVE_PROMPT_CACHE);
        s.on_result(Err((5, "gone".into())));
        match s.outcome().unwrap() {
            Err(LlmError::LlmRefused { status_code: 500, error, .. }) => assert_eq!(error, "model not loaded"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_first_call_ends_at_once() {
        let mut s = LlmSession::new("c", "x", settings(), ClientLimits::default());
        s.on_result(Err((5, "trapped".into())));
        assert!(s.next_call().is_none());
        assert!(matches!(s.outcome(), Some(Err(LlmError::CallFailed { reject_code: 5, .. }))));
    }

    #[test]
    fn no_progress_and_call_caps_stop_a_misbehaving_llm() {
        let mut s = LlmSession::new("c", "a b c", settings(), ClientLimits::default());
        s.on_result(Ok(OutputRecordResult::Ok(RunOutputRecord::default())));
        let stuck = RunOutputRecord { prompt_remaining: "a b c".into(), ..Default::default() };
        s.on_result(Ok(OutputRecordResult::Ok(stuck)));
        s.on_result(Ok(OutputRecordResult::Ok(RunOutputRecord::default()))); // clean-up
        assert_eq!(s.outcome(), Some(&Err(LlmError::NoProgress)));

        let limits = ClientLimits { max_calls: 5, token_slack: 0 };
        let mut s = LlmSession::new("c", "a", GenerationSettings { max_tokens: 1000, ..settings() }, limits);
        let mut llm = Scripted { per_call: 10, answer: vec!["w"; 100], generated: 0 };
        run(&mut s, &mut llm);
        assert_eq!(s.outcome(), Some(&Err(LlmError::TooManyCalls { calls: 5 })));
    }

    #[test]
    fn generation_stops_at_max_tokens_even_without_eog() {
        let mut s =
            LlmSession::new("c", "a", GenerationSettings { max_tokens: 4, ..settings() }, ClientLimits::default());
        let mut llm = Scripted { per_call: 10, answer: vec!["w"; 100], generated: 0 };
        run(&mut s, &mut llm);
        let g = s.outcome().unwrap().clone().unwrap();
        assert_eq!(g.generated_tokens, Some(4));
    }
}
