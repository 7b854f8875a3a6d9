//! The management canister `aaaaa-aa`: canister creation, code installation
//! (plain and chunked), settings, status, start/stop/delete, cycles, raw_rand,
//! `canister_info` with the canister history.

use candid::{CandidType, Decode, Encode, Nat, Principal};
use ic_management_canister_types as mgmt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::canister::{Canister, Origin, Request, RunStatus};
use crate::instance::{CanisterInstance, Invoke, Persist};
use crate::sim::{DEFAULT_PROVISIONAL_CYCLES, Simulator, not_found, out_of_cycles, trap_reject};
use crate::stable::StableMemory;
use crate::system_api::EntryKind;
use crate::types::{CallResult, Reject, RejectCode};

const MAX_CONTROLLERS: usize = 10;

/// How code is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallMode {
    Install,
    Reinstall,
    Upgrade {
        skip_pre_upgrade: bool,
        /// `keep` retains the heap (enhanced orthogonal persistence), `replace`
        /// or `None` gives the new code a fresh one.
        wasm_memory_persistence: Option<mgmt::WasmMemoryPersistence>,
    },
}

impl InstallMode {
    /// A plain upgrade: pre_upgrade runs, the heap is replaced.
    pub const UPGRADE: InstallMode = InstallMode::Upgrade { skip_pre_upgrade: false, wasm_memory_persistence: None };
}

impl From<mgmt::CanisterInstallMode> for InstallMode {
    fn from(m: mgmt::CanisterInstallMode) -> Self {
        match m {
            mgmt::CanisterInstallMode::Install => InstallMode::Install,
            mgmt::CanisterInstallMode::Reinstall => InstallMode::Reinstall,
            mgmt::CanisterInstallMode::Upgrade(flags) => InstallMode::Upgrade {
                skip_pre_upgrade: flags.as_ref().and_then(|f| f.skip_pre_upgrade).unwrap_or(false),
                wasm_memory_persistence: flags.and_then(|f| f.wasm_memory_persistence),
            },
        }
    }
}

/// A fault armed for tests: the next call of `method` to the management
/// canister (from `caller`, if set) is answered with `reject` instead of
/// being executed; the cycles attached to it come back.
#[derive(Clone, Debug)]
pub struct ManagementFault {
    pub method: String,
    pub caller: Option<Principal>,
    pub reject: Reject,
}

fn reject(code: RejectCode, error_code: &'static str, message: impl Into<String>) -> Reject {
    Reject::new(code, error_code, message)
}

fn bad_payload(method: &str, e: impl std::fmt::Display) -> Reject {
    reject(RejectCode::CanisterReject, "IC0406", format!("Management canister: invalid arguments to {method}: {e}"))
}

fn decode<T: CandidType + DeserializeOwned>(method: &str, payload: &[u8]) -> Result<T, Reject> {
    Decode!(payload, T).map_err(|e| bad_payload(method, e))
}

fn encode<T: CandidType>(value: &T) -> Vec<u8> {
    Encode!(value).expect("management replies encode")
}

fn nat_u64(n: &Nat) -> u64 {
    u64::try_from(n.0.clone()).unwrap_or(u64::MAX)
}

fn nat_u128(n: &Nat) -> u128 {
    u128::try_from(n.0.clone()).unwrap_or(u128::MAX)
}

/// The IC's two safety rules for `wasm_memory_persistence` on upgrade: it may
/// not be omitted when the old module uses enhanced orthogonal persistence, and
/// `keep` needs a new module that uses it.
fn memory_persistence_check(
    option: Option<mgmt::WasmMemoryPersistence>,
    old_eop: bool,
    new_eop: bool,
) -> Result<(), Reject> {
    match option {
        None if old_eop => Err(reject(
            RejectCode::CanisterError,
            "IC0504",
            "Missing upgrade option: Enhanced orthogonal persistence requires the `wasm_memory_persistence` upgrade option.",
        )),
        Some(mgmt::WasmMemoryPersistence::Keep) if !new_eop => Err(reject(
            RejectCode::CanisterError,
            "IC0504",
            "Invalid upgrade option: The `wasm_memory_persistence: opt Keep` upgrade option requires that the new canister module supports enhanced orthogonal persistence.",
        )),
        _ => Ok(()),
    }
}

