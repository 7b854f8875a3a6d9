//! The artefact store: controller wasm, LLM wasm and GGUF models uploaded in
//! chunks straight into stable memory, their SHA-256 computed on-chain.
//!
//! Layout (all in stable memory, so an upgrade keeps everything and copies
//! nothing):
//! - `BLOBS`: a byte space. Its first 64 KiB granule is a header (magic, next
//!   upload id); the rest is carved into regions, one per upload or artefact.
//!   Regions are whole granules (wasm pages), so the memory's size is the end
//!   of the allocated space.
//! - `FREE_REGIONS`: start -> length of freed regions, coalesced with their
//!   neighbours, reused first-fit before the space grows.
//! - `UPLOADS`: upload id -> [`UploadRecord`]; a few hundred bytes,
//!   rewritten once per chunk, so encoded by hand (Candid would cost about
//!   200,000 instructions per chunk to decode and encode it again).
//! - `ARTEFACTS`: SHA-256 (lower-case hex) -> [`ArtefactRecord`].
//!
//! A chunk is written where it belongs at once: no per-chunk hashing, no
//! buffering. Hashing happens once in `finish_upload`, streamed from stable
//! memory in 1 MiB reads and spread over several messages for big files.
//!
//! [`Store`] is generic over the memories so the logic runs natively in unit
//! tests; the canister's instance is part of `state::State`.

use std::borrow::Cow;

use candid::{CandidType, Principal};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, Storable};
use mainer_types::creator::{
    ArtefactInfo, ArtefactKind, CreatorError, MAX_ARTEFACT_CHUNK_BYTES, StartUploadRequest, UploadChunkRequest,
    UploadStatus,
};
use mainer_types::{Page, PageRequest};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::memory::Stored;

/// Allocation unit of the blob space: one wasm page.
pub const GRANULE: u64 = 64 * 1024;
/// Largest artefact (a Qwen2.5-0.5B q8_0 model is 676 MB).
pub const MAX_ARTEFACT_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Largest wasm module: `install_chunked_code` takes at most 100 chunks of 1 MiB,
/// and `read_all` must fit the heap comfortably.
pub const MAX_WASM_BYTES: u64 = 100 * 1024 * 1024;
/// Open uploads reserve their whole size; a forgotten script cannot reserve more.
pub const MAX_OPEN_UPLOADS: u64 = 16;
pub const MAX_NAME_CHARS: usize = 256;
/// Reads of stable memory while hashing.
pub const HASH_READ_BYTES: usize = 1024 * 1024;

const MAGIC: &[u8; 8] = b"MCSTORE1";
const NEXT_UPLOAD_ID_AT: u64 = 8;

/// A reserved range of the blob space, in whole granules.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub len: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    pub kind: ArtefactKind,
    pub name: String,
    pub total_size: u64,
    /// Bytes `[0, received)` are stored; the uploader resumes here.
    pub received: u64,
    pub expected_sha256: Option<String>,
    pub started_by: Principal,
    pub started_at_ns: u64,
    pub region: Region,
}

const UPLOAD_RECORD_V1: u8 = 1;

