//! A fake IC for unit tests of the jobs ([`Fake`], a [`Runtime`]): canisters
//! with controllers, modules, a running flag and chunk stores, canned replies
//! of the callees, and switches that fail a `stop_canister`, lose a reply,
//! leave out `return_cycles`, trap mid-step or fail every install. The tests
//! below drive the failure branches of factory and fleet steps with it; each
//! test runs on its own thread, so with its own state.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use candid::Principal;
use mainer_types::MainerRole;
use mainer_types::controller::{HealthReport, LlmStatus};
use mainer_types::creator::{
    ArtefactKind, CreatorSettings, FleetStep, JobStatus, StartUploadRequest, Step, UploadChunkRequest,
};
use mainer_types::game::{GameError, MainerInfo};
use mainer_types::llama_cpp::{
    AccessInputRecord, AccessListResult, AccessRecord, AccessRecordResult, ApiError, FileUploadRecord,
    FileUploadRecordResult, OutputRecordResult, RunOutputRecord, StatusCodeRecord, StatusCodeRecordResult,
};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::fleet::{FleetJob, FleetKind};
use crate::ic::{CallError, CanisterInfo, ChunkedModule, InstallMode, Runtime, SYS_UNKNOWN};
use crate::job::{Job, MainerPlan};
use crate::scheduler::{self, JobKey};
use crate::state::{mutate_state, read_state};

/// Runs a future that never waits on anything outside the fake.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct FakeCanister {
    pub controllers: Vec<Principal>,
    pub module_hash: Option<Vec<u8>>,
    pub running: bool,
    pub chunks: BTreeSet<Vec<u8>>,
    /// Whether its wasm has `return_cycles` (ours does, llama.cpp's does not).
    pub return_cycles: bool,
    /// Whether its wasm has `grant_access` (ours does, llama.cpp's does not).
    pub grant_access: bool,
    /// Principals let in by `grant_access`.
    pub granted: Vec<Principal>,
    /// The access level `set_access` set.
    pub access_level: Option<u16>,
}

#[derive(Default)]
pub struct World {
    pub now: u64,
    pub next_id: u64,
    pub canisters: BTreeMap<Principal, FakeCanister>,
    /// Every call made, as "method canister".
    pub log: Vec<String>,
    /// Failures of `stop_canister` still to come.
    pub fail_stops: u32,
    /// The next call of this method acts but its reply is lost.
    pub lose_reply_of: Option<&'static str>,
    /// Calls of this method trap the creator (a panic here).
    pub trap_on: Option<&'static str>,
    /// Every install fails.
    pub fail_installs: bool,
    /// Whether new canisters' wasm has `return_cycles`.
    pub with_return_cycles: bool,
    /// Whether new canisters' wasm has `grant_access`.
    pub with_grant_access: bool,
    /// LLMs report a wrong SHA-256 for the uploaded model.
    pub corrupt_uploads: bool,
    /// Bytes uploaded into each LLM's model file.
    pub files: BTreeMap<Principal, Vec<u8>>,
    /// Cycles sent with `call_with_cycles` and `deposit_cycles`: (to, amount).
    pub sent: Vec<(Principal, u128)>,
    /// Refund calls still to fail.
    pub fail_refunds: u32,
    /// LLMs their controller gives no new work (`set_llm_draining`).
    pub draining: BTreeSet<Principal>,
    /// LLMs generating an answer for their controller.
    pub busy: BTreeSet<Principal>,
    /// What the game state was told about modules (`report_module`).
    pub modules_reported: Vec<mainer_types::game::ModuleReport>,
    spawned: Vec<Pin<Box<dyn Future<Output = ()>>>>,
}

#[derive(Clone)]
pub struct Fake(pub Rc<RefCell<World>>);

pub fn creator_id() -> Principal {
    canister_id(0)
}

fn canister_id(n: u64) -> Principal {
    let mut b = n.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 1]);
    Principal::from_slice(&b)
}

pub fn admin() -> Principal {
    Principal::from_slice(&[7; 29])
}

/// The owner of the mAIners the tests make (not an admin).
pub fn owner() -> Principal {
    Principal::from_slice(&[8; 29])
}

impl Fake {
    pub fn new() -> Fake {
        let mut w = World { next_id: 1, with_return_cycles: true, with_grant_access: true, ..World::default() };
        w.canisters.insert(creator_id(), FakeCanister { running: true, ..FakeCanister::default() });
        // The game state (`setup` configures it): not controlled by the creator.
        w.canisters.insert(canister_id(999), FakeCanister { running: true, ..FakeCanister::default() });
        Fake(Rc::new(RefCell::new(w)))
    }

