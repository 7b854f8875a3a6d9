//! The work queue's rules, without I/O: what enters, what is taken next, how
//! items move between states, back-off, time-outs and the bounded history.
//! [`WorkQueue`] owns the unfinished items, the finished ones and an index
//! of both by challenge and origin, all in stable memory; every change is
//! written before the next call is made, so a trap or an upgrade never loses
//! an item or makes it run twice.
//!
//! The index makes "do we know this challenge?" (asked on every pull and by
//! every delivery) a range lookup instead of a decode of every item kept.

use std::borrow::Cow;

use candid::Principal;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{StableBTreeMap, Storable};
use mainer_types::controller::{Answer, ControllerError, ControllerSettings, WorkItem, WorkOrigin, WorkState};
use mainer_types::game::Challenge;
use mainer_types::llm_client::LlmError;
use mainer_types::stable::Stored;
use mainer_types::{Page, PageRequest};

use crate::memory::Memory;

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

impl Fault {
    /// Only what the LLM answered counts against the item; a call that never
    /// got an answer (stopped, trapped, upgrading, timed out) does not.
    pub fn of_generation(error: &LlmError) -> Fault {
        match error {
            LlmError::CallFailed { .. } => Fault::Outage,
            _ => Fault::Refusal,
        }
    }
}

/// An index entry: item `item_id` is (or was) the work on `challenge_id`
/// for `origin` (None: pulled). A challenge may have several items from one
/// origin: a ShareAgent asks again after the service's item failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    challenge_id: u64,
    origin: Option<Principal>,
    item_id: u64,
}

impl Key {
    fn of(item: &WorkItem) -> Key {
        Key { challenge_id: item.challenge.id, origin: origin_key(item.origin), item_id: item.id }
    }
}

fn origin_key(origin: WorkOrigin) -> Option<Principal> {
    match origin {
        WorkOrigin::Pulled => None,
        WorkOrigin::Agent(p) => Some(p),
    }
}

impl Storable for Key {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned((*self).into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(46);
        b.extend_from_slice(&self.challenge_id.to_be_bytes());
        b.extend_from_slice(&self.item_id.to_be_bytes());
        if let Some(p) = self.origin {
            b.push(1);
            b.extend_from_slice(p.as_slice());
        }
        b
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let origin = (bytes.len() > 16).then(|| Principal::from_slice(&bytes[17..]));
        Key { challenge_id: u64_at(0), item_id: u64_at(8), origin }
    }

    const BOUND: Bound = Bound::Bounded { max_size: 8 + 8 + 1 + 29, is_fixed_size: false };
}

pub struct WorkQueue {
    /// Unfinished work, by item id (ids grow, so this is FIFO order).
    queue: StableBTreeMap<u64, Stored<WorkItem>, Memory>,
    /// Finished work, by item id, trimmed to the history size.
    history: StableBTreeMap<u64, Stored<WorkItem>, Memory>,
    /// Every item of `queue` and `history`, by challenge and origin.
    index: StableBTreeMap<Key, (), Memory>,
}

impl WorkQueue {
    pub fn init(queue: Memory, history: Memory, index: Memory) -> WorkQueue {
        WorkQueue {
            queue: StableBTreeMap::init(queue),
            history: StableBTreeMap::init(history),
            index: StableBTreeMap::init(index),
        }
    }

    /// Indexes every item kept (once, for data of a release without the index).
    pub fn reindex(&mut self) {
        self.index.clear_new();
        let keys: Vec<Key> = self.queue.values().chain(self.history.values()).map(|s| Key::of(&s.0)).collect();
        for k in keys {
            self.index.insert(k, ());
        }
    }

    // ------------------------------------------------------------------
    // Reading
    // ------------------------------------------------------------------

