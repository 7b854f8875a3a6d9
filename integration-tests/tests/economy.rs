//! The economy (issue 12) with DFINITY's real cycles ledger: users quote and
//! order mAIners and pay with ICRC-2 (approve, then the creator pulls with
//! `icrc2_transfer_from` and `withdraw`s cycles) or with cycles attached by a
//! canister; repeated calls of one order charge once (the ledger's
//! `Duplicate`); refusals are typed and charge nothing; a failed order
//! refunds what it did not spend exactly once; top-ups; limits; the books.

mod probe;

use candid::Principal;
use integration_tests::deploy::*;
use integration_tests::factory::*;
use integration_tests::ledger::{self, approve, balance};
use integration_tests::{TestEnv, TestEnvExt, new_env, user, wasm};
use mainer_types::MainerRole;
use mainer_types::calls::creator as creator_calls;
use mainer_types::creator::{ArtefactKind, CreatorError, CreatorResult, JobStatus, JobView};
use mainer_types::cycles_ledger::FEE;
use mainer_types::economy::{
    Books, EconomySettings, KindPrice, OrderKind, OrderRequest, OrderView, Payment, PaymentError, Quote, RefundStatus,
    TopUpRequest,
};
use probe::Forwarded;

const T: u128 = 1_000_000_000_000;

fn buyer() -> Principal {
    user(21)
}

fn stranger() -> Principal {
    user(9)
}

struct World {
    env: Box<dyn TestEnv>,
    f: Factory,
    ledger: Principal,
}

/// A factory with artefacts, a cycles ledger where the buyer holds 100 T,
/// and small prices; None (printed) when `../shared` lacks the ledger.
fn world() -> Option<World> {
    let wasm_gz = match ledger::cycles_ledger_wasm() {
        Ok(w) => w,
        Err(why) => {
            println!("{why}");
            return None;
        }
    };
    let env = new_env();
    let ledger = ledger::deploy_cycles_ledger(&*env, &wasm_gz, &[(buyer(), 100 * T)]);
    let f = deploy_factory(&*env, None);
    upload_artefact(&*env, f.creator, ArtefactKind::ControllerWasm, "c.wasm", &wasm("mainer_controller"));
    upload_artefact(&*env, f.creator, ArtefactKind::LlmWasm, "l.wasm", &wasm("test_llm"));
    upload_artefact(&*env, f.creator, ArtefactKind::Model, "m.gguf", &stories_model());
    let settings = EconomySettings {
        cycles_ledger: Some(ledger),
        own: KindPrice { controller_cycles: T, llm_cycles: T, fee: 10_000_000_000 },
        share_agent: KindPrice { controller_cycles: T / 2, llm_cycles: 0, fee: 10_000_000_000 },
        ..EconomySettings::default()
    };
    env.call(admin(), f.creator, &creator_calls::SET_ECONOMY, (settings,)).unwrap().unwrap();
    Some(World { env, f, ledger })
}

impl World {
    fn quote(&self, kind: OrderKind) -> Quote {
        self.env.call(buyer(), self.f.creator, &creator_calls::PRICE_OF, (kind,)).unwrap().unwrap()
    }

    fn order(&self, who: Principal, kind: OrderKind, at: Option<u64>) -> CreatorResult<OrderView> {
        let req = OrderRequest {
            kind,
            payment: Payment::CyclesLedger { created_at_time: at },
            controller_settings: Some(test_settings()),
            keep_funds_on_failure: None,
        };
        self.env.call(who, self.f.creator, &creator_calls::ORDER_MAINER, (req,)).unwrap()
    }

    fn books(&self) -> Books {
        self.env.call(admin(), self.f.creator, &creator_calls::BOOKS, ()).unwrap().unwrap()
    }

    fn balance(&self, who: Principal) -> u128 {
        balance(&*self.env, self.ledger, who)
    }

    fn job_done(&self, id: u64) -> JobView {
        run_until_job_done(&*self.env, self.f.creator, id, 900)
    }

