//! The game's hot records in a compact fixed layout (see `records.rs` for
//! why): the judging queue, leases, scores, tallies, awards and totals. Each
//! starts with the layout byte, so a later release can tell its own layout
//! from this one. Records written once and read by queries (topics,
//! judgements, results, payouts) are Candid and live in `play_state.rs`.

use std::borrow::Cow;

use candid::Principal;
use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;
use mainer_types::game::ChallengeId;
use mainer_types::game_play::GameAgentKind;

use crate::records::{Reader, Writer};

const P: u32 = Principal::MAX_LENGTH_IN_BYTES as u32 + 1;

fn put_u32(w: &mut Writer, v: u32) {
    w.0.extend_from_slice(&v.to_le_bytes());
}

fn put_u128(w: &mut Writer, v: u128) {
    w.0.extend_from_slice(&v.to_le_bytes());
}

fn get_u32(r: &mut Reader) -> u32 {
    u32::from_le_bytes(r.take(4).try_into().expect("4 bytes"))
}

fn get_u128(r: &mut Reader) -> u128 {
    u128::from_le_bytes(r.take(16).try_into().expect("16 bytes"))
}

/// Implements `Storable` for a fixed-size record from its writer and reader.
macro_rules! fixed_storable {
    ($t:ty, $size:expr, $what:literal, |$s:ident, $w:ident| $write:block, |$r:ident| $read:block) => {
        impl Storable for $t {
            fn to_bytes(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.clone().into_bytes())
            }

            fn into_bytes(self) -> Vec<u8> {
                let $s = self;
                let mut $w = Writer::new($size);
                $write
                debug_assert_eq!($w.0.len(), $size as usize);
                $w.0
            }

            fn from_bytes(bytes: Cow<[u8]>) -> Self {
                let mut $r = Reader::new(&bytes, $what);
                $read
            }

            const BOUND: Bound = Bound::Bounded { max_size: $size, is_fixed_size: true };
        }
    };
}

/// A registered challenger or judge; the key is its principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRecord {
    pub kind: GameAgentKind,
    pub registered_at_ns: u64,
    pub done: u64,
}

fixed_storable!(
    AgentRecord,
    1 + 1 + 8 + 8,
    "game agent",
    |s, w| {
        w.u8(match s.kind {
            GameAgentKind::Challenger => 0,
            GameAgentKind::Judge => 1,
        });
        w.u64(s.registered_at_ns);
        w.u64(s.done);
    },
    |r| {
        let kind = match r.u8() {
            0 => GameAgentKind::Challenger,
            1 => GameAgentKind::Judge,
            other => panic!("unknown game agent kind {other}"),
        };
        AgentRecord { kind, registered_at_ns: r.u64(), done: r.u64() }
    }
);

/// The submission a queue entry or lease is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToJudge {
    /// Its place in the submission log: the queue's order (first come, first judged).
    pub seq: u64,
    pub challenge_id: ChallengeId,
    pub mainer: Principal,
    pub owner: Principal,
    pub submitted_at_ns: u64,
    /// Leases it has taken so far.
    pub attempts: u32,
}

const TO_JUDGE: u32 = 8 + 8 + P + P + 8 + 4;

fn put_to_judge(w: &mut Writer, t: &ToJudge) {
    w.u64(t.seq);
    w.u64(t.challenge_id);
    w.principal(&t.mainer);
    w.principal(&t.owner);
    w.u64(t.submitted_at_ns);
    put_u32(w, t.attempts);
}

fn get_to_judge(r: &mut Reader) -> ToJudge {
    ToJudge {
        seq: r.u64(),
        challenge_id: r.u64(),
        mainer: r.principal(),
        owner: r.principal(),
        submitted_at_ns: r.u64(),
        attempts: get_u32(r),
    }
}

fixed_storable!(
    ToJudge,
    1 + TO_JUDGE,
    "judging queue entry",
    |s, w| {
        put_to_judge(&mut w, &s);
    },
    |r| { get_to_judge(&mut r) }
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    Live,
    /// Its judge reported (a score, or unscorable).
    Done,
    /// It timed out; the submission went back to the queue (or was recorded unscorable).
    Expired,
}

/// A submission leased to a judge; `item.attempts` counts this lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub item: ToJudge,
    pub judge: Principal,
    pub expires_ns: u64,
    pub state: LeaseState,
}

fixed_storable!(
    LeaseRecord,
    1 + TO_JUDGE + P + 8 + 1,
    "lease",
    |s, w| {
        put_to_judge(&mut w, &s.item);
        w.principal(&s.judge);
        w.u64(s.expires_ns);
        w.u8(match s.state {
            LeaseState::Live => 0,
            LeaseState::Done => 1,
            LeaseState::Expired => 2,
        });
    },
    |r| {
        let item = get_to_judge(&mut r);
        let judge = r.principal();
        let expires_ns = r.u64();
        let state = match r.u8() {
            0 => LeaseState::Live,
            1 => LeaseState::Done,
            2 => LeaseState::Expired,
            other => panic!("unknown lease state {other}"),
        };
        LeaseRecord { item, judge, expires_ns, state }
    }
);

