//! Semantics of the simulator that every backend must share: messages,
//! rollback, calls, callbacks, reject codes. Runs on PocketIC too when
//! `POCKET_IC_BIN` is set.

use candid::{Encode, Principal};
use integration_tests::{RejectCode, TestEnvExt, new_env, user, wasm};

mod probe;
use probe::*;

#[test]
fn update_persists_and_query_reads() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    assert_eq!(inc(&*env, p), 1);
    assert_eq!(inc(&*env, p), 2);
    assert_eq!(get(&*env, p), 2);
    let label: String = env.query_one(user(9), p, "label", ()).unwrap();
    assert_eq!(label, "p", "init received its argument");
}

#[test]
fn query_changes_never_persist() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    inc(&*env, p);
    let seen: u64 = env.query_one(user(1), p, "query_mutate", ()).unwrap();
    assert_eq!(seen, 2, "the query saw its own change");
    assert_eq!(get(&*env, p), 1, "heap change discarded");
    let stored: Option<Vec<u8>> = env.query_one(user(1), p, "stable_get", 7u64).unwrap();
    assert_eq!(stored, None, "stable memory change discarded");
}

#[test]
fn a_trap_rolls_back_heap_stable_memory_and_cycles() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    inc(&*env, p);
    let err = env.update_one::<_, ()>(user(1), p, "inc_then_trap", 5u64).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert!(err.message.contains("inc_then_trap: deliberate trap"), "{}", err.message);
    assert_eq!(get(&*env, p), 1);
    let stored: Option<Vec<u8>> = env.query_one(user(1), p, "stable_get", 5u64).unwrap();
    assert_eq!(stored, None);
    // The canister still works after the trap.
    assert_eq!(inc(&*env, p), 2);
}

#[test]
fn a_trap_after_growing_memory_rolls_back_too() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    inc(&*env, p);
    let heap_before = env.simulator().map(|s| s.heap_bytes(p));
    let err = env.update_one::<_, ()>(user(1), p, "grow_then_trap", 16u32).unwrap_err();
    assert!(err.message.contains("grow_then_trap"), "{}", err.message);
    assert_eq!(get(&*env, p), 1);
    if let Some(before) = heap_before {
        assert_eq!(env.simulator().unwrap().heap_bytes(p), before, "the heap is back to its size");
    }
    assert_eq!(env.update_one::<_, u64>(user(1), p, "grow_and_keep", 2u32).unwrap(), 2);
    assert_eq!(inc(&*env, p), 3);
}

#[test]
fn reject_codes_of_the_ic() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    let err = env.update_one::<_, ()>(user(1), p, "reject_with", "no thanks".to_string()).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (RejectCode::CanisterReject, "no thanks"));

    let err = env.update(user(1), p, "no_such_method", Encode!().unwrap()).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert!(err.message.contains("no_such_method"), "{}", err.message);

    let missing = Principal::from_slice(&[0, 0, 0, 0, 0, 0x0f, 0xff, 0xff, 1, 1]);
    let err = env.update(user(1), missing, "inc", Encode!().unwrap()).unwrap_err();
    assert_eq!(err.code, RejectCode::DestinationInvalid);
}

