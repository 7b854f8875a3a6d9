//! The mAIner controller in its three roles, with the game state and test
//! LLMs: end to end, under faults, across upgrades, and its access rules.

use std::collections::BTreeSet;

use candid::{Encode, Principal};
use integration_tests::deploy::*;
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::calls::{controller as controller_calls, game_state as game_calls};
use mainer_types::controller::{
    ControllerArgs, ControllerError, ControllerResult, ControllerUpgrade, Counters, HealthReport, StepReport, WorkItem,
    WorkState,
};
use mainer_types::game::{Challenge, GameResult, GameStateArgs, GameStateUpgrade, Submission};
use mainer_types::{MainerRole, Page, PageRequest};
use sha2::{Digest, Sha256};

fn submissions_for(env: &dyn TestEnv, game: Principal, challenge: u64) -> Vec<Submission> {
    let page: GameResult<Page<Submission>> = env
        .query_candid(admin(), game, "submissions_by_challenge", (challenge, PageRequest::first(500)))
        .map(|(p,)| p)
        .unwrap();
    page.unwrap().items
}

fn counters(env: &dyn TestEnv, controller: Principal) -> Counters {
    env.call(admin(), controller, &controller_calls::COUNTERS, ()).unwrap().unwrap()
}

fn recent_work(env: &dyn TestEnv, controller: Principal) -> Vec<WorkItem> {
    env.call(admin(), controller, &controller_calls::RECENT_WORK, (PageRequest::first(100),)).unwrap().unwrap().items
}

fn queue(env: &dyn TestEnv, controller: Principal) -> Vec<WorkItem> {
    env.call(admin(), controller, &controller_calls::QUEUE, (PageRequest::first(100),)).unwrap().unwrap().items
}

#[derive(candid::CandidType)]
struct AddLlmRequest {
    canister: Principal,
    model_sha256: Option<String>,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Runs until `done` holds, at most `max_seconds` of simulated time.
fn run_until(env: &dyn TestEnv, max_seconds: u64, mut done: impl FnMut(&dyn TestEnv) -> bool) -> u64 {
    for s in 0..max_seconds {
        if done(env) {
            return s;
        }
        run_for(env, 1);
    }
    assert!(done(env), "not done after {max_seconds} simulated seconds");
    max_seconds
}

struct Own {
    game: Principal,
    controller: Principal,
    llms: Vec<Principal>,
}

fn own_with_llms(env: &dyn TestEnv, n_llms: usize) -> Own {
    let game = deploy_game_state(env);
    let controller = deploy_controller(env, MainerRole::Own, game, None);
    let llms: Vec<Principal> = (0..n_llms).map(|_| deploy_test_llm(env, 4)).collect();
    for llm in &llms {
        add_llm(env, controller, *llm);
    }
    Own { game, controller, llms }
}

#[test]
fn an_own_mainer_answers_every_challenge_with_evidence() {
    let env = new_env();
    let w = own_with_llms(&*env, 2);
    let challenges: Vec<Challenge> =
        (0..3).map(|i| add_challenge(&*env, w.game, &format!("Tell a story about number {i}"), 8)).collect();
    run_until(&*env, 120, |env| challenges.iter().all(|c| submissions_for(env, w.game, c.id).len() == 1));
    for c in &challenges {
        let s = &submissions_for(&*env, w.game, c.id)[0];
        assert_eq!(s.mainer, w.controller);
        assert_eq!(s.owner, owner());
        assert!(!s.answer.is_empty());
        assert_eq!(s.evidence.answer_sha256, sha256_hex(&s.answer), "the game state hashed the answer itself");
        assert_eq!(s.evidence.prompt_sha256, sha256_hex(&c.question), "plain prompt = the question");
        assert!(w.llms.contains(&s.evidence.llm_canister));
        assert!(s.evidence.llm_calls >= 3, "new_chat, ingestion and generation calls");
        assert_eq!(s.evidence.model_sha256.as_deref(), Some("ab".repeat(32).as_str()));
    }
    let c = counters(&*env, w.controller);
    assert_eq!((c.challenges_pulled, c.answers_generated, c.submissions), (3, 3, 3));
    let used: BTreeSet<Principal> =
        challenges.iter().map(|c| submissions_for(&*env, w.game, c.id)[0].evidence.llm_canister).collect();
    assert_eq!(used.len(), 2, "both LLMs were used");
}

#[test]
fn a_share_service_answers_for_its_share_agents_once_each() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let service = deploy_controller(&*env, MainerRole::ShareService, game, None);
    for _ in 0..2 {
        let llm = deploy_test_llm(&*env, 4);
        add_llm(&*env, service, llm);
    }
    let agents: Vec<Principal> =
        (0..3).map(|_| deploy_controller(&*env, MainerRole::ShareAgent, game, Some(service))).collect();
    let challenges: Vec<Challenge> = (0..2).map(|i| add_challenge(&*env, game, &format!("Question {i}"), 6)).collect();
    run_until(&*env, 240, |env| challenges.iter().all(|c| submissions_for(env, game, c.id).len() == 3));
    for c in &challenges {
        let by: Vec<Principal> = submissions_for(&*env, game, c.id).iter().map(|s| s.mainer).collect();
        let unique: BTreeSet<Principal> = by.iter().copied().collect();
        assert_eq!(unique, agents.iter().copied().collect(), "each ShareAgent submitted challenge {} once", c.id);
    }
    let service_counters = counters(&*env, service);
    assert_eq!(service_counters.deliveries, 6);
    assert_eq!(service_counters.submissions, 0, "the ShareService never submits itself");
    for agent in &agents {
        assert_eq!(counters(&*env, *agent).submissions, 2);
    }
}

