//! One canister's running wasm instance, and the execution of one message on
//! it with rollback: heap, mutable globals and stable memory are restored when
//! the message traps, or always for queries.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{Engine, Global, Instance, Linker, Memory, Ref, Store, Table, Trap, TypedFunc, Val};

use crate::module::{CompiledModule, MEMORY_EXPORT, START_EXPORT, TABLE_EXPORT};
use crate::stable::StableMemory;
use crate::system_api::{Ctx, Effects, EntryKind, MessageEnv, TrapReason};

/// What to run.
pub enum Invoke<'a> {
    /// An exported function, such as `canister_update inc`.
    Export(&'a str),
    /// A function of the table (a callback) with its environment argument.
    Table { index: u64, env: u64 },
    /// The module's start function.
    Start,
}

/// Whether a successful message keeps its changes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    Commit,
    Discard,
    /// Keep stable memory, discard the heap: `canister_pre_upgrade`, whose
    /// heap is thrown away by the upgrade (or kept intact if it fails).
    StableOnly,
    /// Like `StableOnly`, and the heap as the message left it is returned in
    /// [`Outcome::heap_after`]: `canister_pre_upgrade` of an upgrade that
    /// keeps the heap (enhanced orthogonal persistence).
    StableOnlyWithHeap,
}

pub struct Outcome {
    pub trap: Option<TrapReason>,
    pub effects: Effects,
    pub instructions: u64,
    /// With [`Persist::StableOnlyWithHeap`] and no trap: the heap the message left.
    pub heap_after: Option<Vec<u8>>,
}

/// See [`CanisterInstance::save_state`].
pub struct SavedState {
    heap: Vec<u8>,
    globals: Vec<Val>,
}

pub struct CanisterInstance {
    pub module: Arc<CompiledModule>,
    store: Store<Ctx>,
    instance: Instance,
    memory: Option<Memory>,
    table: Option<Table>,
    globals: Vec<Global>,
    exports: HashMap<String, TypedFunc<(), ()>>,
    heap_backup: Vec<u8>,
    globals_backup: Vec<Val>,
}

impl CanisterInstance {
    /// Instantiates `module` with a fresh heap. The module's start function
    /// does not run here (the rewrite took it out of the start section): the
    /// installer runs it with [`Invoke::Start`], with the canister's stable
    /// memory and the install budget, as the IC does.
    pub fn new(
        engine: &Engine,
        linker: &Linker<Ctx>,
        module: Arc<CompiledModule>,
        heap_limit_bytes: u64,
    ) -> Result<Self, String> {
        let mut store = Store::new(engine, Ctx::new(heap_limit_bytes));
        store.limiter(|ctx| ctx);
        // Instantiation runs no code (no start section), but fuel must be set.
        store.set_fuel(0).map_err(|e| e.to_string())?;
        let instance = linker
            .instantiate(&mut store, &module.module)
            .map_err(|e| format!("Wasm module could not be instantiated: {e:#}"))?;
        let memory = instance.get_memory(&mut store, MEMORY_EXPORT);
        store.data_mut().memory = memory;
        let table = if module.has_table { instance.get_table(&mut store, TABLE_EXPORT) } else { None };
        let globals = module
            .mutable_globals
            .iter()
            .map(|name| instance.get_global(&mut store, name).expect("rewritten module exports its mutable globals"))
            .collect();
        Ok(CanisterInstance {
            module,
            store,
            instance,
            memory,
            table,
            globals,
            exports: HashMap::new(),
            heap_backup: Vec::new(),
            globals_backup: Vec::new(),
        })
    }

    pub fn wasm64(&self) -> bool {
        self.module.wasm64
    }

    pub fn heap_bytes(&self) -> u64 {
        self.memory.map_or(0, |m| m.data_size(&self.store) as u64)
    }

    pub fn has_export(&self, name: &str) -> bool {
        self.module.module.get_export(name).is_some()
    }

    pub fn set_heap_limit(&mut self, bytes: u64) {
        self.store.data_mut().heap_limit_bytes = bytes;
    }

