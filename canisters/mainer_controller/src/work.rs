//! The work queue's rules, without I/O: what enters, what is taken next, how
//! items move between states, back-off, time-outs and history. Every change
//! is written to stable memory before the next call is made, so a trap or an
//! upgrade never loses an item or makes it run twice.

use candid::Principal;
use mainer_types::controller::{Answer, ControllerError, WorkItem, WorkOrigin, WorkState};
use mainer_types::game::Challenge;

use crate::storage::{State, Stored};

const NANOS: u64 = 1_000_000_000;

/// Whose fault a failed attempt was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The LLM (or the ShareService) refused this answer: counts towards
    /// `max_attempts`.
    Refusal,
    /// Someone else's outage: a stopped, trapping, upgrading or slow LLM, an
    /// unreachable or paused ShareService or game state, our own upgrade.
    Outage,
}

impl State {
    pub fn item(&self, id: u64) -> Option<WorkItem> {
        self.queue.get(&id).map(|s| s.0)
    }

    fn put(&mut self, item: WorkItem) {
        self.queue.insert(item.id, Stored(item));
    }

    /// Finds the unfinished item for `challenge_id` from `origin`.
    pub fn find(&self, challenge_id: u64, origin: WorkOrigin) -> Option<WorkItem> {
        self.queue.values().map(|s| s.0).find(|i| i.challenge.id == challenge_id && i.origin == origin)
    }

    /// The finished item for `challenge_id` from `origin`, if still in the history.
    pub fn find_finished(&self, challenge_id: u64, origin: WorkOrigin) -> Option<WorkItem> {
        self.history.values().map(|s| s.0).find(|i| i.challenge.id == challenge_id && i.origin == origin)
    }

    /// Whether the challenge was already taken on (in the queue or finished).
    pub fn knows(&self, challenge_id: u64, origin: WorkOrigin) -> bool {
        self.find(challenge_id, origin).is_some() || self.find_finished(challenge_id, origin).is_some()
    }

    /// A failed item whose answer came after all goes back to the queue,
    /// answered, to be submitted.
    pub fn revive_answered(&mut self, id: u64, answer: Answer, now_ns: u64) -> Option<WorkItem> {
        let mut item = self.history.remove(&id)?.0;
        item.answer = Some(answer);
        item.state = WorkState::Answered;
        item.next_attempt_ns = 0;
        item.updated_at_ns = now_ns;
        self.count(|c| c.items_failed = c.items_failed.saturating_sub(1));
        self.put(item.clone());
        Some(item)
    }

    /// Adds a challenge at the end of the queue; refuses when full.
    pub fn enqueue(
        &mut self,
        challenge: Challenge,
        origin: WorkOrigin,
        now_ns: u64,
    ) -> Result<WorkItem, ControllerError> {
        let capacity = self.settings().max_queue;
        if self.queue.len() >= capacity as u64 {
            return Err(ControllerError::QueueFull { capacity });
        }
        let item = WorkItem {
            id: self.next_item_id(),
            challenge,
            origin,
            state: WorkState::Queued,
            attempts: 0,
            outages: 0,
            next_attempt_ns: 0,
            last_error: None,
            answer: None,
            created_at_ns: now_ns,
            updated_at_ns: now_ns,
        };
        self.put(item.clone());
        Ok(item)
    }

    /// Items waiting ahead of `id`.
    pub fn queued_ahead(&self, id: u64) -> u64 {
        self.queue.range(..id).filter(|e| e.value().0.state == WorkState::Queued).count() as u64
    }

    /// The oldest queued item that may be attempted now.
    pub fn next_queued(&self, now_ns: u64) -> Option<WorkItem> {
        self.queue.values().map(|s| s.0).find(|i| i.state == WorkState::Queued && i.next_attempt_ns <= now_ns)
    }

    /// Answered items due for submission (or delivery), oldest first.
    pub fn answered_due(&self, now_ns: u64) -> Vec<WorkItem> {
        self.queue
            .values()
            .map(|s| s.0)
            .filter(|i| i.state == WorkState::Answered && i.next_attempt_ns <= now_ns)
            .collect()
    }

    pub fn set_state(&mut self, id: u64, state: WorkState, now_ns: u64) -> Option<WorkItem> {
        let mut item = self.item(id)?;
        item.state = state;
        item.updated_at_ns = now_ns;
        if item.state.is_finished() {
            self.finish(item.clone());
        } else {
            self.put(item.clone());
        }
        Some(item)
    }

