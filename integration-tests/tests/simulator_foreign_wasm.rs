//! Wasm from other toolchains, run as the IC runs it: the start function
//! (with the canister's stable memory, its effects kept), memory that is not
//! exported, enhanced orthogonal persistence (`wasm_memory_persistence`), and
//! the real llama.cpp canister. Hand-written modules; runs on PocketIC too
//! when `POCKET_IC_BIN` is set, except where a test says it needs the simulator.

use candid::{CandidType, Deserialize, Principal};
use ic_sim::{Limits, SimConfig, Simulator, mgmt};
use integration_tests::{RejectCode, TestEnv, TestEnvExt, new_env, user};

mod probe;
use probe::admin;

/// A module whose start function counts its runs in stable memory (bytes
/// 0..4) and copies the count into the heap (16..20): it needs the stable
/// memory API and the heap during start. `canister_init` and
/// `canister_post_upgrade` copy what start left in the heap to 48..52, so the
/// order start-then-hook shows. The memory is declared but not exported.
const START_COUNTER: &str = r#"
(module
  (import "ic0" "stable64_size" (func $ssize (result i64)))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_read" (func $sread (param i64 i64 i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (func $start
    (if (i64.eqz (call $ssize)) (then (drop (call $sgrow (i64.const 1)))))
    (call $sread (i64.const 16) (i64.const 0) (i64.const 4))
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
    (call $swrite (i64.const 0) (i64.const 16) (i64.const 4)))
  (start $start)
  (func $copy_start_count (i32.store (i32.const 48) (i32.load (i32.const 16))))
  (func (export "canister_init") (call $copy_start_count))
  (func (export "canister_post_upgrade") (call $copy_start_count))
  (func (export "canister_query heap_count") (call $append (i32.const 16) (i32.const 4)) (call $reply))
  (func (export "canister_query hook_saw") (call $append (i32.const 48) (i32.const 4)) (call $reply))
  (func (export "canister_query stable_count")
    (call $sread (i64.const 32) (i64.const 0) (i64.const 4))
    (call $append (i32.const 32) (i32.const 4))
    (call $reply))
  (func (export "canister_update grow_then_trap")
    (drop (memory.grow (i32.const 10)))
    (i32.store (i32.const 100) (i32.const 999))
    (call $swrite (i64.const 0) (i64.const 100) (i64.const 4))
    unreachable))
"#;

/// A start function that writes stable memory and then traps.
const TRAPPING_START: &str = r#"
(module
  (import "ic0" "stable64_size" (func $ssize (result i64)))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (memory 1)
  (func $start
    (if (i64.eqz (call $ssize)) (then (drop (call $sgrow (i64.const 1)))))
    (i32.store (i32.const 0) (i32.const 0x0BADBAD0))
    (call $swrite (i64.const 0) (i64.const 0) (i64.const 4))
    unreachable)
  (start $start))
"#;

/// A start function that loops `$n` times (to measure and limit it).
fn busy_start(n: u32) -> String {
    format!(
        r#"(module
          (memory 1)
          (func $start (local $i i32)
            (loop $l
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $l (i32.lt_u (local.get $i) (i32.const {n})))))
          (start $start))"#
    )
}

fn module(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap()
}

fn u32_of(bytes: Vec<u8>) -> u32 {
    u32::from_le_bytes(bytes.try_into().expect("4 bytes"))
}

fn u64_of(bytes: Vec<u8>) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

fn counts(env: &dyn TestEnv, id: Principal) -> (u32, u32, u32) {
    let q = |m: &str| u32_of(env.query(user(1), id, m, vec![]).unwrap());
    (q("heap_count"), q("stable_count"), q("hook_saw"))
}

#[test]
fn the_start_function_runs_with_the_canisters_stable_memory_and_its_writes_are_kept() {
    let env = new_env();
    let id = env.create_canister(admin());
    let wasm = module(START_COUNTER);
    env.install(admin(), id, &wasm, vec![]).unwrap();
    assert_eq!(counts(&*env, id), (1, 1, 1), "install: empty stable memory; init ran after start");

    env.upgrade(admin(), id, &wasm, vec![]).unwrap();
    assert_eq!(counts(&*env, id), (2, 2, 2), "upgrade: start saw the kept stable memory");

    env.reinstall(admin(), id, &wasm, vec![]).unwrap();
    assert_eq!(counts(&*env, id), (1, 1, 1), "reinstall: start saw an empty stable memory again");
}

