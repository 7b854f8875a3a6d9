//! A ShareService under load is fair and busy, and an idle mAIner costs
//! little (issue 11 item 13): many ShareAgents that compete for a small
//! queue are all served, in turn; every LLM of the pool works while work is
//! queued (an LLM that finishes takes the next item at once, not at the next
//! round); pulls that find nothing back off, and the mAIner still comes back
//! for a new challenge.

use candid::Principal;
use integration_tests::deploy::*;
use integration_tests::{TestEnv, TestEnvExt, new_env};
use mainer_types::MainerRole;
use mainer_types::controller::{ControllerResult, ControllerSettings, Counters, LlmStatus};

fn set_settings(env: &dyn TestEnv, controller: Principal, settings: ControllerSettings) {
    env.update_one::<_, ControllerResult<ControllerSettings>>(admin(), controller, "set_settings", settings)
        .unwrap()
        .expect("settings accepted");
}

fn counters(env: &dyn TestEnv, controller: Principal) -> Counters {
    env.query_one::<_, ControllerResult<Counters>>(admin(), controller, "counters", ()).unwrap().unwrap()
}

fn llms(env: &dyn TestEnv, controller: Principal) -> Vec<LlmStatus> {
    env.query_one::<_, ControllerResult<Vec<LlmStatus>>>(admin(), controller, "list_llms", ()).unwrap().unwrap()
}

/// A ShareService with `llm_count` test LLMs and `settings`, and `agents`
/// ShareAgents installed at the same moment with `agent_settings`.
fn share_fleet(
    env: &dyn TestEnv,
    llm_count: usize,
    settings: ControllerSettings,
    agents: usize,
    agent_settings: ControllerSettings,
) -> (Principal, Principal, Vec<Principal>) {
    let game = deploy_game_state(env);
    let service = deploy_controller(env, MainerRole::ShareService, game, None);
    set_settings(env, service, settings);
    for _ in 0..llm_count {
        let llm = deploy_test_llm(env, 4);
        add_llm(env, service, llm);
    }
    let agents: Vec<Principal> =
        (0..agents).map(|_| deploy_controller(env, MainerRole::ShareAgent, game, Some(service))).collect();
    for a in &agents {
        set_settings(env, *a, agent_settings.clone());
    }
    (game, service, agents)
}

/// Runs until `done` holds; the simulated seconds it took, or None after `max_seconds`.
fn seconds_until(env: &dyn TestEnv, max_seconds: u64, mut done: impl FnMut(&dyn TestEnv) -> bool) -> Option<u64> {
    for s in 0..max_seconds {
        if done(env) {
            return Some(s);
        }
        run_for(env, 1);
    }
    None
}

#[test]
fn no_share_agent_is_starved_when_many_compete_for_a_small_queue() {
    let env = new_env();
    // Ten agents, a queue of two, the default back-off (10 s doubling to 600 s).
    let service_settings = ControllerSettings { max_queue: 2, ..test_settings() };
    let agent_settings = ControllerSettings { retry_base_seconds: 10, retry_max_seconds: 600, ..test_settings() };
    let (game, _service, agents) = share_fleet(&*env, 1, service_settings, 10, agent_settings);
    for i in 0..3 {
        add_challenge(&*env, game, &format!("Question {i} for everyone"), 4);
    }
    let served = |env: &dyn TestEnv, n: u64| agents.iter().filter(|a| counters(env, **a).submissions >= n).count();
    // Two places, each agent comes back every 10 s: about two agents served every 10 s.
    let first = seconds_until(&*env, 600, |env| served(env, 1) == agents.len());
    assert!(first.is_some_and(|s| s <= 150), "every agent served once within 150 s: {first:?}, {}", served(&*env, 1));
    let all = seconds_until(&*env, 600, |env| served(env, 3) == agents.len());
    assert!(all.is_some(), "every agent answered every challenge: {} of {}", served(&*env, 3), agents.len());
}

#[test]
fn every_llm_of_the_pool_works_while_work_is_queued() {
    let env = new_env();
    // Rare processing rounds: an LLM that finishes takes the next item at
    // once, so the round's work does not wait for the next round.
    let service_settings = ControllerSettings { process_interval_seconds: 60, ..test_settings() };
    let (game, service, agents) = share_fleet(&*env, 3, service_settings, 6, test_settings());
    add_challenge(&*env, game, "Everyone asks this", 4);
    run_for(&*env, 55);
    assert_eq!(counters(&*env, service).deliveries, 0, "no processing round yet");
    run_for(&*env, 10);
    assert_eq!(counters(&*env, service).deliveries, 6, "all six answered in one round, not three per round");
    let answers: Vec<u64> = llms(&*env, service).iter().map(|l| l.answers).collect();
    assert_eq!(answers, [2, 2, 2], "round robin over the pool: every LLM worked");
    run_for(&*env, 15);
    assert!(agents.iter().all(|a| counters(&*env, *a).submissions == 1), "every agent submitted its answer");
}

#[test]
fn idle_pulls_back_off_and_a_new_challenge_is_still_taken() {
    let env = new_env();
    if env.simulator().is_none() {
        return; // counts the game state's messages: simulator only
    }
    let (game, _service, agents) = share_fleet(&*env, 1, test_settings(), 1, test_settings());
    let pulls = |env: &dyn TestEnv| {
        env.simulator()
            .unwrap()
            .executions()
            .filter(|e| e.canister == game && e.entry.contains("get_challenge"))
            .count()
    };
    env.simulator().unwrap().clear_executions();
    run_for(&*env, 1_200);
    // At a 10 s interval, 120 pulls in 20 minutes; backing off to 160 s, about 10.
    let idle = pulls(&*env);
    assert!((5..=15).contains(&idle), "{idle} pulls in 20 idle minutes");
    add_challenge(&*env, game, "Something new", 4);
    let taken = seconds_until(&*env, 400, |env| counters(env, agents[0]).submissions == 1);
    assert!(taken.is_some_and(|s| s <= 16 * 10 + 30), "seen within the longest wait: {taken:?}");
}
