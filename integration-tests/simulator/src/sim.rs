//! The simulator: canisters, the message queue, the deterministic scheduler,
//! the clock, ingress and query calls.
//!
//! Deterministic time slicing as the IC does it: an execution longer than one
//! slice (2B instructions) runs one slice per round, so its result, its calls
//! and its reply appear only in the round of its last slice, and the canister
//! takes no other message meanwhile. The simulator executes the wasm at once
//! and holds the outcome back for those rounds. A round lasts as long as its
//! largest slice at `Limits::instructions_per_second` (a full slice: one
//! second), so a long message takes simulated time and the deadlines of
//! bounded-wait calls pass during it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use candid::Principal;
use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, Linker};

use crate::canister::{Canister, Message, Origin, Request, Response, RunStatus};
use crate::cost::{CostModel, Limits};
use crate::instance::{Invoke, Outcome, Persist};
use crate::module::ModuleCache;
use crate::system_api::{self, Ctx, EntryKind, MessageEnv, TrapReason};
use crate::types::*;

/// Simulated time starts at 2025-01-01T00:00:00Z.
pub const GENESIS_TIME_NS: u64 = 1_735_689_600_000_000_000;
/// Cycles a canister created by the test harness starts with.
pub const DEFAULT_PROVISIONAL_CYCLES: u128 = 100_000_000_000_000;
/// Rounds `update_call` waits for an ingress message before giving up.
pub const MAX_TICKS_PER_CALL: usize = 100_000;
/// The IC's limit on the depth of a composite query's call graph.
const MAX_QUERY_CALL_DEPTH: usize = 6;

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub costs: CostModel,
    pub limits: Limits,
    /// Seed of `raw_rand`.
    pub seed: [u8; 32],
    /// Echo canister logs to stderr (also with the env var `IC_SIM_LOG=1`).
    pub print_logs: bool,
    /// Where compiled modules are cached between processes (None: memory only).
    pub module_cache_dir: Option<PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            costs: CostModel::default(),
            limits: Limits::default(),
            seed: [7; 32],
            print_logs: std::env::var("IC_SIM_LOG").is_ok_and(|v| v == "1"),
            module_cache_dir: default_cache_dir(),
        }
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("IC_SIM_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    // ic-sim-cache in cargo's target directory: CARGO_TARGET_DIR when set,
    // else the `target` folder holding the running binary.
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(dir).join("ic-sim-cache"));
    }
    let exe = std::env::current_exe().ok()?;
    let target = exe.ancestors().find(|p| p.file_name().is_some_and(|n| n == "target"))?;
    Some(target.join("ic-sim-cache"))
}

/// One engine per memory type: the IC's operator costs differ between wasm32
/// and wasm64 (loads and stores), and wasmtime's fuel table is per engine.
pub(crate) struct Runtime {
    pub engine: Engine,
    pub engine64: Engine,
    pub linker32: Linker<Ctx>,
    pub linker64: Linker<Ctx>,
}

impl Runtime {
    fn new() -> Self {
        let engine_for = |wasm64: bool| {
            let mut config = Config::new();
            config.consume_fuel(true);
            // Fuel is the IC-weighted instruction count (see meter.rs).
            config.operator_cost(crate::meter::operator_cost(wasm64));
            config.wasm_memory64(true);
            config.wasm_backtrace_max_frames(None);
            // The IC canonicalizes NaNs so that floating point is deterministic.
            config.cranelift_nan_canonicalization(true);
            config.relaxed_simd_deterministic(true);
            Engine::new(&config).expect("the engine configuration is valid")
        };
        let (engine, engine64) = (engine_for(false), engine_for(true));
        let mut names = BTreeSet::new();
        let mut linker32 = Linker::new(&engine);
        system_api::define::<i32>(&mut linker32, &mut names).expect("the system API links");
        let mut linker64 = Linker::new(&engine64);
        system_api::define::<i64>(&mut linker64, &mut names).expect("the system API links");
        Runtime { engine, engine64, linker32, linker64 }
    }

    pub fn linker(&self, wasm64: bool) -> &Linker<Ctx> {
        if wasm64 { &self.linker64 } else { &self.linker32 }
    }
}

struct IngressEntry {
    result: Option<CallResult>,
    instructions: u64,
}

pub struct Simulator {
    pub(crate) rt: Runtime,
    pub(crate) modules: ModuleCache,
    pub(crate) canisters: BTreeMap<Principal, Canister>,
    pub(crate) queue: VecDeque<Message>,
    pub(crate) time_ns: u64,
    pub(crate) config: SimConfig,
    next_canister_index: u64,
    next_callback_id: u64,
    next_message_id: u64,
    ingress: HashMap<MessageId, IngressEntry>,
    /// Best-effort calls by deadline: (deadline, caller, callback).
    deadlines: BTreeSet<(u64, Principal, u64)>,
    rand_counter: u64,
    executions: VecDeque<ExecutionRecord>,
    pub(crate) subnet_id: Principal,
    /// Faults the management canister injects, in the order they were armed.
    pub(crate) management_faults: Vec<crate::management::ManagementFault>,
    /// Executions spanning several rounds, by canister (at most one each).
    paused: BTreeMap<Principal, Paused>,
    /// The largest slice executed in the current round, in instructions: it
    /// decides how long the round lasts.
    round_slice: u64,
}

/// The rest of an execution longer than one slice: the instructions its
/// later slices still take, and what to do when the last one has run.
struct Paused {
    remaining: u64,
    slice: u64,
    finish: Box<dyn FnOnce(&mut Simulator)>,
}

const MAX_EXECUTION_RECORDS: usize = 100_000;

impl Default for Simulator {
    fn default() -> Self {
        Self::new()
    }
}

