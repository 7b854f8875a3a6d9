//! Helpers around the `sim_probe` fixture canister, shared by the simulator tests.
#![allow(dead_code)]

use candid::{CandidType, Deserialize, Principal};
use integration_tests::{TestEnv, TestEnvExt, user, wasm};

/// The controller of every probe: `user(0)`.
pub fn admin() -> Principal {
    user(0)
}

#[derive(CandidType, Deserialize)]
pub struct InitArg {
    pub label: String,
}

#[derive(CandidType, Deserialize, Debug, PartialEq, Eq)]
pub enum Forwarded {
    Reply(Vec<u8>),
    Reject { code: u32, message: String },
    NotSent(String),
}

#[derive(CandidType, Deserialize)]
pub struct ForwardArg {
    pub target: Principal,
    pub method: String,
    pub arg: Vec<u8>,
    pub cycles: u128,
    pub timeout_seconds: Option<u32>,
}

pub fn probe_wasm() -> Vec<u8> {
    wasm("sim_probe")
}

pub fn init_arg(label: &str) -> Vec<u8> {
    candid::encode_one(Some(InitArg { label: label.to_string() })).unwrap()
}

/// Creates and installs a probe labelled `label`, controlled by `admin()`.
pub fn install_probe(env: &dyn TestEnv, label: &str) -> Principal {
    let id = env.create_canister(admin());
    env.install(admin(), id, &probe_wasm(), init_arg(label)).expect("probe installs");
    id
}

pub fn inc(env: &dyn TestEnv, p: Principal) -> u64 {
    env.update_one(user(1), p, "inc", ()).unwrap()
}

pub fn get(env: &dyn TestEnv, p: Principal) -> u64 {
    env.query_one(user(1), p, "get", ()).unwrap()
}

pub fn forward(
    env: &dyn TestEnv,
    from: Principal,
    target: Principal,
    method: &str,
    arg: Vec<u8>,
    cycles: u128,
    timeout_seconds: Option<u32>,
) -> Forwarded {
    let arg = ForwardArg { target, method: method.to_string(), arg, cycles, timeout_seconds };
    env.update_one(user(1), from, "forward", arg).unwrap()
}
