//! Benchmark of the game on the game state (issue 13): instructions of a
//! judged submission (`next_to_judge` plus `submit_score`), of the score
//! that finalizes a challenge (ranking, rewards, payout records) with 27
//! and with 1,000 answers, of a payout (the round that sends it and its
//! reply), and how a judged submission's cost grows with stored history
//! (challenges of 1,000 answers, each judged and finalized, before
//! the measurement). The judges are plain principals there; the Judge
//! controller's own instructions per judged submission are measured apart
//! (its LLM: the test fixture). Prints a Markdown report.
//!
//! `cargo run -p integration-tests --example bench_game -- [STORED ...]`
//! (default 1000 and 30000 stored judged submissions).

use candid::{Encode, Principal};
use integration_tests::{SimEnv, TestEnv, TestEnvExt, user, wasm};
use mainer_types::MainerRole;
use mainer_types::calls::game_state as g;
use mainer_types::game::{
    ClaimedEvidence, GameStateArgs, GameStateInit, GenerationSettings, NewChallenge, RegisterMainerRequest,
    SubmitRequest,
};
use mainer_types::game_play::{
    GameAgentKind, GameSettings, JudgeTask, LlmEvidence, PayoutState, ScoreOutcome, ScoreReport,
};
use mainer_types::{Page, PageRequest};

const ADMIN: u8 = 2;
const JUDGE: u8 = 40;
const MAINERS: u64 = 1_000;

fn admin() -> Principal {
    user(ADMIN)
}

fn mainer(i: u64) -> Principal {
    Principal::self_authenticating((i as u32).to_le_bytes())
}

fn evidence() -> LlmEvidence {
    LlmEvidence {
        prompt_sha256: "ab".repeat(32),
        llm_canister: user(98),
        model_sha256: Some("cd".repeat(32)),
        llm_calls: 3,
        prompt_tokens: Some(120),
        generated_tokens: Some(2),
    }
}

#[derive(candid::CandidType)]
struct ProbeInit {
    label: String,
}

/// The argument of the probe's `forward`: a call it makes with cycles attached.
#[derive(candid::CandidType)]
struct ForwardArg {
    target: Principal,
    method: String,
    arg: Vec<u8>,
    cycles: u128,
    timeout_seconds: Option<u32>,
}

fn install_probe(env: &SimEnv, label: &str) -> Principal {
    let id = env.create_canister(admin());
    let init = candid::encode_one(Some(ProbeInit { label: label.into() })).unwrap();
    env.install(admin(), id, &wasm("sim_probe"), init).expect("the probe installs");
    id
}

/// `from` (a probe) calls `method` of `target` with `cycles`; the raw reply.
fn forward(env: &SimEnv, from: Principal, target: Principal, method: &str, arg: Vec<u8>, cycles: u128) -> Vec<u8> {
    let f = ForwardArg { target, method: method.into(), arg, cycles, timeout_seconds: None };
    env.update(user(1), from, "forward", candid::encode_one(f).unwrap()).expect("the probe forwards")
}

struct Bench {
    env: SimEnv,
    game: Principal,
    /// The mAIners: probe canisters when payouts are measured (they receive
    /// top-ups), plain principals otherwise.
    mainers: Vec<Principal>,
}

impl Bench {
    fn new(scored_to_close: u64, reward: u128, probes: u64) -> Bench {
        let env = SimEnv::new();
        let funder = install_probe(&env, "funder");
        let game = env.create_canister_with(vec![admin()], 1u128 << 100);
        let init = GameStateInit { admins: vec![admin(), funder], registrars: vec![], max_answer_bytes: None };
        env.install(admin(), game, &wasm("game_state"), candid::encode_one(GameStateArgs::Init(init)).unwrap())
            .unwrap();
        let settings = GameSettings {
            scored_to_close,
            max_open_challenges: 1_000_000,
            reward_per_challenge: reward,
            ..GameSettings::default()
        };
        env.call(admin(), game, &g::SET_GAME_SETTINGS, (settings,)).unwrap().unwrap();
        if reward > 0 {
            env.add_cycles(funder, 10 * reward);
            forward(&env, funder, game, "fund_reward_pool", Encode!().unwrap(), 10 * reward);
        }
        env.call(admin(), game, &g::REGISTER_GAME_AGENT, (user(JUDGE), GameAgentKind::Judge)).unwrap().unwrap();
        let mainers: Vec<Principal> = if probes > 0 {
            (0..probes).map(|i| install_probe(&env, &format!("mainer {i}"))).collect()
        } else {
            (0..MAINERS).map(mainer).collect()
        };
        for m in &mainers {
            let req = RegisterMainerRequest { mainer: *m, role: MainerRole::ShareAgent, owner: user(4) };
            env.call(admin(), game, &g::REGISTER_MAINER, (req,)).unwrap().unwrap();
        }
        Bench { env, game, mainers }
    }