    pub fn w(&self) -> std::cell::RefMut<'_, World> {
        self.0.borrow_mut()
    }

    /// Runs everything spawned (steps, background starts) to completion.
    pub fn run_spawned(&self) {
        loop {
            let next = {
                let mut w = self.w();
                if w.spawned.is_empty() { None } else { Some(w.spawned.remove(0)) }
            };
            match next {
                Some(f) => block_on(f),
                None => return,
            }
        }
    }

    /// One timer round and everything it started.
    pub fn round(&self) {
        block_on(scheduler::run_round(self));
        self.run_spawned();
    }

    pub fn calls(&self, prefix: &str) -> usize {
        self.w().log.iter().filter(|l| l.starts_with(prefix)).count()
    }

    fn enter(&self, method: &'static str, canister: Principal) -> Result<(), CallError> {
        let mut w = self.w();
        w.log.push(format!("{method} {canister}"));
        if w.trap_on == Some(method) {
            drop(w);
            panic!("trap in {method}");
        }
        Ok(())
    }

    /// The call acted; its reply may be lost.
    fn reply<T>(&self, method: &'static str, value: T) -> Result<T, CallError> {
        let mut w = self.w();
        if w.lose_reply_of == Some(method) {
            w.lose_reply_of = None;
            return Err(CallError { code: SYS_UNKNOWN, message: format!("the reply of {method} was lost") });
        }
        Ok(value)
    }

    fn controlled(&self, canister: Principal) -> Result<(), CallError> {
        match self.w().canisters.get(&canister) {
            Some(c) if c.controllers.contains(&creator_id()) || canister == creator_id() => Ok(()),
            Some(_) => Err(CallError { code: 4, message: format!("the creator does not control {canister}") }),
            None => Err(CallError { code: 3, message: format!("canister {canister} not found") }),
        }
    }

    fn install(&self, canister: Principal, hash: Vec<u8>) -> Result<(), CallError> {
        self.controlled(canister)?;
        let mut w = self.w();
        if w.fail_installs {
            return Err(CallError { code: 5, message: "the new module trapped in post_upgrade".into() });
        }
        let (rc, ga) = (w.with_return_cycles, w.with_grant_access);
        let c = w.canisters.get_mut(&canister).unwrap();
        c.module_hash = Some(hash);
        c.return_cycles = rc;
        c.grant_access = ga;
        Ok(())
    }
}

fn encode<T: candid::CandidType>(v: T) -> Vec<u8> {
    candid::encode_one(v).unwrap()
}

fn ok_status() -> StatusCodeRecordResult {
    StatusCodeRecordResult::Ok(StatusCodeRecord { status_code: 200 })
}

fn llm_status(canister: Principal) -> LlmStatus {
    LlmStatus {
        canister,
        healthy: true,
        draining: true,
        resting_until_ns: None,
        in_flight: None,
        answers: 0,
        failures: 0,
        last_error: None,
    }
}

impl Runtime for Fake {
    fn time(&self) -> u64 {
        self.w().now
    }

    fn canister_self(&self) -> Principal {
        creator_id()
    }

    fn liquid_cycles(&self) -> u128 {
        1 << 80
    }

    fn create_canister_fee(&self) -> u128 {
        100_000_000_000
    }

    fn spawn(&self, f: impl Future<Output = ()> + 'static) {
        self.w().spawned.push(Box::pin(f));
    }

    async fn call_raw(&self, canister: Principal, method: &'static str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.enter(method, canister)?;
        let exists = self.w().canisters.get(&canister).cloned();
        let Some(callee) = exists else {
            return Err(CallError { code: 3, message: format!("canister {canister} not found") });
        };
        if !callee.running {
            return Err(CallError { code: 5, message: format!("canister {canister} is stopped") });
        }
        let reply = match method {
            "file_upload_chunk" => {
                let r: mainer_types::llama_cpp::FileUploadInputRecord = candid::decode_one(&arg).unwrap();
                let mut w = self.w();
                let corrupt = w.corrupt_uploads;
                let file = w.files.entry(canister).or_default();
                file.truncate(r.offset as usize);
                file.extend_from_slice(&r.chunk);
                let mut sha = hex::encode(Sha256::digest(&*file));
                if corrupt {
                    sha = hex::encode(Sha256::digest(b"not the model"));
                }
                encode(FileUploadRecordResult::Ok(FileUploadRecord {
                    filename: r.filename,
                    filesize: file.len() as u64,
                    filesha256: sha,
                }))
            }
            "load_model" => encode(OutputRecordResult::Ok(RunOutputRecord { status_code: 200, ..Default::default() })),
            "set_max_tokens" | "ready" => encode(ok_status()),
            "add_llm" => {
                let llm = candid::decode_one::<mainer_types::controller::AddLlmRequest>(&arg).unwrap().canister;
                encode(Ok::<_, mainer_types::controller::ControllerError>(llm_status(llm)))
            }
            "set_llm_draining" => {
                let (llm, on) = candid::decode_args::<(Principal, bool)>(&arg).unwrap();
                let mut w = self.w();
                if on {
                    w.draining.insert(llm)
                } else {
                    w.draining.remove(&llm)
                };
                encode(Ok::<_, mainer_types::controller::ControllerError>(LlmStatus {
                    draining: on,
                    ..llm_status(llm)
                }))
            }
            "list_llms" => {
                let busy: Vec<LlmStatus> =
                    self.w().busy.iter().map(|l| LlmStatus { in_flight: Some(1), ..llm_status(*l) }).collect();
                encode(Ok::<Vec<LlmStatus>, mainer_types::controller::ControllerError>(busy))
            }
            "remove_llm" | "add_share_agent" => encode(Ok::<(), mainer_types::controller::ControllerError>(())),
            "register_mainer" => encode(Err::<MainerInfo, _>(GameError::AlreadyRegistered(canister))),
            "report_module" => {
                self.w().modules_reported.push(candid::decode_one(&arg).unwrap());
                encode(Ok::<(), GameError>(()))
            }
            "grant_access" if callee.grant_access => {
                let who: Principal = candid::decode_one(&arg).unwrap();
                let mut w = self.w();
                let c = w.canisters.get_mut(&canister).unwrap();
                if !c.granted.contains(&who) {
                    c.granted.push(who);
                }
                encode(AccessListResult::Ok(c.granted.clone()))
            }
            "grant_access" => {
                return Err(CallError {
                    code: 5,
                    message: format!("Canister {canister} has no update method 'grant_access'"),
                });
            }
            "set_access" => {
                let r: AccessInputRecord = candid::decode_one(&arg).unwrap();
                self.w().canisters.get_mut(&canister).unwrap().access_level = Some(r.level);
                encode(AccessRecordResult::Ok(AccessRecord { level: r.level, explanation: String::new() }))
            }
            "return_cycles" if callee.return_cycles => encode(Ok::<u128, ApiError>(1)),
            "return_cycles" => {
                return Err(CallError {
                    code: 5,
                    message: format!("Canister {canister} has no update method 'return_cycles'"),
                });
            }
            "health" => encode(HealthReport {
                role: MainerRole::Own,
                paused: false,
                ready: true,
                problems: vec![],
                queued: 0,
                in_flight: 0,
                answered: 0,
                llms: 1,
                healthy_llms: 1,
                cycles: 1,
                timers_armed: true,
                last_handed_on_ns: None,
                waiting_since_ns: None,
                low_cycles: false,
                cycles_per_answer: None,
            }),
            other => panic!("the fake does not know {other}"),
        };
        self.reply(method, reply)
    }