    /// Unfinished items.
    pub fn len(&self) -> u64 {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn history_len(&self) -> u64 {
        self.history.len()
    }

    /// An unfinished item.
    pub fn item(&self, id: u64) -> Option<WorkItem> {
        self.queue.get(&id).map(|s| s.0)
    }

    /// A finished item, if still in the history.
    pub fn finished_item(&self, id: u64) -> Option<WorkItem> {
        self.history.get(&id).map(|s| s.0)
    }

    /// The ids of every item (unfinished or finished) for `challenge_id` from `origin`.
    fn ids_of(&self, challenge_id: u64, origin: WorkOrigin) -> impl Iterator<Item = u64> + '_ {
        let origin = origin_key(origin);
        let from = Key { challenge_id, origin, item_id: 0 };
        let to = Key { challenge_id, origin, item_id: u64::MAX };
        self.index.keys_range(from..=to).map(|k| k.item_id)
    }

    /// The unfinished item for `challenge_id` from `origin`.
    pub fn find(&self, challenge_id: u64, origin: WorkOrigin) -> Option<WorkItem> {
        self.ids_of(challenge_id, origin).find_map(|id| self.item(id))
    }

    /// The oldest finished item for `challenge_id` from `origin`, if still in the history.
    pub fn find_finished(&self, challenge_id: u64, origin: WorkOrigin) -> Option<WorkItem> {
        self.ids_of(challenge_id, origin).find_map(|id| self.finished_item(id))
    }

    /// Whether the challenge was already taken on (in the queue or finished).
    /// Decodes no item.
    pub fn knows(&self, challenge_id: u64, origin: WorkOrigin) -> bool {
        self.ids_of(challenge_id, origin).next().is_some()
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
        self.unfinished().filter(|i| i.state == WorkState::Answered && i.next_attempt_ns <= now_ns).collect()
    }

    /// ShareAgent: items forwarded to the ShareService longer than `timeout_ns` ago.
    pub fn forwarded_overdue(&self, now_ns: u64, timeout_ns: u64) -> Vec<WorkItem> {
        self.unfinished()
            .filter(
                |i| matches!(i.state, WorkState::InFlight { since_ns, llm: None } if since_ns + timeout_ns <= now_ns),
            )
            .collect()
    }

    /// Items in flight with one of our LLMs for `timeout_ns` or more, or
    /// all of them (`all_local`: after an upgrade none can be running).
    pub fn stale_generations(&self, now_ns: u64, timeout_ns: u64, all_local: bool) -> Vec<WorkItem> {
        self.unfinished()
            .filter(|i| match i.state {
                WorkState::InFlight { since_ns, llm: Some(_) } => all_local || since_ns + timeout_ns <= now_ns,
                _ => false,
            })
            .collect()
    }

    pub fn count_in(&self, pred: impl Fn(&WorkState) -> bool) -> u64 {
        self.queue.values().filter(|s| pred(&s.0.state)).count() as u64
    }

