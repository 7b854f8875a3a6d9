//! Behaviour that only the simulator lets a test pin down exactly: round by
//! round scheduling, instruction limits and counts, time-outs, determinism.

use std::time::Duration;

use candid::{Decode, Encode, Principal};
use ic_sim::{Limits, RejectCode, SimConfig, Simulator};
use integration_tests::user;

mod probe;
use probe::*;

fn probe_on(sim: &mut Simulator, label: &str) -> Principal {
    let id = sim.create_canister(admin());
    sim.install_canister(admin(), id, &probe_wasm(), init_arg(label)).unwrap();
    id
}

fn forward_arg(target: Principal, method: &str, timeout_seconds: Option<u32>) -> Vec<u8> {
    Encode!(&ForwardArg { target, method: method.into(), arg: Encode!().unwrap(), cycles: 0, timeout_seconds }).unwrap()
}

#[test]
fn the_instruction_limit_stops_a_message_and_rolls_it_back() {
    let limits =
        Limits { instructions_per_update: 50_000_000, instructions_per_query: 20_000_000, ..Limits::default() };
    let mut sim = Simulator::with_config(SimConfig { limits, ..SimConfig::default() });
    let p = probe_on(&mut sim, "p");
    let used = Decode!(&sim.update_call(user(1), p, "burn", Encode!(&1_000u64).unwrap()).unwrap(), u64).unwrap();
    assert!(used > 1_000 && used < 50_000_000, "{used}");
    let err = sim.update_call(user(1), p, "burn", Encode!(&100_000_000u64).unwrap()).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert!(err.message.contains("exceeded the limit of 50000000 instructions"), "{}", err.message);
    let err = sim.query_call(user(1), p, "burn_query", Encode!(&100_000_000u64).unwrap()).unwrap_err();
    assert!(err.message.contains("exceeded the limit of 20000000 instructions"), "{}", err.message);
}

#[test]
fn instructions_are_counted_and_reported_per_message() {
    let mut sim = Simulator::new();
    let p = probe_on(&mut sim, "p");
    let small = sim.update_call_traced(user(1), p, "burn", Encode!(&1_000u64).unwrap());
    let big = sim.update_call_traced(user(1), p, "burn", Encode!(&100_000u64).unwrap());
    let reported = Decode!(&big.result.unwrap(), u64).unwrap();
    assert!(big.instructions >= reported, "the message counts at least what the canister saw");
    // 99,000 more iterations of a loop of a handful of instructions.
    let extra = big.instructions - small.instructions;
    assert!((99_000 * 3..99_000 * 30).contains(&extra), "{extra}");
    let last = sim.executions().last().unwrap();
    assert_eq!((last.canister, last.entry.as_str()), (p, "update burn"));
    assert_eq!(last.instructions, big.instructions);
}

#[test]
fn a_best_effort_call_times_out_at_its_deadline() {
    let mut sim = Simulator::new();
    let a = probe_on(&mut sim, "a");
    let b = probe_on(&mut sim, "b");
    let msg = sim.submit_update(user(1), a, "forward", forward_arg(b, "inc", Some(1))).unwrap();
    sim.tick(); // a runs and sends its call to b
    sim.advance_time(Duration::from_secs(2));
    let outcome = sim.await_update(msg);
    match Decode!(&outcome.result.unwrap(), Forwarded).unwrap() {
        Forwarded::Reject { code, .. } => assert_eq!(code, RejectCode::SysUnknown as u32),
        other => panic!("{other:?}"),
    }
    sim.run_until_idle(100);
    // The late reply of b is dropped; a is not confused by it.
    assert!(!sim.logs(a).iter().any(|l| l.text.contains("TRAP")));
}

#[test]
fn stopping_waits_for_open_calls_and_refuses_new_ones() {
    let mut sim = Simulator::new();
    let a = probe_on(&mut sim, "a");
    let b = probe_on(&mut sim, "b");
    let call = sim.submit_update(user(1), a, "forward", forward_arg(b, "inc", None)).unwrap();
    sim.tick(); // a has an open call context waiting for b
    let stop = sim
        .submit_update(
            admin(),
            Principal::management_canister(),
            "stop_canister",
            Encode!(&ic_sim::mgmt::CanisterIdRecord { canister_id: a }).unwrap(),
        )
        .unwrap();
    sim.tick(); // the stop request arrives: a is stopping
    let refused = sim.submit_update(user(1), a, "inc", Encode!().unwrap()).unwrap_err();
    assert!(refused.message.contains("stopping"), "{}", refused.message);
    assert!(sim.ingress_result(stop).is_none(), "stop waits for a's open call");
    let reply = sim.await_update(call).result.unwrap();
    assert_eq!(Decode!(&reply, Forwarded).unwrap(), Forwarded::Reply(Encode!(&1u64).unwrap()));
    assert!(sim.await_update(stop).result.is_ok());
}

#[test]
fn the_scheduler_delivers_one_hop_per_round() {
    let mut sim = Simulator::new();
    let a = probe_on(&mut sim, "a");
    let b = probe_on(&mut sim, "b");
    let msg = sim.submit_update(user(1), a, "forward", forward_arg(b, "inc", None)).unwrap();
    let mut rounds = 0;
    while sim.ingress_result(msg).is_none() {
        sim.tick();
        rounds += 1;
    }
    // ingress -> a, a -> b, b's reply -> a's callback.
    assert_eq!(rounds, 3);
}

fn scenario() -> (Vec<String>, Vec<(String, u64)>, Vec<u128>) {
    let mut sim = Simulator::new();
    let a = probe_on(&mut sim, "a");
    let b = probe_on(&mut sim, "b");
    let mut results = Vec::new();
    results.push(format!("{:?}", sim.update_call(user(1), a, "random", Encode!().unwrap())));
    results.push(format!("{:?}", sim.update_call(user(1), a, "forward", forward_arg(b, "inc", Some(10)))));
    results.push(format!("{:?}", sim.update_call(user(1), b, "start_interval", Encode!(&5u64).unwrap())));
    sim.advance_time(Duration::from_secs(12));
    sim.run_until_idle(100);
    results.push(format!("{:?}", sim.query_call(user(1), b, "timer_firings", Encode!().unwrap())));
    let execs = sim.executions().map(|e| (e.entry.clone(), e.instructions)).collect();
    (results, execs, vec![sim.cycle_balance(a), sim.cycle_balance(b)])
}

#[test]
fn the_same_scenario_gives_the_same_result_every_run() {
    let first = scenario();
    assert_eq!(first, scenario());
    assert!(first.1.len() > 10);
}

#[test]
fn time_advances_when_told_and_with_the_rounds_work() {
    let mut sim = Simulator::new();
    let p = probe_on(&mut sim, "p");
    let now =
        |sim: &mut Simulator| Decode!(&sim.query_call(user(1), p, "now", Encode!().unwrap()).unwrap(), u64).unwrap();
    // A round after one that executed nothing lasts 1 ns.
    sim.tick();
    let t0 = now(&mut sim);
    sim.advance_time(Duration::from_secs(3600));
    sim.tick();
    assert_eq!(now(&mut sim) - t0, 3_600_000_000_001);
    // A round lasts as long as its largest execution at 2B instructions a second.
    let burn = sim.update_call_traced(user(1), p, "burn", Encode!(&1_000_000u64).unwrap());
    let t1 = now(&mut sim);
    sim.tick();
    assert_eq!(now(&mut sim) - t1, burn.instructions * 1_000_000_000 / 2_000_000_000);
}