#[test]
fn a_rolled_back_message_that_grew_memory_leaves_start_state_and_stable_memory_alone() {
    let env = new_env();
    let id = env.create_canister(admin());
    let wasm = module(START_COUNTER);
    env.install(admin(), id, &wasm, vec![]).unwrap();
    env.upgrade(admin(), id, &wasm, vec![]).unwrap();
    let err = env.update(user(1), id, "grow_then_trap", vec![]).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert_eq!(counts(&*env, id), (2, 2, 2), "the heap start wrote and the stable count are as before");
    // Once more: the instance made after the first rollback works the same way.
    env.update(user(1), id, "grow_then_trap", vec![]).unwrap_err();
    assert_eq!(counts(&*env, id), (2, 2, 2));
    if let Some(sim) = env.simulator() {
        assert_eq!(sim.heap_bytes(id), 65_536, "the grown memory was rolled back");
    }
}

#[test]
fn a_trapping_start_function_fails_the_install_and_the_upgrade_and_changes_nothing() {
    let env = new_env();
    let id = env.create_canister(admin());
    let err = env.install(admin(), id, &module(TRAPPING_START), vec![]).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError, "{err}");
    assert_eq!(env.status(admin(), id).unwrap().module_hash, None, "the canister stays empty");

    env.install(admin(), id, &module(START_COUNTER), vec![]).unwrap();
    let err = env.upgrade(admin(), id, &module(TRAPPING_START), vec![]).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError, "{err}");
    assert_eq!(counts(&*env, id), (1, 1, 1), "old code, old heap, and its stable memory without start's write");
}

#[test]
fn the_start_function_shares_the_install_instruction_limit_and_is_counted() {
    let limits = Limits { instructions_per_install: 2_000_000, ..Limits::default() };
    let mut sim = Simulator::with_config(SimConfig { limits, ..SimConfig::default() });
    let id = sim.create_canister(admin());
    sim.install_canister(admin(), id, &module(&busy_start(10_000)), vec![]).unwrap();
    let start = sim.executions().find(|e| e.canister == id && e.entry == "start").expect("start is recorded");
    assert!(start.instructions >= 10_000 * 3, "{}", start.instructions);
    assert_eq!(sim.execution_totals(id).0, start.instructions, "start counts with the install");

    let other = sim.create_canister(admin());
    let err = sim.install_canister(admin(), other, &module(&busy_start(10_000_000)), vec![]).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError);
    assert!(err.message.contains("exceeded the limit of 2000000 instructions"), "{}", err.message);
}

// ----------------------------------------------------------------------
// Enhanced orthogonal persistence
// ----------------------------------------------------------------------

/// The custom section by which a module declares enhanced orthogonal persistence.
const EOP_SECTION: &str = "icp:private enhanced-orthogonal-persistence";

/// Appends a custom section `name` (empty contents) to a module.
fn with_custom_section(mut wasm: Vec<u8>, name: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    wasm.push(0);
    leb(body.len(), &mut wasm);
    wasm.extend_from_slice(&body);
    wasm
}

/// A wasm64 module in the shape of an EOP program: its state lives in the
/// heap (a counter at 16), its static data (`version`) in a data segment at
/// 2 MiB (where the IC expects EOP data segments), the start function counts
/// its runs in the heap (at 32), and `canister_pre_upgrade` leaves a mark in
/// the heap (at 48). The memory is not exported.
fn counter64(version: &str, eop: bool) -> Vec<u8> {
    let wat = format!(
        r#"(module
          (import "ic0" "msg_reply_data_append" (func $append (param i64 i64)))
          (import "ic0" "msg_reply" (func $reply))
          (memory i64 100)
          (data (i64.const 0x200000) "{version}")
          (func $bump (param $at i64) (i64.store (local.get $at) (i64.add (i64.load (local.get $at)) (i64.const 1))))
          (func $start (call $bump (i64.const 32)))
          (start $start)
          (func $answer (param $at i64) (param $len i64) (call $append (local.get $at) (local.get $len)) (call $reply))
          (func (export "canister_update inc") (call $bump (i64.const 16)) (call $answer (i64.const 16) (i64.const 8)))
          (func (export "canister_query get") (call $answer (i64.const 16) (i64.const 8)))
          (func (export "canister_query starts") (call $answer (i64.const 32) (i64.const 8)))
          (func (export "canister_query pre_upgrade_mark") (call $answer (i64.const 48) (i64.const 8)))
          (func (export "canister_query version") (call $answer (i64.const 0x200000) (i64.const 2)))
          (func (export "canister_pre_upgrade") (i64.store (i64.const 48) (i64.const 7))))"#
    );
    let wasm = module(&wat);
    if eop { with_custom_section(wasm, EOP_SECTION) } else { wasm }
}

