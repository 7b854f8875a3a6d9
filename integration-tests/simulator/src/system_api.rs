//! The `ic0` system API as host functions.
//!
//! A message runs with a [`MessageEnv`] (what the system tells the canister)
//! and collects [`Effects`] (what the canister asks of the system). Effects are
//! applied by the scheduler only when the message completes without a trap;
//! logs are kept either way, as on the IC.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use candid::Principal;
use wasmtime::Result;
use wasmtime::{Caller, Linker, Memory, ResourceLimiter};

use crate::cost::CostModel;
use crate::meter::{self, BYTE_TRANSMISSION_COST_FACTOR, DirtyStablePages, logging_bytes, syscall};
use crate::stable::{StableMemory, WASM_PAGE};

/// Which entry point is running; decides which system calls are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Start,
    Init,
    PreUpgrade,
    PostUpgrade,
    Update,
    /// A query method executed as an update (its changes are discarded).
    ReplicatedQuery,
    Query,
    /// A composite query method, and the callbacks of its calls.
    CompositeQuery,
    CompositeReplyCallback,
    CompositeRejectCallback,
    ReplyCallback,
    RejectCallback,
    Cleanup,
    GlobalTimer,
    Heartbeat,
    InspectMessage,
}

impl EntryKind {
    fn may_reply(self) -> bool {
        matches!(self, Self::Update | Self::ReplicatedQuery | Self::Query | Self::ReplyCallback | Self::RejectCallback)
            || self.is_composite()
    }
    fn may_call(self) -> bool {
        matches!(self, Self::Update | Self::ReplyCallback | Self::RejectCallback | Self::GlobalTimer | Self::Heartbeat)
            || self.is_composite()
    }
    fn is_composite(self) -> bool {
        matches!(self, Self::CompositeQuery | Self::CompositeReplyCallback | Self::CompositeRejectCallback)
    }
    /// The name the IC gives this mode in its contract-violation messages.
    fn mode_name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Init | Self::PostUpgrade => "init",
            Self::PreUpgrade => "pre upgrade",
            Self::Update => "update",
            Self::ReplicatedQuery => "replicated query",
            Self::Query => "non replicated query",
            Self::CompositeQuery => "composite query",
            Self::CompositeReplyCallback => "composite reply callback",
            Self::CompositeRejectCallback => "composite reject callback",
            Self::ReplyCallback => "reply callback",
            Self::RejectCallback => "reject callback",
            Self::Cleanup => "cleanup",
            Self::GlobalTimer | Self::Heartbeat => "system task",
            Self::InspectMessage => "inspect message",
        }
    }
    fn may_accept_cycles(self) -> bool {
        matches!(self, Self::Update | Self::ReplyCallback | Self::RejectCallback)
    }
    fn has_arg(self) -> bool {
        matches!(
            self,
            Self::Init
                | Self::PostUpgrade
                | Self::Update
                | Self::ReplicatedQuery
                | Self::Query
                | Self::CompositeQuery
                | Self::ReplyCallback
                | Self::CompositeReplyCallback
                | Self::InspectMessage
        )
    }
    fn has_reject(self) -> bool {
        matches!(self, Self::RejectCallback | Self::CompositeRejectCallback | Self::Cleanup)
    }
    fn is_callback(self) -> bool {
        matches!(
            self,
            Self::ReplyCallback
                | Self::RejectCallback
                | Self::CompositeReplyCallback
                | Self::CompositeRejectCallback
                | Self::Cleanup
        )
    }
    fn may_set_certified_data(self) -> bool {
        !matches!(self, Self::Query | Self::ReplicatedQuery | Self::InspectMessage | Self::Cleanup | Self::Start)
            && !self.is_composite()
    }
    /// Whether the execution is replicated (queries and their composite
    /// callbacks run on one node).
    pub fn replicated(self) -> bool {
        !matches!(self, Self::Query | Self::InspectMessage) && !self.is_composite()
    }
}

/// What the system tells the canister during one message.
#[derive(Clone, Debug)]
pub struct MessageEnv {
    pub kind: EntryKind,
    pub canister_id: Principal,
    pub caller: Principal,
    pub method: String,
    pub arg: Vec<u8>,
    pub reject_code: u32,
    pub reject_message: String,
    pub time_ns: u64,
    pub controllers: Vec<Principal>,
    /// Balance when the message started (after the execution prepayment).
    pub balance: u128,
    /// Cycles the canister must keep (freezing threshold).
    pub frozen_reserve: u128,
    /// Cycles still available in the call context.
    pub cycles_available: u128,
    pub cycles_refunded: u128,
    pub deadline_ns: u64,
    /// Whether the call context already replied (e.g. in an earlier callback).
    pub replied: bool,
    pub canister_version: u64,
    /// 1 running, 2 stopping, 3 stopped.
    pub status: u32,
    pub global_timer: u64,
    pub instruction_limit: u64,
    /// Instructions already spent in this call context by earlier messages.
    pub call_context_instructions: u64,
    pub certificate: Option<Vec<u8>>,
    pub subnet_id: Principal,
    pub max_message_bytes: usize,
    pub max_certified_data_bytes: usize,
    pub stable_limit_pages: u64,
    pub costs: CostModel,
    /// Whether the module is wasm64 (its instructions cost double).
    pub wasm64: bool,
    /// The instruction limit of a callback, whose execution a call prepays.
    pub callback_instructions: u64,
}