    async fn call_with_cycles(
        &self,
        canister: Principal,
        method: &'static str,
        arg: Vec<u8>,
        cycles: u128,
    ) -> Result<Vec<u8>, CallError> {
        self.enter(method, canister)?;
        let mut w = self.w();
        if w.fail_refunds > 0 {
            w.fail_refunds -= 1;
            return Err(CallError { code: 5, message: "the ledger is stopped".into() });
        }
        w.sent.push((canister, cycles));
        let _ = arg;
        Ok(encode(mainer_types::cycles_ledger::DepositResult {
            balance: candid::Nat::from(cycles),
            block_index: candid::Nat::from(w.sent.len()),
        }))
    }

    async fn deposit_cycles(&self, canister: Principal, cycles: u128) -> Result<(), CallError> {
        self.enter("deposit_cycles", canister)?;
        let mut w = self.w();
        if w.fail_refunds > 0 {
            w.fail_refunds -= 1;
            return Err(CallError { code: 3, message: "canister not found".into() });
        }
        w.sent.push((canister, cycles));
        Ok(())
    }

    async fn create_canister(&self, controllers: Vec<Principal>, _cycles: u128) -> Result<Principal, CallError> {
        self.enter("create_canister", creator_id())?;
        let id = {
            let mut w = self.w();
            let id = canister_id(w.next_id);
            w.next_id += 1;
            w.canisters.insert(id, FakeCanister { controllers, running: true, ..FakeCanister::default() });
            id
        };
        self.reply("create_canister", id)
    }

    async fn canister_info(&self, canister: Principal) -> Result<CanisterInfo, CallError> {
        self.enter("canister_status", canister)?;
        self.controlled(canister)?;
        let c = self.w().canisters[&canister].clone();
        self.reply(
            "canister_status",
            CanisterInfo { module_hash: c.module_hash, controllers: c.controllers, cycles: 0 },
        )
    }

    async fn set_controllers(&self, canister: Principal, controllers: Vec<Principal>) -> Result<(), CallError> {
        self.enter("update_settings", canister)?;
        self.controlled(canister)?;
        self.w().canisters.get_mut(&canister).unwrap().controllers = controllers;
        self.reply("update_settings", ())
    }

    async fn install_code(
        &self,
        _mode: InstallMode,
        canister: Principal,
        wasm: Vec<u8>,
        _arg: Vec<u8>,
    ) -> Result<(), CallError> {
        self.enter("install_code", canister)?;
        self.install(canister, Sha256::digest(&wasm).to_vec())?;
        self.reply("install_code", ())
    }

    async fn clear_chunk_store(&self, canister: Principal) -> Result<(), CallError> {
        self.enter("clear_chunk_store", canister)?;
        self.controlled(canister)?;
        self.w().canisters.get_mut(&canister).unwrap().chunks.clear();
        self.reply("clear_chunk_store", ())
    }

    async fn upload_chunk(&self, store: Principal, chunk: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.enter("upload_chunk", store)?;
        self.controlled(store)?;
        let h = Sha256::digest(&chunk).to_vec();
        self.w().canisters.get_mut(&store).unwrap().chunks.insert(h.clone());
        self.reply("upload_chunk", h)
    }

    async fn install_chunked_code(
        &self,
        _mode: InstallMode,
        target: Principal,
        module: ChunkedModule,
        _arg: Vec<u8>,
    ) -> Result<(), CallError> {
        self.enter("install_chunked_code", target)?;
        self.controlled(module.store)?;
        let have = self.w().canisters[&module.store].chunks.clone();
        if let Some(missing) = module.chunk_hashes.iter().find(|h| !have.contains(*h)) {
            return Err(CallError { code: 4, message: format!("chunk {} is not in the store", hex::encode(missing)) });
        }
        self.install(target, module.wasm_hash)?;
        self.reply("install_chunked_code", ())
    }

