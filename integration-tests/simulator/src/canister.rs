//! A canister's system state: controllers, status, cycles, settings, code,
//! stable memory, call contexts and callbacks.

use std::collections::BTreeMap;

use candid::Principal;

use crate::instance::CanisterInstance;
use crate::stable::StableMemory;
use crate::types::{CallResult, LogRecord};

/// Where a call came from, so its response can be routed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Ingress(crate::types::MessageId),
    Canister {
        canister: Principal,
        callback: u64,
    },
    /// Timers and heartbeats: nobody waits for a reply.
    System,
}

pub enum RunStatus {
    Running,
    /// Stopping; these `stop_canister` calls are answered once stopped.
    Stopping(Vec<Origin>),
    Stopped,
}

impl RunStatus {
    /// The value of `ic0.canister_status`.
    pub fn code(&self) -> u32 {
        match self {
            RunStatus::Running => 1,
            RunStatus::Stopping(_) => 2,
            RunStatus::Stopped => 3,
        }
    }
}

pub struct Settings {
    pub freezing_threshold_seconds: u64,
    /// 0: no limit other than the wasm architecture's.
    pub wasm_memory_limit: u64,
    pub wasm_memory_threshold: u64,
    pub compute_allocation: u64,
    pub memory_allocation: u64,
    pub reserved_cycles_limit: u128,
    pub log_visibility: ic_management_canister_types::LogVisibility,
}

/// The context of one incoming call: open until it is replied and every call
/// it made has come back.
pub struct CallContext {
    pub origin: Origin,
    pub replied: bool,
    pub cycles_available: u128,
    pub outstanding_calls: u32,
    pub instructions: u64,
}

pub struct Callback {
    pub context: u64,
    pub reply: (u64, u64),
    pub reject: (u64, u64),
    pub cleanup: Option<(u64, u64)>,
    /// 0 for a guaranteed-response call.
    pub deadline_ns: u64,
    /// Cycles taken when the call was made for the callback's execution.
    pub prepaid_execution: u128,
}

pub struct Canister {
    pub controllers: Vec<Principal>,
    pub status: RunStatus,
    pub cycles: u128,
    pub settings: Settings,
    pub instance: Option<CanisterInstance>,
    pub module_hash: Option<[u8; 32]>,
    pub stable: StableMemory,
    pub certified_data: Vec<u8>,
    pub global_timer: u64,
    pub version: u64,
    pub logs: Vec<LogRecord>,
    pub next_log_index: u64,
    pub chunks: BTreeMap<[u8; 32], Vec<u8>>,
    pub contexts: BTreeMap<u64, CallContext>,
    pub next_context: u64,
    pub callbacks: BTreeMap<u64, Callback>,
    pub instructions_executed: u64,
    pub cycles_burned_executing: u128,
    /// The canister history `canister_info` reports: the latest
    /// [`HISTORY_KEPT`] changes, and how many there were in all.
    pub history: std::collections::VecDeque<ic_management_canister_types::Change>,
    pub total_changes: u64,
}

/// Changes the IC keeps in a canister's history (it may keep more; at least
/// the 20 most recent).
pub const HISTORY_KEPT: usize = 20;

impl Canister {
    pub fn new(controllers: Vec<Principal>, cycles: u128, freezing_threshold_seconds: u64) -> Self {
        Canister {
            controllers,
            status: RunStatus::Running,
            cycles,
            settings: Settings {
                freezing_threshold_seconds,
                wasm_memory_limit: 0,
                wasm_memory_threshold: 0,
                compute_allocation: 0,
                memory_allocation: 0,
                reserved_cycles_limit: 5_000_000_000_000,
                log_visibility: Default::default(),
            },
            instance: None,
            module_hash: None,
            stable: StableMemory::default(),
            certified_data: Vec::new(),
            global_timer: 0,
            version: 0,
            logs: Vec::new(),
            next_log_index: 0,
            chunks: BTreeMap::new(),
            contexts: BTreeMap::new(),
            next_context: 0,
            callbacks: BTreeMap::new(),
            instructions_executed: 0,
            cycles_burned_executing: 0,
            history: Default::default(),
            total_changes: 0,
        }
    }

    /// Memory the canister is charged for: heap, stable memory, module and
    /// chunk store.
    pub fn memory_bytes(&self) -> u64 {
        let heap = self.instance.as_ref().map_or(0, |i| i.heap_bytes());
        let module = self.instance.as_ref().map_or(0, |i| i.module.installed_size as u64);
        let chunks: u64 = self.chunks.values().map(|c| c.len() as u64).sum();
        heap + self.stable.size_bytes() + module + chunks
    }

    /// Cycles the canister must keep: what its memory and compute allocation
    /// cost over its freezing threshold.
    pub fn freezing_reserve(&self, costs: &crate::cost::CostModel) -> u128 {
        costs.freezing_threshold_cycles(
            self.memory_bytes(),
            self.settings.compute_allocation,
            self.settings.freezing_threshold_seconds,
        )
    }

    pub fn open_context(&mut self, origin: Origin, cycles_available: u128, replied: bool) -> u64 {
        let id = self.next_context;
        self.next_context += 1;
        self.contexts
            .insert(id, CallContext { origin, replied, cycles_available, outstanding_calls: 0, instructions: 0 });
        id
    }

    pub fn is_controller(&self, p: &Principal) -> bool {
        self.controllers.contains(p)
    }

    pub fn push_log(&mut self, time_ns: u64, text: String, max_records: usize) {
        self.logs.push(LogRecord { index: self.next_log_index, time_ns, text });
        self.next_log_index += 1;
        if self.logs.len() > max_records {
            let excess = self.logs.len() - max_records;
            self.logs.drain(..excess);
        }
    }

    /// Answers still owed when the canister loses its code: every open call
    /// context that has not replied, with the callbacks dropped.
    pub fn drop_call_contexts(&mut self) -> Vec<(Origin, u128)> {
        self.callbacks.clear();
        std::mem::take(&mut self.contexts)
            .into_values()
            .filter(|c| !c.replied)
            .map(|c| (c.origin, c.cycles_available))
            .collect()
    }
}

/// A message in flight between canisters (or from a user).
pub enum Message {
    Request(Request),
    Response(Response),
}

pub struct Request {
    pub sender: Principal,
    pub receiver: Principal,
    pub method: String,
    pub payload: Vec<u8>,
    pub cycles: u128,
    pub origin: Origin,
    pub deadline_ns: u64,
}

pub struct Response {
    pub receiver: Principal,
    pub callback: u64,
    pub result: CallResult,
    pub refund: u128,
}
