//! Prometheus text metrics (through `ic-metrics-encoder`): the figures every
//! canister reports — cycles, heap and stable memory, kept log entries —
//! followed by the canister's own, written by a closure over [`Encoder`].

use std::io;

use crate::log::{self, Priority};

/// Writes metrics; see `ic_metrics_encoder::MetricsEncoder` for its calls
/// (`encode_gauge`, `encode_counter`, `gauge_vec(..)?.value(labels, v)?`).
pub type Encoder = ic_metrics_encoder::MetricsEncoder<Vec<u8>>;

/// What the system API tells about the canister itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemFigures {
    pub now_ns: u64,
    pub cycles: u128,
    pub heap_bytes: u64,
    pub stable_bytes: u64,
}

impl SystemFigures {
    /// Asks the system API; all zero in native unit tests.
    pub fn current() -> Self {
        #[cfg(target_arch = "wasm32")]
        {
            SystemFigures {
                now_ns: ic_cdk::api::time(),
                cycles: ic_cdk::api::canister_cycle_balance(),
                heap_bytes: core::arch::wasm32::memory_size(0) as u64 * 65_536,
                stable_bytes: ic_cdk::api::stable_size() * 65_536,
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            SystemFigures::default()
        }
    }
}

/// The common figures, then `own`'s, as Prometheus text.
pub fn encode(system: SystemFigures, own: impl FnOnce(&mut Encoder) -> io::Result<()>) -> io::Result<Vec<u8>> {
    let mut w = Encoder::new(Vec::new(), (system.now_ns / 1_000_000) as i64);
    w.encode_gauge("canister_cycles_balance", system.cycles as f64, "Cycles balance of the canister.")?;
    w.encode_gauge("canister_heap_memory_bytes", system.heap_bytes as f64, "Size of the wasm heap in bytes.")?;
    w.encode_gauge("canister_stable_memory_bytes", system.stable_bytes as f64, "Size of stable memory in bytes.")?;
    let mut kept = w.gauge_vec("canister_log_entries", "Log entries kept, by priority (bounded buffers).")?;
    for p in Priority::ALL {
        kept = kept.value(&[("priority", p.name())], log::len(p) as f64)?;
    }
    own(&mut w)?;
    Ok(w.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_figures_come_first_then_the_canisters_own() {
        crate::warn!("one");
        let system = SystemFigures { now_ns: 5_000_000, cycles: 123, heap_bytes: 65_536, stable_bytes: 0 };
        let text = encode(system, |w| w.encode_counter("queue_pulls_total", 7.0, "Pulls.")).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("# TYPE canister_cycles_balance gauge\ncanister_cycles_balance 123 5\n"), "{text}");
        assert!(text.contains("canister_heap_memory_bytes 65536 5\n"), "{text}");
        assert!(text.contains("canister_log_entries{priority=\"WARN\"} 1 5\n"), "{text}");
        assert!(text.contains("canister_log_entries{priority=\"ERROR\"} 0 5\n"), "{text}");
        assert!(text.ends_with("# TYPE queue_pulls_total counter\nqueue_pulls_total 7 5\n"), "{text}");
    }
}
