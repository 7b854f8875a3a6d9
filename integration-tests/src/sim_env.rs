//! [`TestEnv`] on the embedded simulator.

use std::cell::{RefCell, RefMut};
use std::time::Duration;

use candid::Principal;
use ic_sim::{InstallMode, Reject, Simulator};

use crate::{CallHandle, TestEnv, borrow};

pub struct SimEnv {
    sim: RefCell<Simulator>,
}

impl SimEnv {
    pub fn new() -> Self {
        SimEnv { sim: RefCell::new(Simulator::new()) }
    }

    pub fn from_simulator(sim: Simulator) -> Self {
        SimEnv { sim: RefCell::new(sim) }
    }
}

impl Default for SimEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv for SimEnv {
    fn backend(&self) -> &'static str {
        "simulator"
    }

    fn create_canister_with(&self, controllers: Vec<Principal>, cycles: u128) -> Principal {
        borrow(&self.sim).create_canister_with(controllers, cycles)
    }

    fn install(&self, sender: Principal, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Result<(), Reject> {
        borrow(&self.sim).install_code(sender, canister, wasm, arg, InstallMode::Install)
    }

    fn upgrade(&self, sender: Principal, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Result<(), Reject> {
        borrow(&self.sim).install_code(sender, canister, wasm, arg, InstallMode::UPGRADE)
    }

    fn reinstall(&self, sender: Principal, canister: Principal, wasm: &[u8], arg: Vec<u8>) -> Result<(), Reject> {
        borrow(&self.sim).install_code(sender, canister, wasm, arg, InstallMode::Reinstall)
    }

    fn update(&self, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, Reject> {
        borrow(&self.sim).update_call(sender, canister, method, arg)
    }

    fn query(&self, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, Reject> {
        borrow(&self.sim).query_call(sender, canister, method, arg)
    }

    fn submit(&self, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) -> Result<CallHandle, Reject> {
        borrow(&self.sim).submit_update(sender, canister, method, arg).map(CallHandle::Sim)
    }

    fn await_call(&self, call: CallHandle) -> Result<Vec<u8>, Reject> {
        match call {
            CallHandle::Sim(id) => borrow(&self.sim).await_update(id).result,
            CallHandle::Pocket(_) => panic!("a PocketIC call handle given to the simulator"),
        }
    }

    fn tick(&self) {
        borrow(&self.sim).tick()
    }

    fn advance_time(&self, by: Duration) {
        borrow(&self.sim).advance_time(by)
    }

    fn time_ns(&self) -> u64 {
        self.sim.borrow().time()
    }

    fn stop(&self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        borrow(&self.sim).stop_canister(sender, canister)
    }

    fn start(&self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        borrow(&self.sim).start_canister(sender, canister)
    }

    fn delete(&self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        borrow(&self.sim).delete_canister(sender, canister)
    }

    fn status(&self, sender: Principal, canister: Principal) -> Result<ic_sim::mgmt::CanisterStatusResult, Reject> {
        borrow(&self.sim).canister_status(sender, canister)
    }

    fn cycle_balance(&self, canister: Principal) -> u128 {
        self.sim.borrow().cycle_balance(canister)
    }

    fn add_cycles(&self, canister: Principal, amount: u128) {
        borrow(&self.sim).add_cycles(canister, amount);
    }

    fn logs(&self, controller: Principal, canister: Principal) -> Vec<String> {
        let sim = self.sim.borrow();
        assert!(sim.controllers(canister).contains(&controller), "{controller} may not read the logs of {canister}");
        sim.logs(canister).into_iter().map(|r| r.text).collect()
    }

    fn simulator(&self) -> Option<RefMut<'_, Simulator>> {
        Some(borrow(&self.sim))
    }
}
