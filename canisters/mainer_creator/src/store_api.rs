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

use crate::{access, jobs, store};

/// Bytes hashed per message by `finish_upload`. SHA-256 in wasm costs about
/// 130 M instructions per MiB, so a 676 MB model (88 B) cannot be hashed
/// within the 40 B instruction limit of one message: the call hashes a slice
/// (about 4 B instructions), awaits a self-call, and the next slice runs in a
/// fresh message.
const HASH_BYTES_PER_MESSAGE: u64 = 32 * 1024 * 1024;

/// The creator's own hidden endpoint that `finish_upload` awaits between slices.
const STORE_YIELD: Method<(), ()> = Method::update("store_yield");

thread_local! {
    /// Uploads whose `finish_upload` is between two slices.
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
    store::with_mut(|s| s.start_upload(req, caller, time()))
}

#[update]
fn upload_chunk(req: UploadChunkRequest) -> Result<UploadStatus, CreatorError> {
    admin()?;
    store::with_mut(|s| s.upload_chunk(&req))
}

#[query]
fn upload_status(upload_id: u64) -> Result<UploadStatus, CreatorError> {
    admin()?;
    store::with(|s| s.upload_status(upload_id))
}

/// Computes the SHA-256 of the stored bytes and stores the artefact under it.
#[update]
async fn finish_upload(upload_id: u64) -> Result<ArtefactInfo, CreatorError> {
    admin()?;
    let _guard = FinishGuard::take(upload_id)?;
    let mut finishing = store::with(|s| s.begin_finish(upload_id))?;
    while !store::with(|s| s.hash_more(&mut finishing, HASH_BYTES_PER_MESSAGE))? {
        Call::unbounded_wait(canister_self(), STORE_YIELD.name)
            .await
            .map_err(|e| CreatorError::InvalidInput(format!("finish_upload was interrupted ({e}); call it again")))?;
    }
    let result = store::with_mut(|s| s.complete_finish(finishing, time()));
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
    store::with_mut(|s| s.cancel_upload(upload_id))
}

#[query]
fn list_uploads(page: PageRequest) -> Result<Page<UploadStatus>, CreatorError> {
    admin()?;
    Ok(store::with(|s| s.list_uploads(page)))
}

#[query]
fn list_artefacts(kind: Option<ArtefactKind>, page: PageRequest) -> Result<Page<ArtefactInfo>, CreatorError> {
    admin()?;
    Ok(store::with(|s| s.list_artefacts(kind, page)))
}

#[query]
fn artefact_info(sha256: String) -> Result<ArtefactInfo, CreatorError> {
    admin()?;
    store::with(|s| s.artefact_info(&sha256))
}

#[update]
fn delete_artefact(sha256: String) -> Result<(), CreatorError> {
    admin()?;
    store::with_mut(|s| s.delete_artefact(&sha256, jobs::artefact_in_use))
}

/// Marks an upload as being finished; released when the call ends, also
/// when it traps after an await (the future is dropped then).
struct FinishGuard(u64);

impl FinishGuard {
    fn take(upload_id: u64) -> Result<FinishGuard, CreatorError> {
        if FINISHING.with(|f| f.borrow_mut().insert(upload_id)) {
            Ok(FinishGuard(upload_id))
        } else {
            Err(CreatorError::InvalidInput(format!("finish_upload of upload {upload_id} is already running")))
        }
    }
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        FINISHING.with(|f| f.borrow_mut().remove(&self.0));
    }
}