    async fn stop_canister(&self, canister: Principal) -> Result<(), CallError> {
        self.enter("stop_canister", canister)?;
        self.controlled(canister)?;
        let mut w = self.w();
        if w.fail_stops > 0 {
            w.fail_stops -= 1;
            return Err(CallError { code: 5, message: "stop_canister timed out while stopping".into() });
        }
        w.canisters.get_mut(&canister).unwrap().running = false;
        drop(w);
        self.reply("stop_canister", ())
    }

    async fn start_canister(&self, canister: Principal) -> Result<(), CallError> {
        self.enter("start_canister", canister)?;
        self.controlled(canister)?;
        self.w().canisters.get_mut(&canister).unwrap().running = true;
        self.reply("start_canister", ())
    }

    async fn delete_canister(&self, canister: Principal) -> Result<(), CallError> {
        self.enter("delete_canister", canister)?;
        self.controlled(canister)?;
        self.w().canisters.remove(&canister);
        self.reply("delete_canister", ())
    }
}

// ----------------------------------------------------------------------
// Set-up
// ----------------------------------------------------------------------

/// Installs the configuration and stores `bytes` as an artefact; returns its SHA-256.
pub fn setup(artefacts: &[(ArtefactKind, Vec<u8>)]) -> Vec<String> {
    mutate_state(|s| {
        s.set_config(Config {
            admins: vec![admin()],
            game_state: canister_id(999),
            allowed_creators: vec![],
            settings: CreatorSettings { chunks_per_round: 100, ..CreatorSettings::default() },
        });
        s.mark_indexed();
        artefacts
            .iter()
            .map(|(kind, bytes)| {
                let req = StartUploadRequest {
                    kind: *kind,
                    name: "a".into(),
                    total_size: bytes.len() as u64,
                    expected_sha256: None,
                };
                let id = s.store.start_upload(req, admin(), 0).unwrap().upload_id;
                for (i, c) in bytes.chunks(1_000_000).enumerate() {
                    let chunk = UploadChunkRequest { upload_id: id, offset: i as u64 * 1_000_000, bytes: c.to_vec() };
                    s.store.upload_chunk(&chunk).unwrap();
                }
                s.store.finish_upload(id, 0).unwrap().sha256
            })
            .collect()
    })
}

/// A plan for an Own mAIner with the given artefacts.
pub fn own_plan(controller_wasm: &str, llm_wasm: &str, model: &str, model_size: u64) -> MainerPlan {
    MainerPlan {
        role: MainerRole::Own,
        owner: owner(),
        share_service: None,
        controller_wasm: controller_wasm.into(),
        llm_wasm: Some(llm_wasm.into()),
        model: Some(model.into()),
        model_size,
        controller_cycles: 1_000,
        llm_cycles: 1_000,
        max_tokens_update: 4,
        controller_settings: None,
    }
}

/// Runs at most `rounds` timer rounds, a second apart, until `done` gives a value.
fn rounds_until<T>(fake: &Fake, rounds: u32, done: impl Fn() -> Option<T>) -> Option<T> {
    for _ in 0..rounds {
        fake.w().now += 1_000_000_000;
        fake.round();
        if let Some(v) = done() {
            return Some(v);
        }
    }
    None
}

/// Runs rounds until job `id` is no longer running.
fn finish_job(fake: &Fake, id: u64) -> Job {
    rounds_until(fake, 200, || read_state(|s| s.job(id)).filter(|j| j.status != JobStatus::Running))
        .unwrap_or_else(|| panic!("job {id} still running"))
}

/// A made mAIner with one LLM; returns (job id, controller, LLM).
fn made_mainer(fake: &Fake) -> (u64, Principal, Principal) {
    let shas = setup(&[
        (ArtefactKind::ControllerWasm, vec![1; 1000]),
        (ArtefactKind::LlmWasm, vec![2; 1000]),
        (ArtefactKind::Model, vec![3; 5000]),
    ]);
    let job = Job::new(0, own_plan(&shas[0], &shas[1], &shas[2], 5000), 1, 0);
    mutate_state(|s| s.insert_job(job));
    let job = finish_job(fake, 0);
    assert_eq!(job.status, JobStatus::Done, "{:?}", job.errors);
    (0, job.controller.canister.unwrap(), job.llms[0].canister.unwrap())
}

fn fleet(kind: FleetKind, wasm: &str, targets: Vec<Principal>, batch: u32) -> u64 {
    mutate_state(|s| {
        let id = s.next_fleet_id();
        s.put_fleet_job(FleetJob::new(id, kind, wasm.into(), targets, batch, 0));
        id
    })
}

fn fleet_rounds(fake: &Fake, id: u64) -> FleetJob {
    rounds_until(fake, 50, || read_state(|s| s.fleet_job(id)).filter(|j| j.status != JobStatus::Running))
        .unwrap_or_else(|| panic!("fleet job {id} still running"))
}

// ----------------------------------------------------------------------
// The failure branches
// ----------------------------------------------------------------------