#[derive(candid::CandidType, serde::Deserialize)]
struct FixtureStats {
    run_update_calls: u64,
}

fn run_update_calls(env: &dyn TestEnv, llm: Principal) -> u64 {
    env.query_one::<_, FixtureStats>(admin(), llm, "fixture_stats", ()).unwrap().run_update_calls
}

#[test]
fn an_llm_that_traps_mid_answer_is_rested_and_the_answer_comes_from_the_other() {
    let env = new_env();
    let w = own_with_llms(&*env, 2);
    let c = add_challenge(&*env, w.game, "A question with several words to ingest", 6);
    // Round by round until the first LLM is in the middle of the answer...
    let mut rounds = 0;
    while run_update_calls(&*env, w.llms[0]) == 0 {
        env.advance_time(std::time::Duration::from_millis(100));
        env.tick();
        rounds += 1;
        assert!(rounds < 2_000, "the first LLM never started");
    }
    // ...then every further call to it traps.
    set_faults(&*env, w.llms[0], Faults { trap_next_calls: 1_000, ..Default::default() });
    run_until(&*env, 120, |env| submissions_for(env, w.game, c.id).len() == 1);
    let s = &submissions_for(&*env, w.game, c.id)[0];
    assert_eq!(s.evidence.llm_canister, w.llms[1], "answered by the other LLM");
    let llms = env
        .query_one::<_, ControllerResult<Vec<mainer_types::controller::LlmStatus>>>(
            admin(),
            w.controller,
            "list_llms",
            (),
        )
        .unwrap()
        .unwrap();
    let bad = llms.iter().find(|l| l.canister == w.llms[0]).unwrap();
    assert!(bad.failures >= 1 && bad.last_error.as_deref().unwrap_or("").contains("trap"), "{bad:?}");
    let item = &recent_work(&*env, w.controller)[0];
    assert_eq!((item.attempts, item.outages), (0, 1), "one trapped attempt, which spends no budget, then success");
}

#[test]
fn answers_wait_while_the_game_state_is_stopped_and_none_is_lost() {
    let env = new_env();
    let w = own_with_llms(&*env, 1);
    let challenges: Vec<Challenge> = (0..2).map(|i| add_challenge(&*env, w.game, &format!("Q{i}"), 4)).collect();
    // Stop the game state as soon as the second challenge is pulled.
    run_until(&*env, 60, |env| counters(env, w.controller).challenges_pulled == 2);
    env.stop(admin(), w.game).unwrap();
    let submitted_before = counters(&*env, w.controller).submissions;
    assert_eq!(submitted_before, 1, "the first answer went through before the stop");
    run_for(&*env, 60);
    assert_eq!(counters(&*env, w.controller).submissions, submitted_before);
    let waiting = queue(&*env, w.controller);
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].state, WorkState::Answered, "the answer is kept");
    assert!(waiting[0].last_error.as_deref().unwrap_or("").contains("submit failed"), "{:?}", waiting[0].last_error);
    env.start(admin(), w.game).unwrap();
    run_until(&*env, 120, |env| challenges.iter().all(|c| submissions_for(env, w.game, c.id).len() == 1));
    assert_eq!(counters(&*env, w.controller).submissions, 2);
}

