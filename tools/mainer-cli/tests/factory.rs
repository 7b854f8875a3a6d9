//! The operator's path on the simulator: upload the artefacts, order mAIners
//! of every role and follow their jobs, list mAIners and LLMs, add a
//! challenge, read the submissions, upgrade the fleet, remove an LLM.
//! `MAINER_CLI_SHOW=1 cargo test -p mainer-cli --test factory -- --nocapture`
//! prints every command with its output.

mod common;

use candid::Principal;
use common::*;
use integration_tests::deploy::{owner, run_for};
use integration_tests::factory::{Factory, controller_of, deploy_factory, job, submissions_by_mainer};
use integration_tests::{SimEnv, wasm_dir};
use mainer_types::creator::CreatorSettings;

fn path(p: &std::path::Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Paths as an operator types them: relative to the workspace root, made the
/// working directory (the same for every test of this file).
fn at_root(p: &std::path::Path) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    std::env::set_current_dir(&root).unwrap();
    let p = p.canonicalize().unwrap();
    match p.strip_prefix(&root) {
        Ok(rel) => rel.to_str().unwrap().to_string(),
        Err(_) => match p.strip_prefix(root.parent().unwrap()) {
            Ok(rel) => format!("../{}", rel.to_str().unwrap()),
            Err(_) => path(&p),
        },
    }
}

fn model_path() -> String {
    at_root(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/models/stories260Ktok512.gguf")))
}

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "{run:?}");
    run
}

/// Uploads the controller wasm, our LLM wasm and the tiny model.
fn upload_artefacts(client: &SimClient, f: &Factory) {
    let controller = at_root(&wasm_dir().join("mainer_controller.wasm"));
    let llm = at_root(&wasm_dir().join("llm.wasm"));
    ok(mainer(client, f, &["upload", "--kind", "controller-wasm", &controller]));
    ok(mainer(client, f, &["upload", "--kind", "llm-wasm", &llm]));
    ok(mainer(client, f, &["upload", "--kind", "model", &model_path()]));
}