impl Default for MessageEnv {
    /// What a module's start function sees: no message, nothing available.
    fn default() -> Self {
        MessageEnv {
            kind: EntryKind::Start,
            canister_id: Principal::management_canister(),
            caller: Principal::management_canister(),
            method: String::new(),
            arg: Vec::new(),
            reject_code: 0,
            reject_message: String::new(),
            time_ns: 0,
            controllers: Vec::new(),
            balance: 0,
            frozen_reserve: 0,
            cycles_available: 0,
            cycles_refunded: 0,
            deadline_ns: 0,
            replied: false,
            canister_version: 0,
            status: 1,
            global_timer: 0,
            instruction_limit: 0,
            call_context_instructions: 0,
            certificate: None,
            subnet_id: Principal::management_canister(),
            max_message_bytes: 0,
            max_certified_data_bytes: 0,
            stable_limit_pages: 0,
            costs: CostModel::default(),
            wasm64: false,
            callback_instructions: 0,
        }
    }
}

/// An inter-canister call being built or performed.
#[derive(Clone, Debug)]
pub struct OutgoingCall {
    pub callee: Principal,
    pub method: String,
    pub payload: Vec<u8>,
    pub cycles: u128,
    pub reply: (u64, u64),
    pub reject: (u64, u64),
    pub cleanup: Option<(u64, u64)>,
    pub timeout_seconds: Option<u32>,
    /// Set by `call_perform`: the cycles it took for the callback's execution.
    pub prepaid_execution: u128,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Reply(Vec<u8>),
    Reject(String),
}

/// What the canister asked of the system during one message.
#[derive(Default, Debug)]
pub struct Effects {
    pub reply_buffer: Vec<u8>,
    pub response: Option<Response>,
    pub cycles_accepted: u128,
    pub cycles_burned: u128,
    /// Cycles that left the balance: attached to calls and call fees.
    pub cycles_spent: u128,
    pub calls: Vec<OutgoingCall>,
    pub building: Option<OutgoingCall>,
    pub certified_data: Option<Vec<u8>>,
    pub global_timer: Option<u64>,
    pub message_accepted: bool,
    pub logs: Vec<String>,
    /// Stable-memory pages written, each charged once per message.
    pub stable_dirty: DirtyStablePages,
}

/// Per-store data: the memory handle, stable memory (moved in for the
/// duration of a message) and the current message.
pub struct Ctx {
    pub memory: Option<Memory>,
    pub stable: StableMemory,
    pub env: MessageEnv,
    pub effects: Effects,
    pub heap_limit_bytes: u64,
}

impl Ctx {
    pub fn new(heap_limit_bytes: u64) -> Self {
        Ctx {
            memory: None,
            stable: StableMemory::default(),
            env: MessageEnv::default(),
            effects: Effects::default(),
            heap_limit_bytes,
        }
    }

    fn env(&self) -> &MessageEnv {
        &self.env
    }

    fn balance(&self) -> u128 {
        let e = &self.effects;
        (self.env().balance + e.cycles_accepted).saturating_sub(e.cycles_burned + e.cycles_spent)
    }

    fn liquid_balance(&self) -> u128 {
        self.balance().saturating_sub(self.env().frozen_reserve)
    }
}

impl ResourceLimiter for Ctx {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> Result<bool> {
        Ok(desired as u64 <= self.heap_limit_bytes)
    }
    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> Result<bool> {
        Ok(true)
    }
}

/// Why a message trapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapReason {
    /// `ic0.trap` with this message (a Rust panic goes through it).
    Explicit(String),
    /// A misuse of the system API, such as replying twice.
    SystemApi(String),
    /// A system call made where the interface does not allow it (the IC's
    /// `CanisterContractViolation`, IC0504).
    ContractViolation(String),
    InstructionLimit(u64),
}

impl std::fmt::Display for TrapReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrapReason::Explicit(m) => write!(f, "Canister called `ic0.trap` with message: '{m}'"),
            TrapReason::SystemApi(m) => write!(f, "Canister trapped: {m}"),
            TrapReason::ContractViolation(m) => write!(f, "Canister violated contract: {m}"),
            TrapReason::InstructionLimit(limit) => {
                write!(f, "Canister exceeded the limit of {limit} instructions for single message execution.")
            }
        }
    }
}

impl std::error::Error for TrapReason {}

fn api_trap(msg: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(TrapReason::SystemApi(msg.into()))
}

type C<'a> = Caller<'a, Ctx>;

fn charge(c: &mut C, instructions: u64) -> Result<()> {
    let fuel = c.get_fuel()?;
    if fuel < instructions {
        c.set_fuel(0)?;
        let limit = c.data().env().instruction_limit;
        return Err(wasmtime::Error::new(TrapReason::InstructionLimit(limit)));
    }
    c.set_fuel(fuel - instructions)?;
    Ok(())
}

fn memory(c: &C) -> Result<Memory> {
    c.data().memory.ok_or_else(|| api_trap("the module has no memory"))
}

fn read_mem(c: &mut C, ptr: u64, len: u64) -> Result<Vec<u8>> {
    let mem = memory(c)?;
    let data = mem.data(&*c);
    let end = ptr.checked_add(len).filter(|&e| e <= data.len() as u64).ok_or_else(|| api_trap("heap out of bounds"))?;
    Ok(data[ptr as usize..end as usize].to_vec())
}