impl Simulator {
    pub fn new() -> Self {
        Self::with_config(SimConfig::default())
    }

    pub fn with_config(config: SimConfig) -> Self {
        let rt = Runtime::new();
        let modules = ModuleCache::new([rt.engine.clone(), rt.engine64.clone()], config.module_cache_dir.clone());
        Simulator {
            rt,
            modules,
            canisters: BTreeMap::new(),
            queue: VecDeque::new(),
            time_ns: GENESIS_TIME_NS,
            config,
            next_canister_index: 0,
            next_callback_id: 0,
            next_message_id: 0,
            ingress: HashMap::new(),
            deadlines: BTreeSet::new(),
            rand_counter: 0,
            executions: VecDeque::new(),
            subnet_id: Principal::from_slice(&[0x5u8; 29]),
            management_faults: Vec::new(),
            paused: BTreeMap::new(),
            round_slice: 0,
        }
    }

    pub fn costs(&self) -> &CostModel {
        &self.config.costs
    }

    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    // ------------------------------------------------------------------
    // Time and scheduling
    // ------------------------------------------------------------------

    /// Current time in nanoseconds since the epoch.
    pub fn time(&self) -> u64 {
        self.time_ns
    }

    /// Moves the clock forward (timers fire on the next `tick`), charging
    /// every canister for the storage it holds meanwhile.
    pub fn advance_time(&mut self, by: Duration) {
        let nanos = by.as_nanos().min(u64::MAX as u128) as u64;
        self.time_ns = self.time_ns.saturating_add(nanos);
        let costs = self.config.costs.clone();
        for c in self.canisters.values_mut() {
            let fee = costs.idle_cost(c.memory_bytes(), c.settings.compute_allocation, nanos);
            c.cycles = c.cycles.saturating_sub(fee);
        }
    }

    /// One round. The clock first moves by the previous round's duration (its
    /// largest slice at `instructions_per_second`, at least 1 ns); then paused
    /// executions run their next slice, due timers and heartbeats run, expired
    /// best-effort calls time out, and every message queued before the round
    /// is delivered, in order, except those for a canister whose execution is
    /// paused: they wait. Messages produced during the round wait for the next.
    pub fn tick(&mut self) {
        let nanos = self.config.limits.round_nanos(std::mem::take(&mut self.round_slice));
        self.advance_time(Duration::from_nanos(nanos));
        self.resume_paused();
        self.run_system_tasks();
        self.expire_deadlines();
        let n = self.queue.len();
        let mut waiting = Vec::new();
        for _ in 0..n {
            let Some(message) = self.queue.pop_front() else { break };
            if self.waits(&message) {
                waiting.push(message);
                continue;
            }
            match message {
                Message::Request(r) => self.deliver_request(r),
                Message::Response(r) => self.deliver_response(r),
            }
        }
        for message in waiting.into_iter().rev() {
            self.queue.push_front(message);
        }
        self.settle_stopping();
    }

    /// Whether `message` must wait for a paused execution of its receiver (or,
    /// for code changes through the management canister, of their target).
    fn waits(&self, message: &Message) -> bool {
        if self.paused.is_empty() {
            return false;
        }
        let receiver = match message {
            Message::Response(r) => r.receiver,
            Message::Request(r) if r.receiver == Principal::management_canister() => {
                match crate::management::code_change_target(&r.method, &r.payload) {
                    Some(target) => target,
                    None => return false,
                }
            }
            Message::Request(r) => r.receiver,
        };
        self.paused.contains_key(&receiver)
    }

    /// Runs `finish` once an execution of `instructions` by `id` has had all
    /// its slices of `slice`: now, if it fits in one, else in the round of its
    /// last slice, `id` taking no other message until then.
    pub(crate) fn finish_after_slices(
        &mut self,
        id: Principal,
        instructions: u64,
        slice: u64,
        finish: impl FnOnce(&mut Simulator) + 'static,
    ) {
        let first = instructions.min(slice);
        self.round_slice = self.round_slice.max(first);
        if instructions == first || self.paused.contains_key(&id) {
            return finish(self);
        }
        self.paused.insert(id, Paused { remaining: instructions - first, slice, finish: Box::new(finish) });
    }

    /// The next slice of every paused execution; those done are finished.
    fn resume_paused(&mut self) {
        let mut done = Vec::new();
        for (id, p) in self.paused.iter_mut() {
            let slice = p.remaining.min(p.slice);
            self.round_slice = self.round_slice.max(slice);
            p.remaining -= slice;
            if p.remaining == 0 {
                done.push(*id);
            }
        }
        for id in done {
            let p = self.paused.remove(&id).expect("a paused execution");
            (p.finish)(self);
        }
    }

    /// Whether `id` is in the middle of an execution spanning several rounds.
    pub fn has_paused_execution(&self, id: Principal) -> bool {
        self.paused.contains_key(&id)
    }

    /// Whether nothing is queued, no execution is paused and no timer is due.
    pub fn is_idle(&self) -> bool {
        self.paused.is_empty()
            && self.queue.is_empty()
            && !self.canisters.values().any(|c| self.timer_due(c))
            && self.deadlines.first().is_none_or(|&(d, _, _)| d >= self.time_ns)
    }

    /// Ticks until idle; returns the number of ticks. Panics after `max_ticks`.
    pub fn run_until_idle(&mut self, max_ticks: usize) -> usize {
        for n in 0..max_ticks {
            if self.is_idle() {
                return n;
            }
            self.tick();
        }
        panic!("the simulator was not idle after {max_ticks} ticks");
    }

    fn timer_due(&self, c: &Canister) -> bool {
        c.global_timer != 0
            && c.global_timer <= self.time_ns
            && matches!(c.status, RunStatus::Running)
            && c.instance.as_ref().is_some_and(|i| i.has_export("canister_global_timer"))
    }

