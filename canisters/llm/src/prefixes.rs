//! Shared prompt prefixes: saved sessions (`llm_engine::snapshot`) in
//! stable memory, by name. Every challenge prompt starts with the same
//! system part; a controller ingests it once in a conversation of its own
//! and saves it (`save_prompt_prefix`), and from then on any new
//! conversation whose prompt starts with those tokens starts from the saved
//! keys and values instead of evaluating them again.
//!
//! Each prefix is tagged with the SHA-256 of the model file it was computed
//! with and is only used with that model; loading another file drops the
//! others' prefixes. The directory (name → model, tokens, size) and the
//! bytes are two stable maps, so finding a match reads only the directory,
//! and prefixes survive upgrades. A prefix is exported in chunks with the
//! SHA-256 of its bytes and imported from an uploaded file whose SHA-256
//! must match (a Challenger computes prefixes once, its mAIners' LLMs take
//! them over).

use std::borrow::Cow;

use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, Storable};

/// Prefixes that can be stored at once.
pub const MAX_PREFIXES: usize = 16;
pub const MAX_NAME_BYTES: usize = 256;

/// What the directory keeps of a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixEntry {
    /// SHA-256 of the model file (hex), as `uploaded_file_details` gives it.
    pub model_sha256: String,
    pub tokens: Vec<u32>,
    pub bytes: u64,
    /// SHA-256 (hex) of the saved session bytes, as exported.
    pub sha256: String,
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Storable for PrefixEntry {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        let mut out = Vec::with_capacity(24 + self.model_sha256.len() + self.sha256.len() + 4 * self.tokens.len());
        for text in [&self.model_sha256, &self.sha256] {
            put_u32(&mut out, text.len() as u32);
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&self.bytes.to_le_bytes());
        put_u32(&mut out, self.tokens.len() as u32);
        for &t in &self.tokens {
            put_u32(&mut out, t);
        }
        Cow::Owned(out)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }

    fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
        // Written by `to_bytes` only.
        let b = bytes.as_ref();
        let mut at = 0;
        let mut text = || {
            let len = u32_at(b, at) as usize;
            let t = String::from_utf8_lossy(&b[at + 4..at + 4 + len]).into_owned();
            at += 4 + len;
            t
        };
        let (model_sha256, sha256) = (text(), text());
        let mut size = [0u8; 8];
        size.copy_from_slice(&b[at..at + 8]);
        let n = u32_at(b, at + 8) as usize;
        let tokens = (0..n).map(|i| u32_at(b, at + 12 + 4 * i)).collect();
        PrefixEntry { model_sha256, tokens, bytes: u64::from_le_bytes(size), sha256 }
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// The saved session bytes of one prefix.
struct Blob(Vec<u8>);

impl Storable for Blob {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn from_bytes(bytes: Cow<'_, [u8]>) -> Self {
        Blob(bytes.into_owned())
    }

    const BOUND: Bound = Bound::Unbounded;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrefixError {
    BadName,
    Full,
}

impl std::fmt::Display for PrefixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrefixError::BadName => write!(f, "a prefix name is 1 to {MAX_NAME_BYTES} bytes"),
            PrefixError::Full => write!(f, "{MAX_PREFIXES} prefixes are stored: remove one first"),
        }
    }
}

pub struct Prefixes<M: Memory> {
    directory: StableBTreeMap<String, PrefixEntry, M>,
    data: StableBTreeMap<String, Blob, M>,
}

impl<M: Memory> Prefixes<M> {
    pub fn init(directory: M, data: M) -> Self {
        Prefixes { directory: StableBTreeMap::init(directory), data: StableBTreeMap::init(data) }
    }

    /// Stores (or replaces) prefix `name`.
    pub fn save(&mut self, name: &str, entry: PrefixEntry, snapshot: Vec<u8>) -> Result<(), PrefixError> {
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(PrefixError::BadName);
        }
        let name = name.to_string();
        if !self.directory.contains_key(&name) && self.directory.len() as usize >= MAX_PREFIXES {
            return Err(PrefixError::Full);
        }
        self.data.insert(name.clone(), Blob(snapshot));
        self.directory.insert(name, entry);
        Ok(())
    }

    pub fn entry(&self, name: &str) -> Option<PrefixEntry> {
        self.directory.get(&name.to_string())
    }

    /// The saved session bytes of prefix `name`.
    pub fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.data.get(&name.to_string()).map(|b| b.0)
    }

    pub fn remove(&mut self, name: &str) -> bool {
        self.data.remove(&name.to_string());
        self.directory.remove(&name.to_string()).is_some()
    }

    pub fn list(&self) -> Vec<(String, PrefixEntry)> {
        self.directory.iter().map(|e| (e.key().clone(), e.value())).collect()
    }

    /// Drops every prefix not computed with the model file `model_sha256`.
    pub fn keep_only(&mut self, model_sha256: &str) {
        let stale: Vec<String> =
            self.list().into_iter().filter(|(_, e)| e.model_sha256 != model_sha256).map(|(n, _)| n).collect();
        for name in stale {
            self.remove(&name);
        }
    }

    /// The saved bytes of the longest prefix of `input` computed with the
    /// model `model_sha256` (no longer than `input`).
    pub fn longest_match(&self, model_sha256: &str, input: &[u32]) -> Option<Vec<u8>> {
        let (name, _) = self
            .list()
            .into_iter()
            .filter(|(_, e)| e.model_sha256 == model_sha256 && !e.tokens.is_empty() && input.starts_with(&e.tokens))
            .max_by_key(|(_, e)| e.tokens.len())?;
        self.data.get(&name).map(|b| b.0)
    }
}