fn write_mem(c: &mut C, ptr: u64, bytes: &[u8]) -> Result<()> {
    let mem = memory(c)?;
    let data = mem.data_mut(&mut *c);
    let end = ptr
        .checked_add(bytes.len() as u64)
        .filter(|&e| e <= data.len() as u64)
        .ok_or_else(|| api_trap("heap out of bounds"))?;
    data[ptr as usize..end as usize].copy_from_slice(bytes);
    Ok(())
}

/// The `*_copy(dst, offset, size)` pattern over a source the system holds.
fn copy_out(c: &mut C, dst: u64, offset: u64, size: u64, source: &[u8], what: &str) -> Result<()> {
    let end = offset.checked_add(size).filter(|&e| e <= source.len() as u64).ok_or_else(|| {
        api_trap(format!("{what}: offset {offset} + size {size} exceeds the source size {}", source.len()))
    })?;
    let bytes = source[offset as usize..end as usize].to_vec();
    write_mem(c, dst, &bytes)
}

fn write_u128(c: &mut C, dst: u64, value: u128) -> Result<()> {
    write_mem(c, dst, &value.to_le_bytes())
}

fn require(c: &C, allowed: bool, name: &str) -> Result<()> {
    if allowed {
        Ok(())
    } else {
        let mode = c.data().env().kind.mode_name();
        Err(wasmtime::Error::new(TrapReason::ContractViolation(format!(
            "\"ic0_{name}\" cannot be executed in {mode} mode"
        ))))
    }
}

fn u128_of(high: i64, low: i64) -> u128 {
    ((high as u64 as u128) << 64) | low as u64 as u128
}

/// A pointer or size in the module's address space: i32 for wasm32, i64 for wasm64.
pub trait Ptr: wasmtime::WasmTy + Copy + Send + Sync + 'static {
    /// Whether this is the pointer type of wasm64 modules.
    const WASM64: bool;
    fn to_u64(self) -> u64;
    fn from_u64(v: u64) -> Self;
}

impl Ptr for i32 {
    const WASM64: bool = false;
    fn to_u64(self) -> u64 {
        self as u32 as u64
    }
    fn from_u64(v: u64) -> Self {
        v as u32 as i32
    }
}

impl Ptr for i64 {
    const WASM64: bool = true;
    fn to_u64(self) -> u64 {
        self as u64
    }
    fn from_u64(v: u64) -> Self {
        v as i64
    }
}

static KNOWN_NAMES: OnceLock<BTreeSet<&'static str>> = OnceLock::new();

/// Whether `ic0.<name>` is part of the system API the simulator provides.
pub fn is_known(name: &str) -> bool {
    KNOWN_NAMES
        .get_or_init(|| {
            let engine = wasmtime::Engine::default();
            let mut linker = Linker::new(&engine);
            let mut names = BTreeSet::new();
            define::<i32>(&mut linker, &mut names).expect("the system API links");
            names
        })
        .contains(name)
}

/// The cycles value the IC reports for a 32-bit legacy call: traps when it does not fit.
fn legacy_u64(v: u128, name: &str) -> Result<i64> {
    u64::try_from(v)
        .map(|v| v as i64)
        .map_err(|_| api_trap(format!("ic0.{name}: the value {v} does not fit in 64 bits")))
}

macro_rules! def {
    ($linker:ident, $names:ident, $name:literal, $f:expr) => {{
        $linker.func_wrap("ic0", $name, $f)?;
        $names.insert($name);
    }};
}