    pub fn set_answer(&mut self, id: u64, answer: Answer, now_ns: u64) -> Option<WorkItem> {
        let mut item = self.item(id)?;
        item.answer = Some(answer);
        item.state = WorkState::Answered;
        item.next_attempt_ns = 0;
        item.updated_at_ns = now_ns;
        self.put(item.clone());
        Some(item)
    }

    /// Records a failed attempt and sends the item back to `retry_state`
    /// after a back-off. A [`Fault::Refusal`] spends the item's give-up
    /// budget and fails it for good once `max_attempts` are used up; a
    /// [`Fault::Outage`] (someone else's trouble) never does.
    pub fn attempt_failed(
        &mut self,
        id: u64,
        error: String,
        retry_state: WorkState,
        now_ns: u64,
        fault: Fault,
    ) -> Option<WorkItem> {
        let settings = self.settings();
        let mut item = self.item(id)?;
        match fault {
            Fault::Refusal => item.attempts += 1,
            Fault::Outage => item.outages = item.outages.saturating_add(1),
        }
        item.last_error = Some(error.clone());
        item.updated_at_ns = now_ns;
        if fault == Fault::Refusal && item.attempts >= settings.max_attempts {
            canister_common::error!("item {id} failed after {} attempts: {error}", item.attempts);
            item.state = WorkState::Failed { reason: format!("after {} attempts: {error}", item.attempts) };
            self.count(|c| c.items_failed += 1);
            self.finish(item.clone());
        } else {
            item.state = retry_state;
            let tries = item.attempts.saturating_add(item.outages);
            item.next_attempt_ns = now_ns.saturating_add(settings.retry_delay_seconds(tries).saturating_mul(NANOS));
            canister_common::warn!(
                "item {id}: try {tries} failed ({error}); retry in {} s",
                settings.retry_delay_seconds(tries)
            );
            self.put(item.clone());
        }
        Some(item)
    }

    /// Moves a finished item from the queue to the bounded history.
    fn finish(&mut self, item: WorkItem) {
        self.queue.remove(&item.id);
        if matches!(item.state, WorkState::Dropped { .. }) {
            self.count(|c| c.items_dropped += 1);
        }
        self.history.insert(item.id, Stored(item));
        let keep = self.settings().history_size as u64;
        while self.history.len() > keep {
            self.history.pop_first();
        }
    }

    /// Items in flight with one of our LLMs for longer than the time-out, or
    /// whose generation cannot be running any more (after an upgrade), go
    /// back to the queue.
    pub fn reclaim_in_flight(&mut self, now_ns: u64, all_local: bool) -> Vec<u64> {
        let timeout = self.settings().in_flight_timeout_seconds * NANOS;
        let stale: Vec<WorkItem> = self
            .queue
            .values()
            .map(|s| s.0)
            .filter(|i| match i.state {
                WorkState::InFlight { since_ns, llm: Some(_) } => all_local || since_ns + timeout <= now_ns,
                _ => false,
            })
            .collect();
        let mut ids = Vec::new();
        for item in stale {
            if let WorkState::InFlight { llm: Some(llm), .. } = item.state {
                self.release_llm(llm, item.id);
            }
            let why = if all_local {
                "the controller was upgraded during the generation"
            } else {
                "the generation did not finish in time"
            };
            self.attempt_failed(item.id, why.into(), WorkState::Queued, now_ns, Fault::Outage);
            ids.push(item.id);
        }
        ids
    }

    /// ShareAgent: items forwarded to the ShareService that never came back.
    pub fn forwarded_overdue(&self, now_ns: u64) -> Vec<WorkItem> {
        let timeout = self.settings().in_flight_timeout_seconds * NANOS;
        self.queue
            .values()
            .map(|s| s.0)
            .filter(|i| matches!(i.state, WorkState::InFlight { since_ns, llm: None } if since_ns + timeout <= now_ns))
            .collect()
    }

    pub fn count_in(&self, pred: impl Fn(&WorkState) -> bool) -> u64 {
        self.queue.values().filter(|s| pred(&s.0.state)).count() as u64
    }

