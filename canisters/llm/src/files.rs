//! Uploaded files (the GGUF model) in stable memory.
//!
//! Each file is stored contiguously in a virtual memory of its own (a "slot"),
//! so the model is read straight from stable memory by offset — through
//! [`StableFile`], a `ByteSource` — and never assembled in the heap first.
//! The directory maps a filename to its slot, its size and the running
//! SHA-256 state (see [`crate::sha`]), all in stable memory, so sizes and
//! hashes survive upgrades without re-reading the file.
//!
//! Chunks must arrive in order; offset 0 restarts a file (its slot is
//! reused; stable memory never shrinks, so the slot keeps its pages). A chunk
//! sent again after it was stored (a client retrying after an ingress
//! time-out) is accepted when its bytes match what is stored. Files are never
//! deleted; at most [`MAX_FILES`] distinct names exist.

use std::borrow::Cow;

use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, Storable};
use llm_engine::ByteSource;
use llm_engine::source::check_range;
use mainer_types::llama_cpp::{FileUploadInputRecord, FileUploadRecord, MAX_FILE_UPLOAD_CHUNK_BYTES};

use crate::sha::{self, Sha256State};

/// Distinct filenames that can be stored (one virtual memory each).
pub const MAX_FILES: usize = 16;
pub const MAX_FILENAME_BYTES: usize = 1024;
const WASM_PAGE: u64 = 65_536;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileError {
    EmptyFilename,
    FilenameTooLong {
        bytes: usize,
    },
    ChunkTooLarge {
        bytes: usize,
    },
    ChunkSizeMismatch {
        chunksize: u64,
        actual: usize,
    },
    /// Chunks must continue at the file's current size (or restart at 0).
    OutOfOrder {
        filename: String,
        offset: u64,
        size: u64,
    },
    TooManyFiles,
    OutOfStableMemory,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::EmptyFilename => write!(f, "filename is empty"),
            FileError::FilenameTooLong { bytes } => {
                write!(f, "filename of {bytes} bytes is longer than {MAX_FILENAME_BYTES} bytes")
            }
            FileError::ChunkTooLarge { bytes } => {
                write!(f, "chunk of {bytes} bytes is larger than {MAX_FILE_UPLOAD_CHUNK_BYTES} bytes")
            }
            FileError::ChunkSizeMismatch { chunksize, actual } => {
                write!(f, "chunksize {chunksize} is not the chunk's length {actual}")
            }
            FileError::OutOfOrder { filename, offset, size } => write!(
                f,
                "offset {offset} is not the size of {filename} ({size} bytes): chunks must arrive in order, offset 0 restarts"
            ),
            FileError::TooManyFiles => write!(f, "no room for another file (at most {MAX_FILES} filenames)"),
            FileError::OutOfStableMemory => write!(f, "stable memory cannot grow to hold the file"),
        }
    }
}

/// A directory entry: where a file lives, how long it is, its hash so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub slot: u8,
    pub size: u64,
    pub sha256: Sha256State,
}

const ENTRY_LEN: usize = 1 + 8 + sha::ENCODED_LEN;

impl Storable for FileEntry {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY_LEN);
        out.push(self.slot);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.sha256.to_bytes());
        out
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // Written only by `into_bytes`: a mismatch is a bug, not input.
        let size = u64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let sha256 = Sha256State::from_bytes(&bytes[9..]).expect("a valid stored SHA-256 state");
        FileEntry { slot: bytes[0], size, sha256 }
    }

    const BOUND: Bound = Bound::Bounded { max_size: ENTRY_LEN as u32, is_fixed_size: true };
}

pub struct FileStore<M: Memory> {
    directory: StableBTreeMap<String, FileEntry, M>,
    /// One memory per slot, `MAX_FILES` of them.
    slots: Vec<M>,
}

impl<M: Memory> FileStore<M> {
    /// `slots` must hold `MAX_FILES` memories, used for nothing else.
    pub fn init(directory: M, slots: Vec<M>) -> Self {
        assert_eq!(slots.len(), MAX_FILES, "one memory per file slot");
        FileStore { directory: StableBTreeMap::init(directory), slots }
    }

    pub fn entry(&self, filename: &str) -> Option<FileEntry> {
        self.directory.get(&filename.to_string())
    }

    pub fn size(&self, filename: &str) -> Option<u64> {
        self.entry(filename).map(|e| e.size)
    }

    pub fn info(&self, filename: &str) -> Option<FileUploadRecord> {
        self.entry(filename).map(|e| record(filename, &e))
    }

