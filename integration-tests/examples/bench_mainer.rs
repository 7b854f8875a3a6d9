//! Benchmarks of the game state and the mAIner controller on the simulator:
//! - controller instructions per answered challenge (its own side only),
//! - controller instructions per pull with 10 and 1,000 finished items kept
//!   (whether a challenge is known is a lookup, not a scan of the history),
//! - the bytes a ShareAgent sends its ShareService per challenge,
//! - game-state instructions per submission with 1,000 and 100,000 stored.
//!
//! Run with `scripts/bench.sh`; prints a Markdown report.

use candid::{Encode, Principal};
use integration_tests::deploy::*;
use integration_tests::{SimEnv, TestEnv, TestEnvExt};
use mainer_types::MainerRole;
use mainer_types::calls::{controller as controller_calls, game_state as game_calls};
use mainer_types::controller::{ControllerSettings, Counters, ServiceRequest, StepReport};
use mainer_types::game::{Challenge, ClaimedEvidence, GameResult, RegisterMainerRequest, Submission, SubmitRequest};

fn controller_per_answer() -> (u64, u64, u64, u64) {
    let env = SimEnv::new();
    let game = deploy_game_state(&env);
    let controller = deploy_controller(&env, MainerRole::Own, game, None);
    let llm = deploy_test_llm(&env, 4);
    add_llm(&env, controller, llm);
    let answers = 10u64;
    for i in 0..answers {
        add_challenge(&env, game, &format!("Benchmark question number {i} about a small cat"), 16);
    }
    let start = env.simulator().unwrap().execution_totals(controller).0;
    let llm_start = env.simulator().unwrap().execution_totals(llm).0;
    let mut seconds = 0;
    loop {
        let c: Counters = env.call(admin(), controller, &controller_calls::COUNTERS, ()).unwrap().unwrap();
        if c.submissions == answers {
            let total = env.simulator().unwrap().execution_totals(controller).0 - start;
            let llm_total = env.simulator().unwrap().execution_totals(llm).0 - llm_start;
            return (total / answers, c.llm_calls / answers, llm_total / answers, seconds);
        }
        run_for(&env, 1);
        seconds += 1;
        assert!(seconds < 2_000, "the benchmark's answers did not complete");
    }
}

/// A ShareAgent's instructions for one pull of a new challenge, with `kept`
/// finished items in its history (challenges that closed before they were
/// forwarded, so no LLM is needed to fill it).
fn pull_cost_with_history(kept: u64) -> u64 {
    let env = SimEnv::new();
    let game = deploy_game_state(&env);
    let service = deploy_controller(&env, MainerRole::ShareService, game, None);
    let agent = deploy_controller(&env, MainerRole::ShareAgent, game, Some(service));
    let settings = ControllerSettings {
        history_size: kept as u32,
        max_queue: kept as u32 + 1,
        pull_interval_seconds: 86_400,
        ..test_settings()
    };
    env.call(admin(), agent, &controller_calls::SET_SETTINGS, (settings,)).unwrap().unwrap();
    type Trigger = mainer_types::calls::Method<(), mainer_types::controller::ControllerResult<StepReport>>;
    let trigger = |m: &Trigger| -> StepReport { env.call(admin(), agent, m, ()).unwrap().unwrap() };
    for i in 0..kept {
        let c = add_challenge(&env, game, &format!("challenge {i}"), 8);
        assert_eq!(trigger(&controller_calls::TRIGGER_PULL).finished, 1);
        env.call(admin(), game, &game_calls::CLOSE_CHALLENGE, (c.id,)).unwrap().unwrap();
    }
    while trigger(&controller_calls::TRIGGER_FORWARD).started > 0 {}
    let page = mainer_types::PageRequest::first(1);
    let history = env.call(admin(), agent, &controller_calls::RECENT_WORK, (page,)).unwrap().unwrap();
    assert_eq!(history.total, kept, "the history is full");
    add_challenge(&env, game, "one more", 8);
    let start = env.simulator().unwrap().execution_totals(agent).0;
    assert_eq!(trigger(&controller_calls::TRIGGER_PULL).finished, 1);
    env.simulator().unwrap().execution_totals(agent).0 - start
}

/// The bytes of a ShareAgent's request for `challenge`: what is sent now,
/// and what sending the whole `Challenge` (as before) took.
fn request_bytes(challenge: &Challenge) -> (usize, usize) {
    #[derive(candid::CandidType)]
    struct WholeChallengeRequest<'a> {
        challenge: &'a Challenge,
    }
    let now = Encode!(&ServiceRequest { challenge: challenge.into() }).unwrap().len();
    let whole = Encode!(&WholeChallengeRequest { challenge }).unwrap().len();
    (now, whole)
}