fn upgrade_with(
    env: &dyn TestEnv,
    id: Principal,
    wasm: Vec<u8>,
    persistence: Option<mgmt::WasmMemoryPersistence>,
) -> Result<(), ic_sim::Reject> {
    let args = mgmt::InstallCodeArgs {
        mode: mgmt::CanisterInstallMode::Upgrade(Some(mgmt::UpgradeFlags {
            skip_pre_upgrade: None,
            wasm_memory_persistence: persistence,
        })),
        canister_id: id,
        wasm_module: wasm,
        arg: vec![],
        sender_canister_version: None,
    };
    env.update_one(admin(), Principal::management_canister(), "install_code", args)
}

struct Eop {
    get: u64,
    starts: u64,
    mark: u64,
    version: String,
}

fn eop_state(env: &dyn TestEnv, id: Principal) -> Eop {
    let q = |m: &str| env.query(user(1), id, m, vec![]).unwrap();
    Eop {
        get: u64_of(q("get")),
        starts: u64_of(q("starts")),
        mark: u64_of(q("pre_upgrade_mark")),
        version: String::from_utf8(q("version")).unwrap(),
    }
}

fn eop_canister(env: &dyn TestEnv) -> Principal {
    let id = env.create_canister(admin());
    env.install(admin(), id, &counter64("v1", true), vec![]).unwrap();
    for _ in 0..3 {
        env.update(user(1), id, "inc", vec![]).unwrap();
    }
    id
}

#[test]
fn keep_retains_the_heap_writes_the_new_data_segments_and_runs_start_after_it() {
    use mgmt::WasmMemoryPersistence::Keep;
    let env = new_env();
    let id = eop_canister(&*env);
    upgrade_with(&*env, id, counter64("v2", true), Some(Keep)).unwrap();
    let s = eop_state(&*env, id);
    assert_eq!(s.get, 3, "the heap was kept");
    assert_eq!(s.version, "v2", "the new module's data segment was written over it");
    assert_eq!(s.starts, 2, "start ran once more, on the kept heap");
    assert_eq!(s.mark, 7, "what pre_upgrade wrote to the heap is kept too");
    assert_eq!(u64_of(env.update(user(1), id, "inc", vec![]).unwrap()), 4);
}

#[test]
fn an_eop_canister_upgraded_without_the_option_is_refused_and_unchanged() {
    let env = new_env();
    let id = eop_canister(&*env);
    let err = upgrade_with(&*env, id, counter64("v2", true), None).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError, "{err}");
    assert!(err.message.contains("Missing upgrade option"), "{}", err.message);
    assert!(err.message.contains("wasm_memory_persistence"), "{}", err.message);
    // The plain TestEnv upgrade (no flags at all) is refused the same way.
    let err = env.upgrade(admin(), id, &counter64("v2", true), vec![]).unwrap_err();
    assert!(err.message.contains("Missing upgrade option"), "{}", err.message);
    let s = eop_state(&*env, id);
    assert_eq!((s.get, s.starts, s.mark, s.version.as_str()), (3, 1, 0, "v1"), "nothing changed");
}

#[test]
fn keep_for_a_module_without_eop_is_refused_and_replace_gives_a_fresh_heap() {
    use mgmt::WasmMemoryPersistence::{Keep, Replace};
    let env = new_env();
    let id = eop_canister(&*env);
    let err = upgrade_with(&*env, id, counter64("v2", false), Some(Keep)).unwrap_err();
    assert_eq!(err.code, RejectCode::CanisterError, "{err}");
    assert!(err.message.contains("Invalid upgrade option"), "{}", err.message);
    assert_eq!(eop_state(&*env, id).get, 3, "nothing changed");

    upgrade_with(&*env, id, counter64("v2", true), Some(Replace)).unwrap();
    let s = eop_state(&*env, id);
    assert_eq!((s.get, s.starts, s.mark, s.version.as_str()), (0, 1, 0, "v2"), "a fresh heap");
}

