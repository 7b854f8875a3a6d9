//! Stable memory layout of the creator: every virtual memory id, named once.

use std::cell::RefCell;

use ic_stable_structures::DefaultMemoryImpl;
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};

pub type Memory = VirtualMemory<DefaultMemoryImpl>;

// Ids are never reused or renumbered: an old release's data stays in its memory.
/// `Config` (cell).
pub const CONFIG: MemoryId = MemoryId::new(0);
/// job id -> `Job`: every factory job, finished ones included.
pub const JOBS: MemoryId = MemoryId::new(1);
/// fleet job id -> `FleetJob`.
pub const FLEET_JOBS: MemoryId = MemoryId::new(2);
/// Running factory job id -> when its next step is due (ns): the only jobs
/// a timer round looks at.
pub const RUNNING_JOBS: MemoryId = MemoryId::new(3);
/// LLM canister -> the job that made it.
pub const LLM_JOBS: MemoryId = MemoryId::new(4);
/// job id -> its controller canister, once created: the mAIners.
pub const MAINER_JOBS: MemoryId = MemoryId::new(5);
/// Running fleet job ids.
pub const RUNNING_FLEET: MemoryId = MemoryId::new(6);
/// Cycles running jobs will still spend (cell), kept with the running index.
pub const COMMITTED_CYCLES: MemoryId = MemoryId::new(8);
/// The layout version of the indexes above (cell); older data is indexed
/// once in `post_upgrade`.
pub const SCHEMA: MemoryId = MemoryId::new(7);
// The economy (economy.rs).
/// `EconomyState`: prices, limits and the books (cell).
pub const ECONOMY: MemoryId = MemoryId::new(14);
/// (payer, created_at_time) -> the job of that order: a repeated order call is the same order.
pub const ORDER_KEYS: MemoryId = MemoryId::new(15);
/// (owner, job id): the orders of each user.
pub const USER_ORDERS: MemoryId = MemoryId::new(16);
/// Job ids whose refund is due.
pub const REFUNDS_DUE: MemoryId = MemoryId::new(17);
/// ShareService controller -> ShareAgents made for it.
pub const SHARE_SERVICES: MemoryId = MemoryId::new(18);
/// Controller canister -> the job that made it (schema 2).
pub const CONTROLLER_JOBS: MemoryId = MemoryId::new(19);
/// Controller canister -> the cycles it reported last (`report_cycles`).
pub const MAINER_CYCLES: MemoryId = MemoryId::new(20);
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
