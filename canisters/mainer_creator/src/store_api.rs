//! Endpoints of the artefact store. All of them, queries included, are for
//! admins only; each checks its caller and calls `store`.

use std::cell::RefCell;
use std::collections::BTreeSet;

use candid::Principal;
use ic_cdk::api::{canister_self, msg_caller, time};
use ic_cdk::call::Call;
use ic_cdk::{query, update};
use mainer_types::calls::Method;
use mainer_types::creator::{
    ArtefactInfo, ArtefactKind, CreatorError, StartUploadRequest, UploadChunkRequest, UploadStatus,
};
use mainer_types::{Page, PageRequest};

use crate::access;
use crate::state::{mutate_state, read_state};
use canister_common::guard::Guard;

/// Bytes hashed per message by `finish_upload`. SHA-256 in wasm costs about
/// 130 M instructions per MiB, so a 676 MB model (88 B) cannot be hashed
/// within the 40 B instruction limit of one message: the call hashes a slice
/// (about 4 B instructions), awaits a self-call, and the next slice runs in a
/// fresh message.
const HASH_BYTES_PER_MESSAGE: u64 = 32 * 1024 * 1024;

/// The creator's own hidden endpoint that `finish_upload` awaits between slices.
const STORE_YIELD: Method<(), ()> = Method::update("store_yield");

thread_local! {
    /// Uploads whose `finish_upload` is between two slices (held by a
    /// [`Guard`]: released when the call ends, also when it traps after an
    /// await, since the future is dropped then).
    static FINISHING: RefCell<BTreeSet<u64>> = const { RefCell::new(BTreeSet::new()) };
}

fn admin() -> Result<Principal, CreatorError> {
    let caller = msg_caller();
    access::require_admin(&caller)?;
    Ok(caller)
}

#[update]
fn start_upload(req: StartUploadRequest) -> Result<UploadStatus, CreatorError> {
    let caller = admin()?;
    mutate_state(|s| s.store.start_upload(req, caller, time()))
}

#[update]
fn upload_chunk(req: UploadChunkRequest) -> Result<UploadStatus, CreatorError> {
    admin()?;
    mutate_state(|s| s.store.upload_chunk(&req))
}

#[query]
fn upload_status(upload_id: u64) -> Result<UploadStatus, CreatorError> {
    admin()?;
    read_state(|s| s.store.upload_status(upload_id))
}

/// Computes the SHA-256 of the stored bytes and stores the artefact under it.
#[update]
async fn finish_upload(upload_id: u64) -> Result<ArtefactInfo, CreatorError> {
    admin()?;
    let _guard = Guard::take(&FINISHING, upload_id)
        .ok_or_else(|| CreatorError::InvalidInput(format!("finish_upload of upload {upload_id} is already running")))?;
    let mut finishing = read_state(|s| s.store.begin_finish(upload_id))?;
    while !read_state(|s| s.store.hash_more(&mut finishing, HASH_BYTES_PER_MESSAGE))? {
        Call::unbounded_wait(canister_self(), STORE_YIELD.name)
            .await
            .map_err(|e| CreatorError::InvalidInput(format!("finish_upload was interrupted ({e}); call it again")))?;
    }
    let result = mutate_state(|s| s.store.complete_finish(finishing, time()));
    match &result {
        Ok(a) => canister_common::info!("upload {upload_id} stored as artefact {}", a.sha256),
        Err(e) => canister_common::warn!("upload {upload_id} not stored: {e}"),
    }
    result
}

/// Does nothing: `finish_upload` awaits it to continue in a new message.
#[update(hidden = true)]
fn store_yield() {
    if msg_caller() != canister_self() {
        ic_cdk::trap("store_yield is for the creator itself");
    }
}

#[update]
fn cancel_upload(upload_id: u64) -> Result<(), CreatorError> {
    admin()?;
    mutate_state(|s| s.store.cancel_upload(upload_id))
}

#[query]
fn list_uploads(page: PageRequest) -> Result<Page<UploadStatus>, CreatorError> {
    admin()?;
    Ok(read_state(|s| s.store.list_uploads(page)))
}

#[query]
fn list_artefacts(kind: Option<ArtefactKind>, page: PageRequest) -> Result<Page<ArtefactInfo>, CreatorError> {
    admin()?;
    Ok(read_state(|s| s.store.list_artefacts(kind, page)))
}

#[query]
fn artefact_info(sha256: String) -> Result<ArtefactInfo, CreatorError> {
    admin()?;
    read_state(|s| s.store.artefact_info(&sha256))
}

#[update]
fn delete_artefact(sha256: String) -> Result<(), CreatorError> {
    admin()?;
    mutate_state(|s| {
        let in_use = s.artefact_in_use(&sha256.trim().to_ascii_lowercase());
        s.store.delete_artefact(&sha256, |_| in_use)
    })
}