/// Defines every `ic0` function in `linker`, with `P` the pointer type.
pub fn define<P: Ptr>(linker: &mut Linker<Ctx>, names: &mut BTreeSet<&'static str>) -> Result<()> {
    // --- the message's argument, caller, method, reject ---
    def!(linker, names, "msg_arg_data_size", |mut c: C| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        require(&c, c.data().env().kind.has_arg(), "msg_arg_data_size")?;
        Ok(P::from_u64(c.data().env().arg.len() as u64))
    });
    def!(linker, names, "msg_arg_data_copy", |mut c: C, dst: P, off: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        require(&c, c.data().env().kind.has_arg(), "msg_arg_data_copy")?;
        let arg = std::mem::take(&mut c.data_mut().env.arg);
        let r = copy_out(&mut c, dst.to_u64(), off.to_u64(), size.to_u64(), &arg, "ic0.msg_arg_data_copy");
        c.data_mut().env.arg = arg;
        r
    });
    def!(linker, names, "msg_caller_size", |mut c: C| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(P::from_u64(c.data().env().caller.as_slice().len() as u64))
    });
    def!(linker, names, "msg_caller_copy", |mut c: C, dst: P, off: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        let caller = c.data().env().caller;
        copy_out(&mut c, dst.to_u64(), off.to_u64(), size.to_u64(), caller.as_slice(), "ic0.msg_caller_copy")
    });
    def!(linker, names, "msg_caller_info_data_size", |mut c: C| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(P::from_u64(0))
    });
    def!(linker, names, "msg_caller_info_data_copy", |mut c: C, dst: P, off: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        copy_out(&mut c, dst.to_u64(), off.to_u64(), size.to_u64(), &[], "ic0.msg_caller_info_data_copy")
    });
    def!(linker, names, "msg_caller_info_signer_size", |mut c: C| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(P::from_u64(0))
    });
    def!(linker, names, "msg_caller_info_signer_copy", |mut c: C, dst: P, off: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        copy_out(&mut c, dst.to_u64(), off.to_u64(), size.to_u64(), &[], "ic0.msg_caller_info_signer_copy")
    });
    def!(linker, names, "msg_method_name_size", |mut c: C| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(P::from_u64(c.data().env().method.len() as u64))
    });
    def!(linker, names, "msg_method_name_copy", |mut c: C, dst: P, off: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        let method = c.data().env().method.clone();
        copy_out(&mut c, dst.to_u64(), off.to_u64(), size.to_u64(), method.as_bytes(), "ic0.msg_method_name_copy")
    });
    def!(linker, names, "msg_reject_code", |mut c: C| -> Result<i32> {
        charge(&mut c, syscall::DEFAULT)?;
        require(
            &c,
            c.data().env().kind.has_reject()
                || matches!(c.data().env().kind, EntryKind::ReplyCallback | EntryKind::CompositeReplyCallback),
            "msg_reject_code",
        )?;
        Ok(c.data().env().reject_code as i32)
    });
    def!(linker, names, "msg_reject_msg_size", |mut c: C| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        require(&c, c.data().env().kind.has_reject(), "msg_reject_msg_size")?;
        Ok(P::from_u64(c.data().env().reject_message.len() as u64))
    });
    def!(linker, names, "msg_reject_msg_copy", |mut c: C, dst: P, off: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        require(&c, c.data().env().kind.has_reject(), "msg_reject_msg_copy")?;
        let m = c.data().env().reject_message.clone();
        copy_out(&mut c, dst.to_u64(), off.to_u64(), size.to_u64(), m.as_bytes(), "ic0.msg_reject_msg_copy")
    });
    def!(linker, names, "msg_deadline", |mut c: C| -> Result<i64> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(c.data().env().deadline_ns as i64)
    });

    // --- replying ---
    def!(linker, names, "msg_reply_data_append", |mut c: C, src: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + BYTE_TRANSMISSION_COST_FACTOR * size.to_u64())?;
        check_can_reply(&c, "msg_reply_data_append")?;
        let bytes = read_mem(&mut c, src.to_u64(), size.to_u64())?;
        let max = c.data().env().max_message_bytes;
        let buf = &mut c.data_mut().effects.reply_buffer;
        if buf.len() + bytes.len() > max {
            return Err(api_trap(format!(
                "ic0.msg_reply_data_append: application payload size ({}) cannot be larger than {max}",
                buf.len() + bytes.len()
            )));
        }
        buf.extend_from_slice(&bytes);
        Ok(())
    });
    def!(linker, names, "msg_reply", |mut c: C| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        check_can_reply(&c, "msg_reply")?;
        let e = &mut c.data_mut().effects;
        e.response = Some(Response::Reply(std::mem::take(&mut e.reply_buffer)));
        Ok(())
    });
    def!(linker, names, "msg_reject", |mut c: C, src: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + BYTE_TRANSMISSION_COST_FACTOR * size.to_u64())?;
        check_can_reply(&c, "msg_reject")?;
        let bytes = read_mem(&mut c, src.to_u64(), size.to_u64())?;
        c.data_mut().effects.response = Some(Response::Reject(String::from_utf8_lossy(&bytes).into_owned()));
        Ok(())
    });

    // --- cycles ---
    def!(linker, names, "msg_cycles_available128", |mut c: C, dst: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        let v = available_cycles(&c);
        write_u128(&mut c, dst.to_u64(), v)
    });
    def!(linker, names, "msg_cycles_available", |mut c: C| -> Result<i64> {
        charge(&mut c, syscall::DEFAULT)?;
        legacy_u64(available_cycles(&c), "msg_cycles_available")
    });
    def!(linker, names, "msg_cycles_refunded128", |mut c: C, dst: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        require(&c, c.data().env().kind.is_callback(), "msg_cycles_refunded128")?;
        let v = c.data().env().cycles_refunded;
        write_u128(&mut c, dst.to_u64(), v)
    });
    def!(linker, names, "msg_cycles_refunded", |mut c: C| -> Result<i64> {
        charge(&mut c, syscall::DEFAULT)?;
        require(&c, c.data().env().kind.is_callback(), "msg_cycles_refunded")?;
        legacy_u64(c.data().env().cycles_refunded, "msg_cycles_refunded")
    });
    def!(linker, names, "msg_cycles_accept128", |mut c: C, high: i64, low: i64, dst: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        let accepted = accept_cycles(&mut c, u128_of(high, low))?;
        write_u128(&mut c, dst.to_u64(), accepted)
    });
    def!(linker, names, "msg_cycles_accept", |mut c: C, max: i64| -> Result<i64> {
        charge(&mut c, syscall::DEFAULT)?;
        let accepted = accept_cycles(&mut c, max as u64 as u128)?;
        Ok(accepted as u64 as i64)
    });
    def!(linker, names, "cycles_burn128", |mut c: C, high: i64, low: i64, dst: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        let burned = u128_of(high, low).min(c.data().liquid_balance());
        c.data_mut().effects.cycles_burned += burned;
        write_u128(&mut c, dst.to_u64(), burned)
    });
    def!(linker, names, "canister_cycle_balance128", |mut c: C, dst: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        let v = c.data().balance();
        write_u128(&mut c, dst.to_u64(), v)
    });
    def!(linker, names, "canister_cycle_balance", |mut c: C| -> Result<i64> {
        charge(&mut c, syscall::DEFAULT)?;
        legacy_u64(c.data().balance(), "canister_cycle_balance")
    });
    def!(linker, names, "canister_liquid_cycle_balance128", |mut c: C, dst: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        let v = c.data().liquid_balance();
        write_u128(&mut c, dst.to_u64(), v)
    });
    def!(linker, names, "mint_cycles128", |_c: C, _h: i64, _l: i64, _dst: P| -> Result<()> {
        Err(api_trap("ic0.mint_cycles128 is only available to the cycles minting canister"))
    });
    def!(linker, names, "mint_cycles", |_c: C, _amount: i64| -> Result<i64> {
        Err(api_trap("ic0.mint_cycles is only available to the cycles minting canister"))
    });

    // --- the canister itself ---
    def!(linker, names, "canister_self_size", |mut c: C| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(P::from_u64(c.data().env().canister_id.as_slice().len() as u64))
    });
    def!(linker, names, "canister_self_copy", |mut c: C, dst: P, off: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        let id = c.data().env().canister_id;
        copy_out(&mut c, dst.to_u64(), off.to_u64(), size.to_u64(), id.as_slice(), "ic0.canister_self_copy")
    });
    def!(linker, names, "canister_status", |mut c: C| -> Result<i32> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(c.data().env().status as i32)
    });
    def!(linker, names, "canister_version", |mut c: C| -> Result<i64> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(c.data().env().canister_version as i64)
    });
    def!(linker, names, "subnet_self_size", |mut c: C| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(P::from_u64(c.data().env().subnet_id.as_slice().len() as u64))
    });
    def!(linker, names, "subnet_self_copy", |mut c: C, dst: P, off: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        let id = c.data().env().subnet_id;
        copy_out(&mut c, dst.to_u64(), off.to_u64(), size.to_u64(), id.as_slice(), "ic0.subnet_self_copy")
    });
    def!(linker, names, "subnet_self_node_count", |mut c: C| -> Result<i32> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(13)
    });
    def!(linker, names, "accept_message", |mut c: C| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        require(&c, c.data().env().kind == EntryKind::InspectMessage, "accept_message")?;
        if c.data().effects.message_accepted {
            return Err(api_trap("ic0.accept_message: the message was already accepted"));
        }
        c.data_mut().effects.message_accepted = true;
        Ok(())
    });
    def!(linker, names, "is_controller", |mut c: C, src: P, size: P| -> Result<i32> {
        charge(&mut c, syscall::IS_CONTROLLER + size.to_u64())?;
        let bytes = read_mem(&mut c, src.to_u64(), size.to_u64())?;
        let p = Principal::try_from_slice(&bytes)
            .map_err(|_| api_trap("ic0.is_controller: the argument is not a valid principal"))?;
        Ok(c.data().env().controllers.contains(&p) as i32)
    });
    def!(linker, names, "in_replicated_execution", |mut c: C| -> Result<i32> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(c.data().env().kind.replicated() as i32)
    });

    // --- inter-canister calls ---
    def!(linker, names, "call_new", |mut c: C,
                                     callee_src: P,
                                     callee_size: P,
                                     name_src: P,
                                     name_size: P,
                                     reply_fun: P,
                                     reply_env: P,
                                     reject_fun: P,
                                     reject_env: P|
     -> Result<()> {
        charge(&mut c, syscall::CALL_NEW + callee_size.to_u64() + name_size.to_u64())?;
        require(&c, c.data().env().kind.may_call(), "call_new")?;
        let callee = read_mem(&mut c, callee_src.to_u64(), callee_size.to_u64())?;
        let callee = Principal::try_from_slice(&callee)
            .map_err(|_| api_trap("ic0.call_new: the callee is not a valid principal"))?;
        let name = read_mem(&mut c, name_src.to_u64(), name_size.to_u64())?;
        let method = String::from_utf8(name).map_err(|_| api_trap("ic0.call_new: the method name is not UTF-8"))?;
        let e = &mut c.data_mut().effects;
        // A call being built and not performed is discarded, with its cycles.
        if let Some(old) = e.building.take() {
            e.cycles_spent -= old.cycles;
        }
        e.building = Some(OutgoingCall {
            callee,
            method,
            payload: Vec::new(),
            cycles: 0,
            reply: (reply_fun.to_u64(), reply_env.to_u64()),
            reject: (reject_fun.to_u64(), reject_env.to_u64()),
            cleanup: None,
            timeout_seconds: None,
            prepaid_execution: 0,
        });
        Ok(())
    });
    def!(linker, names, "call_on_cleanup", |mut c: C, fun: P, env: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        let call = building(&mut c, "call_on_cleanup")?;
        if call.cleanup.is_some() {
            return Err(api_trap("ic0.call_on_cleanup: the cleanup callback is already set"));
        }
        call.cleanup = Some((fun.to_u64(), env.to_u64()));
        Ok(())
    });
    def!(linker, names, "call_data_append", |mut c: C, src: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + BYTE_TRANSMISSION_COST_FACTOR * size.to_u64())?;
        building(&mut c, "call_data_append")?;
        let bytes = read_mem(&mut c, src.to_u64(), size.to_u64())?;
        let max = c.data().env().max_message_bytes;
        let call = building(&mut c, "call_data_append")?;
        if call.payload.len() + bytes.len() > max {
            return Err(api_trap(format!(
                "ic0.call_data_append: the call's payload ({} bytes) would exceed the limit of {max} bytes",
                call.payload.len() + bytes.len()
            )));
        }
        call.payload.extend_from_slice(&bytes);
        Ok(())
    });
    def!(linker, names, "call_with_best_effort_response", |mut c: C, timeout: i32| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        let call = building(&mut c, "call_with_best_effort_response")?;
        if call.timeout_seconds.is_some() {
            return Err(api_trap("ic0.call_with_best_effort_response: the timeout is already set"));
        }
        // The IC caps the timeout at 300 seconds.
        call.timeout_seconds = Some((timeout as u32).min(300));
        Ok(())
    });
    def!(linker, names, "call_cycles_add128", |mut c: C, high: i64, low: i64| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        add_call_cycles(&mut c, u128_of(high, low), "call_cycles_add128")
    });
    def!(linker, names, "call_cycles_add", |mut c: C, amount: i64| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        add_call_cycles(&mut c, amount as u64 as u128, "call_cycles_add")
    });
    def!(linker, names, "call_perform", |mut c: C| -> Result<i32> {
        charge(&mut c, syscall::CALL_PERFORM)?;
        let mut call =
            c.data_mut().effects.building.take().ok_or_else(|| api_trap("ic0.call_perform: no call is being built"))?;
        // The request, the reserve for the largest response and the prepaid
        // callback: all of it must be there above the freezing threshold.
        // Calls of composite queries are free, as queries are.
        let env = c.data().env();
        let free = env.kind.is_composite();
        let fee = if free {
            0
        } else {
            env.costs.call_cost(
                call.method.len() as u64,
                call.payload.len() as u64,
                env.callback_instructions,
                env.wasm64,
            )
        };
        let prepaid_execution = if free { 0 } else { env.costs.execution_cost(env.callback_instructions, env.wasm64) };
        if c.data().liquid_balance() < fee {
            // The call is not made; the cycles attached to it come back.
            c.data_mut().effects.cycles_spent -= call.cycles;
            return Ok(crate::types::RejectCode::SysTransient as i32);
        }
        call.prepaid_execution = prepaid_execution;
        let e = &mut c.data_mut().effects;
        e.cycles_spent += fee;
        e.calls.push(call);
        Ok(0)
    });

    // --- stable memory ---
    def!(linker, names, "stable64_size", |c: C| -> Result<i64> { Ok(c.data().stable.size_pages() as i64) });
    def!(linker, names, "stable64_grow", |mut c: C, new_pages: i64| -> Result<i64> {
        charge(&mut c, syscall::STABLE_GROW)?;
        let limit = c.data().env().stable_limit_pages;
        Ok(c.data_mut().stable.grow(new_pages as u64, limit).map_or(-1, |old| old as i64))
    });
    def!(linker, names, "stable64_write", |mut c: C, offset: i64, src: i64, size: i64| -> Result<()> {
        stable_write(&mut c, offset as u64, src as u64, size as u64, P::WASM64)
    });
    def!(linker, names, "stable64_read", |mut c: C, dst: i64, offset: i64, size: i64| -> Result<()> {
        stable_read(&mut c, dst as u64, offset as u64, size as u64)
    });
    // The 32-bit legacy API, limited to 4 GiB of stable memory.
    def!(linker, names, "stable_size", |c: C| -> Result<i32> {
        let pages = c.data().stable.size_pages();
        if pages > u32::MAX as u64 / WASM_PAGE as u64 + 1 {
            return Err(api_trap("ic0.stable_size: stable memory is larger than 4 GiB, use ic0.stable64_size"));
        }
        Ok(pages as i32)
    });
    def!(linker, names, "stable_grow", |mut c: C, new_pages: i32| -> Result<i32> {
        charge(&mut c, syscall::STABLE_GROW)?;
        let limit = (c.data().env().stable_limit_pages).min(65_536);
        Ok(c.data_mut().stable.grow(new_pages as u32 as u64, limit).map_or(-1, |old| old as i32))
    });
    def!(linker, names, "stable_write", |mut c: C, offset: i32, src: i32, size: i32| -> Result<()> {
        stable_write(&mut c, offset as u32 as u64, src as u32 as u64, size as u32 as u64, P::WASM64)
    });
    def!(linker, names, "stable_read", |mut c: C, dst: i32, offset: i32, size: i32| -> Result<()> {
        stable_read(&mut c, dst as u32 as u64, offset as u32 as u64, size as u32 as u64)
    });

    // --- certified data ---
    def!(linker, names, "certified_data_set", |mut c: C, src: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        require(&c, c.data().env().kind.may_set_certified_data(), "certified_data_set")?;
        let max = c.data().env().max_certified_data_bytes;
        if size.to_u64() > max as u64 {
            return Err(api_trap(format!("ic0.certified_data_set: certified data is limited to {max} bytes")));
        }
        let bytes = read_mem(&mut c, src.to_u64(), size.to_u64())?;
        c.data_mut().effects.certified_data = Some(bytes);
        Ok(())
    });
    def!(linker, names, "data_certificate_present", |mut c: C| -> Result<i32> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(c.data().env().certificate.is_some() as i32)
    });
    def!(linker, names, "data_certificate_size", |mut c: C| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        let cert = c
            .data()
            .env()
            .certificate
            .as_ref()
            .ok_or_else(|| api_trap("ic0.data_certificate_size: no certificate is available here"))?;
        Ok(P::from_u64(cert.len() as u64))
    });
    def!(linker, names, "data_certificate_copy", |mut c: C, dst: P, off: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        let cert = c
            .data()
            .env()
            .certificate
            .clone()
            .ok_or_else(|| api_trap("ic0.data_certificate_copy: no certificate is available here"))?;
        copy_out(&mut c, dst.to_u64(), off.to_u64(), size.to_u64(), &cert, "ic0.data_certificate_copy")
    });
    def!(linker, names, "root_key_size", |mut c: C| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(P::from_u64(SIMULATED_ROOT_KEY.len() as u64))
    });
    def!(linker, names, "root_key_copy", |mut c: C, dst: P, off: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        copy_out(&mut c, dst.to_u64(), off.to_u64(), size.to_u64(), &SIMULATED_ROOT_KEY, "ic0.root_key_copy")
    });

    // --- time, timers, counters ---
    def!(linker, names, "time", |mut c: C| -> Result<i64> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(c.data().env().time_ns as i64)
    });
    def!(linker, names, "global_timer_set", |mut c: C, timestamp: i64| -> Result<i64> {
        charge(&mut c, syscall::DEFAULT)?;
        require(&c, c.data().env().kind.replicated() && c.data().env().kind != EntryKind::Cleanup, "global_timer_set")?;
        let previous = c.data().effects.global_timer.unwrap_or(c.data().env().global_timer);
        c.data_mut().effects.global_timer = Some(timestamp as u64);
        Ok(previous as i64)
    });
    def!(linker, names, "performance_counter", |mut c: C, counter: i32| -> Result<i64> {
        charge(&mut c, syscall::PERFORMANCE_COUNTER)?;
        let env = c.data().env();
        let used = env.instruction_limit.saturating_sub(c.get_fuel()?);
        match counter {
            0 => Ok(used as i64),
            1 => Ok((env.call_context_instructions + used) as i64),
            other => Err(api_trap(format!("ic0.performance_counter: unknown counter type {other}"))),
        }
    });
    def!(linker, names, "instruction_counter", |mut c: C| -> Result<i64> {
        charge(&mut c, syscall::PERFORMANCE_COUNTER)?;
        Ok(c.data().env().instruction_limit.saturating_sub(c.get_fuel()?) as i64)
    });

    // --- costs ---
    def!(linker, names, "cost_call", |mut c: C, method_size: i64, payload_size: i64, dst: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        let env = c.data().env();
        let v = env.costs.call_cost(method_size as u64, payload_size as u64, env.callback_instructions, env.wasm64);
        write_u128(&mut c, dst.to_u64(), v)
    });
    def!(linker, names, "cost_create_canister", |mut c: C, dst: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        let v = c.data().env().costs.create_canister_fee;
        write_u128(&mut c, dst.to_u64(), v)
    });
    def!(linker, names, "cost_http_request", |mut c: C, request_size: i64, max_res: i64, dst: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT)?;
        let v = c.data().env().costs.http_request_cost(request_size as u64, max_res as u64);
        write_u128(&mut c, dst.to_u64(), v)
    });
    def!(linker, names, "cost_http_request_v2", |mut c: C, _src: P, _size: P, dst: P| -> Result<()> {
        charge(&mut c, syscall::COST_HTTP_REQUEST_V2)?;
        // The v2 pricing is not modelled: the v1 fee of an empty request.
        let v = c.data().env().costs.http_request_cost(0, 0);
        write_u128(&mut c, dst.to_u64(), v)
    });
    def!(linker, names, "cost_sign_with_ecdsa", |mut c: C, _src: P, size: P, _curve: i32, dst: P| -> Result<i32> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        let v = c.data().env().costs.sign_with_ecdsa_fee;
        write_u128(&mut c, dst.to_u64(), v)?;
        Ok(0)
    });
    def!(linker, names, "cost_sign_with_schnorr", |mut c: C, _src: P, size: P, _alg: i32, dst: P| -> Result<i32> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        let v = c.data().env().costs.sign_with_ecdsa_fee;
        write_u128(&mut c, dst.to_u64(), v)?;
        Ok(0)
    });
    def!(linker, names, "cost_vetkd_derive_key", |mut c: C, _src: P, size: P, _curve: i32, dst: P| -> Result<i32> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        let v = c.data().env().costs.sign_with_ecdsa_fee;
        write_u128(&mut c, dst.to_u64(), v)?;
        Ok(0)
    });

    // --- environment variables: the simulator sets none ---
    def!(linker, names, "env_var_count", |mut c: C| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(P::from_u64(0))
    });
    def!(linker, names, "env_var_name_size", |mut c: C, _i: P| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        Err(api_trap("ic0.env_var_name_size: index out of range"))
    });
    def!(linker, names, "env_var_name_copy", |mut c: C, _i: P, _d: P, _o: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        Err(api_trap("ic0.env_var_name_copy: index out of range"))
    });
    def!(linker, names, "env_var_name_exists", |mut c: C, _s: P, _n: P| -> Result<i32> {
        charge(&mut c, syscall::DEFAULT)?;
        Ok(0)
    });
    def!(linker, names, "env_var_value_size", |mut c: C, _s: P, _n: P| -> Result<P> {
        charge(&mut c, syscall::DEFAULT)?;
        Err(api_trap("ic0.env_var_value_size: no such variable"))
    });
    def!(linker, names, "env_var_value_copy", |mut c: C, _s: P, _n: P, _d: P, _o: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64())?;
        Err(api_trap("ic0.env_var_value_copy: no such variable"))
    });

    // --- debugging ---
    def!(linker, names, "debug_print", |mut c: C, src: P, size: P| -> Result<()> {
        // Rate-limited debug printing (application subnets) pays for the log only.
        charge(&mut c, syscall::DEBUG_PRINT + logging_bytes(size.to_u64()))?;
        let bytes = read_mem(&mut c, src.to_u64(), size.to_u64())?;
        c.data_mut().effects.logs.push(String::from_utf8_lossy(&bytes).into_owned());
        Ok(())
    });
    def!(linker, names, "trap", |mut c: C, src: P, size: P| -> Result<()> {
        charge(&mut c, syscall::DEFAULT + size.to_u64() + logging_bytes(size.to_u64()))?;
        let bytes = read_mem(&mut c, src.to_u64(), size.to_u64())?;
        Err(wasmtime::Error::new(TrapReason::Explicit(String::from_utf8_lossy(&bytes).into_owned())))
    });
    Ok(())
}

