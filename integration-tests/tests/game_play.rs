//! The game on the game state canister: topics turned into challenges by a
//! challenger, answers judged by two racing judges through leases, closing
//! by scores and by deadline, rankings, rewards from the pool and their
//! payout records, the queries over results, upgrades in the middle, and
//! every new endpoint refusing strangers. Challengers and judges are plain
//! principals here (the controller's roles are tested with the controller).

use std::time::Duration;

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Encode, Principal};
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::MainerRole;
use mainer_types::calls::{Method, game_state as g};
use mainer_types::game::{
    Challenge, ChallengeStatus, ClaimedEvidence, CloseReason, GameError, GameResult, GameStateArgs, GameStateInit,
    GenerationSettings, NewChallenge, RegisterMainerRequest, SubmissionStatus, SubmitRequest,
};
use mainer_types::game_play::{
    GameAgentKind, GameSettings, GeneratedChallenge, JudgeTask, LeaderboardRequest, LlmEvidence, NewTopic, PayoutState,
    PayoutTo, RewardPool, ScoreAccepted, ScoreOutcome, ScoreReport,
};
use mainer_types::{Page, PageRequest};
use serde::de::DeserializeOwned;

mod probe;

fn controller() -> Principal {
    user(1)
}
fn admin() -> Principal {
    user(2)
}
fn registrar() -> Principal {
    user(3)
}
fn challenger() -> Principal {
    user(30)
}
fn judge(n: u8) -> Principal {
    user(40 + n)
}
fn mainer(n: u8) -> Principal {
    user(100 + n)
}
fn owner_of(n: u8) -> Principal {
    user(150 + n)
}
fn stranger() -> Principal {
    user(66)
}

const REWARD: u128 = 1_000_000_000;

struct Game<'a> {
    env: &'a dyn TestEnv,
    id: Principal,
    /// A probe canister that is an admin: it funds the pool with attached cycles.
    funder: Principal,
}

