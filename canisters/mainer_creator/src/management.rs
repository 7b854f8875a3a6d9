//! How the creator's jobs use the IC, shared by factory steps and fleet
//! steps (which use this module and never each other): [`StepError`] and its
//! retry policy, typed calls, and installing a stored wasm, from the
//! creator's own chunk store when it is large.

use std::cell::RefCell;
use std::collections::BTreeSet;

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use mainer_types::calls::Method;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::ic::{CHUNKED_INSTALL_BYTES, CallError, ChunkedModule, InstallMode, Runtime, WASM_CHUNK_BYTES};
use crate::state::{mutate_state, read_state};
use canister_common::guard::Guard;

/// Why a step did not complete; `fatal` ends the job (or target) at once,
/// anything else is retried with back-off up to the job's attempt limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepError {
    pub message: String,
    pub fatal: bool,
}

pub fn retry(message: impl Into<String>) -> StepError {
    StepError { message: message.into(), fatal: false }
}

pub fn fatal(message: impl Into<String>) -> StepError {
    StepError { message: message.into(), fatal: true }
}

/// A failed management or canister call is retried.
pub fn failed(what: &str, e: CallError) -> StepError {
    retry(format!("{what}: {e}"))
}

/// A call of `method` with its Candid arguments and result; failures and
/// undecodable replies are retryable step errors.
pub async fn call<RT: Runtime, A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
    rt: &RT,
    canister: Principal,
    method: &Method<A, R>,
    args: A,
) -> Result<R, StepError> {
    let name = method.name;
    let arg = method.encode(args).map_err(|e| fatal(format!("{name}: arguments do not encode: {e}")))?;
    let reply = rt.call_raw(canister, name, arg).await.map_err(|e| failed(name, e))?;
    method.decode(&reply).map_err(|e| retry(format!("{name}: undecodable reply: {e}")))
}

/// The module `canister` runs, if any.
pub async fn module_hash<RT: Runtime>(rt: &RT, canister: Principal) -> Result<Option<Vec<u8>>, StepError> {
    Ok(rt.canister_info(canister).await.map_err(|e| failed("canister_status", e))?.module_hash)
}

/// Installs the stored wasm `sha256` into `canister`: in one message when
/// it fits, else from the creator's own chunk store, filled once per wasm
/// and used for every target. The IC lets the caller install from a store
/// canister on the target's subnet that it controls or that is the caller
/// itself (interface spec, `install_chunked_code`); the creator's canisters
/// are made on its subnet. Ok(false): another call is filling the chunk
/// store with this wasm, try again next round.
pub async fn install_stored<RT: Runtime>(
    rt: &RT,
    canister: Principal,
    sha256: &str,
    arg: Vec<u8>,
    mode: InstallMode,
) -> Result<bool, StepError> {
    let size =
        read_state(|s| s.store.artefact_info(sha256)).map_err(|e| fatal(format!("the wasm artefact: {e}")))?.size;
    if size <= CHUNKED_INSTALL_BYTES as u64 {
        let wasm = read_state(|s| s.store.read_all(sha256)).map_err(|e| fatal(format!("the wasm artefact: {e}")))?;
        rt.install_code(mode, canister, wasm, arg).await.map_err(|e| failed("install_code", e))?;
        return Ok(true);
    }
    let Some(module) = own_chunks(rt, sha256).await? else { return Ok(false) };
    match rt.install_chunked_code(mode, canister, module, arg).await {
        Ok(()) => Ok(true),
        Err(e) => {
            // The chunks may be gone (cleared when the store was full): upload them again next time.
            mutate_state(|s| s.own_chunks.remove(sha256));
            Err(failed("install_chunked_code", e))
        }
    }
}

thread_local! {
    /// Held while the creator's chunk store is being filled.
    static FILLING: RefCell<BTreeSet<()>> = const { RefCell::new(BTreeSet::new()) };
}

/// The chunks of wasm `sha256` in the creator's own chunk store, uploaded
/// now if they are not there; None while another call is uploading.
async fn own_chunks<RT: Runtime>(rt: &RT, sha256: &str) -> Result<Option<ChunkedModule>, StepError> {
    if let Some(m) = read_state(|s| s.own_chunks.get(sha256).cloned()) {
        return Ok(Some(m));
    }
    let Some(_filling) = Guard::take(&FILLING, ()) else { return Ok(None) };
    let wasm = read_state(|s| s.store.read_all(sha256)).map_err(|e| fatal(format!("the wasm artefact: {e}")))?;
    let me = rt.canister_self();
    let mut chunk_hashes = Vec::new();
    for chunk in wasm.chunks(WASM_CHUNK_BYTES) {
        match rt.upload_chunk(me, chunk.to_vec()).await {
            Ok(h) => chunk_hashes.push(h),
            Err(e) => {
                // Most likely full of older modules: empty it for the next attempt.
                let _ = rt.clear_chunk_store(me).await;
                mutate_state(|s| s.own_chunks.clear());
                return Err(failed("upload_chunk", e));
            }
        }
    }
    let module = ChunkedModule { store: me, chunk_hashes, wasm_hash: Sha256::digest(&wasm).to_vec() };
    mutate_state(|s| s.own_chunks.insert(sha256.to_string(), module.clone()));
    Ok(Some(module))
}