/// A fixed stand-in for the IC root key (the simulator certifies nothing).
pub const SIMULATED_ROOT_KEY: [u8; 133] = [0x5a; 133];

fn check_can_reply(c: &C, name: &str) -> Result<()> {
    require(c, c.data().env().kind.may_reply(), name)?;
    if c.data().env().replied || c.data().effects.response.is_some() {
        return Err(api_trap(format!("ic0.{name}: the call is already replied")));
    }
    Ok(())
}

fn available_cycles(c: &C) -> u128 {
    let env = c.data().env();
    if env.replied || c.data().effects.response.is_some() {
        return 0;
    }
    env.cycles_available - c.data().effects.cycles_accepted
}

fn accept_cycles(c: &mut C, max: u128) -> Result<u128> {
    require(c, c.data().env().kind.may_accept_cycles(), "msg_cycles_accept128")?;
    let amount = max.min(available_cycles(c));
    c.data_mut().effects.cycles_accepted += amount;
    Ok(amount)
}

fn building<'c>(c: &'c mut C, name: &str) -> Result<&'c mut OutgoingCall> {
    c.data_mut()
        .effects
        .building
        .as_mut()
        .ok_or_else(|| api_trap(format!("ic0.{name}: no call is being built (call ic0.call_new first)")))
}

