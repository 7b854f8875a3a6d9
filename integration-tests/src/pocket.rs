//! [`TestEnv`] on PocketIC (used when `POCKET_IC_BIN` names a server binary).

use std::time::Duration;

use candid::Principal;
use ic_sim::{Reject, RejectCode};
use pocket_ic::{PocketIc, RejectResponse};

use crate::{CallHandle, TestEnv};

pub struct PocketIcEnv {
    pic: PocketIc,
}

impl PocketIcEnv {
    pub fn new() -> Self {
        PocketIcEnv { pic: PocketIc::new() }
    }
}

impl Default for PocketIcEnv {
    fn default() -> Self {
        Self::new()
    }
}

fn reject(r: RejectResponse) -> Reject {
    let code = match r.reject_code {
        pocket_ic::RejectCode::SysFatal => RejectCode::SysFatal,
        pocket_ic::RejectCode::SysTransient => RejectCode::SysTransient,
        pocket_ic::RejectCode::DestinationInvalid => RejectCode::DestinationInvalid,
        pocket_ic::RejectCode::CanisterReject => RejectCode::CanisterReject,
        pocket_ic::RejectCode::CanisterError => RejectCode::CanisterError,
        pocket_ic::RejectCode::SysUnknown => RejectCode::SysUnknown,
    };
    Reject { code, message: r.reject_message, error_code: None }
}

impl TestEnv for PocketIcEnv {
    fn backend(&self) -> &'static str {
        "pocket-ic"
    }

    fn create_canister_with(&self, controllers: Vec<Principal>, cycles: u128) -> Principal {
        let settings = pocket_ic::CanisterSettings { controllers: Some(controllers.clone()), ..Default::default() };
        let id = self.pic.create_canister_with_settings(controllers.first().copied(), Some(settings));
        self.pic.add_cycles(id, cycles);
        id
    }

    fn install(&self, sender: Principal, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Result<(), Reject> {
        // PocketIC's install panics on failure; a reinstall of an empty
        // canister is an install that reports errors.
        self.pic.reinstall_canister(canister, wasm.to_vec(), arg, Some(sender)).map_err(reject)
    }

    fn upgrade(&self, sender: Principal, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Result<(), Reject> {
        self.pic.upgrade_canister(canister, wasm.to_vec(), arg, Some(sender)).map_err(reject)
    }

    fn reinstall(&self, sender: Principal, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Result<(), Reject> {
        self.pic.reinstall_canister(canister, wasm.to_vec(), arg, Some(sender)).map_err(reject)
    }

    fn update(&self, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, Reject> {
        self.pic.update_call(canister, sender, method, arg).map_err(reject)
    }

    fn query(&self, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, Reject> {
        self.pic.query_call(canister, sender, method, arg).map_err(reject)
    }

    fn submit(&self, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) -> Result<CallHandle, Reject> {
        self.pic.submit_call(canister, sender, method, arg).map(CallHandle::Pocket).map_err(reject)
    }

    fn await_call(&self, call: CallHandle) -> Result<Vec<u8>, Reject> {
        match call {
            CallHandle::Pocket(id) => self.pic.await_call(id).map_err(reject),
            CallHandle::Sim(_) => panic!("a simulator call handle given to PocketIC"),
        }
    }

    fn tick(&self) {
        self.pic.tick()
    }

    fn advance_time(&self, by: Duration) {
        self.pic.advance_time(by)
    }

    fn time_ns(&self) -> u64 {
        self.pic.get_time().as_nanos_since_unix_epoch()
    }

    fn stop(&self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        self.pic.stop_canister(canister, Some(sender)).map_err(reject)
    }

    fn start(&self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        self.pic.start_canister(canister, Some(sender)).map_err(reject)
    }

    fn delete(&self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        self.pic.delete_canister(canister, Some(sender)).map_err(reject)
    }

    fn status(&self, sender: Principal, canister: Principal) -> Result<ic_sim::mgmt::CanisterStatusResult, Reject> {
        // PocketIC decodes the status into its own type; go through the raw
        // call so both backends return the same type.
        let arg = candid::encode_one(ic_sim::mgmt::CanisterIdRecord { canister_id: canister }).unwrap();
        let bytes =
            self.pic.update_call(Principal::management_canister(), sender, "canister_status", arg).map_err(reject)?;
        Ok(candid::decode_one(&bytes).expect("canister_status reply decodes"))
    }

    fn cycle_balance(&self, canister: Principal) -> u128 {
        self.pic.cycle_balance(canister)
    }

    fn add_cycles(&self, canister: Principal, amount: u128) {
        self.pic.add_cycles(canister, amount);
    }

    fn logs(&self, controller: Principal, canister: Principal) -> Vec<String> {
        self.pic
            .fetch_canister_logs(canister, controller)
            .expect("fetch_canister_logs")
            .into_iter()
            .map(|r| String::from_utf8_lossy(&r.content).into_owned())
            .collect()
    }
}