#[test]
fn a_share_agent_keeps_its_challenge_while_the_share_service_is_stopped() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let service = deploy_controller(&*env, MainerRole::ShareService, game, None);
    add_llm(&*env, service, deploy_test_llm(&*env, 4));
    let agent = deploy_controller(&*env, MainerRole::ShareAgent, game, Some(service));
    env.stop(admin(), service).unwrap();
    let c = add_challenge(&*env, game, "Are you there?", 4);
    run_for(&*env, 40);
    let waiting = queue(&*env, agent);
    assert_eq!(waiting.len(), 1, "the challenge is kept");
    assert!(waiting[0].last_error.as_deref().unwrap_or("").contains("unreachable"), "{:?}", waiting[0].last_error);
    env.start(admin(), service).unwrap();
    run_until(&*env, 120, |env| submissions_for(env, game, c.id).len() == 1);
    assert_eq!(submissions_for(&*env, game, c.id)[0].mainer, agent);
}

/// Stop, upgrade, start: as the creator's fleet upgrade does, so no call
/// is outstanding when the code changes.
fn upgrade_controller(env: &dyn TestEnv, id: Principal, arg: Vec<u8>) {
    env.stop(admin(), id).unwrap();
    env.upgrade(admin(), id, &wasm("mainer_controller"), arg).unwrap();
    env.start(admin(), id).unwrap();
}

#[test]
fn upgrades_mid_flow_lose_nothing_and_keep_one_set_of_timers() {
    let env = new_env();
    let w = own_with_llms(&*env, 2);
    let challenges: Vec<Challenge> =
        (0..4).map(|i| add_challenge(&*env, w.game, &format!("Upgrade question {i}"), 8)).collect();
    run_until(&*env, 60, |env| counters(env, w.controller).challenges_pulled >= 2);
    let up = ControllerArgs::Upgrade(ControllerUpgrade::default());
    upgrade_controller(&*env, w.controller, Encode!(&Some(up)).unwrap());
    let game_up = GameStateArgs::Upgrade(GameStateUpgrade::default());
    env.upgrade(admin(), w.game, &wasm("game_state"), Encode!(&game_up).unwrap()).unwrap();
    // A second upgrade must not add a second set of timers.
    upgrade_controller(&*env, w.controller, Encode!(&None::<ControllerArgs>).unwrap());
    let health: HealthReport = env.call(user(9), w.controller, &controller_calls::HEALTH, ()).unwrap();
    assert!(health.timers_armed);
    let pulled_before = counters(&*env, w.controller).challenges_pulled;
    run_for(&*env, 30);
    let pulled = counters(&*env, w.controller).challenges_pulled - pulled_before;
    assert!(pulled <= 3, "30 s with a 10 s pull interval pulls at most 3 challenges, got {pulled}");
    run_until(&*env, 200, |env| challenges.iter().all(|c| submissions_for(env, w.game, c.id).len() == 1));
    assert_eq!(counters(&*env, w.controller).submissions, 4);
}

