//! The simulator's management-canister fault switches: the next call of a
//! method fails with a chosen reject, so callers' failure branches can be
//! tested. Simulator only (PocketIC has no such switch).

use candid::{Encode, Principal};
use ic_sim::{Reject, RejectCode, Simulator, mgmt};
use integration_tests::user;

mod probe;
use probe::*;

fn probe_on(sim: &mut Simulator, label: &str) -> Principal {
    let id = sim.create_canister(admin());
    sim.install_canister(admin(), id, &probe_wasm(), init_arg(label)).unwrap();
    id
}

fn forward_from(sim: &mut Simulator, from: Principal, method: &str, arg: Vec<u8>, cycles: u128) -> Forwarded {
    let arg = ForwardArg {
        target: Principal::management_canister(),
        method: method.to_string(),
        arg,
        cycles,
        timeout_seconds: None,
    };
    let reply = sim.update_call(user(1), from, "forward", Encode!(&arg).unwrap()).unwrap();
    candid::decode_one(&reply).unwrap()
}

fn transient(message: &str) -> Reject {
    Reject::new(RejectCode::SysTransient, "IC0201", message)
}

#[test]
fn a_failed_create_canister_returns_the_cycles_and_the_next_one_succeeds() {
    let mut sim = Simulator::new();
    let factory = probe_on(&mut sim, "factory");
    let arg = Encode!(&mgmt::CreateCanisterArgs { settings: None, sender_canister_version: None }).unwrap();
    let canisters_before = sim.canister_ids().len();
    let before = sim.cycle_balance(factory);
    sim.fail_next_management_call("create_canister", transient("subnet is busy"));
    assert_eq!(sim.pending_management_faults().len(), 1);

    match forward_from(&mut sim, factory, "create_canister", arg.clone(), 2_000_000_000_000) {
        Forwarded::Reject { code, message } => {
            assert_eq!(code, RejectCode::SysTransient as u32);
            assert_eq!(message, "subnet is busy");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.canister_ids().len(), canisters_before, "no canister was made");
    let spent = before - sim.cycle_balance(factory);
    assert!(spent < 1_000_000_000, "the 2T attached came back; only fees were paid: {spent}");
    assert!(sim.pending_management_faults().is_empty(), "the fault fired once");

    match forward_from(&mut sim, factory, "create_canister", arg, 2_000_000_000_000) {
        Forwarded::Reply(_) => {}
        other => panic!("the next create_canister succeeds: {other:?}"),
    }
    assert_eq!(sim.canister_ids().len(), canisters_before + 1);
}

#[test]
fn faults_hit_every_management_method_in_order_and_can_target_one_caller() {
    let mut sim = Simulator::new();
    let a = probe_on(&mut sim, "a");
    let b = probe_on(&mut sim, "b");
    let status_arg = Encode!(&mgmt::CanisterIdRecord { canister_id: a }).unwrap();
    sim.update_settings(
        admin(),
        a,
        mgmt::CanisterSettings { controllers: Some(vec![admin(), a, b]), ..Default::default() },
    )
    .unwrap();

    // Two faults on the same method fail its next two calls, in order.
    sim.fail_next_management_call("canister_status", transient("first"));
    sim.fail_next_management_call("canister_status", Reject::new(RejectCode::CanisterError, "IC0503", "second"));
    assert_eq!(sim.canister_status(admin(), a).unwrap_err().message, "first");
    let err = sim.canister_status(admin(), a).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (RejectCode::CanisterError, "second"));
    assert!(sim.canister_status(admin(), a).is_ok());

    // A fault for one caller leaves the others alone.
    sim.fail_next_management_call_from(b, "canister_status", transient("only b"));
    assert!(matches!(forward_from(&mut sim, a, "canister_status", status_arg.clone(), 0), Forwarded::Reply(_)));
    match forward_from(&mut sim, b, "canister_status", status_arg, 0) {
        Forwarded::Reject { message, .. } => assert_eq!(message, "only b"),
        other => panic!("{other:?}"),
    }

    // stop, start, install, deposit and delete fail without effect.
    for method in ["stop_canister", "start_canister", "install_code", "deposit_cycles", "delete_canister"] {
        sim.fail_next_management_call(method, transient(method));
    }
    assert_eq!(sim.stop_canister(admin(), a).unwrap_err().message, "stop_canister");
    assert_eq!(sim.canister_status(admin(), a).unwrap().status, mgmt::CanisterStatusType::Running);
    sim.stop_canister(admin(), a).unwrap();
    assert_eq!(sim.start_canister(admin(), a).unwrap_err().message, "start_canister");
    assert_eq!(sim.canister_status(admin(), a).unwrap().status, mgmt::CanisterStatusType::Stopped);
    sim.start_canister(admin(), a).unwrap();
    let hash = sim.module_hash(a);
    assert_eq!(sim.upgrade_canister(admin(), a, &probe_wasm(), init_arg("x")).unwrap_err().message, "install_code");
    assert_eq!(sim.module_hash(a), hash);
    let before = sim.cycle_balance(a);
    let deposit = Encode!(&mgmt::CanisterIdRecord { canister_id: a }).unwrap();
    match forward_from(&mut sim, b, "deposit_cycles", deposit, 1_000_000_000) {
        Forwarded::Reject { message, .. } => assert_eq!(message, "deposit_cycles"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.cycle_balance(a), before, "nothing was deposited");
    sim.stop_canister(admin(), a).unwrap();
    assert_eq!(sim.delete_canister(admin(), a).unwrap_err().message, "delete_canister");
    assert!(sim.canister_exists(a));
    sim.delete_canister(admin(), a).unwrap();
    assert!(!sim.canister_exists(a));

    sim.fail_next_management_call("raw_rand", transient("unused"));
    sim.clear_management_faults();
    assert!(sim.pending_management_faults().is_empty());
}