/// Version byte, kind, the numbers as little-endian u64, then the
/// variable-length fields with a u32 length each (`u32::MAX`: no hash).
impl Storable for UploadRecord {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.name.len());
        b.push(UPLOAD_RECORD_V1);
        b.push(match self.kind {
            ArtefactKind::ControllerWasm => 0,
            ArtefactKind::LlmWasm => 1,
            ArtefactKind::Model => 2,
        });
        for n in [self.total_size, self.received, self.started_at_ns, self.region.start, self.region.len] {
            b.extend_from_slice(&n.to_le_bytes());
        }
        let mut field = |bytes: Option<&[u8]>| match bytes {
            Some(bytes) => {
                b.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                b.extend_from_slice(bytes);
            }
            None => b.extend_from_slice(&u32::MAX.to_le_bytes()),
        };
        field(self.expected_sha256.as_ref().map(|s| s.as_bytes()));
        field(Some(self.started_by.as_slice()));
        field(Some(self.name.as_bytes()));
        b
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut at = 0;
        let mut take = |n: usize| {
            at += n;
            &bytes[at - n..at]
        };
        assert_eq!(take(1)[0], UPLOAD_RECORD_V1, "unknown upload record version");
        let kind = match take(1)[0] {
            0 => ArtefactKind::ControllerWasm,
            1 => ArtefactKind::LlmWasm,
            2 => ArtefactKind::Model,
            k => panic!("unknown artefact kind {k} in an upload record"),
        };
        let mut n = [0u64; 5];
        for v in n.iter_mut() {
            *v = u64::from_le_bytes(take(8).try_into().unwrap());
        }
        let mut field = || {
            let len = u32::from_le_bytes(take(4).try_into().unwrap());
            (len != u32::MAX).then(|| take(len as usize).to_vec())
        };
        let text = |b: Vec<u8>| String::from_utf8(b).expect("stored text is UTF-8");
        let expected_sha256 = field().map(text);
        let started_by = Principal::from_slice(&field().expect("a principal"));
        let name = text(field().expect("a name"));
        UploadRecord {
            kind,
            name,
            total_size: n[0],
            received: n[1],
            expected_sha256,
            started_by,
            started_at_ns: n[2],
            region: Region { start: n[3], len: n[4] },
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ArtefactRecord {
    pub kind: ArtefactKind,
    pub name: String,
    pub size: u64,
    pub uploaded_by: Principal,
    pub uploaded_at_ns: u64,
    /// The upload it came from; ids only grow, so this orders artefacts
    /// finished at the same time.
    pub upload_id: u64,
    pub region: Region,
}

/// A `finish_upload` in progress: the SHA-256 of the first `hashed` bytes.
/// It lives in the heap across the messages of one call; a call that is
/// interrupted starts again from zero.
pub struct Finishing {
    pub upload_id: u64,
    pub hashed: u64,
    hasher: Sha256,
}

pub struct Store<M: Memory> {
    uploads: StableBTreeMap<u64, UploadRecord, M>,
    artefacts: StableBTreeMap<String, Stored<ArtefactRecord>, M>,
    free: StableBTreeMap<u64, u64, M>,
    blobs: M,
}

impl<M: Memory> Store<M> {
    /// Opens the store in these memories, creating it when they are empty.
    pub fn init(uploads: M, artefacts: M, blobs: M, free: M) -> Self {
        if blobs.size() == 0 {
            assert!(blobs.grow(1) == 0, "cannot grow the blob memory");
            blobs.write(0, MAGIC);
            blobs.write(NEXT_UPLOAD_ID_AT, &1u64.to_le_bytes());
        } else {
            let mut magic = [0u8; 8];
            blobs.read(0, &mut magic);
            assert!(&magic == MAGIC, "the blob memory does not hold an artefact store");
        }
        Store {
            uploads: StableBTreeMap::init(uploads),
            artefacts: StableBTreeMap::init(artefacts),
            free: StableBTreeMap::init(free),
            blobs,
        }
    }

    // ------------------------------------------------------------------
    // Uploads
    // ------------------------------------------------------------------

    /// Validates the request and reserves the whole file's region.
    pub fn start_upload(
        &mut self,
        req: StartUploadRequest,
        caller: Principal,
        now_ns: u64,
    ) -> Result<UploadStatus, CreatorError> {
        let name = req.name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(invalid(format!("the name must have 1 to {MAX_NAME_CHARS} characters")));
        }
        let max = match req.kind {
            ArtefactKind::Model => MAX_ARTEFACT_BYTES,
            ArtefactKind::ControllerWasm | ArtefactKind::LlmWasm => MAX_WASM_BYTES,
        };
        if req.total_size == 0 || req.total_size > max {
            return Err(invalid(format!("total_size must be 1 to {max} bytes for a {:?}", req.kind)));
        }
        let expected_sha256 = req.expected_sha256.as_deref().map(parse_sha256).transpose()?;
        if self.uploads.len() >= MAX_OPEN_UPLOADS {
            return Err(invalid(format!("{MAX_OPEN_UPLOADS} uploads are open; finish or cancel one first")));
        }
        let region = self.allocate(req.total_size)?;
        let id = self.next_upload_id();
        let record = UploadRecord {
            kind: req.kind,
            name,
            total_size: req.total_size,
            received: 0,
            expected_sha256,
            started_by: caller,
            started_at_ns: now_ns,
            region,
        };
        let status = upload_status(id, &record);
        self.uploads.insert(id, record);
        Ok(status)
    }

    /// Stores a chunk at its offset. Bytes before `received` are never
    /// rewritten: a chunk that covers them must repeat them exactly (a resend
    /// after a time-out), and only its part past `received` is written.
    pub fn upload_chunk(&mut self, req: &UploadChunkRequest) -> Result<UploadStatus, CreatorError> {
        let len = req.bytes.len() as u64;
        if len > MAX_ARTEFACT_CHUNK_BYTES {
            return Err(CreatorError::ChunkTooLarge { size: len, max: MAX_ARTEFACT_CHUNK_BYTES });
        }
        if len == 0 {
            return Err(invalid("empty chunk".into()));
        }
        let mut record = self.upload(req.upload_id)?;
        let (offset, received, total_size) = (req.offset, record.received, record.total_size);
        let end = offset.saturating_add(len);
        if end > total_size {
            return Err(CreatorError::SizeOverrun { end, total_size });
        }
        if offset > received {
            return Err(CreatorError::UploadGap { received, offset });
        }
        let base = record.region.start;
        if offset < received {
            // Only this case reads back: the usual in-order chunk costs its write alone.
            let same = (end.min(received) - offset) as usize;
            let mut stored = vec![0u8; same];
            self.blobs.read(base + offset, &mut stored);
            if !same_bytes(&stored, &req.bytes[..same]) {
                return Err(CreatorError::UploadOverlap { received, offset });
            }
            if end <= received {
                return Ok(upload_status(req.upload_id, &record));
            }
        }
        let fresh = (received - offset) as usize;
        self.blobs.write(base + received, &req.bytes[fresh..]);
        record.received = end;
        let status = upload_status(req.upload_id, &record);
        self.uploads.insert(req.upload_id, record);
        Ok(status)
    }

    pub fn upload_status(&self, upload_id: u64) -> Result<UploadStatus, CreatorError> {
        Ok(upload_status(upload_id, &self.upload(upload_id)?))
    }

    /// Drops the upload and frees its region.
    pub fn cancel_upload(&mut self, upload_id: u64) -> Result<(), CreatorError> {
        let record = self.upload(upload_id)?;
        self.uploads.remove(&upload_id);
        self.release(record.region);
        Ok(())
    }

    /// Open uploads, oldest first.
    pub fn list_uploads(&self, req: PageRequest) -> Page<UploadStatus> {
        let all = self.uploads.iter().map(|e| {
            let (id, r) = e.into_pair();
            upload_status(id, &r)
        });
        Page::collect(all, self.uploads.len(), req)
    }

    // ------------------------------------------------------------------
    // Finishing: hash, check, store by SHA-256
    // ------------------------------------------------------------------

    /// Starts finishing a complete upload.
    pub fn begin_finish(&self, upload_id: u64) -> Result<Finishing, CreatorError> {
        let r = self.upload(upload_id)?;
        if r.received < r.total_size {
            return Err(CreatorError::Incomplete { received: r.received, total_size: r.total_size });
        }
        Ok(Finishing { upload_id, hashed: 0, hasher: Sha256::new() })
    }

    /// Hashes up to `max_bytes` more of the upload, streaming it from stable
    /// memory; true once every byte is hashed. The upload is looked up again
    /// each time: it may have been cancelled between two messages.
    pub fn hash_more(&self, f: &mut Finishing, max_bytes: u64) -> Result<bool, CreatorError> {
        let r = self.upload(f.upload_id)?;
        let stop = f.hashed.saturating_add(max_bytes).min(r.total_size);
        let mut buf = vec![0u8; (HASH_READ_BYTES as u64).min(stop - f.hashed) as usize];
        while f.hashed < stop {
            let n = (buf.len() as u64).min(stop - f.hashed) as usize;
            self.blobs.read(r.region.start + f.hashed, &mut buf[..n]);
            f.hasher.update(&buf[..n]);
            f.hashed += n as u64;
        }
        Ok(f.hashed == r.total_size)
    }

    /// Checks the hash and turns the upload into an artefact. On a mismatch
    /// with the expected SHA-256 the upload stays (every retry answers the
    /// same) until the admin cancels it. Content already stored is not kept
    /// twice: the existing artefact is returned and the upload's region freed.
    pub fn complete_finish(&mut self, f: Finishing, now_ns: u64) -> Result<ArtefactInfo, CreatorError> {
        let r = self.upload(f.upload_id)?;
        if f.hashed != r.total_size {
            return Err(invalid(format!("upload {} is hashed up to {} of {}", f.upload_id, f.hashed, r.total_size)));
        }
        let actual = hex::encode(f.hasher.finalize());
        if let Some(expected) = r.expected_sha256.as_ref().filter(|e| **e != actual) {
            return Err(CreatorError::HashMismatch { expected: expected.clone(), actual });
        }
        self.uploads.remove(&f.upload_id);
        if let Some(existing) = self.artefacts.get(&actual) {
            self.release(r.region);
            return Ok(artefact_info(actual, &existing.0));
        }
        let record = ArtefactRecord {
            kind: r.kind,
            name: r.name,
            size: r.total_size,
            uploaded_by: r.started_by,
            uploaded_at_ns: now_ns,
            upload_id: f.upload_id,
            region: r.region,
        };
        let info = artefact_info(actual.clone(), &record);
        self.artefacts.insert(actual, Stored(record));
        Ok(info)
    }

    /// The whole finish in one go.
    #[cfg(test)]
    pub fn finish_upload(&mut self, upload_id: u64, now_ns: u64) -> Result<ArtefactInfo, CreatorError> {
        let mut f = self.begin_finish(upload_id)?;
        self.hash_more(&mut f, u64::MAX)?;
        self.complete_finish(f, now_ns)
    }

    // ------------------------------------------------------------------
    // Artefacts
    // ------------------------------------------------------------------

    pub fn artefact_info(&self, sha256: &str) -> Result<ArtefactInfo, CreatorError> {
        let sha = parse_sha256(sha256)?;
        let r = self.artefact_record(&sha)?;
        Ok(artefact_info(sha, &r))
    }

    /// Artefacts, newest first, optionally of one kind. A scan: artefacts are
    /// big files, so there are only tens of them.
    pub fn list_artefacts(&self, kind: Option<ArtefactKind>, req: PageRequest) -> Page<ArtefactInfo> {
        let mut all: Vec<(String, ArtefactRecord)> = self
            .artefacts
            .iter()
            .map(|e| {
                let (sha, r) = e.into_pair();
                (sha, r.0)
            })
            .filter(|(_, r)| kind.is_none_or(|k| r.kind == k))
            .collect();
        all.sort_by_key(|(_, r)| std::cmp::Reverse((r.uploaded_at_ns, r.upload_id)));
        let total = all.len() as u64;
        Page::collect(all.into_iter().map(|(sha, r)| artefact_info(sha, &r)), total, req)
    }

    pub fn newest(&self, kind: ArtefactKind) -> Option<ArtefactInfo> {
        self.list_artefacts(Some(kind), PageRequest::first(1)).items.pop()
    }

    /// Deletes an artefact and frees its bytes, unless `in_use` says a job
    /// still needs it.
    pub fn delete_artefact(&mut self, sha256: &str, in_use: impl FnOnce(&str) -> bool) -> Result<(), CreatorError> {
        let sha = parse_sha256(sha256)?;
        let r = self.artefact_record(&sha)?;
        if in_use(&sha) {
            return Err(CreatorError::InUse(format!("artefact {sha} is used by a job that is not finished")));
        }
        self.artefacts.remove(&sha);
        self.release(r.region);
        Ok(())
    }

    /// Reads `buf.len()` bytes of an artefact from `offset`.
    pub fn read(&self, sha256: &str, offset: u64, buf: &mut [u8]) -> Result<(), CreatorError> {
        let sha = parse_sha256(sha256)?;
        let r = self.artefact_record(&sha)?;
        let end = offset.checked_add(buf.len() as u64).filter(|&end| end <= r.size);
        if end.is_none() {
            return Err(invalid(format!("read of {} bytes at {offset} is past the end ({})", buf.len(), r.size)));
        }
        self.blobs.read(r.region.start + offset, buf);
        Ok(())
    }

    /// A whole artefact in the heap: for wasm modules, not for models.
    pub fn read_all(&self, sha256: &str) -> Result<Vec<u8>, CreatorError> {
        let sha = parse_sha256(sha256)?;
        let r = self.artefact_record(&sha)?;
        if r.size > MAX_WASM_BYTES {
            return Err(invalid(format!("artefact {sha} has {} bytes, too many to read at once", r.size)));
        }
        let mut buf = vec![0u8; r.size as usize];
        self.blobs.read(r.region.start, &mut buf);
        Ok(buf)
    }

    // ------------------------------------------------------------------
    // Region allocator
    // ------------------------------------------------------------------

    /// Reserves `size` bytes (rounded up to granules): the first free region
    /// that fits, else the end of the space (taking a free region that ends
    /// there, so it is not stranded), growing the memory.
    fn allocate(&mut self, size: u64) -> Result<Region, CreatorError> {
        let len = size.div_ceil(GRANULE) * GRANULE;
        let fit = self.free.iter().map(|e| e.into_pair()).find(|&(_, free_len)| free_len >= len);
        if let Some((start, free_len)) = fit {
            self.free.remove(&start);
            if free_len > len {
                self.free.insert(start + len, free_len - len);
            }
            return Ok(Region { start, len });
        }
        let end = self.blobs.size() * GRANULE;
        let (start, have) = match self.free.last_key_value() {
            Some((s, l)) if s + l == end => (s, l),
            _ => (end, 0),
        };
        if self.blobs.grow((len - have) / GRANULE) < 0 {
            return Err(invalid(format!("stable memory cannot grow by {} bytes", len - have)));
        }
        self.free.remove(&start);
        Ok(Region { start, len })
    }

    /// Returns a region to the free list, merged with free neighbours.
    fn release(&mut self, region: Region) {
        let (mut start, mut len) = (region.start, region.len);
        let before = self.free.range(..start).next_back().map(|e| e.into_pair());
        if let Some((s, l)) = before.filter(|&(s, l)| s + l == start) {
            self.free.remove(&s);
            start = s;
            len += l;
        }
        let after = region.start + region.len;
        if let Some(l) = self.free.remove(&after) {
            len += l;
        }
        self.free.insert(start, len);
    }

    /// Free regions (start, length), by start.
    #[cfg(test)]
    pub fn free_regions(&self) -> Vec<(u64, u64)> {
        self.free.iter().map(|e| e.into_pair()).collect()
    }

    /// Bytes of the blob space, header included.
    #[cfg(test)]
    pub fn space_bytes(&self) -> u64 {
        self.blobs.size() * GRANULE
    }

    // ------------------------------------------------------------------

    fn next_upload_id(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.blobs.read(NEXT_UPLOAD_ID_AT, &mut b);
        let id = u64::from_le_bytes(b);
        self.blobs.write(NEXT_UPLOAD_ID_AT, &(id + 1).to_le_bytes());
        id
    }

    fn upload(&self, upload_id: u64) -> Result<UploadRecord, CreatorError> {
        self.uploads.get(&upload_id).ok_or_else(|| CreatorError::NotFound(format!("upload {upload_id}")))
    }

    fn artefact_record(&self, sha: &str) -> Result<ArtefactRecord, CreatorError> {
        self.artefacts
            .get(&sha.to_string())
            .map(|s| s.0)
            .ok_or_else(|| CreatorError::NotFound(format!("artefact {sha}")))
    }
}

