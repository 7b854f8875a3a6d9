//! What the creator's jobs ask of the IC, behind one small trait: time,
//! cycles, calls to canisters and the management canister. [`IcRuntime`] is
//! the ic-cdk implementation; unit tests use a fake (`testing.rs`) that can
//! fail a stop, lose a reply, lack `return_cycles` or trap mid-step.

use std::future::Future;

use candid::Principal;

/// Reject code of a call whose outcome is unknown (a bounded wait ran out,
/// or the reply was lost): the callee may or may not have acted.
pub const SYS_UNKNOWN: u32 = 6;

/// Modules above this size are installed through the chunk store.
pub const CHUNKED_INSTALL_BYTES: usize = 1_800_000;
/// Bytes per `upload_chunk` of a module (the IC's limit is 1 MiB).
pub const WASM_CHUNK_BYTES: usize = 1_000_000;

/// A failed call: its reject code (0 when it was never made) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    pub code: u32,
    pub message: String,
}

impl CallError {
    /// The callee may have acted although no reply came.
    pub fn outcome_unknown(&self) -> bool {
        self.code == SYS_UNKNOWN
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (reject code {})", self.message, self.code)
    }
}

/// What `canister_status` tells a controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanisterInfo {
    pub module_hash: Option<Vec<u8>>,
    pub controllers: Vec<Principal>,
    pub cycles: u128,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallMode {
    Install,
    Upgrade,
}

/// A module to install, by chunks already in a chunk store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedModule {
    /// The canister whose chunk store holds the chunks.
    pub store: Principal,
    pub chunk_hashes: Vec<Vec<u8>>,
    pub wasm_hash: Vec<u8>,
}