    fn unfinished(&self) -> impl Iterator<Item = WorkItem> + '_ {
        self.queue.values().map(|s| s.0)
    }

    /// Unfinished work, oldest first.
    pub fn queue_page(&self, page: PageRequest) -> Page<WorkItem> {
        Page::collect(self.unfinished(), self.queue.len(), page)
    }

    /// Finished work, newest first.
    pub fn history_page(&self, page: PageRequest) -> Page<WorkItem> {
        Page::collect(self.history.iter().rev().map(|e| e.value().0), self.history.len(), page)
    }

    // ------------------------------------------------------------------
    // Changing
    // ------------------------------------------------------------------

    fn put(&mut self, item: WorkItem) {
        self.index.insert(Key::of(&item), ());
        self.queue.insert(item.id, Stored(item));
    }

    /// Adds a challenge at the end of the queue as item `id` (larger than
    /// any before); refuses when `capacity` items are unfinished.
    pub fn enqueue(
        &mut self,
        id: u64,
        challenge: Challenge,
        origin: WorkOrigin,
        now_ns: u64,
        capacity: u32,
    ) -> Result<WorkItem, ControllerError> {
        if self.queue.len() >= capacity as u64 {
            return Err(ControllerError::QueueFull { capacity });
        }
        let item = WorkItem {
            id,
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

    /// Moves item `id` to `state`; a finished state moves it to the history
    /// (kept to `history_size` items).
    pub fn set_state(&mut self, id: u64, state: WorkState, now_ns: u64, history_size: u32) -> Option<WorkItem> {
        let mut item = self.item(id)?;
        item.state = state;
        item.updated_at_ns = now_ns;
        if item.state.is_finished() {
            self.finish(item.clone(), history_size);
        } else {
            self.put(item.clone());
        }
        Some(item)
    }

    /// Item `id` has its answer: due for submission (or delivery) now.
    pub fn set_answer(&mut self, id: u64, answer: Answer, now_ns: u64) -> Option<WorkItem> {
        let mut item = self.item(id)?;
        answered(&mut item, answer, now_ns);
        self.put(item.clone());
        Some(item)
    }

    /// A failed item whose answer came after all goes back to the queue,
    /// answered, to be submitted.
    pub fn revive_answered(&mut self, id: u64, answer: Answer, now_ns: u64) -> Option<WorkItem> {
        let mut item = self.history.remove(&id)?.0;
        answered(&mut item, answer, now_ns);
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
        settings: &ControllerSettings,
    ) -> Option<WorkItem> {
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
            self.finish(item.clone(), settings.history_size);
        } else {
            item.state = retry_state;
            let tries = item.attempts.saturating_add(item.outages);
            let delay = settings.retry_delay_seconds(tries);
            item.next_attempt_ns = now_ns.saturating_add(delay.saturating_mul(NANOS));
            canister_common::warn!("item {id}: try {tries} failed ({error}); retry in {delay} s");
            self.put(item.clone());
        }
        Some(item)
    }

    /// Moves a finished item from the queue to the bounded history; items
    /// trimmed off the history leave the index (they are forgotten).
    fn finish(&mut self, item: WorkItem, history_size: u32) {
        self.queue.remove(&item.id);
        self.history.insert(item.id, Stored(item));
        while self.history.len() > history_size as u64 {
            let Some((_, old)) = self.history.pop_first() else { break };
            self.index.remove(&Key::of(&old.0));
        }
    }
}

/// The item holds its answer, due now.
fn answered(item: &mut WorkItem, answer: Answer, now_ns: u64) {
    item.answer = Some(answer);
    item.state = WorkState::Answered;
    item.next_attempt_ns = 0;
    item.updated_at_ns = now_ns;
}

/// The ShareAgent that asked for `item`, if any.
pub fn agent_of(item: &WorkItem) -> Option<Principal> {
    origin_key(item.origin)
}

#[cfg(test)]
pub(crate) mod tests {
    use ic_stable_structures::DefaultMemoryImpl;
    use ic_stable_structures::memory_manager::{MemoryId, MemoryManager};
    use mainer_types::game::{ChallengeStatus, GenerationSettings};

    use super::*;