    /// Runs one message. `stable` is lent to the instance for its duration.
    pub fn run(
        &mut self,
        env: MessageEnv,
        stable: &mut StableMemory,
        invoke: Invoke,
        persist: Persist,
        engine: &Engine,
        linker: &Linker<Ctx>,
    ) -> Outcome {
        let limit = env.instruction_limit;
        // Replicated executions pay for the heap pages they dirty.
        let charges_dirty_pages = !matches!(env.kind, EntryKind::Query | EntryKind::InspectMessage);
        self.snapshot();
        stable.begin();
        {
            let ctx = self.store.data_mut();
            ctx.stable = std::mem::take(stable);
            ctx.env = env;
            ctx.effects = Effects::default();
        }
        self.store.set_fuel(limit).expect("fuel is enabled");
        let result = self.invoke(invoke);
        let mut instructions = limit - self.store.get_fuel().unwrap_or(0).min(limit);
        if charges_dirty_pages {
            instructions += self.dirty_heap_page_cost();
        }

        let ctx = self.store.data_mut();
        *stable = std::mem::take(&mut ctx.stable);
        ctx.env = MessageEnv::default();
        let effects = std::mem::take(&mut ctx.effects);
        let mut trap = result.err().map(|e| classify_trap(e, limit));
        if instructions > limit {
            instructions = limit;
            if trap.is_none() {
                trap = Some(TrapReason::InstructionLimit(limit));
            }
        }
        let mut heap_after = None;
        match (trap.is_none(), persist) {
            (true, Persist::Commit) => stable.commit(),
            (true, Persist::StableOnly | Persist::StableOnlyWithHeap) => {
                if persist == Persist::StableOnlyWithHeap {
                    heap_after = Some(self.heap_contents());
                }
                stable.commit();
                self.restore(engine, linker);
            }
            _ => {
                stable.rollback();
                self.restore(engine, linker);
            }
        }
        Outcome { trap, effects, instructions, heap_after }
    }

    /// Heap and mutable globals as they are, to be put back with
    /// [`load_state`](Self::load_state): a composite query's executions
    /// share their changes and drop them at the end.
    pub fn save_state(&mut self) -> SavedState {
        let globals = self.globals.iter().map(|g| g.get(&mut self.store)).collect();
        SavedState { heap: self.heap_contents(), globals }
    }

    pub fn load_state(&mut self, saved: SavedState, engine: &Engine, linker: &Linker<Ctx>) {
        self.heap_backup = saved.heap;
        self.globals_backup = saved.globals;
        self.restore(engine, linker);
    }

    /// A copy of the heap.
    pub fn heap_contents(&self) -> Vec<u8> {
        self.memory.map_or_else(Vec::new, |m| m.data(&self.store).to_vec())
    }