/// Slice equality a word at a time: in wasm, `==` on byte slices becomes a
/// byte loop (memcmp) that costs about 14 instructions per byte.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let ((aw, at), (bw, bt)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
    a.len() == b.len() && at == bt && aw.iter().zip(bw).all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
}

fn invalid(what: String) -> CreatorError {
    CreatorError::InvalidInput(what)
}

/// A SHA-256 as 64 hex digits, returned in lower case.
pub fn parse_sha256(s: &str) -> Result<String, CreatorError> {
    let s = s.trim();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(invalid(format!("{s:?} is not a SHA-256 (64 hex digits)")))
    }
}

fn upload_status(upload_id: u64, r: &UploadRecord) -> UploadStatus {
    UploadStatus {
        upload_id,
        kind: r.kind,
        name: r.name.clone(),
        total_size: r.total_size,
        received: r.received,
        expected_sha256: r.expected_sha256.clone(),
        started_by: r.started_by,
        started_at_ns: r.started_at_ns,
    }
}

fn artefact_info(sha256: String, r: &ArtefactRecord) -> ArtefactInfo {
    ArtefactInfo {
        sha256,
        kind: r.kind,
        name: r.name.clone(),
        size: r.size,
        uploaded_by: r.uploaded_by,
        uploaded_at_ns: r.uploaded_at_ns,
    }
}