/// The canister whose code a management call changes (`install_code`,
/// `install_chunked_code`, `uninstall_code`): such calls wait while that
/// canister has an execution paused between slices.
pub(crate) fn code_change_target(method: &str, payload: &[u8]) -> Option<Principal> {
    #[derive(candid::Deserialize, CandidType)]
    struct CanisterField {
        canister_id: Principal,
    }
    #[derive(candid::Deserialize, CandidType)]
    struct TargetField {
        target_canister: Principal,
    }
    match method {
        "install_code" | "uninstall_code" => Decode!(payload, CanisterField).ok().map(|a| a.canister_id),
        "install_chunked_code" => Decode!(payload, TargetField).ok().map(|a| a.target_canister),
        _ => None,
    }
}

fn not_controller(id: Principal) -> Reject {
    reject(RejectCode::CanisterError, "IC0512", format!("Only the controllers of the canister {id} can control it."))
}

impl Simulator {
    /// Makes the next call of `method` to the management canister (any
    /// method: `create_canister`, `install_code`, `stop_canister`,
    /// `canister_status`, `deposit_cycles`, ...) fail with `reject`, so that
    /// a caller's failure branches can be tested. Faults queue up: arming the
    /// same method twice fails its next two calls.
    pub fn fail_next_management_call(&mut self, method: &str, reject: Reject) {
        self.management_faults.push(ManagementFault { method: method.to_string(), caller: None, reject });
    }

    /// Like [`fail_next_management_call`](Self::fail_next_management_call),
    /// for calls made by `caller` only.
    pub fn fail_next_management_call_from(&mut self, caller: Principal, method: &str, reject: Reject) {
        self.management_faults.push(ManagementFault { method: method.to_string(), caller: Some(caller), reject });
    }

    /// Faults armed and not yet triggered.
    pub fn pending_management_faults(&self) -> &[ManagementFault] {
        &self.management_faults
    }

    /// Disarms every fault.
    pub fn clear_management_faults(&mut self) {
        self.management_faults.clear();
    }

    /// Handles a request to `aaaaa-aa`, from a canister or an ingress message.
    pub(crate) fn management_request(&mut self, req: Request) {
        let armed = self
            .management_faults
            .iter()
            .position(|f| f.method == req.method && f.caller.is_none_or(|c| c == req.sender));
        if let Some(i) = armed {
            let fault = self.management_faults.remove(i);
            return self.respond(req.origin, Err(fault.reject), req.cycles);
        }
        let from_canister = matches!(req.origin, Origin::Canister { .. });
        let mut refund = req.cycles;
        let result = match req.method.as_str() {
            "stop_canister" => match self.stop_request(req.sender, &req.payload, req.origin) {
                Ok(true) => Ok(encode(&())),
                // Answered when the canister has stopped.
                Ok(false) => return,
                Err(r) => Err(r),
            },
            "canister_info" if !from_canister => {
                Err(reject(RejectCode::CanisterReject, "IC0406", "canister_info can only be called by canisters"))
            }
            "create_canister" if !from_canister => Err(reject(
                RejectCode::CanisterReject,
                "IC0406",
                "create_canister can only be called by other canisters; use provisional_create_canister_with_cycles",
            )),
            "create_canister" => {
                let r = self.mgmt_create_canister(req.sender, &req.payload, req.cycles);
                if r.is_ok() {
                    refund = 0;
                }
                r
            }
            "deposit_cycles" => {
                let r = self.mgmt_deposit_cycles(&req.payload, req.cycles);
                if r.is_ok() {
                    refund = 0;
                }
                r
            }
            "install_code" | "install_chunked_code" => {
                // An install spans as many rounds as its slices (DTS); the
                // target takes no message until it is answered.
                let target = code_change_target(&req.method, &req.payload);
                let executed =
                    |sim: &Self| target.and_then(|t| sim.canisters.get(&t)).map_or(0, |c| c.instructions_executed);
                let before = executed(self);
                let result = self.management_call(req.sender, &req.method, &req.payload);
                let used = executed(self).saturating_sub(before);
                if let Some(target) = target.filter(|t| self.canisters.contains_key(t)) {
                    let slice = self.config.limits.instructions_per_install_slice;
                    let origin = req.origin;
                    return self
                        .finish_after_slices(target, used, slice, move |sim| sim.respond(origin, result, refund));
                }
                result
            }
            method => self.management_call(req.sender, method, &req.payload),
        };
        self.respond(req.origin, result, refund);
    }

