//! The IC-weighted instruction meter: what the Internet Computer charges for
//! the wasm a message executes, its system API calls, and the memory pages it
//! dirties.
//!
//! Sources (facts carried over from dfinity/ic; the code is written here):
//! - operators: `rs/embedders/src/wasm_utils/instrumentation.rs`,
//!   `instruction_to_cost` and the injection of the metering code, at commit
//!   002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe (see [`crate::ic_cost_table`]);
//! - system API: the overheads of
//!   `rs/embedders/src/wasmtime_embedder/system_api_complexity.rs` as
//!   `rs/embedders/src/wasmtime_embedder/linker.rs` applies them, at commit
//!   6b857d45cf69349ed7e66570eccbe3dd62b2ad90, with the wasm-native stable
//!   memory (`overhead_native`, enabled by `FeatureFlags::default()` in
//!   `rs/config/src/embedders.rs` at 002d5530);
//! - dirty pages: `dirty_page_overhead` = 1,000 instructions per 4 KiB page
//!   (`rs/config/src/subnet_config.rs`, application subnets, at 002d5530),
//!   times 4 for wasm64 (`WASM64_DIRTY_PAGE_OVERHEAD_MULTIPLIER`).
//!
//! Wasmtime charges the static table as fuel (`Config::operator_cost`): its
//! fuel also costs 1 on every function entry and, through
//! `VariableOperatorCost`, 1 per byte of `memory.copy/fill/init` and per
//! element of `table.copy/fill/init`, as the IC does. What this meter leaves
//! out is listed in the README ("What the meter follows").

use wasmtime::OperatorCost;

use crate::ic_cost_table::{BULK_COST_PER_BYTE, ic_operator_cost};

/// Wasmtime's per-operator fuel table set to the IC's costs. The table holds
/// a `u8` per operator: the four operators the IC charges 300
/// (`memory.grow`, `table.grow`, `data.drop`, `elem.drop`) cost 255 here.
pub fn operator_cost(wasm64: bool) -> OperatorCost {
    let mut cost = OperatorCost::new();
    macro_rules! set_every_operator {
        ($(@$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*))*) => {
            $( cost.$op = ic_operator_cost(stringify!($op), wasm64).min(u8::MAX as u16) as u8; )*
        };
    }
    wasmparser::for_each_operator!(set_every_operator);
    let per_byte = BULK_COST_PER_BYTE as u8;
    let v = &mut cost.variable;
    v.memory_copy_per_byte = per_byte;
    v.memory_fill_per_byte = per_byte;
    v.memory_init_per_byte = per_byte;
    v.table_copy_per_element = per_byte;
    v.table_fill_per_element = per_byte;
    v.table_init_per_element = per_byte;
    // `memory.grow` and `table.grow` cost their flat 300 only.
    v.memory_grow_per_page = 0;
    v.table_grow_per_element = 0;
    cost
}

/// Fixed overheads of the `ic0` calls, in instructions. Calls that move bytes
/// between the heap and the system also pay 1 per byte (application subnets),
/// and those that send bytes out of the canister (`msg_reply_data_append`,
/// `msg_reject`, `call_data_append`) pay [`BYTE_TRANSMISSION_COST_FACTOR`] per byte.
pub mod syscall {
    /// Most calls.
    pub const DEFAULT: u64 = 500;
    pub const CALL_NEW: u64 = 1_500;
    pub const CALL_PERFORM: u64 = 5_000;
    pub const IS_CONTROLLER: u64 = 1_000;
    pub const DEBUG_PRINT: u64 = 100;
    pub const PERFORMANCE_COUNTER: u64 = 200;
    pub const COST_HTTP_REQUEST_V2: u64 = 10_000;
    /// Wasm-native stable memory: `stable*_read/write` (plus 1 per byte) ...
    pub const STABLE_READ_WRITE: u64 = 20;
    /// ... and `stable*_grow`. `stable*_size` (a plain `memory.size` on the
    /// IC) and `mint_cycles128` (only the CMC may call it) are free.
    pub const STABLE_GROW: u64 = 100;
}