    fn queue() -> WorkQueue {
        let mm = MemoryManager::init(DefaultMemoryImpl::default());
        WorkQueue::init(mm.get(MemoryId::new(0)), mm.get(MemoryId::new(1)), mm.get(MemoryId::new(2)))
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

    /// Enqueues with ids 0, 1, 2...
    fn add(
        q: &mut WorkQueue,
        challenge_id: u64,
        origin: WorkOrigin,
        capacity: u32,
    ) -> Result<WorkItem, ControllerError> {
        let next = q.queue.keys().chain(q.history.keys()).max().map_or(0, |m| m + 1);
        q.enqueue(next, challenge(challenge_id), origin, 0, capacity)
    }

    #[test]
    fn the_queue_is_first_in_first_out_and_bounded() {
        let mut q = queue();
        for id in [30, 10, 20] {
            add(&mut q, id, WorkOrigin::Pulled, 3).unwrap();
        }
        let refused = add(&mut q, 40, WorkOrigin::Pulled, 3);
        assert!(matches!(refused, Err(ControllerError::QueueFull { capacity: 3 })));
        let first = q.next_queued(0).unwrap();
        assert_eq!(first.challenge.id, 30, "oldest first, whatever the challenge id");
        q.set_state(first.id, WorkState::InFlight { since_ns: 0, llm: None }, 0, 10);
        assert_eq!(q.next_queued(0).unwrap().challenge.id, 10);
        assert_eq!(q.queued_ahead(2), 1);
    }

    #[test]
    fn failures_back_off_then_fail_for_good() {
        let settings = ControllerSettings { max_attempts: 3, retry_base_seconds: 10, ..Default::default() };
        let mut q = queue();
        let item = add(&mut q, 1, WorkOrigin::Pulled, 10).unwrap();
        let fail = |q: &mut WorkQueue, why: &str, at: u64, fault| {
            q.attempt_failed(item.id, why.into(), WorkState::Queued, at * NANOS, fault, &settings).unwrap()
        };
        assert_eq!(fail(&mut q, "boom", 0, Fault::Refusal).next_attempt_ns, 10 * NANOS);
        assert!(q.next_queued(5 * NANOS).is_none(), "not before the back-off");
        assert!(q.next_queued(10 * NANOS).is_some());
        fail(&mut q, "boom", 10, Fault::Refusal);
        for n in 0..20 {
            let outage = fail(&mut q, "outage", 20 + n, Fault::Outage);
            assert_eq!(outage.state, WorkState::Queued, "someone else's outage never gives up");
            assert_eq!((outage.attempts, outage.outages), (2, n as u32 + 1), "nor spends the budget");
        }
        let last = fail(&mut q, "boom", 40, Fault::Refusal);
        assert!(matches!(last.state, WorkState::Failed { .. }));
        assert!(q.item(item.id).is_none(), "finished items leave the queue");
        assert!(q.knows(1, WorkOrigin::Pulled), "and are remembered");
        assert_eq!(q.find_finished(1, WorkOrigin::Pulled).map(|i| i.id), Some(item.id));
    }

    #[test]
    fn history_is_bounded_and_trimmed_items_are_forgotten() {
        let mut q = queue();
        for id in 0..5 {
            let item = add(&mut q, id, WorkOrigin::Pulled, 10).unwrap();
            q.set_state(item.id, WorkState::Submitted { at_ns: 1 }, 1, 2);
        }
        assert_eq!(q.history_len(), 2);
        assert_eq!(q.history_page(PageRequest::first(10)).items.iter().map(|i| i.id).collect::<Vec<_>>(), [4, 3]);
        assert!(!q.knows(2, WorkOrigin::Pulled), "trimmed off the history");
        assert!(q.knows(3, WorkOrigin::Pulled) && q.knows(4, WorkOrigin::Pulled));
        assert_eq!(q.index.len(), 2, "the index holds what is kept, no more");
    }

    #[test]
    fn lookups_tell_origins_and_unfinished_from_finished_items_apart() {
        let mut q = queue();
        let agent = |n: u8| WorkOrigin::Agent(Principal::from_slice(&[n; 29]));
        let pulled = add(&mut q, 7, WorkOrigin::Pulled, 10).unwrap();
        let a1 = add(&mut q, 7, agent(1), 10).unwrap();
        add(&mut q, 8, agent(2), 10).unwrap();
        assert_eq!(q.find(7, WorkOrigin::Pulled).map(|i| i.id), Some(pulled.id));
        assert_eq!(q.find(7, agent(1)).map(|i| i.id), Some(a1.id));
        assert!(q.find(7, agent(2)).is_none() && !q.knows(7, agent(2)));
        assert!(q.find(8, agent(1)).is_none());
        // The service's item for agent 1 fails; the agent asks again: a second item.
        q.set_state(a1.id, WorkState::Dropped { reason: "closed".into() }, 0, 10);
        assert!(q.find(7, agent(1)).is_none() && q.knows(7, agent(1)));
        let again = add(&mut q, 7, agent(1), 10).unwrap();
        assert_eq!(q.find(7, agent(1)).map(|i| i.id), Some(again.id));
        assert_eq!(q.find_finished(7, agent(1)).map(|i| i.id), Some(a1.id));
        // A late answer revives a failed item under the same index entry.
        let answer = Answer {
            text: "late".into(),
            evidence: mainer_types::game::ClaimedEvidence {
                prompt_sha256: String::new(),
                llm_canister: Principal::anonymous(),
                model_sha256: None,
                llm_calls: 1,
                prompt_tokens: None,
                generated_tokens: None,
            },
        };
        q.set_state(pulled.id, WorkState::Failed { reason: "x".into() }, 0, 10);
        let revived = q.revive_answered(pulled.id, answer, 5).unwrap();
        assert_eq!(revived.state, WorkState::Answered);
        assert_eq!(q.find(7, WorkOrigin::Pulled).map(|i| i.id), Some(pulled.id));
        assert!(q.find_finished(7, WorkOrigin::Pulled).is_none());
    }

    #[test]
    fn the_index_is_rebuilt_from_the_items() {
        let mut q = queue();
        for id in 0..4 {
            let item = add(&mut q, id, WorkOrigin::Pulled, 10).unwrap();
            if id % 2 == 0 {
                q.set_state(item.id, WorkState::Submitted { at_ns: 1 }, 1, 10);
            }
        }
        // Data of a release without the index.
        q.index.clear_new();
        assert!(!q.knows(0, WorkOrigin::Pulled));
        q.reindex();
        assert!((0..4).all(|id| q.knows(id, WorkOrigin::Pulled)));
        assert_eq!(q.find(1, WorkOrigin::Pulled).map(|i| i.id), Some(1));
        assert_eq!(q.find_finished(2, WorkOrigin::Pulled).map(|i| i.id), Some(2));
    }

    #[test]
    fn index_keys_round_trip_and_sort_by_challenge_then_origin() {
        let p = Principal::from_slice(&[9; 29]);
        let keys = [
            Key { challenge_id: 1, origin: None, item_id: u64::MAX },
            Key { challenge_id: 1, origin: Some(Principal::management_canister()), item_id: 2 },
            Key { challenge_id: 1, origin: Some(p), item_id: 0 },
            Key { challenge_id: 2, origin: None, item_id: 0 },
        ];
        for k in keys {
            let bytes = k.into_bytes();
            assert!(bytes.len() <= 46);
            assert_eq!(Key::from_bytes(Cow::Owned(bytes)), k);
        }
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn stale_generations_and_overdue_forwards_are_found() {
        let mut q = queue();
        let llm = Principal::from_slice(&[1; 10]);
        let local = add(&mut q, 1, WorkOrigin::Pulled, 10).unwrap();
        let forwarded = add(&mut q, 2, WorkOrigin::Pulled, 10).unwrap();
        q.set_state(local.id, WorkState::InFlight { since_ns: 0, llm: Some(llm) }, 0, 10);
        q.set_state(forwarded.id, WorkState::InFlight { since_ns: 0, llm: None }, 0, 10);
        assert!(q.stale_generations(30, 60, false).is_empty());
        assert_eq!(q.stale_generations(30, 60, true).iter().map(|i| i.id).collect::<Vec<_>>(), [local.id]);
        assert_eq!(q.stale_generations(60, 60, false).len(), 1);
        assert!(q.forwarded_overdue(59, 60).is_empty());
        assert_eq!(q.forwarded_overdue(60, 60).iter().map(|i| i.id).collect::<Vec<_>>(), [forwarded.id]);
    }
}
