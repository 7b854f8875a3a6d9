//! `canister_inspect_message` on every canister: a stranger's update (or
//! an oversize one) is refused before it is inducted, so it costs the
//! canister nothing, while the callers each endpoint allows still get in.

use candid::{Encode, Principal};
use integration_tests::deploy::*;
use integration_tests::{TestEnv, TestEnvExt, new_env, user};
use mainer_types::MainerRole;
use mainer_types::controller::{ControllerResult, ServiceRequest};
use mainer_types::game::{ClaimedEvidence, GameResult, MainerInfo, RegisterMainerRequest, SubmitRequest};

const TWO_MB: usize = 1_900_000;

/// Sends `arg` to `method` from `sender` and asserts it was refused at
/// inspection and that the canister's cycle balance did not move.
fn refused_for_free(env: &dyn TestEnv, sender: Principal, canister: Principal, method: &str, arg: Vec<u8>) {
    let before = env.cycle_balance(canister);
    let err = env.update(sender, canister, method, arg).expect_err(method);
    assert!(
        err.message.contains("inspect_message") || err.error_code == Some("IC0406"),
        "{method}: refused at inspection, not later: {err:?}"
    );
    assert_eq!(env.cycle_balance(canister), before, "{method}: the canister paid for a refused message");
}

fn big_submit() -> Vec<u8> {
    let req = SubmitRequest {
        challenge_id: 1,
        answer: "x".repeat(TWO_MB),
        evidence: ClaimedEvidence {
            prompt_sha256: "0".repeat(64),
            llm_canister: user(99),
            model_sha256: None,
            llm_calls: 1,
            prompt_tokens: None,
            generated_tokens: None,
        },
    };
    Encode!(&req).unwrap()
}

#[test]
fn the_game_state_refuses_strangers_and_oversize_updates_for_free() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let c = add_challenge(&*env, game, "q", 4);
    let stranger = user(66);
    refused_for_free(&*env, stranger, game, "submit", big_submit());
    refused_for_free(&*env, stranger, game, "get_challenge", Encode!().unwrap());
    refused_for_free(&*env, stranger, game, "add_challenge", Encode!(&"x".repeat(TWO_MB)).unwrap());
    refused_for_free(&*env, stranger, game, "counts", Encode!().unwrap());
    // A registered mAIner gets in, but not with an answer larger than any it may submit.
    let mainer = user(67);
    let reg = RegisterMainerRequest { mainer, role: MainerRole::Own, owner: owner() };
    env.update_one::<_, GameResult<MainerInfo>>(admin(), game, "register_mainer", reg).unwrap().unwrap();
    refused_for_free(&*env, mainer, game, "submit", big_submit());
    let taken: GameResult<mainer_types::game::Challenge> = env.update_one(mainer, game, "get_challenge", ()).unwrap();
    assert_eq!(taken.unwrap().id, c.id);
    // Queries stay open to anyone.
    let _: mainer_types::game::GameCounts = env.query_one(stranger, game, "counts", ()).unwrap();
}

#[test]
fn a_controller_refuses_strangers_and_oversize_updates_for_free() {
    let env = new_env();
    let game = deploy_game_state(&*env);
    let service = deploy_controller(&*env, MainerRole::ShareService, game, None);
    let agent = deploy_controller(&*env, MainerRole::ShareAgent, game, Some(service));
    let stranger = user(66);
    let c = add_challenge(&*env, game, "q", 4);
    let big = mainer_types::game::Challenge { question: "x".repeat(TWO_MB), ..c.clone() };
    refused_for_free(
        &*env,
        stranger,
        service,
        "enqueue_challenge",
        Encode!(&ServiceRequest { challenge: (&big).into() }).unwrap(),
    );
    refused_for_free(&*env, stranger, service, "pause", Encode!().unwrap());
    refused_for_free(&*env, stranger, service, "trigger_process", Encode!().unwrap());
    refused_for_free(&*env, stranger, agent, "deliver_answer", Encode!(&"x".repeat(TWO_MB)).unwrap());
    refused_for_free(&*env, stranger, service, "health", Encode!().unwrap());
    // Admins and the owner still get in.
    env.update_one::<_, ControllerResult<()>>(admin(), service, "pause", ()).unwrap().unwrap();
    env.update_one::<_, ControllerResult<()>>(owner(), service, "resume", ()).unwrap().unwrap();
}
