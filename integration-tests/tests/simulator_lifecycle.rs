//! Upgrades, timers, the management canister, controller checks and cycles.
//! Runs on PocketIC too when `POCKET_IC_BIN` is set.

use std::time::Duration;

use candid::{Encode, Principal};
use ic_sim::mgmt;
use integration_tests::{RejectCode, TestEnv, TestEnvExt, new_env, user};
use sha2::{Digest, Sha256};

mod probe;
use probe::*;

#[test]
fn upgrade_runs_the_hooks_keeps_stable_memory_and_resets_the_heap() {
    let env = new_env();
    let p = install_probe(&*env, "first");
    for _ in 0..3 {
        inc(&*env, p);
    }
    let _: () = env.update_candid(user(1), p, "stable_put", (1u64, b"kept".to_vec())).unwrap();
    env.upgrade(admin(), p, &probe_wasm(), candid::encode_one(None::<InitArg>).unwrap()).unwrap();

    assert_eq!(get(&*env, p), 3, "pre_upgrade saved the counter, post_upgrade restored it");
    let label: String = env.query_one(user(1), p, "label", ()).unwrap();
    assert_eq!(label, "", "the heap is new: the old label is gone");
    let upgrades: u64 = env.query_one(user(1), p, "upgrades", ()).unwrap();
    assert_eq!(upgrades, 1);
    let kept: Option<Vec<u8>> = env.query_one(user(1), p, "stable_get", 1u64).unwrap();
    assert_eq!(kept.as_deref(), Some(&b"kept"[..]));
}

#[test]
fn a_failed_upgrade_leaves_the_canister_as_it_was() {
    let env = new_env();
    let p = install_probe(&*env, "old");
    inc(&*env, p);
    let hash_before = env.status(admin(), p).unwrap().module_hash;
    // post_upgrade expects Candid: bytes that are not Candid make it trap.
    let err = env.upgrade(admin(), p, &probe_wasm(), b"not candid".to_vec()).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    let label: String = env.query_one(user(1), p, "label", ()).unwrap();
    assert_eq!(label, "old");
    assert_eq!(get(&*env, p), 1);
    let upgrades: u64 = env.query_one(user(1), p, "upgrades", ()).unwrap();
    assert_eq!(upgrades, 0, "stable memory written by pre_upgrade was rolled back too");
    assert_eq!(env.status(admin(), p).unwrap().module_hash, hash_before);
}

#[test]
fn reinstall_wipes_heap_and_stable_memory() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    inc(&*env, p);
    let _: () = env.update_candid(user(1), p, "stable_put", (1u64, b"gone".to_vec())).unwrap();
    env.reinstall(admin(), p, &probe_wasm(), init_arg("again")).unwrap();
    assert_eq!(get(&*env, p), 0);
    let gone: Option<Vec<u8>> = env.query_one(user(1), p, "stable_get", 1u64).unwrap();
    assert_eq!(gone, None);
    // A second plain install is refused: the canister is not empty.
    let err = env.install(admin(), p, &probe_wasm(), init_arg("x"));
    if env.backend() == "simulator" {
        assert_eq!(err.unwrap_err().code, RejectCode::CanisterError);
    }
}

fn firings(env: &dyn TestEnv, p: Principal) -> u64 {
    env.query_one(user(1), p, "timer_firings", ()).unwrap()
}

#[test]
fn a_one_shot_timer_fires_once_when_due() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    let _: () = env.update_one(user(1), p, "start_timer", 10u64).unwrap();
    env.advance_and_tick(Duration::from_secs(5), 5);
    assert_eq!(firings(&*env, p), 0, "not yet due");
    env.advance_and_tick(Duration::from_secs(6), 5);
    assert_eq!(firings(&*env, p), 1);
    env.advance_and_tick(Duration::from_secs(60), 5);
    assert_eq!(firings(&*env, p), 1, "one-shot");
}

