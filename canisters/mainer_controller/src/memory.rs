//! Stable memory layout of the controller: every virtual memory id, named
//! once. Ids are never reused or renumbered: an older release's data stays
//! in its memory.

use ic_stable_structures::DefaultMemoryImpl;
use ic_stable_structures::memory_manager::{MemoryId, VirtualMemory};

pub type Memory = VirtualMemory<DefaultMemoryImpl>;

/// `Config` (cell).
pub const CONFIG: MemoryId = MemoryId::new(0);
/// LLM canister -> its slot in the pool.
pub const LLMS: MemoryId = MemoryId::new(1);
/// The ShareAgents a ShareService serves.
pub const AGENTS: MemoryId = MemoryId::new(2);
/// Unfinished work items by id.
pub const QUEUE: MemoryId = MemoryId::new(3);
/// Finished work items by id, trimmed to the history size.
pub const HISTORY: MemoryId = MemoryId::new(4);
/// Counters and id sequences (cell).
pub const COUNTERS: MemoryId = MemoryId::new(5);
/// The work queue's index by challenge and origin (schema 1).
pub const WORK_INDEX: MemoryId = MemoryId::new(6);
/// The layout version (cell): data of an older version is migrated once.
pub const SCHEMA: MemoryId = MemoryId::new(7);
/// The work queue's lanes (schema 2): queued, in flight, answered items.
pub const QUEUED_LANE: MemoryId = MemoryId::new(8);
pub const IN_FLIGHT_LANE: MemoryId = MemoryId::new(9);
pub const ANSWERED_LANE: MemoryId = MemoryId::new(10);
/// ShareService: agents waiting for a place in a full queue, in turn (`turns.rs`).
pub const WAITLIST: MemoryId = MemoryId::new(11);
/// ShareService: each waiting agent's turn.
pub const WAITLIST_AGENTS: MemoryId = MemoryId::new(12);
/// ShareService: unfinished items per agent.
pub const AGENT_ITEMS: MemoryId = MemoryId::new(13);
/// The cycles budget (`budget.rs`).
pub const BUDGET: MemoryId = MemoryId::new(20);
/// A Challenger's or Judge's current task (`game_roles.rs`; cell).
pub const GAME_TASK: MemoryId = MemoryId::new(21);
