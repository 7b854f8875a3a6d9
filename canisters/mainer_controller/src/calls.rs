//! Calls to other canisters: the game state, LLMs, the ShareService and
//! ShareAgents. A failed call is reported as text, never a trap.

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use ic_cdk::call::{Call, CallFailed};
use mainer_types::calls::Method;
use mainer_types::llm_client::{LlmCall, LlmReply};
use serde::de::DeserializeOwned;

/// A failed call: the reject code (0 if the call was never made) and why.
#[derive(Clone, Debug)]
pub struct CallError {
    pub code: u32,
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (reject code {})", self.message, self.code)
    }
}

fn failed(e: CallFailed) -> CallError {
    match e {
        CallFailed::CallRejected(r) => CallError { code: r.raw_reject_code(), message: r.reject_message().to_string() },
        other => CallError { code: 0, message: other.to_string() },
    }
}

/// A bounded-wait call of `method` with its Candid arguments and result.
pub async fn call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
    canister: Principal,
    method: &Method<A, R>,
    args: A,
) -> Result<R, CallError> {
    let name = method.name;
    let response = Call::bounded_wait(canister, name).with_args(&args).await.map_err(failed)?;
    response.candid::<R>().map_err(|e| CallError { code: 0, message: format!("undecodable reply of {name}: {e}") })
}

/// One call of the llama.cpp protocol, as `llm_client` asks for it.
pub async fn llm(canister: Principal, call: &LlmCall) -> Result<LlmReply, (u32, String)> {
    let reply = match call {
        LlmCall::MaxTokens => {
            self::call(canister, &mainer_types::calls::llm::GET_MAX_TOKENS, ()).await.map(LlmReply::MaxTokens)
        }
        LlmCall::Run { method, arg } => {
            let Some(m) = mainer_types::calls::llm::chat_method(method) else {
                return Err((0, format!("{method} is not a method of the llama.cpp protocol")));
            };
            self::call(canister, &m, (arg.clone(),)).await.map(LlmReply::Run)
        }
    };
    reply.map_err(|e| (e.code, e.message))
}
