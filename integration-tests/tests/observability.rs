//! `/logs` and `/metrics` over `http_request` on every canister, as the IC's
//! HTTP gateway calls them (anonymously): metrics agree with what the
//! canisters' own queries say, and steps, retries, refusals and injected
//! faults show up in the logs.

use candid::Principal;
use integration_tests::deploy::*;
use integration_tests::factory::{deploy_factory, stories_model, upload_artefact};
use integration_tests::{TestEnv, TestEnvExt, new_env};
use mainer_types::MainerRole;
use mainer_types::controller::{ControllerResult, Counters};
use mainer_types::creator::ArtefactKind;
use mainer_types::game::{Challenge, GameCounts, GameResult};
use mainer_types::http::{HttpRequest, HttpResponse};
use mainer_types::llama_cpp::{FileUploadInputRecord, FileUploadRecordResult};
use serde_json::Value;

fn get(env: &dyn TestEnv, canister: Principal, url: &str) -> HttpResponse {
    env.query_one(Principal::anonymous(), canister, "http_request", HttpRequest::get(url))
        .unwrap_or_else(|e| panic!("http_request {url}: {e:?}"))
}

fn metrics(env: &dyn TestEnv, canister: Principal) -> String {
    let resp = get(env, canister, "/metrics");
    assert_eq!(resp.status_code, 200);
    assert_eq!(resp.header("content-type"), Some("text/plain; version=0.0.4"));
    String::from_utf8(resp.body.to_vec()).unwrap()
}

/// The value of the sample `series` (name, with its labels if any).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

