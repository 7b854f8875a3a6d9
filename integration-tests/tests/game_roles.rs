//! The controller's game roles against the game state, with the `test_llm`
//! fixture as their LLMs (its `word_prefix` scripts what they say): two
//! Judges racing for the answers (one upgraded in the middle) score each
//! exactly once; a Judge whose LLM says no number reports the answer
//! unscorable with its raw output; a Challenger turns topics into
//! challenges and waits while enough are open; the creator makes a Judge
//! and registers it for its role, for admins only.

use candid::{CandidType, Encode, Principal};
use integration_tests::deploy::*;
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::MainerRole;
use mainer_types::calls::game_state as g;
use mainer_types::controller::{ControllerArgs, ControllerInit};
use mainer_types::game::{
    ChallengeStatus, ClaimedEvidence, GenerationSettings, NewChallenge, RegisterMainerRequest, SubmissionStatus,
    SubmitRequest,
};
use mainer_types::game_play::{GameAgentKind, GameSettings, NewTopic, ScoreOutcome};
use mainer_types::{Page, PageRequest};

#[derive(CandidType)]
struct FixtureConfigArg {
    answer_tokens: Option<u32>,
    word_prefix: Option<String>,
}

/// A test LLM whose every word starts with `prefix` ("4": the judge reads 4).
fn llm_saying(env: &dyn TestEnv, prefix: &str) -> Principal {
    let llm = deploy_test_llm(env, 4);
    let arg = FixtureConfigArg { answer_tokens: Some(3), word_prefix: Some(prefix.into()) };
    env.update(admin(), llm, "fixture_configure", Encode!(&arg).unwrap()).expect("the fixture is configured");
    llm
}

/// A controller in a game role with one LLM, registered with the game state for it.
fn game_role(env: &dyn TestEnv, game: Principal, role: MainerRole, llm: Principal) -> Principal {
    let id = env.create_canister(admin());
    let init = ControllerInit {
        role,
        game_state: game,
        creator: admin(),
        owner: owner(),
        share_service: None,
        settings: Some(test_settings()),
    };
    env.install(admin(), id, &wasm("mainer_controller"), candid::encode_one(ControllerArgs::Init(init)).unwrap())
        .expect("mainer_controller installs");
    add_llm(env, id, llm);
    let kind = if role == MainerRole::Judge { GameAgentKind::Judge } else { GameAgentKind::Challenger };
    env.call(admin(), game, &g::REGISTER_GAME_AGENT, (id, kind)).unwrap().expect("registered");
    id
}

fn settings(env: &dyn TestEnv, game: Principal, f: impl FnOnce(&mut GameSettings)) {
    let mut s = env.call(admin(), game, &g::GAME_SETTINGS, ()).unwrap();
    f(&mut s);
    env.call(admin(), game, &g::SET_GAME_SETTINGS, (s,)).unwrap().expect("settings");
}

/// A challenge with `n` answers from plain-principal mAIners.
fn answered_challenge(env: &dyn TestEnv, game: Principal, n: u8) -> u64 {
    answered_with(env, game, n, "Rivers bring salt")
}

fn answered_with(env: &dyn TestEnv, game: Principal, n: u8, answer: &str) -> u64 {
    let new = NewChallenge {
        question: "Why is the sea salty?".into(),
        settings: GenerationSettings::default(),
        max_submissions: None,
        deadline_ns: None,
    };
    let c = env.call(admin(), game, &g::ADD_CHALLENGE, (new,)).unwrap().unwrap();
    for i in 0..n {
        let m = user(100 + i);
        let reg = RegisterMainerRequest { mainer: m, role: MainerRole::Own, owner: user(150 + i) };
        env.call(admin(), game, &g::REGISTER_MAINER, (reg,)).unwrap().unwrap();
        let evidence = ClaimedEvidence {
            prompt_sha256: "12".repeat(32),
            llm_canister: user(99),
            model_sha256: None,
            llm_calls: 1,
            prompt_tokens: None,
            generated_tokens: None,
            cycles_spent: None,
        };
        let req = SubmitRequest { challenge_id: c.id, answer: format!("{answer}, says {i}."), evidence };
        env.call(m, game, &g::SUBMIT, (req,)).unwrap().unwrap();
    }
    c.id
}