impl<'a> Game<'a> {
    fn install(env: &'a dyn TestEnv) -> Game<'a> {
        let funder = probe::install_probe(env, "funder");
        let id = env.create_canister(controller());
        let init =
            GameStateInit { admins: vec![admin(), funder], registrars: vec![registrar()], max_answer_bytes: None };
        env.install(controller(), id, &wasm("game_state"), candid::encode_one(GameStateArgs::Init(init)).unwrap())
            .expect("game_state installs");
        let game = Game { env, id, funder };
        let settings = GameSettings {
            scored_to_close: 3,
            max_open_challenges: 2,
            lease_seconds: 60,
            reward_per_challenge: REWARD,
            ..GameSettings::default()
        };
        game.call(admin(), &g::SET_GAME_SETTINGS, (settings,)).unwrap();
        game
    }

    fn call<A: ArgumentEncoder, T: CandidType + DeserializeOwned>(
        &self,
        who: Principal,
        m: &Method<A, T>,
        args: A,
    ) -> T {
        self.env.call(who, self.id, m, args).unwrap_or_else(|e| panic!("{}: {e:?}", m.name))
    }

    fn fund(&self, cycles: u128) -> RewardPool {
        let arg = g::FUND_REWARD_POOL.encode(()).unwrap();
        match probe::forward(self.env, self.funder, self.id, "fund_reward_pool", arg, cycles, None) {
            probe::Forwarded::Reply(bytes) => g::FUND_REWARD_POOL.decode(&bytes).unwrap().unwrap(),
            other => panic!("fund_reward_pool: {other:?}"),
        }
    }

    fn register_mainer(&self, n: u8) {
        let req = RegisterMainerRequest { mainer: mainer(n), role: MainerRole::Own, owner: owner_of(n) };
        self.call(registrar(), &g::REGISTER_MAINER, (req,)).unwrap();
    }

    fn submit(&self, n: u8, challenge_id: u64) {
        let req = SubmitRequest { challenge_id, answer: format!("answer {n}"), evidence: claimed() };
        self.call(mainer(n), &g::SUBMIT, (req,)).unwrap();
    }

    fn generate(&self, topic_id: u64, question: &str) -> GameResult<Challenge> {
        let g = GeneratedChallenge { topic_id, question: question.into(), evidence: llm_evidence() };
        self.call(challenger(), &g::ADD_GENERATED_CHALLENGE, (g,))
    }

    fn lease(&self, j: Principal) -> GameResult<JudgeTask> {
        self.call(j, &g::NEXT_TO_JUDGE, ())
    }

    fn score(&self, j: Principal, lease_id: u64, score: u32) -> GameResult<ScoreAccepted> {
        let report = ScoreReport { lease_id, outcome: ScoreOutcome::Scored { score }, evidence: llm_evidence() };
        self.call(j, &g::SUBMIT_SCORE, (report,))
    }

    fn upgrade(&self) {
        self.env.upgrade(controller(), self.id, &wasm("game_state"), vec![]).expect("game_state upgrades");
    }
}

fn topic(text: &str, weight: u32) -> NewTopic {
    NewTopic {
        text: text.into(),
        weight,
        settings: GenerationSettings { max_tokens: 16, ..GenerationSettings::default() },
        max_submissions: None,
        scored_to_close: None,
        open_seconds: Some(3_600),
    }
}

fn claimed() -> ClaimedEvidence {
    ClaimedEvidence {
        prompt_sha256: "12".repeat(32),
        llm_canister: user(99),
        model_sha256: None,
        llm_calls: 2,
        prompt_tokens: Some(10),
        generated_tokens: Some(16),
        cycles_spent: None,
    }
}

fn llm_evidence() -> LlmEvidence {
    LlmEvidence {
        prompt_sha256: "ab".repeat(32),
        llm_canister: user(98),
        model_sha256: Some("cd".repeat(32)),
        llm_calls: 1,
        prompt_tokens: Some(60),
        generated_tokens: Some(2),
    }
}

#[test]
fn topics_become_challenges_whose_answers_are_judged_ranked_and_rewarded_once() {
    let env = new_env();
    let game = Game::install(&*env);
    assert_eq!(game.fund(10 * REWARD).available, 10 * REWARD);
    let sea = game.call(admin(), &g::ADD_TOPIC, (topic("the sea", 2),)).unwrap();
    let stars = game.call(admin(), &g::ADD_TOPIC, (topic("the stars", 1),)).unwrap();
    game.call(admin(), &g::REGISTER_GAME_AGENT, (challenger(), GameAgentKind::Challenger)).unwrap();
    for j in 0..2 {
        game.call(registrar(), &g::REGISTER_GAME_AGENT, (judge(j), GameAgentKind::Judge)).unwrap();
    }

    // The challenger fills the room for open challenges, then waits.
    let mut challenges = vec![];
    for question in ["Why is the sea salty?", "Why do stars twinkle?"] {
        let ticket = game.call(challenger(), &g::NEXT_TOPIC, ()).unwrap();
        assert!([sea.id, stars.id].contains(&ticket.topic.id));
        challenges.push(game.generate(ticket.topic.id, question).unwrap());
    }
    assert_eq!(game.call(challenger(), &g::NEXT_TOPIC, ()), Err(GameError::TooManyOpenChallenges { open: 2, max: 2 }));
    let c = &challenges[0];
    assert_eq!((c.settings.max_tokens, c.deadline_ns.is_some()), (16, true), "the topic's settings");
    let origin = game.call(admin(), &g::CHALLENGE_ORIGIN, (c.id,)).unwrap();
    assert_eq!((origin.author, origin.evidence), (challenger(), Some(llm_evidence())));

    // Four answers; the two judges race for them, one lease each at a time.
    for n in 0..4 {
        game.register_mainer(n);
        game.submit(n, c.id);
    }
    let mut scored_by = vec![];
    let scores = [2u32, 5, 5, 4];
    loop {
        let tasks: Vec<_> = (0..2).filter_map(|j| game.lease(judge(j)).ok().map(|t| (j, t))).collect();
        if tasks.is_empty() {
            break;
        }
        let mainers: Vec<_> = tasks.iter().map(|(_, t)| t.mainer).collect();
        assert!(mainers.len() < 2 || mainers[0] != mainers[1], "two judges never hold the same submission");
        for (j, t) in tasks {
            let idx = (0..4).find(|k| mainer(*k) == t.mainer).unwrap();
            let accepted = game.score(judge(j), t.lease_id, scores[idx as usize]).unwrap();
            assert!(matches!(accepted, ScoreAccepted::Final(_)));
            // A repeat (a lost reply) changes nothing.
            assert_eq!(game.score(judge(j), t.lease_id, 1).unwrap(), accepted);
            scored_by.push(t.mainer);
        }
    }
    scored_by.sort();
    let mut all: Vec<_> = (0..4).map(mainer).collect();
    all.sort();
    assert_eq!(scored_by, all, "every answer scored exactly once");

    // Closed at 3 scores, finalized when the fourth was judged.
    let closed = game.call(admin(), &g::CHALLENGE, (c.id,)).unwrap();
    assert!(matches!(closed.status, ChallengeStatus::Closed { reason: CloseReason::EnoughScores, .. }));
    let result = game.call(stranger(), &g::CHALLENGE_RESULT, (c.id,)).unwrap();
    assert_eq!((result.scored, result.reward), (4, REWARD));
    // Ties (mAIners 1 and 2 scored 5) go to the earlier submission.
    let ranking = game.call(stranger(), &g::CHALLENGE_RANKING, (c.id, PageRequest::first(10))).unwrap();
    let order: Vec<_> = ranking.items.iter().map(|r| r.mainer).collect();
    assert_eq!(order, vec![mainer(1), mainer(2), mainer(3), mainer(0)]);
    let rewards: Vec<u128> = ranking.items.iter().map(|r| r.reward).collect();
    let each = REWARD * 45 / 100 / 4;
    assert_eq!(rewards, vec![REWARD * 35 / 100 + each, REWARD * 15 / 100 + each, REWARD * 5 / 100 + each, each]);
    assert_eq!(rewards.iter().sum::<u128>(), REWARD);

    // Results for the mAIner and its owner; the leaderboard for anyone.
    let mine = game.call(owner_of(1), &g::MAINER_RESULTS, (mainer(1), PageRequest::first(10))).unwrap();
    assert_eq!((mine.items[0].rank, mine.total), (1, 1));
    let earned = game.call(owner_of(1), &g::OWNER_EARNINGS, (owner_of(1),)).unwrap();
    assert_eq!((earned.earned, earned.wins), (rewards[0], 1));
    let board = game
        .call(stranger(), &g::LEADERBOARD, (LeaderboardRequest { period: None, page: PageRequest::first(2) },))
        .unwrap();
    assert_eq!((board.items[0].mainer, board.total, board.next_offset), (mainer(1), 4, Some(2)));

    // One payout per rewarded answer, waiting to be sent, and the pool owes them.
    let payouts = game.call(admin(), &g::LIST_PAYOUTS, (PageRequest::first(10),)).unwrap();
    assert_eq!(payouts.items.len(), 4);
    assert!(payouts.items.iter().all(|p| p.to == PayoutTo::Mainer && p.challenge_id == c.id));
    assert_eq!(payouts.items.iter().map(|p| p.amount).sum::<u128>(), REWARD);
    assert!(payouts.items.iter().all(|p| matches!(p.state, PayoutState::Pending | PayoutState::Paid { .. })));
    let pool = game.call(admin(), &g::REWARD_POOL, ()).unwrap();
    assert_eq!(pool.available, 9 * REWARD);
    assert_eq!(pool.owed + pool.paid, REWARD);

    // The challenger has room again.
    assert!(game.call(challenger(), &g::NEXT_TOPIC, ()).is_ok());
}

#[test]
fn leases_survive_an_upgrade_and_an_abandoned_one_goes_back_by_the_timer() {
    let env = new_env();
    let game = Game::install(&*env);
    let c = game
        .call(
            admin(),
            &g::ADD_CHALLENGE,
            (NewChallenge {
                question: "q".into(),
                settings: GenerationSettings::default(),
                max_submissions: Some(2),
                deadline_ns: None,
            },),
        )
        .unwrap();
    for j in 0..2 {
        game.call(admin(), &g::REGISTER_GAME_AGENT, (judge(j), GameAgentKind::Judge)).unwrap();
    }
    for n in 0..2 {
        game.register_mainer(n);
        game.submit(n, c.id);
    }
    let a = game.lease(judge(0)).unwrap();
    let b = game.lease(judge(1)).unwrap();
    game.upgrade();
    // Judge 0 picks up where it was; judge 1 went silent.
    assert_eq!(game.lease(judge(0)).unwrap(), a);
    game.score(judge(0), a.lease_id, 3).unwrap();
    env.advance_and_tick(Duration::from_secs(2 * 60), 4);
    // The timer sent b's submission back; judge 0 gets it; judge 1's late report is refused.
    let again = game.lease(judge(0)).unwrap();
    assert_eq!((again.mainer, again.attempt), (b.mainer, 2));
    assert_eq!(game.score(judge(1), b.lease_id, 5), Err(GameError::LeaseNotFound(b.lease_id)));
    game.score(judge(0), again.lease_id, 4).unwrap();
    let result = game.call(stranger(), &g::CHALLENGE_RESULT, (c.id,)).unwrap();
    assert_eq!((result.scored, result.reward), (2, 0), "an empty pool rewards nothing");
    let judged = game.call(admin(), &g::JUDGEMENTS_BY_CHALLENGE, (c.id, PageRequest::first(10))).unwrap();
    assert_eq!(judged.items.iter().filter(|j| j.judge == judge(0)).count(), 2);
    let subs = game.call(admin(), &g::SUBMISSIONS_BY_CHALLENGE, (c.id, PageRequest::first(10))).unwrap();
    assert!(subs.items.iter().all(|s| matches!(s.status, SubmissionStatus::Judged { .. })));
}

#[test]
fn a_challenge_at_its_deadline_is_finalized_by_the_timer() {
    let env = new_env();
    let game = Game::install(&*env);
    game.fund(REWARD);
    let t = game.call(admin(), &g::ADD_TOPIC, (NewTopic { open_seconds: Some(120), ..topic("the sea", 1) },)).unwrap();
    game.call(admin(), &g::REGISTER_GAME_AGENT, (challenger(), GameAgentKind::Challenger)).unwrap();
    game.call(admin(), &g::REGISTER_GAME_AGENT, (judge(0), GameAgentKind::Judge)).unwrap();
    let c = game.generate(t.id, "Why?").unwrap();
    game.register_mainer(0);
    game.submit(0, c.id);
    let task = game.lease(judge(0)).unwrap();
    game.score(judge(0), task.lease_id, 2).unwrap();
    assert_eq!(game.call(stranger(), &g::CHALLENGE_RESULT, (c.id,)), Err(GameError::NotFinalized(c.id)));
    env.advance_and_tick(Duration::from_secs(4 * 60), 5);
    let result = game.call(stranger(), &g::CHALLENGE_RESULT, (c.id,)).unwrap();
    assert_eq!((result.scored, result.reward, result.winners[0].mainer), (1, REWARD, mainer(0)));
    assert!(result.finalized_at_ns >= c.deadline_ns.unwrap());
}

#[test]
fn every_game_endpoint_refuses_strangers() {
    let env = new_env();
    let game = Game::install(&*env);
    game.register_mainer(0);
    let page = PageRequest::first(5);
    let settings = GameSettings::default();
    let report = ScoreReport { lease_id: 1, outcome: ScoreOutcome::Scored { score: 3 }, evidence: llm_evidence() };
    let generated = GeneratedChallenge { topic_id: 1, question: "q".into(), evidence: llm_evidence() };
    // (method, argument, query, the error the endpoint gives a stranger)
    let unauthorized = |e: &GameError| matches!(e, GameError::Unauthorized(_));
    let not_challenger = |e: &GameError| matches!(e, GameError::NotAChallenger(_));
    let not_judge = |e: &GameError| matches!(e, GameError::NotAJudge(_));
    type Check = Box<dyn Fn(&GameError) -> bool>;
    let calls: Vec<(&str, Vec<u8>, bool, Check)> = vec![
        ("add_topic", Encode!(&topic("x", 1)).unwrap(), false, Box::new(unauthorized)),
        ("update_topic", Encode!(&1u64, &topic("x", 1)).unwrap(), false, Box::new(unauthorized)),
        ("remove_topic", Encode!(&1u64).unwrap(), false, Box::new(unauthorized)),
        ("list_topics", Encode!(&page).unwrap(), true, Box::new(not_challenger)),
        ("register_game_agent", Encode!(&stranger(), &GameAgentKind::Judge).unwrap(), false, Box::new(unauthorized)),
        ("unregister_game_agent", Encode!(&judge(0)).unwrap(), false, Box::new(unauthorized)),
        ("list_game_agents", Encode!(&page).unwrap(), true, Box::new(unauthorized)),
        ("set_game_settings", Encode!(&settings).unwrap(), false, Box::new(unauthorized)),
        ("fund_reward_pool", Encode!().unwrap(), false, Box::new(unauthorized)),
        ("reward_pool", Encode!().unwrap(), true, Box::new(unauthorized)),
        ("set_payout_to", Encode!(&mainer(0), &PayoutTo::Mainer).unwrap(), false, Box::new(unauthorized)),
        ("list_payouts", Encode!(&page).unwrap(), true, Box::new(unauthorized)),
        ("run_payouts", Encode!().unwrap(), false, Box::new(unauthorized)),
        ("resolve_payout", Encode!(&1u64, &true).unwrap(), false, Box::new(unauthorized)),
        ("next_topic", Encode!().unwrap(), false, Box::new(not_challenger)),
        ("add_generated_challenge", Encode!(&generated).unwrap(), false, Box::new(not_challenger)),
        ("challenge_origin", Encode!(&1u64).unwrap(), true, Box::new(not_judge)),
        ("next_to_judge", Encode!().unwrap(), false, Box::new(not_judge)),
        ("submit_score", Encode!(&report).unwrap(), false, Box::new(not_judge)),
        ("judgements_by_challenge", Encode!(&1u64, &page).unwrap(), true, Box::new(unauthorized)),
        ("mainer_results", Encode!(&mainer(0), &page).unwrap(), true, Box::new(unauthorized)),
        ("mainer_earnings", Encode!(&mainer(0)).unwrap(), true, Box::new(unauthorized)),
        ("owner_results", Encode!(&owner_of(0), &page).unwrap(), true, Box::new(unauthorized)),
        ("owner_earnings", Encode!(&owner_of(0)).unwrap(), true, Box::new(unauthorized)),
    ];
    let stranger_canister = probe::install_probe(&*env, "stranger");
    let refused = |method: &str, reply: &[u8], check: &Check| {
        let decoded = candid::decode_one::<Result<candid::Reserved, GameError>>(reply).unwrap();
        assert!(decoded.as_ref().is_err_and(check), "{method}: {decoded:?}");
    };
    for (method, arg, query, check) in &calls {
        if *query {
            refused(method, &env.query(stranger(), game.id, method, arg.clone()).unwrap(), check);
            continue;
        }
        // Ingress: refused at inspection, for free; a canister: by the endpoint.
        let ingress = env.update(stranger(), game.id, method, arg.clone());
        assert!(ingress.as_ref().is_err_and(|e| e.error_code == Some("IC0406")), "{method}: {ingress:?}");
        match probe::forward(&*env, stranger_canister, game.id, method, arg.clone(), 0, None) {
            probe::Forwarded::Reply(reply) => refused(method, &reply, check),
            other => panic!("{method}: {other:?}"),
        }
    }
    // The mAIner's owner may choose where its rewards go (through inspection too).
    let to = PayoutTo::OwnerLedger { subaccount: None };
    game.call(owner_of(0), &g::SET_PAYOUT_TO, (mainer(0), to)).unwrap();
    // Public reads stay public.
    let _: GameSettings = game.call(stranger(), &g::GAME_SETTINGS, ());
    let _: GameResult<Page<_>> = game.call(stranger(), &g::LEADERBOARD, (LeaderboardRequest { period: None, page },));
}

#[test]
fn the_game_survives_an_upgrade() {
    let env = new_env();
    let game = Game::install(&*env);
    game.fund(3 * REWARD);
    let t = game.call(admin(), &g::ADD_TOPIC, (topic("the sea", 1),)).unwrap();
    game.call(admin(), &g::REGISTER_GAME_AGENT, (challenger(), GameAgentKind::Challenger)).unwrap();
    game.call(admin(), &g::REGISTER_GAME_AGENT, (judge(0), GameAgentKind::Judge)).unwrap();
    let c = game.generate(t.id, "Why?").unwrap();
    for n in 0..3 {
        game.register_mainer(n);
        game.submit(n, c.id);
    }
    for _ in 0..3 {
        let task = game.lease(judge(0)).unwrap();
        game.score(judge(0), task.lease_id, 3).unwrap();
    }
    let before = (
        game.call(stranger(), &g::CHALLENGE_RESULT, (c.id,)).unwrap(),
        game.call(admin(), &g::LIST_PAYOUTS, (PageRequest::first(10),)).unwrap().items.len(),
        game.call(admin(), &g::LIST_TOPICS, (PageRequest::first(10),)).unwrap(),
        game.call(stranger(), &g::GAME_SETTINGS, ()),
        game.call(owner_of(0), &g::MAINER_EARNINGS, (mainer(0),)).unwrap(),
    );
    game.upgrade();
    let after = (
        game.call(stranger(), &g::CHALLENGE_RESULT, (c.id,)).unwrap(),
        game.call(admin(), &g::LIST_PAYOUTS, (PageRequest::first(10),)).unwrap().items.len(),
        game.call(admin(), &g::LIST_TOPICS, (PageRequest::first(10),)).unwrap(),
        game.call(stranger(), &g::GAME_SETTINGS, ()),
        game.call(owner_of(0), &g::MAINER_EARNINGS, (mainer(0),)).unwrap(),
    );
    assert_eq!(before, after);
    assert_eq!(after.1, 3);
}

/// Stores the game state's module in its chunk store; returns the
/// `install_chunked_code` argument that upgrades it with it.
fn stored_upgrade(env: &dyn TestEnv, game: Principal) -> Vec<u8> {
    use ic_sim::mgmt;
    use sha2::{Digest, Sha256};
    let module = wasm("game_state");
    let mut hashes = vec![];
    for chunk in module.chunks(1_000_000) {
        let args = mgmt::UploadChunkArgs { canister_id: game, chunk: chunk.to_vec() };
        let reply = env.update(controller(), Principal::management_canister(), "upload_chunk", Encode!(&args).unwrap());
        hashes.push(candid::decode_one::<mgmt::ChunkHash>(&reply.unwrap()).unwrap());
    }
    let args = mgmt::InstallChunkedCodeArgs {
        mode: mgmt::CanisterInstallMode::Upgrade(None),
        target_canister: game,
        store_canister: None,
        chunk_hashes_list: hashes,
        wasm_module_hash: Sha256::digest(&module).to_vec(),
        arg: vec![],
        sender_canister_version: None,
    };
    Encode!(&args).unwrap()
}

/// What a payout's receiver holds: a probe mAIner's cycles, or an owner's ledger balance.
fn received(env: &dyn TestEnv, ledger: Principal, p: &mainer_types::game_play::Payout) -> u128 {
    match p.to {
        PayoutTo::Mainer => env.cycle_balance(p.mainer),
        PayoutTo::OwnerLedger { .. } => integration_tests::ledger::balance(env, ledger, p.owner),
    }
}

fn payouts(game: &Game) -> Vec<mainer_types::game_play::Payout> {
    game.call(admin(), &g::LIST_PAYOUTS, (PageRequest::first(100),)).unwrap().items
}

#[test]
fn every_payout_arrives_exactly_once_across_a_stopped_ledger_and_an_upgrade_mid_payout() {
    let env = new_env();
    if env.simulator().is_none() {
        return; // needs one-message steps
    }
    let ledger_wasm = match integration_tests::ledger::cycles_ledger_wasm() {
        Ok(w) => w,
        Err(skip) => return println!("{skip}"),
    };
    let ledger = integration_tests::ledger::deploy_cycles_ledger(&*env, &ledger_wasm, &[]);
    let ledger_admin = integration_tests::deploy::admin();
    let game = Game::install(&*env);
    let reward: u128 = 4_000_000_000_000;
    let settings = GameSettings {
        scored_to_close: 4,
        reward_per_challenge: reward,
        cycles_ledger: Some(ledger),
        ..game.call(stranger(), &g::GAME_SETTINGS, ())
    };
    game.call(admin(), &g::SET_GAME_SETTINGS, (settings,)).unwrap();
    game.fund(reward);
    game.call(admin(), &g::REGISTER_GAME_AGENT, (judge(0), GameAgentKind::Judge)).unwrap();
    let c = game
        .call(
            admin(),
            &g::ADD_CHALLENGE,
            (NewChallenge {
                question: "q".into(),
                settings: GenerationSettings::default(),
                max_submissions: None,
                deadline_ns: None,
            },),
        )
        .unwrap();
    // Two mAIners are canisters paid by top-ups; two have their owners paid on the ledger.
    let canisters: Vec<Principal> = (0..2).map(|i| probe::install_probe(&*env, &format!("mainer {i}"))).collect();
    for (i, m) in canisters.iter().enumerate() {
        let req = RegisterMainerRequest { mainer: *m, role: MainerRole::Own, owner: owner_of(i as u8) };
        game.call(registrar(), &g::REGISTER_MAINER, (req,)).unwrap();
        let req = SubmitRequest { challenge_id: c.id, answer: format!("answer {i}"), evidence: claimed() };
        let arg = g::SUBMIT.encode((req,)).unwrap();
        assert!(matches!(probe::forward(&*env, *m, game.id, "submit", arg, 0, None), probe::Forwarded::Reply(_)));
    }
    for n in 2..4 {
        game.register_mainer(n);
        let to = PayoutTo::OwnerLedger { subaccount: None };
        game.call(owner_of(n), &g::SET_PAYOUT_TO, (mainer(n), to)).unwrap();
        game.submit(n, c.id);
    }
    let before: Vec<u128> = canisters.iter().map(|m| env.cycle_balance(*m)).collect();
    env.stop(ledger_admin, ledger).unwrap();
    for score in [3, 4, 5, 2] {
        let t = game.lease(judge(0)).unwrap();
        game.score(judge(0), t.lease_id, score).unwrap();
    }
    let all = payouts(&game);
    assert_eq!((all.len(), all.iter().map(|p| p.amount).sum::<u128>()), (4, reward));

    // The ledger is stopped: its payouts are refused and wait; the top-ups arrive.
    let settled = |ps: &[mainer_types::game_play::Payout]| {
        ps.iter().all(|p| match p.to {
            PayoutTo::Mainer => matches!(p.state, PayoutState::Paid { .. }),
            PayoutTo::OwnerLedger { .. } => p.attempts >= 1 && p.state == PayoutState::Pending,
        })
    };
    for _ in 0..300 {
        if settled(&payouts(&game)) {
            break;
        }
        env.advance_time(Duration::from_millis(500));
        env.tick();
    }
    for p in payouts(&game) {
        match p.to {
            PayoutTo::Mainer => assert!(matches!(p.state, PayoutState::Paid { .. }), "{p:?}"),
            PayoutTo::OwnerLedger { .. } => {
                assert_eq!(p.state, PayoutState::Pending, "{p:?}");
                assert!(p.attempts >= 1 && p.last_error.is_some(), "{p:?}");
            }
        }
    }

    // The ledger is back; the game state is upgraded (without a stop) while
    // a ledger payout is in flight.
    let upgrade = stored_upgrade(&*env, game.id);
    env.start(ledger_admin, ledger).unwrap();
    let mut steps = 0;
    let in_flight = loop {
        env.advance_time(Duration::from_millis(500));
        env.tick();
        if let Some(p) = payouts(&game).into_iter().find(|p| matches!(p.state, PayoutState::InFlight { .. })) {
            break p;
        }
        steps += 1;
        assert!(steps < 600, "no payout was ever in flight");
    };
    // The upgrade goes in as a message of its own, queued behind the
    // transfer and ahead of its reply (its chunks were stored before).
    let call = env.submit(controller(), Principal::management_canister(), "install_chunked_code", upgrade).unwrap();
    env.await_call(call).expect("game_state upgrades");
    env.advance_and_tick(Duration::from_secs(5 * 60), 40);
    // What was in flight is Unknown, never sent again by itself; the rest is paid.
    let after = payouts(&game);
    assert!(after.iter().any(|p| p.id == in_flight.id && p.state == PayoutState::Unknown), "{after:?}");
    for p in &after {
        assert!(matches!(p.state, PayoutState::Paid { .. } | PayoutState::Unknown), "{p:?}");
    }
    // The admin checks each receiver and resolves; nothing is sent twice.
    let got = |p: &mainer_types::game_play::Payout| match p.to {
        PayoutTo::Mainer => {
            let i = canisters.iter().position(|m| *m == p.mainer).unwrap();
            env.cycle_balance(p.mainer).saturating_sub(before[i])
        }
        PayoutTo::OwnerLedger { .. } => received(&*env, ledger, p),
    };
    // A top-up lands on a balance that also pays for the canister's idling.
    let arrived_once = |p: &mainer_types::game_play::Payout| {
        let got = got(p);
        got <= p.amount && got + 1_000_000_000 > p.amount
    };
    for p in after.iter().filter(|p| p.state == PayoutState::Unknown) {
        let arrived = arrived_once(p);
        game.call(admin(), &g::RESOLVE_PAYOUT, (p.id, arrived)).unwrap();
    }
    env.advance_and_tick(Duration::from_secs(60), 10);
    let done = payouts(&game);
    assert!(done.iter().all(|p| matches!(p.state, PayoutState::Paid { .. })), "{done:?}");
    for p in &done {
        assert!(arrived_once(p), "payout {} once: {} of {}", p.id, got(p), p.amount);
    }
    let pool = game.call(admin(), &g::REWARD_POOL, ()).unwrap();
    assert_eq!((pool.owed, pool.paid, pool.available, pool.funded), (0, reward, 0, reward));
}

#[test]
fn a_stop_before_an_upgrade_lets_the_payouts_in_flight_arrive() {
    let env = new_env();
    if env.simulator().is_none() {
        return; // needs one-message steps
    }
    let game = Game::install(&*env);
    let settings = GameSettings { scored_to_close: 1, ..game.call(stranger(), &g::GAME_SETTINGS, ()) };
    game.call(admin(), &g::SET_GAME_SETTINGS, (settings,)).unwrap();
    game.fund(REWARD);
    game.call(admin(), &g::REGISTER_GAME_AGENT, (judge(0), GameAgentKind::Judge)).unwrap();
    let c = game
        .call(
            admin(),
            &g::ADD_CHALLENGE,
            (NewChallenge {
                question: "q".into(),
                settings: GenerationSettings::default(),
                max_submissions: None,
                deadline_ns: None,
            },),
        )
        .unwrap();
    let m = probe::install_probe(&*env, "mainer");
    let req = RegisterMainerRequest { mainer: m, role: MainerRole::Own, owner: owner_of(0) };
    game.call(registrar(), &g::REGISTER_MAINER, (req,)).unwrap();
    let req = SubmitRequest { challenge_id: c.id, answer: "a".into(), evidence: claimed() };
    let arg = g::SUBMIT.encode((req,)).unwrap();
    assert!(matches!(probe::forward(&*env, m, game.id, "submit", arg, 0, None), probe::Forwarded::Reply(_)));
    let before = env.cycle_balance(m);
    let t = game.lease(judge(0)).unwrap();
    game.score(judge(0), t.lease_id, 4).unwrap();
    let mut steps = 0;
    while !payouts(&game).iter().any(|p| matches!(p.state, PayoutState::InFlight { .. })) {
        env.advance_time(Duration::from_millis(500));
        env.tick();
        steps += 1;
        assert!(steps < 600, "the payout was never in flight");
    }
    env.stop(controller(), game.id).unwrap();
    game.upgrade();
    env.start(controller(), game.id).unwrap();
    env.advance_and_tick(Duration::from_secs(60), 10);
    let p = payouts(&game).remove(0);
    assert!(matches!(p.state, PayoutState::Paid { .. }), "{p:?}");
    let got = env.cycle_balance(m) - before;
    assert!(got <= REWARD && got + 1_000_000_000 > REWARD, "paid once: {got}");
}