#[test]
fn a_job_makes_its_canisters_once_and_finishes() {
    let fake = Fake::new();
    let (_, controller, llm) = made_mainer(&fake);
    assert_eq!(fake.calls("create_canister"), 2);
    assert_eq!(read_state(|s| s.job_of_llm(&llm).map(|j| j.id)), Some(0));
    assert_eq!(read_state(|s| s.all_controllers()), vec![controller]);
    // The game state heard of the controller's module before it was installed.
    let wasm = read_state(|s| s.job(0)).unwrap().plan.controller_wasm;
    let w = fake.w();
    let report = mainer_types::game::ModuleReport { module_hash: hex::decode(&wasm).unwrap(), mainer: None };
    assert!(w.modules_reported.contains(&report));
    let first = |prefix: String| w.log.iter().position(|l| l.starts_with(&prefix)).unwrap();
    assert!(first("report_module".into()) < first(format!("install_code {controller}")), "{:?}", w.log);
}

/// A fleet upgrade of controllers tells the game state of the new module,
/// naming the mAIner, before it installs it (else its submissions would be
/// refused as unknown code).
#[test]
fn a_controller_upgrade_reports_the_new_module_first() {
    let fake = Fake::new();
    let (_, controller, _) = made_mainer(&fake);
    let v2 = setup(&[(ArtefactKind::ControllerWasm, vec![8; 1000])]).remove(0);
    let id = fleet(FleetKind::UpgradeControllers, &v2, vec![controller], 1);
    let job = fleet_rounds(&fake, id);
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    let w = fake.w();
    let report = mainer_types::game::ModuleReport { module_hash: hex::decode(&v2).unwrap(), mainer: Some(controller) };
    let reported_at = w.log.iter().rposition(|l| l.starts_with("report_module")).unwrap();
    let installed_at = w.log.iter().rposition(|l| l.starts_with(&format!("install_code {controller}"))).unwrap();
    assert_eq!(w.modules_reported.last(), Some(&report));
    assert!(reported_at < installed_at, "{:?}", w.log);
}

/// The owner (here `owner()`) is an IC controller of nothing; the controller
/// canister uses its LLM by access grant, not as its IC controller.
#[test]
fn the_owner_controls_no_canister_and_the_controller_uses_its_llm_by_grant() {
    let fake = Fake::new();
    let (_, controller, llm) = made_mainer(&fake);
    let w = fake.w();
    let mut operators = vec![creator_id(), admin()];
    operators.sort();
    assert_eq!(w.canisters[&controller].controllers, operators, "the creator and its admins");
    assert_eq!(w.canisters[&llm].controllers, vec![creator_id()], "the creator only");
    assert_eq!(w.canisters[&llm].granted, vec![controller], "access granted");
    assert!(!w.canisters.values().any(|c| c.controllers.contains(&owner())));
}

/// An LLM without `grant_access` (the llama.cpp canister) is opened with its
/// access level instead.
#[test]
fn an_llm_without_grant_access_is_opened_by_its_access_level() {
    let fake = Fake::new();
    fake.w().with_grant_access = false;
    let (_, controller, llm) = made_mainer(&fake);
    let w = fake.w();
    assert_eq!(w.canisters[&llm].access_level, Some(1));
    assert!(!w.canisters[&llm].controllers.contains(&controller));
}

#[test]
fn a_lost_create_canister_reply_is_detected_and_the_canister_adopted() {
    let fake = Fake::new();
    fake.w().lose_reply_of = Some("create_canister");
    let (_, controller, llm) = made_mainer(&fake);
    // The controller's canister was created, its reply lost: no second one.
    assert_eq!(fake.calls("create_canister"), 2, "one canister per slot");
    assert_eq!(fake.w().canisters.len(), 4, "the creator, the game state, the controller, the LLM");
    let job = read_state(|s| s.job(0)).unwrap();
    assert!(job.errors.iter().any(|e| e.contains("reply was lost") && e.contains("adopted")), "{:?}", job.errors);
    assert_eq!(job.controller.canister, Some(controller));
    assert!(job.controller.create_started_ns.is_none() && job.llms[0].create_started_ns.is_none());
    assert_ne!(controller, llm);
}

#[test]
fn a_lost_reply_whose_canister_cannot_be_found_is_reported() {
    let fake = Fake::new();
    setup(&[]);
    fake.w().lose_reply_of = Some("create_canister");
    let plan = MainerPlan { llm_wasm: None, model: None, role: MainerRole::ShareAgent, ..own_plan("", "", "", 0) };
    mutate_state(|s| s.insert_job(Job::new(0, plan, 0, 0)));
    fake.round();
    let job = read_state(|s| s.job(0)).unwrap();
    assert!(job.controller.canister.is_none() && job.controller.create_started_ns.is_some(), "the intent stays");
    // Someone else takes the canister away (deleted out of band): nothing to adopt.
    let lost = fake.w().canisters.keys().copied().find(|c| *c != creator_id()).unwrap();
    fake.w().canisters.get_mut(&lost).unwrap().controllers.clear();
    fake.w().now += 10_000_000_000;
    fake.round();
    let job = read_state(|s| s.job(0)).unwrap();
    assert!(job.errors.iter().any(|e| e.contains("may be orphaned")), "{:?}", job.errors);
    assert!(job.controller.canister.is_some_and(|c| c != lost), "a new canister was made");
}

#[test]
fn a_failed_stop_is_retried_and_the_upgrade_then_goes_on() {
    let fake = Fake::new();
    let (_, _, llm) = made_mainer(&fake);
    let v2 = setup(&[(ArtefactKind::LlmWasm, vec![9; 1000])]).remove(0);
    fake.w().fail_stops = 2;
    let id = fleet(FleetKind::UpgradeLlms, &v2, vec![llm], 1);
    let job = fleet_rounds(&fake, id);
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    assert_eq!(fake.calls("stop_canister"), 3);
    let c = fake.w().canisters[&llm].clone();
    assert!(c.running && c.module_hash == Some(hex::decode(&v2).unwrap()));
    assert!(job.targets[0].error.as_deref().is_some_and(|e| e.contains("Stop")), "the last error is kept");
}