    /// A ShareService made by an admin, for ShareAgent orders.
    fn share_service(&self) -> Principal {
        let j =
            create_mainer(&*self.env, self.f.creator, mainer_request(MainerRole::ShareService, 1, None, 4)).unwrap();
        let j = self.job_done(j.id);
        assert_eq!(j.status, JobStatus::Done, "{j:?}");
        controller_of(&j)
    }
}

/// The creator's `/logs` (JSON).
fn creator_log(env: &dyn TestEnv, creator: Principal) -> String {
    use mainer_types::http::{HttpRequest, HttpResponse};
    let resp: HttpResponse = env.query_one(admin(), creator, "http_request", HttpRequest::get("/logs")).unwrap();
    String::from_utf8(resp.body.to_vec()).unwrap()
}

fn now_ns(env: &dyn TestEnv) -> u64 {
    env.time_ns()
}

#[test]
fn a_user_pays_through_the_cycles_ledger_owns_the_mainer_and_it_mines() {
    let Some(w) = world() else { return };
    let env = &*w.env;
    let kind = OrderKind::Own { llm_count: 1 };
    let q = w.quote(kind.clone());
    approve(env, w.ledger, buyer(), w.f.creator, q.approve).unwrap();
    let before = w.balance(buyer());
    let creator_before = env.cycle_balance(w.f.creator);
    let at = now_ns(env);
    let order = w.order(buyer(), kind.clone(), Some(at)).unwrap();
    assert_eq!((order.owner, order.paid), (buyer(), q.attached_cycles));
    assert_eq!(w.balance(buyer()), before - q.ledger_amount - FEE, "the price and the transfer_from fee");
    // The same order again (a retried call): the same job, no charge.
    let again = w.order(buyer(), kind, Some(at)).unwrap();
    assert_eq!(again.job, order.job);
    assert_eq!(w.balance(buyer()), before - q.ledger_amount - FEE);
    assert_eq!(w.books().orders, 1);

    // The owner follows its job; a stranger may not.
    let r: CreatorResult<JobView> = env.call(buyer(), w.f.creator, &creator_calls::JOB, (order.job,)).unwrap();
    assert!(r.is_ok(), "{r:?}");
    let r: CreatorResult<JobView> = env.call(stranger(), w.f.creator, &creator_calls::JOB, (order.job,)).unwrap();
    assert!(matches!(r, Err(CreatorError::Unauthorized(_))), "{r:?}");
    let r = env.call(stranger(), w.f.creator, &creator_calls::ORDER, (order.job,)).unwrap();
    assert!(matches!(r, Err(CreatorError::Unauthorized(_))), "{r:?}");

    let j = w.job_done(order.job);
    assert_eq!(j.status, JobStatus::Done, "{j:?}");
    let controller = controller_of(&j);
    let mine: Vec<OrderView> = env.call(buyer(), w.f.creator, &creator_calls::MY_ORDERS, ()).unwrap();
    assert_eq!(
        (mine.len(), mine[0].controller, mine[0].spent),
        (1, Some(controller), q.canister_cycles + q.creation_fees)
    );
    let books = w.books();
    assert_eq!(books.received, q.attached_cycles);
    assert_eq!(books.spent_on_canisters, q.canister_cycles + q.creation_fees);
    assert_eq!((books.fees, books.ledger_fees, books.refunded), (q.fee, FEE, 0));
    let creator_after = env.cycle_balance(w.f.creator);
    let booked = books.received as i128 - books.spent_on_canisters as i128;
    let actual = creator_after as i128 - creator_before as i128;
    println!("creator balance change {actual}, booked {booked}: the creator's own messages cost {}", booked - actual);
    assert!((0..20_000_000_000).contains(&(booked - actual)), "books {booked} vs balance {actual}");

    add_challenge(env, w.f.game, "Once upon a time", 4);
    for _ in 0..120 {
        if !submissions_by_mainer(env, w.f.game, controller).is_empty() {
            break;
        }
        run_for(env, 1);
    }
    assert_eq!(submissions_by_mainer(env, w.f.game, controller).len(), 1, "the bought mAIner mines");
}

