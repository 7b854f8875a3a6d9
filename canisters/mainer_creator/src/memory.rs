//! Stable memory layout of the creator: every virtual memory id, named once.

use std::borrow::Cow;
use std::cell::RefCell;

use candid::CandidType;
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{DefaultMemoryImpl, Storable};
use serde::de::DeserializeOwned;

pub type Memory = VirtualMemory<DefaultMemoryImpl>;

// Ids are never reused.
pub const CONFIG: MemoryId = MemoryId::new(0);
pub const JOBS: MemoryId = MemoryId::new(1);
pub const FLEET_JOBS: MemoryId = MemoryId::new(2);
// The artefact store (store.rs).
pub const UPLOADS: MemoryId = MemoryId::new(10);
pub const ARTEFACTS: MemoryId = MemoryId::new(11);
pub const BLOBS: MemoryId = MemoryId::new(12);
pub const FREE_REGIONS: MemoryId = MemoryId::new(13);

thread_local! {
    static MANAGER: RefCell<Option<MemoryManager<DefaultMemoryImpl>>> = const { RefCell::new(None) };
}

/// The virtual memory `id` of the canister's stable memory.
pub fn get(id: MemoryId) -> Memory {
    MANAGER.with(|m| m.borrow_mut().get_or_insert_with(|| MemoryManager::init(DefaultMemoryImpl::default())).get(id))
}

/// A Candid-encoded value in stable memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored<T>(pub T);

impl<T: CandidType + DeserializeOwned> Storable for Stored<T> {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(candid::encode_one(&self.0).expect("a stored value encodes"))
    }
    fn into_bytes(self) -> Vec<u8> {
        candid::encode_one(&self.0).expect("a stored value encodes")
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        Stored(candid::decode_one(&bytes).expect("a stored value decodes"))
    }
    const BOUND: Bound = Bound::Unbounded;
}