#[test]
fn a_failed_upgrade_gives_up_and_restarts_the_canister() {
    let fake = Fake::new();
    let (_, controller, _) = made_mainer(&fake);
    let v2 = setup(&[(ArtefactKind::ControllerWasm, vec![8; 1000])]).remove(0);
    fake.w().fail_installs = true;
    let id = fleet(FleetKind::UpgradeControllers, &v2, vec![controller], 1);
    let job = fleet_rounds(&fake, id);
    assert!(matches!(job.status, JobStatus::Failed { .. }));
    assert_eq!(job.targets[0].step, FleetStep::Failed);
    assert!(fake.w().canisters[&controller].running, "started again after the failed upgrade");
    assert_eq!(fake.calls("start_canister"), 1);
}

#[test]
fn an_llm_without_return_cycles_is_still_removed() {
    let fake = Fake::new();
    fake.w().with_return_cycles = false;
    let (_, _, llm) = made_mainer(&fake);
    let id = fleet(FleetKind::RemoveLlm, "", vec![llm], 1);
    let job = fleet_rounds(&fake, id);
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    assert_eq!(fake.calls("return_cycles"), 1);
    assert!(!fake.w().canisters.contains_key(&llm), "deleted");
    assert!(read_state(|s| s.job_of_llm(&llm)).is_none(), "forgotten");
    assert!(read_state(|s| s.job(0)).unwrap().llms.is_empty());
}

#[test]
fn a_trap_mid_step_frees_the_job_and_it_resumes() {
    let fake = Fake::new();
    let shas = setup(&[
        (ArtefactKind::ControllerWasm, vec![1; 1000]),
        (ArtefactKind::LlmWasm, vec![2; 1000]),
        (ArtefactKind::Model, vec![3; 5000]),
    ]);
    mutate_state(|s| s.insert_job(Job::new(0, own_plan(&shas[0], &shas[1], &shas[2], 5000), 1, 0)));
    fake.w().trap_on = Some("load_model");
    for _ in 0..20 {
        fake.w().now += 1_000_000_000;
        let f = fake.clone();
        let trapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.round()));
        if trapped.is_err() {
            break;
        }
    }
    fake.w().spawned.clear();
    let job = read_state(|s| s.job(0)).unwrap();
    assert_eq!((job.llms[0].step, job.attempts), (Step::LoadModel, 0), "a trap records nothing");
    assert!(!scheduler::is_busy(JobKey::Factory(0)), "the guard was released");
    fake.w().trap_on = None;
    let job = finish_job(&fake, 0);
    assert_eq!(job.status, JobStatus::Done);
}

#[test]
fn a_model_mismatch_is_fatal_and_retry_copies_the_model_again() {
    let fake = Fake::new();
    let shas = setup(&[
        (ArtefactKind::ControllerWasm, vec![1; 1000]),
        (ArtefactKind::LlmWasm, vec![2; 1000]),
        (ArtefactKind::Model, vec![3; 5000]),
    ]);
    mutate_state(|s| s.insert_job(Job::new(0, own_plan(&shas[0], &shas[1], &shas[2], 5000), 1, 0)));
    fake.w().corrupt_uploads = true;
    let job = finish_job(&fake, 0);
    assert!(matches!(&job.status, JobStatus::Failed { reason } if reason.contains("mismatch")), "{job:?}");
    assert_eq!(job.llms[0].bytes_copied, 5000);
    let copies = fake.calls("file_upload_chunk");
    fake.w().corrupt_uploads = false;
    mutate_state(|s| s.retry_job(0)).unwrap();
    let job = finish_job(&fake, 0);
    assert_eq!(job.status, JobStatus::Done, "{:?}", job.errors);
    assert!(fake.calls("file_upload_chunk") > copies, "the model was copied again");
    assert_eq!(fake.w().files[&job.llms[0].canister.unwrap()], vec![3; 5000]);
}

#[test]
fn upgrades_skip_targets_that_run_the_wasm_and_share_one_chunk_upload() {
    let fake = Fake::new();
    let (_, _, llm) = made_mainer(&fake);
    // Two more LLMs for the same mAIner's job.
    let big = setup(&[(ArtefactKind::LlmWasm, vec![5; 2_500_000])]).remove(0);
    let others: Vec<Principal> = (0..2)
        .map(|_| {
            let id = block_on(fake.create_canister(vec![creator_id()], 0)).unwrap();
            mutate_state(|s| {
                s.update_job(0, |j| {
                    let mut slot = j.llms[0].clone();
                    slot.canister = Some(id);
                    j.llms.push(slot);
                })
            });
            id
        })
        .collect();
    let targets = vec![llm, others[0], others[1]];
    let id = fleet(FleetKind::UpgradeLlms, &big, targets.clone(), 3);
    let job = fleet_rounds(&fake, id);
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    assert_eq!(fake.calls("upload_chunk"), 3, "2.5 MB in 1 MB chunks, uploaded once for three targets");
    assert_eq!(fake.calls(&format!("upload_chunk {}", creator_id())), 3, "into the creator's own chunk store");
    for t in &targets {
        assert_eq!(fake.w().canisters[t].module_hash, Some(hex::decode(&big).unwrap()));
    }
    // Again: every target runs it already, nothing is installed.
    let installs = fake.calls("install");
    let id = fleet(FleetKind::UpgradeLlms, &big, targets, 3);
    assert_eq!(fleet_rounds(&fake, id).status, JobStatus::Done);
    assert_eq!(fake.calls("install"), installs);
}

