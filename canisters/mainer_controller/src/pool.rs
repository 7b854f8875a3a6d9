//! The pool of LLM canisters: round robin over LLMs that are free, not
//! resting after a failure and not being drained; one answer in flight each.
//! [`Pool`] owns the slots (in stable memory) and keeps these rules; the
//! work an LLM holds is the work queue's business (`state.rs` ties the two).

use candid::{CandidType, Principal};
use ic_stable_structures::StableBTreeMap;
use mainer_types::controller::{ControllerError, LlmStatus};
use mainer_types::stable::Stored;
use serde::Deserialize;

use crate::memory::Memory;

/// One LLM canister of the pool. Stored as Candid: fields keep their names.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct LlmSlot {
    /// Not given work before this time (after a failure).
    pub resting_until_ns: u64,
    /// Being emptied before removal: no new work.
    pub draining: bool,
    pub in_flight: Option<u64>,
    pub answers: u64,
    pub failures: u64,
    pub last_error: Option<String>,
    pub model_sha256: Option<String>,
}

impl LlmSlot {
    fn usable(&self, now_ns: u64) -> bool {
        self.in_flight.is_none() && !self.draining && self.resting_until_ns <= now_ns
    }
}

pub struct Pool {
    llms: StableBTreeMap<Principal, Stored<LlmSlot>, Memory>,
    /// Where the round robin resumes (a heap cache; losing it is harmless).
    next_after: Option<Principal>,
}

fn not_found(id: Principal) -> ControllerError {
    ControllerError::NotFound(format!("LLM {id}"))
}

impl Pool {
    pub fn init(memory: Memory) -> Pool {
        Pool { llms: StableBTreeMap::init(memory), next_after: None }
    }

    pub fn get(&self, id: Principal) -> Option<LlmSlot> {
        self.llms.get(&id).map(|s| s.0)
    }

    fn put(&mut self, id: Principal, slot: LlmSlot) {
        self.llms.insert(id, Stored(slot));
    }

    /// Changes the slot of `id`, if it is in the pool.
    fn update(&mut self, id: Principal, f: impl FnOnce(&mut LlmSlot)) -> Option<LlmSlot> {
        let mut slot = self.get(id)?;
        f(&mut slot);
        self.put(id, slot.clone());
        Some(slot)
    }

    pub fn ids(&self) -> Vec<Principal> {
        self.llms.keys().collect()
    }

    pub fn add(&mut self, id: Principal, model_sha256: Option<String>) -> Result<(), ControllerError> {
        if self.llms.contains_key(&id) {
            return Err(ControllerError::AlreadyExists(format!("LLM {id}")));
        }
        self.put(id, LlmSlot { model_sha256, ..LlmSlot::default() });
        Ok(())
    }

    /// Removes an LLM that has no answer in flight (drain it first).
    pub fn remove(&mut self, id: Principal) -> Result<(), ControllerError> {
        let slot = self.get(id).ok_or_else(|| not_found(id))?;
        if let Some(item) = slot.in_flight {
            return Err(ControllerError::Busy(format!("LLM {id} is answering item {item}; drain it first")));
        }
        self.llms.remove(&id);
        Ok(())
    }

    pub fn set_draining(&mut self, id: Principal, draining: bool) -> Result<(), ControllerError> {
        self.update(id, |s| s.draining = draining).map(|_| ()).ok_or_else(|| not_found(id))
    }

    pub fn status(&self, id: Principal, now_ns: u64) -> Option<LlmStatus> {
        let s = self.get(id)?;
        let resting = s.resting_until_ns > now_ns;
        Some(LlmStatus {
            canister: id,
            healthy: !resting,
            draining: s.draining,
            resting_until_ns: resting.then_some(s.resting_until_ns),
            in_flight: s.in_flight,
            answers: s.answers,
            failures: s.failures,
            last_error: s.last_error,
        })
    }

    pub fn statuses(&self, now_ns: u64) -> Vec<LlmStatus> {
        self.llms.keys().filter_map(|id| self.status(id, now_ns)).collect()
    }

    /// The next usable LLM after the last one picked, in principal order.
    pub fn pick(&mut self, now_ns: u64) -> Option<Principal> {
        let usable = |(id, s): (Principal, Stored<LlmSlot>)| s.0.usable(now_ns).then_some(id);
        let later = self.next_after.and_then(|a| {
            use std::ops::Bound::{Excluded, Unbounded};
            self.llms.range((Excluded(a), Unbounded)).map(|e| e.into_pair()).find_map(usable)
        });
        let pick = later.or_else(|| self.llms.iter().map(|e| e.into_pair()).find_map(usable))?;
        self.next_after = Some(pick);
        Some(pick)
    }