    /// Management methods that answer at once and take no cycles.
    fn management_call(&mut self, sender: Principal, method: &str, payload: &[u8]) -> CallResult {
        match method {
            "provisional_create_canister_with_cycles" => {
                let args: mgmt::ProvisionalCreateCanisterWithCyclesArgs = decode(method, payload)?;
                if args.specified_id.is_some() {
                    return Err(bad_payload(method, "specified_id is not supported by the simulator"));
                }
                let cycles = args.amount.as_ref().map_or(DEFAULT_PROVISIONAL_CYCLES, nat_u128);
                let id = self.create_canister_with_settings(sender, args.settings, cycles)?;
                Ok(encode(&mgmt::CanisterIdRecord { canister_id: id }))
            }
            "provisional_top_up_canister" => {
                let args: mgmt::ProvisionalTopUpCanisterArgs = decode(method, payload)?;
                let c = self.canisters.get_mut(&args.canister_id).ok_or_else(|| not_found(args.canister_id))?;
                c.cycles += nat_u128(&args.amount);
                Ok(encode(&()))
            }
            "install_code" => {
                let args: mgmt::InstallCodeArgs = decode(method, payload)?;
                self.controlled(sender, args.canister_id)?;
                self.install(sender, args.canister_id, &args.wasm_module, args.arg, args.mode.into())?;
                Ok(encode(&()))
            }
            "canister_info" => {
                let args: mgmt::CanisterInfoArgs = decode(method, payload)?;
                let c = self.canisters.get(&args.canister_id).ok_or_else(|| not_found(args.canister_id))?;
                let wanted = args.num_requested_changes.unwrap_or(0) as usize;
                let skip = c.history.len().saturating_sub(wanted);
                Ok(encode(&mgmt::CanisterInfoResult {
                    total_num_changes: c.total_changes,
                    recent_changes: c.history.iter().skip(skip).cloned().collect(),
                    module_hash: c.module_hash.map(|h| h.to_vec()),
                    controllers: c.controllers.clone(),
                }))
            }
            "install_chunked_code" => {
                let args: mgmt::InstallChunkedCodeArgs = decode(method, payload)?;
                self.install_chunked(sender, args)?;
                Ok(encode(&()))
            }
            "uninstall_code" => {
                let args: mgmt::UninstallCodeArgs = decode(method, payload)?;
                self.controlled(sender, args.canister_id)?;
                self.uninstall(args.canister_id, "Canister has been uninstalled.");
                self.record_change(args.canister_id, sender, mgmt::ChangeDetails::CodeUninstall);
                Ok(encode(&()))
            }
            "upload_chunk" => {
                let args: mgmt::UploadChunkArgs = decode(method, payload)?;
                self.controlled_or_self(sender, args.canister_id)?;
                let limits = self.config.limits.clone();
                if args.chunk.len() > limits.max_chunk_bytes {
                    return Err(reject(
                        RejectCode::CanisterReject,
                        "IC0406",
                        format!(
                            "Wasm chunk of {} bytes exceeds the maximum of {} bytes",
                            args.chunk.len(),
                            limits.max_chunk_bytes
                        ),
                    ));
                }
                // The store's canister pays for the upload's instructions.
                let fee = self.config.costs.upload_chunk_cost();
                let c = self.canisters.get_mut(&args.canister_id).unwrap();
                if c.cycles < fee + c.freezing_reserve(&self.config.costs) {
                    return Err(out_of_cycles(args.canister_id, fee));
                }
                let hash: [u8; 32] = Sha256::digest(&args.chunk).into();
                if !c.chunks.contains_key(&hash) && c.chunks.len() >= limits.max_chunks_in_store {
                    return Err(reject(
                        RejectCode::CanisterReject,
                        "IC0406",
                        format!(
                            "Wasm chunk store of canister {} is full ({} chunks)",
                            args.canister_id, limits.max_chunks_in_store
                        ),
                    ));
                }
                c.chunks.insert(hash, args.chunk);
                c.cycles -= fee;
                Ok(encode(&mgmt::ChunkHash { hash: hash.to_vec() }))
            }
            "stored_chunks" => {
                let args: mgmt::CanisterIdRecord = decode(method, payload)?;
                self.controlled_or_self(sender, args.canister_id)?;
                let hashes: Vec<mgmt::ChunkHash> = self.canisters[&args.canister_id]
                    .chunks
                    .keys()
                    .map(|h| mgmt::ChunkHash { hash: h.to_vec() })
                    .collect();
                Ok(encode(&hashes))
            }
            "clear_chunk_store" => {
                let args: mgmt::CanisterIdRecord = decode(method, payload)?;
                self.controlled_or_self(sender, args.canister_id)?;
                self.canisters.get_mut(&args.canister_id).unwrap().chunks.clear();
                Ok(encode(&()))
            }
            "update_settings" => {
                let args: mgmt::UpdateSettingsArgs = decode(method, payload)?;
                self.controlled(sender, args.canister_id)?;
                self.apply_settings(args.canister_id, &args.settings)?;
                let c = self.canisters.get_mut(&args.canister_id).unwrap();
                c.version += 1;
                if args.settings.controllers.is_some() {
                    let controllers = c.controllers.clone();
                    let details = mgmt::ChangeDetails::ControllersChange(mgmt::ControllersChangeRecord { controllers });
                    self.record_change(args.canister_id, sender, details);
                }
                Ok(encode(&()))
            }
            "canister_status" => {
                let args: mgmt::CanisterIdRecord = decode(method, payload)?;
                self.controlled_or_self(sender, args.canister_id)?;
                Ok(encode(&self.status_of(args.canister_id)))
            }
            "start_canister" => {
                let args: mgmt::CanisterIdRecord = decode(method, payload)?;
                self.controlled(sender, args.canister_id)?;
                let c = self.canisters.get_mut(&args.canister_id).unwrap();
                let waiters = match std::mem::replace(&mut c.status, RunStatus::Running) {
                    RunStatus::Stopping(w) => w,
                    _ => Vec::new(),
                };
                let cancelled = reject(
                    RejectCode::CanisterError,
                    "IC0510",
                    "Canister started again while stopping: stop_canister cancelled",
                );
                for origin in waiters {
                    self.respond(origin, Err(cancelled.clone()), 0);
                }
                Ok(encode(&()))
            }
            "delete_canister" => {
                let args: mgmt::CanisterIdRecord = decode(method, payload)?;
                self.controlled(sender, args.canister_id)?;
                if !matches!(self.canisters[&args.canister_id].status, RunStatus::Stopped) {
                    return Err(reject(
                        RejectCode::CanisterError,
                        "IC0510",
                        format!("Canister {} must be stopped before it is deleted.", args.canister_id),
                    ));
                }
                self.canisters.remove(&args.canister_id);
                Ok(encode(&()))
            }
            "raw_rand" => Ok(encode(&self.next_random().to_vec())),
            other => Err(reject(
                RejectCode::CanisterError,
                "IC0536",
                format!("Management canister has no method '{other}' (or the simulator does not model it)"),
            )),
        }
    }

