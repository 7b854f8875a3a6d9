//! The game state canister: the flow from challenge to stored evidence, its
//! access rules, upgrades and deadlines. Runs on PocketIC too when
//! `POCKET_IC_BIN` is set; the instruction benchmark is simulator-only.

use std::time::Duration;

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::MainerRole;
use mainer_types::calls::{Method, game_state as game_calls};
use mainer_types::game::{
    Challenge, ChallengeStatus, ClaimedEvidence, CloseReason, GameCounts, GameError, GameResult, GameStateArgs,
    GameStateInit, GameStateUpgrade, GenerationSettings, MainerInfo, NewChallenge, RegisterMainerRequest, Submission,
    SubmissionStatus, SubmitRequest,
};
use mainer_types::{Page, PageRequest};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// Controls the canister (and so is an admin without being listed).
fn controller() -> Principal {
    user(1)
}
fn admin() -> Principal {
    user(2)
}
/// Stands in for the mAIner creator.
fn registrar() -> Principal {
    user(3)
}
fn owner() -> Principal {
    user(4)
}
fn stranger() -> Principal {
    user(66)
}
/// mAIners are plain user principals here: any principal can call.
fn mainer(n: u8) -> Principal {
    user(100 + n)
}

const MAX_ANSWER_BYTES: u64 = 1_000;
const MINUTE: Duration = Duration::from_secs(60);

struct Game<'a> {
    env: &'a dyn TestEnv,
    id: Principal,
}

