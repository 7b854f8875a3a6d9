//! Benchmark of the creator's hot paths against the number of stored jobs:
//! instructions of an idle job-timer round, of a round with one running
//! job, and of `create_mainer`, with N finished jobs stored (issue 11 #9:
//! goal ≤ 1.2× from 10 to 10,000 jobs). Prints a Markdown report.
//!
//! `cargo run -p integration-tests --example bench_creator_jobs -- [N ...]`
//! (default 10 and 10000). The stored jobs are ShareAgent jobs that failed
//! for want of cycles (a reserve set above the balance), so they cost no
//! canisters. `CREATOR_WASM=path` benchmarks another build of the creator.

use candid::Encode;
use integration_tests::deploy::{admin, run_for, settle};
use integration_tests::factory::*;
use integration_tests::{SimEnv, TestEnv, TestEnvExt, user, wasm};
use mainer_types::MainerRole;
use mainer_types::calls::creator as creator_calls;
use mainer_types::creator::{ArtefactKind, CreatorArgs, CreatorSettings, CreatorUpgrade, JobStatus};
use mainer_types::{Page, PageRequest};

fn settings(reserve_cycles: u128) -> CreatorSettings {
    CreatorSettings { max_parallel_jobs: 100, reserve_cycles, ..CreatorSettings::default() }
}

fn upgrade(env: &SimEnv, creator: candid::Principal, wasm_bytes: &[u8], s: CreatorSettings) {
    let arg = CreatorArgs::Upgrade(CreatorUpgrade { settings: Some(s), ..CreatorUpgrade::default() });
    env.upgrade(admin(), creator, wasm_bytes, Encode!(&Some(arg)).unwrap()).expect("the creator upgrades");
}

/// Instructions of the creator's executions since the last clear, by entry.
fn instructions(env: &SimEnv, creator: candid::Principal, entry: &str) -> Vec<u64> {
    let sim = env.simulator().unwrap();
    sim.executions().filter(|e| e.canister == creator && e.entry.contains(entry)).map(|e| e.instructions).collect()
}

struct Figures {
    jobs: u64,
    idle_round: u64,
    busy_round: u64,
    create: u64,
}

fn measure(n: u64, creator_wasm: &[u8]) -> Figures {
    let env = SimEnv::new();
    let f = deploy_factory(&env, Some(settings(CreatorSettings::default().reserve_cycles)));
    upgrade(&env, f.creator, creator_wasm, settings(CreatorSettings::default().reserve_cycles));
    upload_artefact(&env, f.creator, ArtefactKind::ControllerWasm, "controller", &wasm("mainer_controller"));
    // Enough for the creator to commit every job's cycles (it refuses orders it cannot fund).
    env.add_cycles(f.creator, (n as u128 + 1) * 3_000_000_000_000);
    let agent = mainer_request(MainerRole::ShareAgent, 0, Some(user(3)), 4);
    for _ in 0..n {
        create_mainer(&env, f.creator, agent.clone()).expect("accepted");
    }
    // No cycles to spend: every job gives up after its attempts, making nothing.
    upgrade(&env, f.creator, creator_wasm, settings(1 << 99));
    let last = n - 1;
    // Seeding only: a minute at a time, so every job's back-off (at most
    // 60 s) is over at each round and a batch gives up in a few rounds.
    while job(&env, f.creator, last).status == JobStatus::Running {
        env.advance_time(std::time::Duration::from_secs(60));
        settle(&env);
    }
    let page: Page<mainer_types::creator::JobView> =
        env.call(admin(), f.creator, &creator_calls::LIST_JOBS, (PageRequest::first(1),)).unwrap().unwrap();
    assert_eq!(page.total, n);
    upgrade(&env, f.creator, creator_wasm, settings(CreatorSettings::default().reserve_cycles));

    // An idle round: nothing runs.
    run_for(&env, 3);
    env.simulator().unwrap().clear_executions();
    run_for(&env, 2);
    let idle_round = instructions(&env, f.creator, "timer").into_iter().max().unwrap_or(0);

    // create_mainer with N jobs stored.
    env.simulator().unwrap().clear_executions();
    let id = create_mainer(&env, f.creator, agent.clone()).expect("accepted").id;
    let create = instructions(&env, f.creator, "create_mainer").into_iter().max().unwrap_or(0);

    // The round that starts its first step (the reserve stops it there).
    upgrade(&env, f.creator, creator_wasm, settings(1 << 99));
    env.simulator().unwrap().clear_executions();
    run_for(&env, 2);
    let busy_round = instructions(&env, f.creator, "timer").into_iter().max().unwrap_or(0);
    assert!(job(&env, f.creator, id).attempts >= 1, "the round worked on the new job");
    Figures { jobs: n, idle_round, busy_round, create }
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if args.is_empty() { vec![10, 10_000] } else { args };
    let creator_wasm = match std::env::var_os("CREATOR_WASM") {
        Some(p) => std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.to_string_lossy())),
        None => wasm("mainer_creator"),
    };
    let figures: Vec<Figures> = sizes.iter().map(|&n| measure(n, &creator_wasm)).collect();
    println!("## Creator: hot paths against stored jobs\n");
    println!("| stored jobs | idle timer round | round with one job due | `create_mainer` |");
    println!("|---:|---:|---:|---:|");
    for f in &figures {
        println!("| {} | {} | {} | {} |", f.jobs, f.idle_round, f.busy_round, f.create);
    }
    if let (Some(a), Some(b)) = (figures.first(), figures.last()) {
        let r = |x: u64, y: u64| y as f64 / x.max(1) as f64;
        println!(
            "\nfrom {} to {} jobs: idle round ×{:.2}, busy round ×{:.2}, create_mainer ×{:.2} (instructions)",
            a.jobs,
            b.jobs,
            r(a.idle_round, b.idle_round),
            r(a.busy_round, b.busy_round),
            r(a.create, b.create)
        );
    }
}