/// A challenge's judging progress; the key is the challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub scored: u64,
    pub unscorable: u64,
    pub scored_to_close: u64,
    pub finalized: bool,
}

impl Tally {
    pub fn judged(&self) -> u64 {
        self.scored + self.unscorable
    }
}

fixed_storable!(
    Tally,
    1 + 8 + 8 + 8 + 1,
    "tally",
    |s, w| {
        w.u64(s.scored);
        w.u64(s.unscorable);
        w.u64(s.scored_to_close);
        w.u8(s.finalized as u8);
    },
    |r| { Tally { scored: r.u64(), unscorable: r.u64(), scored_to_close: r.u64(), finalized: r.u8() != 0 } }
);

/// A scored answer, what ranking needs; the key is (challenge, mAIner).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreEntry {
    pub seq: u64,
    pub score: u32,
    pub owner: Principal,
    pub submitted_at_ns: u64,
}

fixed_storable!(
    ScoreEntry,
    1 + 8 + 4 + P + 8,
    "score",
    |s, w| {
        w.u64(s.seq);
        put_u32(&mut w, s.score);
        w.principal(&s.owner);
        w.u64(s.submitted_at_ns);
    },
    |r| { ScoreEntry { seq: r.u64(), score: get_u32(&mut r), owner: r.principal(), submitted_at_ns: r.u64() } }
);

/// A ranked answer of a finalized challenge; the key is (challenge, rank).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwardRecord {
    pub mainer: Principal,
    pub owner: Principal,
    pub score: u32,
    pub submitted_at_ns: u64,
    pub reward: u128,
}

fixed_storable!(
    AwardRecord,
    1 + P + P + 4 + 8 + 16,
    "award",
    |s, w| {
        w.principal(&s.mainer);
        w.principal(&s.owner);
        put_u32(&mut w, s.score);
        w.u64(s.submitted_at_ns);
        put_u128(&mut w, s.reward);
    },
    |r| {
        AwardRecord {
            mainer: r.principal(),
            owner: r.principal(),
            score: get_u32(&mut r),
            submitted_at_ns: r.u64(),
            reward: get_u128(&mut r),
        }
    }
);

/// A mAIner's (or an owner's) standing over all finalized challenges.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Totals {
    /// For a mAIner: its owner at its last award; for an owner: the owner.
    pub owner: Option<Principal>,
    pub earned: u128,
    pub wins: u64,
    pub podiums: u64,
    pub answers: u64,
}

fixed_storable!(
    Totals,
    1 + 1 + P + 16 + 8 + 8 + 8,
    "totals",
    |s, w| {
        w.u8(s.owner.is_some() as u8);
        w.principal(&s.owner.unwrap_or(Principal::anonymous()));
        put_u128(&mut w, s.earned);
        w.u64(s.wins);
        w.u64(s.podiums);
        w.u64(s.answers);
    },
    |r| {
        let present = r.u8() != 0;
        let owner = r.principal();
        Totals {
            owner: present.then_some(owner),
            earned: get_u128(&mut r),
            wins: r.u64(),
            podiums: r.u64(),
            answers: r.u64(),
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Storable + Clone + PartialEq + std::fmt::Debug>(v: T) {
        let bytes = v.to_bytes().into_owned();
        T::check_bounds(&bytes);
        assert_eq!(T::from_bytes(Cow::Owned(bytes)), v);
    }

    #[test]
    fn every_record_round_trips() {
        let long = Principal::from_slice(&[0xff; 29]);
        let short = Principal::from_slice(&[]);
        for kind in [GameAgentKind::Challenger, GameAgentKind::Judge] {
            round_trip(AgentRecord { kind, registered_at_ns: 1, done: u64::MAX });
        }
        let item = ToJudge {
            seq: 1 << 40,
            challenge_id: 7,
            mainer: long,
            owner: short,
            submitted_at_ns: 9,
            attempts: u32::MAX,
        };
        round_trip(item.clone());
        for state in [LeaseState::Live, LeaseState::Done, LeaseState::Expired] {
            round_trip(LeaseRecord { item: item.clone(), judge: Principal::anonymous(), expires_ns: 3, state });
        }
        round_trip(Tally { scored: 1, unscorable: 2, scored_to_close: 27, finalized: true });
        round_trip(ScoreEntry { seq: 5, score: 4, owner: long, submitted_at_ns: 6 });
        round_trip(AwardRecord { mainer: short, owner: long, score: 5, submitted_at_ns: 1, reward: u128::MAX });
        round_trip(Totals { owner: Some(long), earned: u128::MAX, wins: 1, podiums: 2, answers: 3 });
        round_trip(Totals::default());
    }
}
