//! What the controller's tasks ask of the IC, behind one small trait: the
//! time, the instruction counter, the cycle balance, spawning, and calls to other canisters
//! (the game state, LLMs, the ShareService, ShareAgents). [`IcRuntime`] is
//! the ic-cdk implementation; unit tests use a fake (`testing.rs`) that
//! loses replies, rejects, stops LLMs and never answers (a trap mid-step).

use std::future::Future;

use candid::Principal;
use ic_cdk::call::{Call, CallFailed};

/// A failed call: the reject code (0 if the call was never made) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    pub code: u32,
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (reject code {})", self.message, self.code)
    }
}

/// Everything the controller's tasks ask of the IC.
#[allow(async_fn_in_trait)]
pub trait Runtime {
    fn time(&self) -> u64;
    /// Instructions the current message has used so far.
    fn instruction_counter(&self) -> u64;
    /// This canister's cycle balance.
    fn cycle_balance(&self) -> u128;
    /// Runs `f` in the background (messages of its own on the IC).
    fn spawn(&self, f: impl Future<Output = ()> + 'static);
    /// A bounded-wait call with Candid bytes in and out.
    async fn call_raw(&self, canister: Principal, method: &'static str, arg: Vec<u8>) -> Result<Vec<u8>, CallError>;
    /// Gives `cycles` to `canister` (the management canister's `deposit_cycles`).
    async fn deposit_cycles(&self, canister: Principal, cycles: u128) -> Result<(), CallError>;
}

/// The runtime of the deployed canister: ic-cdk.
#[derive(Clone, Copy, Debug, Default)]
pub struct IcRuntime;

fn failed(e: CallFailed) -> CallError {
    match e {
        CallFailed::CallRejected(r) => CallError { code: r.raw_reject_code(), message: r.reject_message().to_string() },
        other => CallError { code: 0, message: other.to_string() },
    }
}

impl Runtime for IcRuntime {
    fn time(&self) -> u64 {
        ic_cdk::api::time()
    }

    fn instruction_counter(&self) -> u64 {
        ic_cdk::api::performance_counter(0)
    }

    fn cycle_balance(&self) -> u128 {
        ic_cdk::api::canister_cycle_balance()
    }

    fn spawn(&self, f: impl Future<Output = ()> + 'static) {
        ic_cdk::futures::spawn(f)
    }

    async fn call_raw(&self, canister: Principal, method: &'static str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let reply = Call::bounded_wait(canister, method).take_raw_args(arg).await.map_err(failed)?;
        Ok(reply.into_bytes())
    }

    async fn deposit_cycles(&self, canister: Principal, cycles: u128) -> Result<(), CallError> {
        use ic_cdk::management_canister::{DepositCyclesArgs, deposit_cycles};
        deposit_cycles(&DepositCyclesArgs { canister_id: canister }, cycles).await.map_err(|e| match e {
            ic_cdk::call::Error::CallRejected(r) => {
                CallError { code: r.raw_reject_code(), message: r.reject_message().to_string() }
            }
            other => CallError { code: 0, message: other.to_string() },
        })
    }
}