#[test]
fn inter_canister_calls_carry_replies_and_reject_codes() {
    let env = new_env();
    let a = install_probe(&*env, "a");
    let b = install_probe(&*env, "b");
    assert_eq!(forward(&*env, a, b, "inc", Encode!().unwrap(), 0, None), Forwarded::Reply(Encode!(&1u64).unwrap()));
    match forward(&*env, a, b, "reject_with", Encode!(&"nope").unwrap(), 0, None) {
        Forwarded::Reject { code, message } => assert_eq!((code, message.as_str()), (4, "nope")),
        other => panic!("{other:?}"),
    }
    match forward(&*env, a, b, "inc_then_trap", Encode!(&1u64).unwrap(), 0, None) {
        Forwarded::Reject { code, message } => {
            assert_eq!(code, 5);
            assert!(message.contains("deliberate trap"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let missing = Principal::from_slice(&[0, 0, 0, 0, 0, 0x0f, 0xff, 0xfe, 1, 1]);
    match forward(&*env, a, missing, "inc", Encode!().unwrap(), 0, None) {
        Forwarded::Reject { code, .. } => assert_eq!(code, 3),
        other => panic!("{other:?}"),
    }
    env.stop(user(0), b).unwrap();
    match forward(&*env, a, b, "inc", Encode!().unwrap(), 0, None) {
        Forwarded::Reject { code, message } => {
            assert_eq!(code, 5);
            assert!(message.contains("stopped"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    env.start(user(0), b).unwrap();
    assert_eq!(forward(&*env, a, b, "inc", Encode!().unwrap(), 0, None), Forwarded::Reply(Encode!(&2u64).unwrap()));
}

#[test]
fn responses_arrive_in_the_order_the_calls_were_made() {
    let env = new_env();
    let a = install_probe(&*env, "a");
    let targets: Vec<Principal> = (0..4).map(|i| install_probe(&*env, &format!("t{i}"))).collect();
    let order: Vec<u32> = env.update_one(user(1), a, "fan_out", targets).unwrap();
    assert_eq!(order, vec![0, 1, 2, 3]);
}

#[test]
fn the_cleanup_callback_runs_after_a_trap_in_a_callback() {
    let env = new_env();
    let a = install_probe(&*env, "a");
    let b = install_probe(&*env, "b");
    let err = env.update_one::<_, ()>(user(1), a, "lock_call_then_trap", b).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert!(err.message.contains("trap after the await"), "{}", err.message);
    let held: bool = env.query_one(user(1), a, "lock_held", ()).unwrap();
    assert!(!held, "the guard was dropped by the cleanup callback");
    assert_eq!(get(&*env, b), 1, "the call itself went through");
}

#[test]
fn a_reply_before_an_await_answers_at_once_and_the_work_goes_on() {
    let env = new_env();
    let a = install_probe(&*env, "a");
    let b = install_probe(&*env, "b");
    let _: () = env.update_one(user(1), a, "reply_then_call", b).unwrap();
    for _ in 0..5 {
        env.tick();
    }
    assert_eq!(get(&*env, b), 1);
    assert_eq!(get(&*env, a), 1, "the code after the await ran");
}

#[test]
fn a_one_way_call_is_delivered_without_a_callback() {
    let env = new_env();
    let a = install_probe(&*env, "a");
    let b = install_probe(&*env, "b");
    let sent: bool =
        env.update_candid(user(1), a, "oneway", (b, "inc".to_string(), Encode!().unwrap())).map(|(x,)| x).unwrap();
    assert!(sent);
    for _ in 0..5 {
        env.tick();
    }
    assert_eq!(get(&*env, b), 1);
    assert!(!env.logs(user(0), a).iter().any(|l| l.contains("TRAP")), "{:?}", env.logs(user(0), a));
}

#[test]
fn cycles_attached_to_a_call_are_accepted_or_refunded() {
    let env = new_env();
    let a = install_probe(&*env, "a");
    let b = install_probe(&*env, "b");
    let (a0, b0) = (env.cycle_balance(a), env.cycle_balance(b));
    let attached = 1_000_000_000u128;
    let reply = forward(&*env, a, b, "accept_cycles", Encode!(&400_000_000u128).unwrap(), attached, None);
    assert_eq!(reply, Forwarded::Reply(Encode!(&400_000_000u128).unwrap()));
    let (a1, b1) = (env.cycle_balance(a), env.cycle_balance(b));
    let a_paid = a0 - a1;
    assert!(
        (400_000_000..400_000_000 + 100_000_000).contains(&a_paid),
        "A paid {a_paid}: the unaccepted 600M came back"
    );
    let b_gained = b1 as i128 - b0 as i128;
    assert!(b_gained > 300_000_000 && b_gained <= 400_000_000, "B gained {b_gained}");
}

#[test]
fn debug_prints_and_traps_are_in_the_logs() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    let _: () = env.update_one(user(1), p, "print", "hello from the probe".to_string()).unwrap();
    let _ = env.update_one::<_, ()>(user(1), p, "inc_then_trap", 1u64);
    let logs = env.logs(user(0), p);
    assert!(logs.iter().any(|l| l.contains("hello from the probe")), "{logs:?}");
    assert!(logs.iter().any(|l| l.contains("deliberate trap")), "{logs:?}");
}

#[test]
fn certified_data_is_certified_in_queries_only() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    let _: () = env.update_one(user(1), p, "set_certified", vec![1u8, 2, 3]).unwrap();
    let in_query: Option<Vec<u8>> = env.query_one(user(1), p, "certificate", ()).unwrap();
    assert!(in_query.is_some());
    let in_update: Option<Vec<u8>> = env.update_one(user(1), p, "certificate", ()).unwrap();
    assert_eq!(in_update, None, "no certificate in replicated execution");
    let err = env.update_one::<_, ()>(user(1), p, "set_certified", vec![0u8; 33]).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
}

#[test]
fn caller_self_and_controllers_are_reported() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    let me: Principal = env.query_one(user(3), p, "whoami", ()).unwrap();
    assert_eq!(me, user(3));
    let id: Principal = env.query_one(user(3), p, "self_id", ()).unwrap();
    assert_eq!(id, p);
    assert!(env.query_one::<_, bool>(user(3), p, "is_controller", user(0)).unwrap());
    assert!(!env.query_one::<_, bool>(user(3), p, "is_controller", user(3)).unwrap());
}

#[test]
fn raw_rand_gives_fresh_32_byte_values() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    let r1: Vec<u8> = env.update_one(user(1), p, "random", ()).unwrap();
    let r2: Vec<u8> = env.update_one(user(1), p, "random", ()).unwrap();
    assert_eq!((r1.len(), r2.len()), (32, 32));
    assert_ne!(r1, r2);
}

#[test]
fn wasm_of_the_probe_is_found() {
    assert!(wasm("sim_probe").starts_with(b"\0asm"));
}