#[test]
fn refused_payments_are_typed_and_charge_nothing() {
    let Some(w) = world() else { return };
    let env = &*w.env;
    let kind = OrderKind::Own { llm_count: 1 };
    let q = w.quote(kind.clone());
    // No approval at all, then too small a one.
    let r = w.order(buyer(), kind.clone(), None);
    assert!(matches!(r, Err(CreatorError::Payment(PaymentError::InsufficientAllowance { allowance: 0, .. }))), "{r:?}");
    approve(env, w.ledger, buyer(), w.f.creator, q.approve - 1).unwrap();
    let before = w.balance(buyer());
    let r = w.order(buyer(), kind.clone(), None);
    assert!(matches!(r, Err(CreatorError::Payment(PaymentError::InsufficientAllowance { .. }))), "{r:?}");
    assert_eq!(w.balance(buyer()), before, "nothing charged");
    // A user without funds.
    let poor = user(22);
    let r = w.order(poor, kind.clone(), None);
    assert!(matches!(r, Err(CreatorError::Payment(_))), "{r:?}");
    // A created_at_time far in the future.
    approve(env, w.ledger, buyer(), w.f.creator, q.approve).unwrap();
    let r = w.order(buyer(), kind.clone(), Some(now_ns(env) + 3_600_000_000_000));
    assert!(matches!(r, Err(CreatorError::Payment(PaymentError::BadTime(_)))), "{r:?}");
    // Bad kinds and the anonymous principal are refused before any payment.
    let r = w.order(buyer(), OrderKind::Own { llm_count: 0 }, None);
    assert!(matches!(r, Err(CreatorError::InvalidInput(_))), "{r:?}");
    let r = w.order(buyer(), OrderKind::ShareAgent { share_service: None }, None);
    assert_eq!(r.unwrap_err(), CreatorError::NoShareServiceWithRoom);
    // The anonymous principal's ingress is refused at inspection already.
    let req = OrderRequest {
        kind,
        payment: Payment::CyclesLedger { created_at_time: None },
        controller_settings: None,
        keep_funds_on_failure: None,
    };
    let r = env.call(Principal::anonymous(), w.f.creator, &creator_calls::ORDER_MAINER, (req,));
    assert!(r.as_ref().is_err_and(|e| e.error_code == Some("IC0406")), "{r:?}");
    assert_eq!(w.balance(buyer()), before - FEE, "only the second approval's fee");
    let books = w.books();
    assert_eq!((books.orders, books.received), (0, 0));
    // Admin endpoints refuse users and strangers.
    for who in [buyer(), stranger()] {
        let r = env.call(who, w.f.creator, &creator_calls::SET_ECONOMY, (EconomySettings::default(),));
        assert!(r.as_ref().is_err_and(|e| e.error_code == Some("IC0406")), "refused at inspection: {r:?}");
        let r = env.call(who, w.f.creator, &creator_calls::BOOKS, ()).unwrap();
        assert!(matches!(r, Err(CreatorError::Unauthorized(_))), "{r:?}");
    }
}

/// Two calls of one order at the same time: the ledger answers the second
/// `icrc2_transfer_from` (and `withdraw`) `Duplicate`; one charge, one mAIner.
#[test]
fn concurrent_calls_of_one_order_charge_once() {
    let Some(w) = world() else { return };
    let env = &*w.env;
    let kind = OrderKind::Own { llm_count: 1 };
    let q = w.quote(kind.clone());
    approve(env, w.ledger, buyer(), w.f.creator, 2 * q.approve).unwrap();
    let before = w.balance(buyer());
    let at = now_ns(env);
    let req = OrderRequest {
        kind,
        payment: Payment::CyclesLedger { created_at_time: Some(at) },
        controller_settings: Some(test_settings()),
        keep_funds_on_failure: None,
    };
    let arg = creator_calls::ORDER_MAINER.encode((req,)).unwrap();
    let a = env.submit(buyer(), w.f.creator, "order_mainer", arg.clone()).unwrap();
    let b = env.submit(buyer(), w.f.creator, "order_mainer", arg).unwrap();
    let a = creator_calls::ORDER_MAINER.decode(&env.await_call(a).unwrap()).unwrap().unwrap();
    let b = creator_calls::ORDER_MAINER.decode(&env.await_call(b).unwrap()).unwrap().unwrap();
    assert_eq!(a.job, b.job, "one order");
    let logs = creator_log(env, w.f.creator);
    assert!(logs.contains("already made"), "the ledger said Duplicate to the second call: {logs}");
    assert_eq!(w.balance(buyer()), before - q.ledger_amount - FEE, "charged once");
    let books = w.books();
    assert_eq!((books.orders, books.received), (1, q.attached_cycles));
}