#[test]
fn an_interval_timer_fires_each_period_and_is_gone_after_an_upgrade() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    let _: () = env.update_one(user(1), p, "start_interval", 10u64).unwrap();
    for expected in 1..=3 {
        env.advance_and_tick(Duration::from_secs(10), 5);
        assert_eq!(firings(&*env, p), expected);
    }
    env.upgrade(admin(), p, &probe_wasm(), candid::encode_one(None::<InitArg>).unwrap()).unwrap();
    env.advance_and_tick(Duration::from_secs(30), 10);
    assert_eq!(firings(&*env, p), 0, "timers do not survive an upgrade unless re-armed");
    if let Some(sim) = env.simulator() {
        assert_eq!(sim.global_timer(p), 0, "the global timer was deactivated by the upgrade");
    }
}

#[test]
fn strangers_cannot_manage_a_canister() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    let stranger = user(66);
    for result in [
        env.upgrade(stranger, p, &probe_wasm(), init_arg("x")),
        env.stop(stranger, p),
        env.start(stranger, p),
        env.delete(stranger, p),
        env.status(stranger, p).map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.code, RejectCode::CanisterError, "{err:?}");
        assert!(err.message.contains("controllers"), "{}", err.message);
    }
    // A canister that is not a controller is refused too.
    let other = install_probe(&*env, "other");
    let arg = Encode!(&mgmt::CanisterIdRecord { canister_id: p }).unwrap();
    match forward(&*env, other, Principal::management_canister(), "canister_status", arg, 0, None) {
        Forwarded::Reject { code, message } => {
            assert_eq!(code, 5);
            assert!(message.contains("controllers"), "{message}");
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn canister_status_reports_what_the_canister_is() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    let s = env.status(admin(), p).unwrap();
    assert_eq!(s.status, mgmt::CanisterStatusType::Running);
    assert_eq!(s.module_hash, Some(Sha256::digest(probe_wasm()).to_vec()));
    assert_eq!(s.settings.controllers, vec![admin()]);
    assert!(s.cycles > 0u64);
    assert!(s.memory_size > 0u64);
    env.stop(admin(), p).unwrap();
    assert_eq!(env.status(admin(), p).unwrap().status, mgmt::CanisterStatusType::Stopped);
}

#[test]
fn a_stopped_canister_rejects_calls_and_can_be_deleted() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    let err = env.delete(admin(), p).unwrap_err();
    assert!(err.message.contains("stopped"), "a running canister cannot be deleted: {}", err.message);
    env.stop(admin(), p).unwrap();
    let err = env.update(user(1), p, "inc", Encode!().unwrap()).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert!(err.message.contains("stopped"), "{}", err.message);
    env.delete(admin(), p).unwrap();
    let err = env.update(user(1), p, "inc", Encode!().unwrap()).unwrap_err();
    assert_eq!(err.code, RejectCode::DestinationInvalid);
}

#[test]
fn a_canister_creates_a_canister_and_pays_the_fee() {
    let env = new_env();
    let p = install_probe(&*env, "factory");
    let arg = Encode!(&mgmt::CreateCanisterArgs { settings: None, sender_canister_version: None }).unwrap();
    let before = env.cycle_balance(p);
    let created = match forward(
        &*env,
        p,
        Principal::management_canister(),
        "create_canister",
        arg.clone(),
        2_000_000_000_000,
        None,
    ) {
        Forwarded::Reply(bytes) => candid::decode_one::<mgmt::CanisterIdRecord>(&bytes).unwrap().canister_id,
        r => panic!("{r:?}"),
    };
    assert!(before - env.cycle_balance(p) >= 2_000_000_000_000, "the attached cycles were spent");
    let s = env.status(p, created).map_err(|e| e.to_string());
    if env.backend() == "simulator" {
        let s = s.unwrap();
        assert_eq!(s.settings.controllers, vec![p], "the creating canister controls it");
        assert_eq!(s.cycles, 1_500_000_000_000u64, "2T attached minus the 500B creation fee");
    }
    // Too few cycles for the creation fee: refused, and the cycles come back.
    match forward(&*env, p, Principal::management_canister(), "create_canister", arg, 1_000, None) {
        Forwarded::Reject { code, .. } => assert_eq!(code, 5),
        r => panic!("{r:?}"),
    }
}

