//! The creator as a factory: artefacts uploaded, mAIners of every role made
//! by durable jobs, answers submitted; and the jobs under faults.

use candid::{Encode, Principal};
use integration_tests::deploy::*;
use integration_tests::factory::{self, *};
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::calls::{
    controller as controller_calls, creator as creator_calls, game_state as game_calls, llm as llm_calls,
};
use mainer_types::creator::*;
use mainer_types::game::Submission;
use mainer_types::{MainerRole, Page, PageRequest};

mod probe;

struct Factory {
    game: Principal,
    creator: Principal,
    model: ArtefactInfo,
}

fn factory(env: &dyn TestEnv) -> Factory {
    factory_with(env, stories_model(), None)
}

/// A creator with the controller wasm, the test LLM wasm and `model` uploaded.
fn factory_with(env: &dyn TestEnv, model: Vec<u8>, settings: Option<CreatorSettings>) -> Factory {
    factory_for(env, &wasm("test_llm"), model, settings)
}

/// A creator with the controller wasm, `llm_wasm` and `model` uploaded.
fn factory_for(env: &dyn TestEnv, llm_wasm: &[u8], model: Vec<u8>, settings: Option<CreatorSettings>) -> Factory {
    let f = deploy_factory(env, settings);
    upload_artefact(env, f.creator, ArtefactKind::ControllerWasm, "mainer_controller.wasm", &wasm("mainer_controller"));
    upload_artefact(env, f.creator, ArtefactKind::LlmWasm, "llm.wasm", llm_wasm);
    let model = upload_artefact(env, f.creator, ArtefactKind::Model, "model.gguf", &model);
    Factory { game: f.game, creator: f.creator, model }
}

fn create(
    env: &dyn TestEnv,
    f: &Factory,
    role: MainerRole,
    llms: u32,
    service: Option<Principal>,
) -> CreatorResult<JobView> {
    create_mainer(env, f.creator, mainer_request(role, llms, service, 4))
}

fn job(env: &dyn TestEnv, f: &Factory, id: u64) -> JobView {
    factory::job(env, f.creator, id)
}

fn run_until_done(env: &dyn TestEnv, f: &Factory, id: u64, max_seconds: u64) -> JobView {
    run_until_job_done(env, f.creator, id, max_seconds)
}

fn submissions_by(env: &dyn TestEnv, game: Principal, mainer: Principal) -> Vec<Submission> {
    submissions_by_mainer(env, game, mainer)
}

#[test]
fn the_whole_factory_makes_mainers_that_answer() {
    whole_factory_answers(&wasm("test_llm"));
}

/// The same with real inference: our `llm` canister and stories260K.
#[test]
fn the_whole_factory_makes_mainers_that_answer_with_our_llm() {
    let answers = whole_factory_answers(&wasm("llm"));
    assert!(answers.iter().all(|a| !a.trim().is_empty()), "{answers:?}");
}

/// The same with the llama.cpp canister v0.7.3 (no token counts, -n per call):
/// the LLM wasm the factory's users upload.
#[test]
fn the_whole_factory_makes_mainers_that_answer_with_the_llama_cpp_canister() {
    let peer = match runnable_llama_cpp_wasm(&*new_env()) {
        Ok(bytes) => bytes,
        Err(why) => return println!("{why}"),
    };
    let theirs = whole_factory_answers(&peer);
    assert!(theirs.iter().all(|a| !a.trim().is_empty()), "{theirs:?}");
    let ours = whole_factory_answers(&wasm("llm"));
    assert_eq!(theirs, ours, "greedy answers of the same model: the same text");
}