/// A ShareAgent order whose ShareService is stopped cannot register; the
/// job gives up and refunds what it did not spend, once, into the buyer's
/// ledger account, also when the ledger is down for a while.
#[test]
fn a_failed_order_refunds_what_it_did_not_spend_exactly_once() {
    let Some(w) = world() else { return };
    let env = &*w.env;
    let service = w.share_service();
    let kind = OrderKind::ShareAgent { share_service: None };
    let q = w.quote(kind.clone());
    approve(env, w.ledger, buyer(), w.f.creator, q.approve).unwrap();
    env.stop(admin(), service).unwrap();
    let order = w.order(buyer(), kind, None).unwrap();
    let after_payment = w.balance(buyer());
    let j = w.job_done(order.job);
    assert!(matches!(j.status, JobStatus::Failed { .. }), "{j:?}");
    env.stop(admin(), w.ledger).unwrap();
    run_for(env, 30);
    let o: OrderView = env.call(buyer(), w.f.creator, &creator_calls::ORDER, (order.job,)).unwrap().unwrap();
    let refund = o.refund.expect("a refund");
    assert_eq!(refund.amount, q.fee, "the unspent part: the price less the canister made");
    assert_eq!(refund.status, RefundStatus::Due, "retried while the ledger is stopped");
    assert!(refund.attempts >= 1 && refund.last_error.is_some(), "{refund:?}");
    env.start(admin(), w.ledger).unwrap();
    run_for(env, 700);
    let o: OrderView = env.call(buyer(), w.f.creator, &creator_calls::ORDER, (order.job,)).unwrap().unwrap();
    assert!(matches!(o.refund.as_ref().unwrap().status, RefundStatus::Done { .. }), "{o:?}");
    assert_eq!(w.balance(buyer()), after_payment + refund.amount - FEE, "the refund less the deposit fee");
    run_for(env, 120);
    assert_eq!(w.balance(buyer()), after_payment + refund.amount - FEE, "exactly once");
    let books = w.books();
    assert_eq!((books.refunded, books.fees), (refund.amount, 0));
    // A refunded order is not retried on the creator's money.
    let r = env.call(admin(), w.f.creator, &creator_calls::RETRY_JOB, (order.job,)).unwrap();
    assert!(matches!(r, Err(CreatorError::InvalidInput(_))), "{r:?}");
}

