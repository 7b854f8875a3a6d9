//! Endpoints of the economy: users quote, order and pay for mAIners (the
//! caller becomes the owner) and top them up; admins set prices and limits
//! and read the books.

use candid::Principal;
use ic_cdk::api::msg_caller;
use ic_cdk::{query, update};
use mainer_types::MainerRole;
use mainer_types::calls::controller as controller_calls;
use mainer_types::creator::{CreateMainerRequest, CreatorError, CreatorResult};
use mainer_types::cycles_ledger::FEE as LEDGER_FEE;
use mainer_types::economy::{
    Books, EconomySettings, OrderKind, OrderRequest, OrderView, Payer, Payment, PaymentError, Quote, TopUpRequest,
};

use crate::access;
use crate::economy::{self, Funds, order_name};
use crate::ic::{IcRuntime, Runtime};
use crate::job::{Job, MainerPlan};
use crate::payment::{self, LedgerPayment};
use crate::state::{mutate_state, read_state};

fn invalid(why: impl Into<String>) -> CreatorError {
    CreatorError::InvalidInput(why.into())
}

/// What an order of `kind` costs now.
#[query]
fn price_of(kind: OrderKind) -> CreatorResult<Quote> {
    let eco = read_state(|s| s.economy());
    economy::quote(&eco, &kind, IcRuntime.create_canister_fee()).map_err(invalid)
}

#[query]
fn economy() -> EconomySettings {
    read_state(|s| s.economy())
}

/// Admins: prices, limits and the cycles ledger of user orders.
#[update]
fn set_economy(settings: EconomySettings) -> CreatorResult<()> {
    access::require_admin(&msg_caller())?;
    economy::validate(&settings).map_err(invalid)?;
    mutate_state(|s| s.set_economy(settings));
    Ok(())
}

/// Admins: the creator's books.
#[query]
fn books() -> CreatorResult<Books> {
    access::require_admin(&msg_caller())?;
    Ok(read_state(|s| s.books()))
}

/// Admins and the order's owner.
#[query]
fn order(job: u64) -> CreatorResult<OrderView> {
    let caller = msg_caller();
    let found = read_state(|s| s.job(job)).and_then(|j| j.order_view());
    if found.as_ref().is_none_or(|o| o.owner != caller) {
        access::require_admin(&caller)?;
    }
    found.ok_or_else(|| CreatorError::NotFound(format!("order {job}")))
}

/// The caller's orders, oldest first.
#[query]
fn my_orders() -> Vec<OrderView> {
    read_state(|s| s.orders_of(msg_caller())).iter().filter_map(Job::order_view).collect()
}

/// The plan of an order: the kind's price, the caller as owner, the newest artefacts.
fn order_plan(eco: &EconomySettings, req: &OrderRequest, owner: Principal) -> CreatorResult<(MainerPlan, u32)> {
    let (price, llm_count) = economy::price_of(eco, &req.kind);
    let (role, share_service) = match &req.kind {
        OrderKind::Own { .. } => (MainerRole::Own, None),
        OrderKind::ShareAgent { share_service: Some(s) } => match read_state(|st| st.share_service_agents(s)) {
            None => return Err(CreatorError::NotFound(format!("{s} is not a ShareService of this creator"))),
            Some(n) if n >= eco.agents_per_share_service => return Err(CreatorError::NoShareServiceWithRoom),
            Some(_) => (MainerRole::ShareAgent, Some(*s)),
        },
        OrderKind::ShareAgent { share_service: None } => {
            let s = read_state(|st| st.share_service_with_room(eco.agents_per_share_service))
                .ok_or(CreatorError::NoShareServiceWithRoom)?;
            (MainerRole::ShareAgent, Some(s))
        }
    };
    crate::jobs_api::plan(CreateMainerRequest {
        role,
        owner,
        share_service,
        llm_count,
        controller_cycles: Some(price.controller_cycles),
        llm_cycles: Some(price.llm_cycles),
        controller_wasm: None,
        llm_wasm: None,
        model: None,
        controller_settings: req.controller_settings.clone(),
        max_tokens_update: None,
    })
}

/// Refuses an order over the per-user or the total limit.
fn check_limits(eco: &EconomySettings, owner: Principal) -> CreatorResult<()> {
    let (mine, total) = read_state(|s| {
        let refunded = |j: &Job| j.funds.as_ref().is_some_and(|f| f.refund.is_some());
        (s.orders_of(owner).iter().filter(|j| !refunded(j)).count() as u64, s.books().orders)
    });
    if mine >= eco.max_orders_per_user as u64 {
        return Err(CreatorError::LimitReached {
            what: "orders of one user".into(),
            limit: eco.max_orders_per_user as u64,
        });
    }
    if total >= eco.max_orders_total {
        return Err(CreatorError::LimitReached { what: "orders in total".into(), limit: eco.max_orders_total });
    }
    Ok(())
}