/// An Own mAIner with 2 LLMs, a ShareService with 1 and 2 ShareAgents made
/// with `llm_wasm`; each answering mAIner submits 2 answers of 6 tokens
/// (greedy). Returns the answers, in the order of mAIners and challenges.
fn whole_factory_answers(llm_wasm: &[u8]) -> Vec<String> {
    let env = new_env();
    let f = factory_for(&*env, llm_wasm, stories_model(), None);
    let own = create(&*env, &f, MainerRole::Own, 2, None).unwrap();
    let service = create(&*env, &f, MainerRole::ShareService, 1, None).unwrap();
    let own = run_until_done(&*env, &f, own.id, 600);
    let service = run_until_done(&*env, &f, service.id, 600);
    assert_eq!(own.status, JobStatus::Done, "{own:?}");
    assert_eq!(service.status, JobStatus::Done, "{service:?}");
    assert!(own.slots[1..].iter().all(|s| s.bytes_copied == f.model.size), "{own:?}");
    let service_id = controller_of(&service);
    let agents: Vec<JobView> = (0..2)
        .map(|_| create(&*env, &f, MainerRole::ShareAgent, 0, Some(service_id)).unwrap())
        .collect::<Vec<_>>()
        .into_iter()
        .map(|j| run_until_done(&*env, &f, j.id, 600))
        .collect();
    assert!(agents.iter().all(|a| a.status == JobStatus::Done), "{agents:?}");

    for i in 0..2 {
        add_challenge(&*env, f.game, &format!("Once upon a time number {i}"), 6);
    }
    let miners: Vec<Principal> =
        [&own].iter().map(|j| controller_of(j)).chain(agents.iter().map(controller_of)).collect();
    for _ in 0..400 {
        if miners.iter().all(|m| submissions_by(&*env, f.game, *m).len() == 2) {
            break;
        }
        run_for(&*env, 1);
    }
    let mut answers = Vec::new();
    for m in &miners {
        let mut subs = submissions_by(&*env, f.game, *m);
        subs.sort_by_key(|s| s.challenge_id);
        assert_eq!(subs.len(), 2, "mAIner {m} submitted {subs:?}");
        answers.extend(subs.iter().map(|s| s.answer.clone()));
        assert_eq!(
            subs[0].evidence.model_sha256.as_deref(),
            Some(f.model.sha256.as_str()),
            "the model's hash is the evidence"
        );
    }
    let mainers: Page<MainerView> =
        env.call(admin(), f.creator, &creator_calls::LIST_MAINERS, (PageRequest::first(10),)).unwrap().unwrap();
    assert_eq!(mainers.total, 4);
    assert!(mainers.items.iter().all(|m| m.ready));
    answers
}

#[test]
fn a_share_agent_gets_no_llm_and_requests_are_checked() {
    let env = new_env();
    let f = factory(&*env);
    assert_eq!(
        create(&*env, &f, MainerRole::ShareAgent, 1, Some(user(3))).unwrap_err(),
        CreatorError::ShareAgentHasNoLlms
    );
    assert_eq!(create(&*env, &f, MainerRole::ShareAgent, 0, None).unwrap_err(), CreatorError::MissingShareService);
    assert!(matches!(create(&*env, &f, MainerRole::Own, 0, None).unwrap_err(), CreatorError::InvalidInput(_)));
    let req =
        CreateMainerRequest { controller_cycles: Some(u128::MAX / 4), ..mainer_request(MainerRole::Own, 1, None, 4) };
    let r: CreatorResult<JobView> = env.call(admin(), f.creator, &creator_calls::CREATE_MAINER, (req,)).unwrap();
    assert!(matches!(r, Err(CreatorError::InsufficientCycles { .. })), "{r:?}");
}

#[test]
fn cycle_amounts_that_overflow_are_refused() {
    let env = new_env();
    let f = factory(&*env);
    let req = CreateMainerRequest { controller_cycles: Some(u128::MAX), ..mainer_request(MainerRole::Own, 1, None, 4) };
    let r: CreatorResult<JobView> = env.call(admin(), f.creator, &creator_calls::CREATE_MAINER, (req,)).unwrap();
    assert!(matches!(&r, Err(CreatorError::InvalidInput(m)) if m.contains("overflow")), "{r:?}");
    let req = CreateMainerRequest { llm_cycles: Some(u128::MAX / 2), ..mainer_request(MainerRole::Own, 3, None, 4) };
    let r: CreatorResult<JobView> = env.call(admin(), f.creator, &creator_calls::CREATE_MAINER, (req,)).unwrap();
    assert!(matches!(&r, Err(CreatorError::InvalidInput(m)) if m.contains("overflow")), "{r:?}");
}

