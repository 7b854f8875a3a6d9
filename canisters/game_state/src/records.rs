//! What is stored, and how. Records read or rewritten on every hand-out and
//! submission (a challenge's counters, a mAIner's registration, the
//! submission index) use a compact fixed layout: decoding a Candid record
//! costs some 100,000 instructions and more, these cost a few hundred, and
//! fixed-size values keep B-tree nodes within one page. Records written
//! once and read by queries (challenge texts, submission bodies, the config)
//! are Candid, which can gain `opt` fields later.

use std::borrow::Cow;

use candid::{CandidType, Principal};
use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;
use mainer_types::MainerRole;
use mainer_types::game::{ChallengeStatus, CloseReason, GenerationSettings, MainerInfo, SubmissionStatus};
use serde::Deserialize;

/// Any Candid type as a stable value.
pub use mainer_types::stable::Stored as Candid;

/// The part of a challenge that never changes once added.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct ChallengeBody {
    pub question: String,
    pub settings: GenerationSettings,
    pub created_at_ns: u64,
}

/// The part of a challenge that hand-outs and submissions change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeMeta {
    pub status: ChallengeStatus,
    pub submissions: u64,
    /// Outstanding (unexpired, unanswered) hand-outs.
    pub handed_out: u64,
    pub max_submissions: Option<u64>,
    pub deadline_ns: Option<u64>,
}

impl ChallengeMeta {
    pub fn is_open(&self) -> bool {
        self.status == ChallengeStatus::Open
    }

    /// What hand-outs are spread by: answers given plus answers on their way.
    pub fn load(&self) -> u64 {
        self.submissions + self.handed_out
    }

    /// Whether another mAIner may be handed this challenge: its quota (if
    /// any) is not yet taken by submissions and outstanding hand-outs.
    pub fn has_room(&self) -> bool {
        self.max_submissions.is_none_or(|m| self.load() < m)
    }

    /// The deadline, if it has passed while the challenge is still open.
    pub fn overdue(&self, now_ns: u64) -> Option<u64> {
        self.deadline_ns.filter(|d| self.is_open() && *d <= now_ns)
    }

    /// The status as it is at `now_ns`, for queries (which cannot close it).
    pub fn status_at(&self, now_ns: u64) -> ChallengeStatus {
        match self.overdue(now_ns) {
            Some(deadline) => ChallengeStatus::Closed { reason: CloseReason::DeadlinePassed, at_ns: deadline },
            None => self.status.clone(),
        }
    }
}

/// A mAIner's registration and statistics; the key is the mAIner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MainerRecord {
    pub role: MainerRole,
    pub owner: Principal,
    pub registered_at_ns: u64,
    pub submissions: u64,
    pub last_submission_ns: Option<u64>,
}

impl MainerRecord {
    pub fn info(self, mainer: Principal) -> MainerInfo {
        MainerInfo {
            mainer,
            role: self.role,
            owner: self.owner,
            registered_at_ns: self.registered_at_ns,
            submissions: self.submissions,
            last_submission_ns: self.last_submission_ns,
            module_hash: None,
            cycles: None,
        }
    }
}

/// A mAIner's module hash as `canister_info` gave it (see `modules.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleCheck {
    /// None: no code installed.
    pub module_hash: Option<[u8; 32]>,
    pub checked_at_ns: u64,
}

/// The cycles a mAIner reported with its latest submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CyclesTally {
    pub spent: u128,
    pub reported_at_ns: u64,
}

/// Where a submission's body is in the submission log, and its status
/// (the one part of a submission that may change after it is stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmissionRef {
    pub seq: u64,
    pub status: SubmissionStatus,
}

/// First byte of every fixed-layout record, so a later release can tell
/// its own layout from this one.
pub(crate) const LAYOUT_V1: u8 = 1;

pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn new(size: u32) -> Writer {
        let mut w = Writer(Vec::with_capacity(size as usize));
        w.u8(LAYOUT_V1);
        w
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn opt_u64(&mut self, v: Option<u64>) {
        self.u8(v.is_some() as u8);
        self.u64(v.unwrap_or(0));
    }

    fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn opt_hash(&mut self, v: Option<[u8; 32]>) {
        self.u8(v.is_some() as u8);
        self.0.extend_from_slice(&v.unwrap_or([0; 32]));
    }

    /// Length byte, then the bytes padded to the longest principal.
    pub(crate) fn principal(&mut self, p: &Principal) {
        let bytes = p.as_slice();
        self.u8(bytes.len() as u8);
        self.0.extend_from_slice(bytes);
        self.0.resize(self.0.len() + Principal::MAX_LENGTH_IN_BYTES - bytes.len(), 0);
    }
}

pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &str) -> Reader<'a> {
        let mut r = Reader(bytes);
        let layout = r.u8();
        assert_eq!(layout, LAYOUT_V1, "unknown layout of a stored {what}");
        r
    }

    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    pub(crate) fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    pub(crate) fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().expect("8 bytes"))
    }

    pub(crate) fn opt_u64(&mut self) -> Option<u64> {
        let present = self.u8() != 0;
        let v = self.u64();
        present.then_some(v)
    }

    fn u128(&mut self) -> u128 {
        u128::from_le_bytes(self.take(16).try_into().expect("16 bytes"))
    }

    fn opt_hash(&mut self) -> Option<[u8; 32]> {
        let present = self.u8() != 0;
        let v: [u8; 32] = self.take(32).try_into().expect("32 bytes");
        present.then_some(v)
    }

    pub(crate) fn principal(&mut self) -> Principal {
        let len = self.u8() as usize;
        let padded = self.take(Principal::MAX_LENGTH_IN_BYTES);
        Principal::from_slice(&padded[..len])
    }
}

const CHALLENGE_META_SIZE: u32 = 1 + 1 + 8 + 8 + 8 + 9 + 9;

impl Storable for ChallengeMeta {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut w = Writer::new(CHALLENGE_META_SIZE);
        let (tag, at_ns) = match self.status {
            ChallengeStatus::Open => (0, 0),
            ChallengeStatus::Closed { reason: CloseReason::EnoughSubmissions, at_ns } => (1, at_ns),
            ChallengeStatus::Closed { reason: CloseReason::DeadlinePassed, at_ns } => (2, at_ns),
            ChallengeStatus::Closed { reason: CloseReason::ClosedByAdmin, at_ns } => (3, at_ns),
            ChallengeStatus::Closed { reason: CloseReason::EnoughScores, at_ns } => (4, at_ns),
        };
        w.u8(tag);
        w.u64(at_ns);
        w.u64(self.submissions);
        w.u64(self.handed_out);
        w.opt_u64(self.max_submissions);
        w.opt_u64(self.deadline_ns);
        w.0
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "challenge");
        let tag = r.u8();
        let at_ns = r.u64();
        let closed = |reason| ChallengeStatus::Closed { reason, at_ns };
        let status = match tag {
            0 => ChallengeStatus::Open,
            1 => closed(CloseReason::EnoughSubmissions),
            2 => closed(CloseReason::DeadlinePassed),
            3 => closed(CloseReason::ClosedByAdmin),
            4 => closed(CloseReason::EnoughScores),
            other => panic!("unknown challenge status {other}"),
        };
        ChallengeMeta {
            status,
            submissions: r.u64(),
            handed_out: r.u64(),
            max_submissions: r.opt_u64(),
            deadline_ns: r.opt_u64(),
        }
    }

    const BOUND: Bound = Bound::Bounded { max_size: CHALLENGE_META_SIZE, is_fixed_size: true };
}

const MAINER_RECORD_SIZE: u32 = 1 + 1 + 1 + Principal::MAX_LENGTH_IN_BYTES as u32 + 8 + 8 + 9;

impl Storable for MainerRecord {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut w = Writer::new(MAINER_RECORD_SIZE);
        w.u8(match self.role {
            MainerRole::Own => 0,
            MainerRole::ShareService => 1,
            MainerRole::ShareAgent => 2,
            MainerRole::Challenger => 3,
            MainerRole::Judge => 4,
        });
        w.principal(&self.owner);
        w.u64(self.registered_at_ns);
        w.u64(self.submissions);
        w.opt_u64(self.last_submission_ns);
        w.0
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "mAIner");
        let role = match r.u8() {
            0 => MainerRole::Own,
            1 => MainerRole::ShareService,
            2 => MainerRole::ShareAgent,
            3 => MainerRole::Challenger,
            4 => MainerRole::Judge,
            other => panic!("unknown mAIner role {other}"),
        };
        MainerRecord {
            role,
            owner: r.principal(),
            registered_at_ns: r.u64(),
            submissions: r.u64(),
            last_submission_ns: r.opt_u64(),
        }
    }

    const BOUND: Bound = Bound::Bounded { max_size: MAINER_RECORD_SIZE, is_fixed_size: true };
}

const MODULE_CHECK_SIZE: u32 = 1 + 33 + 8;

impl Storable for ModuleCheck {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut w = Writer::new(MODULE_CHECK_SIZE);
        w.opt_hash(self.module_hash);
        w.u64(self.checked_at_ns);
        w.0
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "module check");
        ModuleCheck { module_hash: r.opt_hash(), checked_at_ns: r.u64() }
    }

    const BOUND: Bound = Bound::Bounded { max_size: MODULE_CHECK_SIZE, is_fixed_size: true };
}

