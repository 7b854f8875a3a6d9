//! Moving users' money, through a [`Runtime`]: pulling a payment from the
//! cycles ledger (ICRC-2 `icrc2_transfer_from` into the creator's subaccount
//! for the order, then `withdraw` of it as cycles), and sending refunds back
//! (a ledger `deposit` or the management canister's `deposit_cycles`).
//!
//! Every ledger call of an order has the same arguments each time it is
//! made (the order's `created_at_time`, memo and subaccount), so a call
//! repeated after a lost reply, a trap or a second call of the user is
//! answered `Duplicate` and charges nothing more. Refunds are sent with
//! guaranteed-response calls (the cycles come back on a reject) and their
//! state is written before the call, so each is sent exactly once.

use candid::{Nat, Principal};
use mainer_types::calls::cycles_ledger as ledger;
use mainer_types::creator::CreatorError;
use mainer_types::cycles_ledger::{
    Account, DepositArgs, FEE, TransferArgs, TransferError, TransferFromArgs, TransferFromError, WithdrawArgs,
    WithdrawError, to_u128,
};
use mainer_types::economy::{Payer, PaymentError, RefundStatus};
use serde_bytes::ByteBuf;

use crate::ic::{CallError, Runtime};
use crate::state::{mutate_state, read_state};

/// Calls of one ledger operation before it is given up (all with the same arguments).
const LEDGER_TRIES: u32 = 3;
const NANOS: u64 = 1_000_000_000;

/// A payment on the ledger: who pays, how much `icrc2_transfer_from`
/// moves, and the order's name (memo and the creator's subaccount).
pub struct LedgerPayment {
    pub ledger: Principal,
    pub payer: Principal,
    pub amount: u128,
    pub created_at_time: u64,
    pub name: [u8; 32],
}

fn pay_err(e: PaymentError) -> CreatorError {
    CreatorError::Payment(e)
}