#[cfg(test)]
mod tests {
    use crate::memory;
    use ic_stable_structures::DefaultMemoryImpl;
    use ic_stable_structures::memory_manager::{MemoryManager, VirtualMemory};

    use super::*;

    type Mem = VirtualMemory<DefaultMemoryImpl>;

    /// A fresh store over a memory manager, as in the canister.
    fn store() -> Store<Mem> {
        let mm = MemoryManager::init(DefaultMemoryImpl::default());
        Store::init(
            mm.get(memory::UPLOADS),
            mm.get(memory::ARTEFACTS),
            mm.get(memory::BLOBS),
            mm.get(memory::FREE_REGIONS),
        )
    }

    fn admin() -> Principal {
        Principal::from_slice(&[1; 29])
    }

    /// Deterministic bytes that differ at every offset.
    fn data(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn start(s: &mut Store<Mem>, kind: ArtefactKind, size: usize, expected: Option<String>) -> u64 {
        let req = StartUploadRequest { kind, name: "file".into(), total_size: size as u64, expected_sha256: expected };
        s.start_upload(req, admin(), 1_000).unwrap().upload_id
    }

    fn chunk(s: &mut Store<Mem>, id: u64, offset: usize, bytes: &[u8]) -> Result<UploadStatus, CreatorError> {
        s.upload_chunk(&UploadChunkRequest { upload_id: id, offset: offset as u64, bytes: bytes.to_vec() })
    }

    /// Uploads `bytes` in chunks of `step` and finishes.
    fn upload(s: &mut Store<Mem>, kind: ArtefactKind, bytes: &[u8], step: usize, now: u64) -> ArtefactInfo {
        let id = start(s, kind, bytes.len(), None);
        for off in (0..bytes.len()).step_by(step) {
            chunk(s, id, off, &bytes[off..(off + step).min(bytes.len())]).unwrap();
        }
        s.finish_upload(id, now).unwrap()
    }

    #[test]
    fn an_upload_in_order_is_stored_under_its_sha256() {
        let mut s = store();
        let bytes = data(3 * 1024 * 1024 + 17, 1);
        let id = start(&mut s, ArtefactKind::Model, bytes.len(), Some(sha(&bytes).to_uppercase()));
        for (i, c) in bytes.chunks(1_000_000).enumerate() {
            let st = chunk(&mut s, id, i * 1_000_000, c).unwrap();
            assert_eq!(st.received, (i * 1_000_000 + c.len()) as u64);
        }
        assert_eq!(s.upload_status(id).unwrap().received, bytes.len() as u64);
        let info = s.finish_upload(id, 5_000).unwrap();
        assert_eq!(info.sha256, sha(&bytes));
        assert_eq!(
            (info.size, info.kind, info.uploaded_by, info.uploaded_at_ns),
            (bytes.len() as u64, ArtefactKind::Model, admin(), 5_000)
        );
        assert_eq!(s.artefact_info(&info.sha256.to_uppercase()).unwrap(), info);
        assert!(matches!(s.upload_status(id), Err(CreatorError::NotFound(_))));
        let mut back = vec![0u8; 100];
        s.read(&info.sha256, 2_999_990, &mut back).unwrap();
        assert_eq!(back, bytes[2_999_990..3_000_090]);
        assert!(matches!(s.read(&info.sha256, bytes.len() as u64 - 99, &mut back), Err(CreatorError::InvalidInput(_))));
        assert!(matches!(s.read(&info.sha256, u64::MAX, &mut back), Err(CreatorError::InvalidInput(_))));
    }

    #[test]
    fn hashing_can_be_spread_over_steps() {
        let mut s = store();
        let bytes = data(5 * 1024 * 1024 + 3, 2);
        let id = start(&mut s, ArtefactKind::Model, bytes.len(), None);
        for (i, c) in bytes.chunks(2_000_000).enumerate() {
            chunk(&mut s, id, i * 2_000_000, c).unwrap();
        }
        let mut f = s.begin_finish(id).unwrap();
        let mut steps = 1;
        while !s.hash_more(&mut f, 1_500_000).unwrap() {
            steps += 1;
        }
        assert_eq!(steps, 4);
        assert_eq!(s.complete_finish(f, 9).unwrap().sha256, sha(&bytes));
    }

    #[test]
    fn a_resent_chunk_is_accepted_without_rewrite_and_a_straddling_one_adds_its_new_part() {
        let mut s = store();
        let bytes = data(1_000, 3);
        let id = start(&mut s, ArtefactKind::ControllerWasm, bytes.len(), Some(sha(&bytes)));
        chunk(&mut s, id, 0, &bytes[..400]).unwrap();
        assert_eq!(chunk(&mut s, id, 0, &bytes[..400]).unwrap().received, 400);
        assert_eq!(chunk(&mut s, id, 100, &bytes[100..300]).unwrap().received, 400);
        assert_eq!(chunk(&mut s, id, 300, &bytes[300..700]).unwrap().received, 700);
        assert_eq!(chunk(&mut s, id, 700, &bytes[700..]).unwrap().received, 1_000);
        assert_eq!(chunk(&mut s, id, 900, &bytes[900..]).unwrap().received, 1_000);
        assert_eq!(s.finish_upload(id, 1).unwrap().sha256, sha(&bytes));
        assert_eq!(s.read_all(&sha(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn bad_chunks_are_refused_and_lose_nothing() {
        let mut s = store();
        let bytes = data(5_000_000, 4);
        let id = start(&mut s, ArtefactKind::Model, bytes.len(), Some(sha(&bytes)));
        chunk(&mut s, id, 0, &bytes[..1_000]).unwrap();
        let mut wrong = bytes[500..1_500].to_vec();
        wrong[10] ^= 1;
        let mut straddle_wrong = bytes[900..1_100].to_vec();
        straddle_wrong[5] ^= 0x80;
        let refused = [
            (1_001, bytes[1_001..1_100].to_vec(), CreatorError::UploadGap { received: 1_000, offset: 1_001 }),
            (500, wrong, CreatorError::UploadOverlap { received: 1_000, offset: 500 }),
            (900, straddle_wrong, CreatorError::UploadOverlap { received: 1_000, offset: 900 }),
            (1_000, vec![1; 2_000_001], CreatorError::ChunkTooLarge { size: 2_000_001, max: MAX_ARTEFACT_CHUNK_BYTES }),
            (4_000_000, vec![1; 1_000_001], CreatorError::SizeOverrun { end: 5_000_001, total_size: 5_000_000 }),
        ];
        for (offset, b, err) in refused {
            assert_eq!(chunk(&mut s, id, offset, &b), Err(err));
            assert_eq!(s.upload_status(id).unwrap().received, 1_000);
        }
        assert!(matches!(chunk(&mut s, id, 1_000, &[]), Err(CreatorError::InvalidInput(_))));
        assert!(matches!(chunk(&mut s, 99, 0, &[1]), Err(CreatorError::NotFound(_))));
        assert_eq!(s.finish_upload(id, 1), Err(CreatorError::Incomplete { received: 1_000, total_size: 5_000_000 }));
        // A huge offset does not wrap around.
        assert!(matches!(chunk(&mut s, id, usize::MAX, &[1]), Err(CreatorError::SizeOverrun { .. })));
        for off in (1_000..bytes.len()).step_by(2_000_000) {
            chunk(&mut s, id, off, &bytes[off..(off + 2_000_000).min(bytes.len())]).unwrap();
        }
        assert_eq!(s.finish_upload(id, 1).unwrap().sha256, sha(&bytes));
    }

    #[test]
    fn a_hash_mismatch_keeps_the_upload_until_cancelled() {
        let mut s = store();
        let bytes = data(70_000, 5);
        let wrong = sha(b"something else");
        let id = start(&mut s, ArtefactKind::LlmWasm, bytes.len(), Some(wrong.clone()));
        chunk(&mut s, id, 0, &bytes).unwrap();
        let mismatch = CreatorError::HashMismatch { expected: wrong, actual: sha(&bytes) };
        assert_eq!(s.finish_upload(id, 1), Err(mismatch.clone()));
        assert_eq!(s.finish_upload(id, 1), Err(mismatch));
        assert_eq!(s.list_uploads(PageRequest::first(10)).total, 1);
        assert!(s.list_artefacts(None, PageRequest::first(10)).items.is_empty());
        s.cancel_upload(id).unwrap();
        assert_eq!(s.list_uploads(PageRequest::first(10)).total, 0);
        assert_eq!(s.free_regions(), vec![(GRANULE, 2 * GRANULE)]);
        assert!(matches!(s.cancel_upload(id), Err(CreatorError::NotFound(_))));
    }

    #[test]
    fn start_upload_validates_its_request() {
        let mut s = store();
        let req = |kind, name: &str, total_size, expected_sha256: Option<&str>| StartUploadRequest {
            kind,
            name: name.into(),
            total_size,
            expected_sha256: expected_sha256.map(String::from),
        };
        for bad in [
            req(ArtefactKind::Model, "m", 0, None),
            req(ArtefactKind::Model, "m", MAX_ARTEFACT_BYTES + 1, None),
            req(ArtefactKind::LlmWasm, "w", MAX_WASM_BYTES + 1, None),
            req(ArtefactKind::Model, "  ", 10, None),
            req(ArtefactKind::Model, &"n".repeat(MAX_NAME_CHARS + 1), 10, None),
            req(ArtefactKind::Model, "m", 10, Some("abc")),
            req(ArtefactKind::Model, "m", 10, Some(&"g".repeat(64))),
        ] {
            assert!(matches!(s.start_upload(bad, admin(), 0), Err(CreatorError::InvalidInput(_))));
        }
        assert_eq!(s.space_bytes(), GRANULE, "nothing was reserved");
        let ids: Vec<u64> = (0..MAX_OPEN_UPLOADS).map(|_| start(&mut s, ArtefactKind::Model, 10, None)).collect();
        assert_eq!(ids, (1..=MAX_OPEN_UPLOADS).collect::<Vec<_>>());
        assert!(matches!(
            s.start_upload(req(ArtefactKind::Model, "m", 10, None), admin(), 0),
            Err(CreatorError::InvalidInput(_))
        ));
        let page = s.list_uploads(PageRequest { offset: 10, limit: 4 });
        assert_eq!(page.items.iter().map(|u| u.upload_id).collect::<Vec<_>>(), vec![11, 12, 13, 14]);
        assert_eq!((page.total, page.next_offset), (MAX_OPEN_UPLOADS, Some(14)));
        // Ids are never reused, even after cancelling the newest upload.
        s.cancel_upload(MAX_OPEN_UPLOADS).unwrap();
        assert_eq!(start(&mut s, ArtefactKind::Model, 10, None), MAX_OPEN_UPLOADS + 1);
    }

    #[test]
    fn duplicate_content_returns_the_stored_artefact_and_frees_its_copy() {
        let mut s = store();
        let bytes = data(200_000, 6);
        let first = upload(&mut s, ArtefactKind::Model, &bytes, 64_000, 10);
        let space = s.space_bytes();
        let again = upload(&mut s, ArtefactKind::Model, &bytes, 50_000, 20);
        assert_eq!(again, first);
        assert_eq!(s.list_artefacts(None, PageRequest::first(10)).total, 1);
        assert_eq!(s.space_bytes(), space + first.size.div_ceil(GRANULE) * GRANULE);
        assert_eq!(s.free_regions(), vec![(space, space - GRANULE)]);
    }

    #[test]
    fn deleting_frees_the_region_for_reuse_first_fit() {
        let mut s = store();
        let a = upload(&mut s, ArtefactKind::ControllerWasm, &data(3 * GRANULE as usize, 7), 100_000, 1);
        let b = upload(&mut s, ArtefactKind::LlmWasm, &data(GRANULE as usize + 1, 8), 100_000, 2);
        let c = upload(&mut s, ArtefactKind::Model, &data(10, 9), 100_000, 3);
        assert_eq!(s.space_bytes(), GRANULE * (1 + 3 + 2 + 1));
        assert!(matches!(s.delete_artefact(&a.sha256, |_| true), Err(CreatorError::InUse(_))));
        assert!(s.artefact_info(&a.sha256).is_ok());
        s.delete_artefact(&a.sha256, |_| false).unwrap();
        assert!(matches!(s.artefact_info(&a.sha256), Err(CreatorError::NotFound(_))));
        assert!(matches!(s.delete_artefact(&a.sha256, |_| false), Err(CreatorError::NotFound(_))));
        assert!(matches!(s.read_all(&a.sha256), Err(CreatorError::NotFound(_))));
        assert_eq!(s.free_regions(), vec![(GRANULE, 3 * GRANULE)]);
        // Deleting the neighbour merges both into one free region.
        s.delete_artefact(&b.sha256, |_| false).unwrap();
        assert_eq!(s.free_regions(), vec![(GRANULE, 5 * GRANULE)]);
        // Two new files fit into the hole, the space does not grow.
        let d_bytes = data(2 * GRANULE as usize, 10);
        let d = upload(&mut s, ArtefactKind::Model, &d_bytes, 100_000, 4);
        let e_bytes = data(3 * GRANULE as usize - 5, 11);
        let e = upload(&mut s, ArtefactKind::Model, &e_bytes, 100_000, 5);
        assert_eq!(s.space_bytes(), GRANULE * 7);
        assert!(s.free_regions().is_empty());
        assert_eq!(s.read_all(&d.sha256).unwrap(), d_bytes);
        assert_eq!(s.read_all(&e.sha256).unwrap(), e_bytes);
        assert_eq!(s.read_all(&c.sha256).unwrap(), data(10, 9));
        // Listing: newest first, filtered by kind; newest() per kind.
        let models: Vec<String> = s
            .list_artefacts(Some(ArtefactKind::Model), PageRequest::first(10))
            .items
            .into_iter()
            .map(|i| i.sha256)
            .collect();
        assert_eq!(models, vec![e.sha256.clone(), d.sha256.clone(), c.sha256.clone()]);
        assert_eq!(s.newest(ArtefactKind::Model).unwrap(), e);
        assert_eq!(s.newest(ArtefactKind::ControllerWasm), None);
    }

    #[test]
    fn a_free_region_at_the_end_grows_into_a_bigger_allocation() {
        let mut s = store();
        let a = upload(&mut s, ArtefactKind::Model, &data(10, 1), 10, 1);
        let b = upload(&mut s, ArtefactKind::Model, &data(2 * GRANULE as usize, 2), 100_000, 2);
        s.delete_artefact(&b.sha256, |_| false).unwrap();
        assert_eq!(s.free_regions(), vec![(2 * GRANULE, 2 * GRANULE)]);
        let bytes = data(5 * GRANULE as usize, 3);
        let c = upload(&mut s, ArtefactKind::Model, &bytes, 1_000_000, 3);
        assert_eq!(s.space_bytes(), GRANULE * (1 + 1 + 5));
        assert!(s.free_regions().is_empty());
        assert_eq!(s.read_all(&c.sha256).unwrap(), bytes);
        assert_eq!(s.read_all(&a.sha256).unwrap(), data(10, 1));
    }

    #[test]
    fn a_cancelled_upload_stops_its_finish() {
        let mut s = store();
        let bytes = data(3_000_000, 12);
        let id = start(&mut s, ArtefactKind::Model, bytes.len(), None);
        chunk(&mut s, id, 0, &bytes[..2_000_000]).unwrap();
        chunk(&mut s, id, 2_000_000, &bytes[2_000_000..]).unwrap();
        let mut f = s.begin_finish(id).unwrap();
        assert!(!s.hash_more(&mut f, 1_000_000).unwrap());
        s.cancel_upload(id).unwrap();
        assert!(matches!(s.hash_more(&mut f, 1_000_000), Err(CreatorError::NotFound(_))));
        assert!(matches!(s.complete_finish(f, 1), Err(CreatorError::NotFound(_))));
    }

    #[test]
    fn upload_records_round_trip_through_their_encoding() {
        let mut r = UploadRecord {
            kind: ArtefactKind::LlmWasm,
            name: "llm · wasm".into(),
            total_size: u64::MAX,
            received: 7,
            expected_sha256: Some(sha(b"x")),
            started_by: admin(),
            started_at_ns: 1 << 60,
            region: Region { start: GRANULE, len: 3 * GRANULE },
        };
        assert_eq!(UploadRecord::from_bytes(r.to_bytes()), r);
        r.expected_sha256 = None;
        r.kind = ArtefactKind::Model;
        r.started_by = Principal::anonymous();
        assert_eq!(UploadRecord::from_bytes(Cow::Owned(r.clone().into_bytes())), r);
    }

    #[test]
    fn the_store_reopens_from_its_memories() {
        let mm = MemoryManager::init(DefaultMemoryImpl::default());
        let open = || {
            Store::init(
                mm.get(memory::UPLOADS),
                mm.get(memory::ARTEFACTS),
                mm.get(memory::BLOBS),
                mm.get(memory::FREE_REGIONS),
            )
        };
        let bytes = data(300_000, 13);
        let id = {
            let mut s = open();
            let id = start(&mut s, ArtefactKind::Model, bytes.len(), None);
            chunk(&mut s, id, 0, &bytes[..100_000]).unwrap();
            id
        };
        let mut s = open();
        assert_eq!(s.upload_status(id).unwrap().received, 100_000);
        chunk(&mut s, id, 100_000, &bytes[100_000..]).unwrap();
        assert_eq!(s.finish_upload(id, 1).unwrap().sha256, sha(&bytes));
        assert_eq!(start(&mut s, ArtefactKind::Model, 1, None), id + 1);
    }
}
