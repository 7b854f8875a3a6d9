//! The economy, for users and operators: quotes, orders paid on the cycles
//! ledger (approve, then `order_mainer`), orders, top-ups, burn rates, a
//! mAIner's cycles, and the creator's books.

use candid::{Nat, Principal};
use mainer_types::calls::{controller as controller_calls, creator as creator_calls, cycles_ledger as ledger_calls};
use mainer_types::controller::BurnRate;
use mainer_types::cycles_ledger::{Account, ApproveArgs, FEE};
use mainer_types::economy::{
    Books, EconomySettings, OrderKind, OrderRequest, OrderView, Payment, Quote, RefundStatus, TopUpRequest,
};

use crate::cli::{KindArgs, OrderArgs};
use crate::config::parse_principal;
use crate::ctx::Ctx;
use crate::error::CliError;
use crate::fmt::{self, Table};
use crate::outln;

fn kind(a: &KindArgs) -> Result<OrderKind, CliError> {
    let service = a.share_service.as_deref().map(|s| parse_principal(s, "--share-service")).transpose()?;
    match (a.kind.own, a.kind.share_agent, service) {
        (Some(n), false, None) => Ok(OrderKind::Own { llm_count: n }),
        (None, true, service) => Ok(OrderKind::ShareAgent { share_service: service }),
        _ => Err(CliError::Usage("--share-service goes with --share-agent".into())),
    }
}

fn quote(ctx: &mut Ctx, kind: &OrderKind) -> Result<Quote, CliError> {
    ctx.creator_call(&creator_calls::PRICE_OF, (kind.clone(),))
}

fn print_quote(ctx: &mut Ctx, q: &Quote) {
    outln!(ctx, "cycles for the new canisters  {}", fmt::cycles(q.canister_cycles));
    outln!(ctx, "creation fees                 {}", fmt::cycles(q.creation_fees));
    outln!(ctx, "fee                           {}", fmt::cycles(q.fee));
    outln!(ctx, "with attached cycles          {}", fmt::cycles(q.attached_cycles));
    outln!(ctx, "on the cycles ledger          {} (approve {})", fmt::cycles(q.ledger_amount), fmt::cycles(q.approve));
}

pub fn price(ctx: &mut Ctx, a: &KindArgs) -> Result<(), CliError> {
    let q = quote(ctx, &kind(a)?)?;
    if ctx.json {
        ctx.print_json(&q);
    } else {
        print_quote(ctx, &q);
    }
    Ok(())
}

/// The cycles ledger the creator takes payments on.
fn ledger(ctx: &mut Ctx) -> Result<Principal, CliError> {
    let creator = ctx.creator()?;
    let eco: EconomySettings = ctx.call(creator, &creator_calls::ECONOMY, ())?;
    eco.cycles_ledger.ok_or_else(|| CliError::Canister("the creator takes no cycles-ledger payments".into()))
}

/// Approves the creator for `amount` on the ledger (costs the ledger's fee).
fn approve(ctx: &mut Ctx, ledger: Principal, amount: u128) -> Result<(), CliError> {
    let args = ApproveArgs {
        from_subaccount: None,
        spender: Account::of(ctx.creator()?),
        amount: Nat::from(amount),
        expected_allowance: None,
        expires_at: None,
        fee: None,
        memo: None,
        created_at_time: None,
    };
    ctx.call(ledger, &ledger_calls::APPROVE, (args,))?
        .map(|_| ())
        .map_err(|e| CliError::Canister(format!("icrc2_approve: {e:?}")))
}

fn refund_text(o: &OrderView) -> String {
    match o.refund.as_ref() {
        None => "-".into(),
        Some(r) => match &r.status {
            RefundStatus::Done { .. } => format!("{} refunded", fmt::cycles(r.amount)),
            other => format!("{} {other:?}", fmt::cycles(r.amount)),
        },
    }
}

pub fn order(ctx: &mut Ctx, a: &OrderArgs) -> Result<(), CliError> {
    let kind = kind(&a.kind)?;
    let q = quote(ctx, &kind)?;
    if !a.no_approve {
        let ledger = ledger(ctx)?;
        approve(ctx, ledger, q.approve)?;
        crate::note!(ctx, "approved the creator for {} on {ledger}", fmt::cycles(q.approve));
    }
    let req = OrderRequest {
        kind,
        payment: Payment::CyclesLedger { created_at_time: a.created_at },
        controller_settings: None,
        keep_funds_on_failure: None,
    };
    let o: OrderView = ctx.creator_call(&creator_calls::ORDER_MAINER, (req,))?;
    if a.follow {
        if !ctx.json {
            outln!(ctx, "order {}: paid {}", o.job, fmt::cycles(o.paid));
        }
        return super::factory::follow_job(ctx, o.job);
    }
    if ctx.json {
        ctx.print_json(&o);
    } else {
        outln!(ctx, "order {}: paid {}; you own the mAIner it makes", o.job, fmt::cycles(o.paid));
        outln!(ctx, "follow it with: mainer jobs {} --follow", o.job);
    }
    Ok(())
}