/// A call repeated while its outcome is unknown; a refusal or a reply ends it.
async fn with_retries<RT: Runtime>(
    rt: &RT,
    ledger: Principal,
    method: &'static str,
    arg: Vec<u8>,
) -> Result<Vec<u8>, CallError> {
    let mut last = None;
    for _ in 0..LEDGER_TRIES {
        match rt.call_raw(ledger, method, arg.clone()).await {
            Ok(reply) => return Ok(reply),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("tried at least once"))
}

/// Pulls `p.amount` from the payer into the order's subaccount, then
/// withdraws it (less the ledger's fee) as cycles to `cycles_to` (the creator
/// for an order, the mAIner for a top-up). Returns the cycles that arrived.
/// If the withdrawal cannot be made the amount goes back to the payer.
pub async fn pull<RT: Runtime>(rt: &RT, p: &LedgerPayment, cycles_to: Principal) -> Result<u128, CreatorError> {
    let me = rt.canister_self();
    let sub = ByteBuf::from(p.name.to_vec());
    let args = TransferFromArgs {
        spender_subaccount: None,
        from: Account::of(p.payer),
        to: Account { owner: me, subaccount: Some(sub.clone()) },
        amount: Nat::from(p.amount),
        fee: None,
        memo: Some(ByteBuf::from(p.name.to_vec())),
        created_at_time: Some(p.created_at_time),
    };
    let arg = ledger::TRANSFER_FROM.encode((args,)).expect("encodes");
    let reply = with_retries(rt, p.ledger, ledger::TRANSFER_FROM.name, arg)
        .await
        .map_err(|e| pay_err(PaymentError::Ledger { message: format!("icrc2_transfer_from: {e}"), charged: false }))?;
    let result = ledger::TRANSFER_FROM
        .decode(&reply)
        .map_err(|e| pay_err(PaymentError::Ledger { message: format!("icrc2_transfer_from: {e}"), charged: false }))?;
    match result {
        Ok(_) => {}
        // This very order was charged before (a repeated call): not again.
        Err(TransferFromError::Duplicate { duplicate_of }) => {
            canister_common::info!("order payment of {} is block {duplicate_of}, already made", p.payer);
        }
        Err(TransferFromError::InsufficientAllowance { allowance }) => {
            return Err(pay_err(PaymentError::InsufficientAllowance {
                allowance: to_u128(&allowance),
                needed: p.amount + FEE,
            }));
        }
        Err(TransferFromError::InsufficientFunds { balance }) => {
            return Err(pay_err(PaymentError::InsufficientFunds { balance: to_u128(&balance) }));
        }
        Err(TransferFromError::TooOld) => return Err(pay_err(PaymentError::BadTime("too old".into()))),
        Err(TransferFromError::CreatedInFuture { ledger_time }) => {
            return Err(pay_err(PaymentError::BadTime(format!("in the future of the ledger's {ledger_time}"))));
        }
        Err(e) => return Err(pay_err(PaymentError::Ledger { message: format!("{e:?}"), charged: false })),
    }
    let cycles = p.amount - FEE;
    let args = WithdrawArgs {
        amount: Nat::from(cycles),
        from_subaccount: Some(sub.clone()),
        to: cycles_to,
        created_at_time: Some(p.created_at_time),
    };
    let arg = ledger::WITHDRAW.encode((args,)).expect("encodes");
    let why = match with_retries(rt, p.ledger, ledger::WITHDRAW.name, arg).await.map(|r| ledger::WITHDRAW.decode(&r)) {
        Ok(Ok(Ok(_) | Err(WithdrawError::Duplicate { .. }))) => return Ok(cycles),
        Ok(Ok(Err(e))) => format!("withdraw: {e:?}"),
        Ok(Err(e)) => format!("withdraw: {e}"),
        Err(e) => format!("withdraw: {e}"),
    };
    give_back(rt, p, &sub).await;
    Err(pay_err(PaymentError::Ledger { message: why, charged: true }))
}

/// Sends what is left in the order's subaccount back to the payer (best
/// effort, deduplicated like the rest: a failed withdrawal to a stopped
/// canister leaves the amount less two fees there).
async fn give_back<RT: Runtime>(rt: &RT, p: &LedgerPayment, sub: &ByteBuf) {
    let me = Account { owner: rt.canister_self(), subaccount: Some(sub.clone()) };
    let balance = match rt
        .call_raw(p.ledger, ledger::BALANCE_OF.name, ledger::BALANCE_OF.encode((me,)).expect("encodes"))
        .await
    {
        Ok(r) => ledger::BALANCE_OF.decode(&r).map(|n| to_u128(&n)).unwrap_or(0),
        Err(_) => 0,
    };
    if balance <= FEE {
        return;
    }
    let args = TransferArgs {
        from_subaccount: Some(sub.clone()),
        to: Account::of(p.payer),
        amount: Nat::from(balance - FEE),
        fee: None,
        memo: Some(ByteBuf::from(p.name.to_vec())),
        created_at_time: Some(p.created_at_time),
    };
    let arg = ledger::TRANSFER.encode((args,)).expect("encodes");
    match with_retries(rt, p.ledger, ledger::TRANSFER.name, arg).await.map(|r| ledger::TRANSFER.decode(&r)) {
        Ok(Ok(Ok(_) | Err(TransferError::Duplicate { .. }))) => {
            canister_common::warn!("payment of {} sent back: {} cycles", p.payer, balance - FEE);
        }
        other => canister_common::error!("payment of {} could not be sent back: {other:?}", p.payer),
    }
}

// ----------------------------------------------------------------------
// Refunds
// ----------------------------------------------------------------------

/// Sends the refund of job `id` if it is due: marks it in flight, makes the
/// call, records the outcome (a failed call is due again after a back-off).
pub async fn send_refund<RT: Runtime>(rt: &RT, id: u64) {
    let now = rt.time();
    let Some(job) = read_state(|s| s.job(id)) else { return };
    let Some(funds) = job.funds.clone() else { return };
    let Some(refund) = funds.refund.clone() else { return };
    if refund.status != RefundStatus::Due || refund.next_attempt_ns > now {
        return;
    }
    let ledger = read_state(|s| s.economy().cycles_ledger);
    mutate_state(|s| {
        s.update_job(id, |j| {
            if let Some(r) = j.funds.as_mut().and_then(|f| f.refund.as_mut()) {
                r.status = RefundStatus::InFlight;
            }
        })
    });
    let amount = refund.amount;
    let result: Result<(), String> = match (&funds.payer, ledger) {
        (Payer::Ledger(owner), Some(ledger)) => {
            let memo = crate::economy::order_name("refund", *owner, id);
            let args = DepositArgs { to: Account::of(*owner), memo: Some(ByteBuf::from(memo.to_vec())) };
            let arg = ledger::DEPOSIT.encode((args,)).expect("encodes");
            match rt.call_with_cycles(ledger, ledger::DEPOSIT.name, arg, amount).await {
                Ok(reply) => {
                    // The ledger took the cycles (it accepts all it is sent); an
                    // undecodable reply does not change that.
                    if let Err(e) = ledger::DEPOSIT.decode(&reply) {
                        canister_common::warn!("job {id}: refund deposit reply: {e}");
                    }
                    Ok(())
                }
                Err(e) => Err(format!("deposit: {e}")),
            }
        }
        (Payer::Ledger(_), None) => Err("no cycles ledger is configured".into()),
        (Payer::Canister(c), _) => rt.deposit_cycles(*c, amount).await.map_err(|e| format!("deposit_cycles: {e}")),
    };
    let now = rt.time();
    mutate_state(|s| {
        s.update_job(id, |j| {
            let Some(r) = j.funds.as_mut().and_then(|f| f.refund.as_mut()) else { return };
            match &result {
                Ok(()) => r.status = RefundStatus::Done { at_ns: now },
                Err(e) => {
                    r.status = RefundStatus::Due;
                    r.attempts += 1;
                    r.last_error = Some(e.clone());
                    // 4, 8, 16 ... seconds, at most ten minutes.
                    let delay = (4u64 << r.attempts.min(8)).min(600);
                    r.next_attempt_ns = now.saturating_add(delay * NANOS);
                }
            }
        });
        match &result {
            Ok(()) => {
                s.book(|b| b.refunded += amount);
                canister_common::info!("job {id}: refunded {amount} cycles to {:?}", funds.payer);
            }
            Err(e) => canister_common::warn!("job {id}: refund of {amount} cycles failed ({e}); retried later"),
        }
    });
}
