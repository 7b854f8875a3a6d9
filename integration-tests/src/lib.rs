//! One test-environment interface, [`TestEnv`], implemented by the embedded
//! simulator ([`SimEnv`]) and by PocketIC ([`PocketIcEnv`]). Integration tests
//! are written once against it; [`new_env`] picks PocketIC when
//! `POCKET_IC_BIN` is set and the simulator otherwise.

use std::cell::{RefCell, RefMut};
use std::path::PathBuf;
use std::time::Duration;

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{CandidType, Principal};
use mainer_types::calls::{Method, Mode};
use serde::de::DeserializeOwned;

pub use ic_sim::{Reject, RejectCode};

pub mod deploy;
pub mod factory;
pub mod ledger;
pub mod llm_driver;
mod pocket;
mod sim_env;
pub mod soak;

pub use pocket::PocketIcEnv;
pub use sim_env::SimEnv;

/// Handle of a submitted update call.
#[derive(Clone, Debug)]
pub enum CallHandle {
    Sim(ic_sim::MessageId),
    Pocket(pocket_ic::common::rest::RawMessageId),
}

/// What a test needs from an IC: canisters, calls, time, cycles and logs.
pub trait TestEnv {
    /// "simulator" or "pocket-ic".
    fn backend(&self) -> &'static str;

    /// Creates an empty canister controlled by `controllers`, with `cycles`.
    fn create_canister_with(&self, controllers: Vec<Principal>, cycles: u128) -> Principal;
    fn install(&self, sender: Principal, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Result<(), Reject>;
    fn upgrade(&self, sender: Principal, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Result<(), Reject>;
    fn reinstall(&self, sender: Principal, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Result<(), Reject>;

    fn update(&self, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, Reject>;
    fn query(&self, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, Reject>;
    /// Submits an update without waiting; `await_call` waits for it.
    fn submit(&self, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) -> Result<CallHandle, Reject>;
    fn await_call(&self, call: CallHandle) -> Result<Vec<u8>, Reject>;

    /// One round of execution.
    fn tick(&self);
    fn advance_time(&self, by: Duration);
    /// Nanoseconds since the epoch.
    fn time_ns(&self) -> u64;

    fn stop(&self, sender: Principal, canister: Principal) -> Result<(), Reject>;
    fn start(&self, sender: Principal, canister: Principal) -> Result<(), Reject>;
    fn delete(&self, sender: Principal, canister: Principal) -> Result<(), Reject>;
    fn status(&self, sender: Principal, canister: Principal) -> Result<ic_sim::mgmt::CanisterStatusResult, Reject>;

    fn cycle_balance(&self, canister: Principal) -> u128;
    fn add_cycles(&self, canister: Principal, amount: u128);
    /// The canister's log lines (debug prints and traps); `controller` must
    /// be allowed to read them.
    fn logs(&self, controller: Principal, canister: Principal) -> Vec<String>;

    /// The simulator behind this environment, for simulator-only inspection
    /// (instruction counts, stable memory); None on PocketIC.
    fn simulator(&self) -> Option<RefMut<'_, ic_sim::Simulator>> {
        None
    }
}

/// Typed Candid helpers over any [`TestEnv`].
pub trait TestEnvExt: TestEnv {
    fn create_canister(&self, controller: Principal) -> Principal {
        self.create_canister_with(vec![controller], ic_sim::DEFAULT_PROVISIONAL_CYCLES)
    }

    fn update_candid<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &self,
        sender: Principal,
        canister: Principal,
        method: &str,
        args: A,
    ) -> Result<R, Reject> {
        let bytes = self.update(sender, canister, method, candid::encode_args(args).expect("arguments encode"))?;
        Ok(candid::decode_args(&bytes).unwrap_or_else(|e| panic!("reply of {method} does not decode: {e}")))
    }

    fn query_candid<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &self,
        sender: Principal,
        canister: Principal,
        method: &str,
        args: A,
    ) -> Result<R, Reject> {
        let bytes = self.query(sender, canister, method, candid::encode_args(args).expect("arguments encode"))?;
        Ok(candid::decode_args(&bytes).unwrap_or_else(|e| panic!("reply of {method} does not decode: {e}")))
    }

    /// A call of `method` (a query or an update, as the method is) from `sender`.
    fn call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &self,
        sender: Principal,
        canister: Principal,
        method: &Method<A, R>,
        args: A,
    ) -> Result<R, Reject> {
        let arg = method.encode(args).expect("arguments encode");
        let bytes = match method.mode {
            Mode::Query => self.query(sender, canister, method.name, arg)?,
            Mode::Update | Mode::IdempotentUpdate => self.update(sender, canister, method.name, arg)?,
        };
        Ok(method.decode(&bytes).unwrap_or_else(|e| panic!("reply of {} does not decode: {e}", method.name)))
    }

    /// `method` sent as an update even when it is a query (replicated execution).
    fn call_update<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &self,
        sender: Principal,
        canister: Principal,
        method: &Method<A, R>,
        args: A,
    ) -> Result<R, Reject> {
        let bytes = self.update(sender, canister, method.name, method.encode(args).expect("arguments encode"))?;
        Ok(method.decode(&bytes).unwrap_or_else(|e| panic!("reply of {} does not decode: {e}", method.name)))
    }

    /// An update with one Candid argument and one result.
    fn update_one<A: CandidType, R: CandidType + DeserializeOwned>(
        &self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: A,
    ) -> Result<R, Reject> {
        self.update_candid::<(A,), (R,)>(sender, canister, method, (arg,)).map(|(r,)| r)
    }

    fn query_one<A: CandidType, R: CandidType + DeserializeOwned>(
        &self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: A,
    ) -> Result<R, Reject> {
        self.query_candid::<(A,), (R,)>(sender, canister, method, (arg,)).map(|(r,)| r)
    }

    /// Advances time by `by`, then ticks `ticks` rounds so timers and the
    /// calls they make can run.
    fn advance_and_tick(&self, by: Duration, ticks: usize) {
        self.advance_time(by);
        for _ in 0..ticks {
            self.tick();
        }
    }
}

impl<T: TestEnv + ?Sized> TestEnvExt for T {}

/// The simulator, or PocketIC when `POCKET_IC_BIN` is set.
pub fn new_env() -> Box<dyn TestEnv> {
    if std::env::var_os("POCKET_IC_BIN").is_some() { Box::new(PocketIcEnv::new()) } else { Box::new(SimEnv::new()) }
}

/// Where `scripts/build.sh` puts canister wasm (override with `WASM_DIR`).
pub fn wasm_dir() -> PathBuf {
    std::env::var_os("WASM_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").join("target/wasm")
    })
}

/// The wasm of canister `name`, built by `scripts/build.sh`.
pub fn wasm(name: &str) -> Vec<u8> {
    let path = wasm_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {} ({e}); run scripts/build.sh first", path.display()))
}

/// A principal for a test user, distinct per `n`.
pub fn user(n: u8) -> Principal {
    Principal::self_authenticating([n; 32])
}

/// Keeps a `RefCell` borrow short for implementations.
pub(crate) fn borrow<T>(cell: &RefCell<T>) -> RefMut<'_, T> {
    cell.borrow_mut()
}