    /// The ShareAgent that asked for `item`, if any.
    pub fn agent_of(item: &WorkItem) -> Option<Principal> {
        match item.origin {
            WorkOrigin::Agent(p) => Some(p),
            WorkOrigin::Pulled => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::storage::Config;
    use ic_stable_structures::DefaultMemoryImpl;
    use mainer_types::MainerRole;
    use mainer_types::controller::ControllerSettings;
    use mainer_types::game::{ChallengeStatus, GenerationSettings};

    pub fn state(settings: ControllerSettings) -> State {
        let mut s = State::new(DefaultMemoryImpl::default());
        let p = Principal::anonymous();
        s.config.set(Stored(Some(Config {
            role: MainerRole::Own,
            game_state: p,
            creator: p,
            owner: p,
            share_service: None,
            settings,
            paused: false,
        })));
        s
    }

    pub fn challenge(id: u64) -> Challenge {
        Challenge {
            id,
            question: format!("question {id}"),
            settings: GenerationSettings::default(),
            max_submissions: None,
            deadline_ns: None,
            created_at_ns: 0,
            status: ChallengeStatus::Open,
            submissions: 0,
        }
    }

    #[test]
    fn the_queue_is_first_in_first_out_and_bounded() {
        let mut s = state(ControllerSettings { max_queue: 3, ..Default::default() });
        for id in [30, 10, 20] {
            s.enqueue(challenge(id), WorkOrigin::Pulled, 0).unwrap();
        }
        assert!(matches!(
            s.enqueue(challenge(40), WorkOrigin::Pulled, 0),
            Err(ControllerError::QueueFull { capacity: 3 })
        ));
        let first = s.next_queued(0).unwrap();
        assert_eq!(first.challenge.id, 30, "oldest first, whatever the challenge id");
        s.set_state(first.id, WorkState::InFlight { since_ns: 0, llm: None }, 0);
        assert_eq!(s.next_queued(0).unwrap().challenge.id, 10);
        assert_eq!(s.queued_ahead(2), 1);
    }

    #[test]
    fn failures_back_off_then_fail_for_good() {
        let settings = ControllerSettings { max_attempts: 3, retry_base_seconds: 10, ..Default::default() };
        let mut s = state(settings);
        let item = s.enqueue(challenge(1), WorkOrigin::Pulled, 0).unwrap();
        let after1 = s.attempt_failed(item.id, "boom".into(), WorkState::Queued, 0, Fault::Refusal).unwrap();
        assert_eq!(after1.next_attempt_ns, 10 * NANOS);
        assert!(s.next_queued(5 * NANOS).is_none(), "not before the back-off");
        assert!(s.next_queued(10 * NANOS).is_some());
        s.attempt_failed(item.id, "boom".into(), WorkState::Queued, 10 * NANOS, Fault::Refusal);
        for n in 0..20 {
            let outage =
                s.attempt_failed(item.id, "outage".into(), WorkState::Queued, (20 + n) * NANOS, Fault::Outage).unwrap();
            assert_eq!(outage.state, WorkState::Queued, "someone else's outage never gives up");
            assert_eq!((outage.attempts, outage.outages), (2, n as u32 + 1), "nor spends the budget");
        }
        let last = s.attempt_failed(item.id, "boom".into(), WorkState::Queued, 40 * NANOS, Fault::Refusal).unwrap();
        assert!(matches!(last.state, WorkState::Failed { .. }));
        assert!(s.item(item.id).is_none(), "finished items leave the queue");
        assert!(s.knows(1, WorkOrigin::Pulled), "and are remembered");
        assert_eq!(s.counters().items_failed, 1);
    }

    #[test]
    fn history_is_bounded() {
        let mut s = state(ControllerSettings { history_size: 2, ..Default::default() });
        for id in 0..5 {
            let item = s.enqueue(challenge(id), WorkOrigin::Pulled, 0).unwrap();
            s.set_state(item.id, WorkState::Submitted { at_ns: 1 }, 1);
        }
        assert_eq!(s.history.len(), 2);
        assert_eq!(s.history.first_key_value().unwrap().0, 3);
    }

    #[test]
    fn stale_generations_are_reclaimed() {
        let mut s = state(ControllerSettings { in_flight_timeout_seconds: 60, ..Default::default() });
        let llm = Principal::from_slice(&[1; 10]);
        s.add_llm(llm).unwrap();
        let item = s.enqueue(challenge(1), WorkOrigin::Pulled, 0).unwrap();
        s.assign(item.id, llm, 0);
        assert!(s.reclaim_in_flight(30 * NANOS, false).is_empty());
        assert_eq!(s.reclaim_in_flight(61 * NANOS, false), vec![item.id]);
        assert_eq!(s.item(item.id).unwrap().state, WorkState::Queued);
        assert_eq!(s.llm(llm).unwrap().in_flight, None, "the LLM is free again");
    }
}
