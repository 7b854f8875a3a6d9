//! Calls to other canisters: the game state, LLMs, the ShareService and
//! ShareAgents. A failed call is reported as text, never a trap.

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use ic_cdk::call::{Call, CallFailed};
use mainer_types::llama_cpp::{InputRecord, OutputRecordResult};
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

/// A bounded-wait call with Candid arguments and one Candid result.
pub async fn call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
    canister: Principal,
    method: &str,
    args: A,
) -> Result<R, CallError> {
    let response = Call::bounded_wait(canister, method).with_args(&args).await.map_err(failed)?;
    response.candid::<R>().map_err(|e| CallError { code: 0, message: format!("undecodable reply of {method}: {e}") })
}

/// One call of the llama.cpp protocol.
pub async fn llm(canister: Principal, method: &str, arg: &InputRecord) -> Result<OutputRecordResult, (u32, String)> {
    call::<_, OutputRecordResult>(canister, method, (arg,)).await.map_err(|e| (e.code, e.message))
}
