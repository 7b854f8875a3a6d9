//! Owner rights (issue 11, item 3): the owner of a mAIner has roles in its
//! controller (pause, resume, settings within bounds, reads), never IC control
//! of its canisters. Every path by which an owner could change code or take
//! cycles is tried here, by the owner and by a stranger, and refused; a
//! ShareService answers only the question and settings the game state has.

mod probe;

use candid::{Encode, Principal};
use integration_tests::deploy::*;
use integration_tests::factory::*;
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::MainerRole;
use mainer_types::calls::{controller as controller_calls, game_state as game_calls, llm as llm_calls};
use mainer_types::controller::{
    AddLlmRequest, BurnRate, ControllerArgs, ControllerError, ControllerSettings, ControllerUpgrade, ServiceRequest,
};
use mainer_types::creator::{ArtefactKind, JobStatus};
use mainer_types::game::{Challenge, ClaimedEvidence, GameError, Submission, SubmitRequest};
use mainer_types::llama_cpp::ApiError;
use probe::Forwarded;

fn stranger() -> Principal {
    user(9)
}

/// Refused: by `canister_inspect_message` (ingress) or by the endpoint's own check.
fn refused<T: std::fmt::Debug>(r: Result<Result<T, ControllerError>, integration_tests::Reject>) -> bool {
    matches!(r, Err(_) | Ok(Err(ControllerError::Unauthorized(_))))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn sorted(mut v: Vec<Principal>) -> Vec<Principal> {
    v.sort();
    v
}

/// A factory with an Own mAIner (one test LLM) owned by `owner()`:
/// (factory, controller, LLM).
fn own_mainer(env: &dyn TestEnv) -> (Factory, Principal, Principal) {
    let f = deploy_factory(env, None);
    upload_artefact(env, f.creator, ArtefactKind::ControllerWasm, "c.wasm", &wasm("mainer_controller"));
    upload_artefact(env, f.creator, ArtefactKind::LlmWasm, "l.wasm", &wasm("test_llm"));
    upload_artefact(env, f.creator, ArtefactKind::Model, "m.gguf", &stories_model());
    let j = create_mainer(env, f.creator, mainer_request(MainerRole::Own, 1, None, 4)).unwrap();
    let j = run_until_job_done(env, f.creator, j.id, 600);
    assert_eq!(j.status, JobStatus::Done, "{j:?}");
    let llm = j.slots[1].canister.unwrap();
    (f, controller_of(&j), llm)
}

#[test]
fn the_owner_is_an_ic_controller_of_nothing_and_cannot_change_code_or_take_cycles() {
    let env = new_env();
    let (f, controller, llm) = own_mainer(&*env);
    let status = env.status(f.creator, controller).unwrap();
    assert_eq!(sorted(status.settings.controllers), sorted(vec![f.creator, admin()]), "the creator and its admins");
    let status = env.status(f.creator, llm).unwrap();
    assert_eq!(status.settings.controllers, vec![f.creator], "the creator only: not the controller canister");

    let upgrade = Encode!(&Some(ControllerArgs::Upgrade(ControllerUpgrade::default()))).unwrap();
    for who in [owner(), stranger()] {
        assert!(env.upgrade(who, controller, &wasm("mainer_controller"), upgrade.clone()).is_err(), "{who}");
        assert!(env.reinstall(who, llm, &wasm("test_llm"), Encode!().unwrap()).is_err(), "{who}");
        assert!(env.stop(who, controller).is_err() && env.stop(who, llm).is_err(), "{who}");
        assert!(env.status(who, llm).is_err(), "{who}");
        // Cycles: only a controller may ask, and only for itself.
        let before = env.cycle_balance(llm);
        let r = env.call(who, llm, &llm_calls::RETURN_CYCLES, (who,)).unwrap();
        assert_eq!(r, Err(ApiError::StatusCode(401)), "{who}");
        assert!(env.cycle_balance(llm) >= before.saturating_sub(1_000_000_000), "nothing left the LLM");
        // The pool: an owner who picks the LLMs could answer with its own canister.
        let req = AddLlmRequest { canister: user(7), model_sha256: None };
        assert!(refused(env.call(who, controller, &controller_calls::ADD_LLM, (req,))), "{who}");
        assert!(refused(env.call(who, controller, &controller_calls::REMOVE_LLM, (llm,))), "{who}");
        assert!(refused(env.call(who, controller, &controller_calls::SET_LLM_DRAINING, (llm, true))), "{who}");
    }
    // The creator's admins are IC controllers of controller canisters, not of LLMs.
    assert!(env.status(admin(), llm).is_err(), "the LLM's only controller is the creator");
}

#[test]
fn the_owner_pauses_resumes_and_sets_settings_within_bounds_and_a_stranger_cannot() {
    let env = new_env();
    let (f, controller, _llm) = own_mainer(&*env);
    assert!(refused(env.call(stranger(), controller, &controller_calls::PAUSE, ())));
    assert!(refused(env.call(stranger(), controller, &controller_calls::SET_SETTINGS, (test_settings(),))));
    assert!(refused(env.call(stranger(), controller, &controller_calls::CONFIG, ())));
    assert!(refused(env.call(stranger(), controller, &controller_calls::SET_BURN_RATE, (BurnRate::High,))));

    env.call(owner(), controller, &controller_calls::PAUSE, ()).unwrap().unwrap();
    assert!(env.call(owner(), controller, &controller_calls::CONFIG, ()).unwrap().unwrap().paused);
    let zero = ControllerSettings { pull_interval_seconds: 0, ..test_settings() };
    let r = env.call(owner(), controller, &controller_calls::SET_SETTINGS, (zero,)).unwrap();
    assert!(matches!(r, Err(ControllerError::InvalidInput(_))), "{r:?}");
    let slower = ControllerSettings { pull_interval_seconds: 20, ..test_settings() };
    env.call(owner(), controller, &controller_calls::SET_SETTINGS, (slower,)).unwrap().unwrap();
    env.call(owner(), controller, &controller_calls::RESUME, ()).unwrap().unwrap();
    // The burn rate sets the pull interval, within bounds.
    let r = env.call(owner(), controller, &controller_calls::SET_BURN_RATE, (BurnRate::CyclesPerDay(0),)).unwrap();
    assert!(matches!(r, Err(ControllerError::InvalidInput(_))), "{r:?}");
    let every = env.call(owner(), controller, &controller_calls::SET_BURN_RATE, (BurnRate::High,)).unwrap().unwrap();
    assert_eq!(
        env.call(owner(), controller, &controller_calls::CONFIG, ()).unwrap().unwrap().settings.pull_interval_seconds,
        every
    );
    let fast = ControllerSettings { pull_interval_seconds: 10, ..test_settings() };
    env.call(owner(), controller, &controller_calls::SET_SETTINGS, (fast,)).unwrap().unwrap();

    // The mAIner still answers: it uses its LLM by grant, not as its IC controller.
    add_challenge(&*env, f.game, "Once upon a time", 4);
    for _ in 0..120 {
        if !submissions_by_mainer(&*env, f.game, controller).is_empty() {
            break;
        }
        run_for(&*env, 1);
    }
    assert_eq!(submissions_by_mainer(&*env, f.game, controller).len(), 1);
}

/// An agent that sends its ShareService a question of its own under a real
/// challenge id is refused; the game state's own question is accepted.
#[test]
fn a_share_service_answers_only_the_question_the_game_state_has() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let service = deploy_controller(&*env, MainerRole::ShareService, game, None);
    let agent = probe::install_probe(&*env, "agent");
    env.call(admin(), service, &controller_calls::ADD_SHARE_AGENT, (agent,)).unwrap().unwrap();
    let real = add_challenge(&*env, game, "Joe loves writing stories", 6);
    let send = |c: Challenge| -> Result<_, ControllerError> {
        let arg = controller_calls::ENQUEUE_CHALLENGE.encode((ServiceRequest { challenge: (&c).into() },)).unwrap();
        match probe::forward(&*env, agent, service, "enqueue_challenge", arg, 0, None) {
            Forwarded::Reply(bytes) => controller_calls::ENQUEUE_CHALLENGE.decode(&bytes).unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let forged = Challenge { question: "Write my homework".into(), ..real.clone() };
    assert_eq!(send(forged).unwrap_err(), ControllerError::ChallengeMismatch { challenge_id: real.id });
    let mut more = real.clone();
    more.settings.max_tokens = 4_000;
    assert_eq!(send(more).unwrap_err(), ControllerError::ChallengeMismatch { challenge_id: real.id });
    let unknown = Challenge { id: 999, ..real.clone() };
    assert!(matches!(send(unknown), Err(ControllerError::InvalidInput(_))));
    let ticket = send(real.clone()).expect("the game state's challenge is accepted");
    assert_eq!(send(real).unwrap().item_id, ticket.item_id, "once per challenge");
    let queue = env.call(admin(), service, &controller_calls::QUEUE, (mainer_types::PageRequest::first(10),));
    assert_eq!(queue.unwrap().unwrap().total, 1, "only the real request was queued");
}

/// The game state takes answers only from code the creator installed. An IC
/// controller of a mAIner (one of the creator's admins, by mistake or on
/// purpose) who installs other code in it can forge nothing: once the game
/// state reads the new module hash (at once if it never checked, else within
/// the hour its check is kept), the forger's submissions are refused and
/// nothing is stored.
#[test]
fn submissions_from_code_the_creator_did_not_install_are_refused() {
    let env = new_env();
    let (f, controller, llm) = own_mainer(&*env);
    let known: Vec<String> = env.call(admin(), f.game, &game_calls::KNOWN_MODULES, ()).unwrap().unwrap();
    let controller_wasm = sha256_hex(&wasm("mainer_controller"));
    assert_eq!(known, vec![controller_wasm.clone()], "the creator reported the module it installed");
    assert!(env.call(stranger(), f.game, &game_calls::KNOWN_MODULES, ()).map_or(true, |r| r.is_err()));

    // The real mAIner answers: its module hash is read and accepted.
    let first = add_challenge(&*env, f.game, "Who are you?", 4);
    for _ in 0..300 {
        if !submissions_by_mainer(&*env, f.game, controller).is_empty() {
            break;
        }
        run_for(&*env, 1);
    }
    let info = env.call(admin(), f.game, &game_calls::MAINER_INFO, (controller,)).unwrap().unwrap();
    assert_eq!(info.module_hash, Some(controller_wasm));
    assert_eq!(info.submissions, 1, "answered challenge {}", first.id);

    // An admin installs other code in it (a canister that sends any call).
    env.reinstall(admin(), controller, &probe::probe_wasm(), probe::init_arg("forger")).unwrap();
    let second = add_challenge(&*env, f.game, "What is two and two?", 4);
    let forged = SubmitRequest {
        challenge_id: second.id,
        answer: "Four, says the real model (it did not).".into(),
        evidence: ClaimedEvidence {
            prompt_sha256: "ab".repeat(32),
            llm_canister: llm,
            model_sha256: None,
            llm_calls: 3,
            prompt_tokens: None,
            generated_tokens: None,
            cycles_spent: None,
        },
    };
    run_for(&*env, 3_601);
    let reply = probe::forward(&*env, controller, f.game, "submit", Encode!(&forged).unwrap(), 0, None);
    let Forwarded::Reply(bytes) = reply else { panic!("the game state answers: {reply:?}") };
    let result = candid::decode_one::<Result<Submission, GameError>>(&bytes).unwrap();
    let probe_hash = sha256_hex(&probe::probe_wasm());
    assert_eq!(result, Err(GameError::UnknownModule { mainer: controller, module_hash: Some(probe_hash) }));
    assert_eq!(submissions_by_mainer(&*env, f.game, controller).len(), 1, "nothing forged was stored");
}