/// Job 0: an Own mAIner with one LLM over freshly stored artefacts, paid
/// `paid` cycles by `payer` (fee 7); `keep`: its `keep_on_failure`.
fn paid_own_job(payer: mainer_types::economy::Payer, paid: u128, keep: Option<bool>) -> Job {
    let shas = setup(&[
        (ArtefactKind::ControllerWasm, vec![1; 1000]),
        (ArtefactKind::LlmWasm, vec![2; 1000]),
        (ArtefactKind::Model, vec![3; 5000]),
    ]);
    let mut job = Job::new(0, own_plan(&shas[0], &shas[1], &shas[2], 5000), 1, 0);
    job.funds = Some(crate::economy::Funds {
        kind: mainer_types::economy::OrderKind::Own { llm_count: 1 },
        payer,
        paid,
        spent: 0,
        fee: 7,
        refund: None,
        keep_on_failure: keep,
    });
    job
}

/// A paid job that cannot finish owes back what it did not spend: sent
/// once, retried while the refund call fails, booked once.
#[test]
fn a_failed_paid_job_refunds_its_unspent_cycles_once() {
    use mainer_types::economy::{Payer, RefundStatus};
    let fake = Fake::new();
    let paid = 1_000_000_000_000;
    let job = paid_own_job(Payer::Ledger(owner()), paid, None);
    mutate_state(|s| {
        let mut e = s.economy();
        e.cycles_ledger = Some(canister_id(998));
        s.set_economy(e);
        s.insert_job(job)
    });
    fake.w().fail_installs = true;
    fake.w().fail_refunds = 1;
    let job = finish_job(&fake, 0);
    assert!(matches!(job.status, JobStatus::Failed { .. }));
    let spent = 1_000 + fake.create_canister_fee();
    assert_eq!(job.funds.as_ref().unwrap().spent, spent, "the controller canister was made");
    for _ in 0..100 {
        fake.w().now += 10_000_000_000;
        fake.round();
    }
    let funds = read_state(|s| s.job(0)).unwrap().funds.unwrap();
    let refund = funds.refund.unwrap();
    assert!(matches!(refund.status, RefundStatus::Done { .. }), "{refund:?}");
    assert_eq!((refund.amount, refund.attempts), (paid - spent, 1), "one failed try, then sent");
    let ledger_sends = fake.w().sent.clone();
    assert_eq!(ledger_sends.len(), 1, "sent exactly once: {ledger_sends:?}");
    assert_eq!(ledger_sends[0].1, paid - spent);
    let books = read_state(|s| s.books());
    assert_eq!((books.refunded, books.spent_on_canisters, books.fees), (paid - spent, spent, 0));
    assert!(read_state(|s| s.refunds_due()).is_empty(), "out of the open-refunds index");
    assert!(mutate_state(|s| s.retry_job(0)).is_err(), "a refunded job is not retried");
}

/// A refund under way when the creator is upgraded is never sent again.
#[test]
fn a_refund_in_flight_at_an_upgrade_becomes_unknown() {
    use crate::economy::{Funds, Refund};
    use mainer_types::economy::{OrderKind, Payer, RefundStatus};
    setup(&[]);
    let mut job = Job::new(0, own_plan("", "", "", 0), 1, 0);
    job.status = JobStatus::Failed { reason: "x".into() };
    job.funds = Some(Funds {
        kind: OrderKind::Own { llm_count: 1 },
        payer: Payer::Canister(owner()),
        paid: 10,
        spent: 0,
        fee: 1,
        refund: Some(Refund {
            amount: 10,
            status: RefundStatus::InFlight,
            attempts: 0,
            last_error: None,
            next_attempt_ns: 0,
        }),
        keep_on_failure: None,
    });
    mutate_state(|s| s.insert_job(job));
    assert_eq!(read_state(|s| s.refunds_due()), vec![0]);
    mutate_state(|s| s.refunds_in_flight_unknown());
    let refund = read_state(|s| s.job(0)).unwrap().funds.unwrap().refund.unwrap();
    assert_eq!(refund.status, RefundStatus::Unknown);
    assert!(read_state(|s| s.refunds_due()).is_empty());
    assert_eq!(read_state(|s| s.books()).refunds_unknown, 1);

    // An admin checked the payer: it never arrived, so it is due again, once.
    mutate_state(|s| s.settle_refund(0, false, 5)).unwrap();
    let refund = read_state(|s| s.job(0)).unwrap().funds.unwrap().refund.unwrap();
    assert_eq!(refund.status, RefundStatus::Due);
    assert_eq!(read_state(|s| s.refunds_due()), vec![0], "back in the open-refunds index");
    assert_eq!(read_state(|s| s.books()).refunds_unknown, 0);
    assert!(mutate_state(|s| s.settle_refund(0, true, 6)).is_err(), "only an unknown refund is settled");
    assert_eq!(read_state(|s| s.books()).refunded, 0, "booked when it is sent");
}