    fn add_challenge(&self) -> u64 {
        let new = NewChallenge {
            question: "Write one sentence about the sea.".into(),
            settings: GenerationSettings::default(),
            max_submissions: None,
            deadline_ns: None,
        };
        self.env.call(admin(), self.game, &g::ADD_CHALLENGE, (new,)).unwrap().unwrap().id
    }

    /// `n` answers to challenge `id`, a batch of messages per round.
    fn answer(&self, id: u64, n: u64) {
        let answer = "The quick brown fox jumps over the lazy dog. ".repeat(6);
        let claimed = ClaimedEvidence {
            prompt_sha256: "12".repeat(32),
            llm_canister: user(99),
            model_sha256: None,
            llm_calls: 2,
            prompt_tokens: Some(10),
            generated_tokens: Some(16),
            cycles_spent: None,
        };
        let req = || {
            candid::encode_one(SubmitRequest { challenge_id: id, answer: answer.clone(), evidence: claimed.clone() })
                .unwrap()
        };
        if self.mainers.len() < MAINERS as usize {
            for m in self.mainers.iter().take(n as usize) {
                forward(&self.env, *m, self.game, g::SUBMIT.name, req(), 0);
            }
            return;
        }
        let mut sim = self.env.simulator().unwrap();
        let ids: Vec<_> = (0..n)
            .map(|i| sim.submit_update(self.mainers[i as usize], self.game, g::SUBMIT.name, req()).unwrap())
            .collect();
        sim.tick();
        for call in ids {
            sim.await_update(call).result.expect("submit replies");
        }
        sim.clear_executions();
    }

    /// Judges `n` submissions; returns the instructions of each (lease + score).
    fn judge(&self, n: u64) -> Vec<u64> {
        let mut costs = vec![];
        for i in 0..n {
            self.env.simulator().unwrap().clear_executions();
            let task: JudgeTask = self.env.call(user(JUDGE), self.game, &g::NEXT_TO_JUDGE, ()).unwrap().unwrap();
            let score = 1 + (i % 5) as u32;
            let report =
                ScoreReport { lease_id: task.lease_id, outcome: ScoreOutcome::Scored { score }, evidence: evidence() };
            self.env.call(user(JUDGE), self.game, &g::SUBMIT_SCORE, (report,)).unwrap().unwrap();
            let sim = self.env.simulator().unwrap();
            costs.push(
                sim.executions()
                    .filter(|e| {
                        e.canister == self.game
                            && (e.entry.contains("next_to_judge") || e.entry.contains("submit_score"))
                    })
                    .map(|e| e.instructions)
                    .sum(),
            );
        }
        costs
    }

    /// Plays one whole challenge of `n` answers; returns the judging costs.
    fn play(&self, n: u64) -> Vec<u64> {
        let id = self.add_challenge();
        self.answer(id, n);
        self.judge(n)
    }
}

fn mean(v: &[u64]) -> u64 {
    v.iter().sum::<u64>() / v.len().max(1) as u64
}

/// The finalizing score of a challenge of `n` answers, and a normal one.
fn finalize_cost(n: u64) -> (u64, u64) {
    let b = Bench::new(n, 1_000_000_000, 0);
    let costs = b.play(n);
    let last = *costs.last().unwrap();
    let normal = mean(&costs[..costs.len() - 1]);
    let result = b.env.call(admin(), b.game, &g::CHALLENGE_RESULT, (1u64,)).unwrap();
    assert!(result.is_ok_and(|r| r.scored == n), "finalized");
    (last, normal)
}

/// Judged-submission cost with `stored` submissions judged and finalized before.
fn judged_cost_with_history(stored: u64) -> u64 {
    let b = Bench::new(MAINERS, 0, 0);
    let mut done = 0;
    while done < stored {
        b.play(MAINERS);
        done += MAINERS;
    }
    let id = b.add_challenge();
    b.answer(id, 100);
    mean(&b.judge(100))
}

