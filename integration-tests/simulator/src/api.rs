//! Convenience calls to the management canister for tests: each goes through
//! an ingress message from `sender`, so controller checks apply as on the IC.

use candid::{CandidType, Decode, Encode, Nat, Principal};
use ic_management_canister_types as mgmt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::management::InstallMode;
use crate::sim::{DEFAULT_PROVISIONAL_CYCLES, Simulator};
use crate::types::{Reject, RejectCode};

/// Modules larger than this are installed through the chunk store, since an
/// ingress message carries at most 2 MiB.
const CHUNKED_INSTALL_THRESHOLD: usize = 1_900_000;

impl Simulator {
    fn mgmt<A: CandidType, R: CandidType + DeserializeOwned>(
        &mut self,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, Reject> {
        let bytes = self.update_call(sender, Principal::management_canister(), method, Encode!(arg).unwrap())?;
        Decode!(&bytes, R).map_err(|e| {
            Reject::new(RejectCode::CanisterError, "IC0503", format!("undecodable reply to {method}: {e}"))
        })
    }

    /// Creates an empty canister controlled by `controller`, with the default
    /// provisional cycles.
    pub fn create_canister(&mut self, controller: Principal) -> Principal {
        self.create_canister_with(vec![controller], DEFAULT_PROVISIONAL_CYCLES)
    }

    pub fn create_canister_with(&mut self, controllers: Vec<Principal>, cycles: u128) -> Principal {
        let sender = controllers.first().copied().unwrap_or(Principal::anonymous());
        let args = mgmt::ProvisionalCreateCanisterWithCyclesArgs {
            amount: Some(Nat::from(cycles)),
            settings: Some(mgmt::CanisterSettings { controllers: Some(controllers), ..Default::default() }),
            specified_id: None,
            sender_canister_version: None,
        };
        let r: mgmt::CanisterIdRecord =
            self.mgmt(sender, "provisional_create_canister_with_cycles", &args).expect("provisional creation");
        r.canister_id
    }

    /// Installs, reinstalls or upgrades `wasm`, through the chunk store when
    /// the module does not fit in one message.
    pub fn install_code(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
        mode: InstallMode,
    ) -> Result<(), Reject> {
        let mode = match mode {
            InstallMode::Install => mgmt::CanisterInstallMode::Install,
            InstallMode::Reinstall => mgmt::CanisterInstallMode::Reinstall,
            InstallMode::Upgrade { skip_pre_upgrade, wasm_memory_persistence } => {
                mgmt::CanisterInstallMode::Upgrade(Some(mgmt::UpgradeFlags {
                    skip_pre_upgrade: Some(skip_pre_upgrade),
                    wasm_memory_persistence,
                }))
            }
        };
        if wasm.len() <= CHUNKED_INSTALL_THRESHOLD {
            let args = mgmt::InstallCodeArgs {
                mode,
                canister_id: canister,
                wasm_module: wasm.to_vec(),
                arg,
                sender_canister_version: None,
            };
            return self.mgmt(sender, "install_code", &args);
        }
        let clear = mgmt::CanisterIdRecord { canister_id: canister };
        self.mgmt::<_, ()>(sender, "clear_chunk_store", &clear)?;
        let mut hashes = Vec::new();
        for chunk in wasm.chunks(self.limits().max_chunk_bytes) {
            let args = mgmt::UploadChunkArgs { canister_id: canister, chunk: chunk.to_vec() };
            hashes.push(self.mgmt::<_, mgmt::ChunkHash>(sender, "upload_chunk", &args)?);
        }
        let args = mgmt::InstallChunkedCodeArgs {
            mode,
            target_canister: canister,
            store_canister: None,
            chunk_hashes_list: hashes,
            wasm_module_hash: Sha256::digest(wasm).to_vec(),
            arg,
            sender_canister_version: None,
        };
        self.mgmt(sender, "install_chunked_code", &args)
    }

    pub fn install_canister(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
    ) -> Result<(), Reject> {
        self.install_code(sender, canister, wasm, arg, InstallMode::Install)
    }

    pub fn upgrade_canister(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
    ) -> Result<(), Reject> {
        self.install_code(sender, canister, wasm, arg, InstallMode::UPGRADE)
    }

    pub fn reinstall_canister(
        &mut self,
        sender: Principal,
        canister: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
    ) -> Result<(), Reject> {
        self.install_code(sender, canister, wasm, arg, InstallMode::Reinstall)
    }

    pub fn stop_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        self.mgmt(sender, "stop_canister", &mgmt::CanisterIdRecord { canister_id: canister })
    }

    pub fn start_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        self.mgmt(sender, "start_canister", &mgmt::CanisterIdRecord { canister_id: canister })
    }

    pub fn delete_canister(&mut self, sender: Principal, canister: Principal) -> Result<(), Reject> {
        self.mgmt(sender, "delete_canister", &mgmt::CanisterIdRecord { canister_id: canister })
    }

    pub fn canister_status(
        &mut self,
        sender: Principal,
        canister: Principal,
    ) -> Result<mgmt::CanisterStatusResult, Reject> {
        self.mgmt(sender, "canister_status", &mgmt::CanisterIdRecord { canister_id: canister })
    }

    pub fn update_settings(
        &mut self,
        sender: Principal,
        canister: Principal,
        settings: mgmt::CanisterSettings,
    ) -> Result<(), Reject> {
        let args = mgmt::UpdateSettingsArgs { canister_id: canister, settings, sender_canister_version: None };
        self.mgmt(sender, "update_settings", &args)
    }

    /// Sets the clock to `time_ns` (never backwards).
    pub fn set_time(&mut self, time_ns: u64) {
        if time_ns > self.time() {
            self.advance_time(std::time::Duration::from_nanos(time_ns - self.time()));
        }
    }
}