/// Upgrades the creator while the `create_canister` of a job's controller
/// is in flight (the canister exists, its reply not yet delivered): without
/// a stop the canister still becomes the job's (by the reply or, when the
/// reply is lost, by the intent record); with a stop first (what
/// `scripts/deploy.sh --mode upgrade` does) nothing is lost.
fn upgrade_mid_create_canister(stop_first: bool) {
    let env = new_env();
    if env.simulator().is_none() {
        return; // needs one-message steps
    }
    let f = factory(&*env);
    let before = env.simulator().unwrap().canister_ids().len();
    let id = create(&*env, &f, MainerRole::Own, 1, None).unwrap().id;
    let mut ticks = 0;
    while env.simulator().unwrap().canister_ids().len() == before {
        env.advance_time(std::time::Duration::from_millis(100));
        env.tick();
        ticks += 1;
        assert!(ticks < 1_000, "no canister was ever created");
    }
    let made = env.simulator().unwrap().canister_ids().into_iter().max().unwrap();
    assert_eq!(job(&*env, &f, id).slots[0].canister, None, "the reply is still in flight");
    if stop_first {
        env.stop(admin(), f.creator).unwrap();
    }
    env.upgrade(admin(), f.creator, &wasm("mainer_creator"), Encode!(&None::<CreatorArgs>).unwrap()).unwrap();
    if stop_first {
        env.start(admin(), f.creator).unwrap();
    }
    let j = run_until_done(&*env, &f, id, 600);
    assert_eq!(j.status, JobStatus::Done, "{j:?}");
    assert_eq!(j.slots[0].canister, Some(made), "the canister made before the upgrade is the controller");
    // Without a stop the reply lands in the new module: the simulator runs
    // the callback there (same module), the IC may lose it, and then the
    // job finds the canister by its intent record (unit-tested with a fake
    // that loses the reply). Either way the canister is the job's.
    let lost = j.errors.iter().any(|e| e.contains("reply was lost"));
    if stop_first {
        assert!(!lost, "{:?}", j.errors);
    }
    let sim = env.simulator().unwrap();
    let ours: Vec<Principal> =
        sim.canister_ids().into_iter().filter(|c| sim.controllers(*c).contains(&f.creator)).collect();
    assert_eq!(ours.len(), 2, "the controller and its LLM, nothing orphaned: {ours:?}");
}

#[test]
fn an_upgrade_of_the_creator_mid_create_canister_orphans_nothing() {
    upgrade_mid_create_canister(false);
}

#[test]
fn an_upgrade_after_a_stop_mid_create_canister_loses_nothing() {
    upgrade_mid_create_canister(true);
}

/// Runs until the job's first LLM is copying the model.
fn until_copying(env: &dyn TestEnv, f: &Factory, id: u64) -> Principal {
    for _ in 0..300 {
        let j = job(env, f, id);
        if j.slots[1].step == Step::UploadModel {
            return j.slots[1].canister.unwrap();
        }
        run_for(env, 1);
    }
    panic!("never reached the model copy");
}