/// Instructions per payout: every execution of the game state from
/// `run_payouts` until the `n` top-ups are paid (the rounds, at most 20
/// payouts each, and the replies; the sweep timer's rounds meanwhile too).
fn payout_cost(n: u64) -> u64 {
    let b = Bench::new(n, 1_000_000_000_000, n);
    b.play(n);
    b.env.simulator().unwrap().clear_executions();
    b.env.call(admin(), b.game, &g::RUN_PAYOUTS, ()).unwrap().unwrap();
    for _ in 0..100 {
        let page: Page<mainer_types::game_play::Payout> =
            b.env.call(admin(), b.game, &g::LIST_PAYOUTS, (PageRequest::first(100),)).unwrap().unwrap();
        if page.items.iter().all(|p| matches!(p.state, PayoutState::Paid { .. })) {
            assert_eq!(page.items.len() as u64, n);
            let sim = b.env.simulator().unwrap();
            let total: u64 = sim
                .executions()
                .filter(|e| e.canister == b.game && !e.entry.starts_with("query"))
                .map(|e| e.instructions)
                .sum();
            return total / n;
        }
        // More than a round's worth wait for the next timer round.
        b.env.advance_time(std::time::Duration::from_secs(1));
        b.env.tick();
    }
    panic!("the payouts were never paid");
}

/// The Judge controller's own instructions per judged submission (a lease,
/// the judge prompt through the LLM protocol with the test fixture as the
/// LLM, the report), over `n` submissions.
fn judge_controller_cost(n: u64) -> u64 {
    use integration_tests::deploy::{add_llm, deploy_test_llm, run_for, test_settings};
    use mainer_types::controller::{ControllerArgs, ControllerInit};
    let b = Bench::new(n, 0, 0);
    let llm = deploy_test_llm(&b.env, 8);
    #[derive(candid::CandidType)]
    struct FixtureConfigArg {
        answer_tokens: Option<u32>,
        word_prefix: Option<String>,
    }
    let cfg = FixtureConfigArg { answer_tokens: Some(3), word_prefix: Some("3".into()) };
    b.env.update(integration_tests::deploy::admin(), llm, "fixture_configure", Encode!(&cfg).unwrap()).unwrap();
    let judge = b.env.create_canister(integration_tests::deploy::admin());
    let init = ControllerInit {
        role: MainerRole::Judge,
        game_state: b.game,
        creator: integration_tests::deploy::admin(),
        owner: user(4),
        share_service: None,
        settings: Some(test_settings()),
    };
    b.env
        .install(
            integration_tests::deploy::admin(),
            judge,
            &wasm("mainer_controller"),
            Encode!(&ControllerArgs::Init(init)).unwrap(),
        )
        .unwrap();
    add_llm(&b.env, judge, llm);
    b.env.call(admin(), b.game, &g::REGISTER_GAME_AGENT, (judge, GameAgentKind::Judge)).unwrap().unwrap();
    let id = b.add_challenge();
    b.answer(id, n);
    let before = b.env.simulator().unwrap().execution_totals(judge).0;
    for _ in 0..10_000 {
        if b.env.call(admin(), b.game, &g::CHALLENGE_RESULT, (id,)).unwrap().is_ok() {
            let after = b.env.simulator().unwrap().execution_totals(judge).0;
            return (after - before) / n;
        }
        run_for(&b.env, 1);
    }
    panic!("the judge never finished");
}

fn main() {
    let stored: Vec<u64> = {
        let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
        if args.is_empty() { vec![1_000, 30_000] } else { args }
    };
    let (fin27, normal27) = finalize_cost(27);
    let (fin1000, normal1000) = finalize_cost(1_000);
    let payout = payout_cost(27);
    let judge = judge_controller_cost(27);
    println!("## Game: judging, finalizing and paying on the game state\n");
    println!(
        "Instructions of the game state's executions (the judges are plain principals), and of a Judge controller's.\n"
    );
    println!("| what | instructions |\n|---|---:|");
    println!("| a judged submission (`next_to_judge` + `submit_score`), challenge of 27 answers | {normal27} |");
    println!("| the score that finalizes a challenge of 27 answers (ranking, rewards, 27 payout records) | {fin27} |");
    println!("| a judged submission, challenge of 1,000 answers | {normal1000} |");
    println!("| the score that finalizes a challenge of 1,000 answers | {fin1000} |");
    println!("| a payout (a top-up of the mAIner: the round that sends it and its reply), 27 at once | {payout} |");
    println!(
        "| the Judge controller's own work per judged submission (lease, judge prompt through the LLM protocol, report; the test fixture as its LLM) | {judge} |"
    );
    println!(
        "\nA judged submission with history stored before it (challenges of 1,000 answers, each judged and finalized):\n"
    );
    println!("| stored judged submissions | a judged submission |\n|---:|---:|");
    let costs: Vec<u64> = stored.iter().map(|s| judged_cost_with_history(*s)).collect();
    for (s, c) in stored.iter().zip(&costs) {
        println!("| {s} | {c} |");
    }
    if let (Some(f), Some(l)) = (costs.first(), costs.last()) {
        println!("\nfrom {} to {} stored: ×{:.2}", stored[0], stored[stored.len() - 1], *l as f64 / *f as f64);
    }
}