    fn controlled(&self, sender: Principal, id: Principal) -> Result<(), Reject> {
        let c = self.canisters.get(&id).ok_or_else(|| not_found(id))?;
        if c.is_controller(&sender) { Ok(()) } else { Err(not_controller(id)) }
    }

    fn controlled_or_self(&self, sender: Principal, id: Principal) -> Result<(), Reject> {
        if sender == id && self.canisters.contains_key(&id) { Ok(()) } else { self.controlled(sender, id) }
    }

    fn mgmt_create_canister(&mut self, sender: Principal, payload: &[u8], cycles: u128) -> CallResult {
        let args: mgmt::CreateCanisterArgs = decode("create_canister", payload)?;
        let fee = self.config.costs.create_canister_fee;
        if cycles < fee {
            return Err(reject(
                RejectCode::CanisterError,
                "IC0520",
                format!(
                    "Creating a canister requires a fee of {fee} that is deducted from the canister's initial balance but only {cycles} cycles were received with the create_canister request."
                ),
            ));
        }
        let id = self.create_canister_with_settings(sender, args.settings, cycles - fee)?;
        Ok(encode(&mgmt::CanisterIdRecord { canister_id: id }))
    }

    fn mgmt_deposit_cycles(&mut self, payload: &[u8], cycles: u128) -> CallResult {
        let args: mgmt::CanisterIdRecord = decode("deposit_cycles", payload)?;
        let c = self.canisters.get_mut(&args.canister_id).ok_or_else(|| not_found(args.canister_id))?;
        c.cycles += cycles;
        Ok(encode(&()))
    }

