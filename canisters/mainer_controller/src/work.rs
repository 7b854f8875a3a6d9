//! The work queue's rules, without I/O: what enters, what is taken next, how
//! items move between states, back-off, time-outs and the bounded history.
//! [`WorkQueue`] owns the unfinished items, the finished ones and an index
//! of both by challenge and origin, all in stable memory; every change is
//! written before the next call is made, so a trap or an upgrade never loses
//! an item or makes it run twice.
//!
//! The index makes "do we know this challenge?" (asked on every pull and by
//! every delivery) a range lookup instead of a decode of every item kept.
//! Three lanes order the unfinished items for the step that takes them next
//! (queued and answered items by when they may next be tried, items in flight
//! by when they left), so taking the next item, finding the answers due or
//! the time-outs, and counting items by state cost O(log n) in the queue's
//! length (or O(k) for the k items found), never a decode of the whole queue.

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
    /// The other side is busy and says so (a ShareService's full queue):
    /// tried again after the base delay, with no back-off growth, so that the
    /// agent comes back for its turn.
    Busy,
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

/// The lanes of unfinished items: which step takes them next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    Queued,
    InFlight,
    Answered,
}

/// A lane entry: (when, item id). Queued and answered items by
/// `next_attempt_ns` (0: at once, so fresh items are taken oldest first,
/// before items backing off), items in flight by `since_ns`.
type LaneKey = (u64, u64);

fn lane_of(item: &WorkItem) -> Option<(Lane, LaneKey)> {
    match item.state {
        WorkState::Queued => Some((Lane::Queued, (item.next_attempt_ns, item.id))),
        WorkState::InFlight { since_ns, .. } => Some((Lane::InFlight, (since_ns, item.id))),
        WorkState::Answered => Some((Lane::Answered, (item.next_attempt_ns, item.id))),
        _ => None,
    }
}

/// How many unfinished items are in each state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct QueueCounts {
    pub queued: u64,
    pub in_flight: u64,
    pub answered: u64,
}

/// The stable memories of a [`WorkQueue`].
pub struct QueueMemories {
    pub queue: Memory,
    pub history: Memory,
    pub index: Memory,
    pub queued: Memory,
    pub in_flight: Memory,
    pub answered: Memory,
    pub by_agent: Memory,
}

pub struct WorkQueue {
    /// Unfinished work, by item id (ids grow, so this is FIFO order).
    queue: StableBTreeMap<u64, Stored<WorkItem>, Memory>,
    /// Finished work, by item id, trimmed to the history size.
    history: StableBTreeMap<u64, Stored<WorkItem>, Memory>,
    /// Every item of `queue` and `history`, by challenge and origin.
    index: StableBTreeMap<Key, (), Memory>,
    /// The lanes: every item of `queue`, in exactly one of them.
    queued: StableBTreeMap<LaneKey, (), Memory>,
    in_flight: StableBTreeMap<LaneKey, (), Memory>,
    answered: StableBTreeMap<LaneKey, (), Memory>,
    /// ShareService: unfinished items per agent (absent: none).
    by_agent: StableBTreeMap<Principal, u64, Memory>,
}

impl WorkQueue {
    pub fn init(m: QueueMemories) -> WorkQueue {
        WorkQueue {
            queue: StableBTreeMap::init(m.queue),
            history: StableBTreeMap::init(m.history),
            index: StableBTreeMap::init(m.index),
            queued: StableBTreeMap::init(m.queued),
            in_flight: StableBTreeMap::init(m.in_flight),
            answered: StableBTreeMap::init(m.answered),
            by_agent: StableBTreeMap::init(m.by_agent),
        }
    }

    /// Indexes every item kept and puts the unfinished ones in their lanes
    /// (once, for data of a release without the index or the lanes).
    pub fn reindex(&mut self) {
        self.index.clear_new();
        self.queued.clear_new();
        self.in_flight.clear_new();
        self.answered.clear_new();
        self.by_agent.clear_new();
        let keys: Vec<Key> = self.queue.values().chain(self.history.values()).map(|s| Key::of(&s.0)).collect();
        for k in keys {
            self.index.insert(k, ());
        }
        let lanes: Vec<(Lane, LaneKey)> = self.queue.values().filter_map(|s| lane_of(&s.0)).collect();
        for (lane, key) in lanes {
            self.lane(lane).insert(key, ());
        }
        let agents: Vec<Principal> = self.queue.values().filter_map(|s| agent_of(&s.0)).collect();
        for a in agents {
            self.count_agent(Some(a), 1);
        }
    }