    /// Whether `id` is in the pool with nothing in flight.
    pub fn is_free(&self, id: Principal) -> bool {
        self.get(id).is_some_and(|s| s.in_flight.is_none())
    }

    /// Whether `id` is working on `item`.
    pub fn is_working_on(&self, id: Principal, item: u64) -> bool {
        self.get(id).is_some_and(|s| s.in_flight == Some(item))
    }

    /// `id` takes on `item` (the LLM side of an assignment).
    pub fn occupy(&mut self, id: Principal, item: u64) {
        self.update(id, |s| s.in_flight = Some(item)).expect("occupying an LLM of the pool");
    }

    /// Frees `id` if it is still working on `item`.
    pub fn release(&mut self, id: Principal, item: u64) {
        if self.is_working_on(id, item) {
            self.update(id, |s| s.in_flight = None);
        }
    }

    pub fn answered(&mut self, id: Principal) {
        self.update(id, |s| {
            s.answers += 1;
            s.last_error = None;
        });
    }

    /// Counts a failure; `rest_until_ns` keeps the LLM out of rotation until then.
    pub fn failed(&mut self, id: Principal, error: String, rest_until_ns: Option<u64>) {
        self.update(id, |s| {
            s.failures += 1;
            s.last_error = Some(error);
            if let Some(until) = rest_until_ns {
                s.resting_until_ns = until;
            }
        });
    }

    /// Frees every LLM (after an upgrade no generation is running).
    pub fn release_all(&mut self) {
        let busy: Vec<Principal> = self
            .llms
            .iter()
            .map(|e| e.into_pair())
            .filter(|(_, s)| s.0.in_flight.is_some())
            .map(|(id, _)| id)
            .collect();
        for id in busy {
            self.update(id, |s| s.in_flight = None);
        }
    }
}

#[cfg(test)]
mod tests {
    use ic_stable_structures::DefaultMemoryImpl;
    use ic_stable_structures::memory_manager::{MemoryId, MemoryManager};

    use super::*;

    fn pool() -> Pool {
        Pool::init(MemoryManager::init(DefaultMemoryImpl::default()).get(MemoryId::new(0)))
    }

    fn llm(n: u8) -> Principal {
        Principal::from_slice(&[n; 10])
    }

    #[test]
    fn round_robin_skips_busy_resting_and_draining_llms() {
        let mut p = pool();
        for n in 1..=4 {
            p.add(llm(n), None).unwrap();
        }
        assert_eq!(p.pick(0), Some(llm(1)));
        assert_eq!(p.pick(0), Some(llm(2)));
        p.occupy(llm(3), 0);
        p.failed(llm(4), "down".into(), Some(10));
        assert_eq!(p.pick(0), Some(llm(1)), "3 busy, 4 resting: wraps around");
        p.set_draining(llm(1), true).unwrap();
        assert_eq!(p.pick(0), Some(llm(2)));
        assert_eq!(p.pick(11), Some(llm(4)), "rested long enough");
        let s = p.status(llm(4), 0).unwrap();
        assert!(!s.healthy && s.failures == 1 && s.last_error.as_deref() == Some("down"));
        p.answered(llm(4));
        assert_eq!(p.get(llm(4)).unwrap().last_error, None, "an answer clears the last error");
    }

    #[test]
    fn an_llm_with_work_in_flight_cannot_be_removed() {
        let mut p = pool();
        p.add(llm(1), Some("sha".into())).unwrap();
        assert!(matches!(p.add(llm(1), None), Err(ControllerError::AlreadyExists(_))));
        p.occupy(llm(1), 7);
        assert!(matches!(p.remove(llm(1)), Err(ControllerError::Busy(_))));
        p.release(llm(1), 8);
        assert!(!p.is_free(llm(1)), "only the item it works on frees it");
        p.release(llm(1), 7);
        assert!(p.is_free(llm(1)));
        p.remove(llm(1)).unwrap();
        assert!(p.get(llm(1)).is_none());
        assert!(matches!(p.remove(llm(1)), Err(ControllerError::NotFound(_))));
        assert!(matches!(p.set_draining(llm(1), true), Err(ControllerError::NotFound(_))));
    }

    #[test]
    fn after_an_upgrade_every_llm_is_free() {
        let mut p = pool();
        for n in 1..=3 {
            p.add(llm(n), None).unwrap();
            p.occupy(llm(n), n as u64);
        }
        assert_eq!(p.pick(0), None);
        p.release_all();
        assert!((1..=3).all(|n| p.is_free(llm(n))));
    }
}