    /// Returns true when the canister is already stopped (answer now).
    fn stop_request(&mut self, sender: Principal, payload: &[u8], origin: Origin) -> Result<bool, Reject> {
        let args: mgmt::CanisterIdRecord = decode("stop_canister", payload)?;
        self.controlled(sender, args.canister_id)?;
        let c = self.canisters.get_mut(&args.canister_id).unwrap();
        match &mut c.status {
            RunStatus::Stopped => Ok(true),
            RunStatus::Stopping(waiters) => {
                waiters.push(origin);
                Ok(false)
            }
            RunStatus::Running => {
                c.status = RunStatus::Stopping(vec![origin]);
                Ok(false)
            }
        }
    }

    /// Creates a canister with `settings` (controllers default to `creator`).
    pub(crate) fn create_canister_with_settings(
        &mut self,
        creator: Principal,
        settings: Option<mgmt::CanisterSettings>,
        cycles: u128,
    ) -> Result<Principal, Reject> {
        let id = self.new_canister_id();
        let freezing = self.config.limits.default_freezing_threshold_seconds;
        self.canisters.insert(id, Canister::new(vec![creator], cycles, freezing));
        if let Some(s) = settings
            && let Err(r) = self.apply_settings(id, &s)
        {
            self.canisters.remove(&id);
            return Err(r);
        }
        let controllers = self.canisters[&id].controllers.clone();
        let details =
            mgmt::ChangeDetails::Creation(mgmt::CreationRecord { controllers, environment_variables_hash: None });
        self.record_change(id, creator, details);
        Ok(id)
    }

    fn apply_settings(&mut self, id: Principal, s: &mgmt::CanisterSettings) -> Result<(), Reject> {
        if let Some(controllers) = &s.controllers
            && controllers.len() > MAX_CONTROLLERS
        {
            return Err(bad_payload("settings", format!("at most {MAX_CONTROLLERS} controllers are allowed")));
        }
        let c = self.canisters.get_mut(&id).ok_or_else(|| not_found(id))?;
        if let Some(controllers) = &s.controllers {
            let mut unique = controllers.clone();
            unique.sort();
            unique.dedup();
            c.controllers = unique;
        }
        if let Some(n) = &s.freezing_threshold {
            c.settings.freezing_threshold_seconds = nat_u64(n);
        }
        if let Some(n) = &s.wasm_memory_limit {
            c.settings.wasm_memory_limit = nat_u64(n);
        }
        if let Some(n) = &s.wasm_memory_threshold {
            c.settings.wasm_memory_threshold = nat_u64(n);
        }
        if let Some(n) = &s.compute_allocation {
            c.settings.compute_allocation = nat_u64(n);
        }
        if let Some(n) = &s.memory_allocation {
            c.settings.memory_allocation = nat_u64(n);
        }
        if let Some(n) = &s.reserved_cycles_limit {
            c.settings.reserved_cycles_limit = nat_u128(n);
        }
        if let Some(v) = &s.log_visibility {
            c.settings.log_visibility = v.clone();
        }
        let limit = self.heap_limit(id);
        if let Some(inst) = self.canisters.get_mut(&id).unwrap().instance.as_mut() {
            inst.set_heap_limit(limit);
        }
        Ok(())
    }

    fn heap_limit(&self, id: Principal) -> u64 {
        let c = &self.canisters[&id];
        let wasm64 = c.instance.as_ref().is_some_and(|i| i.wasm64());
        self.heap_limit_for(c, wasm64)
    }

    fn heap_limit_for(&self, c: &Canister, wasm64: bool) -> u64 {
        let arch =
            if wasm64 { self.config.limits.max_wasm64_heap_bytes } else { self.config.limits.max_wasm32_heap_bytes };
        match c.settings.wasm_memory_limit {
            0 => arch,
            n => n.min(arch),
        }
    }