/// A 9 MB stand-in model (5 chunks), copied one chunk per job round.
fn multi_chunk_factory(env: &dyn TestEnv) -> Factory {
    let model: Vec<u8> = (0..9_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    factory_with(env, model, Some(CreatorSettings { chunks_per_round: 1, ..CreatorSettings::default() }))
}

#[test]
fn an_upgrade_of_the_creator_mid_copy_resumes_with_the_same_llm() {
    let env = new_env();
    let f = multi_chunk_factory(&*env);
    let id = create(&*env, &f, MainerRole::Own, 1, None).unwrap().id;
    let llm = until_copying(&*env, &f, id);
    while job(&*env, &f, id).slots[1].bytes_copied < 2 * MAX_ARTEFACT_CHUNK_BYTES {
        run_for(&*env, 1);
    }
    assert!(job(&*env, &f, id).slots[1].bytes_copied < f.model.size, "stopped in the middle of the copy");
    env.stop(admin(), f.creator).unwrap();
    env.upgrade(admin(), f.creator, &wasm("mainer_creator"), Encode!(&None::<CreatorArgs>).unwrap()).unwrap();
    env.start(admin(), f.creator).unwrap();
    let j = run_until_done(&*env, &f, id, 600);
    assert_eq!(j.status, JobStatus::Done, "{j:?}");
    assert_eq!(j.slots[1].canister, Some(llm), "the same LLM canister");
    assert_eq!(j.slots[1].bytes_copied, f.model.size);
}

#[test]
fn a_refused_chunk_is_retried() {
    let env = new_env();
    let f = multi_chunk_factory(&*env);
    let id = create(&*env, &f, MainerRole::Own, 1, None).unwrap().id;
    let llm = until_copying(&*env, &f, id);
    // The creator is the LLM's only IC controller.
    set_faults_as(&*env, f.creator, llm, Faults { fail_next_uploads: 1, ..Default::default() });
    let j = run_until_done(&*env, &f, id, 600);
    assert_eq!(j.status, JobStatus::Done, "{j:?}");
    assert!(j.errors.iter().any(|e| e.contains("refused")), "{:?}", j.errors);
}

#[test]
fn a_wrong_model_hash_fails_the_job_and_registers_nothing() {
    let env = new_env();
    let f = factory(&*env);
    let id = create(&*env, &f, MainerRole::Own, 1, None).unwrap().id;
    let llm = until_copying(&*env, &f, id);
    set_faults_as(&*env, f.creator, llm, Faults { corrupt_uploads: Some(true), ..Default::default() });
    let j = run_until_done(&*env, &f, id, 600);
    match &j.status {
        JobStatus::Failed { reason } => assert!(reason.contains("SHA-256 mismatch"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let counts: mainer_types::game::GameCounts = env.call(admin(), f.game, &game_calls::COUNTS, ()).unwrap();
    assert_eq!(counts.mainers, 0, "nothing registered");
}

#[test]
fn strangers_cannot_use_the_factory() {
    let env = new_env();
    let creator = deploy_factory(&*env, None).creator;
    let stranger = user(66);
    let page = PageRequest::first(5);
    let calls: Vec<(&str, Vec<u8>, bool)> = vec![
        ("create_mainer", Encode!(&mainer_request(MainerRole::Own, 1, None, 4)).unwrap(), false),
        ("job", Encode!(&0u64).unwrap(), true),
        ("list_jobs", Encode!(&page).unwrap(), true),
        ("retry_job", Encode!(&0u64).unwrap(), false),
        ("run_jobs_now", Encode!().unwrap(), false),
        ("list_mainers", Encode!(&page).unwrap(), true),
        ("set_game_state", Encode!(&user(1)).unwrap(), false),
        (
            "upgrade_controllers",
            Encode!(&UpgradeControllersRequest { wasm_sha256: None, targets: None, batch_size: 1 }).unwrap(),
            false,
        ),
        (
            "upgrade_llms",
            Encode!(&UpgradeControllersRequest { wasm_sha256: None, targets: None, batch_size: 1 }).unwrap(),
            false,
        ),
        ("remove_llm", Encode!(&user(1)).unwrap(), false),
        ("fleet_job", Encode!(&0u64).unwrap(), true),
    ];
    // A stranger's ingress update is refused at inspection (tests/inspect.rs
    // shows it costs nothing); a stranger canister's call is not inspected,
    // and the endpoint's own check refuses it. Queries: the endpoint's check.
    let stranger_canister = probe::install_probe(&*env, "stranger");
    let unauthorized = |method: &str, reply: &[u8]| {
        let decoded = candid::decode_one::<Result<candid::Reserved, CreatorError>>(reply).unwrap();
        assert!(matches!(decoded, Err(CreatorError::Unauthorized(_))), "{method}: {decoded:?}");
    };
    for (method, arg, query) in calls {
        if query {
            unauthorized(method, &env.query(stranger, creator, method, arg).unwrap());
            continue;
        }
        let ingress = env.update(stranger, creator, method, arg.clone());
        assert!(ingress.as_ref().is_err_and(|e| e.error_code == Some("IC0406")), "{method}: {ingress:?}");
        match probe::forward(&*env, stranger_canister, creator, method, arg, 0, None) {
            probe::Forwarded::Reply(reply) => unauthorized(method, &reply),
            other => panic!("{method}: {other:?}"),
        }
    }
}

/// The same module with a custom section appended: a new version to upgrade to.
fn new_version_of(mut wasm: Vec<u8>, tag: &str) -> Vec<u8> {
    let mut payload = vec![tag.len() as u8];
    payload.extend_from_slice(tag.as_bytes());
    wasm.push(0); // custom section id
    wasm.push(payload.len() as u8);
    wasm.extend(payload);
    wasm
}

fn queue_of(env: &dyn TestEnv, controller: Principal) -> Vec<(u64, u64)> {
    let page = env.call(admin(), controller, &controller_calls::QUEUE, (PageRequest::first(100),)).unwrap().unwrap();
    page.items.iter().map(|i| (i.id, i.challenge.id)).collect()
}

fn set_process_interval(env: &dyn TestEnv, controller: Principal, seconds: u64) {
    use mainer_types::controller::ControllerSettings;
    let settings = ControllerSettings { process_interval_seconds: seconds, ..test_settings() };
    env.call(admin(), controller, &controller_calls::SET_SETTINGS, (settings,)).unwrap().unwrap();
}

#[test]
fn a_fleet_upgrade_keeps_models_loaded_and_queues_intact() {
    let env = new_env();
    let f = factory(&*env);
    let jobs: Vec<u64> = (0..5).map(|_| create(&*env, &f, MainerRole::Own, 1, None).unwrap().id).collect();
    let done: Vec<JobView> = jobs.iter().map(|id| run_until_done(&*env, &f, *id, 900)).collect();
    assert!(done.iter().all(|j| j.status == JobStatus::Done), "{done:?}");
    let controllers: Vec<Principal> = done.iter().map(controller_of).collect();
    let llms: Vec<Principal> = done.iter().map(|j| j.slots[1].canister.unwrap()).collect();

    // Hold the work in the queues: pull, but do not process.
    for c in &controllers {
        set_process_interval(&*env, *c, 30 * 86_400);
    }
    for i in 0..2 {
        add_challenge(&*env, f.game, &format!("Fleet question {i}"), 4);
    }
    run_for(&*env, 25);
    let queues: Vec<Vec<(u64, u64)>> = controllers.iter().map(|c| queue_of(&*env, *c)).collect();
    // The game state hands a mAIner the same challenge until it submits: one each.
    assert!(queues.iter().all(|q| q.len() == 1), "{queues:?}");

    let v2 = upload_artefact(
        &*env,
        f.creator,
        ArtefactKind::ControllerWasm,
        "controller v2",
        &new_version_of(wasm("mainer_controller"), "v2"),
    );
    let req = UpgradeControllersRequest { wasm_sha256: Some(v2.sha256.clone()), targets: None, batch_size: 2 };
    let fleet: FleetJobView =
        env.call(admin(), f.creator, &creator_calls::UPGRADE_CONTROLLERS, (req,)).unwrap().unwrap();
    let mut view = fleet;
    for _ in 0..300 {
        view = env.call(admin(), f.creator, &creator_calls::FLEET_JOB, (view.id,)).unwrap().unwrap();
        if view.status != JobStatus::Running {
            break;
        }
        run_for(&*env, 1);
    }
    assert_eq!(view.status, JobStatus::Done, "{view:?}");
    for c in &controllers {
        let status = env.status(admin(), *c).unwrap();
        assert_eq!(status.module_hash.map(hex::encode), Some(v2.sha256.clone()), "upgraded");
    }
    let after: Vec<Vec<(u64, u64)>> = controllers.iter().map(|c| queue_of(&*env, *c)).collect();
    assert_eq!(after, queues, "every queue intact");
    for llm in &llms {
        let ready: mainer_types::llama_cpp::StatusCodeRecordResult =
            env.call(admin(), *llm, &llm_calls::READY, ()).unwrap();
        assert!(
            matches!(ready, mainer_types::llama_cpp::StatusCodeRecordResult::Ok(_)),
            "the model is still loaded: {ready:?}"
        );
    }
    // And the upgraded mAIners work.
    for c in &controllers {
        set_process_interval(&*env, *c, 2);
    }
    for _ in 0..300 {
        if controllers.iter().all(|c| submissions_by(&*env, f.game, *c).len() == 2) {
            break;
        }
        run_for(&*env, 1);
    }
    assert!(controllers.iter().all(|c| submissions_by(&*env, f.game, *c).len() == 2));
    // The game state heard of v2 from the creator and read it in each mAIner.
    let known: Vec<String> = env.call(admin(), f.game, &game_calls::KNOWN_MODULES, ()).unwrap().unwrap();
    assert!(known.contains(&v2.sha256), "{known:?}");
    for c in &controllers {
        let info = env.call(admin(), f.game, &game_calls::MAINER_INFO, (*c,)).unwrap().unwrap();
        assert_eq!(info.module_hash.as_ref(), Some(&v2.sha256));
    }
}

fn follow_fleet(env: &dyn TestEnv, f: &Factory, id: u64) -> FleetJobView {
    for _ in 0..300 {
        let view = env.call(admin(), f.creator, &creator_calls::FLEET_JOB, (id,)).unwrap().unwrap();
        if view.status != JobStatus::Running {
            return view;
        }
        run_for(env, 1);
    }
    panic!("fleet job {id} still running");
}

#[test]
fn an_llm_upgrade_reloads_the_model_and_sets_max_tokens_again() {
    use mainer_types::llama_cpp::{MaxTokensRecord, StatusCodeRecordResult};
    let env = new_env();
    let f = factory(&*env);
    let j = run_until_done(&*env, &f, create(&*env, &f, MainerRole::Own, 2, None).unwrap().id, 600);
    let llms: Vec<Principal> = j.slots[1..].iter().map(|s| s.canister.unwrap()).collect();
    let v2 = upload_artefact(
        &*env,
        f.creator,
        ArtefactKind::LlmWasm,
        "test_llm v2",
        &new_version_of(wasm("test_llm"), "v2"),
    );
    let req = UpgradeControllersRequest { wasm_sha256: Some(v2.sha256.clone()), targets: None, batch_size: 1 };
    let fleet = env.call(admin(), f.creator, &creator_calls::UPGRADE_LLMS, (req,)).unwrap().unwrap();
    let view = follow_fleet(&*env, &f, fleet.id);
    assert_eq!(view.status, JobStatus::Done, "{view:?}");
    for llm in &llms {
        assert_eq!(env.status(f.creator, *llm).unwrap().module_hash.map(hex::encode), Some(v2.sha256.clone()));
        let ready: StatusCodeRecordResult = env.call(admin(), *llm, &llm_calls::READY, ()).unwrap();
        assert!(matches!(ready, StatusCodeRecordResult::Ok(_)), "model reloaded: {ready:?}");
        let max: MaxTokensRecord = env.call(admin(), *llm, &llm_calls::GET_MAX_TOKENS, ()).unwrap();
        assert_eq!(max.max_tokens_update, 4, "configured again");
    }
    let c = add_challenge(&*env, f.game, "After the LLM upgrade", 4);
    let mainer = controller_of(&j);
    for _ in 0..120 {
        if !submissions_by(&*env, f.game, mainer).is_empty() {
            break;
        }
        run_for(&*env, 1);
    }
    assert_eq!(submissions_by(&*env, f.game, mainer)[0].challenge_id, c.id);
}

#[test]
fn removing_an_llm_drains_unregisters_and_deletes_it() {
    let env = new_env();
    let f = factory(&*env);
    let j = run_until_done(&*env, &f, create(&*env, &f, MainerRole::Own, 2, None).unwrap().id, 600);
    let mainer = controller_of(&j);
    let (gone, kept) = (j.slots[1].canister.unwrap(), j.slots[2].canister.unwrap());
    let fleet = env.call(admin(), f.creator, &creator_calls::REMOVE_LLM, (gone,)).unwrap().unwrap();
    let view = follow_fleet(&*env, &f, fleet.id);
    assert_eq!(view.status, JobStatus::Done, "{view:?}");
    let llms = env.call(admin(), mainer, &controller_calls::LIST_LLMS, ()).unwrap().unwrap();
    assert_eq!(llms.iter().map(|l| l.canister).collect::<Vec<_>>(), vec![kept]);
    assert!(env.status(f.creator, gone).is_err(), "the LLM canister is deleted");
    let mainers =
        env.call(admin(), f.creator, &creator_calls::LIST_MAINERS, (PageRequest::first(5),)).unwrap().unwrap();
    assert_eq!(mainers.items[0].llms, vec![kept]);
    let stranger = env.call(user(66), f.creator, &creator_calls::REMOVE_LLM, (kept,));
    assert!(stranger.is_err_and(|e| e.error_code == Some("IC0406")), "refused at inspection");
}
