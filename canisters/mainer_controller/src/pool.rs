//! The pool of LLM canisters: round robin over LLMs that are free, not
//! resting after a failure and not being drained; one answer in flight each.

use candid::Principal;
use mainer_types::controller::{ControllerError, LlmStatus, WorkState};

use crate::storage::{LlmSlot, State, Stored};

const NANOS: u64 = 1_000_000_000;

impl State {
    pub fn llm(&self, id: Principal) -> Option<LlmSlot> {
        self.llms.get(&id).map(|s| s.0)
    }

    fn put_llm(&mut self, id: Principal, slot: LlmSlot) {
        self.llms.insert(id, Stored(slot));
    }

    pub fn add_llm(&mut self, id: Principal) -> Result<(), ControllerError> {
        if self.llms.contains_key(&id) {
            return Err(ControllerError::AlreadyExists(format!("LLM {id}")));
        }
        self.put_llm(id, LlmSlot::default());
        Ok(())
    }

    /// Removes an LLM that has no answer in flight (drain it first).
    pub fn remove_llm(&mut self, id: Principal) -> Result<(), ControllerError> {
        let slot = self.llm(id).ok_or_else(|| ControllerError::NotFound(format!("LLM {id}")))?;
        if let Some(item) = slot.in_flight {
            return Err(ControllerError::Busy(format!("LLM {id} is answering item {item}; drain it first")));
        }
        self.llms.remove(&id);
        Ok(())
    }

    pub fn set_draining(&mut self, id: Principal, draining: bool) -> Result<LlmStatus, ControllerError> {
        let mut slot = self.llm(id).ok_or_else(|| ControllerError::NotFound(format!("LLM {id}")))?;
        slot.draining = draining;
        self.put_llm(id, slot);
        Ok(self.llm_status(id, 0).expect("just written"))
    }

    pub fn llm_status(&self, id: Principal, now_ns: u64) -> Option<LlmStatus> {
        let s = self.llm(id)?;
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

    pub fn llm_statuses(&self, now_ns: u64) -> Vec<LlmStatus> {
        self.llms.keys().filter_map(|id| self.llm_status(id, now_ns)).collect()
    }

    /// The next free LLM after the last one used, in principal order.
    pub fn pick_llm(&mut self, now_ns: u64) -> Option<Principal> {
        let usable = |s: &LlmSlot| s.in_flight.is_none() && !s.draining && s.resting_until_ns <= now_ns;
        let after = self.next_llm_after;
        let later = after.and_then(|a| {
            self.llms.iter().map(|e| e.into_pair()).find(|(id, s)| *id > a && usable(&s.0)).map(|(id, _)| id)
        });
        let pick =
            later.or_else(|| self.llms.iter().map(|e| e.into_pair()).find(|(_, s)| usable(&s.0)).map(|(id, _)| id))?;
        self.next_llm_after = Some(pick);
        Some(pick)
    }

    /// Gives item `item` to `llm`: both records are written before any call.
    pub fn assign(&mut self, item: u64, llm: Principal, now_ns: u64) {
        let mut slot = self.llm(llm).expect("assigning to a known LLM");
        slot.in_flight = Some(item);
        self.put_llm(llm, slot);
        self.set_state(item, WorkState::InFlight { since_ns: now_ns, llm: Some(llm) }, now_ns);
    }

    /// Frees `llm` if it is still working on `item`.
    pub fn release_llm(&mut self, llm: Principal, item: u64) {
        if let Some(mut slot) = self.llm(llm)
            && slot.in_flight == Some(item)
        {
            slot.in_flight = None;
            self.put_llm(llm, slot);
        }
    }

    pub fn llm_answered(&mut self, llm: Principal) {
        if let Some(mut slot) = self.llm(llm) {
            slot.answers += 1;
            slot.last_error = None;
            self.put_llm(llm, slot);
        }
    }

    /// Counts a failure; `rest` keeps the LLM out of rotation for a while.
    pub fn llm_failed(&mut self, llm: Principal, error: String, rest: bool, now_ns: u64) {
        let rest_ns = self.settings().llm_rest_seconds * NANOS;
        canister_common::warn!("LLM {llm} failed{}: {error}", if rest { ", resting" } else { "" });
        if let Some(mut slot) = self.llm(llm) {
            slot.failures += 1;
            slot.last_error = Some(error);
            if rest {
                slot.resting_until_ns = now_ns + rest_ns;
            }
            self.put_llm(llm, slot);
        }
    }

    /// Frees every LLM (after an upgrade no generation is running).
    pub fn release_all_llms(&mut self) {
        let busy: Vec<Principal> = self
            .llms
            .iter()
            .map(|e| e.into_pair())
            .filter(|(_, s)| s.0.in_flight.is_some())
            .map(|(id, _)| id)
            .collect();
        for id in busy {
            let mut slot = self.llm(id).unwrap();
            slot.in_flight = None;
            self.put_llm(id, slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::work::tests::state;
    use mainer_types::controller::ControllerSettings;

    use super::*;

    fn llm(n: u8) -> Principal {
        Principal::from_slice(&[n; 10])
    }

    #[test]
    fn round_robin_skips_busy_resting_and_draining_llms() {
        let mut s = state(ControllerSettings { llm_rest_seconds: 10, ..Default::default() });
        for n in 1..=4 {
            s.add_llm(llm(n)).unwrap();
        }
        assert_eq!(s.pick_llm(0), Some(llm(1)));
        assert_eq!(s.pick_llm(0), Some(llm(2)));
        s.assign(0, llm(3), 0); // item 0 does not exist: only the LLM side matters here
        s.llm_failed(llm(4), "down".into(), true, 0);
        assert_eq!(s.pick_llm(0), Some(llm(1)), "3 busy, 4 resting: wraps around");
        s.set_draining(llm(1), true).unwrap();
        assert_eq!(s.pick_llm(0), Some(llm(2)));
        assert_eq!(s.pick_llm(11 * NANOS), Some(llm(4)), "rested long enough");
    }

    #[test]
    fn an_llm_with_work_in_flight_cannot_be_removed() {
        let mut s = state(ControllerSettings::default());
        s.add_llm(llm(1)).unwrap();
        assert!(s.add_llm(llm(1)).is_err());
        s.assign(7, llm(1), 0);
        assert!(matches!(s.remove_llm(llm(1)), Err(ControllerError::Busy(_))));
        s.release_llm(llm(1), 7);
        s.remove_llm(llm(1)).unwrap();
        assert!(s.llm(llm(1)).is_none());
    }
}
