//! The embedded simulator's own speed on this machine: messages per second
//! and canister creation + install time. Wall-clock figures, so they are
//! not compared by `scripts/bench.sh --check` (instruction counts are, in
//! `bench_simulator`).
//!
//! Run with `scripts/bench.sh` (or `cargo run -p integration-tests --example
//! bench_simulator_speed`); prints a Markdown report to stdout.

use std::time::Instant;

use candid::{Encode, Principal};
use ic_sim::{SimConfig, Simulator};
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
    // No disk cache: the first install measures a real compilation.
    let mut sim = Simulator::with_config(SimConfig { module_cache_dir: None, ..SimConfig::default() });

    // Creation + install, cold (compiles the module) and warm (cached).
    let t = Instant::now();
    let p = probe(&mut sim);
    let cold_ms = t.elapsed().as_secs_f64() * 1e3;
    let n_installs = 50;
    let t = Instant::now();
    for _ in 0..n_installs {
        probe(&mut sim);
    }
    let warm_ms = t.elapsed().as_secs_f64() * 1e3 / n_installs as f64;
    let q = probe(&mut sim);

    let fwd_arg =
        ForwardArg { target: q, method: "inc".into(), arg: Encode!().unwrap(), cycles: 0, timeout_seconds: None };

    // Speed: sequential ingress updates (each waits for its reply).
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        sim.update_call(user(1), p, "inc", Encode!().unwrap()).unwrap();
    }
    let seq_per_s = n as f64 / t.elapsed().as_secs_f64();

    // Speed: a batch of ingress updates delivered in one round.
    let t = Instant::now();
    let ids: Vec<_> = (0..n).map(|_| sim.submit_update(user(1), p, "inc", Encode!().unwrap()).unwrap()).collect();
    sim.tick();
    for id in ids {
        assert!(sim.ingress_result(id).is_some_and(|r| r.is_ok()));
    }
    let batch_per_s = n as f64 / t.elapsed().as_secs_f64();

    // Speed: queries.
    let t = Instant::now();
    for _ in 0..n {
        sim.query_call(user(1), p, "get", Encode!().unwrap()).unwrap();
    }
    let query_per_s = n as f64 / t.elapsed().as_secs_f64();

    // Speed: inter-canister round trips.
    let m = 5_000;
    let t = Instant::now();
    for _ in 0..m {
        sim.update_call(user(1), p, "forward", Encode!(&fwd_arg).unwrap()).unwrap();
    }
    let fwd_per_s = m as f64 / t.elapsed().as_secs_f64();

    println!("## Simulator speed (this machine, wall-clock)\n");
    println!("| simulator speed (this machine) | value |");
    println!("|---|---:|");
    println!("| sequential ingress updates (`inc`, each awaited) | {seq_per_s:.0} /s |");
    println!("| batched ingress updates (`inc`, {n} in one round) | {batch_per_s:.0} /s |");
    println!("| queries (`get`) | {query_per_s:.0} /s |");
    println!("| inter-canister round trips (`forward` → `inc`) | {fwd_per_s:.0} /s |");
    println!("| create + install a canister, module compiled by wasmtime (no cache) | {cold_ms:.1} ms |");
    println!("| create + install a canister, module cached | {warm_ms:.2} ms |");
}
