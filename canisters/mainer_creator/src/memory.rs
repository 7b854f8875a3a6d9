//! Stable memory layout of the creator: every virtual memory id, named once.

use std::cell::RefCell;

use ic_stable_structures::DefaultMemoryImpl;
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};

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

pub use mainer_types::stable::Stored;
