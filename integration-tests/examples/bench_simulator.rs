//! Benchmark of the embedded simulator: instructions per message of the probe
//! fixture. Deterministic, so `scripts/bench.sh --check` compares it with
//! the committed report; the simulator's own speed (wall-clock) is in
//! `bench_simulator_speed`.
//!
//! Run with `scripts/bench.sh` (or `cargo run -p integration-tests --example
//! bench_simulator`); prints a Markdown report to stdout.

use candid::{Encode, Principal};
use ic_sim::Simulator;
use integration_tests::{user, wasm};
fn probe(sim: &mut Simulator) -> Principal {
    let id = sim.create_canister(user(0));
    let arg = Encode!(&None::<()>).unwrap();
    sim.install_canister(user(0), id, &wasm("sim_probe"), arg).unwrap();
    id
}

#[derive(candid::CandidType)]
struct ForwardArg {
    target: Principal,
    method: String,
    arg: Vec<u8>,
    cycles: u128,
    timeout_seconds: Option<u32>,
}

fn main() {
    let wasm_bytes = wasm("sim_probe");
    let mut sim = Simulator::new();
    let p = probe(&mut sim);
    let q = probe(&mut sim);

    // Instructions per message.
    let inc = sim.update_call_traced(user(1), p, "inc", Encode!().unwrap());
    let get = sim.query_call_traced(user(1), p, "get", Encode!().unwrap());
    let put = sim.update_call_traced(user(1), p, "stable_put", Encode!(&1u64, &vec![7u8; 1024]).unwrap());
    let burn = sim.update_call_traced(user(1), p, "burn", Encode!(&1_000_000u64).unwrap());
    let fwd_arg =
        ForwardArg { target: q, method: "inc".into(), arg: Encode!().unwrap(), cycles: 0, timeout_seconds: None };
    let fwd = sim.update_call_traced(user(1), p, "forward", Encode!(&fwd_arg).unwrap());
    for r in [&inc, &put, &burn, &fwd] {
        r.result.as_ref().expect("benchmark call succeeds");
    }

    println!("## Simulator benchmark\n");
    println!("Probe fixture: {} bytes of wasm, heap {} bytes.\n", wasm_bytes.len(), sim.heap_bytes(p));
    println!("| message (probe fixture) | instructions |");
    println!("|---|---:|");
    println!("| update `inc` | {} |", inc.instructions);
    println!("| query `get` | {} |", get.instructions);
    println!("| update `stable_put` (1 KiB into a StableBTreeMap) | {} |", put.instructions);
    println!("| update `burn(1,000,000)` (loop) | {} |", burn.instructions);
    println!("| update `forward` to another canister (caller's side, call + callback) | {} |", fwd.instructions);
}