fn judgements(env: &dyn TestEnv, game: Principal, id: u64) -> Vec<mainer_types::game_play::Judgement> {
    env.call(admin(), game, &g::JUDGEMENTS_BY_CHALLENGE, (id, PageRequest::first(100))).unwrap().unwrap().items
}

#[test]
fn two_judges_race_and_score_every_answer_once_one_upgraded_mid_score() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    settings(&*env, game, |s| s.scored_to_close = 6);
    let (llm_a, llm_b) = (llm_saying(&*env, "4"), llm_saying(&*env, "2"));
    let a = game_role(&*env, game, MainerRole::Judge, llm_a);
    let b = game_role(&*env, game, MainerRole::Judge, llm_b);
    let id = answered_challenge(&*env, game, 6);
    let mut upgraded = false;
    for _ in 0..300 {
        run_for(&*env, 1);
        let judged = judgements(&*env, game, id).len();
        if !upgraded && judged >= 1 {
            // Without a stop, in the middle of whatever judge A is doing.
            env.upgrade(admin(), a, &wasm("mainer_controller"), Encode!(&None::<ControllerArgs>).unwrap())
                .expect("judge A upgrades");
            upgraded = true;
        }
        if judged == 6 {
            break;
        }
    }
    assert!(upgraded);
    let all = judgements(&*env, game, id);
    assert_eq!(all.len(), 6, "{all:?}");
    let mut judged: Vec<Principal> = all.iter().map(|j| j.mainer).collect();
    judged.sort();
    judged.dedup();
    assert_eq!(judged.len(), 6, "every answer judged once");
    for j in &all {
        let expected = if j.judge == a { 4 } else { 2 };
        assert!(j.judge == a || j.judge == b, "{j:?}");
        assert_eq!(j.outcome, ScoreOutcome::Scored { score: expected }, "{j:?}");
        let e = j.evidence.as_ref().expect("evidence");
        assert_eq!(e.llm_canister, if j.judge == a { llm_a } else { llm_b });
        assert_eq!((e.prompt_sha256.len(), e.model_sha256.clone()), (64, Some("ab".repeat(32))));
    }
    assert!(all.iter().any(|j| j.judge == a) && all.iter().any(|j| j.judge == b), "both judged");
    let result = env.call(user(66), game, &g::CHALLENGE_RESULT, (id,)).unwrap().expect("finalized");
    assert_eq!(result.scored, 6);
}

#[test]
fn a_judge_whose_llm_says_no_number_reports_the_answer_unscorable_with_its_output() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    settings(&*env, game, |s| s.max_judging_attempts = 1);
    let llm = llm_saying(&*env, "");
    let judge = game_role(&*env, game, MainerRole::Judge, llm);
    let id = answered_challenge(&*env, game, 1);
    for _ in 0..120 {
        run_for(&*env, 1);
        if !judgements(&*env, game, id).is_empty() {
            break;
        }
    }
    let all = judgements(&*env, game, id);
    assert_eq!(all.len(), 1, "{all:?}");
    let ScoreOutcome::Unscorable { raw_output } = &all[0].outcome else { panic!("{all:?}") };
    assert!(!raw_output.trim().is_empty() && !raw_output.chars().any(|c| c.is_ascii_digit()), "{raw_output:?}");
    assert_eq!(all[0].judge, judge);
    let subs: Page<mainer_types::game::Submission> =
        env.call(admin(), game, &g::SUBMISSIONS_BY_CHALLENGE, (id, PageRequest::first(10))).unwrap().unwrap();
    assert_eq!(subs.items[0].status, SubmissionStatus::Unscorable);
}

#[test]
fn a_judge_whose_llm_refuses_the_prompt_reports_the_answer_unscorable_with_the_refusal() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    settings(&*env, game, |s| s.max_judging_attempts = 1);
    // The tiny model's context (128 tokens) cannot take the judge prompt.
    let gguf = integration_tests::factory::stories_model();
    let llm = deploy_llm_with_model(&*env, &gguf, 8);
    let judge = game_role(&*env, game, MainerRole::Judge, llm);
    env.update(admin(), llm, "grant_access", Encode!(&judge).unwrap()).expect("access granted");
    let long = "Rivers bring salt to the sea, and the sun takes the water away again ".repeat(4);
    let id = answered_with(&*env, game, 1, &long);
    for _ in 0..120 {
        run_for(&*env, 1);
        if !judgements(&*env, game, id).is_empty() {
            break;
        }
    }
    let all = judgements(&*env, game, id);
    assert_eq!(all.len(), 1, "not stuck retrying: {all:?}");
    let ScoreOutcome::Unscorable { raw_output } = &all[0].outcome else { panic!("{all:?}") };
    assert!(raw_output.contains("the LLM refused") && raw_output.contains("413"), "{raw_output}");
    assert_eq!(all[0].judge, judge);
}

