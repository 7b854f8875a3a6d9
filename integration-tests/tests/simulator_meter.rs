//! The simulator's instruction count is the IC's: hand-written modules whose
//! cost is worked out by hand from the IC's table (operators, function entry,
//! bulk memory bytes, system API overheads and bytes, dirty pages) and
//! compared exactly; the limits apply to that count.
//!
//! Costs used below (see `integration-tests/simulator/src/ic_cost_table.rs`
//! and `meter.rs`): function entry 1; `local.*`, constants, integer add and
//! compare, `drop` 1; `f32.add` 2; `i32.div_u` 10; `br_if` 2; `call` 5;
//! `call_indirect` 10; `global.get` 2; loads 1 (wasm32) or 2 (wasm64);
//! `memory.fill/copy` 100 + 1 per byte; most `ic0` calls 500, plus 1 per byte
//! copied, 50 per byte sent; `stable64_write` 20 + 1 per byte; `stable64_grow`
//! 100; 1,000 per 4 KiB page dirtied (4,000 in wasm64).

use ic_sim::{Limits, RejectCode, SimConfig, Simulator};
use integration_tests::deploy::admin;
use integration_tests::user;

const IMPORTS: &str = r#"
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "stable64_grow" (func $stable_grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $stable_write (param i64 i64 i64)))
"#;

fn module(body: &str) -> Vec<u8> {
    wat::parse_str(format!(r#"(module {IMPORTS} (memory (export "memory") 2) {body})"#)).unwrap()
}

fn install(sim: &mut Simulator, wasm: &[u8]) -> candid::Principal {
    let id = sim.create_canister(admin());
    sim.install_canister(admin(), id, wasm, Vec::new()).unwrap();
    id
}

/// Instructions of one update of `method` with `arg`, which must succeed.
fn cost(wasm: &[u8], method: &str, arg: Vec<u8>) -> u64 {
    let mut sim = Simulator::new();
    let id = install(&mut sim, wasm);
    let out = sim.update_call_traced(user(1), id, method, arg);
    out.result.unwrap();
    out.instructions
}

const F32_LOOP: &str = r#"
  (func (export "canister_update f32_loop")
    (local $i i32) (local $x f32)
    (loop $l
      (local.set $x (f32.add (local.get $x) (f32.const 1.5)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
    (call $reply))"#;

/// entry 1; per iteration: 2 gets, 2 consts, 2 sets (1 each), f32.add 2,
/// i32.add 1, get + const + lt_u 3, br_if 2 = 14; call 5 + msg_reply 500.
const F32_LOOP_COST: u64 = 1 + 1000 * 14 + 5 + 500;

#[test]
fn a_loop_of_float_adds_costs_what_the_ic_charges() {
    assert_eq!(cost(&module(F32_LOOP), "f32_loop", Vec::new()), F32_LOOP_COST);
}

#[test]
fn calls_cost_the_call_and_the_callee_entry() {
    let wasm = module(
        r#"
      (type $t (func (result i32)))
      (table 1 funcref) (elem (i32.const 0) $leaf)
      (func $leaf (result i32) (i32.const 7))
      (func $mid (result i32) (i32.add (call $leaf) (i32.const 1)))
      (func (export "canister_update chain")
        (drop (call $mid))
        (drop (i32.div_u (call_indirect (type $t) (i32.const 0)) (i32.const 3)))
        (call $reply))"#,
    );
    let leaf = 1 + 1; // entry, const
    let mid = 1 + 5 + leaf + 1 + 1; // entry, call, leaf, const, add
    let indirect = 1 + 10 + leaf + 1 + 10 + 1; // const, call_indirect, leaf, const, div_u, drop
    let expected = 1 + 5 + mid + 1 + indirect + 5 + 500;
    assert_eq!(cost(&wasm, "chain", Vec::new()), expected);
}

#[test]
fn bulk_memory_costs_100_plus_its_bytes_and_the_pages_it_dirties() {
    let wasm = module(
        r#"
      (global $n (mut i32) (i32.const 1000))
      (func (export "canister_update fill")
        (memory.fill (i32.const 0) (i32.const 7) (i32.const 10000))
        (call $reply))
      (func (export "canister_update copy")
        (memory.copy (i32.const 65536) (i32.const 0) (global.get $n))
        (call $reply))"#,
    );
    // 10,000 bytes of 7 dirty three 4 KiB pages.
    assert_eq!(cost(&wasm, "fill", Vec::new()), 1 + 3 + 100 + 10_000 + 5 + 500 + 3 * 1_000);
    // The length comes from a global (not a constant); zeros over zeros dirty nothing.
    assert_eq!(cost(&wasm, "copy", Vec::new()), 1 + 2 + 2 + 100 + 1_000 + 5 + 500);
}

#[test]
fn system_api_calls_cost_their_overhead_and_their_bytes() {
    let wasm = module(
        r#"
      (func (export "canister_update echo")
        (call $arg_copy (i32.const 0) (i32.const 0) (call $arg_size))
        (call $append (i32.const 0) (i32.const 100))
        (call $reply))
      (func (export "canister_update stable")
        (drop (call $stable_grow (i64.const 1)))
        (call $stable_write (i64.const 0) (i64.const 0) (i64.const 5000))
        (call $reply))"#,
    );
    let n = 3_000;
    let arg = vec![0xab; n as usize];
    let copy_in = 1 + 1 + (5 + 500) + 5 + 500 + n; // consts, arg_size, arg_copy + bytes
    let reply = 2 + 5 + 500 + 50 * 100 + 5 + 500; // append sends 100 bytes, then msg_reply
    let dirty = 1_000; // the argument landed in one heap page
    assert_eq!(cost(&wasm, "echo", arg), 1 + copy_in + reply + dirty);
    // grow 100; write 20 + 5,000 bytes + two 4 KiB stable pages dirtied.
    let grow = 1 + 5 + 100 + 1;
    let write = 3 + 5 + 20 + 5_000 + 2 * 1_000;
    assert_eq!(cost(&wasm, "stable", Vec::new()), 1 + grow + write + 5 + 500);
}

#[test]
fn wasm64_loads_cost_double() {
    let body = |memory: &str| {
        format!(
            r#"(module (import "ic0" "msg_reply" (func $reply)) (memory (export "memory") {memory})
                 (func (export "canister_update load") (drop (i64.load (i64.const 0))) (call $reply)))"#
        )
    };
    let wasm64 = wat::parse_str(body("i64 1")).unwrap();
    let wasm32 = wat::parse_str(body("1").replace("i64.const 0", "i32.const 0")).unwrap();
    assert_eq!(cost(&wasm32, "load", Vec::new()), 1 + 1 + 1 + 1 + 5 + 500);
    assert_eq!(cost(&wasm64, "load", Vec::new()), 1 + 1 + 2 + 1 + 5 + 500);
}

#[test]
fn the_update_limit_applies_to_the_ic_weighted_count() {
    let wasm = module(F32_LOOP);
    let run = |limit: u64| {
        let limits = Limits { instructions_per_update: limit, ..Limits::default() };
        let mut sim = Simulator::with_config(SimConfig { limits, ..SimConfig::default() });
        let id = install(&mut sim, &wasm);
        sim.update_call(user(1), id, "f32_loop", Vec::new())
    };
    run(F32_LOOP_COST).expect("exactly the IC-weighted cost fits");
    let err = run(F32_LOOP_COST - 1).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert!(err.message.contains(&format!("exceeded the limit of {} instructions", F32_LOOP_COST - 1)), "{err}");
}
