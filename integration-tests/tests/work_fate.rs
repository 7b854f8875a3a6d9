//! A work item's fate never depends on another canister's outage: a stopped
//! or trapping LLM, a paused or slow ShareService and the controller's own
//! upgrades are retried without spending the item's give-up budget; an item
//! that does fail gives its challenge back so the mAIner moves on; `health`
//! reports a mAIner that has not submitted for a long time.

use candid::{Encode, Principal};
use integration_tests::deploy::*;
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::MainerRole;
use mainer_types::controller::{
    ControllerArgs, ControllerResult, ControllerSettings, ControllerUpgrade, HealthReport, WorkItem, WorkState,
};
use mainer_types::game::{Challenge, GameResult, Submission};
use mainer_types::{Page, PageRequest};

fn submissions_for(env: &dyn TestEnv, game: Principal, challenge: u64) -> Vec<Submission> {
    env.query_candid::<_, (GameResult<Page<Submission>>,)>(
        admin(),
        game,
        "submissions_by_challenge",
        (challenge, PageRequest::first(100)),
    )
    .unwrap()
    .0
    .unwrap()
    .items
}

fn recent_work(env: &dyn TestEnv, controller: Principal) -> Vec<WorkItem> {
    env.query_one::<_, ControllerResult<Page<WorkItem>>>(admin(), controller, "recent_work", PageRequest::first(100))
        .unwrap()
        .unwrap()
        .items
}

fn queue(env: &dyn TestEnv, controller: Principal) -> Vec<WorkItem> {
    env.query_one::<_, ControllerResult<Page<WorkItem>>>(admin(), controller, "queue", PageRequest::first(100))
        .unwrap()
        .unwrap()
        .items
}

fn set_settings(env: &dyn TestEnv, controller: Principal, settings: ControllerSettings) {
    env.update_one::<_, ControllerResult<ControllerSettings>>(admin(), controller, "set_settings", settings)
        .unwrap()
        .expect("settings accepted");
}

fn health(env: &dyn TestEnv, controller: Principal) -> HealthReport {
    env.query_one(user(9), controller, "health", ()).unwrap()
}

/// Runs until `done` holds; panics after `max_seconds` of simulated time.
fn run_until(env: &dyn TestEnv, max_seconds: u64, what: &str, mut done: impl FnMut(&dyn TestEnv) -> bool) {
    for _ in 0..max_seconds {
        if done(env) {
            return;
        }
        run_for(env, 1);
    }
    assert!(done(env), "{what}: not done after {max_seconds} simulated seconds");
}

/// One attempt only: any failure that counted would fail the item for good.
fn one_attempt() -> ControllerSettings {
    ControllerSettings { max_attempts: 1, ..test_settings() }
}

fn own(env: &dyn TestEnv, settings: ControllerSettings) -> (Principal, Principal, Principal) {
    let game = deploy_game_state(env);
    let controller = deploy_controller(env, MainerRole::Own, game, None);
    set_settings(env, controller, settings);
    let llm = deploy_test_llm(env, 4);
    add_llm(env, controller, llm);
    (game, controller, llm)
}

fn the_only_submission(env: &dyn TestEnv, game: Principal, c: &Challenge) -> Submission {
    let subs = submissions_for(env, game, c.id);
    assert_eq!(subs.len(), 1, "{subs:?}");
    subs.into_iter().next().unwrap()
}

#[test]
fn a_stopped_llm_delays_an_answer_but_never_fails_it() {
    let env = new_env();
    let (game, controller, llm) = own(&*env, one_attempt());
    env.stop(admin(), llm).unwrap();
    let c = add_challenge(&*env, game, "Are you awake?", 4);
    run_for(&*env, 120);
    let waiting = queue(&*env, controller);
    assert_eq!(waiting.len(), 1, "still queued, not failed: {:?}", recent_work(&*env, controller));
    assert_eq!(waiting[0].attempts, 0, "an outage spends no attempt");
    assert!(waiting[0].outages >= 1, "{:?}", waiting[0]);
    env.start(admin(), llm).unwrap();
    run_until(&*env, 700, "answer after the LLM is back", |env| submissions_for(env, game, c.id).len() == 1);
    assert_eq!(the_only_submission(&*env, game, &c).mainer, controller);
}

#[test]
fn a_failed_item_gives_its_challenge_back_and_the_mainer_answers_the_next() {
    let env = new_env();
    let (game, controller, llm) = own(&*env, one_attempt());
    // The LLM refuses the first call: with one attempt, that item fails for good.
    set_faults(&*env, llm, Faults { err_next_calls: 1, ..Default::default() });
    let first = add_challenge(&*env, game, "The one that fails", 4);
    let second = add_challenge(&*env, game, "The one after", 4);
    run_until(&*env, 120, "the second challenge answered", |env| submissions_for(env, game, second.id).len() == 1);
    assert!(submissions_for(&*env, game, first.id).is_empty());
    let failed = recent_work(&*env, controller).into_iter().find(|i| i.challenge.id == first.id).unwrap();
    assert!(matches!(failed.state, WorkState::Failed { .. }), "{failed:?}");
    assert!(health(&*env, controller).ready, "{:?}", health(&*env, controller));
}