#[test]
fn a_challenge_that_closes_meanwhile_is_dropped_with_its_reason() {
    let env = new_env();
    let w = own_with_llms(&*env, 1);
    env.call(admin(), w.controller, &controller_calls::PAUSE, ()).unwrap().unwrap();
    let c = add_challenge(&*env, w.game, "Soon closed", 4);
    let pulled: StepReport = env.call(admin(), w.controller, &controller_calls::TRIGGER_PULL, ()).unwrap().unwrap();
    assert!(pulled.notes.iter().any(|n| n.contains("paused")), "{pulled:?}");
    env.call(admin(), w.controller, &controller_calls::RESUME, ()).unwrap().unwrap();
    let pulled: StepReport = env.call(admin(), w.controller, &controller_calls::TRIGGER_PULL, ()).unwrap().unwrap();
    assert_eq!(pulled.finished, 1, "{pulled:?}");
    env.call(admin(), w.game, &game_calls::CLOSE_CHALLENGE, (c.id,)).unwrap().unwrap();
    let _: StepReport = env.call(admin(), w.controller, &controller_calls::TRIGGER_PROCESS, ()).unwrap().unwrap();
    let done = recent_work(&*env, w.controller);
    assert_eq!(done.len(), 1);
    match &done[0].state {
        WorkState::Dropped { reason } => assert!(reason.contains("closed"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(submissions_for(&*env, w.game, c.id).is_empty());
}

#[test]
fn strangers_are_refused_by_every_admin_endpoint() {
    let env = new_env();
    let w = own_with_llms(&*env, 1);
    let stranger = user(66);
    let c = w.controller;
    let llm = w.llms[0];
    // Ingress updates are refused at inspection already (see tests/inspect.rs),
    // queries by the endpoint's own check.
    let refused = |method: &str, arg: Vec<u8>, query: bool| {
        let reply = if query { env.query(stranger, c, method, arg) } else { env.update(stranger, c, method, arg) };
        match reply {
            Err(reject) => assert!(!query && reject.error_code == Some("IC0406"), "{method}: {reject:?}"),
            Ok(reply) => {
                let decoded = candid::decode_one::<Result<candid::Reserved, ControllerError>>(&reply).unwrap();
                assert!(matches!(decoded, Err(ControllerError::Unauthorized(_))), "{method}: {decoded:?}");
            }
        }
    };
    let page = PageRequest::first(10);
    refused("add_llm", Encode!(&AddLlmRequest { canister: user(7), model_sha256: None }).unwrap(), false);
    refused("remove_llm", Encode!(&llm).unwrap(), false);
    refused("set_llm_draining", Encode!(&llm, &true).unwrap(), false);
    refused("add_share_agent", Encode!(&user(7)).unwrap(), false);
    refused("remove_share_agent", Encode!(&user(7)).unwrap(), false);
    refused("check_llms", Encode!().unwrap(), false);
    refused("trigger_pull", Encode!().unwrap(), false);
    refused("trigger_forward", Encode!().unwrap(), false);
    refused("trigger_process", Encode!().unwrap(), false);
    refused("trigger_submit", Encode!().unwrap(), false);
    refused("pause", Encode!().unwrap(), false);
    refused("resume", Encode!().unwrap(), false);
    refused("set_settings", Encode!(&test_settings()).unwrap(), false);
    refused("list_llms", Encode!().unwrap(), true);
    refused("list_share_agents", Encode!(&page).unwrap(), true);
    refused("config", Encode!().unwrap(), true);
    refused("queue", Encode!(&page).unwrap(), true);
    refused("recent_work", Encode!(&page).unwrap(), true);
    refused("counters", Encode!().unwrap(), true);
    // Share endpoints: only registered agents / the own ShareService.
    let game = w.game;
    let service = deploy_controller(&*env, MainerRole::ShareService, game, None);
    let agent = deploy_controller(&*env, MainerRole::ShareAgent, game, Some(service));
    let challenge = add_challenge(&*env, game, "q", 4);
    let req = mainer_types::controller::ServiceRequest { challenge: (&challenge).into() };
    let r = env.call(stranger, service, &controller_calls::ENQUEUE_CHALLENGE, (req,));
    assert!(r.as_ref().is_err_and(|e| e.error_code == Some("IC0406")), "{r:?}");
    let delivery = mainer_types::controller::AnswerDelivery {
        challenge_id: challenge.id,
        outcome: mainer_types::controller::DeliveryOutcome::Failed("x".into()),
    };
    let r = env.call(stranger, agent, &controller_calls::DELIVER_ANSWER, (delivery,));
    assert!(r.as_ref().is_err_and(|e| e.error_code == Some("IC0406")), "{r:?}");
    // The owner is an admin.
    let ok: ControllerResult<Counters> = env.call(owner(), c, &controller_calls::COUNTERS, ()).unwrap();
    assert!(ok.is_ok());
}

#[test]
fn an_unregistered_controller_cannot_take_challenges() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let id = env.create_canister(admin());
    let init = mainer_types::controller::ControllerInit {
        role: MainerRole::Own,
        game_state: game,
        creator: admin(),
        owner: owner(),
        share_service: None,
        settings: Some(test_settings()),
    };
    env.install(admin(), id, &wasm("mainer_controller"), Encode!(&ControllerArgs::Init(init)).unwrap()).unwrap();
    add_challenge(&*env, game, "for registered mAIners only", 4);
    let report: StepReport = env.call(admin(), id, &controller_calls::TRIGGER_PULL, ()).unwrap().unwrap();
    assert_eq!(report.finished, 0);
    assert!(report.notes.iter().any(|n| n.contains("not a registered")), "{report:?}");
}

#[test]
fn invalid_settings_are_refused() {
    let env = new_env();
    let w = own_with_llms(&*env, 1);
    let zero = mainer_types::controller::ControllerSettings { process_interval_seconds: 0, ..test_settings() };
    let r: ControllerResult<mainer_types::controller::ControllerSettings> =
        env.call(admin(), w.controller, &controller_calls::SET_SETTINGS, (zero,)).unwrap();
    assert!(matches!(r, Err(mainer_types::controller::ControllerError::InvalidInput(_))), "{r:?}");
    // A ShareAgent without a ShareService cannot even be installed.
    let id = env.create_canister(admin());
    let init = mainer_types::controller::ControllerInit {
        role: MainerRole::ShareAgent,
        game_state: w.game,
        creator: admin(),
        owner: owner(),
        share_service: None,
        settings: None,
    };
    assert!(
        env.install(admin(), id, &wasm("mainer_controller"), Encode!(&ControllerArgs::Init(init)).unwrap()).is_err()
    );
}