fn submit_cost_at(stored: u64) -> u64 {
    let env = SimEnv::new();
    let game = deploy_game_state(&env);
    let mainers_per_challenge = 1_000u64;
    let challenges = stored.div_ceil(mainers_per_challenge) + 1;
    let ids: Vec<u64> = (0..challenges).map(|i| add_challenge(&env, game, &format!("challenge {i}"), 8).id).collect();
    let mainer = |n: u64| Principal::from_slice(&[&n.to_be_bytes()[..], &[0xAA, 1]].concat());
    for n in 0..mainers_per_challenge {
        let reg = RegisterMainerRequest { mainer: mainer(n), role: MainerRole::Own, owner: owner() };
        env.call(admin(), game, &game_calls::REGISTER_MAINER, (reg,)).unwrap().unwrap();
    }
    let evidence = |n: u64| ClaimedEvidence {
        prompt_sha256: "0".repeat(64),
        llm_canister: mainer(n),
        model_sha256: None,
        llm_calls: 5,
        prompt_tokens: Some(20),
        generated_tokens: Some(30),
        cycles_spent: None,
    };
    let submit = |n: u64, challenge: u64| {
        let req = SubmitRequest {
            challenge_id: challenge,
            answer: format!("answer {n} to {challenge}"),
            evidence: evidence(n),
        };
        let mut sim = env.simulator().unwrap();
        let out = sim.update_call_traced(mainer(n), game, "submit", Encode!(&req).unwrap());
        let r = candid::decode_one::<GameResult<Submission>>(&out.result.unwrap()).unwrap();
        r.expect("submission accepted");
        out.instructions
    };
    let mut done = 0;
    'fill: for &c in &ids[..ids.len() - 1] {
        for n in 0..mainers_per_challenge {
            if done == stored {
                break 'fill;
            }
            submit(n, c);
            done += 1;
        }
    }
    // Measure 100 submissions to the last (empty) challenge.
    let last = *ids.last().unwrap();
    let total: u64 = (0..100).map(|n| submit(n, last)).sum();
    total / 100
}

fn main() {
    let (per_answer, calls, llm_per_answer, seconds) = controller_per_answer();
    let pull_10 = pull_cost_with_history(10);
    let pull_1k = pull_cost_with_history(1_000);
    let question = "Benchmark question number 1 about a small cat, fifty.";
    let (request, whole_request) = request_bytes(&Challenge {
        id: 1,
        question: question.into(),
        settings: Default::default(),
        max_submissions: Some(100),
        deadline_ns: Some(1),
        created_at_ns: 1,
        status: mainer_types::game::ChallengeStatus::Open,
        submissions: 0,
    });
    let at_1k = submit_cost_at(1_000);
    let at_100k = submit_cost_at(100_000);
    // A Qwen2.5-0.5B-class LLM canister spends close to the 40B-instruction
    // limit on each of its update calls.
    let qwen_like = calls * 40_000_000_000;
    println!("## mAIner controller and game state benchmark\n");
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| controller instructions per answered challenge (all its messages: pull, generation calls, submit, timers) | {per_answer} |"
    );
    println!("| LLM calls per answer (test LLM, 4 tokens per call, 16-token answers) | {calls} |");
    println!("| test-fixture LLM instructions per answer (not a real model) | {llm_per_answer} |");
    println!(
        "| controller share vs a Qwen2.5-0.5B-class LLM (~40B instructions per call × {calls} calls) | {:.6} % |",
        per_answer as f64 * 100.0 / qwen_like as f64
    );
    println!("| simulated seconds for 10 answers (pull every 10 s) | {seconds} |");
    println!("| ShareAgent instructions per pull, 10 finished items kept | {pull_10} |");
    println!("| ShareAgent instructions per pull, 1,000 finished items kept | {pull_1k} |");
    println!("| ratio 1,000 / 10 | {:.2} |", pull_1k as f64 / pull_10 as f64);
    println!(
        "| ShareAgent → ShareService request bytes, {}-character question (whole `Challenge`: {whole_request}) | {request} |",
        question.len()
    );
    println!("| game-state instructions per submission, 1,000 stored | {at_1k} |");
    println!("| game-state instructions per submission, 100,000 stored | {at_100k} |");
    println!("| ratio 100,000 / 1,000 | {:.2} |", at_100k as f64 / at_1k as f64);
}
