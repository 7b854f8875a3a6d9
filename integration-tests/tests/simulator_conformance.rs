//! Details where the simulator answers as the replica does: reject codes of
//! calls to frozen or poor canisters and to unknown management methods, and
//! `msg_deadline` in whole seconds. Simulator only (the balances are set
//! directly).

use candid::{Decode, Encode, Principal};
use ic_sim::{GENESIS_TIME_NS, RejectCode, Simulator};
use integration_tests::user;

mod probe;
use probe::*;

fn probe_on(sim: &mut Simulator, label: &str) -> Principal {
    let id = sim.create_canister(admin());
    sim.install_canister(admin(), id, &probe_wasm(), init_arg(label)).unwrap();
    id
}

fn forward_arg(target: Principal, method: &str, arg: Vec<u8>, timeout_seconds: Option<u32>) -> Vec<u8> {
    Encode!(&ForwardArg { target, method: method.into(), arg, cycles: 0, timeout_seconds }).unwrap()
}

#[test]
fn calls_to_a_canister_that_cannot_pay_are_sys_transient_ic0207() {
    let mut sim = Simulator::new();
    let caller = probe_on(&mut sim, "caller");
    let poor = probe_on(&mut sim, "poor");
    sim.set_cycles(poor, 1_000);

    let err = sim.update_call(user(1), poor, "inc", Encode!().unwrap()).unwrap_err();
    assert_eq!((err.code, err.error_code), (RejectCode::SysTransient, Some("IC0207")), "ingress: {err}");

    let reply =
        sim.update_call(user(1), caller, "forward", forward_arg(poor, "inc", Encode!().unwrap(), None)).unwrap();
    match Decode!(&reply, Forwarded).unwrap() {
        Forwarded::Reject { code, message } => {
            assert_eq!(code, RejectCode::SysTransient as u32, "{message}");
            assert!(message.contains("out of cycles"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // Below its freezing threshold a canister answers no query either.
    let err = sim.query_call(user(1), poor, "get", Encode!().unwrap()).unwrap_err();
    assert_eq!((err.code, err.error_code), (RejectCode::SysTransient, Some("IC0207")), "{err}");
    assert!(err.message.contains("frozen"), "{}", err.message);
    sim.add_cycles(poor, 10_000_000_000_000);
    assert!(sim.query_call(user(1), poor, "get", Encode!().unwrap()).is_ok());
}

#[test]
fn an_unknown_management_method_is_canister_error_ic0536() {
    let mut sim = Simulator::new();
    let err =
        sim.update_call(admin(), Principal::management_canister(), "no_such_method", Encode!().unwrap()).unwrap_err();
    assert_eq!((err.code, err.error_code), (RejectCode::CanisterError, Some("IC0536")), "{err}");
}

/// Replies with `msg_deadline` as 8 little-endian bytes.
const DEADLINE: &str = r#"
(module
  (import "ic0" "msg_deadline" (func $deadline (result i64)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (func (export "canister_update deadline")
    (i64.store (i32.const 0) (call $deadline))
    (call $append (i32.const 0) (i32.const 8))
    (call $reply)))
"#;

#[test]
fn msg_deadline_is_in_whole_seconds() {
    let mut sim = Simulator::new();
    let caller = probe_on(&mut sim, "caller");
    let callee = sim.create_canister(admin());
    sim.install_canister(admin(), callee, &wat::parse_str(DEADLINE).unwrap(), vec![]).unwrap();
    // Half a second into a second: the deadline still counts from its start.
    sim.advance_time(std::time::Duration::from_millis(1_500));
    let reply = sim.update_call(user(1), caller, "forward", forward_arg(callee, "deadline", vec![], Some(10))).unwrap();
    let Forwarded::Reply(bytes) = Decode!(&reply, Forwarded).unwrap() else { panic!("no reply") };
    let deadline = u64::from_le_bytes(bytes.try_into().unwrap());
    assert_eq!(deadline % 1_000_000_000, 0, "{deadline}");
    assert_eq!(deadline, GENESIS_TIME_NS + 11_000_000_000, "floor(now) + 10 s");

    // A guaranteed-response call has no deadline.
    let reply = sim.update_call(user(1), caller, "forward", forward_arg(callee, "deadline", vec![], None)).unwrap();
    assert_eq!(Decode!(&reply, Forwarded).unwrap(), Forwarded::Reply(0u64.to_le_bytes().to_vec()));
}

/// The callee of the composite query test: a query `value` (42) and an update.
const CALLEE: &str = r#"
(module
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (data (i32.const 0) "\2a\00\00\00\00\00\00\00")
  (func (export "canister_query value") (call $append (i32.const 0) (i32.const 8)) (call $reply))
  (func (export "canister_update bump") (call $append (i32.const 0) (i32.const 8)) (call $reply)))
"#;

/// Composite queries that call the canister whose id is their argument:
/// before the call they write 7 into their heap, and the callback answers
/// what it got plus that 7 (a reply) or 1000 + the reject code.
const COMPOSITE: &str = r#"
(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reject_code" (func $reject_code (result i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (memory 1)
  (table 2 funcref)
  (elem (i32.const 0) $on_reply $on_reject)
  (data (i32.const 300) "value")
  (data (i32.const 310) "bump")
  (func $call (param $name i32) (param $len i32)
    (i64.store (i32.const 100) (i64.const 7))
    (call $arg_copy (i32.const 200) (i32.const 0) (call $arg_size))
    (call $call_new (i32.const 200) (call $arg_size) (local.get $name) (local.get $len)
      (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0))
    (drop (call $call_perform)))
  (func $answer (param $v i64) (i64.store (i32.const 16) (local.get $v)) (call $append (i32.const 16) (i32.const 8)) (call $reply))
  (func $on_reply (param i32)
    (call $arg_copy (i32.const 8) (i32.const 0) (i32.const 8))
    (call $answer (i64.add (i64.load (i32.const 8)) (i64.load (i32.const 100)))))
  (func $on_reject (param i32)
    (call $answer (i64.add (i64.const 1000) (i64.extend_i32_u (call $reject_code)))))
  (func (export "canister_composite_query ask_value") (call $call (i32.const 300) (i32.const 5)))
  (func (export "canister_composite_query ask_bump") (call $call (i32.const 310) (i32.const 4)))
  (func (export "canister_query plain_call") (call $call (i32.const 300) (i32.const 5)))
  (func (export "canister_query peek") (call $append (i32.const 100) (i32.const 8)) (call $reply)))
"#;

#[test]
fn composite_queries_call_queries_and_plain_queries_may_not_call() {
    let mut sim = Simulator::new();
    let callee = sim.create_canister(admin());
    sim.install_canister(admin(), callee, &wat::parse_str(CALLEE).unwrap(), vec![]).unwrap();
    let caller = sim.create_canister(admin());
    sim.install_canister(admin(), caller, &wat::parse_str(COMPOSITE).unwrap(), vec![]).unwrap();
    let id = callee.as_slice().to_vec();
    let u64_of = |bytes: Vec<u8>| u64::from_le_bytes(bytes.try_into().unwrap());

    let got = sim.query_call(user(1), caller, "ask_value", id.clone()).unwrap();
    assert_eq!(u64_of(got), 49, "the callback saw the reply (42) and the heap its method left (7)");
    let peek = sim.query_call(user(1), caller, "peek", vec![]).unwrap();
    assert_eq!(u64_of(peek), 0, "what the composite query changed is dropped at its end");

    let got = sim.query_call(user(1), caller, "ask_bump", id.clone()).unwrap();
    assert_eq!(u64_of(got), 1000 + RejectCode::CanisterError as u64, "an update method cannot be called from a query");

    let err = sim.query_call(user(1), caller, "plain_call", id.clone()).unwrap_err();
    assert_eq!((err.code, err.error_code), (RejectCode::CanisterError, Some("IC0504")), "{err}");
    assert!(
        err.message.contains("\"ic0_call_new\" cannot be executed in non replicated query mode"),
        "{}",
        err.message
    );

    // A composite query is not an update method.
    let err = sim.update_call(user(1), caller, "ask_value", id).unwrap_err();
    assert_eq!((err.code, err.error_code), (RejectCode::CanisterError, Some("IC0536")), "{err}");
}