/// A mAIner ordered and followed to the end; returns its job and its controller.
fn order(client: &SimClient, env: &SimEnv, f: &Factory, extra: &[&str]) -> (u64, Principal) {
    let o = owner().to_text();
    let mut args = vec!["create-mainer"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--owner", &o, "--prompt", "plain", "--pull-interval", "10", "--process-interval", "2"]);
    args.extend_from_slice(&["--max-tokens-update", "8", "--follow"]);
    let run = ok(mainer(client, f, &args));
    let id: u64 = run.out.lines().last().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    assert!(run.out.contains(&format!("job {id} done: mAIner")), "{}", run.out);
    (id, controller_of(&job(env, f.creator, id)))
}

#[test]
fn an_operator_runs_the_factory_with_the_cli() {
    let env = SimEnv::new();
    let f = deploy_factory(&env, None);
    let admin = SimClient::admin(&env);
    upload_artefacts(&admin, &f);
    let run = ok(mainer(&admin, &f, &["artefacts"]));
    assert_eq!(run.out.lines().count(), 4, "{}", run.out);

    let (own_job, own) = order(&admin, &env, &f, &["--role", "own", "--llms", "1"]);
    let (service_job, service) = order(&admin, &env, &f, &["--role", "share-service", "--llms", "2"]);
    let service_text = service.to_text();
    let (_, agent) = order(&admin, &env, &f, &["--role", "share-agent", "--share-service", &service_text]);

    let run = ok(mainer(&admin, &f, &["jobs"]));
    assert_eq!(run.out.lines().filter(|l| l.contains("Done")).count(), 3, "{}", run.out);
    let run = ok(mainer(&admin, &f, &["jobs", &own_job.to_string()]));
    assert!(run.out.contains(&format!("job {own_job}: create Own mAIner — Done")), "{}", run.out);
    let run = ok(mainer(&admin, &f, &["mainers"]));
    for c in [own, service, agent] {
        assert!(run.out.contains(&c.to_text()), "{}", run.out);
    }
    assert_eq!(run.out.matches("ready").count(), 3, "{}", run.out);
    let run = ok(mainer(&admin, &f, &["llms"]));
    assert_eq!(run.out.matches("healthy").count(), 3, "{}", run.out);

    // A challenge, answered by the Own mAIner and by the ShareAgent (through its service).
    let run = ok(mainer(&admin, &f, &["challenge", "add", "--question", "Once upon a time", "--max-tokens", "12"]));
    assert!(run.out.starts_with("challenge 1 added"), "{}", run.out);
    ok(mainer(&admin, &f, &["challenge", "list"]));
    for _ in 0..120 {
        if !submissions_by_mainer(&env, f.game, own).is_empty()
            && !submissions_by_mainer(&env, f.game, agent).is_empty()
        {
            break;
        }
        run_for(&env, 5);
    }
    let run = ok(mainer(&admin, &f, &["submissions", "--challenge", "1"]));
    assert!(run.out.contains("2 submissions"), "{}", run.out);
    let run = ok(mainer(&admin, &f, &["--json", "submissions", "--mainer", &agent.to_text()]));
    let json: serde_json::Value = serde_json::from_str(&run.out).unwrap();
    assert_eq!(json[0]["role"], "ShareAgent");
    assert_eq!(json[0]["challenge_id"], 1);
    assert!(!json[0]["answer"].as_str().unwrap().is_empty());
    let run = ok(mainer(&admin, &f, &["challenge", "list"]));
    assert!(run.out.contains("1   Open    2"), "{}", run.out);

    // The fleet on one screen, a canister's metrics and log, and fleet-wide pause and resume.
    let run = ok(mainer(&admin, &f, &["status"]));
    assert!(run.out.contains("3 (Own 1, ShareService 1, ShareAgent 1, Challenger 0, Judge 0)"), "{}", run.out);
    assert!(run.out.contains("ready 3, paused 0"), "{}", run.out);
    assert!(run.out.contains("running 0, done 3, failed 0"), "{}", run.out);
    assert!(run.out.contains("1 challenges (1 open), 2 submissions"), "{}", run.out);
    let run = ok(mainer(&admin, &f, &["--json", "status"]));
    let json: serde_json::Value = serde_json::from_str(&run.out).unwrap();
    assert_eq!((json["mainers"].as_u64(), json["jobs_done"].as_u64()), (Some(3), Some(3)), "{}", run.out);
    let run = ok(mainer(&admin, &f, &["metrics", &own.to_text()]));
    assert!(run.out.contains("controller_paused 0"), "{}", run.out);
    let run = ok(mainer(&admin, &f, &["logs", &f.creator.to_text(), "--limit", "5"]));
    assert!(run.out.contains("\"entries\""), "{}", run.out);
    let run = ok(mainer(&admin, &f, &["pause", "--role", "own"]));
    assert!(run.out.contains("pause: 1 mAIners, 0 refused"), "{}", run.out);
    let run = ok(mainer(&admin, &f, &["status"]));
    assert!(run.out.contains("ready 2, paused 1"), "{}", run.out);
    ok(mainer(&admin, &f, &["resume"]));
    let run = ok(mainer(&admin, &f, &["status"]));
    assert!(run.out.contains("ready 3, paused 0"), "{}", run.out);
    // A stranger sees no fleet and switches nothing.
    let stranger = SimClient { env: &env, sender: integration_tests::user(9) };
    assert_ne!(mainer(&stranger, &f, &["status"]).code, 0);
    assert_ne!(mainer(&stranger, &f, &["pause"]).code, 0);
    let run = ok(mainer(&admin, &f, &["status"]));
    assert!(run.out.contains("ready 3, paused 0"), "{}", run.out);

    // A new controller wasm for the whole fleet, two at a time.
    let mut wasm = std::fs::read(wasm_dir().join("mainer_controller.wasm")).unwrap();
    wasm.extend_from_slice(&[0, 3, 2, b'v', b'2']); // a custom section: another version
    let v2 = temp_file("mainer_controller_v2.wasm", &wasm);
    ok(mainer(&admin, &f, &["upload", "--kind", "controller-wasm", &path(v2.path())]));
    let sha = mainer_cli::commands::upload::sha256_hex(&wasm);
    let run = ok(mainer(&admin, &f, &["fleet-upgrade", "--wasm", &sha, "--batch", "2"]));
    assert!(run.out.trim_end().ends_with("done: 3 canisters"), "{}", run.out);

    // One of the service's two LLMs goes.
    let llm = job(&env, f.creator, service_job).slots[2].canister.unwrap();
    let run = ok(mainer(&admin, &f, &["remove-llm", &llm.to_text()]));
    assert!(run.out.contains("done"), "{}", run.out);
    let run = ok(mainer(&admin, &f, &["llms"]));
    assert!(!run.out.contains(&llm.to_text()), "{}", run.out);
}

#[test]
fn jobs_and_orders_report_errors_with_exit_codes() {
    let env = SimEnv::new();
    // A creator that would spend more than it has on one mAIner.
    let greedy = CreatorSettings { controller_cycles: 10u128.pow(16), ..CreatorSettings::default() };
    let f = deploy_factory(&env, Some(greedy));
    let admin = SimClient::admin(&env);
    let o = owner().to_text();

    // Nothing uploaded yet.
    let run = mainer(&admin, &f, &["create-mainer", "--role", "own", "--owner", &o]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.err.contains("no stored artefact of kind ControllerWasm"), "{}", run.err);

    upload_artefacts(&admin, &f);
    let run = mainer(&admin, &f, &["create-mainer", "--role", "own", "--owner", &o]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.err.contains("top up the creator"), "{}", run.err);

    // A ShareAgent needs its service; a bad cycles amount is a usage error.
    let run = mainer(&admin, &f, &["create-mainer", "--role", "share-agent", "--owner", &o]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.err.contains("a ShareAgent needs a ShareService"), "{}", run.err);
    let run = mainer(&admin, &f, &["create-mainer", "--role", "own", "--owner", &o, "--llm-cycles", "lots"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = mainer(&admin, &f, &["jobs", "42"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.err.contains("not found: job 42"), "{}", run.err);
    let run = mainer(&admin, &f, &["jobs", "--follow"]);
    assert_eq!(run.code, 2, "{run:?}");
}