/// A payer who asked to keep the funds of a failed order gets no refund at
/// once: the job can be retried with them, or they are refunded on request,
/// once.
#[test]
fn a_failed_order_that_keeps_its_funds_is_retried_or_refunded_on_request() {
    use mainer_types::economy::{Payer, RefundStatus};
    let fake = Fake::new();
    let paid = 1_000_000_000_000;
    let job = paid_own_job(Payer::Canister(owner()), paid, Some(true));
    mutate_state(|s| s.insert_job(job));
    fake.w().corrupt_uploads = true;
    let job = finish_job(&fake, 0);
    assert!(matches!(job.status, JobStatus::Failed { .. }));
    assert!(job.funds.as_ref().unwrap().refund.is_none(), "kept for a retry");
    assert!(read_state(|s| s.refunds_due()).is_empty());

    // Retried with its funds: it fails again (still corrupt), then the owner takes them back.
    mutate_state(|s| s.retry_job(0)).unwrap();
    let job = finish_job(&fake, 0);
    assert!(matches!(job.status, JobStatus::Failed { .. }));
    let spent = job.funds.as_ref().unwrap().spent;
    mutate_state(|s| s.refund_kept(0)).unwrap();
    assert!(mutate_state(|s| s.refund_kept(0)).is_err(), "refunded once");
    assert!(mutate_state(|s| s.retry_job(0)).is_err(), "a refunded job is not retried");
    for _ in 0..10 {
        fake.w().now += 10_000_000_000;
        fake.round();
    }
    let refund = read_state(|s| s.job(0)).unwrap().funds.unwrap().refund.unwrap();
    assert!(matches!(refund.status, RefundStatus::Done { .. }), "{refund:?}");
    assert_eq!(fake.w().sent.iter().filter(|(to, _)| *to == owner()).map(|(_, a)| *a).sum::<u128>(), paid - spent);
    assert_eq!(read_state(|s| s.books()).refunded, paid - spent);
}

#[test]
fn an_llm_upgrade_waits_for_the_answer_in_flight_and_puts_the_llm_back_to_work() {
    let fake = Fake::new();
    let (_, _, llm) = made_mainer(&fake);
    let v2 = setup(&[(ArtefactKind::LlmWasm, vec![9; 1000])]).remove(0);
    fake.w().busy.insert(llm);
    let id = fleet(FleetKind::UpgradeLlms, &v2, vec![llm], 1);
    for _ in 0..5 {
        fake.w().now += 3_000_000_000;
        fake.round();
    }
    assert!(fake.w().draining.contains(&llm), "drained: no new work for it");
    assert_eq!(fake.calls("stop_canister"), 0, "not stopped while it generates an answer");
    fake.w().busy.clear();
    let job = fleet_rounds(&fake, id);
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    assert!(!fake.w().draining.contains(&llm), "back to work");
    let log = fake.w().log.clone();
    let at = |m: &str| log.iter().position(|l| l.starts_with(m)).unwrap();
    let last_drain_call = log.iter().rposition(|l| l.starts_with("set_llm_draining")).unwrap();
    assert!(at("set_llm_draining") < at("stop_canister"));
    assert!(last_drain_call > at("start_canister"), "undrained after the restart");
}

#[test]
fn a_failed_llm_upgrade_leaves_the_llm_running_and_at_work() {
    let fake = Fake::new();
    let (_, _, llm) = made_mainer(&fake);
    let v2 = setup(&[(ArtefactKind::LlmWasm, vec![9; 1000])]).remove(0);
    fake.w().fail_installs = true;
    let id = fleet(FleetKind::UpgradeLlms, &v2, vec![llm], 1);
    let job = fleet_rounds(&fake, id);
    assert!(matches!(job.status, JobStatus::Failed { .. }), "{job:?}");
    assert!(fake.w().canisters[&llm].running, "started again");
    assert!(!fake.w().draining.contains(&llm), "not left drained");
}

#[test]
fn an_llm_drained_by_a_failed_upgrade_is_put_back_to_work_once_its_controller_answers() {
    let fake = Fake::new();
    let (_, controller, llm) = made_mainer(&fake);
    let v2 = setup(&[(ArtefactKind::LlmWasm, vec![9; 1000])]).remove(0);
    fake.w().fail_installs = true;
    let id = fleet(FleetKind::UpgradeLlms, &v2, vec![llm], 1);
    let step = || read_state(|s| s.fleet_job(id)).unwrap().targets[0].step;
    let restoring = rounds_until(&fake, 30, || (step() == FleetStep::Restore).then_some(()));
    assert!(restoring.is_some(), "the upgrade gave up: {:?}", step());
    // Its controller is unreachable for longer than a step's 5 attempts.
    fake.w().canisters.get_mut(&controller).unwrap().running = false;
    for _ in 0..15 {
        fake.w().now += 1_000_000_000;
        fake.round();
    }
    assert_eq!(read_state(|s| s.fleet_job(id)).unwrap().status, JobStatus::Running, "still restoring");
    assert!(fake.w().draining.contains(&llm));
    fake.w().canisters.get_mut(&controller).unwrap().running = true;
    let job = fleet_rounds(&fake, id);
    assert!(matches!(job.status, JobStatus::Failed { .. }), "{job:?}");
    assert!(!fake.w().draining.contains(&llm), "back to work");
    assert!(fake.w().canisters[&llm].running);
}