/// The messages of `/logs?{query}`, oldest first.
fn log_messages(env: &dyn TestEnv, canister: Principal, query: &str) -> Vec<String> {
    let resp = get(env, canister, &format!("/logs?{query}"));
    assert_eq!(resp.status_code, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let v: Value = serde_json::from_slice(&resp.body).unwrap();
    v["entries"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap().to_string()).collect()
}

fn has(messages: &[String], part: &str) -> bool {
    messages.iter().any(|m| m.contains(part))
}

fn counters(env: &dyn TestEnv, controller: Principal) -> Counters {
    env.query_one::<_, ControllerResult<Counters>>(admin(), controller, "counters", ()).unwrap().unwrap()
}

/// The fields of the fixture's `fixture_stats` that these tests read.
#[derive(candid::CandidType, serde::Deserialize)]
struct FixtureStats {
    new_chat_calls: u64,
    run_update_calls: u64,
}

struct Own {
    game: Principal,
    controller: Principal,
    llm: Principal,
}

fn own_mainer(env: &dyn TestEnv) -> Own {
    let game = deploy_game_state(env);
    let controller = deploy_controller(env, MainerRole::Own, game, None);
    let llm = deploy_test_llm(env, 4);
    add_llm(env, controller, llm);
    Own { game, controller, llm }
}

fn run_until(env: &dyn TestEnv, max_seconds: u64, mut done: impl FnMut(&dyn TestEnv) -> bool) {
    for _ in 0..max_seconds {
        if done(env) {
            return;
        }
        run_for(env, 1);
    }
    assert!(done(env), "not done after {max_seconds} simulated seconds");
}

#[test]
fn an_own_mainers_metrics_match_its_state_and_its_steps_are_logged() {
    let env = new_env();
    let w = own_mainer(&*env);
    let challenge = add_challenge(&*env, w.game, "Tell a story about a red ball", 8);
    run_until(&*env, 120, |env| counters(env, w.controller).submissions == 1);

    let c = counters(&*env, w.controller);
    let m = metrics(&*env, w.controller);
    assert_eq!(sample(&m, "controller_submissions_total"), c.submissions as f64);
    assert_eq!(sample(&m, "controller_answers_generated_total"), c.answers_generated as f64);
    assert_eq!(sample(&m, "controller_challenges_pulled_total"), c.challenges_pulled as f64);
    assert_eq!(sample(&m, "controller_llm_calls_total"), c.llm_calls as f64);
    assert_eq!(
        sample(&m, "controller_instructions_per_answer"),
        (c.generation_instructions / c.answers_generated) as f64
    );
    assert!(sample(&m, "controller_instructions_per_answer") > 0.0);
    assert_eq!(sample(&m, "controller_work_items{state=\"queued\"}"), 0.0);
    assert_eq!(sample(&m, "controller_history_items"), 1.0);
    assert_eq!(sample(&m, "controller_llms{health=\"healthy\"}"), 1.0);
    assert_eq!(sample(&m, &format!("controller_llm_answers_total{{llm=\"{}\"}}", w.llm)), 1.0);
    let cycles = sample(&m, "canister_cycles_balance");
    let actual = env.cycle_balance(w.controller) as f64;
    assert!(cycles > 0.0 && (cycles - actual).abs() / actual < 0.01, "{cycles} vs {actual}");
    assert!(sample(&m, "canister_heap_memory_bytes") >= 65_536.0);
    assert!(sample(&m, "canister_stable_memory_bytes") > 0.0, "the controller keeps its state in stable memory");

    let logs = log_messages(&*env, w.controller, "priority=INFO");
    assert!(has(&logs, "installed as Own"), "{logs:?}");
    assert!(has(&logs, &format!("queued challenge {}", challenge.id)), "{logs:?}");
    assert!(has(&logs, "submitted"), "{logs:?}");

    let counts: GameCounts = env.query_one(admin(), w.game, "counts", ()).unwrap();
    let g = metrics(&*env, w.game);
    assert_eq!(sample(&g, "game_mainers"), counts.mainers as f64);
    assert_eq!(sample(&g, "game_submissions"), counts.submissions as f64);
    assert_eq!(sample(&g, "game_open_challenges"), counts.open_challenges as f64);
    assert_eq!((counts.mainers, counts.submissions), (1, 1));
    let game_logs = log_messages(&*env, w.game, "");
    assert!(has(&game_logs, &format!("registered {}", w.controller)), "{game_logs:?}");
    assert!(has(&game_logs, &format!("handed out challenge {}", challenge.id)), "{game_logs:?}");
    assert!(has(&game_logs, &format!("answer to challenge {} accepted", challenge.id)), "{game_logs:?}");

    let stats: FixtureStats = env.query_one(admin(), w.llm, "fixture_stats", ()).unwrap();
    let t = metrics(&*env, w.llm);
    assert_eq!(sample(&t, "test_llm_calls_total{method=\"run_update\"}"), stats.run_update_calls as f64);
    assert_eq!(sample(&t, "test_llm_calls_total{method=\"new_chat\"}"), stats.new_chat_calls as f64);
    assert!(stats.run_update_calls > 0);
}

#[test]
fn an_injected_llm_fault_shows_up_in_the_logs_and_the_failure_metrics() {
    let env = new_env();
    let w = own_mainer(&*env);
    let since = env.time_ns();
    set_faults(&*env, w.llm, Faults { err_next_calls: 1, ..Default::default() });
    add_challenge(&*env, w.game, "A question that fails once", 8);
    run_until(&*env, 240, |env| counters(env, w.controller).submissions == 1);

    let warnings = log_messages(&*env, w.controller, &format!("priority=WARN&since={since}"));
    assert!(has(&warnings, &format!("LLM {} failed", w.llm)), "{warnings:?}");
    assert!(has(&warnings, "item 0: try 1 failed"), "{warnings:?}");
    assert!(has(&log_messages(&*env, w.llm, "priority=WARN"), "injected error"));

    let c = counters(&*env, w.controller);
    assert_eq!(c.generation_failures, 1);
    let m = metrics(&*env, w.controller);
    assert_eq!(sample(&m, "controller_generation_failures_total"), 1.0);
    assert_eq!(sample(&m, &format!("controller_llm_failures_total{{llm=\"{}\"}}", w.llm)), 1.0);
    assert_eq!(sample(&m, "canister_log_entries{priority=\"WARN\"}"), warnings.len() as f64);
    let t = metrics(&*env, w.llm);
    assert_eq!(sample(&t, "test_llm_injected_faults_total{kind=\"error\"}"), 1.0);
}

/// Strangers' updates stop at inspection (free, and unlogged: inspection
/// keeps no state); refusals after it are logged.
#[test]
fn refusals_past_inspection_are_logged_and_counted() {
    let env = new_env();
    let w = own_mainer(&*env);
    let r = env.update_one::<_, GameResult<Challenge>>(admin(), w.game, "close_challenge", 999u64);
    assert!(matches!(r, Ok(Err(_))), "{r:?}");
    let warnings = log_messages(&*env, w.game, "priority=WARN");
    assert!(has(&warnings, &format!("close_challenge by {} refused", admin())), "{warnings:?}");
    assert_eq!(sample(&metrics(&*env, w.game), "game_refused_calls_total"), 1.0);

    // An LLM that refuses the controller: both sides say so.
    set_faults(&*env, w.llm, Faults { refuse_access: true, ..Default::default() });
    add_challenge(&*env, w.game, "Nobody will answer this", 8);
    run_until(&*env, 60, |env| counters(env, w.controller).generation_failures >= 1);
    assert!(has(&log_messages(&*env, w.llm, "priority=WARN"), "refused: access denied"));
    assert!(has(&log_messages(&*env, w.controller, "priority=WARN"), &format!("LLM {} failed", w.llm)));
}

#[test]
fn our_llm_canister_reports_its_model_calls_and_refused_uploads() {
    let env = new_env();
    let llm = deploy_llm_with_model(&*env, &stories_model(), 8);
    let m = metrics(&*env, llm);
    assert_eq!(sample(&m, "llm_model_loaded"), 1.0);
    assert_eq!(sample(&m, "llm_calls_total{method=\"load_model\",outcome=\"ok\"}"), 1.0);
    assert!(sample(&m, "llm_calls_total{method=\"file_upload_chunk\",outcome=\"ok\"}") >= 1.0);
    assert!(has(&log_messages(&*env, llm, "priority=INFO"), "model loaded"));

    // A chunk past the end of a new file's first chunk is refused, and says so.
    let bad = FileUploadInputRecord { filename: "x/y.bin".into(), chunk: vec![1; 4], chunksize: 4, offset: 1_000 };
    let r: FileUploadRecordResult = env.update_one(admin(), llm, "file_upload_chunk", bad).unwrap();
    assert!(matches!(r, FileUploadRecordResult::Err(_)), "{r:?}");
    assert!(has(&log_messages(&*env, llm, "priority=WARN"), "file_upload_chunk by"));
    let m = metrics(&*env, llm);
    assert_eq!(sample(&m, "llm_calls_total{method=\"file_upload_chunk\",outcome=\"error\"}"), 1.0);
}

#[test]
fn the_creator_reports_its_store_and_jobs() {
    let env = new_env();
    let f = deploy_factory(&*env, None);
    let m = metrics(&*env, f.creator);
    assert_eq!(sample(&m, "creator_artefacts"), 0.0);
    assert_eq!(sample(&m, "creator_jobs{status=\"running\"}"), 0.0);
    let a = upload_artefact(&*env, f.creator, ArtefactKind::Model, "a model", b"some model bytes");
    assert_eq!(sample(&metrics(&*env, f.creator), "creator_artefacts"), 1.0);
    assert!(has(&log_messages(&*env, f.creator, "priority=INFO"), &format!("stored as artefact {}", a.sha256)));
}

#[test]
fn every_canister_refuses_bad_requests_with_the_reason() {
    let env = new_env();
    let w = own_mainer(&*env);
    let f = deploy_factory(&*env, None);
    for canister in [w.game, w.controller, w.llm, f.creator] {
        assert_eq!(get(&*env, canister, "/nothing").status_code, 404);
        let resp = get(&*env, canister, "/logs?priority=LOUD");
        assert_eq!(resp.status_code, 400);
        assert!(String::from_utf8_lossy(&resp.body).contains("unknown priority"));
        let post = HttpRequest { method: "POST".into(), ..HttpRequest::get("/metrics") };
        let resp: HttpResponse = env.query_one(Principal::anonymous(), canister, "http_request", post).unwrap();
        assert_eq!(resp.status_code, 405);
    }
}