impl<'a> Game<'a> {
    fn install(env: &'a dyn TestEnv) -> Game<'a> {
        let id = env.create_canister(controller());
        let init = GameStateInit {
            admins: vec![admin()],
            registrars: vec![registrar()],
            max_answer_bytes: Some(MAX_ANSWER_BYTES),
        };
        env.install(controller(), id, &wasm("game_state"), candid::encode_one(GameStateArgs::Init(init)).unwrap())
            .expect("game_state installs");
        Game { env, id }
    }

    fn call<A: ArgumentEncoder, T: CandidType + DeserializeOwned>(
        &self,
        who: Principal,
        m: &Method<A, T>,
        args: A,
    ) -> T {
        self.env.call(who, self.id, m, args).unwrap_or_else(|e| panic!("{}: {e:?}", m.name))
    }

    /// Whether an update from `who` is refused in `canister_inspect_message`
    /// (before the canister pays for it; the endpoint would refuse it too).
    fn refused_at_inspection<A: ArgumentEncoder, T: CandidType + DeserializeOwned>(
        &self,
        who: Principal,
        m: &Method<A, T>,
        args: A,
    ) -> bool {
        matches!(self.env.call(who, self.id, m, args), Err(ref e) if e.error_code == Some("IC0406"))
    }

    fn add_challenge(&self, who: Principal, new: NewChallenge) -> GameResult<Challenge> {
        self.call(who, &game_calls::ADD_CHALLENGE, (new,))
    }

    fn register(&self, who: Principal, mainer: Principal) -> GameResult<MainerInfo> {
        self.call(
            who,
            &game_calls::REGISTER_MAINER,
            (RegisterMainerRequest { mainer, role: MainerRole::Own, owner: owner() },),
        )
    }

    fn get_challenge(&self, who: Principal) -> GameResult<Challenge> {
        self.call(who, &game_calls::GET_CHALLENGE, ())
    }

    fn submit(&self, who: Principal, challenge_id: u64, answer: &str) -> GameResult<Submission> {
        self.call(
            who,
            &game_calls::SUBMIT,
            (SubmitRequest { challenge_id, answer: answer.into(), evidence: evidence() },),
        )
    }

    fn is_open(&self, id: u64) -> bool {
        self.call(stranger(), &game_calls::IS_CHALLENGE_OPEN, (id,)).unwrap()
    }

    fn counts(&self) -> GameCounts {
        self.call(stranger(), &game_calls::COUNTS, ())
    }

    fn submissions_by_challenge(&self, who: Principal, id: u64) -> GameResult<Page<Submission>> {
        self.call(who, &game_calls::SUBMISSIONS_BY_CHALLENGE, (id, PageRequest::first(100)))
    }

    fn submissions_by_mainer(&self, who: Principal, mainer: Principal) -> GameResult<Page<Submission>> {
        self.call(who, &game_calls::SUBMISSIONS_BY_MAINER, (mainer, PageRequest::first(100)))
    }

    fn challenges(&self) -> Vec<Challenge> {
        self.call(admin(), &game_calls::LIST_CHALLENGES, (PageRequest::first(100),)).unwrap().items
    }
}

fn question(q: &str) -> NewChallenge {
    NewChallenge {
        question: q.into(),
        settings: GenerationSettings::default(),
        max_submissions: None,
        deadline_ns: None,
    }
}

fn evidence() -> ClaimedEvidence {
    ClaimedEvidence {
        prompt_sha256: hex::encode(Sha256::digest(b"<|im_start|>user\nthe prompt")),
        llm_canister: user(200),
        model_sha256: Some("AB".repeat(32)),
        llm_calls: 4,
        prompt_tokens: Some(30),
        generated_tokens: Some(17),
        cycles_spent: None,
    }
}

fn unauthorized<T: std::fmt::Debug>(r: GameResult<T>) -> bool {
    matches!(r, Err(GameError::Unauthorized(_)))
}

#[test]
fn challenges_are_handed_out_answered_and_stored_with_evidence() {
    let env = new_env();
    let game = Game::install(&*env);
    let mut q = question("What is the capital of France?");
    q.max_submissions = Some(2);
    let c1 = game.add_challenge(admin(), q).unwrap();
    let c2 = game.add_challenge(controller(), question("Name a prime number.")).unwrap();
    assert_eq!((c1.id, c2.id), (1, 2));
    for n in 0..3 {
        let info = game.register(registrar(), mainer(n)).unwrap();
        assert_eq!((info.mainer, info.owner, info.submissions), (mainer(n), owner(), 0));
    }
    assert_eq!(game.register(admin(), mainer(0)), Err(GameError::AlreadyRegistered(mainer(0))));

    // Spread over the least loaded challenges; asking again returns the same one.
    let given: Vec<u64> = (0..3).map(|n| game.get_challenge(mainer(n)).unwrap().id).collect();
    assert_eq!(given, vec![1, 2, 1]);
    assert_eq!(game.get_challenge(mainer(1)).unwrap().id, 2, "idempotent before submitting");

    let answer = "Paris is the capital of France.";
    let sub = game.submit(mainer(0), 1, answer).unwrap();
    assert_eq!(sub.evidence.answer_sha256, hex::encode(Sha256::digest(answer.as_bytes())), "hashed by the game state");
    assert_eq!(sub.evidence.prompt_sha256, evidence().prompt_sha256);
    assert_eq!(sub.evidence.model_sha256, Some("ab".repeat(32)));
    assert_eq!(
        (sub.mainer, sub.owner, sub.role, &sub.status),
        (mainer(0), owner(), MainerRole::Own, &SubmissionStatus::Submitted)
    );
    game.submit(mainer(1), 2, "Seven.").unwrap();
    assert!(game.is_open(1));
    game.submit(mainer(2), 1, "Paris.").unwrap();
    assert!(!game.is_open(1), "closed at max_submissions");
    let c1 = game.challenges().into_iter().find(|c| c.id == 1).unwrap();
    assert!(matches!(c1.status, ChallengeStatus::Closed { reason: CloseReason::EnoughSubmissions, .. }));
    assert_eq!(c1.submissions, 2);

    // mAIner 0 has answered 1, which is closed anyway: it gets 2, then nothing.
    assert_eq!(game.get_challenge(mainer(0)).unwrap().id, 2);
    game.submit(mainer(0), 2, "Eleven.").unwrap();
    assert_eq!(game.get_challenge(mainer(0)), Err(GameError::NoOpenChallenge));

    let page = game.submissions_by_challenge(admin(), 1).unwrap();
    assert_eq!(page.total, 2);
    let stored = page.items.iter().find(|s| s.mainer == mainer(0)).unwrap();
    assert_eq!(stored, &sub);
    let mine = game.submissions_by_mainer(mainer(0), mainer(0)).unwrap();
    assert_eq!(mine.items.iter().map(|s| s.challenge_id).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(game.submissions_by_mainer(owner(), mainer(0)).unwrap().total, 2, "the owner may read it too");
    let info: GameResult<MainerInfo> = game.call(mainer(0), &game_calls::MAINER_INFO, (mainer(0),));
    assert_eq!(info.unwrap().submissions, 2);
    assert_eq!(game.counts(), GameCounts { mainers: 3, challenges: 2, open_challenges: 1, submissions: 4 });
    let mainers: GameResult<Page<MainerInfo>> = game.call(admin(), &game_calls::LIST_MAINERS, (PageRequest::first(2),));
    let mainers = mainers.unwrap();
    assert_eq!((mainers.items.len(), mainers.total, mainers.next_offset), (2, 3, Some(2)));

    let health: bool = game.call(stranger(), &game_calls::HEALTH, ());
    assert!(health);
    let me: Principal = game.call(stranger(), &game_calls::WHOAMI, ());
    assert_eq!(me, stranger());
}

#[test]
fn every_admin_endpoint_refuses_a_stranger() {
    let env = new_env();
    let game = Game::install(&*env);
    let c = game.add_challenge(admin(), question("q")).unwrap();
    game.register(registrar(), mainer(0)).unwrap();
    game.submit(mainer(0), c.id, "a").unwrap();

    for who in [stranger(), mainer(0)] {
        // Ingress updates stop at inspection, queries at the endpoint's check.
        let reg = RegisterMainerRequest { mainer: mainer(9), role: MainerRole::Own, owner: owner() };
        assert!(game.refused_at_inspection(who, &game_calls::REGISTER_MAINER, (reg,)));
        assert!(game.refused_at_inspection(who, &game_calls::UNREGISTER_MAINER, (mainer(0),)));
        assert!(game.refused_at_inspection(who, &game_calls::ADD_CHALLENGE, (question("q2"),)));
        assert!(game.refused_at_inspection(who, &game_calls::CLOSE_CHALLENGE, (c.id,)));
        assert!(unauthorized(game.submissions_by_challenge(who, c.id)));
        assert!(unauthorized(game.call(who, &game_calls::LIST_CHALLENGES, (PageRequest::first(5),))));
        assert!(unauthorized(game.call(who, &game_calls::LIST_MAINERS, (PageRequest::first(5),))));
    }
    assert!(unauthorized(game.submissions_by_mainer(stranger(), mainer(0))));
    assert!(unauthorized(game.call(stranger(), &game_calls::MAINER_INFO, (mainer(0),))));
    // Registrars register, but do not manage challenges.
    assert!(game.refused_at_inspection(registrar(), &game_calls::ADD_CHALLENGE, (question("q3"),)));
    assert_eq!(game.counts(), GameCounts { mainers: 1, challenges: 1, open_challenges: 1, submissions: 1 });
    assert!(game.is_open(c.id), "is_challenge_open is for anyone");
}

#[test]
fn unregistered_principals_neither_take_nor_submit() {
    let env = new_env();
    let game = Game::install(&*env);
    let c = game.add_challenge(admin(), question("q")).unwrap();
    let answer = |id| SubmitRequest { challenge_id: id, answer: "a".into(), evidence: evidence() };
    assert!(game.refused_at_inspection(stranger(), &game_calls::GET_CHALLENGE, ()));
    assert!(game.refused_at_inspection(stranger(), &game_calls::SUBMIT, (answer(c.id),)));
    assert!(game.refused_at_inspection(admin(), &game_calls::GET_CHALLENGE, ()), "admins are not mAIners");

    game.register(registrar(), mainer(0)).unwrap();
    assert_eq!(game.get_challenge(mainer(0)).unwrap().id, c.id);
    game.call(registrar(), &game_calls::UNREGISTER_MAINER, (mainer(0),)).unwrap();
    assert!(game.refused_at_inspection(mainer(0), &game_calls::GET_CHALLENGE, ()));
    assert!(game.refused_at_inspection(mainer(0), &game_calls::SUBMIT, (answer(c.id),)));
    assert_eq!(game.counts().submissions, 0);
}

#[test]
fn submissions_are_refused_when_duplicate_oversize_or_badly_evidenced() {
    let env = new_env();
    let game = Game::install(&*env);
    let c = game.add_challenge(admin(), question("q")).unwrap();
    game.register(registrar(), mainer(0)).unwrap();
    game.submit(mainer(0), c.id, "first").unwrap();
    assert_eq!(game.submit(mainer(0), c.id, "second"), Err(GameError::AlreadySubmitted(c.id)));
    assert_eq!(game.submit(mainer(0), 99, "x"), Err(GameError::ChallengeNotFound(99)));

    game.register(registrar(), mainer(1)).unwrap();
    let big = "x".repeat(MAX_ANSWER_BYTES as usize + 1);
    assert_eq!(
        game.submit(mainer(1), c.id, &big),
        Err(GameError::AnswerTooLarge { bytes: MAX_ANSWER_BYTES + 1, max: MAX_ANSWER_BYTES })
    );
    let bad = SubmitRequest {
        challenge_id: c.id,
        answer: "fine".into(),
        evidence: ClaimedEvidence { prompt_sha256: "not a hash".into(), ..evidence() },
    };
    assert!(matches!(game.call(mainer(1), &game_calls::SUBMIT, (bad,)), Err(GameError::InvalidInput(_))));
    assert_eq!(game.counts().submissions, 1);
}

#[test]
fn a_challenge_closes_at_its_deadline_by_the_timer() {
    let env = new_env();
    let game = Game::install(&*env);
    let deadline = env.time_ns() + 5 * 60 * 1_000_000_000;
    let mut q = question("q");
    q.deadline_ns = Some(deadline);
    let c = game.add_challenge(admin(), q).unwrap();
    game.add_challenge(admin(), question("no deadline")).unwrap();
    env.advance_and_tick(4 * MINUTE, 3);
    assert!(game.is_open(c.id));

    env.advance_and_tick(2 * MINUTE, 5);
    assert!(!game.is_open(c.id));
    // Only the timer can have changed the stored state: no update was made.
    assert_eq!(game.counts().open_challenges, 1);
    let closed = game.challenges().into_iter().find(|x| x.id == c.id).unwrap();
    assert_eq!(closed.status, ChallengeStatus::Closed { reason: CloseReason::DeadlinePassed, at_ns: deadline });

    game.register(registrar(), mainer(0)).unwrap();
    assert_eq!(game.submit(mainer(0), c.id, "late"), Err(GameError::ChallengeClosed(c.id)));
    assert_ne!(game.get_challenge(mainer(0)).unwrap().id, c.id);
}

#[test]
fn everything_survives_an_upgrade() {
    let env = new_env();
    let game = Game::install(&*env);
    let deadline = env.time_ns() + 10 * 60 * 1_000_000_000;
    let mut timed = question("timed");
    timed.deadline_ns = Some(deadline);
    let timed = game.add_challenge(admin(), timed).unwrap();
    let plain = game.add_challenge(admin(), question("plain")).unwrap();
    for n in 0..3 {
        game.register(registrar(), mainer(n)).unwrap();
    }
    game.submit(mainer(0), plain.id, "answer").unwrap();
    let handed = game.get_challenge(mainer(1)).unwrap();
    let counts = game.counts();
    let submissions = game.submissions_by_challenge(admin(), plain.id).unwrap();
    let challenges = game.challenges();

    let upgrade = |arg: Vec<u8>| env.upgrade(controller(), game.id, &wasm("game_state"), arg);
    upgrade(candid::encode_one(GameStateArgs::Upgrade(Default::default())).unwrap()).unwrap();

    assert_eq!(game.counts(), counts);
    assert_eq!(game.submissions_by_challenge(admin(), plain.id).unwrap(), submissions);
    assert_eq!(game.challenges(), challenges);
    assert_eq!(game.get_challenge(mainer(1)).unwrap(), handed, "the hand-out is remembered");
    assert_eq!(game.submit(mainer(0), plain.id, "again"), Err(GameError::AlreadySubmitted(plain.id)));
    // The config is kept: admins, registrars and the answer limit.
    game.add_challenge(admin(), question("after the upgrade")).unwrap();
    game.register(registrar(), mainer(3)).unwrap();
    let big = "x".repeat(MAX_ANSWER_BYTES as usize + 1);
    assert!(matches!(game.submit(mainer(2), plain.id, &big), Err(GameError::AnswerTooLarge { .. })));

    // The deadline timer was armed again.
    env.advance_and_tick(11 * MINUTE, 5);
    // Open before: timed and plain; one was added since, and the timer closed timed.
    assert_eq!(game.counts().open_challenges, 2);
    assert!(game.challenges().iter().any(|c| c.id == timed.id && c.status != ChallengeStatus::Open));

    // With no argument everything stays; set fields change; Init is refused.
    upgrade(vec![]).unwrap();
    assert_eq!(game.counts().submissions, 1);
    let up = GameStateUpgrade { max_answer_bytes: Some(5_000), ..Default::default() };
    upgrade(candid::encode_one(Some(GameStateArgs::Upgrade(up))).unwrap()).unwrap();
    game.submit(mainer(2), plain.id, &big).unwrap();
    let init = GameStateInit { admins: vec![], registrars: vec![], max_answer_bytes: None };
    assert!(upgrade(candid::encode_one(GameStateArgs::Init(init)).unwrap()).is_err());
    let bad = GameStateUpgrade { max_answer_bytes: Some(0), ..Default::default() };
    assert!(upgrade(candid::encode_one(GameStateArgs::Upgrade(bad)).unwrap()).is_err());
    game.add_challenge(admin(), question("admins kept")).unwrap();
}

#[test]
fn install_needs_valid_init_arguments() {
    let env = new_env();
    let id = env.create_canister(controller());
    let install = |arg: Vec<u8>| env.install(controller(), id, &wasm("game_state"), arg);
    let bad = GameStateInit { admins: vec![admin()], registrars: vec![], max_answer_bytes: Some(0) };
    assert!(install(candid::encode_one(GameStateArgs::Init(bad)).unwrap()).is_err());
    assert!(install(candid::encode_one(GameStateArgs::Upgrade(Default::default())).unwrap()).is_err());
    assert!(install(vec![]).is_err(), "no half-configured canister");
    let good = GameStateInit { admins: vec![admin()], registrars: vec![], max_answer_bytes: None };
    install(candid::encode_one(GameStateArgs::Init(good)).unwrap()).unwrap();
}

/// With `already` submissions stored, adds more up to `stored` (1,000
/// mAIners answering challenge after challenge), then measures what
/// `samples` more cost on average, in instructions.
fn submit_cost(sim: &mut ic_sim::Simulator, game: Principal, already: u64, stored: u64, samples: u64) -> u64 {
    // Answers of a typical length for the small models.
    let answer = "The quick brown fox jumps over the lazy dog. ".repeat(6);
    let arg = |challenge_id: u64| {
        candid::encode_one(SubmitRequest { challenge_id, answer: answer.clone(), evidence: evidence() }).unwrap()
    };
    const MAINERS: u64 = 1_000;
    let mut done = already;
    // Submissions go challenge by challenge, a batch of messages per round.
    while done < stored + samples {
        let challenge = done / MAINERS + 1;
        if done.is_multiple_of(MAINERS) {
            let r: GameResult<Challenge> = candid::decode_one(
                &sim.update_call(admin(), game, "add_challenge", candid::encode_one(question("q")).unwrap()).unwrap(),
            )
            .unwrap();
            assert_eq!(r.unwrap().id, challenge);
        }
        let m = |i: u64| Principal::self_authenticating((i as u32).to_le_bytes());
        if done >= stored {
            let outcome = sim.update_call_traced(m(done % MAINERS), game, game_calls::SUBMIT.name, arg(challenge));
            outcome.result.expect("submit replies");
            done += 1;
            continue;
        }
        let batch = (MAINERS - done % MAINERS).min(stored - done);
        let ids: Vec<_> = (0..batch)
            .map(|i| sim.submit_update(m(done % MAINERS + i), game, game_calls::SUBMIT.name, arg(challenge)).unwrap())
            .collect();
        sim.tick();
        for id in ids {
            let reply = sim.await_update(id).result.unwrap();
            let r: GameResult<Submission> = candid::decode_one(&reply).unwrap();
            r.expect("stored");
        }
        sim.clear_executions();
        done += batch;
    }
    let total: u64 = sim.executions().filter(|e| e.entry == "update submit").map(|e| e.instructions).sum();
    sim.clear_executions();
    total / samples
}

/// The cost of a submission must not grow with what is stored (goal: within
/// 1.2x at 100,000 stored vs 1,000). Slow: `cargo test -- --ignored`.
#[test]
#[ignore]
fn submit_cost_does_not_grow_with_stored_submissions() {
    let env = new_env();
    let game = Game::install(&*env);
    let Some(mut sim) = env.simulator() else { return };
    for i in 0..1_000u32 {
        let m = Principal::self_authenticating(i.to_le_bytes());
        let req = RegisterMainerRequest { mainer: m, role: MainerRole::ShareAgent, owner: owner() };
        sim.update_call(registrar(), game.id, game_calls::REGISTER_MAINER.name, candid::encode_one(req).unwrap())
            .unwrap();
    }
    let small = submit_cost(&mut sim, game.id, 0, 1_000, 100);
    let large = submit_cost(&mut sim, game.id, 1_100, 100_000, 100);
    println!(
        "instructions per submit: {small} at 1,000 stored, {large} at 100,000 stored ({:.3}x)",
        large as f64 / small as f64
    );
    assert!((large as f64) < small as f64 * 1.2, "{large} vs {small}");
}