    fn run_system_tasks(&mut self) {
        let ids: Vec<Principal> = self.canisters.keys().copied().collect();
        for id in ids {
            let Some(c) = self.canisters.get(&id) else { continue };
            if self.paused.contains_key(&id) {
                continue;
            }
            if self.timer_due(c) {
                self.canisters.get_mut(&id).unwrap().global_timer = 0;
                if !self.run_system_task(id, EntryKind::GlobalTimer, "canister_global_timer") {
                    // Could not pay: the timer stays armed for a later round.
                    self.canisters.get_mut(&id).unwrap().global_timer = self.time_ns;
                }
            }
            let Some(c) = self.canisters.get(&id) else { continue };
            if !self.paused.contains_key(&id)
                && matches!(c.status, RunStatus::Running)
                && c.instance.as_ref().is_some_and(|i| i.has_export("canister_heartbeat"))
            {
                self.run_system_task(id, EntryKind::Heartbeat, "canister_heartbeat");
            }
        }
    }

    /// Runs a timer or heartbeat; false when the canister cannot pay for it.
    fn run_system_task(&mut self, id: Principal, kind: EntryKind, export: &str) -> bool {
        let limit = self.config.limits.instructions_per_update;
        let Some(prepaid) = self.prepay(id, limit) else { return false };
        let c = self.canisters.get_mut(&id).unwrap();
        let ctx = c.open_context(Origin::System, 0, true);
        let env = self.env(id, kind, Principal::management_canister(), export, Vec::new(), limit, Some(ctx));
        let outcome = self.run(id, env, Invoke::Export(export), Persist::Commit);
        let export = export.to_string();
        let slice = self.config.limits.instructions_per_slice;
        self.finish_after_slices(id, outcome.instructions, slice, move |sim| {
            let trap = sim.apply_outcome(id, Some(ctx), outcome, prepaid, export);
            sim.close_context(id, ctx, trap);
        });
        true
    }

    fn expire_deadlines(&mut self) {
        while let Some(&(deadline, caller, callback)) = self.deadlines.first() {
            if deadline >= self.time_ns {
                break;
            }
            self.deadlines.pop_first();
            self.queue.push_back(Message::Response(Response {
                receiver: caller,
                callback,
                result: Err(timeout_reject()),
                refund: 0,
            }));
        }
    }

    /// Stopping canisters with no open call context become stopped.
    fn settle_stopping(&mut self) {
        let mut answers = Vec::new();
        for c in self.canisters.values_mut() {
            if matches!(c.status, RunStatus::Stopping(_))
                && c.contexts.is_empty()
                && let RunStatus::Stopping(waiters) = std::mem::replace(&mut c.status, RunStatus::Stopped)
            {
                answers.extend(waiters);
            }
        }
        for origin in answers {
            self.respond(origin, Ok(candid::encode_one(()).unwrap()), 0);
        }
    }

    // ------------------------------------------------------------------
    // Ingress and queries
    // ------------------------------------------------------------------

