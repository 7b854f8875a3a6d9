//! Fixtures shared by the unit tests.

use candid::Principal;
use mainer_types::MainerRole;
use mainer_types::game::{
    ChallengeId, ClaimedEvidence, GameResult, GenerationSettings, NewChallenge, RegisterMainerRequest, Submission,
    SubmitRequest,
};

use crate::access::Caller;
use crate::state::{Config, DEFAULT_MAX_ANSWER_BYTES, State};

pub const ADMIN: Principal = Principal::from_slice(&[1; 29]);
pub const REGISTRAR: Principal = Principal::from_slice(&[2; 29]);

/// A distinct principal per `n`.
pub fn p(n: u8) -> Principal {
    Principal::from_slice(&[n, n, 0xee])
}

pub fn admin() -> Caller {
    Caller::user(ADMIN)
}

pub fn owner_of(mainer: Principal) -> Principal {
    Principal::from_slice(&[mainer.as_slice()[0], 0x0f])
}

pub fn state() -> State {
    State::for_tests(Config {
        admins: vec![ADMIN],
        registrars: vec![REGISTRAR],
        max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
    })
}

pub fn question(q: &str) -> NewChallenge {
    NewChallenge {
        question: q.into(),
        settings: GenerationSettings::default(),
        max_submissions: None,
        deadline_ns: None,
    }
}

pub fn evidence() -> ClaimedEvidence {
    ClaimedEvidence {
        prompt_sha256: "0123456789abcdef".repeat(4),
        llm_canister: Principal::from_slice(&[7; 10]),
        model_sha256: None,
        llm_calls: 3,
        prompt_tokens: Some(20),
        generated_tokens: Some(12),
        cycles_spent: None,
    }
}

pub fn register_mainer(s: &mut State, mainer: Principal) {
    let req = RegisterMainerRequest { mainer, role: MainerRole::Own, owner: owner_of(mainer) };
    crate::mainers::register(s, &admin(), req, 1).unwrap();
}

pub fn submit_answer(
    s: &mut State,
    mainer: Principal,
    challenge_id: ChallengeId,
    now_ns: u64,
) -> GameResult<Submission> {
    let req = SubmitRequest { challenge_id, answer: format!("answer of {mainer}"), evidence: evidence() };
    crate::submissions::submit(s, &Caller::user(mainer), req, now_ns)
}

pub fn topic(text: &str, weight: u32) -> mainer_types::game_play::NewTopic {
    mainer_types::game_play::NewTopic {
        text: text.into(),
        weight,
        settings: GenerationSettings::default(),
        max_submissions: None,
        scored_to_close: None,
        open_seconds: None,
    }
}

pub fn llm_evidence() -> mainer_types::game_play::LlmEvidence {
    mainer_types::game_play::LlmEvidence {
        prompt_sha256: "ab".repeat(32),
        llm_canister: Principal::from_slice(&[8; 10]),
        model_sha256: Some("cd".repeat(32)),
        llm_calls: 2,
        prompt_tokens: Some(40),
        generated_tokens: Some(3),
    }
}

pub fn generated(topic_id: u64, question: &str) -> mainer_types::game_play::GeneratedChallenge {
    mainer_types::game_play::GeneratedChallenge { topic_id, question: question.into(), evidence: llm_evidence() }
}

pub fn make_challenger(s: &mut State, who: Principal) {
    crate::agents::register(s, &admin(), who, mainer_types::game_play::GameAgentKind::Challenger, 1).unwrap();
}

pub fn make_judge(s: &mut State, who: Principal) {
    crate::agents::register(s, &admin(), who, mainer_types::game_play::GameAgentKind::Judge, 1).unwrap();
}

pub fn set_settings(s: &mut State, settings: mainer_types::game_play::GameSettings) {
    crate::rules::set(s, &admin(), settings).unwrap();
}

/// Runs a future that never waits on anything outside the test's fakes.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
