//! Benchmark of a ShareService under load, on the simulator (IC-weighted
//! meter, issue 11 item 13):
//! - what one queue operation (an agent's `enqueue_challenge`) and the public
//!   `health` query cost with 16, 1,000 and 5,000 items queued;
//! - the scale run: one ShareService, its LLMs, many ShareAgents started
//!   together, a few open challenges refilled as they close, for a simulated
//!   hour: answers, agents served, LLM utilisation, cycles per answer and per
//!   idle agent-hour.
//!
//! `bench_share_service [queue [SIZES...] | scale [AGENTS LLMS MINUTES QUEUE]]`;
//! without arguments both parts, with the defaults of the report.
//! Prints a Markdown report (`scripts/bench.sh`: `benchmarks/share_service.md`).

use candid::{Encode, Principal};
use integration_tests::deploy::*;
use integration_tests::{SimEnv, TestEnv, TestEnvExt};
use mainer_types::MainerRole;
use mainer_types::calls::controller as controller_calls;
use mainer_types::controller::{ControllerSettings, ServiceChallenge, ServiceRequest};

mod scale;

/// A principal that stands for ShareAgent number `n` (an ingress sender).
fn agent(n: u64) -> Principal {
    Principal::from_slice(&[&n.to_be_bytes()[..], &[0xA6, 1]].concat())
}

/// Instructions of one more `enqueue_challenge` and of `health` with `queued`
/// items waiting in a ShareService (it has no LLM, so they stay queued).
fn queue_costs(queued: u64) -> (u64, u64) {
    let env = SimEnv::new();
    let game = deploy_game_state(&env);
    let service = deploy_controller(&env, MainerRole::ShareService, game, None);
    let settings = ControllerSettings {
        max_queue: 10_000,
        process_interval_seconds: 86_400,
        pull_interval_seconds: 86_400,
        ..test_settings()
    };
    env.call(admin(), service, &controller_calls::SET_SETTINGS, (settings,)).unwrap().unwrap();
    let challenge = add_challenge(&env, game, "Once upon a time", 8);
    let request = Encode!(&ServiceRequest { challenge: ServiceChallenge::from(&challenge) }).unwrap();
    let enqueue = |n: u64| {
        env.call(admin(), service, &controller_calls::ADD_SHARE_AGENT, (agent(n),)).unwrap().unwrap();
        let mut sim = env.simulator().unwrap();
        let out = sim.update_call_traced(agent(n), service, "enqueue_challenge", request.clone());
        out.result.expect("accepted");
        out.instructions
    };
    for n in 0..queued {
        enqueue(n);
    }
    let add = enqueue(queued);
    let mut sim = env.simulator().unwrap();
    let health = sim.query_call_traced(admin(), service, "health", Encode!().unwrap());
    health.result.expect("health answers");
    (add, health.instructions)
}

fn queue_report(sizes: &[u64]) {
    println!("### Queue operations by queue length\n");
    println!("| items queued | `enqueue_challenge` instructions | `health` instructions |");
    println!("|---:|---:|---:|");
    let mut rows = Vec::new();
    for &queued in sizes {
        let (add, health) = queue_costs(queued);
        println!("| {queued} | {add} | {health} |");
        rows.push((add, health));
    }
    let (a0, h0) = rows[0];
    let (a1, h1) = rows[1];
    println!(
        "\nFrom 16 to 1,000 queued: `enqueue_challenge` ×{:.2}, `health` ×{:.2}.\n",
        a1 as f64 / a0 as f64,
        h1 as f64 / h0 as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let part = args.first().map(String::as_str).unwrap_or("all");
    let numbers: Vec<u64> = args.iter().skip(1).map(|a| a.parse().expect("a number")).collect();
    println!("## ShareService under load\n");
    if part == "queue" {
        let sizes: Vec<u64> = if numbers.is_empty() { vec![16, 1_000, 5_000] } else { numbers.clone() };
        queue_report(&sizes);
    } else if part == "all" {
        queue_report(&[16, 1_000, 5_000]);
    }
    if part == "all" {
        let small = scale::Scale::default();
        let roomy = scale::Scale { service_queue: small.agents as u32, ..scale::Scale::default() };
        scale::run(&small).print();
        scale::run(&roomy).print();
    } else if part == "scale" {
        let defaults = scale::Scale::default();
        let scale = scale::Scale {
            agents: numbers.first().copied().unwrap_or(defaults.agents),
            llms: numbers.get(1).copied().unwrap_or(defaults.llms),
            minutes: numbers.get(2).copied().unwrap_or(defaults.minutes),
            service_queue: numbers.get(3).map_or(defaults.service_queue, |q| *q as u32),
            ..defaults
        };
        scale::run(&scale).print();
    }
}