    fn count_agent(&mut self, agent: Option<Principal>, up: i8) {
        let Some(agent) = agent else { return };
        let n = self.by_agent.get(&agent).unwrap_or(0);
        let n = if up > 0 { n + 1 } else { n.saturating_sub(1) };
        if n == 0 {
            self.by_agent.remove(&agent);
        } else {
            self.by_agent.insert(agent, n);
        }
    }

    /// ShareService: unfinished items of `agent`.
    pub fn items_of_agent(&self, agent: Principal) -> u64 {
        self.by_agent.get(&agent).unwrap_or(0)
    }

    fn lane(&mut self, lane: Lane) -> &mut StableBTreeMap<LaneKey, (), Memory> {
        match lane {
            Lane::Queued => &mut self.queued,
            Lane::InFlight => &mut self.in_flight,
            Lane::Answered => &mut self.answered,
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

    /// Unfinished items by state, from the lanes' sizes: O(1).
    pub fn counts(&self) -> QueueCounts {
        QueueCounts { queued: self.queued.len(), in_flight: self.in_flight.len(), answered: self.answered.len() }
    }

    /// At most this many queued items are taken before item `id` (the queued
    /// items but itself, if it is queued; O(1), an upper bound: items backing
    /// off come after it).
    pub fn queued_ahead(&self, id: u64) -> u64 {
        let queued = self.item(id).is_some_and(|i| i.state == WorkState::Queued);
        if queued { self.queued.len() - 1 } else { 0 }
    }

    /// The queued item to attempt next: fresh ones oldest first, then those
    /// whose back-off has passed. O(log n).
    pub fn next_queued(&self, now_ns: u64) -> Option<WorkItem> {
        let (due, id) = self.queued.keys().next()?;
        if due > now_ns {
            return None;
        }
        self.item(id)
    }

    /// The items of `lane` whose key is at most `until` (all with None), in order.
    fn lane_items(&self, lane: Lane, until: Option<u64>) -> Vec<WorkItem> {
        let map = match lane {
            Lane::Queued => &self.queued,
            Lane::InFlight => &self.in_flight,
            Lane::Answered => &self.answered,
        };
        let ids: Vec<u64> = match until {
            Some(t) => map.keys_range(..=(t, u64::MAX)).map(|(_, id)| id).collect(),
            None => map.keys().map(|(_, id)| id).collect(),
        };
        ids.into_iter().filter_map(|id| self.item(id)).collect()
    }

    /// Answered items due for submission (or delivery), the longest due first.
    pub fn answered_due(&self, now_ns: u64) -> Vec<WorkItem> {
        self.lane_items(Lane::Answered, Some(now_ns))
    }

    /// ShareAgent: items forwarded to the ShareService longer than `timeout_ns` ago.
    pub fn forwarded_overdue(&self, now_ns: u64, timeout_ns: u64) -> Vec<WorkItem> {
        let Some(cutoff) = now_ns.checked_sub(timeout_ns) else { return Vec::new() };
        let overdue = self.lane_items(Lane::InFlight, Some(cutoff));
        overdue.into_iter().filter(|i| matches!(i.state, WorkState::InFlight { llm: None, .. })).collect()
    }

    /// Items in flight with one of our LLMs for `timeout_ns` or more, or
    /// all of them (`all_local`: after an upgrade none can be running).
    pub fn stale_generations(&self, now_ns: u64, timeout_ns: u64, all_local: bool) -> Vec<WorkItem> {
        let until = if all_local {
            None
        } else {
            match now_ns.checked_sub(timeout_ns) {
                Some(cutoff) => Some(cutoff),
                None => return Vec::new(),
            }
        };
        let stale = self.lane_items(Lane::InFlight, until);
        stale.into_iter().filter(|i| matches!(i.state, WorkState::InFlight { llm: Some(_), .. })).collect()
    }

    /// Unfinished items whose state passes `pred` (decodes every item: for tests).
    #[cfg(test)]
    pub fn count_in(&self, pred: impl Fn(&WorkState) -> bool) -> u64 {
        self.queue.values().filter(|s| pred(&s.0.state)).count() as u64
    }

    /// Unfinished work, oldest first (only the page's items are decoded).
    pub fn queue_page(&self, page: PageRequest) -> Page<WorkItem> {
        let items = self.queue.keys().skip(usize::try_from(page.offset).unwrap_or(usize::MAX));
        Page::from_offset(items.filter_map(|id| self.item(id)), self.queue.len(), page)
    }

    /// Finished work, newest first.
    pub fn history_page(&self, page: PageRequest) -> Page<WorkItem> {
        Page::collect(self.history.iter().rev().map(|e| e.value().0), self.history.len(), page)
    }

    // ------------------------------------------------------------------
    // Changing
    // ------------------------------------------------------------------

    /// Writes unfinished `item`, which was `before` (None: new to the queue),
    /// and moves it to its lane.
    fn put(&mut self, before: Option<&WorkItem>, item: WorkItem) {
        self.leave_lane(before);
        if before.is_none() {
            self.count_agent(agent_of(&item), 1);
        }
        if let Some((lane, key)) = lane_of(&item) {
            self.lane(lane).insert(key, ());
        }
        self.index.insert(Key::of(&item), ());
        self.queue.insert(item.id, Stored(item));
    }

    fn leave_lane(&mut self, before: Option<&WorkItem>) {
        if let Some((lane, key)) = before.and_then(lane_of) {
            self.lane(lane).remove(&key);
        }
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
        self.put(None, item.clone());
        Ok(item)
    }

    /// Moves item `id` to `state`; a finished state moves it to the history
    /// (kept to `history_size` items).
    pub fn set_state(&mut self, id: u64, state: WorkState, now_ns: u64, history_size: u32) -> Option<WorkItem> {
        let before = self.item(id)?;
        let mut item = before.clone();
        item.state = state;
        item.updated_at_ns = now_ns;
        if item.state.is_finished() {
            self.finish(&before, item.clone(), history_size);
        } else {
            self.put(Some(&before), item.clone());
        }
        Some(item)
    }

    /// Item `id` has its answer: due for submission (or delivery) now.
    pub fn set_answer(&mut self, id: u64, answer: Answer, now_ns: u64) -> Option<WorkItem> {
        let before = self.item(id)?;
        let mut item = before.clone();
        answered(&mut item, answer, now_ns);
        self.put(Some(&before), item.clone());
        Some(item)
    }

    /// A failed item whose answer came after all goes back to the queue,
    /// answered, to be submitted.
    pub fn revive_answered(&mut self, id: u64, answer: Answer, now_ns: u64) -> Option<WorkItem> {
        let mut item = self.history.remove(&id)?.0;
        answered(&mut item, answer, now_ns);
        self.put(None, item.clone());
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
        let before = self.item(id)?;
        let mut item = before.clone();
        match fault {
            Fault::Refusal => item.attempts += 1,
            Fault::Outage => item.outages = item.outages.saturating_add(1),
            Fault::Busy => {}
        }
        item.last_error = Some(error.clone());
        item.updated_at_ns = now_ns;
        if fault == Fault::Refusal && item.attempts >= settings.max_attempts {
            canister_common::error!("item {id} failed after {} attempts: {error}", item.attempts);
            item.state = WorkState::Failed { reason: format!("after {} attempts: {error}", item.attempts) };
            self.finish(&before, item.clone(), settings.history_size);
        } else {
            item.state = retry_state;
            let tries = item.attempts.saturating_add(item.outages);
            let delay =
                if fault == Fault::Busy { settings.retry_base_seconds } else { settings.retry_delay_seconds(tries) };
            item.next_attempt_ns = now_ns.saturating_add(delay.saturating_mul(NANOS));
            canister_common::warn!("item {id}: try {tries} failed ({error}); retry in {delay} s");
            self.put(Some(&before), item.clone());
        }
        Some(item)
    }

    /// Moves a finished item from the queue to the bounded history; items
    /// trimmed off the history leave the index (they are forgotten).
    fn finish(&mut self, before: &WorkItem, item: WorkItem, history_size: u32) {
        self.leave_lane(Some(before));
        self.count_agent(agent_of(&item), -1);
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
        let m = |n| mm.get(MemoryId::new(n));
        WorkQueue::init(QueueMemories {
            queue: m(0),
            history: m(1),
            index: m(2),
            queued: m(3),
            in_flight: m(4),
            answered: m(5),
            by_agent: m(6),
        })
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

    fn answer() -> Answer {
        Answer {
            text: "late".into(),
            evidence: mainer_types::game::ClaimedEvidence {
                prompt_sha256: String::new(),
                llm_canister: Principal::anonymous(),
                model_sha256: None,
                llm_calls: 1,
                prompt_tokens: None,
                generated_tokens: None,
                cycles_spent: None,
            },
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
        q.set_state(pulled.id, WorkState::Failed { reason: "x".into() }, 0, 10);
        let revived = q.revive_answered(pulled.id, answer(), 5).unwrap();
        assert_eq!(revived.state, WorkState::Answered);
        assert_eq!(q.find(7, WorkOrigin::Pulled).map(|i| i.id), Some(pulled.id));
        assert!(q.find_finished(7, WorkOrigin::Pulled).is_none());
    }

    /// The lanes hold exactly the unfinished items, each in the lane of its state.
    fn assert_lanes_match(q: &WorkQueue) {
        let c = q.counts();
        assert_eq!(c.queued, q.count_in(|s| *s == WorkState::Queued));
        assert_eq!(c.in_flight, q.count_in(|s| matches!(s, WorkState::InFlight { .. })));
        assert_eq!(c.answered, q.count_in(|s| *s == WorkState::Answered));
        assert_eq!(c.queued + c.in_flight + c.answered, q.len());
    }

    #[test]
    fn lanes_follow_every_change_and_count_without_decoding() {
        let settings = ControllerSettings { max_attempts: 2, retry_base_seconds: 10, ..Default::default() };
        let mut q = queue();
        let agent = WorkOrigin::Agent(Principal::from_slice(&[7; 29]));
        let ids: Vec<u64> =
            (0..6).map(|c| add(&mut q, c, if c < 3 { WorkOrigin::Pulled } else { agent }, 10).unwrap().id).collect();
        assert_lanes_match(&q);
        assert_eq!(q.items_of_agent(Principal::from_slice(&[7; 29])), 3);
        let llm = Some(Principal::from_slice(&[1; 10]));
        q.set_state(ids[0], WorkState::InFlight { since_ns: 5, llm }, 5, 10);
        q.set_state(ids[1], WorkState::InFlight { since_ns: 0, llm: None }, 0, 10);
        q.set_answer(ids[2], answer(), 6);
        q.attempt_failed(ids[3], "busy".into(), WorkState::Queued, 0, Fault::Busy, &settings);
        q.attempt_failed(ids[4], "no".into(), WorkState::Queued, 0, Fault::Refusal, &settings);
        assert_lanes_match(&q);
        assert_eq!(q.counts(), QueueCounts { queued: 3, in_flight: 2, answered: 1 });
        // Fresh items first, then those whose back-off is over; none before its time.
        assert_eq!(q.next_queued(0).map(|i| i.id), Some(ids[5]));
        q.set_state(ids[5], WorkState::Submitted { at_ns: 1 }, 1, 10);
        assert_eq!(q.items_of_agent(Principal::from_slice(&[7; 29])), 2, "a finished item leaves its agent's count");
        assert!(q.next_queued(9 * NANOS).is_none());
        assert_eq!(q.next_queued(10 * NANOS).map(|i| i.id), Some(ids[3]));
        assert_eq!(q.queued_ahead(ids[3]), 1, "an upper bound: the other queued item");
        assert_eq!(q.answered_due(6).iter().map(|i| i.id).collect::<Vec<_>>(), [ids[2]]);
        assert_eq!(q.stale_generations(65, 60, false).iter().map(|i| i.id).collect::<Vec<_>>(), [ids[0]]);
        assert!(q.stale_generations(65, 60, false).iter().all(|i| i.id != ids[1]), "a forward is not a generation");
        assert_eq!(q.forwarded_overdue(60, 60).iter().map(|i| i.id).collect::<Vec<_>>(), [ids[1]]);
        q.attempt_failed(ids[4], "no".into(), WorkState::Queued, 20 * NANOS, Fault::Refusal, &settings);
        assert!(q.item(ids[4]).is_none(), "failed for good");
        assert_lanes_match(&q);
        // An older release's data: the lanes and counts are rebuilt from the items.
        q.queued.clear_new();
        q.by_agent.clear_new();
        q.reindex();
        assert_lanes_match(&q);
        assert_eq!(q.items_of_agent(Principal::from_slice(&[7; 29])), 1);
        assert_eq!(q.next_queued(10 * NANOS).map(|i| i.id), Some(ids[3]));
    }

    #[test]
    fn busy_retries_wait_the_base_delay_without_spending_or_growing() {
        let settings = ControllerSettings { retry_base_seconds: 10, retry_max_seconds: 600, ..Default::default() };
        let mut q = queue();
        let item = add(&mut q, 1, WorkOrigin::Pulled, 10).unwrap();
        for n in 0..5 {
            let at = n * 100 * NANOS;
            let i = q.attempt_failed(item.id, "full".into(), WorkState::Queued, at, Fault::Busy, &settings).unwrap();
            assert_eq!((i.attempts, i.outages, i.next_attempt_ns), (0, 0, at + 10 * NANOS));
        }
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
