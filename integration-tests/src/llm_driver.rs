//! Runs the controller's llama.cpp client (`mainer_types::llm_client`)
//! against an LLM canister in a [`TestEnv`], call by call as the controller
//! makes them, so tests, the conformance test and benchmarks drive any LLM
//! wasm (ours, the fixture, the llama.cpp canister) exactly as a mAIner does.

use candid::Principal;
use mainer_types::calls::llm as llm_calls;
use mainer_types::game::GenerationSettings;
use mainer_types::llm_client::{ClientLimits, Generation, LlmCall, LlmError, LlmReply, LlmSession};

use crate::{TestEnv, TestEnvExt};

/// One answer as the client got it, with every call it made.
#[derive(Debug)]
pub struct Driven {
    pub outcome: Result<Generation, LlmError>,
    /// Methods in order, `get_max_tokens` and clean-up included.
    pub methods: Vec<&'static str>,
    /// `-n` of each `run_update`.
    pub n_predict: Vec<i32>,
}

impl Driven {
    /// The generation, or a panic naming the error.
    pub fn generation(&self) -> &Generation {
        self.outcome.as_ref().unwrap_or_else(|e| panic!("generation failed: {e}"))
    }

    pub fn run_updates(&self) -> usize {
        self.n_predict.len()
    }
}

/// One answer of `llm` to `prompt`, asked by `who` under `cache`.
pub fn ask(
    env: &dyn TestEnv,
    who: Principal,
    llm: Principal,
    cache: &str,
    prompt: &str,
    settings: GenerationSettings,
) -> Driven {
    ask_with(env, who, llm, cache, prompt, settings, ClientLimits::default(), &mut |_, _| {})
}

/// [`ask`] with limits, and `observe` called after each call with the
/// method and its decoded reply (None when it was rejected).
#[allow(clippy::too_many_arguments)]
pub fn ask_with(
    env: &dyn TestEnv,
    who: Principal,
    llm: Principal,
    cache: &str,
    prompt: &str,
    settings: GenerationSettings,
    limits: ClientLimits,
    observe: &mut dyn FnMut(&LlmCall, Option<&LlmReply>),
) -> Driven {
    let mut session = LlmSession::new(cache, prompt, settings, limits);
    let mut driven = Driven { outcome: Err(LlmError::NoProgress), methods: Vec::new(), n_predict: Vec::new() };
    while let Some(call) = session.next_call() {
        driven.methods.push(call.method());
        let reply = match &call {
            LlmCall::MaxTokens => env.call(who, llm, &llm_calls::GET_MAX_TOKENS, ()).map(LlmReply::MaxTokens),
            LlmCall::Run { method, arg } => {
                let m = llm_calls::chat_method(method).expect("the client asks for llama.cpp methods");
                if m.name == llm_calls::RUN_UPDATE.name {
                    let args = mainer_types::llama_args::parse(&arg.args).expect("the client sends llama.cpp flags");
                    driven.n_predict.push(args.n_predict_or_default());
                }
                env.call(who, llm, &m, (arg.clone(),)).map(LlmReply::Run)
            }
        };
        observe(&call, reply.as_ref().ok());
        session.on_result(reply.map_err(|r| (r.code as u32, r.message)));
    }
    driven.outcome = session.outcome().cloned().expect("the session is over");
    driven
}

/// Greedy settings (`--temp 0`) for `max_tokens` tokens.
pub fn greedy(max_tokens: u64) -> GenerationSettings {
    GenerationSettings { max_tokens, temperature: 0.0, ..Default::default() }
}
