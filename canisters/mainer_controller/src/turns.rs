//! ShareService: whose turn it is when the queue is full. An agent refused
//! for want of room takes a turn number; as places free up they go to the
//! waiting agents in turn order, and an agent with no turn number is let in
//! only while there is room for every agent waiting and for it. So no agent
//! waits behind others for ever, whatever the timing of their requests
//! (agents started together retry in lock step, and those just served would
//! otherwise take every place that frees).
//!
//! An agent keeps its turn while it asks again within [`HOLD_NS`]; a turn
//! not claimed in that time lapses (the agent was removed, stopped or lost
//! interest), so it holds no place for long. Cost: O(log n) per request,
//! plus O(k) for an agent with a turn when fewer than all waiting agents fit
//! (k: the places free, at most `max_queue`).

use candid::Principal;
use ic_stable_structures::StableBTreeMap;

use crate::memory::Memory;

/// A turn lapses when its agent has not asked again for this long (agents
/// retry at every pull, 60 s by default).
pub const HOLD_NS: u64 = 900 * 1_000_000_000;

pub struct Turns {
    /// Turn number -> (agent, when it last asked).
    waitlist: StableBTreeMap<u64, (Principal, u64), Memory>,
    /// Agent -> its turn number.
    turn_of: StableBTreeMap<Principal, u64, Memory>,
}

impl Turns {
    pub fn init(waitlist: Memory, turn_of: Memory) -> Turns {
        Turns { waitlist: StableBTreeMap::init(waitlist), turn_of: StableBTreeMap::init(turn_of) }
    }

    /// Agents waiting for a place.
    pub fn waiting(&self) -> u64 {
        self.waitlist.len()
    }

    /// Whether `agent` may take one of the `free` places of the queue now.
    /// Refused, it keeps (or takes) its turn.
    pub fn admit(&mut self, agent: Principal, free: u64, now_ns: u64) -> bool {
        self.lapse(now_ns);
        let turn = self.turn_of.get(&agent);
        let waiting = self.waitlist.len();
        let admitted = match turn {
            _ if free == 0 => false,
            None => waiting < free,
            // Everyone waiting fits, or this agent is among the first `free`.
            Some(t) => waiting <= free || self.waitlist.keys().take(free as usize).any(|k| k == t),
        };
        match (admitted, turn) {
            (true, Some(t)) => {
                self.waitlist.remove(&t);
                self.turn_of.remove(&agent);
            }
            (true, None) => {}
            (false, Some(t)) => {
                self.waitlist.insert(t, (agent, now_ns));
            }
            (false, None) => {
                let t = self.waitlist.last_key_value().map_or(0, |(k, _)| k + 1);
                self.waitlist.insert(t, (agent, now_ns));
                self.turn_of.insert(agent, t);
            }
        }
        admitted
    }

    /// An agent no longer served gives up its turn.
    pub fn forget(&mut self, agent: Principal) {
        if let Some(t) = self.turn_of.remove(&agent) {
            self.waitlist.remove(&t);
        }
    }

    /// Turns at the head of the list whose agents stopped asking lapse (one
    /// further back lapses when it reaches the head).
    fn lapse(&mut self, now_ns: u64) {
        while let Some((t, (agent, asked_ns))) = self.waitlist.first_key_value() {
            if asked_ns.saturating_add(HOLD_NS) > now_ns {
                break;
            }
            self.waitlist.remove(&t);
            self.turn_of.remove(&agent);
        }
    }
}

#[cfg(test)]
mod tests {
    use ic_stable_structures::DefaultMemoryImpl;
    use ic_stable_structures::memory_manager::{MemoryId, MemoryManager};

    use super::*;

    fn turns() -> Turns {
        let mm = MemoryManager::init(DefaultMemoryImpl::default());
        Turns::init(mm.get(MemoryId::new(0)), mm.get(MemoryId::new(1)))
    }

    fn agent(n: u8) -> Principal {
        Principal::from_slice(&[n; 10])
    }

    #[test]
    fn refused_agents_are_let_in_in_turn_as_places_free_up() {
        let mut t = turns();
        // A full queue: 1, 2, 3 are refused in that order and wait.
        for n in 1..=3 {
            assert!(!t.admit(agent(n), 0, 0));
        }
        assert_eq!(t.waiting(), 3);
        // One place frees: newcomer 9 and agents 2 and 3 must wait for 1.
        assert!(!t.admit(agent(9), 1, 1), "a newcomer waits behind those waiting");
        assert!(!t.admit(agent(3), 1, 1));
        assert!(!t.admit(agent(2), 1, 1));
        assert!(t.admit(agent(1), 1, 1), "the first turn takes the place");
        // Two places: 2 and 3, not 9, who came later.
        assert!(!t.admit(agent(9), 2, 2));
        assert!(t.admit(agent(3), 2, 2), "among the first two turns");
        assert!(t.admit(agent(2), 1, 2));
        assert!(t.admit(agent(9), 1, 2), "its turn came");
        assert_eq!(t.waiting(), 0);
        assert!(t.admit(agent(4), 1, 3), "nobody waits: room is room");
    }

    #[test]
    fn an_agent_keeps_one_turn_and_a_turn_not_claimed_lapses() {
        let mut t = turns();
        assert!(!t.admit(agent(1), 0, 0));
        assert!(!t.admit(agent(1), 0, 10), "asking again keeps the same turn");
        assert!(!t.admit(agent(2), 0, 20));
        assert_eq!(t.waiting(), 2);
        // Agent 1 asked last at 10 and stops asking; agent 2 keeps asking.
        assert!(!t.admit(agent(2), 0, HOLD_NS));
        assert!(t.admit(agent(2), 1, HOLD_NS + 10), "agent 1's turn lapsed, 2 is first");
        assert_eq!(t.waiting(), 0);
        assert!(!t.admit(agent(3), 0, 0));
        t.forget(agent(3));
        assert_eq!(t.waiting(), 0, "a removed agent waits no more");
    }
}