    /// Takes over `heap` (an upgrade that keeps the heap): the memory grows to
    /// its size, receives it, and then the module's own data segments are
    /// written over it, as the IC does for enhanced orthogonal persistence.
    pub fn adopt_heap(&mut self, heap: &[u8]) -> Result<(), String> {
        let Some(mem) = self.memory else { return Ok(()) };
        let current = mem.data_size(&self.store);
        if current < heap.len() {
            let pages = (heap.len() - current).div_ceil(crate::stable::WASM_PAGE);
            mem.grow(&mut self.store, pages as u64)
                .map_err(|e| format!("the kept heap of {} bytes does not fit the new module: {e}", heap.len()))?;
        }
        let data = mem.data_mut(&mut self.store);
        data[..heap.len()].copy_from_slice(heap);
        for (offset, bytes) in &self.module.data_segments {
            let start = *offset as usize;
            if let Some(dst) = data.get_mut(start..start + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
        Ok(())
    }

    fn invoke(&mut self, invoke: Invoke) -> wasmtime::Result<()> {
        match invoke {
            Invoke::Export(name) => {
                let func = match self.exports.get(name) {
                    Some(f) => f.clone(),
                    None => {
                        let f = self.instance.get_typed_func::<(), ()>(&mut self.store, name).map_err(|e| {
                            wasmtime::Error::new(TrapReason::SystemApi(format!("export `{name}`: {e}")))
                        })?;
                        self.exports.insert(name.to_string(), f.clone());
                        f
                    }
                };
                func.call(&mut self.store, ())
            }
            Invoke::Start => self.invoke(Invoke::Export(START_EXPORT)),
            Invoke::Table { index, env } => {
                let table = self.table.ok_or_else(|| {
                    wasmtime::Error::new(TrapReason::SystemApi("the module has no function table".into()))
                })?;
                let func = match table.get(&mut self.store, index) {
                    Some(Ref::Func(Some(f))) => f,
                    _ => {
                        return Err(wasmtime::Error::new(TrapReason::SystemApi(format!(
                            "callback {index} is not a function of the table"
                        ))));
                    }
                };
                if self.module.wasm64 {
                    func.typed::<i64, ()>(&self.store)?.call(&mut self.store, env as i64)
                } else {
                    func.typed::<i32, ()>(&self.store)?.call(&mut self.store, env as u32 as i32)
                }
            }
        }
    }

    /// What the IC charges after a message for the 4 KiB heap pages it changed.
    fn dirty_heap_page_cost(&self) -> u64 {
        let Some(mem) = self.memory else { return 0 };
        crate::meter::changed_pages(&self.heap_backup, mem.data(&self.store))
            * crate::meter::dirty_page_overhead(self.module.wasm64)
    }

    fn snapshot(&mut self) {
        if let Some(mem) = self.memory {
            self.heap_backup.clear();
            self.heap_backup.extend_from_slice(mem.data(&self.store));
        }
        self.globals_backup.clear();
        for g in &self.globals {
            self.globals_backup.push(g.get(&mut self.store));
        }
    }

    fn restore(&mut self, engine: &Engine, linker: &Linker<Ctx>) {
        let grown = self.memory.is_some_and(|m| m.data_size(&self.store) > self.heap_backup.len());
        if grown {
            // Memory cannot shrink: move to a fresh store and instance.
            let heap_limit = self.store.data().heap_limit_bytes;
            let stable = std::mem::take(&mut self.store.data_mut().stable);
            let mut fresh = CanisterInstance::new(engine, linker, self.module.clone(), heap_limit)
                .expect("a module that instantiated once instantiates again");
            fresh.store.data_mut().stable = stable;
            let mem = fresh.memory.expect("same module, same memory");
            let current = mem.data_size(&fresh.store);
            if current < self.heap_backup.len() {
                let pages = (self.heap_backup.len() - current).div_ceil(64 * 1024);
                mem.grow(&mut fresh.store, pages as u64).expect("grows back to the size it had");
            }
            fresh.heap_backup = std::mem::take(&mut self.heap_backup);
            fresh.globals_backup = std::mem::take(&mut self.globals_backup);
            *self = fresh;
        }
        if let Some(mem) = self.memory {
            mem.data_mut(&mut self.store)[..self.heap_backup.len()].copy_from_slice(&self.heap_backup);
        }
        for (g, v) in self.globals.iter().zip(self.globals_backup.iter()) {
            g.set(&mut self.store, *v).expect("a global keeps its type");
        }
    }
}

fn classify_trap(error: wasmtime::Error, limit: u64) -> TrapReason {
    if let Some(reason) = error.downcast_ref::<TrapReason>() {
        return reason.clone();
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => TrapReason::InstructionLimit(limit),
        Some(Trap::UnreachableCodeReached) => TrapReason::SystemApi("unreachable".into()),
        Some(Trap::MemoryOutOfBounds) => TrapReason::SystemApi("heap out of bounds".into()),
        Some(Trap::StackOverflow) => TrapReason::SystemApi("stack overflow".into()),
        Some(Trap::IntegerDivisionByZero) => TrapReason::SystemApi("integer division by 0".into()),
        Some(Trap::IntegerOverflow) => TrapReason::SystemApi("integer overflow".into()),
        Some(Trap::TableOutOfBounds) => TrapReason::SystemApi("table index out of bounds".into()),
        Some(Trap::IndirectCallToNull) => TrapReason::SystemApi("call to a null table entry".into()),
        Some(Trap::BadSignature) => TrapReason::SystemApi("indirect call signature mismatch".into()),
        Some(Trap::BadConversionToInteger) => TrapReason::SystemApi("invalid conversion to integer".into()),
        Some(other) => TrapReason::SystemApi(format!("{other}")),
        None => TrapReason::SystemApi(format!("{error:#}")),
    }
}