#[test]
fn health_reports_a_mainer_that_has_not_submitted_for_long() {
    let env = new_env();
    let (game, controller, llm) = own(&*env, ControllerSettings { stall_alert_seconds: 60, ..test_settings() });
    env.stop(admin(), llm).unwrap();
    let c = add_challenge(&*env, game, "Anyone?", 4);
    run_for(&*env, 30);
    assert!(!health(&*env, controller).problems.iter().any(|p| p.contains("waited")));
    run_for(&*env, 60);
    let h = health(&*env, controller);
    assert!(!h.ready && h.problems.iter().any(|p| p.contains("no answer submitted")), "{h:?}");
    assert!(h.waiting_since_ns.is_some() && h.last_handed_on_ns.is_none());
    env.start(admin(), llm).unwrap();
    run_until(&*env, 700, "answered", |env| submissions_for(env, game, c.id).len() == 1);
    run_for(&*env, 15);
    let h = health(&*env, controller);
    assert!(h.ready, "{h:?}");
    assert!(h.last_handed_on_ns.is_some());
}

/// A ShareService with one LLM and one ShareAgent whose item may fail at the first counted failure.
fn share(env: &dyn TestEnv, agent_settings: ControllerSettings) -> (Principal, Principal, Principal) {
    let game = deploy_game_state(env);
    let service = deploy_controller(env, MainerRole::ShareService, game, None);
    add_llm(env, service, deploy_test_llm(env, 4));
    let agent = deploy_controller(env, MainerRole::ShareAgent, game, Some(service));
    set_settings(env, agent, agent_settings);
    (game, service, agent)
}

#[test]
fn pausing_the_share_service_never_fails_its_agents_work() {
    let env = new_env();
    let (game, service, agent) = share(&*env, one_attempt());
    env.update_one::<_, ControllerResult<()>>(admin(), service, "pause", ()).unwrap().unwrap();
    let c = add_challenge(&*env, game, "Paused?", 4);
    run_for(&*env, 90);
    let waiting = queue(&*env, agent);
    assert_eq!(waiting.len(), 1, "kept: {:?}", recent_work(&*env, agent));
    assert!(waiting[0].last_error.as_deref().unwrap_or("").contains("paused"), "{:?}", waiting[0]);
    assert_eq!(waiting[0].attempts, 0);
    env.update_one::<_, ControllerResult<()>>(admin(), service, "resume", ()).unwrap().unwrap();
    run_until(&*env, 700, "answered after resume", |env| submissions_for(env, game, c.id).len() == 1);
    assert_eq!(the_only_submission(&*env, game, &c).mainer, agent);
}

#[test]
fn a_slow_share_services_late_answer_is_submitted() {
    let env = new_env();
    // The agent expects an answer within 3 s; the service processes every 40 s.
    let (game, service, agent) = share(&*env, ControllerSettings { in_flight_timeout_seconds: 3, ..one_attempt() });
    set_settings(&*env, service, ControllerSettings { process_interval_seconds: 40, ..test_settings() });
    let c = add_challenge(&*env, game, "Take your time", 4);
    run_until(&*env, 300, "the late answer submitted", |env| submissions_for(env, game, c.id).len() == 1);
    assert_eq!(the_only_submission(&*env, game, &c).mainer, agent);
    let done = recent_work(&*env, agent);
    assert!(matches!(done[0].state, WorkState::Submitted { .. }), "{done:?}");
    assert_eq!(done[0].attempts, 0, "time-outs spend no attempt");
    let served = recent_work(&*env, service);
    assert!(
        matches!(served[0].state, WorkState::Delivered { .. }),
        "the service's work was not thrown away: {served:?}"
    );
}

#[derive(candid::CandidType, serde::Deserialize)]
struct FixtureStats {
    run_update_calls: u64,
}

fn run_update_calls(env: &dyn TestEnv, llm: Principal) -> u64 {
    env.query_one::<_, FixtureStats>(admin(), llm, "fixture_stats", ()).unwrap().run_update_calls
}

#[test]
fn upgrades_of_the_controller_mid_generation_never_fail_the_item() {
    let env = new_env();
    // Long answers (4 tokens per call), so a generation spans many rounds.
    let (game, controller, llm) = own(&*env, one_attempt());
    let c = add_challenge(&*env, game, "A question with several words to ingest first", 40);
    let up = Encode!(&Some(ControllerArgs::Upgrade(ControllerUpgrade::default()))).unwrap();
    for n in 0..3 {
        // Round by round until the LLM is in the middle of an answer, then
        // upgrade without stopping (the IC does not stop a canister for an upgrade).
        let before = run_update_calls(&*env, llm);
        let mut rounds = 0;
        while run_update_calls(&*env, llm) == before {
            env.advance_time(std::time::Duration::from_millis(100));
            env.tick();
            rounds += 1;
            assert!(rounds < 5_000, "upgrade {n}: the LLM never started");
        }
        env.upgrade(admin(), controller, &wasm("mainer_controller"), up.clone()).unwrap();
        assert!(submissions_for(&*env, game, c.id).is_empty(), "upgrade {n} came too late");
    }
    run_until(&*env, 700, "answered after the upgrades", |env| submissions_for(env, game, c.id).len() == 1);
    let done = recent_work(&*env, controller);
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(matches!(done[0].state, WorkState::Submitted { .. }), "{done:?}");
    assert_eq!(done[0].attempts, 0, "upgrades spend no attempt");
    // (An upgrade may land while the item waits between attempts, when the
    // old generation's last call reaches the LLM after the upgrade.)
    assert!(done[0].outages >= 2, "at least two upgrades hit a generation: {:?}", done[0]);
}