/// Stores the paid job and books what it brought.
fn place(plan: MainerPlan, llm_count: u32, funds: Funds, key: Option<(Principal, u64)>, ledger_fee: u128) -> OrderView {
    let now = IcRuntime.time();
    let paid = funds.paid;
    mutate_state(|s| {
        let mut job = Job::new(s.next_job_id(), plan, llm_count, now);
        job.funds = Some(funds);
        let view = job.order_view().expect("a paid job");
        canister_common::info!("order {}: {:?} for {} paid {paid} cycles", job.id, job.plan.role, job.plan.owner);
        s.insert_order(job, key);
        s.book(|b| {
            b.received = b.received.saturating_add(paid);
            b.ledger_fees = b.ledger_fees.saturating_add(ledger_fee);
            b.orders += 1;
        });
        view
    })
}

/// Orders a mAIner for the caller, who becomes its owner, and pays for it
/// (see `Payment`); returns the order with its job at once (follow it with
/// `job` or `order`). A job that cannot finish refunds what it did not spend.
#[update]
async fn order_mainer(req: OrderRequest) -> CreatorResult<OrderView> {
    let caller = msg_caller();
    if caller == Principal::anonymous() {
        return Err(CreatorError::Unauthorized("the anonymous principal cannot own a mAIner".into()));
    }
    let rt = IcRuntime;
    let eco = read_state(|s| s.economy());
    // The same order again (a retried call): the order as placed, no charge.
    let existing =
        |t: u64| read_state(|s| s.order_by_key(caller, t).and_then(|id| s.job(id))).and_then(|j| j.order_view());
    if let Payment::CyclesLedger { created_at_time: Some(t) } = req.payment
        && let Some(placed) = existing(t)
    {
        return Ok(placed);
    }
    let quote = economy::quote(&eco, &req.kind, rt.create_canister_fee()).map_err(invalid)?;
    let (plan, llm_count) = order_plan(&eco, &req, caller)?;
    check_limits(&eco, caller)?;
    let keep_on_failure = req.keep_funds_on_failure;
    let funds = |payer, paid| Funds {
        kind: req.kind.clone(),
        payer,
        paid,
        spent: 0,
        fee: quote.fee,
        refund: None,
        keep_on_failure,
    };
    match req.payment {
        Payment::AttachedCycles => {
            let attached = ic_cdk::api::msg_cycles_available();
            if attached < quote.attached_cycles {
                return Err(CreatorError::Payment(PaymentError::NotEnoughAttached {
                    needed: quote.attached_cycles,
                    attached,
                }));
            }
            let paid = ic_cdk::api::msg_cycles_accept(quote.attached_cycles);
            Ok(place(plan, llm_count, funds(Payer::Canister(caller), paid), None, 0))
        }
        Payment::CyclesLedger { created_at_time } => {
            let ledger = eco.cycles_ledger.ok_or(CreatorError::Payment(PaymentError::NoLedger))?;
            let t = created_at_time.unwrap_or_else(|| rt.time());
            let p = LedgerPayment {
                ledger,
                payer: caller,
                amount: quote.ledger_amount,
                created_at_time: t,
                name: order_name("order", caller, t),
            };
            let paid = payment::pull(&rt, &p, rt.canister_self()).await?;
            // A concurrent call of the same order may have placed it meanwhile.
            if let Some(placed) = existing(t) {
                return Ok(placed);
            }
            Ok(place(plan, llm_count, funds(Payer::Ledger(caller), paid), Some((caller, t)), LEDGER_FEE))
        }
    }
}

/// Admins, and the owner or payer of a paid job.
pub fn require_order_party(caller: &Principal, id: u64) -> CreatorResult<()> {
    if access::is_admin(caller) {
        return Ok(());
    }
    let party = read_state(|s| s.job(id)).and_then(|j| {
        let payer = match j.funds?.payer {
            Payer::Ledger(p) | Payer::Canister(p) => p,
        };
        Some(j.plan.owner == *caller || payer == *caller)
    });
    if party == Some(true) {
        Ok(())
    } else {
        Err(CreatorError::Unauthorized("the order's owner or payer, or an admin".into()))
    }
}

/// The owner of a failed order that kept its funds (`keep_funds_on_failure`)
/// takes them back: refunded once, like any refund (and the job can no
/// longer be retried).
#[update]
fn refund_order(job: u64) -> CreatorResult<OrderView> {
    require_order_party(&msg_caller(), job)?;
    let j = mutate_state(|s| s.refund_kept(job))?;
    Ok(j.order_view().expect("a paid job has an order view"))
}