    pub(crate) fn status_of(&self, id: Principal) -> mgmt::CanisterStatusResult {
        let c = &self.canisters[&id];
        let costs = &self.config.costs;
        let heap = c.instance.as_ref().map_or(0, |i| i.heap_bytes());
        let module = c.instance.as_ref().map_or(0, |i| i.module.installed_size as u64);
        let chunks: u64 = c.chunks.values().map(|x| x.len() as u64).sum();
        mgmt::CanisterStatusResult {
            status: match c.status {
                RunStatus::Running => mgmt::CanisterStatusType::Running,
                RunStatus::Stopping(_) => mgmt::CanisterStatusType::Stopping,
                RunStatus::Stopped => mgmt::CanisterStatusType::Stopped,
            },
            ready_for_migration: false,
            version: c.version,
            settings: mgmt::DefiniteCanisterSettings {
                controllers: c.controllers.clone(),
                compute_allocation: Nat::from(c.settings.compute_allocation),
                memory_allocation: Nat::from(c.settings.memory_allocation),
                freezing_threshold: Nat::from(c.settings.freezing_threshold_seconds),
                reserved_cycles_limit: Nat::from(c.settings.reserved_cycles_limit),
                log_visibility: c.settings.log_visibility.clone(),
                log_memory_limit: Nat::from(4096u64),
                wasm_memory_limit: Nat::from(c.settings.wasm_memory_limit),
                wasm_memory_threshold: Nat::from(c.settings.wasm_memory_threshold),
                environment_variables: Vec::new(),
            },
            module_hash: c.module_hash.map(|h| h.to_vec()),
            memory_size: Nat::from(c.memory_bytes()),
            memory_metrics: mgmt::MemoryMetrics {
                wasm_memory_size: Nat::from(heap),
                stable_memory_size: Nat::from(c.stable.size_bytes()),
                global_memory_size: Nat::from(0u64),
                wasm_binary_size: Nat::from(module),
                custom_sections_size: Nat::from(0u64),
                canister_history_size: Nat::from(0u64),
                wasm_chunk_store_size: Nat::from(chunks),
                snapshots_size: Nat::from(0u64),
                log_memory_store_size: Nat::from(0u64),
            },
            cycles: Nat::from(c.cycles),
            reserved_cycles: Nat::from(0u64),
            idle_cycles_burned_per_day: Nat::from(
                costs.idle_cycles_per_day(c.memory_bytes(), c.settings.compute_allocation),
            ),
            query_stats: mgmt::QueryStats {
                num_calls_total: Nat::from(0u64),
                num_instructions_total: Nat::from(0u64),
                request_payload_bytes_total: Nat::from(0u64),
                response_payload_bytes_total: Nat::from(0u64),
            },
        }
    }

    fn install_chunked(&mut self, sender: Principal, args: mgmt::InstallChunkedCodeArgs) -> Result<(), Reject> {
        let target = args.target_canister;
        let store = args.store_canister.unwrap_or(target);
        self.controlled(sender, target)?;
        self.controlled_or_self(sender, store)?;
        let chunks = &self.canisters[&store].chunks;
        let mut wasm = Vec::new();
        for h in &args.chunk_hashes_list {
            let chunk = <[u8; 32]>::try_from(h.hash.as_slice()).ok().and_then(|k| chunks.get(&k)).ok_or_else(|| {
                reject(
                    RejectCode::CanisterReject,
                    "IC0406",
                    format!("Chunk {} is not in the chunk store of canister {store}", hex::encode(&h.hash)),
                )
            })?;
            wasm.extend_from_slice(chunk);
        }
        let actual: [u8; 32] = Sha256::digest(&wasm).into();
        if actual.as_slice() != args.wasm_module_hash.as_slice() {
            return Err(reject(
                RejectCode::CanisterReject,
                "IC0406",
                format!(
                    "Wasm module hash {} does not match the hash of the assembled chunks {}",
                    hex::encode(&args.wasm_module_hash),
                    hex::encode(actual)
                ),
            ));
        }
        self.install(sender, target, &wasm, args.arg, args.mode.into())
    }