fn add_call_cycles(c: &mut C, amount: u128, name: &str) -> Result<()> {
    building(c, name)?;
    if c.data().liquid_balance() < amount {
        return Err(api_trap(format!(
            "ic0.{name}: the canister cannot attach {amount} cycles, its liquid balance is {}",
            c.data().liquid_balance()
        )));
    }
    c.data_mut().effects.cycles_spent += amount;
    building(c, name)?.cycles += amount;
    Ok(())
}

fn stable_write(c: &mut C, offset: u64, src: u64, size: u64, wasm64: bool) -> Result<()> {
    charge(c, syscall::STABLE_READ_WRITE + size)?;
    if !c.data().stable.in_bounds(offset, size) {
        return Err(api_trap("stable memory out of bounds"));
    }
    let new_pages = c.data_mut().effects.stable_dirty.mark(offset, size);
    charge(c, new_pages * meter::dirty_page_overhead(wasm64))?;
    let bytes = read_mem(c, src, size)?;
    c.data_mut().stable.write(offset, &bytes);
    Ok(())
}

fn stable_read(c: &mut C, dst: u64, offset: u64, size: u64) -> Result<()> {
    charge(c, syscall::STABLE_READ_WRITE + size)?;
    if !c.data().stable.in_bounds(offset, size) {
        return Err(api_trap("stable memory out of bounds"));
    }
    let mem = memory(c)?;
    let (data, ctx) = mem.data_and_store_mut(&mut *c);
    let end =
        dst.checked_add(size).filter(|&e| e <= data.len() as u64).ok_or_else(|| api_trap("heap out of bounds"))?;
    ctx.stable.read(offset, &mut data[dst as usize..end as usize]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm32_and_wasm64_define_the_same_names() {
        let engine = wasmtime::Engine::default();
        let (mut n32, mut n64) = (BTreeSet::new(), BTreeSet::new());
        define::<i32>(&mut Linker::new(&engine), &mut n32).unwrap();
        define::<i64>(&mut Linker::new(&engine), &mut n64).unwrap();
        assert_eq!(n32, n64);
        for name in ["msg_reply", "call_perform", "stable64_write", "global_timer_set", "cost_call", "trap"] {
            assert!(is_known(name), "{name}");
        }
        assert!(!is_known("made_up"));
    }
}
