//! Limits, chunked installs, module validation and modules from other
//! toolchains (hand-written wasm32 and wasm64). Runs on PocketIC too when
//! `POCKET_IC_BIN` is set, except where a test says it needs the simulator.

use candid::{Encode, Principal};
use ic_sim::mgmt;
use integration_tests::{RejectCode, TestEnvExt, new_env, user};
use sha2::{Digest, Sha256};

mod probe;
use probe::*;

const MIB: u64 = 1024 * 1024;

#[test]
fn payloads_above_2_mib_are_refused() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    // Just under the limit passes.
    let len: u64 = env.update_one(user(1), p, "echo", vec![1u8; 2_000_000]).unwrap();
    assert_eq!(len, 2_000_000);
    // An ingress message over 2 MiB is refused before it runs.
    assert!(env.update(user(1), p, "echo", Encode!(&vec![1u8; 2 * MIB as usize + 10]).unwrap()).is_err());
    // A reply over 2 MiB traps the canister that tries to send it.
    let err = env.update_one::<_, Vec<u8>>(user(1), p, "blob_of", 3 * MIB).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    // An inter-canister request over 2 MiB traps the caller.
    let q = install_probe(&*env, "q");
    let err = env.update_candid::<_, (Forwarded,)>(user(1), p, "send_blob", (q, 3 * MIB)).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    let ok: Forwarded = env.update_candid(user(1), p, "send_blob", (q, MIB)).map(|(f,)| f).unwrap();
    assert_eq!(ok, Forwarded::Reply(Encode!(&MIB).unwrap()), "a 1 MiB request goes through");
}

#[test]
fn chunked_install_checks_the_module_hash() {
    let env = new_env();
    let wasm = probe_wasm();
    let target = env.create_canister(admin());
    let mut hashes = Vec::new();
    for chunk in wasm.chunks(300_000) {
        let args = mgmt::UploadChunkArgs { canister_id: target, chunk: chunk.to_vec() };
        let h: mgmt::ChunkHash =
            env.update_one(admin(), Principal::management_canister(), "upload_chunk", args).unwrap();
        assert_eq!(h.hash, Sha256::digest(chunk).to_vec());
        hashes.push(h);
    }
    let stored: Vec<mgmt::ChunkHash> = env
        .update_one(
            admin(),
            Principal::management_canister(),
            "stored_chunks",
            mgmt::CanisterIdRecord { canister_id: target },
        )
        .unwrap();
    assert_eq!(stored.len(), hashes.len());
    let install = |module_hash: Vec<u8>| mgmt::InstallChunkedCodeArgs {
        mode: mgmt::CanisterInstallMode::Install,
        target_canister: target,
        store_canister: None,
        chunk_hashes_list: hashes.clone(),
        wasm_module_hash: module_hash,
        arg: init_arg("chunked"),
        sender_canister_version: None,
    };
    let err = env
        .update_one::<_, ()>(admin(), Principal::management_canister(), "install_chunked_code", install(vec![0xAB; 32]))
        .unwrap_err();
    assert!(err.message.to_lowercase().contains("hash"), "{}", err.message);
    let stranger = env.update_one::<_, ()>(
        user(66),
        Principal::management_canister(),
        "install_chunked_code",
        install(Sha256::digest(&wasm).to_vec()),
    );
    assert!(stranger.is_err(), "a stranger cannot install");
    let _: () = env
        .update_one(
            admin(),
            Principal::management_canister(),
            "install_chunked_code",
            install(Sha256::digest(&wasm).to_vec()),
        )
        .unwrap();
    let label: String = env.query_one(user(1), target, "label", ()).unwrap();
    assert_eq!(label, "chunked");
}

#[test]
fn an_unknown_import_is_refused_with_its_name() {
    let env = new_env();
    for (module, name) in [("ic0", "no_such_system_call"), ("env", "memcpy_from_libc")] {
        let wat = format!(
            r#"(module (import "{module}" "{name}" (func)) (memory (export "memory") 1) (func (export "canister_update x")))"#
        );
        let id = env.create_canister(admin());
        let err = env.install(admin(), id, &wat::parse_str(&wat).unwrap(), vec![]).unwrap_err();
        assert!(err.message.contains(name) && err.message.contains(module), "{}", err.message);
    }
}

