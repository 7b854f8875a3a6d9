//! The live conversations, one per caller and prompt-cache name, in the heap
//! with bounded memory: at most `max_conversations` of them, idle ones are
//! dropped after `max_idle_ns`, and while their KV caches together take more
//! than `kv_budget_bytes` the least recently used go first. The conversation
//! being served is never dropped to make room.

use std::collections::BTreeMap;

use candid::Principal;

use crate::chat::Conversation;

pub type Key = (Principal, String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConversationLimits {
    pub max_conversations: usize,
    pub max_idle_ns: u64,
    pub kv_budget_bytes: u64,
}

impl Default for ConversationLimits {
    fn default() -> Self {
        ConversationLimits { max_conversations: 32, max_idle_ns: 3_600 * 1_000_000_000, kv_budget_bytes: 1 << 30 }
    }
}

#[derive(Default)]
pub struct Conversations {
    map: BTreeMap<Key, Conversation>,
    pub limits: ConversationLimits,
}

impl Conversations {
    pub fn new(limits: ConversationLimits) -> Self {
        Conversations { map: BTreeMap::new(), limits }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.map.contains_key(key)
    }

    pub fn get_mut(&mut self, key: &Key) -> Option<&mut Conversation> {
        self.map.get_mut(key)
    }

    /// The conversation of `key`, made by `make` if there is none.
    pub fn get_or_try_insert<E>(
        &mut self,
        key: Key,
        make: impl FnOnce() -> Result<Conversation, E>,
    ) -> Result<&mut Conversation, E> {
        match self.map.entry(key) {
            std::collections::btree_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            std::collections::btree_map::Entry::Vacant(entry) => Ok(entry.insert(make()?)),
        }
    }

    pub fn insert(&mut self, key: Key, conversation: Conversation) {
        self.map.insert(key, conversation);
    }

    pub fn remove(&mut self, key: &Key) -> bool {
        self.map.remove(key).is_some()
    }

    /// KV-cache positions held by all conversations.
    pub fn positions(&self) -> u64 {
        self.map.values().map(|c| c.positions() as u64).sum()
    }

    /// Makes room before `keep` is served (and created if new): drops idle
    /// conversations, then the least recently used while there are too many
    /// or their caches take too much memory. Returns how many were dropped.
    pub fn make_room(&mut self, keep: &Key, now_ns: u64, kv_bytes_per_position: u64) -> usize {
        let before = self.map.len();
        let max_idle = self.limits.max_idle_ns;
        self.map.retain(|key, c| key == keep || now_ns.saturating_sub(c.last_used_ns) <= max_idle);
        loop {
            let count = self.map.len() + usize::from(!self.map.contains_key(keep));
            let bytes = self.positions() * kv_bytes_per_position;
            if count <= self.limits.max_conversations && bytes <= self.limits.kv_budget_bytes {
                break;
            }
            let oldest = self
                .map
                .iter()
                .filter(|(key, _)| *key != keep)
                .min_by_key(|(_, c)| c.last_used_ns)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => {
                    self.map.remove(&key);
                }
                None => break,
            }
        }
        before.saturating_sub(self.map.len())
    }
}