    /// Installs, reinstalls or upgrades code; all or nothing. The stages are
    /// the IC's: `canister_pre_upgrade` on the old code (upgrade), a new
    /// instance (with the old heap under `wasm_memory_persistence = keep`),
    /// the module's start function, then `canister_init` or
    /// `canister_post_upgrade`; start and the hook run with the canister's
    /// stable memory (empty after install and reinstall) and share the
    /// install budget.
    pub(crate) fn install(
        &mut self,
        sender: Principal,
        id: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
        mode: InstallMode,
    ) -> Result<(), Reject> {
        let invalid = |e: String| reject(RejectCode::CanisterError, "IC0505", format!("Error from Canister {id}: {e}"));
        let compiled = self.modules.get(wasm).map_err(invalid)?;
        let c = self.canisters.get(&id).ok_or_else(|| not_found(id))?;
        match mode {
            InstallMode::Install if c.instance.is_some() => {
                return Err(reject(
                    RejectCode::CanisterError,
                    "IC0538",
                    format!(
                        "Canister {id} cannot be installed because the canister is not empty. Try installing with mode='reinstall' instead."
                    ),
                ));
            }
            InstallMode::Upgrade { .. } if c.instance.is_none() => {
                return Err(reject(
                    RejectCode::CanisterError,
                    "IC0537",
                    format!("Canister {id} is empty: there is nothing to upgrade"),
                ));
            }
            _ => {}
        }
        let limit = self.config.limits.instructions_per_install;
        // Paid at the new module's instruction price (wasm64 costs double).
        let compiled_wasm64 = compiled.wasm64;
        let Some(prepaid) = self.prepay_as(id, limit, compiled_wasm64) else {
            return Err(out_of_cycles(id, self.config.costs.execution_cost(limit, compiled.wasm64)));
        };
        let mut used = 0u64;
        let upgrade = matches!(mode, InstallMode::Upgrade { .. });
        let keep_heap = matches!(
            mode,
            InstallMode::Upgrade { wasm_memory_persistence: Some(mgmt::WasmMemoryPersistence::Keep), .. }
        );
        let stable_backup = upgrade.then(|| self.canisters[&id].stable.clone_contents());
        let fail = |sim: &mut Self, used: u64, err: Reject| {
            sim.refund_install(id, prepaid, used, compiled_wasm64);
            if let Some(b) = stable_backup.as_ref() {
                sim.canisters.get_mut(&id).unwrap().stable = b.clone_contents();
            }
            Err(err)
        };

        // 1. pre_upgrade on the old code; under `keep` its heap is what the
        //    new code takes over.
        let mut kept_heap = None;
        if let InstallMode::Upgrade { skip_pre_upgrade, .. } = mode {
            let has_hook = self.canisters[&id].instance.as_ref().unwrap().has_export("canister_pre_upgrade");
            if has_hook && !skip_pre_upgrade {
                let env = self.env(id, EntryKind::PreUpgrade, sender, "", Vec::new(), limit, None);
                let persist = if keep_heap { Persist::StableOnlyWithHeap } else { Persist::StableOnly };
                let mut outcome = self.run(id, env, Invoke::Export("canister_pre_upgrade"), persist);
                used += outcome.instructions;
                kept_heap = outcome.heap_after.take();
                if let Some(trap) = self.apply_outcome(id, None, outcome, 0, "canister_pre_upgrade".into()) {
                    return fail(self, used, trap_reject(id, &trap));
                }
            }
            if keep_heap && kept_heap.is_none() {
                kept_heap = Some(self.canisters[&id].instance.as_ref().unwrap().heap_contents());
            }
        }

        // 2. The rules of `wasm_memory_persistence`, checked after pre_upgrade as the IC does.
        if let InstallMode::Upgrade { wasm_memory_persistence, .. } = mode {
            let old_eop = self.canisters[&id].instance.as_ref().is_some_and(|i| i.module.eop);
            if let Err(e) = memory_persistence_check(wasm_memory_persistence, old_eop, compiled.eop) {
                return fail(self, used, e);
            }
        }

        // 3. A fresh instance of the new code: a fresh heap, or the kept one.
        let heap_limit = self.heap_limit_for(&self.canisters[&id], compiled.wasm64);
        let linker = self.rt.linker(compiled.wasm64);
        let mut fresh = match CanisterInstance::new(linker.engine(), linker, compiled.clone(), heap_limit) {
            Ok(i) => i,
            Err(e) => return fail(self, used, invalid(e)),
        };
        if let Some(heap) = &kept_heap
            && let Err(e) = fresh.adopt_heap(heap)
        {
            return fail(self, used, invalid(e));
        }
        let c = self.canisters.get_mut(&id).unwrap();
        let old_instance = c.instance.replace(fresh);
        let old_stable = (!upgrade).then(|| std::mem::take(&mut c.stable));
        let old_timer = std::mem::take(&mut c.global_timer);
        let old_certified = c.certified_data.clone();
        if !upgrade {
            c.certified_data.clear();
        }

        // 4. The start function, then canister_init or canister_post_upgrade.
        let (hook, kind) = if upgrade {
            ("canister_post_upgrade", EntryKind::PostUpgrade)
        } else {
            ("canister_init", EntryKind::Init)
        };
        let mut trap = None;
        if compiled.has_start {
            let env = self.env(id, EntryKind::Start, sender, "", Vec::new(), limit.saturating_sub(used), None);
            let outcome = self.run(id, env, Invoke::Start, Persist::Commit);
            used += outcome.instructions;
            trap = self.apply_outcome(id, None, outcome, 0, "start".into());
        }
        if trap.is_none() && self.canisters[&id].instance.as_ref().unwrap().has_export(hook) {
            let env = self.env(id, kind, sender, "", arg, limit.saturating_sub(used), None);
            let outcome = self.run(id, env, Invoke::Export(hook), Persist::Commit);
            used += outcome.instructions;
            trap = self.apply_outcome(id, None, outcome, 0, hook.into());
        }
        self.refund_install(id, prepaid, used, compiled_wasm64);

        let c = self.canisters.get_mut(&id).unwrap();
        if let Some(trap) = trap {
            // Roll back to the canister as it was.
            c.instance = old_instance;
            c.stable = match (old_stable, stable_backup) {
                (Some(s), _) => s,
                (None, Some(b)) => b,
                (None, None) => StableMemory::default(),
            };
            c.global_timer = old_timer;
            c.certified_data = old_certified;
            return Err(trap_reject(id, &trap));
        }
        let module_hash: [u8; 32] = Sha256::digest(wasm).into();
        c.module_hash = Some(module_hash);
        c.version += 1;
        let deployment = match (upgrade, old_instance.is_some()) {
            (true, _) => mgmt::CodeDeploymentMode::Upgrade,
            (false, true) => mgmt::CodeDeploymentMode::Reinstall,
            (false, false) => mgmt::CodeDeploymentMode::Install,
        };
        let details = mgmt::ChangeDetails::CodeDeployment(mgmt::CodeDeploymentRecord {
            mode: deployment,
            module_hash: module_hash.to_vec(),
        });
        self.record_change(id, sender, details);
        let c = self.canisters.get_mut(&id).unwrap();
        if !upgrade && old_instance.is_some() {
            // Reinstall: the old code's open calls can no longer be answered.
            let owed = c.drop_call_contexts();
            for (origin, refund) in owed {
                let r = reject(RejectCode::CanisterError, "IC0537", "Canister has been reinstalled.");
                self.respond(origin, Err(r), refund);
            }
        }
        Ok(())
    }