/// A canister written by hand against the 32-bit legacy stable memory API
/// (as older Motoko modules use): a counter kept in stable memory.
const LEGACY_COUNTER: &str = r#"
(module
  (import "ic0" "stable_size" (func $stable_size (result i32)))
  (import "ic0" "stable_grow" (func $stable_grow (param i32) (result i32)))
  (import "ic0" "stable_read" (func $stable_read (param i32 i32 i32)))
  (import "ic0" "stable_write" (func $stable_write (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory (export "memory") 1)
  (func $bump
    (if (i32.eqz (call $stable_size)) (then (drop (call $stable_grow (i32.const 1)))))
    (call $stable_read (i32.const 0) (i32.const 0) (i32.const 4))
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (call $stable_write (i32.const 0) (i32.const 0) (i32.const 4)))
  (func (export "canister_update bump")
    (call $bump)
    (call $append (i32.const 0) (i32.const 4))
    (call $reply))
  (func (export "canister_query read")
    (if (i32.eqz (call $stable_size)) (then (i32.store (i32.const 0) (i32.const 0)))
      (else (call $stable_read (i32.const 0) (i32.const 0) (i32.const 4))))
    (call $append (i32.const 0) (i32.const 4))
    (call $reply)))
"#;

#[test]
fn a_hand_written_wasm32_module_using_the_legacy_api_runs() {
    let env = new_env();
    let id = env.create_canister(admin());
    env.install(admin(), id, &wat::parse_str(LEGACY_COUNTER).unwrap(), vec![]).unwrap();
    assert_eq!(env.update(user(1), id, "bump", vec![]).unwrap(), 1u32.to_le_bytes());
    assert_eq!(env.update(user(1), id, "bump", vec![]).unwrap(), 2u32.to_le_bytes());
    assert_eq!(env.query(user(1), id, "read", vec![]).unwrap(), 2u32.to_le_bytes());
}

/// A wasm64 module: every pointer and size of the system API is an i64.
const WASM64_ECHO: &str = r#"
(module
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i64)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i64 i64 i64)))
  (import "ic0" "msg_reply_data_append" (func $append (param i64 i64)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_caller_size" (func $caller_size (result i64)))
  (memory (export "memory") i64 2)
  (func (export "canister_update echo")
    (call $arg_copy (i64.const 70000) (i64.const 0) (call $arg_size))
    (call $append (i64.const 70000) (call $arg_size))
    (call $reply))
  (func (export "canister_query caller_len")
    (i64.store (i64.const 0) (call $caller_size))
    (call $append (i64.const 0) (i64.const 8))
    (call $reply)))
"#;

#[test]
fn a_wasm64_module_runs() {
    let env = new_env();
    let id = env.create_canister(admin());
    env.install(admin(), id, &wat::parse_str(WASM64_ECHO).unwrap(), vec![]).unwrap();
    assert_eq!(env.update(user(1), id, "echo", b"sixty-four".to_vec()).unwrap(), b"sixty-four");
    assert_eq!(
        env.query(user(1), id, "caller_len", vec![]).unwrap(),
        29u64.to_le_bytes(),
        "a self-authenticating id has 29 bytes"
    );
}

#[test]
fn a_wasm_memory_limit_makes_growth_fail() {
    let env = new_env();
    let p = install_probe(&*env, "p");
    let settings =
        mgmt::CanisterSettings { wasm_memory_limit: Some(candid::Nat::from(64 * MIB)), ..Default::default() };
    let args = mgmt::UpdateSettingsArgs { canister_id: p, settings, sender_canister_version: None };
    let _: () = env.update_one(admin(), Principal::management_canister(), "update_settings", args).unwrap();
    let _: u64 = env.update_one(user(1), p, "grow_and_keep", 8u32).unwrap();
    let err = env.update_one::<_, u64>(user(1), p, "grow_and_keep", 100u32).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(get(&*env, p), 1, "the failed growth rolled back");
}