/// Instructions per byte a canister sends out (reply, reject, call payload).
pub const BYTE_TRANSMISSION_COST_FACTOR: u64 = 50;

/// Bytes the IC keeps of a canister's log; `debug_print` and `trap` pay for
/// the part of their message that fits.
pub const CANISTER_LOG_CAPACITY: u64 = 4 * 1024;

/// Instructions `debug_print` and `trap` pay for logging `len` bytes besides
/// their overhead: 2 per byte stored (a record added, an old one dropped) and
/// the transmission factor per byte sent. The IC counts the transmitted bytes
/// against the log's free space; the simulator assumes it is all free.
pub fn logging_bytes(len: u64) -> u64 {
    let kept = len.min(CANISTER_LOG_CAPACITY);
    2 * kept + BYTE_TRANSMISSION_COST_FACTOR * kept
}

/// OS page size of the IC's dirty page accounting.
pub const OS_PAGE: usize = 4 * 1024;
/// Instructions per newly dirtied 4 KiB page of heap or stable memory.
pub const DIRTY_PAGE_OVERHEAD: u64 = 1_000;
pub const WASM64_DIRTY_PAGE_OVERHEAD_MULTIPLIER: u64 = 4;

pub fn dirty_page_overhead(wasm64: bool) -> u64 {
    if wasm64 { DIRTY_PAGE_OVERHEAD * WASM64_DIRTY_PAGE_OVERHEAD_MULTIPLIER } else { DIRTY_PAGE_OVERHEAD }
}

/// The 4 KiB pages of `now` that differ from `before` (pages past the end of
/// `before` count when they are not all zero, as freshly grown memory is).
/// A page rewritten with the bytes it had is not seen: a lower bound on the
/// IC's count, which tracks writes.
pub fn changed_pages(before: &[u8], now: &[u8]) -> u64 {
    now.chunks(OS_PAGE)
        .enumerate()
        .filter(|(i, page)| {
            let start = i * OS_PAGE;
            match before.get(start..(start + page.len()).min(before.len())) {
                Some(old) if old.len() == page.len() => old != *page,
                Some(old) => old != &page[..old.len()] || page[old.len()..].iter().any(|&b| b != 0),
                None => page.iter().any(|&b| b != 0),
            }
        })
        .count() as u64
}

/// 4 KiB stable-memory pages a message has written, to charge each once.
#[derive(Default, Debug)]
pub struct DirtyStablePages(std::collections::HashSet<u64>);

impl DirtyStablePages {
    /// Marks `[offset, offset + len)` written; returns how many pages are new.
    pub fn mark(&mut self, offset: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let (first, last) = (offset / OS_PAGE as u64, (offset + len - 1) / OS_PAGE as u64);
        (first..=last).filter(|p| self.0.insert(*p)).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reaches_wasmtime_for_every_operator() {
        let c = operator_cost(false);
        assert_eq!((c.F32Add, c.F32x4Mul, c.I8x16Shuffle, c.Call, c.I32Load, c.End, c.Drop), (2, 2, 3, 5, 1, 0, 1));
        assert_eq!(operator_cost(true).I32Load, 2);
        assert_eq!(c.variable.memory_fill_per_byte, 1);
    }

    #[test]
    fn changed_pages_counts_4k_pages_that_differ() {
        let before = vec![0u8; 3 * OS_PAGE];
        let mut now = before.clone();
        now[5] = 1;
        now[OS_PAGE * 2 + 7] = 1;
        assert_eq!(changed_pages(&before, &now), 2);
        now.extend_from_slice(&[0; OS_PAGE]);
        assert_eq!(changed_pages(&before, &now), 2, "grown zero pages are clean");
        now[3 * OS_PAGE] = 9;
        assert_eq!(changed_pages(&before, &now), 3);
    }

    #[test]
    fn stable_pages_are_charged_once_per_message() {
        let mut d = DirtyStablePages::default();
        assert_eq!(d.mark(4095, 2), 2);
        assert_eq!(d.mark(0, 4096), 0);
        assert_eq!(d.mark(8192, 0), 0);
        assert_eq!(d.mark(8192, 1), 1);
    }
}