#[test]
fn a_classical_canister_may_move_to_eop_without_the_option_but_not_keep_its_heap_into_classical_code() {
    use mgmt::WasmMemoryPersistence::Keep;
    let env = new_env();
    let id = env.create_canister(admin());
    env.install(admin(), id, &counter64("v1", false), vec![]).unwrap();
    env.update(user(1), id, "inc", vec![]).unwrap();
    let err = upgrade_with(&*env, id, counter64("v2", false), Some(Keep)).unwrap_err();
    assert!(err.message.contains("Invalid upgrade option"), "{}", err.message);
    // The old module has no EOP: omitting the option is allowed (heap replaced).
    upgrade_with(&*env, id, counter64("v2", true), None).unwrap();
    assert_eq!(eop_state(&*env, id).get, 0);
}

// ----------------------------------------------------------------------
// The real llama.cpp canister (icpp-pro, wasi2ic, a start function that
// mounts a file system kept in stable memory)
// ----------------------------------------------------------------------

#[derive(CandidType, Deserialize, Debug)]
struct StatusCodeRecord {
    status_code: u16,
}

#[derive(CandidType, Deserialize, Debug)]
enum ApiError {
    Other(String),
    StatusCode(u16),
}

#[derive(CandidType, Deserialize, Debug)]
struct FileUploadInputRecord {
    filename: String,
    chunk: Vec<u8>,
    chunksize: u64,
    offset: u64,
}

#[derive(CandidType, Deserialize, Debug)]
struct FileUploadRecord {
    filename: String,
    filesize: u64,
    filesha256: String,
}

#[derive(CandidType, Deserialize, Debug)]
struct FilesystemFileSizeInputRecord {
    filename: String,
}

#[derive(CandidType, Deserialize, Debug)]
struct FilesystemFileSizeRecord {
    exists: bool,
    filename: String,
    filesize: u64,
    msg: String,
}

fn llama_cpp_wasm() -> Option<Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/peers/llama_cpp.wasm");
    match std::fs::read(path) {
        Ok(w) => Some(w),
        Err(e) => {
            eprintln!("skipped: {path} is not readable ({e}); the llama.cpp canister test needs ../shared");
            None
        }
    }
}

#[test]
fn the_real_llama_cpp_canister_installs_answers_and_keeps_its_files_across_an_upgrade() {
    let Some(wasm) = llama_cpp_wasm() else { return };
    let env = new_env();
    let id = env.create_canister(admin());
    env.install(admin(), id, &wasm, candid::encode_args(()).unwrap()).unwrap();
    let health: Result<StatusCodeRecord, ApiError> = env.query_one(user(1), id, "health", ()).unwrap();
    assert_eq!(health.unwrap().status_code, 200);
    let ready: Result<StatusCodeRecord, ApiError> = env.query_one(admin(), id, "ready", ()).unwrap();
    assert!(ready.is_err(), "not ready before a model is loaded: {ready:?}");

    // A file written through the canister's stable-memory file system ...
    let chunk = b"kept across upgrades".to_vec();
    let upload =
        FileUploadInputRecord { filename: "notes/kept.txt".into(), chunksize: chunk.len() as u64, chunk, offset: 0 };
    let up: Result<FileUploadRecord, ApiError> = env.update_one(admin(), id, "file_upload_chunk", upload).unwrap();
    assert_eq!(up.unwrap().filesize, 20);
    // ... is found again after an upgrade, whose start function mounts it from
    // the kept stable memory.
    env.upgrade(admin(), id, &wasm, candid::encode_args(()).unwrap()).unwrap();
    let health: Result<StatusCodeRecord, ApiError> = env.query_one(user(1), id, "health", ()).unwrap();
    assert_eq!(health.unwrap().status_code, 200);
    let size: Result<FilesystemFileSizeRecord, ApiError> = env
        .query_one(
            admin(),
            id,
            "filesystem_file_size",
            FilesystemFileSizeInputRecord { filename: "notes/kept.txt".into() },
        )
        .unwrap();
    let size = size.unwrap();
    assert!(size.exists, "{size:?}");
    assert_eq!(size.filesize, 20);
}