/// A canister pays with attached cycles: the price is taken, the rest comes back.
#[test]
fn a_canister_pays_with_attached_cycles_and_tops_up() {
    let Some(w) = world() else { return };
    let env = &*w.env;
    let wallet = probe::install_probe(env, "wallet");
    env.add_cycles(wallet, 20 * T);
    let kind = OrderKind::Own { llm_count: 1 };
    let q = w.quote(kind.clone());
    let req = OrderRequest {
        kind,
        payment: Payment::AttachedCycles,
        controller_settings: Some(test_settings()),
        keep_funds_on_failure: None,
    };
    let arg = creator_calls::ORDER_MAINER.encode((req,)).unwrap();
    let send = |cycles: u128| -> CreatorResult<OrderView> {
        match probe::forward(env, wallet, w.f.creator, "order_mainer", arg.clone(), cycles, None) {
            Forwarded::Reply(bytes) => creator_calls::ORDER_MAINER.decode(&bytes).unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let before = env.cycle_balance(wallet);
    let r = send(q.attached_cycles - 1);
    assert!(matches!(r, Err(CreatorError::Payment(PaymentError::NotEnoughAttached { .. }))), "{r:?}");
    assert!(before - env.cycle_balance(wallet) < 1_000_000_000, "nothing kept");
    let before = env.cycle_balance(wallet);
    let order = send(q.attached_cycles + 3 * T).unwrap();
    assert_eq!(order.paid, q.attached_cycles);
    let spent = before - env.cycle_balance(wallet);
    assert!(spent >= q.attached_cycles && spent < q.attached_cycles + 1_000_000_000, "the rest came back: {spent}");
    let j = w.job_done(order.job);
    assert_eq!(j.status, JobStatus::Done, "{j:?}");
    let controller = controller_of(&j);

    // Top-ups: attached by the wallet, and through the ledger by anyone.
    let top = TopUpRequest { mainer: controller, amount: T, payment: Payment::AttachedCycles };
    let arg = creator_calls::TOP_UP.encode((top,)).unwrap();
    let c0 = env.cycle_balance(controller);
    let got: CreatorResult<u128> = match probe::forward(env, wallet, w.f.creator, "top_up", arg, 2 * T, None) {
        Forwarded::Reply(bytes) => creator_calls::TOP_UP.decode(&bytes).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(got, Ok(T));
    assert!(env.cycle_balance(controller) >= c0 + T - 1_000_000_000);
    approve(env, w.ledger, buyer(), w.f.creator, T + 2 * FEE).unwrap();
    let c1 = env.cycle_balance(controller);
    let top = TopUpRequest { mainer: controller, amount: T, payment: Payment::CyclesLedger { created_at_time: None } };
    let got = env.call(buyer(), w.f.creator, &creator_calls::TOP_UP, (top,)).unwrap();
    assert_eq!(got, Ok(T));
    assert!(env.cycle_balance(controller) >= c1 + T - 1_000_000_000);
    let top = TopUpRequest { mainer: user(3), amount: T, payment: Payment::CyclesLedger { created_at_time: None } };
    let r = env.call(buyer(), w.f.creator, &creator_calls::TOP_UP, (top,)).unwrap();
    assert!(matches!(r, Err(CreatorError::NotFound(_))), "{r:?}");
    let books = w.books();
    assert_eq!((books.received, books.forwarded, books.top_ups), (q.attached_cycles + T, T, 2));
}

#[test]
fn order_limits_are_kept() {
    let Some(w) = world() else { return };
    let env = &*w.env;
    let mut settings: EconomySettings = env.call(admin(), w.f.creator, &creator_calls::ECONOMY, ()).unwrap();
    settings.max_orders_per_user = 1;
    env.call(admin(), w.f.creator, &creator_calls::SET_ECONOMY, (settings,)).unwrap().unwrap();
    let kind = OrderKind::Own { llm_count: 1 };
    let q = w.quote(kind.clone());
    approve(env, w.ledger, buyer(), w.f.creator, 2 * q.approve).unwrap();
    w.order(buyer(), kind.clone(), None).unwrap();
    let before = w.balance(buyer());
    let r = w.order(buyer(), kind, None);
    assert!(matches!(r, Err(CreatorError::LimitReached { limit: 1, .. })), "{r:?}");
    assert_eq!(w.balance(buyer()), before, "refused before any charge");
}

/// The Done-when path: a user orders an Own and a ShareAgent mAIner through
/// the ledger; both mine; one runs low (its floor above its balance),
/// pauses itself, is topped up through the creator and resumes.
#[test]
fn a_mainer_that_runs_low_pauses_and_resumes_after_a_top_up() {
    use mainer_types::calls::controller as controller_calls;
    use mainer_types::controller::HealthReport;
    let Some(w) = world() else { return };
    let env = &*w.env;
    let service = w.share_service();
    let own_kind = OrderKind::Own { llm_count: 1 };
    let agent_kind = OrderKind::ShareAgent { share_service: Some(service) };
    let total = w.quote(own_kind.clone()).approve + w.quote(agent_kind.clone()).approve;
    approve(env, w.ledger, buyer(), w.f.creator, total).unwrap();
    let own = w.order(buyer(), own_kind, None).unwrap();
    let agent = w.order(buyer(), agent_kind, None).unwrap();
    let own = controller_of(&w.job_done(own.job));
    let agent = controller_of(&w.job_done(agent.job));
    let answered = |n: usize, secs: u64| {
        for _ in 0..secs {
            if [own, agent].iter().all(|m| submissions_by_mainer(env, w.f.game, *m).len() >= n) {
                return true;
            }
            run_for(env, 1);
        }
        false
    };
    add_challenge(env, w.f.game, "Once upon a time", 4);
    assert!(answered(1, 300), "both bought mAIners mine");
    let health = |m| -> HealthReport { env.call(buyer(), m, &controller_calls::HEALTH, ()).unwrap() };
    assert!(health(own).cycles_per_answer.is_some_and(|c| c > 0), "{:?}", health(own));

    // The owner sets a floor above the balance: the mAIner pauses itself.
    let floor = env.cycle_balance(own) + T;
    env.call(buyer(), own, &controller_calls::SET_CYCLES_FLOOR, (floor,)).unwrap().unwrap();
    run_for(env, 15);
    let h = health(own);
    assert!(h.low_cycles && h.paused && !h.ready, "{h:?}");
    assert!(h.problems.iter().any(|p| p.contains("LowCycles")), "{h:?}");
    add_challenge(env, w.f.game, "The little dog", 4);
    assert!(!answered(2, 60), "paused for want of cycles");
    assert_eq!(submissions_by_mainer(env, w.f.game, own).len(), 1);
    assert_eq!(submissions_by_mainer(env, w.f.game, agent).len(), 2, "the other mines on");

    // Anyone tops it up through the creator, on the ledger: it resumes by itself.
    approve(env, w.ledger, buyer(), w.f.creator, 2 * T + 2 * FEE).unwrap();
    let top = TopUpRequest { mainer: own, amount: 2 * T, payment: Payment::CyclesLedger { created_at_time: None } };
    assert_eq!(env.call(buyer(), w.f.creator, &creator_calls::TOP_UP, (top,)).unwrap(), Ok(2 * T));
    assert!(answered(2, 120), "resumed after the top-up");
    let h = health(own);
    assert!(!h.low_cycles && !h.paused, "{h:?}");
    let report = env.call(buyer(), own, &controller_calls::CYCLES_REPORT, ()).unwrap().unwrap();
    assert_eq!(report.received, 2 * T, "the creator told it of the top-up: {report:?}");
    println!(
        "Own mAIner: {} cycles per answer (controller side), report {report:?}",
        report.cycles_per_answer.unwrap()
    );
}

/// The controller gives its LLM cycles only when the LLM is below the
/// funding floor (the creator reads the LLM's balance for it), and never
/// below its own floor.
#[test]
fn a_controller_funds_its_llm_only_below_the_floor() {
    use mainer_types::calls::controller as controller_calls;
    use mainer_types::controller::{ControllerError, LlmFunding};
    let Some(w) = world() else { return };
    let env = &*w.env;
    let kind = OrderKind::Own { llm_count: 1 };
    approve(env, w.ledger, buyer(), w.f.creator, w.quote(kind.clone()).approve).unwrap();
    let j = w.job_done(w.order(buyer(), kind, None).unwrap().job);
    let (controller, llm) = (controller_of(&j), j.slots[1].canister.unwrap());
    // Only the mAIner's controller (or an admin) may ask the creator for an LLM's balance.
    let r = env.call(stranger(), w.f.creator, &creator_calls::LLM_CYCLES, (llm,));
    assert!(r.as_ref().is_err_and(|e| e.error_code == Some("IC0406")), "refused at inspection: {r:?}");
    let bad = LlmFunding { floor: T, amount: T, check_seconds: 0 };
    let r = env.call(buyer(), controller, &controller_calls::SET_LLM_FUNDING, (bad,)).unwrap();
    assert!(matches!(r, Err(ControllerError::InvalidInput(_))), "{r:?}");
    let b0 = env.cycle_balance(llm);
    let funding = LlmFunding { floor: b0 + T / 8, amount: T / 4, check_seconds: 60 };
    env.call(buyer(), controller, &controller_calls::SET_LLM_FUNDING, (funding,)).unwrap().unwrap();
    run_for(env, 300);
    let b1 = env.cycle_balance(llm);
    assert!(b1 > b0 + T / 8 && b1 <= b0 + T / 4, "funded once: {b0} -> {b1}");
    let report = env.call(buyer(), controller, &controller_calls::CYCLES_REPORT, ()).unwrap().unwrap();
    assert_eq!(report.llm_funded, T / 4, "{report:?}");
    // A floor the controller cannot afford: its own floor comes first.
    let greedy = LlmFunding { floor: 100 * T, amount: 10 * T, check_seconds: 60 };
    env.call(buyer(), controller, &controller_calls::SET_LLM_FUNDING, (greedy,)).unwrap().unwrap();
    run_for(env, 130);
    let report = env.call(buyer(), controller, &controller_calls::CYCLES_REPORT, ()).unwrap().unwrap();
    assert_eq!(report.llm_funded, T / 4, "nothing more: {report:?}");
}

/// Accounting: what a mAIner spends per answer, its LLM's share included,
/// is in its `cycles_report`, in the game state's `mainer_info` (sent with
/// each submission) and in the creator's `list_mainers` (reported hourly).
#[test]
fn cycles_per_answer_reach_the_game_state_and_the_creators_list() {
    use mainer_types::PageRequest;
    use mainer_types::calls::{controller as controller_calls, game_state as game_calls};
    let env = new_env();
    let f = deploy_factory(&*env, None);
    upload_artefact(&*env, f.creator, ArtefactKind::ControllerWasm, "c.wasm", &wasm("mainer_controller"));
    upload_artefact(&*env, f.creator, ArtefactKind::LlmWasm, "l.wasm", &wasm("test_llm"));
    upload_artefact(&*env, f.creator, ArtefactKind::Model, "m.gguf", &stories_model());
    let j = create_mainer(&*env, f.creator, mainer_request(MainerRole::Own, 1, None, 4)).unwrap();
    let j = run_until_job_done(&*env, f.creator, j.id, 600);
    let controller = controller_of(&j);
    for i in 0..2 {
        add_challenge(&*env, f.game, &format!("Question {i}"), 4);
    }
    for _ in 0..600 {
        if submissions_by_mainer(&*env, f.game, controller).len() == 2 {
            break;
        }
        run_for(&*env, 1);
    }
    assert_eq!(submissions_by_mainer(&*env, f.game, controller).len(), 2);
    run_for(&*env, 3_601);

    let report = env.call(admin(), controller, &controller_calls::CYCLES_REPORT, ()).unwrap().unwrap();
    assert!(report.llm_spent > 0, "the LLM's generation is counted: {report:?}");
    assert_eq!(report.total_spent, report.spent - report.llm_funded + report.llm_spent);
    assert_eq!(report.cycles_per_answer, Some(report.total_spent / 2));
    assert!(report.cycles_per_day.is_some_and(|d| d > 0));

    let info = env.call(admin(), f.game, &game_calls::MAINER_INFO, (controller,)).unwrap().unwrap();
    let reported = info.cycles.expect("sent with the submissions");
    assert!(reported.spent > 0 && reported.spent <= report.total_spent, "{reported:?} vs {report:?}");
    assert_eq!(reported.per_answer, Some(reported.spent / 2));

    let page = env.call(admin(), f.creator, &creator_calls::LIST_MAINERS, (PageRequest::first(10),)).unwrap().unwrap();
    let view = page.items.iter().find(|m| m.controller == controller).unwrap();
    let listed = view.cycles.clone().expect("reported to the creator within the hour");
    assert!(listed.per_answer.is_some_and(|c| c > 0), "{listed:?}");
    assert!(listed.spent >= reported.spent, "reported later than the last submission");
    // Only mAIners the creator made may report.
    let forged =
        mainer_types::game::MainerCyclesReport { spent: 1, per_answer: None, per_day: None, reported_at_ns: 0 };
    let p = probe::install_probe(&*env, "reporter");
    let reply = probe::forward(&*env, p, f.creator, "report_cycles", candid::encode_one(&forged).unwrap(), 0, None);
    let Forwarded::Reply(bytes) = reply else { panic!("{reply:?}") };
    let r: CreatorResult<()> = candid::decode_one(&bytes).unwrap();
    assert!(matches!(r, Err(CreatorError::Unauthorized(_))), "{r:?}");
}
