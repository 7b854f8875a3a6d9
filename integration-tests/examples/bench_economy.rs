//! The economy's figures on the simulator (its IC fee schedule), with
//! DFINITY's cycles ledger and our `llm` canister running stories260K:
//! - what a user pays for an Own (1 LLM) and a ShareAgent order, by part,
//!   and what the creator's own messages cost per order;
//! - cycles spent per answer by each kind: an Own mAIner (controller and its
//!   LLM) and a ShareAgent (the agent, and its share of the ShareService and
//!   its LLM when two agents share them).
//!
//! Run with `scripts/bench.sh`; prints a Markdown report.

use candid::Principal;
use integration_tests::deploy::*;
use integration_tests::factory::*;
use integration_tests::ledger::{approve, balance, cycles_ledger_wasm, deploy_cycles_ledger};
use integration_tests::{SimEnv, TestEnv, TestEnvExt, user, wasm};
use mainer_types::MainerRole;
use mainer_types::calls::creator as creator_calls;
use mainer_types::creator::{ArtefactKind, JobStatus};
use mainer_types::cycles_ledger::FEE;
use mainer_types::economy::{Books, EconomySettings, KindPrice, OrderKind, OrderRequest, OrderView, Payment, Quote};

const T: u128 = 1_000_000_000_000;
const ANSWERS: usize = 5;

fn buyer() -> Principal {
    user(21)
}

fn order(env: &SimEnv, creator: Principal, kind: OrderKind) -> (OrderView, Quote, u128, u128) {
    let q: Quote = env.call(buyer(), creator, &creator_calls::PRICE_OF, (kind.clone(),)).unwrap().unwrap();
    let req = OrderRequest {
        kind,
        payment: Payment::CyclesLedger { created_at_time: None },
        controller_settings: Some(test_settings()),
        keep_funds_on_failure: None,
    };
    let books: Books = env.call(admin(), creator, &creator_calls::BOOKS, ()).unwrap().unwrap();
    let before = env.cycle_balance(creator);
    let o = env.call(buyer(), creator, &creator_calls::ORDER_MAINER, (req,)).unwrap().unwrap();
    let j = run_until_job_done(env, creator, o.job, 900);
    assert_eq!(j.status, JobStatus::Done, "{j:?}");
    let after: Books = env.call(admin(), creator, &creator_calls::BOOKS, ()).unwrap().unwrap();
    let booked = (after.received - books.received) - (after.spent_on_canisters - books.spent_on_canisters);
    let own_cost = booked - (env.cycle_balance(creator) - before);
    (o, q, own_cost, j.slots.len() as u128)
}