const CYCLES_TALLY_SIZE: u32 = 1 + 16 + 8;

impl Storable for CyclesTally {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut w = Writer::new(CYCLES_TALLY_SIZE);
        w.u128(self.spent);
        w.u64(self.reported_at_ns);
        w.0
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "cycles tally");
        CyclesTally { spent: r.u128(), reported_at_ns: r.u64() }
    }

    const BOUND: Bound = Bound::Bounded { max_size: CYCLES_TALLY_SIZE, is_fixed_size: true };
}

const SUBMISSION_REF_SIZE: u32 = 1 + 8 + 1 + 4;

impl Storable for SubmissionRef {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut w = Writer::new(SUBMISSION_REF_SIZE);
        w.u64(self.seq);
        let (tag, score) = match self.status {
            SubmissionStatus::Submitted => (0, 0),
            SubmissionStatus::Judging => (1, 0),
            SubmissionStatus::Judged { score } => (2, score),
            SubmissionStatus::Unscorable => (3, 0),
        };
        w.u8(tag);
        w.0.extend_from_slice(&score.to_le_bytes());
        w.0
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "submission reference");
        let seq = r.u64();
        let tag = r.u8();
        let score = u32::from_le_bytes(r.take(4).try_into().expect("4 bytes"));
        let status = match tag {
            0 => SubmissionStatus::Submitted,
            1 => SubmissionStatus::Judging,
            2 => SubmissionStatus::Judged { score },
            3 => SubmissionStatus::Unscorable,
            other => panic!("unknown submission status {other}"),
        };
        SubmissionRef { seq, status }
    }

    const BOUND: Bound = Bound::Bounded { max_size: SUBMISSION_REF_SIZE, is_fixed_size: true };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Storable + Clone + PartialEq + std::fmt::Debug>(v: T) {
        let bytes = v.to_bytes().into_owned();
        T::check_bounds(&bytes);
        assert_eq!(T::from_bytes(Cow::Owned(bytes)), v);
    }

    #[test]
    fn challenge_meta_round_trips_in_every_status() {
        let base = ChallengeMeta {
            status: ChallengeStatus::Open,
            submissions: 3,
            handed_out: u64::MAX,
            max_submissions: None,
            deadline_ns: Some(0),
        };
        round_trip(base.clone());
        for reason in [
            CloseReason::EnoughSubmissions,
            CloseReason::DeadlinePassed,
            CloseReason::ClosedByAdmin,
            CloseReason::EnoughScores,
        ] {
            round_trip(ChallengeMeta {
                status: ChallengeStatus::Closed { reason, at_ns: 77 },
                max_submissions: Some(9),
                deadline_ns: None,
                ..base.clone()
            });
        }
    }

    #[test]
    fn mainer_records_round_trip_with_principals_of_any_length() {
        for (role, owner) in [
            (MainerRole::Own, Principal::anonymous()),
            (MainerRole::ShareService, Principal::from_slice(&[])),
            (MainerRole::ShareAgent, Principal::self_authenticating([9; 32])),
            (MainerRole::Own, Principal::from_slice(&[0xff; 29])),
        ] {
            round_trip(MainerRecord { role, owner, registered_at_ns: 1, submissions: 2, last_submission_ns: Some(3) });
        }
        round_trip(MainerRecord {
            role: MainerRole::Own,
            owner: Principal::anonymous(),
            registered_at_ns: 0,
            submissions: 0,
            last_submission_ns: None,
        });
    }

    #[test]
    fn module_checks_and_cycles_tallies_round_trip() {
        round_trip(ModuleCheck { module_hash: Some([7; 32]), checked_at_ns: u64::MAX });
        round_trip(ModuleCheck { module_hash: None, checked_at_ns: 0 });
        round_trip(CyclesTally { spent: u128::MAX, reported_at_ns: 3 });
    }

    #[test]
    fn submission_refs_round_trip_in_every_status() {
        for status in [
            SubmissionStatus::Submitted,
            SubmissionStatus::Judging,
            SubmissionStatus::Judged { score: u32::MAX },
            SubmissionStatus::Unscorable,
        ] {
            round_trip(SubmissionRef { seq: 1 << 40, status });
        }
    }

    #[test]
    fn overdue_challenges_show_as_closed_at_their_deadline() {
        let meta = ChallengeMeta {
            status: ChallengeStatus::Open,
            submissions: 0,
            handed_out: 0,
            max_submissions: None,
            deadline_ns: Some(10),
        };
        assert_eq!(meta.status_at(9), ChallengeStatus::Open);
        assert_eq!(meta.status_at(10), ChallengeStatus::Closed { reason: CloseReason::DeadlinePassed, at_ns: 10 });
    }
}