/// Admins: a refund whose outcome was lost in an upgrade (`Unknown`), once
/// checked on the ledger or the receiver: `arrived` marks it done, else it
/// is sent again.
#[update]
fn settle_refund(job: u64, arrived: bool) -> CreatorResult<OrderView> {
    access::require_admin(&msg_caller())?;
    let j = mutate_state(|s| s.settle_refund(job, arrived, ic_cdk::api::time()))?;
    Ok(j.order_view().expect("a paid job has an order view"))
}

/// A mAIner's controller (or an admin): the cycle balance of one of its LLMs,
/// which only the creator, their sole IC controller, can read; the
/// controller funds an LLM that runs below its threshold.
#[update]
async fn llm_cycles(llm: Principal) -> CreatorResult<u128> {
    let caller = msg_caller();
    let mainer = read_state(|s| s.job_of_llm(&llm).and_then(|j| j.controller.canister));
    if mainer != Some(caller) {
        access::require_admin(&caller)?;
    }
    if mainer.is_none() {
        return Err(CreatorError::NotFound(format!("{llm} is not an LLM of a mAIner made by this creator")));
    }
    let info = IcRuntime
        .canister_info(llm)
        .await
        .map_err(|e| CreatorError::InvalidInput(format!("canister_status of {llm}: {e}")))?;
    Ok(info.cycles)
}

/// Tells the mAIner of its top-up (for its cycles-per-answer figure; best effort).
async fn tell_mainer(rt: &IcRuntime, mainer: Principal, amount: u128) {
    if let Err(e) = crate::management::call(rt, mainer, &controller_calls::NOTE_TOP_UP, (amount,)).await {
        canister_common::warn!("note_top_up on {mainer}: {}", e.message);
    }
}

/// Anyone: gives a mAIner made by this creator `amount` cycles, paid on the
/// cycles ledger (withdrawn straight to the mAIner; approve `amount` plus
/// two ledger fees) or attached to the call (at most `amount` is taken).
/// Returns the cycles the mAIner got.
#[update]
async fn top_up(req: TopUpRequest) -> CreatorResult<u128> {
    let caller = msg_caller();
    let rt = IcRuntime;
    let eco = read_state(|s| s.economy());
    let known = read_state(|s| s.all_controllers().contains(&req.mainer));
    if !known {
        return Err(CreatorError::NotFound(format!("{} is not a mAIner of this creator", req.mainer)));
    }
    if req.amount < eco.min_top_up || req.amount >= 1 << 100 {
        return Err(invalid(format!("a top-up is at least {} cycles (and below 2^100)", eco.min_top_up)));
    }
    match req.payment {
        Payment::AttachedCycles => {
            let attached = ic_cdk::api::msg_cycles_available();
            if attached < eco.min_top_up {
                return Err(CreatorError::Payment(PaymentError::NotEnoughAttached {
                    needed: eco.min_top_up,
                    attached,
                }));
            }
            let amount = ic_cdk::api::msg_cycles_accept(req.amount.min(attached));
            mutate_state(|s| s.book(|b| b.received = b.received.saturating_add(amount)));
            match rt.deposit_cycles(req.mainer, amount).await {
                Ok(()) => {
                    mutate_state(|s| {
                        s.book(|b| {
                            b.forwarded = b.forwarded.saturating_add(amount);
                            b.top_ups += 1;
                        })
                    });
                    tell_mainer(&rt, req.mainer, amount).await;
                    Ok(amount)
                }
                Err(e) => {
                    let back = rt.deposit_cycles(caller, amount).await.is_ok();
                    if back {
                        mutate_state(|s| s.book(|b| b.refunded = b.refunded.saturating_add(amount)));
                    }
                    Err(CreatorError::Payment(PaymentError::Ledger {
                        message: format!("deposit_cycles to {}: {e}", req.mainer),
                        charged: back,
                    }))
                }
            }
        }
        Payment::CyclesLedger { created_at_time } => {
            let ledger = eco.cycles_ledger.ok_or(CreatorError::Payment(PaymentError::NoLedger))?;
            let t = created_at_time.unwrap_or_else(|| rt.time());
            let p = LedgerPayment {
                ledger,
                payer: caller,
                amount: req.amount + LEDGER_FEE,
                created_at_time: t,
                name: order_name("top-up", caller, t),
            };
            let got = payment::pull(&rt, &p, req.mainer).await?;
            mutate_state(|s| s.book(|b| b.top_ups += 1));
            tell_mainer(&rt, req.mainer, got).await;
            Ok(got)
        }
    }
}