fn main() {
    let ledger_wasm = match cycles_ledger_wasm() {
        Ok(w) => w,
        Err(why) => return println!("{why}"),
    };
    let env = SimEnv::new();
    let ledger = deploy_cycles_ledger(&env, &ledger_wasm, &[(buyer(), 100 * T)]);
    let f = deploy_factory(&env, None);
    upload_artefact(&env, f.creator, ArtefactKind::ControllerWasm, "c.wasm", &wasm("mainer_controller"));
    upload_artefact(&env, f.creator, ArtefactKind::LlmWasm, "llm.wasm", &wasm("llm"));
    upload_artefact(&env, f.creator, ArtefactKind::Model, "stories.gguf", &stories_model());
    let settings = EconomySettings {
        cycles_ledger: Some(ledger),
        own: KindPrice { controller_cycles: 2 * T, llm_cycles: 5 * T, fee: 100_000_000_000 },
        share_agent: KindPrice { controller_cycles: T, llm_cycles: 0, fee: 100_000_000_000 },
        ..EconomySettings::default()
    };
    env.call(admin(), f.creator, &creator_calls::SET_ECONOMY, (settings,)).unwrap().unwrap();
    let service = {
        let mut req = mainer_request(MainerRole::ShareService, 1, None, 8);
        req.llm_cycles = Some(5 * T);
        let j = create_mainer(&env, f.creator, req).unwrap();
        controller_of(&run_until_job_done(&env, f.creator, j.id, 900))
    };
    approve(&env, ledger, buyer(), f.creator, 50 * T).unwrap();
    let start = balance(&env, ledger, buyer());
    let (own, own_q, own_creator_cost, _) = order(&env, f.creator, OrderKind::Own { llm_count: 1 });
    let own_paid = start - balance(&env, ledger, buyer());
    let agent_kind = OrderKind::ShareAgent { share_service: Some(service) };
    let (a1, agent_q, agent_creator_cost, _) = order(&env, f.creator, agent_kind.clone());
    let (a2, _, _, _) = order(&env, f.creator, agent_kind);
    let job = |id| integration_tests::factory::job(&env, f.creator, id);
    let own_job = job(own.job);
    let (own_c, own_llm) = (controller_of(&own_job), own_job.slots[1].canister.unwrap());
    let (a1, a2) = (controller_of(&job(a1.job)), controller_of(&job(a2.job)));
    let service_llm = env
        .call(admin(), service, &mainer_types::calls::controller::LIST_LLMS, ())
        .unwrap()
        .unwrap()
        .first()
        .map(|l| l.canister)
        .unwrap();

    let watched = [own_c, own_llm, a1, a2, service, service_llm];
    let before: Vec<u128> = watched.iter().map(|c| env.cycle_balance(*c)).collect();
    let t0 = env.time_ns();
    for i in 0..ANSWERS {
        add_challenge(&env, f.game, &format!("Once upon a time there was a cat number {i}"), 12);
    }
    let miners = [own_c, a1, a2];
    let mut seconds = 0;
    while !miners.iter().all(|m| submissions_by_mainer(&env, f.game, *m).len() == ANSWERS) {
        run_for(&env, 1);
        seconds += 1;
        assert!(seconds < 3_000, "the answers did not complete");
    }
    let spent: Vec<u128> = watched.iter().zip(&before).map(|(c, b)| b - env.cycle_balance(*c)).collect();
    let n = ANSWERS as u128;
    let own_per_answer = (spent[0] + spent[1]) / n;
    let service_share = (spent[4] + spent[5]) / 2;
    let agent_per_answer = (spent[2] + service_share) / n;
    let elapsed = (env.time_ns() - t0) / 1_000_000_000;

    println!("## Economy benchmark: what orders cost and what an answer costs\n");
    println!("On the simulator (its IC fee schedule, a 13-node subnet), with DFINITY's cycles ledger v1.0.6 and");
    println!("our `llm` canister running stories260K; prices as set in the benchmark (Own: 2 T for the controller,");
    println!("5 T per LLM, fee 0.1 T; ShareAgent: 1 T, fee 0.1 T). {ANSWERS} challenges of 12 tokens; cycles spent");
    println!("include everything the canisters paid over the {elapsed} simulated seconds (timers and storage too).\n");
    println!("| measure | Own (1 LLM) | ShareAgent |");
    println!("|---|---:|---:|");
    println!("| cycles for the new canisters | {} | {} |", own_q.canister_cycles, agent_q.canister_cycles);
    println!("| creation fees (the IC's) | {} | {} |", own_q.creation_fees, agent_q.creation_fees);
    println!("| the creator's fee | {} | {} |", own_q.fee, agent_q.fee);
    println!("| paid with attached cycles | {} | {} |", own_q.attached_cycles, agent_q.attached_cycles);
    println!(
        "| paid through the ledger (`icrc2_transfer_from` amount) | {} | {} |",
        own_q.ledger_amount, agent_q.ledger_amount
    );
    println!(
        "| taken from the user's ledger account (amount + transfer_from fee) | {own_paid} | {} |",
        agent_q.ledger_amount + FEE
    );
    println!(
        "| the creator's own messages per order (its balance vs its books) | {own_creator_cost} | {agent_creator_cost} |"
    );
    println!("| cycles per answer: the mAIner's controller | {} | {} |", spent[0] / n, spent[2] / n);
    println!(
        "| cycles per answer: its LLM (Own) / its share of the ShareService and its LLM (2 agents) | {} | {} |",
        spent[1] / n,
        service_share / n
    );
    println!("| cycles per answer, total | {own_per_answer} | {agent_per_answer} |");
    println!(
        "| answers a mAIner's canister cycles buy at that rate | {} | {} |",
        own_q.canister_cycles / own_per_answer.max(1),
        agent_q.canister_cycles / agent_per_answer.max(1)
    );
}
