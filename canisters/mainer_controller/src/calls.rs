//! Typed calls through the [`Runtime`]: a descriptor of `mainer_types::calls`
//! fixes the method, its arguments and reply; a failed call is reported as a
//! [`CallError`], never a trap.

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use mainer_types::calls::Method;
use mainer_types::llm_client::{LlmCall, LlmReply};
use serde::de::DeserializeOwned;

use crate::ic::{CallError, Runtime};

/// A call of `method` with its Candid arguments and result.
pub async fn call<RT: Runtime, A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
    rt: &RT,
    canister: Principal,
    method: &Method<A, R>,
    args: A,
) -> Result<R, CallError> {
    let name = method.name;
    let arg = method.encode(args).map_err(|e| CallError { code: 0, message: format!("{name}: {e}") })?;
    let reply = rt.call_raw(canister, name, arg).await?;
    method.decode(&reply).map_err(|e| CallError { code: 0, message: format!("undecodable reply of {name}: {e}") })
}

/// One call of the llama.cpp protocol, as `llm_client` asks for it.
pub async fn llm<RT: Runtime>(rt: &RT, canister: Principal, call: &LlmCall) -> Result<LlmReply, (u32, String)> {
    let reply = match call {
        LlmCall::MaxTokens => {
            self::call(rt, canister, &mainer_types::calls::llm::GET_MAX_TOKENS, ()).await.map(LlmReply::MaxTokens)
        }
        LlmCall::Run { method, arg } => {
            let Some(m) = mainer_types::calls::llm::chat_method(method) else {
                return Err((0, format!("{method} is not a method of the llama.cpp protocol")));
            };
            self::call(rt, canister, &m, (arg.clone(),)).await.map(LlmReply::Run)
        }
    };
    reply.map_err(|e| (e.code, e.message))
}