#[test]
fn a_canister_without_enough_cycles_refuses_updates_but_answers_queries() {
    let env = new_env();
    let p = env.create_canister_with(vec![admin()], 2_000_000_000_000);
    env.install(admin(), p, &probe_wasm(), init_arg("poor")).unwrap();
    let rich_enough = inc(&*env, p);
    assert_eq!(rich_enough, 1);
    // Keep 5B cycles: above the freezing threshold (queries still run), far
    // below one update's prepayment.
    let drained = drain_to(&*env, p, 5_000_000_000);
    if !drained {
        return; // PocketIC: no way to take cycles away from a canister.
    }
    let err = env.update(user(1), p, "inc", Encode!().unwrap()).unwrap_err();
    assert_eq!(err.code, RejectCode::SysTransient, "IC0207 is a transient error on the IC");
    assert!(err.message.contains("out of cycles"), "{}", err.message);
    assert_eq!(get(&*env, p), 1, "queries are free");
}

/// Sets a simulator canister's balance to `target` cycles.
fn drain_to(env: &dyn TestEnv, p: Principal, target: u128) -> bool {
    match env.simulator() {
        Some(mut sim) => {
            sim.set_cycles(p, target);
            true
        }
        None => false,
    }
}

/// `canister_info` (canisters only, as on the IC): the module hash, the
/// controllers and the canister's history, the latest changes last; an
/// ingress call is refused.
#[test]
fn canister_info_reports_the_module_controllers_and_history_to_canisters() {
    let env = new_env();
    let p = install_probe(&*env, "asker");
    let target = install_probe(&*env, "target");
    env.upgrade(admin(), target, &probe_wasm(), candid::encode_one(None::<InitArg>).unwrap()).unwrap();
    let info_of = |changes: Option<u64>| -> mgmt::CanisterInfoResult {
        let arg = Encode!(&mgmt::CanisterInfoArgs { canister_id: target, num_requested_changes: changes }).unwrap();
        match forward(&*env, p, Principal::management_canister(), "canister_info", arg, 0, None) {
            Forwarded::Reply(bytes) => candid::decode_one(&bytes).unwrap(),
            other => panic!("canister_info: {other:?}"),
        }
    };
    let info = info_of(None);
    let hash = Sha256::digest(probe_wasm()).to_vec();
    assert_eq!(info.module_hash, Some(hash.clone()));
    assert_eq!(info.controllers, vec![admin()]);
    assert_eq!((info.total_num_changes, info.recent_changes.len()), (3, 0), "created, installed, upgraded");
    let changes = info_of(Some(2)).recent_changes;
    let deployed = |c: &mgmt::Change| match &c.details {
        Some(mgmt::ChangeDetails::CodeDeployment(d)) => Some((d.mode, d.module_hash.clone())),
        _ => None,
    };
    assert_eq!(deployed(&changes[0]), Some((mgmt::CodeDeploymentMode::Install, hash.clone())));
    assert_eq!(deployed(&changes[1]), Some((mgmt::CodeDeploymentMode::Upgrade, hash)));
    assert!(matches!(info_of(Some(10)).recent_changes[0].details, Some(mgmt::ChangeDetails::Creation(_))));

    let arg = Encode!(&mgmt::CanisterInfoArgs { canister_id: target, num_requested_changes: None }).unwrap();
    let err = env.update(admin(), Principal::management_canister(), "canister_info", arg).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterReject, "ingress may not ask: {err:?}");
}