    /// The file's bytes, readable in place.
    pub fn open(&self, filename: &str) -> Option<StableFile<'_, M>> {
        let entry = self.entry(filename)?;
        Some(StableFile { memory: &self.slots[entry.slot as usize], len: entry.size })
    }

    /// Stores one chunk; returns the file's size and the SHA-256 of all of it.
    pub fn upload(&mut self, input: &FileUploadInputRecord) -> Result<FileUploadRecord, FileError> {
        let name = &input.filename;
        if name.is_empty() {
            return Err(FileError::EmptyFilename);
        }
        if name.len() > MAX_FILENAME_BYTES {
            return Err(FileError::FilenameTooLong { bytes: name.len() });
        }
        let chunk = &input.chunk;
        if chunk.len() > MAX_FILE_UPLOAD_CHUNK_BYTES {
            return Err(FileError::ChunkTooLarge { bytes: chunk.len() });
        }
        if input.chunksize != chunk.len() as u64 {
            return Err(FileError::ChunkSizeMismatch { chunksize: input.chunksize, actual: chunk.len() });
        }
        let existing = self.entry(name);
        let mut entry = match (&existing, input.offset) {
            (Some(e), 0) => FileEntry { slot: e.slot, size: 0, sha256: Sha256State::new() },
            (None, 0) => FileEntry { slot: self.free_slot()?, size: 0, sha256: Sha256State::new() },
            (Some(e), offset) if offset == e.size => e.clone(),
            (Some(e), offset) if self.is_repeat(e, offset, chunk) => return Ok(record(name, e)),
            (e, offset) => {
                return Err(FileError::OutOfOrder {
                    filename: name.clone(),
                    offset,
                    size: e.as_ref().map_or(0, |e| e.size),
                });
            }
        };
        let memory = &self.slots[entry.slot as usize];
        grow_to(memory, entry.size + chunk.len() as u64)?;
        memory.write(entry.size, chunk);
        entry.size += chunk.len() as u64;
        entry.sha256.update(chunk);
        let result = record(name, &entry);
        self.directory.insert(name.clone(), entry);
        Ok(result)
    }

    /// Whether `chunk` at `offset` is the last chunk already stored.
    fn is_repeat(&self, entry: &FileEntry, offset: u64, chunk: &[u8]) -> bool {
        if chunk.is_empty() || offset.checked_add(chunk.len() as u64) != Some(entry.size) {
            return false;
        }
        let mut stored = vec![0u8; chunk.len()];
        self.slots[entry.slot as usize].read(offset, &mut stored);
        stored == chunk
    }

    fn free_slot(&self) -> Result<u8, FileError> {
        let mut used = [false; MAX_FILES];
        for entry in self.directory.values() {
            used[entry.slot as usize] = true;
        }
        used.iter().position(|u| !u).map(|s| s as u8).ok_or(FileError::TooManyFiles)
    }
}

fn record(filename: &str, entry: &FileEntry) -> FileUploadRecord {
    FileUploadRecord { filename: filename.to_string(), filesize: entry.size, filesha256: entry.sha256.hex() }
}

fn grow_to<M: Memory>(memory: &M, bytes: u64) -> Result<(), FileError> {
    let pages = bytes.div_ceil(WASM_PAGE);
    let have = memory.size();
    if pages > have && memory.grow(pages - have) < 0 {
        return Err(FileError::OutOfStableMemory);
    }
    Ok(())
}

/// An uploaded file as a `ByteSource`: reads go straight to stable memory.
pub struct StableFile<'a, M: Memory> {
    memory: &'a M,
    len: u64,
}