    fn refund_install(&mut self, id: Principal, prepaid: u128, used: u64, wasm64: bool) {
        let cost = self.config.costs.execution_cost(used, wasm64).min(prepaid);
        let c = self.canisters.get_mut(&id).unwrap();
        // The instructions were counted by `apply_outcome` for each stage.
        c.cycles += prepaid - cost;
        c.cycles_burned_executing += cost;
    }

    /// Appends to the canister's history, as `canister_info` reports it.
    fn record_change(&mut self, id: Principal, sender: Principal, details: mgmt::ChangeDetails) {
        let now = self.time_ns;
        let origin = if self.canisters.contains_key(&sender) {
            mgmt::ChangeOrigin::FromCanister(mgmt::FromCanisterRecord { canister_id: sender, canister_version: None })
        } else {
            mgmt::ChangeOrigin::FromUser(mgmt::FromUserRecord { user_id: sender })
        };
        let Some(c) = self.canisters.get_mut(&id) else { return };
        c.total_changes += 1;
        c.history.push_back(mgmt::Change {
            timestamp_nanos: now,
            canister_version: c.version,
            origin,
            details: Some(details),
        });
        if c.history.len() > crate::canister::HISTORY_KEPT {
            c.history.pop_front();
        }
    }

    pub(crate) fn uninstall(&mut self, id: Principal, why: &str) {
        let Some(c) = self.canisters.get_mut(&id) else { return };
        c.instance = None;
        c.module_hash = None;
        c.stable = StableMemory::default();
        c.global_timer = 0;
        c.certified_data.clear();
        c.version += 1;
        let owed = c.drop_call_contexts();
        for (origin, refund) in owed {
            self.respond(origin, Err(reject(RejectCode::CanisterError, "IC0537", why)), refund);
        }
    }
}
