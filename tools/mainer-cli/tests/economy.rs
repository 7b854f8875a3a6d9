//! The user's path with the CLI on the simulator and DFINITY's cycles
//! ledger: quote, order (approve + order_mainer) and follow, list orders,
//! top up, set a burn rate, read a mAIner's cycles; the books for admins only.

mod common;

use candid::Principal;
use common::*;
use integration_tests::deploy::admin;
use integration_tests::factory::{deploy_factory, stories_model, upload_artefact};
use integration_tests::ledger::{cycles_ledger_wasm, deploy_cycles_ledger};
use integration_tests::{SimEnv, TestEnv, TestEnvExt, user, wasm};
use mainer_types::calls::creator as creator_calls;
use mainer_types::creator::ArtefactKind;
use mainer_types::economy::{EconomySettings, KindPrice, OrderView};

const T: u128 = 1_000_000_000_000;

#[test]
fn a_user_buys_tops_up_and_rations_a_mainer_with_the_cli() {
    let ledger_wasm = match cycles_ledger_wasm() {
        Ok(w) => w,
        Err(why) => return println!("{why}"),
    };
    let env = SimEnv::new();
    let buyer = user(21);
    let ledger = deploy_cycles_ledger(&env, &ledger_wasm, &[(buyer, 100 * T)]);
    let f = deploy_factory(&env, None);
    upload_artefact(&env, f.creator, ArtefactKind::ControllerWasm, "c.wasm", &wasm("mainer_controller"));
    upload_artefact(&env, f.creator, ArtefactKind::LlmWasm, "l.wasm", &wasm("test_llm"));
    upload_artefact(&env, f.creator, ArtefactKind::Model, "m.gguf", &stories_model());
    let settings = EconomySettings {
        cycles_ledger: Some(ledger),
        own: KindPrice { controller_cycles: T, llm_cycles: T, fee: 10_000_000_000 },
        ..EconomySettings::default()
    };
    env.call(admin(), f.creator, &creator_calls::SET_ECONOMY, (settings,)).unwrap().unwrap();
    let user_client = SimClient { env: &env, sender: buyer };

    let run = mainer(&user_client, &f, &["price", "--own", "1"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.out.contains("on the cycles ledger"), "{}", run.out);
    let run = mainer(&user_client, &f, &["order", "--own", "1", "--follow"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.out.contains("done: mAIner"), "{}", run.out);
    let mine: Vec<OrderView> = env.call(buyer, f.creator, &creator_calls::MY_ORDERS, ()).unwrap();
    let controller: Principal = mine[0].controller.unwrap();
    let run = mainer(&user_client, &f, &["orders"]);
    assert!(run.code == 0 && run.out.contains(&controller.to_text()), "{run:?}");

    let c = controller.to_text();
    let before = env.cycle_balance(controller);
    let run = mainer(&user_client, &f, &["top-up", &c, "1T"]);
    assert!(run.code == 0 && run.out.contains("got 1.000 T"), "{run:?}");
    assert!(env.cycle_balance(controller) > before + T / 2);
    let run = mainer(&user_client, &f, &["burn-rate", &c, "high"]);
    assert!(run.code == 0 && run.out.contains("every"), "{run:?}");
    let run = mainer(&user_client, &f, &["burn-rate", &c, "0"]);
    assert_ne!(run.code, 0, "a burn rate of 0 is refused: {run:?}");
    let run = mainer(&user_client, &f, &["cycles", &c]);
    assert!(run.code == 0 && run.out.contains("topped up          1.000 T"), "{run:?}");

    let run = mainer(&user_client, &f, &["books"]);
    assert_ne!(run.code, 0, "the books are for admins: {run:?}");
    let run = mainer(&SimClient::admin(&env), &f, &["books"]);
    assert!(run.code == 0 && run.out.contains("orders             1 (top-ups 1)"), "{run:?}");
}