#[test]
fn a_challenger_adds_challenges_from_topics_and_waits_while_enough_are_open() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    settings(&*env, game, |s| s.max_open_challenges = 2);
    let topic = NewTopic {
        text: "the sea".into(),
        weight: 1,
        settings: GenerationSettings { max_tokens: 16, ..GenerationSettings::default() },
        max_submissions: None,
        scored_to_close: None,
        open_seconds: None,
    };
    let t = env.call(admin(), game, &g::ADD_TOPIC, (topic,)).unwrap().unwrap();
    let llm = llm_saying(&*env, "");
    let challenger = game_role(&*env, game, MainerRole::Challenger, llm);
    run_for(&*env, 60);
    let list = |env: &dyn TestEnv| {
        env.call(admin(), game, &g::LIST_CHALLENGES, (PageRequest::first(100),)).unwrap().unwrap().items
    };
    let made = list(&*env);
    assert_eq!(made.len(), 2, "throttled at max_open_challenges: {made:?}");
    for c in &made {
        assert!(!c.question.trim().is_empty());
        assert_eq!(c.settings.max_tokens, 16, "the topic's settings");
        let origin = env.call(admin(), game, &g::CHALLENGE_ORIGIN, (c.id,)).unwrap().unwrap();
        assert_eq!((origin.author, origin.topic_id), (challenger, Some(t.id)));
        assert_eq!(origin.evidence.expect("evidence").llm_canister, llm);
    }
    // One closes: the challenger fills the room again, and no more.
    env.call(admin(), game, &g::CLOSE_CHALLENGE, (made[0].id,)).unwrap().unwrap();
    run_for(&*env, 60);
    let now = list(&*env);
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(now.iter().filter(|c| c.status == ChallengeStatus::Open).count(), 2);
}

#[test]
fn the_creator_makes_judges_for_admins_only_and_registers_them_for_their_role() {
    use integration_tests::factory::*;
    use mainer_types::creator::{ArtefactKind, CreatorArgs, CreatorError, CreatorUpgrade, JobStatus};
    let env = new_env();
    let f = deploy_factory(&*env, None);
    upload_artefact(
        &*env,
        f.creator,
        ArtefactKind::ControllerWasm,
        "mainer_controller.wasm",
        &wasm("mainer_controller"),
    );
    upload_artefact(&*env, f.creator, ArtefactKind::LlmWasm, "llm.wasm", &wasm("test_llm"));
    upload_artefact(&*env, f.creator, ArtefactKind::Model, "model.gguf", &stories_model());
    let job = create_mainer(&*env, f.creator, mainer_request(MainerRole::Judge, 1, None, 4)).expect("accepted");
    let done = run_until_job_done(&*env, f.creator, job.id, 600);
    assert_eq!(done.status, JobStatus::Done, "{done:?}");
    let judge = controller_of(&done);
    let agents = env.call(admin(), f.game, &g::LIST_GAME_AGENTS, (PageRequest::first(10),)).unwrap().unwrap();
    let listed: Vec<_> = agents.items.iter().map(|a| (a.agent, a.kind)).collect();
    assert_eq!(listed, vec![(judge, GameAgentKind::Judge)]);
    assert!(env.call(admin(), f.game, &g::MAINER_INFO, (judge,)).unwrap().is_err(), "a judge is not a mAIner");
    // An allow-listed caller that is not an admin orders mAIners, not judges.
    let allowed = user(77);
    let up = CreatorUpgrade { allowed_creators: Some(vec![allowed]), ..CreatorUpgrade::default() };
    env.upgrade(admin(), f.creator, &wasm("mainer_creator"), Encode!(&Some(CreatorArgs::Upgrade(up))).unwrap())
        .expect("the creator upgrades");
    let refused = env
        .call(
            allowed,
            f.creator,
            &mainer_types::calls::creator::CREATE_MAINER,
            (mainer_request(MainerRole::Judge, 1, None, 4),),
        )
        .unwrap();
    assert!(matches!(refused, Err(CreatorError::Unauthorized(_))), "{refused:?}");
}
