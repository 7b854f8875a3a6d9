//! The LLM canister's log lines for its calls and its own `/metrics`:
//! model and conversations (from [`MemoryStatus`]), calls by method and
//! outcome, answers, generated tokens and instructions per answer. The
//! counters are heap state: they restart at zero after an upgrade, as
//! Prometheus counters may.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;

use candid::Principal;
use canister_common::metrics::Encoder;
use mainer_types::llama_cpp::OutputRecordResult;

use crate::api::{MemoryStatus, ModelState};

#[derive(Default)]
struct Stats {
    /// (method, succeeded) → calls.
    calls: BTreeMap<(&'static str, bool), u64>,
    /// `run_update` calls that ended an answer (end of generation).
    answers: u64,
    /// Tokens of the answers that ended.
    answer_tokens: u64,
    /// Instructions of `run_update` calls.
    run_instructions: u64,
}

thread_local! {
    static STATS: RefCell<Stats> = RefCell::default();
}

/// Counts and logs one inference call (`new_chat`, `run_update`, `load_model`, ...).
pub fn record_output(method: &'static str, caller: Principal, result: &OutputRecordResult, instructions: u64) {
    let (ok, r) = match result {
        OutputRecordResult::Ok(r) => (true, r),
        OutputRecordResult::Err(r) => (false, r),
    };
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        *s.calls.entry((method, ok)).or_default() += 1;
        if method == "run_update" {
            s.run_instructions += instructions;
            if ok && r.generated_eog {
                s.answers += 1;
                s.answer_tokens += r.n_tokens_generated.unwrap_or(0);
            }
        }
    });
    if !ok {
        canister_common::warn!("{method} by {caller} failed ({}): {}", r.status_code, r.error);
    } else if method == "load_model" {
        canister_common::info!("model loaded ({instructions} instructions)");
    } else if r.generated_eog {
        let tokens = r.n_tokens_generated.unwrap_or(0);
        canister_common::info!("{method} by {caller}: answer done, {tokens} tokens ({})", r.conversation);
    } else {
        canister_common::debug!("{method} by {caller}: {instructions} instructions");
    }
}

/// Counts a call whose result is only ok or not (uploads, settings); logs refusals.
pub fn record_status(method: &'static str, caller: Principal, error: Option<String>) {
    STATS.with(|s| *s.borrow_mut().calls.entry((method, error.is_none())).or_default() += 1);
    match error {
        Some(e) => canister_common::warn!("{method} by {caller} refused: {e}"),
        None => canister_common::debug!("{method} by {caller}"),
    }
}

pub fn encode(m: &MemoryStatus, w: &mut Encoder) -> io::Result<()> {
    let loaded = matches!(m.model, ModelState::Loaded(_));
    w.encode_gauge("llm_model_loaded", loaded as u8 as f64, "1 when a model is loaded and ready.")?;
    w.encode_gauge("llm_conversations", m.conversations as f64, "Conversations holding a KV cache.")?;
    w.encode_gauge("llm_max_conversations", m.max_conversations as f64, "Conversations kept at most.")?;
    w.encode_gauge("llm_kv_cache_bytes", m.kv_cache_bytes as f64, "KV-cache bytes of all conversations.")?;
    w.encode_gauge("llm_kv_cache_budget_bytes", m.kv_cache_budget_bytes as f64, "KV-cache budget in bytes.")?;
    STATS.with(|s| {
        let s = s.borrow();
        let mut calls = w.counter_vec("llm_calls_total", "Calls since the last upgrade, by method and outcome.")?;
        for (&(method, ok), &n) in &s.calls {
            calls = calls.value(&[("method", method), ("outcome", if ok { "ok" } else { "error" })], n as f64)?;
        }
        w.encode_counter("llm_answers_total", s.answers as f64, "Answers generated to their end.")?;
        w.encode_counter("llm_answer_tokens_total", s.answer_tokens as f64, "Tokens of the answers generated.")?;
        w.encode_counter("llm_run_instructions_total", s.run_instructions as f64, "Instructions of run_update calls.")?;
        let per_answer = s.run_instructions.checked_div(s.answers).unwrap_or(0);
        w.encode_gauge("llm_instructions_per_answer", per_answer as f64, "run_update instructions per answer.")
    })
}
