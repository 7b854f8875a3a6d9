//! The creator's artefact store: chunked uploads into stable memory, resumed
//! after an interruption and across an upgrade, refused when wrong, hashed
//! on-chain; listing, deleting, and admin-only access. Runs on PocketIC too
//! when `POCKET_IC_BIN` is set.

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::calls::{Method, creator as creator_calls};
use mainer_types::creator::{
    ArtefactInfo, ArtefactKind, CreatorArgs, CreatorError, CreatorInit, MAX_ARTEFACT_CHUNK_BYTES, StartUploadRequest,
    UploadChunkRequest, UploadStatus,
};
use mainer_types::{Page, PageRequest};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

const GGUF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models/stories260Ktok512.gguf");
const GGUF_SHA256: &str = "047bf46455a544931cff6fef14d7910154c56afbc23ab1c5e56a72e69912c04b";

/// Controls the canister (and so is an admin without being listed).
fn controller() -> Principal {
    user(1)
}
fn admin() -> Principal {
    user(2)
}
fn stranger() -> Principal {
    user(66)
}

type R<T> = Result<T, CreatorError>;

struct Creator<'a> {
    env: &'a dyn TestEnv,
    id: Principal,
}

impl<'a> Creator<'a> {
    fn install(env: &'a dyn TestEnv) -> Creator<'a> {
        let id = env.create_canister(controller());
        let init = CreatorInit { admins: vec![admin()], game_state: user(9), allowed_creators: vec![], settings: None };
        env.install(controller(), id, &wasm("mainer_creator"), candid::encode_one(CreatorArgs::Init(init)).unwrap())
            .expect("the creator installs");
        Creator { env, id }
    }

    fn upgrade(&self) {
        let arg = candid::encode_one(None::<CreatorArgs>).unwrap();
        self.env.upgrade(controller(), self.id, &wasm("mainer_creator"), arg).expect("the creator upgrades");
    }

    fn call<A: ArgumentEncoder, T: CandidType + DeserializeOwned>(
        &self,
        who: Principal,
        m: &Method<A, T>,
        args: A,
    ) -> T {
        self.env.call(who, self.id, m, args).unwrap_or_else(|e| panic!("{}: {e:?}", m.name))
    }

    fn start(&self, kind: ArtefactKind, name: &str, size: usize, expected: Option<&str>) -> R<UploadStatus> {
        let req = StartUploadRequest {
            kind,
            name: name.into(),
            total_size: size as u64,
            expected_sha256: expected.map(String::from),
        };
        self.call(admin(), &creator_calls::START_UPLOAD, (req,))
    }

    fn chunk(&self, upload_id: u64, offset: usize, bytes: &[u8]) -> R<UploadStatus> {
        let req = UploadChunkRequest { upload_id, offset: offset as u64, bytes: bytes.to_vec() };
        self.call(admin(), &creator_calls::UPLOAD_CHUNK, (req,))
    }

    /// Sends `bytes[from..]` in chunks of `step`.
    fn send_from(&self, upload_id: u64, bytes: &[u8], from: usize, step: usize) -> UploadStatus {
        let mut last = None;
        for off in (from..bytes.len()).step_by(step) {
            last = Some(self.chunk(upload_id, off, &bytes[off..(off + step).min(bytes.len())]).unwrap());
        }
        last.expect("something was sent")
    }

    fn status(&self, upload_id: u64) -> R<UploadStatus> {
        self.call(admin(), &creator_calls::UPLOAD_STATUS, (upload_id,))
    }

    fn finish(&self, upload_id: u64) -> R<ArtefactInfo> {
        self.call(admin(), &creator_calls::FINISH_UPLOAD, (upload_id,))
    }

    fn upload(&self, kind: ArtefactKind, name: &str, bytes: &[u8], step: usize) -> ArtefactInfo {
        let id = self.start(kind, name, bytes.len(), None).unwrap().upload_id;
        self.send_from(id, bytes, 0, step);
        self.finish(id).unwrap()
    }

    fn uploads(&self) -> Page<UploadStatus> {
        self.call(admin(), &creator_calls::LIST_UPLOADS, (PageRequest::first(100),)).unwrap()
    }

    fn artefacts(&self, kind: Option<ArtefactKind>, page: PageRequest) -> Page<ArtefactInfo> {
        self.env.call(admin(), self.id, &creator_calls::LIST_ARTEFACTS, (kind, page)).unwrap().unwrap()
    }

    fn info(&self, sha256: &str) -> R<ArtefactInfo> {
        self.call(admin(), &creator_calls::ARTEFACT_INFO, (sha256.to_string(),))
    }
}

fn gguf() -> Vec<u8> {
    std::fs::read(GGUF).unwrap_or_else(|e| panic!("{GGUF}: {e}"))
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic bytes that differ everywhere.
fn synthetic(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn the_model_uploads_in_chunks_and_resumes_after_an_interruption() {
    let env = new_env();
    let creator = Creator::install(env.as_ref());
    let model = gguf();
    assert_eq!(sha(&model), GGUF_SHA256);
    let step = 100_000;

    let up = creator.start(ArtefactKind::Model, "stories260Ktok512.gguf", model.len(), Some(GGUF_SHA256)).unwrap();
    assert_eq!((up.received, up.total_size, up.started_by), (0, model.len() as u64, admin()));
    for off in (0..500_000).step_by(step) {
        creator.chunk(up.upload_id, off, &model[off..off + step]).unwrap();
    }
    // The uploader is interrupted; a new one learns where to resume.
    assert_eq!(creator.uploads().items, vec![creator.status(up.upload_id).unwrap()]);
    let resume = creator.status(up.upload_id).unwrap().received as usize;
    assert_eq!(resume, 500_000);
    // The last chunk, sent again as after a time-out, is accepted as is.
    assert_eq!(creator.chunk(up.upload_id, resume - step, &model[resume - step..resume]).unwrap().received, 500_000);
    let done = creator.send_from(up.upload_id, &model, resume, step);
    assert_eq!(done.received, model.len() as u64);

    let info = creator.finish(up.upload_id).unwrap();
    assert_eq!(info.sha256, GGUF_SHA256);
    assert_eq!((info.kind, info.size, info.uploaded_by), (ArtefactKind::Model, model.len() as u64, admin()));
    assert_eq!(info.name, "stories260Ktok512.gguf");
    assert_eq!(creator.info(GGUF_SHA256).unwrap(), info);
    assert_eq!(creator.artefacts(None, PageRequest::first(10)).items, vec![info]);
    assert!(creator.uploads().items.is_empty());
    assert!(matches!(creator.status(up.upload_id), Err(CreatorError::NotFound(_))));
    assert!(matches!(creator.finish(up.upload_id), Err(CreatorError::NotFound(_))));
}

#[test]
fn bad_uploads_are_refused_and_the_stored_part_survives() {
    let env = new_env();
    let creator = Creator::install(env.as_ref());
    let model = gguf();
    let id = creator.start(ArtefactKind::Model, "model", model.len(), Some(GGUF_SHA256)).unwrap().upload_id;
    creator.chunk(id, 0, &model[..300_000]).unwrap();

    let mut changed = model[100_000..200_000].to_vec();
    changed[50] ^= 0xFF;
    let mut straddling = model[250_000..350_000].to_vec();
    straddling[10] ^= 0xFF;
    let refused: Vec<(usize, Vec<u8>, CreatorError)> = vec![
        (300_001, model[300_001..310_000].to_vec(), CreatorError::UploadGap { received: 300_000, offset: 300_001 }),
        (100_000, changed, CreatorError::UploadOverlap { received: 300_000, offset: 100_000 }),
        (250_000, straddling, CreatorError::UploadOverlap { received: 300_000, offset: 250_000 }),
        (
            300_000,
            vec![0; MAX_ARTEFACT_CHUNK_BYTES as usize + 1],
            CreatorError::ChunkTooLarge { size: MAX_ARTEFACT_CHUNK_BYTES + 1, max: MAX_ARTEFACT_CHUNK_BYTES },
        ),
        (
            model.len() - 10,
            vec![0; 11],
            CreatorError::SizeOverrun { end: model.len() as u64 + 1, total_size: model.len() as u64 },
        ),
    ];
    for (offset, bytes, expected) in refused {
        assert_eq!(creator.chunk(id, offset, &bytes), Err(expected));
        assert_eq!(creator.status(id).unwrap().received, 300_000);
    }
    assert_eq!(creator.finish(id), Err(CreatorError::Incomplete { received: 300_000, total_size: model.len() as u64 }));
    creator.send_from(id, &model, 300_000, 400_000);
    assert_eq!(creator.finish(id).unwrap().sha256, GGUF_SHA256);

    // A file that is not what the uploader announced is refused at finish and
    // kept (the same answer on a retry) until cancelled.
    let other = synthetic(150_000, 1);
    let id = creator.start(ArtefactKind::LlmWasm, "llm.wasm", other.len(), Some(GGUF_SHA256)).unwrap().upload_id;
    creator.send_from(id, &other, 0, 100_000);
    let mismatch = CreatorError::HashMismatch { expected: GGUF_SHA256.into(), actual: sha(&other) };
    assert_eq!(creator.finish(id), Err(mismatch.clone()));
    assert_eq!(creator.finish(id), Err(mismatch));
    assert_eq!(creator.uploads().total, 1);
    assert!(matches!(creator.info(&sha(&other)), Err(CreatorError::NotFound(_))));
    creator.call(admin(), &creator_calls::CANCEL_UPLOAD, (id,)).unwrap();
    assert_eq!(creator.uploads().total, 0);
    assert!(matches!(creator.status(id), Err(CreatorError::NotFound(_))));

    // Requests that make no sense are refused before anything is reserved.
    assert!(matches!(creator.start(ArtefactKind::Model, "empty", 0, None), Err(CreatorError::InvalidInput(_))));
    assert!(matches!(
        creator.start(ArtefactKind::Model, "m", 10, Some("not a hash")),
        Err(CreatorError::InvalidInput(_))
    ));
}

#[test]
fn an_upload_survives_an_upgrade_of_the_creator() {
    let env = new_env();
    let creator = Creator::install(env.as_ref());
    let model = gguf();
    let wasm_like = synthetic(700_000, 2);
    let stored = creator.upload(ArtefactKind::ControllerWasm, "controller.wasm", &wasm_like, 250_000);
    let id = creator.start(ArtefactKind::Model, "model", model.len(), None).unwrap().upload_id;
    creator.send_from(id, &model[..600_000], 0, 200_000);

    creator.upgrade();

    let status = creator.status(id).unwrap();
    assert_eq!((status.received, status.total_size, status.name.as_str()), (600_000, model.len() as u64, "model"));
    creator.send_from(id, &model, status.received as usize, 200_000);
    let info = creator.finish(id).unwrap();
    assert_eq!(info.sha256, GGUF_SHA256);
    assert_eq!(creator.info(&stored.sha256).unwrap(), stored);

    creator.upgrade();
    assert_eq!(creator.artefacts(None, PageRequest::first(10)).items, vec![info, stored]);
    // Upload ids keep growing after upgrades.
    assert!(creator.start(ArtefactKind::Model, "next", 10, None).unwrap().upload_id > id);
}

#[test]
fn a_big_file_is_hashed_across_several_messages() {
    let env = new_env();
    let creator = Creator::install(env.as_ref());
    // More than one 64 MiB hashing slice.
    let big = synthetic(70 * 1024 * 1024 + 5, 3);
    let id = creator.start(ArtefactKind::Model, "big.gguf", big.len(), Some(&sha(&big))).unwrap().upload_id;
    creator.send_from(id, &big, 0, MAX_ARTEFACT_CHUNK_BYTES as usize);
    if let Some(mut sim) = env.simulator() {
        sim.clear_executions();
    }
    let info = creator.finish(id).unwrap();
    assert_eq!((info.sha256, info.size), (sha(&big), big.len() as u64));
    if let Some(sim) = env.simulator() {
        let entries: Vec<String> =
            sim.executions().filter(|e| e.canister == creator.id).map(|e| e.entry.clone()).collect();
        assert!(entries.iter().filter(|e| e.contains("store_yield")).count() >= 1, "{entries:?}");
    }
}

#[test]
fn artefacts_are_listed_newest_first_and_deleted() {
    let env = new_env();
    let creator = Creator::install(env.as_ref());
    let (a, b, c) = (synthetic(300_000, 4), synthetic(200_000, 5), synthetic(100_000, 6));
    let a = creator.upload(ArtefactKind::ControllerWasm, "a", &a, 100_000);
    let b_info = creator.upload(ArtefactKind::LlmWasm, "b", &b, 100_000);
    let c = creator.upload(ArtefactKind::Model, "c", &c, 100_000);
    let all = creator.artefacts(None, PageRequest::first(10));
    assert_eq!((all.items, all.total), (vec![c.clone(), b_info.clone(), a.clone()], 3));
    let page = creator.artefacts(None, PageRequest { offset: 1, limit: 1 });
    assert_eq!((page.items, page.next_offset), (vec![b_info.clone()], Some(2)));
    assert_eq!(creator.artefacts(Some(ArtefactKind::LlmWasm), PageRequest::first(10)).items, vec![b_info.clone()]);

    // The same content again: the stored artefact comes back, nothing is added.
    assert_eq!(creator.upload(ArtefactKind::LlmWasm, "b again", &b, 50_000), b_info);
    assert_eq!(creator.artefacts(None, PageRequest::first(10)).total, 3);

    let delete = |sha: &str| creator.call(admin(), &creator_calls::DELETE_ARTEFACT, (sha.to_string(),));
    delete(&b_info.sha256).unwrap();
    assert!(matches!(creator.info(&b_info.sha256), Err(CreatorError::NotFound(_))));
    assert!(matches!(delete(&b_info.sha256), Err(CreatorError::NotFound(_))));
    assert!(matches!(delete("xyz"), Err(CreatorError::InvalidInput(_))));
    assert_eq!(creator.artefacts(None, PageRequest::first(10)).items, vec![c, a]);
    // Its bytes can be stored again.
    assert_eq!(creator.upload(ArtefactKind::LlmWasm, "b", &b, 200_000).sha256, b_info.sha256);
}

#[test]
fn every_store_endpoint_refuses_a_stranger() {
    let env = new_env();
    let creator = Creator::install(env.as_ref());
    let id = creator.start(ArtefactKind::Model, "m", 10, None).unwrap().upload_id;
    creator.chunk(id, 0, &[1; 10]).unwrap();
    let stored = creator.upload(ArtefactKind::Model, "n", &[2; 10], 10);

    // Ingress updates are refused at inspection (tests/inspect.rs), queries
    // by the endpoint's own check.
    fn refused<T>(r: Result<R<T>, integration_tests::Reject>) -> bool {
        match r {
            Ok(reply) => matches!(reply, Err(CreatorError::Unauthorized(_))),
            Err(reject) => reject.error_code == Some("IC0406"),
        }
    }
    let s = stranger();
    let start =
        StartUploadRequest { kind: ArtefactKind::Model, name: "x".into(), total_size: 1, expected_sha256: None };
    let chunk = UploadChunkRequest { upload_id: id, offset: 0, bytes: vec![1] };
    let page = PageRequest::first(10);
    let (e, c) = (env.as_ref(), creator.id);
    let sha = stored.sha256.clone();
    let checks: Vec<(&str, bool)> = vec![
        ("start_upload", refused(e.call(s, c, &creator_calls::START_UPLOAD, (start,)))),
        ("upload_chunk", refused(e.call(s, c, &creator_calls::UPLOAD_CHUNK, (chunk,)))),
        ("upload_status", refused(e.call(s, c, &creator_calls::UPLOAD_STATUS, (id,)))),
        ("finish_upload", refused(e.call(s, c, &creator_calls::FINISH_UPLOAD, (id,)))),
        ("cancel_upload", refused(e.call(s, c, &creator_calls::CANCEL_UPLOAD, (id,)))),
        ("list_uploads", refused(e.call(s, c, &creator_calls::LIST_UPLOADS, (page,)))),
        ("list_artefacts", refused(e.call(s, c, &creator_calls::LIST_ARTEFACTS, (None::<ArtefactKind>, page)))),
        ("artefact_info", refused(e.call(s, c, &creator_calls::ARTEFACT_INFO, (sha.clone(),)))),
        ("delete_artefact", refused(e.call(s, c, &creator_calls::DELETE_ARTEFACT, (sha,)))),
    ];
    for (method, refused) in checks {
        assert!(refused, "{method} served a stranger");
    }
    // The store's internal continuation is not for anyone else either.
    assert!(env.update(s, creator.id, "store_yield", candid::encode_args(()).unwrap()).is_err());
    assert!(env.update(admin(), creator.id, "store_yield", candid::encode_args(()).unwrap()).is_err());
    // Nothing changed; the controller is an admin without being listed.
    assert_eq!(creator.status(id).unwrap().received, 10);
    assert_eq!(creator.info(&stored.sha256).unwrap(), stored);
    assert!(creator.call(controller(), &creator_calls::UPLOAD_STATUS, (id,)).is_ok());
}