impl<M: Memory> ByteSource for StableFile<'_, M> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> llm_engine::Result<()> {
        check_range(offset, buf.len() as u64, self.len)?;
        self.memory.read(offset, buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;
    use sha2::{Digest, Sha256};

    fn store() -> FileStore<VectorMemory> {
        FileStore::init(VectorMemory::default(), (0..MAX_FILES).map(|_| VectorMemory::default()).collect())
    }

    fn chunk(name: &str, offset: u64, bytes: &[u8]) -> FileUploadInputRecord {
        FileUploadInputRecord { filename: name.into(), chunk: bytes.to_vec(), chunksize: bytes.len() as u64, offset }
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn read_all(s: &FileStore<VectorMemory>, name: &str) -> Vec<u8> {
        let file = s.open(name).unwrap();
        let mut out = vec![0u8; file.len() as usize];
        file.read_at(0, &mut out).unwrap();
        out
    }

    #[test]
    fn chunks_append_contiguously_and_the_hash_covers_the_file() {
        let mut s = store();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut last = None;
        for (i, part) in data.chunks(70_000).enumerate() {
            last = Some(s.upload(&chunk("models/model.gguf", (i * 70_000) as u64, part)).unwrap());
        }
        let last = last.unwrap();
        assert_eq!((last.filesize, last.filesha256), (data.len() as u64, sha(&data)));
        assert_eq!(read_all(&s, "models/model.gguf"), data);
        let file = s.open("models/model.gguf").unwrap();
        let mut buf = [0u8; 10];
        file.read_at(65_530, &mut buf).unwrap();
        assert_eq!(&buf, &data[65_530..65_540], "reads across page boundaries");
        assert!(file.read_at(199_995, &mut buf).is_err(), "past the end");
        assert_eq!(s.info("models/model.gguf").unwrap().filesha256, sha(&data));
        assert!(s.info("other").is_none() && s.open("other").is_none());
    }

    #[test]
    fn offset_zero_restarts_and_gaps_are_refused() {
        let mut s = store();
        s.upload(&chunk("f", 0, b"abcdef")).unwrap();
        assert!(matches!(s.upload(&chunk("f", 7, b"x")), Err(FileError::OutOfOrder { offset: 7, size: 6, .. })));
        assert!(matches!(s.upload(&chunk("f", 3, b"x")), Err(FileError::OutOfOrder { .. })));
        assert!(s.upload(&chunk("new", 5, b"x")).is_err(), "a new file starts at 0");
        let r = s.upload(&chunk("f", 0, b"xy")).unwrap();
        assert_eq!((r.filesize, r.filesha256), (2, sha(b"xy")));
        let r = s.upload(&chunk("f", 2, b"z")).unwrap();
        assert_eq!(r.filesha256, sha(b"xyz"));
        assert_eq!(read_all(&s, "f"), b"xyz");
        assert_eq!(s.entry("f").unwrap().slot, 0, "the restarted file keeps its slot");
    }

    #[test]
    fn a_repeated_last_chunk_is_accepted_once_stored() {
        let mut s = store();
        s.upload(&chunk("f", 0, b"abc")).unwrap();
        s.upload(&chunk("f", 3, b"def")).unwrap();
        let r = s.upload(&chunk("f", 3, b"def")).unwrap();
        assert_eq!((r.filesize, r.filesha256), (6, sha(b"abcdef")));
        assert!(s.upload(&chunk("f", 3, b"dex")).is_err(), "different bytes are not a repeat");
        assert_eq!(read_all(&s, "f"), b"abcdef");
    }

    #[test]
    fn bad_chunks_are_refused() {
        let mut s = store();
        let mut c = chunk("f", 0, b"abc");
        c.chunksize = 4;
        assert!(matches!(s.upload(&c), Err(FileError::ChunkSizeMismatch { .. })));
        let big = vec![0u8; MAX_FILE_UPLOAD_CHUNK_BYTES + 1];
        assert!(matches!(s.upload(&chunk("f", 0, &big)), Err(FileError::ChunkTooLarge { .. })));
        assert_eq!(s.upload(&chunk("", 0, b"a")), Err(FileError::EmptyFilename));
        assert!(matches!(s.upload(&chunk(&"n".repeat(2000), 0, b"a")), Err(FileError::FilenameTooLong { .. })));
        assert_eq!(s.size("f"), None);
        let max = vec![1u8; MAX_FILE_UPLOAD_CHUNK_BYTES];
        assert_eq!(s.upload(&chunk("f", 0, &max)).unwrap().filesize, MAX_FILE_UPLOAD_CHUNK_BYTES as u64);
    }

    #[test]
    fn files_get_their_own_slots_until_none_is_left() {
        let mut s = store();
        for i in 0..MAX_FILES {
            s.upload(&chunk(&format!("f{i}"), 0, &[i as u8; 3])).unwrap();
        }
        assert_eq!(s.upload(&chunk("one more", 0, b"x")), Err(FileError::TooManyFiles));
        for i in 0..MAX_FILES {
            assert_eq!(read_all(&s, &format!("f{i}")), [i as u8; 3]);
        }
        s.upload(&chunk("f3", 0, b"again")).unwrap();
        assert_eq!(read_all(&s, "f3"), b"again");
    }

    #[test]
    fn entries_round_trip() {
        let mut sha256 = Sha256State::new();
        sha256.update(b"hello world");
        let e = FileEntry { slot: 7, size: 11, sha256 };
        assert_eq!(FileEntry::from_bytes(Cow::Owned(e.clone().into_bytes())), e);
        assert_eq!(e.to_bytes().len(), ENTRY_LEN);
    }
}