/// Everything the creator's jobs ask of the IC.
#[allow(async_fn_in_trait)]
pub trait Runtime {
    fn time(&self) -> u64;
    fn canister_self(&self) -> Principal;
    /// Cycles the creator may spend now.
    fn liquid_cycles(&self) -> u128;
    fn create_canister_fee(&self) -> u128;
    /// Runs `f` in the background (a message of its own on the IC).
    fn spawn(&self, f: impl Future<Output = ()> + 'static);

    async fn call_raw(&self, canister: Principal, method: &'static str, arg: Vec<u8>) -> Result<Vec<u8>, CallError>;
    /// A call with `cycles` attached that always gets its answer (unbounded
    /// wait): on a reject the cycles come back, so a refund is never lost
    /// in flight.
    async fn call_with_cycles(
        &self,
        canister: Principal,
        method: &'static str,
        arg: Vec<u8>,
        cycles: u128,
    ) -> Result<Vec<u8>, CallError>;
    /// Gives `cycles` to `canister` (the management canister's `deposit_cycles`).
    async fn deposit_cycles(&self, canister: Principal, cycles: u128) -> Result<(), CallError>;

    async fn create_canister(&self, controllers: Vec<Principal>, cycles: u128) -> Result<Principal, CallError>;
    async fn canister_info(&self, canister: Principal) -> Result<CanisterInfo, CallError>;
    async fn set_controllers(&self, canister: Principal, controllers: Vec<Principal>) -> Result<(), CallError>;
    async fn install_code(
        &self,
        mode: InstallMode,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
    ) -> Result<(), CallError>;
    async fn clear_chunk_store(&self, canister: Principal) -> Result<(), CallError>;
    /// Stores a chunk in `store`'s chunk store; returns its hash.
    async fn upload_chunk(&self, store: Principal, chunk: Vec<u8>) -> Result<Vec<u8>, CallError>;
    async fn install_chunked_code(
        &self,
        mode: InstallMode,
        target: Principal,
        module: ChunkedModule,
        arg: Vec<u8>,
    ) -> Result<(), CallError>;
    async fn stop_canister(&self, canister: Principal) -> Result<(), CallError>;
    async fn start_canister(&self, canister: Principal) -> Result<(), CallError>;
    async fn delete_canister(&self, canister: Principal) -> Result<(), CallError>;
}

// ----------------------------------------------------------------------
// The IC
// ----------------------------------------------------------------------

/// The runtime of the deployed canister: ic-cdk.
#[derive(Clone, Copy, Debug, Default)]
pub struct IcRuntime;

mod cdk {
    use ic_cdk::call::{CallFailed, Error};

    use super::CallError;

    pub fn call_failed(e: CallFailed) -> CallError {
        match e {
            CallFailed::CallRejected(r) => CallError { code: r.raw_reject_code(), message: r.reject_message().into() },
            other => CallError { code: 0, message: other.to_string() },
        }
    }

    pub fn error(e: Error) -> CallError {
        match e {
            Error::CallRejected(r) => CallError { code: r.raw_reject_code(), message: r.reject_message().into() },
            other => CallError { code: 0, message: other.to_string() },
        }
    }
}

fn cdk_mode(mode: InstallMode) -> ic_cdk::management_canister::CanisterInstallMode {
    use ic_cdk::management_canister::{CanisterInstallMode, UpgradeFlags};
    match mode {
        InstallMode::Install => CanisterInstallMode::Install,
        InstallMode::Upgrade => {
            CanisterInstallMode::Upgrade(Some(UpgradeFlags { skip_pre_upgrade: None, wasm_memory_persistence: None }))
        }
    }
}

impl Runtime for IcRuntime {
    fn time(&self) -> u64 {
        ic_cdk::api::time()
    }

    fn canister_self(&self) -> Principal {
        ic_cdk::api::canister_self()
    }

    fn liquid_cycles(&self) -> u128 {
        ic_cdk::api::canister_liquid_cycle_balance()
    }

    fn create_canister_fee(&self) -> u128 {
        ic_cdk::api::cost_create_canister()
    }

    fn spawn(&self, f: impl Future<Output = ()> + 'static) {
        ic_cdk::futures::spawn(f)
    }

    async fn call_raw(&self, canister: Principal, method: &'static str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let reply = ic_cdk::call::Call::bounded_wait(canister, method).take_raw_args(arg).await;
        reply.map(|r| r.into_bytes()).map_err(cdk::call_failed)
    }

    async fn call_with_cycles(
        &self,
        canister: Principal,
        method: &'static str,
        arg: Vec<u8>,
        cycles: u128,
    ) -> Result<Vec<u8>, CallError> {
        let reply = ic_cdk::call::Call::unbounded_wait(canister, method).take_raw_args(arg).with_cycles(cycles).await;
        reply.map(|r| r.into_bytes()).map_err(cdk::call_failed)
    }

    async fn deposit_cycles(&self, canister: Principal, cycles: u128) -> Result<(), CallError> {
        use ic_cdk::management_canister as mgmt;
        mgmt::deposit_cycles(&mgmt::DepositCyclesArgs { canister_id: canister }, cycles).await.map_err(cdk::error)
    }

    async fn create_canister(&self, controllers: Vec<Principal>, cycles: u128) -> Result<Principal, CallError> {
        use ic_cdk::management_canister as mgmt;
        let settings = mgmt::CanisterSettings { controllers: Some(controllers), ..Default::default() };
        let args = mgmt::CreateCanisterArgs { settings: Some(settings) };
        mgmt::create_canister_with_extra_cycles(&args, cycles).await.map(|r| r.canister_id).map_err(cdk::error)
    }

    async fn canister_info(&self, canister: Principal) -> Result<CanisterInfo, CallError> {
        use ic_cdk::management_canister as mgmt;
        let status =
            mgmt::canister_status(&mgmt::CanisterStatusArgs { canister_id: canister }).await.map_err(cdk::error)?;
        let cycles = u128::try_from(status.cycles.0).unwrap_or(u128::MAX);
        Ok(CanisterInfo { module_hash: status.module_hash, controllers: status.settings.controllers, cycles })
    }

    async fn set_controllers(&self, canister: Principal, controllers: Vec<Principal>) -> Result<(), CallError> {
        use ic_cdk::management_canister as mgmt;
        let settings = mgmt::CanisterSettings { controllers: Some(controllers), ..Default::default() };
        mgmt::update_settings(&mgmt::UpdateSettingsArgs { canister_id: canister, settings }).await.map_err(cdk::error)
    }

    async fn install_code(
        &self,
        mode: InstallMode,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
    ) -> Result<(), CallError> {
        use ic_cdk::management_canister as mgmt;
        let args = mgmt::InstallCodeArgs { mode: cdk_mode(mode), canister_id: canister, wasm_module: wasm, arg };
        mgmt::install_code(&args).await.map_err(cdk::error)
    }

    async fn clear_chunk_store(&self, canister: Principal) -> Result<(), CallError> {
        use ic_cdk::management_canister as mgmt;
        mgmt::clear_chunk_store(&mgmt::ClearChunkStoreArgs { canister_id: canister }).await.map_err(cdk::error)
    }

    async fn upload_chunk(&self, store: Principal, chunk: Vec<u8>) -> Result<Vec<u8>, CallError> {
        use ic_cdk::management_canister as mgmt;
        let h = mgmt::upload_chunk(&mgmt::UploadChunkArgs { canister_id: store, chunk }).await.map_err(cdk::error)?;
        Ok(h.hash)
    }

    async fn install_chunked_code(
        &self,
        mode: InstallMode,
        target: Principal,
        module: ChunkedModule,
        arg: Vec<u8>,
    ) -> Result<(), CallError> {
        use ic_cdk::management_canister as mgmt;
        let args = mgmt::InstallChunkedCodeArgs {
            mode: cdk_mode(mode),
            target_canister: target,
            store_canister: (module.store != target).then_some(module.store),
            chunk_hashes_list: module.chunk_hashes.into_iter().map(|hash| mgmt::ChunkHash { hash }).collect(),
            wasm_module_hash: module.wasm_hash,
            arg,
        };
        mgmt::install_chunked_code(&args).await.map_err(cdk::error)
    }

    async fn stop_canister(&self, canister: Principal) -> Result<(), CallError> {
        use ic_cdk::management_canister as mgmt;
        mgmt::stop_canister(&mgmt::StopCanisterArgs { canister_id: canister }).await.map_err(cdk::error)
    }

    async fn start_canister(&self, canister: Principal) -> Result<(), CallError> {
        use ic_cdk::management_canister as mgmt;
        mgmt::start_canister(&mgmt::StartCanisterArgs { canister_id: canister }).await.map_err(cdk::error)
    }

    async fn delete_canister(&self, canister: Principal) -> Result<(), CallError> {
        use ic_cdk::management_canister as mgmt;
        mgmt::delete_canister(&mgmt::DeleteCanisterArgs { canister_id: canister }).await.map_err(cdk::error)
    }
}
