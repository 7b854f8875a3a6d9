//! Time and cycles as the IC charges them: deterministic time slicing (a long
//! message runs one 2B-instruction slice per round, the clock moving about a
//! second per full slice, so bounded-wait calls time out during it) and the
//! fee schedule of a 13-node application subnet (`ic0.cost_*`, what a call
//! reserves and what a canister's balance loses). Simulator only: the figures
//! are the simulator's meter and balances.

use candid::{Decode, Encode, Principal};
use ic_sim::{RejectCode, Simulator};
use integration_tests::user;

mod probe;
use probe::*;

/// `burn` runs its argument (a little-endian u32) times `call_new` plus a
/// 1 MiB `call_data_append` (a call built and never performed): 52,430,800
/// IC-weighted instructions each (1,500 + 500 + 50 per byte sent), then
/// replies. `ping` replies at once.
const BURNER: &str = r#"
(module
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_data_append" (func $call_append (param i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 17)
  (func (export "canister_update burn")
    (local $n i32)
    (call $arg_copy (i32.const 0) (i32.const 0) (i32.const 4))
    (local.set $n (i32.load (i32.const 0)))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (call $call_new (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
        (call $call_append (i32.const 65536) (i32.const 1048576))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (call $append (i32.const 0) (i32.const 4))
    (call $reply))
  (func (export "canister_update ping") (call $append (i32.const 0) (i32.const 4)) (call $reply)))
"#;

/// 686 rounds of the burner's loop: just under 36B instructions.
const ITERATIONS_36B: u32 = 686;
const SLICE: u64 = 2_000_000_000;
const SECOND: u64 = 1_000_000_000;

fn install_wat(sim: &mut Simulator, wat: &str) -> Principal {
    let id = sim.create_canister(admin());
    sim.install_canister(admin(), id, &wat::parse_str(wat).unwrap(), vec![]).unwrap();
    id
}

fn probe_on(sim: &mut Simulator, label: &str) -> Principal {
    let id = sim.create_canister(admin());
    sim.install_canister(admin(), id, &probe_wasm(), init_arg(label)).unwrap();
    id
}

/// Instructions of the last execution of `entry` by `canister`.
fn instructions_of(sim: &Simulator, canister: Principal, entry: &str) -> u64 {
    sim.executions()
        .filter(|e| e.canister == canister && e.entry == entry)
        .last()
        .unwrap_or_else(|| panic!("no execution of {entry}"))
        .instructions
}

/// Ticks until the simulator is idle, so the next round starts from a clock
/// that no execution moved.
fn settle(sim: &mut Simulator) {
    sim.run_until_idle(1_000);
    sim.tick();
}

#[test]
fn a_36b_instruction_message_spans_18_rounds_and_18_seconds() {
    let mut sim = Simulator::new();
    let burner = install_wat(&mut sim, BURNER);
    settle(&mut sim);
    let start = sim.time();
    let burn = sim.submit_update(user(1), burner, "burn", ITERATIONS_36B.to_le_bytes().to_vec()).unwrap();
    let ping = sim.submit_update(user(1), burner, "ping", vec![]).unwrap();
    let mut rounds = 0;
    while sim.ingress_result(burn).is_none() {
        sim.tick();
        rounds += 1;
        assert!(rounds < 100, "the long message never finished");
        if sim.ingress_result(burn).is_none() {
            assert!(sim.has_paused_execution(burner), "round {rounds}: the execution is paused between slices");
            assert!(sim.ingress_result(ping).is_none(), "round {rounds}: a message for a busy canister waits");
        }
    }
    let instructions = instructions_of(&sim, burner, "update burn");
    assert!((34_000_000_001..=36_000_000_000).contains(&instructions), "{instructions}");
    assert_eq!(rounds, 18, "one 2B slice per round: {instructions} instructions");
    // The first round started 1 ns after an idle one; each of the 17 rounds
    // after it followed a full slice of one second.
    assert_eq!(sim.time() - start, 1 + 17 * SECOND);
    sim.tick();
    let last_slice = instructions - 17 * SLICE;
    assert_eq!(sim.time() - start, 1 + 17 * SECOND + last_slice * SECOND / SLICE, "the last slice's round");
    assert!(sim.ingress_result(ping).is_some_and(|r| r.is_ok()), "the waiting message runs after it");
    assert!(!sim.has_paused_execution(burner));
}

#[test]
fn a_bounded_wait_call_times_out_during_a_long_message() {
    let mut sim = Simulator::new();
    let caller = probe_on(&mut sim, "caller");
    let burner = install_wat(&mut sim, BURNER);
    let arg = |timeout_seconds| {
        Encode!(&ForwardArg {
            target: burner,
            method: "burn".into(),
            arg: ITERATIONS_36B.to_le_bytes().to_vec(),
            cycles: 0,
            timeout_seconds,
        })
        .unwrap()
    };

    let start = sim.time();
    let reply = sim.update_call(user(1), caller, "forward", arg(Some(10))).unwrap();
    match Decode!(&reply, Forwarded).unwrap() {
        Forwarded::Reject { code, message } => {
            assert_eq!(code, RejectCode::SysUnknown as u32, "{message}");
        }
        other => panic!("the 10 s deadline passed during the 18 s message: {other:?}"),
    }
    let waited = sim.time() - start;
    assert!((10 * SECOND..12 * SECOND).contains(&waited), "the timeout came when the deadline passed: {waited} ns");
    assert!(sim.has_paused_execution(burner), "the callee is still running");
    sim.run_until_idle(100);
    assert!(!sim.has_paused_execution(burner));

    // Waiting without a deadline, the caller gets the reply 18 rounds later.
    let start = sim.time();
    let reply = sim.update_call(user(1), caller, "forward", arg(None)).unwrap();
    assert!(matches!(Decode!(&reply, Forwarded).unwrap(), Forwarded::Reply(_)));
    let waited = sim.time() - start;
    assert!((17 * SECOND..19 * SECOND).contains(&waited), "{waited} ns");
}

/// `costs` replies with `cost_call(3, 7)`, `cost_create_canister` and
/// `cost_http_request(100, 1000)`, 16 bytes each; `PTR` is the pointer type.
fn cost_module(wasm64: bool) -> String {
    let (ptr, mem) = if wasm64 { ("i64", "(memory i64 1)") } else { ("i32", "(memory 1)") };
    format!(
        r#"(module
  (import "ic0" "cost_call" (func $cost_call (param i64 i64 {ptr})))
  (import "ic0" "cost_create_canister" (func $cost_create (param {ptr})))
  (import "ic0" "cost_http_request" (func $cost_http (param i64 i64 {ptr})))
  (import "ic0" "msg_reply_data_append" (func $append (param {ptr} {ptr})))
  (import "ic0" "msg_reply" (func $reply))
  {mem}
  (func (export "canister_update costs")
    (call $cost_call (i64.const 3) (i64.const 7) ({ptr}.const 0))
    (call $cost_create ({ptr}.const 16))
    (call $cost_http (i64.const 100) (i64.const 1000) ({ptr}.const 32))
    (call $append ({ptr}.const 0) ({ptr}.const 48))
    (call $reply)))"#
    )
}

fn costs_of(sim: &mut Simulator, wasm64: bool) -> [u128; 3] {
    let id = install_wat(sim, &cost_module(wasm64));
    let bytes = sim.update_call(user(1), id, "costs", vec![]).unwrap();
    let at = |i: usize| u128::from_le_bytes(bytes[16 * i..16 * (i + 1)].try_into().unwrap());
    [at(0), at(1), at(2)]
}

#[test]
fn cost_call_and_the_other_costs_follow_the_13_node_fee_schedule() {
    let mut sim = Simulator::new();
    // The request (260,000 + 1,000 per byte of method and argument), the
    // reserve for a 2 MiB response (1,000 per byte) and the prepaid callback
    // (5M + 40B instructions at 1 cycle each; 2 cycles each in wasm64).
    let request = 260_000 + 1_000 * (3 + 7);
    let response_reserve = 1_000 * 2 * 1024 * 1024;
    let callback = 5_000_000 + 40_000_000_000;
    let http = (3_000_000 + 60_000 * 13 + 400 * 100 + 800 * 1000) * 13;
    assert_eq!(costs_of(&mut sim, false), [request + response_reserve + callback, 500_000_000_000, http]);
    let callback64 = 5_000_000 + 80_000_000_000;
    assert_eq!(costs_of(&mut sim, true), [request + response_reserve + callback64, 500_000_000_000, http]);
}

#[test]
fn a_call_costs_its_caller_exactly_the_fee_formula() {
    let mut sim = Simulator::new();
    let a = probe_on(&mut sim, "a");
    let b = probe_on(&mut sim, "b");
    settle(&mut sim);
    sim.clear_executions();
    let (a0, b0) = (sim.cycle_balance(a), sim.cycle_balance(b));
    let inner = Encode!().unwrap();
    let arg =
        Encode!(&ForwardArg { target: b, method: "inc".into(), arg: inner.clone(), cycles: 0, timeout_seconds: None })
            .unwrap();
    let reply = sim.update_call(user(1), a, "forward", arg.clone()).unwrap();
    let Forwarded::Reply(response) = Decode!(&reply, Forwarded).unwrap() else { panic!("inc answers") };

    let execution = |instructions: u64| 5_000_000 + instructions as u128;
    let ingress = 1_200_000 + 2_000 * (arg.len() + "forward".len()) as u128;
    let request = 260_000 + 1_000 * ("inc".len() + inner.len()) as u128;
    let response_bytes = 1_000 * response.len() as u128;
    let expected_a = ingress
        + execution(instructions_of(&sim, a, "update forward"))
        + request
        + response_bytes
        + execution(instructions_of(&sim, a, "reply callback"));
    assert_eq!(a0 - sim.cycle_balance(a), expected_a, "ingress + execution + call + response + callback");
    assert_eq!(
        b0 - sim.cycle_balance(b),
        execution(instructions_of(&sim, b, "update inc")),
        "the callee pays its execution"
    );
}

#[test]
fn a_call_needs_its_whole_reservation_above_the_freezing_threshold() {
    let mut sim = Simulator::new();
    let a = probe_on(&mut sim, "a");
    let b = probe_on(&mut sim, "b");
    sim.update_settings(
        admin(),
        a,
        ic_sim::mgmt::CanisterSettings { freezing_threshold: Some(0u64.into()), ..Default::default() },
    )
    .unwrap();
    let arg = Encode!(&ForwardArg {
        target: b,
        method: "inc".into(),
        arg: Encode!().unwrap(),
        cycles: 0,
        timeout_seconds: None
    })
    .unwrap();
    let ingress = 1_200_000 + 2_000 * (arg.len() + "forward".len()) as u128;
    // Enough for the update's 40B prepayment and a 20B margin, not for the
    // call's 42.1B reservation: call_perform fails, the update still replies.
    sim.set_cycles(a, ingress + 40_005_000_000 + 20_000_000_000);
    let reply = sim.update_call(user(1), a, "forward", arg.clone()).unwrap();
    match Decode!(&reply, Forwarded).unwrap() {
        Forwarded::NotSent(_) => {}
        other => panic!("call_perform could not reserve the call: {other:?}"),
    }
    assert_eq!(sim.query_call(user(1), b, "get", Encode!().unwrap()).map(|r| Decode!(&r, u64).unwrap()), Ok(0));
    // With the reservation available it goes through.
    sim.add_cycles(a, 42_200_000_000);
    let reply = sim.update_call(user(1), a, "forward", arg).unwrap();
    assert!(matches!(Decode!(&reply, Forwarded).unwrap(), Forwarded::Reply(_)));
}

/// `canister_init` fills 64 MiB with `memory.fill` 40 times: 100 + 1 per
/// byte each, about 2.7B instructions, so the install spans two rounds.
const SLOW_INIT: &str = r#"
(module
  (memory 1024)
  (func (export "canister_init")
    (local $n i32)
    (local.set $n (i32.const 40))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (memory.fill (i32.const 0) (local.get $n) (i32.const 67108864))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))))
"#;

#[test]
fn install_code_is_sliced_too() {
    let mut sim = Simulator::new();
    let id = sim.create_canister(admin());
    settle(&mut sim);
    let args = ic_sim::mgmt::InstallCodeArgs {
        mode: ic_sim::mgmt::CanisterInstallMode::Install,
        canister_id: id,
        wasm_module: wat::parse_str(SLOW_INIT).unwrap(),
        arg: vec![],
        sender_canister_version: None,
    };
    let msg =
        sim.submit_update(admin(), Principal::management_canister(), "install_code", Encode!(&args).unwrap()).unwrap();
    let mut rounds = 0;
    while sim.ingress_result(msg).is_none() {
        sim.tick();
        rounds += 1;
        assert!(rounds < 10);
    }
    let instructions = instructions_of(&sim, id, "canister_init");
    assert!((SLICE + 1..=2 * SLICE).contains(&instructions), "{instructions}");
    assert_eq!(rounds, 2, "two 2B slices of the install budget");
    assert!(sim.ingress_result(msg).unwrap().is_ok());
}