    /// Submits an ingress update; it is delivered on the next tick.
    pub fn submit_update(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<MessageId, Reject> {
        let max = self.config.limits.max_message_bytes;
        if arg.len() > max {
            return Err(Reject::new(
                RejectCode::CanisterReject,
                "IC0504",
                format!("Ingress message payload of {} bytes exceeds the limit of {max} bytes", arg.len()),
            ));
        }
        if canister != Principal::management_canister() {
            self.check_receiver(canister, method, false)?;
            self.inspect_message(sender, canister, method, &arg)?;
            let fee = self.config.costs.ingress_cost(arg.len(), method.len());
            let c = self.canisters.get_mut(&canister).unwrap();
            if c.cycles < fee {
                return Err(out_of_cycles(canister, fee - c.cycles));
            }
            c.cycles -= fee;
        }
        let id = MessageId(self.next_message_id);
        self.next_message_id += 1;
        self.ingress.insert(id, IngressEntry { result: None, instructions: 0 });
        self.queue.push_back(Message::Request(Request {
            sender,
            receiver: canister,
            method: method.to_string(),
            payload: arg,
            cycles: 0,
            origin: Origin::Ingress(id),
            deadline_ns: 0,
        }));
        Ok(id)
    }

    /// The result of an ingress message, once it has one.
    pub fn ingress_result(&self, id: MessageId) -> Option<&CallResult> {
        self.ingress.get(&id).and_then(|e| e.result.as_ref())
    }

    /// Ticks until the ingress message `id` completes.
    pub fn await_update(&mut self, id: MessageId) -> IngressOutcome {
        for _ in 0..MAX_TICKS_PER_CALL {
            if let Some(entry) = self.ingress.get(&id)
                && let Some(result) = &entry.result
            {
                return IngressOutcome { result: result.clone(), instructions: entry.instructions };
            }
            self.tick();
        }
        panic!("ingress message {id:?} did not complete within {MAX_TICKS_PER_CALL} ticks");
    }

    /// An ingress update call, run until it completes.
    pub fn update_call(&mut self, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) -> CallResult {
        self.update_call_traced(sender, canister, method, arg).result
    }

    /// Like [`update_call`](Self::update_call), with the instructions spent.
    pub fn update_call_traced(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> IngressOutcome {
        match self.submit_update(sender, canister, method, arg) {
            Ok(id) => self.await_update(id),
            Err(reject) => IngressOutcome { result: Err(reject), instructions: 0 },
        }
    }

    /// A query call: runs at once, and nothing it changes persists.
    pub fn query_call(&mut self, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) -> CallResult {
        self.query_call_traced(sender, canister, method, arg).result
    }

    pub fn query_call_traced(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> IngressOutcome {
        let export = match self.check_receiver(canister, method, true) {
            Ok(e) => e,
            Err(reject) => return IngressOutcome { result: Err(reject), instructions: 0 },
        };
        if let Some(reject) = self.frozen_for_queries(canister) {
            return IngressOutcome { result: Err(reject), instructions: 0 };
        }
        if export.starts_with("canister_composite_query ") {
            let (result, instructions) = self.composite_query(sender, canister, &export, method, arg, true, 1);
            return IngressOutcome { result, instructions };
        }
        let limit = self.config.limits.instructions_per_query;
        let mut env = self.env(canister, EntryKind::Query, sender, method, arg, limit, None);
        let c = &self.canisters[&canister];
        env.certificate = Some(simulated_certificate(&c.certified_data, self.time_ns));
        let outcome = self.run(canister, env, Invoke::Export(&export), Persist::Discard);
        let instructions = outcome.instructions;
        self.record(canister, format!("query {method}"), &outcome, 0);
        self.keep_logs(canister, &outcome);
        let result = match (outcome.trap, outcome.effects.response) {
            (Some(trap), _) => Err(trap_reject(canister, &trap)),
            (None, Some(system_api::Response::Reply(bytes))) => Ok(bytes),
            (None, Some(system_api::Response::Reject(msg))) => Err(Reject::by_canister(msg)),
            (None, None) => Err(no_reply(canister)),
        };
        IngressOutcome { result, instructions }
    }

    /// Runs a composite query and, depth first, the query calls it makes and
    /// their callbacks, against one state of the caller that its executions
    /// share and that is dropped at the end (the IC's query call graph). The
    /// callees run as queries (or composite queries) on their current state.
    #[allow(clippy::too_many_arguments)]
    fn composite_query(
        &mut self,
        sender: Principal,
        canister: Principal,
        export: &str,
        method: &str,
        arg: Vec<u8>,
        root: bool,
        depth: usize,
    ) -> (CallResult, u64) {
        let c = self.canisters.get_mut(&canister).unwrap();
        let stable = c.stable.clone_contents();
        let saved = c.instance.as_mut().unwrap().save_state();
        let limit = self.config.limits.instructions_per_query;
        let mut env = self.env(canister, EntryKind::CompositeQuery, sender, method, arg, limit, None);
        if root {
            env.certificate = Some(simulated_certificate(&self.canisters[&canister].certified_data, self.time_ns));
        }
        let outcome = self.run(canister, env, Invoke::Export(export), Persist::Commit);
        self.record(canister, format!("composite query {method}"), &outcome, 0);
        self.keep_logs(canister, &outcome);
        let mut instructions = outcome.instructions;
        let mut result = query_result(canister, outcome.trap, outcome.effects.response);
        let mut pending: VecDeque<system_api::OutgoingCall> = outcome.effects.calls.into();
        while result.is_none() {
            let Some(call) = pending.pop_front() else { break };
            let (answer, used) = self.query_subcall(canister, &call, depth);
            instructions += used;
            let (kind, (fun, fenv), arg, code, message) = match answer {
                Ok(bytes) => (EntryKind::CompositeReplyCallback, call.reply, bytes, 0, String::new()),
                Err(r) => (EntryKind::CompositeRejectCallback, call.reject, Vec::new(), r.code as u32, r.message),
            };
            let mut env = self.env(canister, kind, sender, "", arg, limit, None);
            env.reject_code = code;
            env.reject_message = message;
            let outcome = self.run(canister, env, Invoke::Table { index: fun, env: fenv }, Persist::Commit);
            self.record(canister, "composite callback".into(), &outcome, 0);
            self.keep_logs(canister, &outcome);
            instructions += outcome.instructions;
            result = query_result(canister, outcome.trap, outcome.effects.response);
            for (i, call) in outcome.effects.calls.into_iter().enumerate() {
                pending.insert(i, call);
            }
        }
        let c = self.canisters.get_mut(&canister).unwrap();
        c.stable = stable;
        let inst = c.instance.as_mut().unwrap();
        let linker = self.rt.linker(inst.wasm64());
        inst.load_state(saved, &self.rt.engine, linker);
        (result.unwrap_or_else(|| Err(no_reply(canister))), instructions)
    }

    /// One call made by a composite query: the callee's query (or composite
    /// query) method, with `caller` as its caller.
    fn query_subcall(&mut self, caller: Principal, call: &system_api::OutgoingCall, depth: usize) -> (CallResult, u64) {
        if call.callee == Principal::management_canister() {
            let r = Reject::new(
                RejectCode::CanisterReject,
                "IC0406",
                "The simulator does not model calls to the management canister from composite queries",
            );
            return (Err(r), 0);
        }
        if depth >= MAX_QUERY_CALL_DEPTH {
            let r = Reject::new(
                RejectCode::CanisterError,
                "IC0504",
                format!("Composite query call graph exceeds the maximum depth of {MAX_QUERY_CALL_DEPTH}"),
            );
            return (Err(r), 0);
        }
        let export = match self.check_receiver(call.callee, &call.method, true) {
            Ok(e) => e,
            Err(r) => return (Err(r), 0),
        };
        if let Some(r) = self.frozen_for_queries(call.callee) {
            return (Err(r), 0);
        }
        let arg = call.payload.clone();
        if export.starts_with("canister_composite_query ") {
            return self.composite_query(caller, call.callee, &export, &call.method, arg, false, depth + 1);
        }
        let limit = self.config.limits.instructions_per_query;
        let env = self.env(call.callee, EntryKind::Query, caller, &call.method, arg, limit, None);
        let outcome = self.run(call.callee, env, Invoke::Export(&export), Persist::Discard);
        self.record(call.callee, format!("query {}", call.method), &outcome, 0);
        self.keep_logs(call.callee, &outcome);
        let used = outcome.instructions;
        let result = query_result(call.callee, outcome.trap, outcome.effects.response);
        (result.unwrap_or_else(|| Err(no_reply(call.callee))), used)
    }

    /// Queries are refused by a canister below its freezing threshold.
    fn frozen_for_queries(&self, canister: Principal) -> Option<Reject> {
        let c = &self.canisters[&canister];
        let threshold = c.freezing_reserve(&self.config.costs);
        (c.cycles < threshold).then(|| {
            Reject::new(
                RejectCode::SysTransient,
                "IC0207",
                format!(
                    "Canister {canister} is unable to process query calls because it's frozen. Please top up the canister with cycles and try again."
                ),
            )
        })
    }

    /// Runs `canister_inspect_message`, if exported, before an ingress update is accepted.
    fn inspect_message(
        &mut self,
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<(), Reject> {
        let has = self.canisters[&canister].instance.as_ref().is_some_and(|i| i.has_export("canister_inspect_message"));
        if !has {
            return Ok(());
        }
        let limit = self.config.limits.instructions_per_inspect;
        let env = self.env(canister, EntryKind::InspectMessage, sender, method, arg.to_vec(), limit, None);
        let outcome = self.run(canister, env, Invoke::Export("canister_inspect_message"), Persist::Discard);
        self.keep_logs(canister, &outcome);
        if let Some(trap) = outcome.trap {
            return Err(trap_reject(canister, &trap));
        }
        if !outcome.effects.message_accepted {
            return Err(Reject::new(
                RejectCode::CanisterReject,
                "IC0406",
                format!("Canister {canister} rejected the message in canister_inspect_message"),
            ));
        }
        Ok(())
    }

    /// Checks that `canister` can take `method` now; returns the export to run.
    fn check_receiver(&self, canister: Principal, method: &str, query: bool) -> Result<String, Reject> {
        let c = self.canisters.get(&canister).ok_or_else(|| not_found(canister))?;
        match c.status {
            RunStatus::Running => {}
            RunStatus::Stopping(_) => {
                return Err(Reject::new(
                    RejectCode::CanisterError,
                    "IC0509",
                    format!("Canister {canister} is stopping"),
                ));
            }
            RunStatus::Stopped => {
                return Err(Reject::new(
                    RejectCode::CanisterError,
                    "IC0508",
                    format!("Canister {canister} is stopped"),
                ));
            }
        }
        let inst = c.instance.as_ref().ok_or_else(|| {
            Reject::new(
                RejectCode::CanisterError,
                "IC0537",
                format!(
                    "Canister {canister}: attempted to execute a message, but the canister contains no Wasm module."
                ),
            )
        })?;
        let candidates: &[&str] = if query {
            &["canister_query", "canister_composite_query"]
        } else {
            &["canister_update", "canister_query"]
        };
        for kind in candidates {
            let export = format!("{kind} {method}");
            if inst.has_export(&export) {
                return Ok(export);
            }
        }
        let what = if query { "query" } else { "update" };
        Err(Reject::new(
            RejectCode::CanisterError,
            "IC0536",
            format!("Canister {canister} has no {what} method '{method}'"),
        ))
    }

    // ------------------------------------------------------------------
    // Delivery
    // ------------------------------------------------------------------

    fn deliver_request(&mut self, req: Request) {
        if req.receiver == Principal::management_canister() {
            return self.management_request(req);
        }
        let export = match self.check_receiver(req.receiver, &req.method, false) {
            Ok(e) => e,
            Err(reject) => return self.respond(req.origin, Err(reject), req.cycles),
        };
        let id = req.receiver;
        let limit = self.config.limits.instructions_per_update;
        let Some(prepaid) = self.prepay(id, limit) else {
            let reject = out_of_cycles(id, self.config.costs.execution_cost(limit, self.wasm64(id)));
            return self.respond(req.origin, Err(reject), req.cycles);
        };
        let kind = if export.starts_with("canister_query ") { EntryKind::ReplicatedQuery } else { EntryKind::Update };
        let persist = if kind == EntryKind::Update { Persist::Commit } else { Persist::Discard };
        let c = self.canisters.get_mut(&id).unwrap();
        let ctx = c.open_context(req.origin, req.cycles, false);
        let mut env = self.env(id, kind, req.sender, &req.method, req.payload, limit, Some(ctx));
        env.deadline_ns = req.deadline_ns;
        let outcome = self.run(id, env, Invoke::Export(&export), persist);
        let entry = format!("update {}", req.method);
        let slice = self.config.limits.instructions_per_slice;
        self.finish_after_slices(id, outcome.instructions, slice, move |sim| {
            let trap = sim.apply_outcome(id, Some(ctx), outcome, prepaid, entry);
            sim.close_context(id, ctx, trap);
        });
    }

    fn deliver_response(&mut self, resp: Response) {
        let id = resp.receiver;
        let costs = &self.config.costs;
        let Some(c) = self.canisters.get_mut(&id) else { return };
        // A response for a callback that already ran (or timed out) is dropped.
        let Some(cb) = c.callbacks.remove(&resp.callback) else { return };
        if cb.deadline_ns != 0 {
            self.deadlines.remove(&(cb.deadline_ns, id, resp.callback));
        }
        let result =
            if cb.deadline_ns != 0 && self.time_ns > cb.deadline_ns { Err(timeout_reject()) } else { resp.result };
        // The reserve for the largest response comes back, less what this one used.
        let response_bytes = match &result {
            Ok(bytes) => bytes.len(),
            Err(r) => r.message.len(),
        };
        c.cycles += resp.refund + costs.response_transmission_refund(response_bytes as u64);
        let one_way = match c.instance.as_ref() {
            Some(inst) if inst.wasm64() => u64::MAX,
            Some(_) => u32::MAX as u64,
            None => {
                c.cycles += cb.prepaid_execution - costs.execution_base_fee.min(cb.prepaid_execution);
                return self.callback_done(id, cb.context, None);
            }
        };
        let (kind, (fun, fenv), arg, code, message) = match result {
            Ok(bytes) => (EntryKind::ReplyCallback, cb.reply, bytes, 0, String::new()),
            Err(r) => (EntryKind::RejectCallback, cb.reject, Vec::new(), r.code as u32, r.message),
        };
        if fun == one_way {
            // No callback runs: only the base fee of the prepaid execution is due.
            c.cycles += cb.prepaid_execution - costs.execution_base_fee.min(cb.prepaid_execution);
            return self.callback_done(id, cb.context, None);
        }
        let limit = self.config.limits.instructions_per_update;
        // The callback's execution was prepaid when the call was made.
        let prepaid = cb.prepaid_execution;
        let mut env = self.env(id, kind, id, "", arg, limit, Some(cb.context));
        env.reject_code = code;
        env.reject_message = message.clone();
        env.cycles_refunded = resp.refund;
        let outcome = self.run(id, env, Invoke::Table { index: fun, env: fenv }, Persist::Commit);
        let entry = if kind == EntryKind::ReplyCallback { "reply callback" } else { "reject callback" };
        let slice = self.config.limits.instructions_per_slice;
        self.finish_after_slices(id, outcome.instructions, slice, move |sim| {
            let trap = sim.apply_outcome(id, Some(cb.context), outcome, prepaid, entry.to_string());
            if let (Some(_), Some(cleanup)) = (&trap, cb.cleanup) {
                sim.run_cleanup(id, cb.context, cleanup, code, message);
            }
            sim.callback_done(id, cb.context, trap);
        });
    }

    /// The cleanup callback of a call whose reply or reject callback trapped.
    fn run_cleanup(&mut self, id: Principal, context: u64, (fun, fenv): (u64, u64), code: u32, message: String) {
        let limit = self.config.limits.instructions_per_update;
        let prepaid = self.config.costs.execution_cost(limit, self.wasm64(id)).min(self.canisters[&id].cycles);
        self.canisters.get_mut(&id).unwrap().cycles -= prepaid;
        let mut env = self.env(id, EntryKind::Cleanup, id, "", Vec::new(), limit, Some(context));
        env.reject_code = code;
        env.reject_message = message;
        let outcome = self.run(id, env, Invoke::Table { index: fun, env: fenv }, Persist::Commit);
        self.apply_outcome(id, Some(context), outcome, prepaid, "cleanup callback".to_string());
    }

    fn callback_done(&mut self, id: Principal, context: u64, trap: Option<TrapReason>) {
        if let Some(ctx) = self.canisters.get_mut(&id).and_then(|c| c.contexts.get_mut(&context)) {
            ctx.outstanding_calls -= 1;
        }
        self.close_context(id, context, trap);
    }

    /// Answers a context that can no longer reply, and forgets closed ones.
    fn close_context(&mut self, id: Principal, context: u64, trap: Option<TrapReason>) {
        let Some(c) = self.canisters.get_mut(&id) else { return };
        let Some(ctx) = c.contexts.get_mut(&context) else { return };
        if ctx.outstanding_calls > 0 {
            return;
        }
        let owed = (!ctx.replied).then_some((ctx.origin, ctx.cycles_available));
        c.contexts.remove(&context);
        if let Some((origin, refund)) = owed {
            let reject = match trap {
                Some(t) => trap_reject(id, &t),
                None => no_reply(id),
            };
            self.respond(origin, Err(reject), refund);
        }
    }

    /// Routes a result to whoever waits for it.
    pub(crate) fn respond(&mut self, origin: Origin, result: CallResult, refund: u128) {
        match origin {
            Origin::Ingress(id) => {
                if let Some(e) = self.ingress.get_mut(&id) {
                    e.result = Some(result);
                }
            }
            Origin::Canister { canister, callback } => {
                self.queue.push_back(Message::Response(Response { receiver: canister, callback, result, refund }));
            }
            Origin::System => {}
        }
    }

    // ------------------------------------------------------------------
    // Execution
    // ------------------------------------------------------------------

    /// Takes the execution prepayment if the canister can afford it above its
    /// freezing threshold.
    pub(crate) fn prepay(&mut self, id: Principal, limit: u64) -> Option<u128> {
        self.prepay_as(id, limit, self.wasm64(id))
    }

    /// [`prepay`](Self::prepay) at the instruction price of a wasm32 or wasm64 module.
    pub(crate) fn prepay_as(&mut self, id: Principal, limit: u64, wasm64: bool) -> Option<u128> {
        let costs = &self.config.costs;
        let c = self.canisters.get_mut(&id)?;
        let prepay = costs.execution_cost(limit, wasm64);
        let reserve = c.freezing_reserve(costs);
        if c.cycles < prepay + reserve {
            return None;
        }
        c.cycles -= prepay;
        Some(prepay)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn env(
        &self,
        id: Principal,
        kind: EntryKind,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
        limit: u64,
        context: Option<u64>,
    ) -> MessageEnv {
        let c = &self.canisters[&id];
        let ctx = context.and_then(|k| c.contexts.get(&k));
        let costs = &self.config.costs;
        let limits = &self.config.limits;
        MessageEnv {
            kind,
            canister_id: id,
            caller,
            method: method.to_string(),
            arg,
            reject_code: 0,
            reject_message: String::new(),
            time_ns: self.time_ns,
            controllers: c.controllers.clone(),
            balance: c.cycles,
            frozen_reserve: c.freezing_reserve(costs),
            cycles_available: ctx.map_or(0, |x| x.cycles_available),
            cycles_refunded: 0,
            deadline_ns: 0,
            replied: ctx.is_some_and(|x| x.replied),
            canister_version: c.version,
            status: c.status.code(),
            global_timer: c.global_timer,
            instruction_limit: limit,
            call_context_instructions: ctx.map_or(0, |x| x.instructions),
            certificate: None,
            subnet_id: self.subnet_id,
            max_message_bytes: limits.max_message_bytes,
            max_certified_data_bytes: limits.max_certified_data_bytes,
            stable_limit_pages: crate::stable::MAX_STABLE_PAGES,
            costs: costs.clone(),
            wasm64: c.instance.as_ref().is_some_and(|i| i.wasm64()),
            callback_instructions: limits.instructions_per_update,
        }
    }

    /// Whether `id` runs a wasm64 module (whose instructions cost double).
    pub(crate) fn wasm64(&self, id: Principal) -> bool {
        self.canisters.get(&id).and_then(|c| c.instance.as_ref()).is_some_and(|i| i.wasm64())
    }

    pub(crate) fn run(&mut self, id: Principal, env: MessageEnv, invoke: Invoke, persist: Persist) -> Outcome {
        let c = self.canisters.get_mut(&id).expect("running an existing canister");
        let inst = c.instance.as_mut().expect("running an installed canister");
        let linker = self.rt.linker(inst.wasm64());
        inst.run(env, &mut c.stable, invoke, persist, linker.engine(), linker)
    }

    fn keep_logs(&mut self, id: Principal, outcome: &Outcome) {
        let time = self.time_ns;
        let max = self.config.limits.max_canister_log_records;
        let print = self.config.print_logs;
        let c = self.canisters.get_mut(&id).unwrap();
        for line in &outcome.effects.logs {
            if print {
                eprintln!("[{id}] {line}");
            }
            c.push_log(time, line.clone(), max);
        }
        if let Some(trap) = &outcome.trap {
            let text = format!("[TRAP]: {trap}");
            if print {
                eprintln!("[{id}] {text}");
            }
            c.push_log(time, text, max);
        }
    }

    fn record(&mut self, id: Principal, entry: String, outcome: &Outcome, cycles_charged: u128) {
        if self.executions.len() == MAX_EXECUTION_RECORDS {
            self.executions.pop_front();
        }
        self.executions.push_back(ExecutionRecord {
            canister: id,
            entry,
            instructions: outcome.instructions,
            trapped: outcome.trap.is_some(),
            cycles_charged,
        });
    }

    /// Charges for the execution, keeps logs, and applies the effects of a
    /// message that did not trap. Returns the trap, if any.
    pub(crate) fn apply_outcome(
        &mut self,
        id: Principal,
        context: Option<u64>,
        outcome: Outcome,
        prepaid: u128,
        entry: String,
    ) -> Option<TrapReason> {
        self.keep_logs(id, &outcome);
        let cost = self.config.costs.execution_cost(outcome.instructions, self.wasm64(id)).min(prepaid);
        self.record(id, entry, &outcome, cost);
        let c = self.canisters.get_mut(&id).unwrap();
        c.cycles += prepaid - cost;
        c.instructions_executed += outcome.instructions;
        c.cycles_burned_executing += cost;
        if let Some(ctx) = context.and_then(|k| c.contexts.get_mut(&k)) {
            ctx.instructions += outcome.instructions;
            if let Origin::Ingress(m) = ctx.origin {
                let total = ctx.instructions;
                if let Some(e) = self.ingress.get_mut(&m) {
                    e.instructions = total;
                }
            }
        }
        if outcome.trap.is_some() {
            return outcome.trap;
        }
        let e = outcome.effects;
        let c = self.canisters.get_mut(&id).unwrap();
        c.cycles = (c.cycles + e.cycles_accepted).saturating_sub(e.cycles_burned + e.cycles_spent);
        if let Some(data) = e.certified_data {
            c.certified_data = data;
        }
        if let Some(t) = e.global_timer {
            c.global_timer = t;
        }
        let context = context?;
        let ctx = c.contexts.get_mut(&context).expect("the context of a running message is open");
        ctx.cycles_available -= e.cycles_accepted;
        let response = e.response.map(|r| {
            ctx.replied = true;
            let refund = std::mem::take(&mut ctx.cycles_available);
            let result = match r {
                system_api::Response::Reply(bytes) => Ok(bytes),
                system_api::Response::Reject(msg) => Err(Reject::by_canister(msg)),
            };
            (ctx.origin, result, refund)
        });
        for call in e.calls {
            self.enqueue_call(id, context, call);
        }
        if let Some((origin, result, refund)) = response {
            self.respond(origin, result, refund);
        }
        None
    }

    fn enqueue_call(&mut self, id: Principal, context: u64, call: system_api::OutgoingCall) {
        let callback = self.next_callback_id;
        self.next_callback_id += 1;
        // The IC keeps deadlines in whole seconds: the current time rounded
        // down to a second, plus the timeout.
        let deadline_ns = call.timeout_seconds.map_or(0, |s| (self.time_ns / 1_000_000_000 + s as u64) * 1_000_000_000);
        let prepaid_execution = call.prepaid_execution;
        let c = self.canisters.get_mut(&id).unwrap();
        c.contexts.get_mut(&context).unwrap().outstanding_calls += 1;
        c.callbacks.insert(
            callback,
            crate::canister::Callback {
                context,
                reply: call.reply,
                reject: call.reject,
                cleanup: call.cleanup,
                deadline_ns,
                prepaid_execution,
            },
        );
        if deadline_ns != 0 {
            self.deadlines.insert((deadline_ns, id, callback));
        }
        self.queue.push_back(Message::Request(Request {
            sender: id,
            receiver: call.callee,
            method: call.method,
            payload: call.payload,
            cycles: call.cycles,
            origin: Origin::Canister { canister: id, callback },
            deadline_ns,
        }));
    }

    /// Deterministic randomness for `raw_rand`.
    pub(crate) fn next_random(&mut self) -> [u8; 32] {
        self.rand_counter += 1;
        let mut h = Sha256::new();
        h.update(self.config.seed);
        h.update(self.rand_counter.to_le_bytes());
        h.finalize().into()
    }

    pub(crate) fn new_canister_id(&mut self) -> Principal {
        let id = canister_id_from_index(self.next_canister_index);
        self.next_canister_index += 1;
        id
    }

    // ------------------------------------------------------------------
    // Inspection for tests and benchmarks
    // ------------------------------------------------------------------

    pub fn canister_exists(&self, id: Principal) -> bool {
        self.canisters.contains_key(&id)
    }

    pub fn canister_ids(&self) -> Vec<Principal> {
        self.canisters.keys().copied().collect()
    }

    pub fn cycle_balance(&self, id: Principal) -> u128 {
        self.canisters.get(&id).map_or(0, |c| c.cycles)
    }

    pub fn add_cycles(&mut self, id: Principal, amount: u128) -> u128 {
        let c = self.canisters.get_mut(&id).expect("add_cycles: no such canister");
        c.cycles += amount;
        c.cycles
    }

    /// Sets a balance directly (to test how canisters behave when poor).
    pub fn set_cycles(&mut self, id: Principal, amount: u128) {
        self.canisters.get_mut(&id).expect("set_cycles: no such canister").cycles = amount;
    }

    /// Everything the canister printed (`ic0.debug_print`) and its traps.
    pub fn logs(&self, id: Principal) -> Vec<LogRecord> {
        self.canisters.get(&id).map(|c| c.logs.clone()).unwrap_or_default()
    }

    pub fn controllers(&self, id: Principal) -> Vec<Principal> {
        self.canisters.get(&id).map(|c| c.controllers.clone()).unwrap_or_default()
    }

    pub fn module_hash(&self, id: Principal) -> Option<[u8; 32]> {
        self.canisters.get(&id).and_then(|c| c.module_hash)
    }

    pub fn stable_memory(&self, id: Principal) -> Vec<u8> {
        self.canisters.get(&id).map(|c| c.stable.to_vec()).unwrap_or_default()
    }

    pub fn heap_bytes(&self, id: Principal) -> u64 {
        self.canisters.get(&id).and_then(|c| c.instance.as_ref()).map_or(0, |i| i.heap_bytes())
    }

    pub fn memory_bytes(&self, id: Principal) -> u64 {
        self.canisters.get(&id).map_or(0, |c| c.memory_bytes())
    }

    pub fn global_timer(&self, id: Principal) -> u64 {
        self.canisters.get(&id).map_or(0, |c| c.global_timer)
    }

    /// Total instructions the canister has executed, and cycles it paid for them.
    pub fn execution_totals(&self, id: Principal) -> (u64, u128) {
        self.canisters.get(&id).map_or((0, 0), |c| (c.instructions_executed, c.cycles_burned_executing))
    }

    /// The most recent executions, oldest first.
    pub fn executions(&self) -> impl Iterator<Item = &ExecutionRecord> {
        self.executions.iter()
    }

    pub fn clear_executions(&mut self) {
        self.executions.clear();
    }

    pub fn queued_messages(&self) -> usize {
        self.queue.len()
    }
}

pub(crate) fn not_found(id: Principal) -> Reject {
    Reject::new(RejectCode::DestinationInvalid, "IC0301", format!("Canister {id} not found"))
}

/// IC0207 is a 2xx error code: the IC reports it with `SYS_TRANSIENT`.
pub(crate) fn out_of_cycles(id: Principal, needed: u128) -> Reject {
    Reject::new(
        RejectCode::SysTransient,
        "IC0207",
        format!("Canister {id} is out of cycles: please top up the canister with at least {needed} additional cycles"),
    )
}

pub(crate) fn trap_reject(id: Principal, trap: &TrapReason) -> Reject {
    let code = match trap {
        TrapReason::InstructionLimit(_) => "IC0522",
        TrapReason::Explicit(_) => "IC0503",
        TrapReason::SystemApi(_) => "IC0502",
        TrapReason::ContractViolation(_) => "IC0504",
    };
    Reject::new(RejectCode::CanisterError, code, format!("Error from Canister {id}: {trap}"))
}

/// The answer of a query execution, if it gave one.
fn query_result(id: Principal, trap: Option<TrapReason>, response: Option<system_api::Response>) -> Option<CallResult> {
    match (trap, response) {
        (Some(trap), _) => Some(Err(trap_reject(id, &trap))),
        (None, Some(system_api::Response::Reply(bytes))) => Some(Ok(bytes)),
        (None, Some(system_api::Response::Reject(msg))) => Some(Err(Reject::by_canister(msg))),
        (None, None) => None,
    }
}

fn no_reply(id: Principal) -> Reject {
    Reject::new(RejectCode::CanisterError, "IC0506", format!("Canister {id} did not produce a response"))
}

fn timeout_reject() -> Reject {
    Reject::new(RejectCode::SysUnknown, "IC0524", "Timeout expired: the best-effort call's deadline passed")
}

/// The simulator does not sign anything: a query's "certificate" is a
/// recognizable blob holding the certified data and the time.
pub fn simulated_certificate(certified_data: &[u8], time_ns: u64) -> Vec<u8> {
    let mut cert = b"ic-sim certificate:".to_vec();
    cert.extend_from_slice(&time_ns.to_be_bytes());
    cert.extend_from_slice(certified_data);
    cert
}