pub fn orders(ctx: &mut Ctx) -> Result<(), CliError> {
    let creator = ctx.creator()?;
    let all: Vec<OrderView> = ctx.call(creator, &creator_calls::MY_ORDERS, ())?;
    if ctx.json {
        ctx.print_json(&all);
        return Ok(());
    }
    let mut t = Table::new(&["job", "kind", "status", "controller", "paid", "spent", "refund"]);
    for o in &all {
        t.row(vec![
            o.job.to_string(),
            format!("{:?}", o.kind),
            format!("{:?}", o.status),
            o.controller.map_or("-".into(), |c| c.to_text()),
            fmt::cycles(o.paid),
            fmt::cycles(o.spent),
            refund_text(o),
        ]);
    }
    t.write(ctx.out);
    Ok(())
}

pub fn top_up(ctx: &mut Ctx, mainer: &str, amount: &str) -> Result<(), CliError> {
    let mainer = parse_principal(mainer, "MAINER")?;
    let amount = fmt::parse_cycles(amount).map_err(CliError::Usage)?;
    let ledger = ledger(ctx)?;
    approve(ctx, ledger, amount + 2 * FEE)?;
    let req = TopUpRequest { mainer, amount, payment: Payment::CyclesLedger { created_at_time: None } };
    let got: u128 = ctx.creator_call(&creator_calls::TOP_UP, (req,))?;
    if ctx.json {
        ctx.print_json(&got);
    } else {
        outln!(ctx, "{mainer} got {}", fmt::cycles(got));
    }
    Ok(())
}

pub fn burn_rate(ctx: &mut Ctx, mainer: &str, rate: &str) -> Result<(), CliError> {
    let mainer = parse_principal(mainer, "MAINER")?;
    let rate = match rate.to_ascii_lowercase().as_str() {
        "low" => BurnRate::Low,
        "medium" => BurnRate::Medium,
        "high" => BurnRate::High,
        n => BurnRate::CyclesPerDay(fmt::parse_cycles(n).map_err(CliError::Usage)?),
    };
    let seconds = ctx.controller_call(mainer, &controller_calls::SET_BURN_RATE, (rate,))?;
    outln!(ctx, "{mainer} now pulls a challenge every {seconds} s");
    Ok(())
}

pub fn cycles(ctx: &mut Ctx, mainer: &str) -> Result<(), CliError> {
    let mainer = parse_principal(mainer, "MAINER")?;
    let r = ctx.controller_call(mainer, &controller_calls::CYCLES_REPORT, ())?;
    if ctx.json {
        ctx.print_json(&r);
        return Ok(());
    }
    outln!(ctx, "balance            {}", fmt::cycles(r.balance));
    outln!(
        ctx,
        "floor              {}{}",
        fmt::cycles(r.floor_cycles),
        if r.low_cycles { " (LowCycles: paused)" } else { "" }
    );
    outln!(ctx, "spent              {} for {} answers", fmt::cycles(r.spent), r.answers);
    outln!(ctx, "per answer         {}", r.cycles_per_answer.map_or("-".into(), fmt::cycles));
    outln!(ctx, "topped up          {}", fmt::cycles(r.received));
    outln!(ctx, "pull interval      {} s", r.pull_interval_seconds);
    Ok(())
}

pub fn books(ctx: &mut Ctx) -> Result<(), CliError> {
    let b: Books = ctx.creator_call(&creator_calls::BOOKS, ())?;
    if ctx.json {
        ctx.print_json(&b);
        return Ok(());
    }
    outln!(ctx, "orders             {} (top-ups {})", b.orders, b.top_ups);
    outln!(ctx, "received           {}", fmt::cycles(b.received));
    outln!(ctx, "spent on canisters {}", fmt::cycles(b.spent_on_canisters));
    outln!(ctx, "refunded           {}", fmt::cycles(b.refunded));
    outln!(ctx, "forwarded          {}", fmt::cycles(b.forwarded));
    outln!(ctx, "fees earned        {}", fmt::cycles(b.fees));
    outln!(ctx, "ledger fees        {}", fmt::cycles(b.ledger_fees));
    if b.refunds_unknown > 0 {
        outln!(ctx, "refunds unknown    {} (check the ledger)", b.refunds_unknown);
    }
    Ok(())
}
