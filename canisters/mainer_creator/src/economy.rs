//! The economy's pure logic: prices and their validation, quotes, the funds
//! of a paid job (what it received, spent, and owes back), refunds, and the
//! names of orders on the cycles ledger (memo and the creator's subaccount
//! per order, so that a repeated call is recognised and two orders never
//! look alike to the ledger's deduplication).

use candid::{CandidType, Principal};
use mainer_types::cycles_ledger::FEE as LEDGER_FEE;
use mainer_types::economy::{Books, EconomySettings, KindPrice, OrderKind, Payer, Quote, RefundStatus, RefundView};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The economy's stored state: settings and books.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct EconomyState {
    pub settings: EconomySettings,
    pub books: Books,
}

/// The money of a paid job.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Funds {
    pub kind: OrderKind,
    pub payer: Payer,
    /// Cycles received for the order.
    pub paid: u128,
    /// Cycles spent on its canisters (their cycles and creation fees).
    pub spent: u128,
    pub fee: u128,
    pub refund: Option<Refund>,
    /// The payer asked to keep the unspent cycles with the job when it
    /// fails, for `retry_job` (or a later `refund_order`); `opt`: older
    /// records lack it and are refunded at once.
    pub keep_on_failure: Option<bool>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    pub amount: u128,
    pub status: RefundStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_ns: u64,
}

impl Funds {
    /// What the job has not spent: owed back when it fails.
    pub fn unspent(&self) -> u128 {
        self.paid.saturating_sub(self.spent)
    }

    /// Makes the refund due (once: a refund already started stays as it is).
    pub fn refund_unspent(&mut self) {
        if self.refund.is_none() {
            let amount = self.unspent();
            let status = if amount == 0 { RefundStatus::Done { at_ns: 0 } } else { RefundStatus::Due };
            self.refund = Some(Refund { amount, status, attempts: 0, last_error: None, next_attempt_ns: 0 });
        }
    }

    /// What a job that gives up does with its funds: refunds them at once
    /// unless the payer asked to keep them for a retry.
    pub fn on_failure(&mut self) {
        if self.keep_on_failure != Some(true) {
            self.refund_unspent();
        }
    }

    /// Due or under way: in the index of open refunds.
    pub fn refund_open(&self) -> bool {
        self.refund.as_ref().is_some_and(|r| matches!(r.status, RefundStatus::Due | RefundStatus::InFlight))
    }
}

/// Largest price part accepted (sums of a few never wrap).
const MAX_CYCLES: u128 = 1 << 100;

pub fn validate(s: &EconomySettings) -> Result<(), String> {
    let parts = [&s.own, &s.share_agent].into_iter().flat_map(|p| [p.controller_cycles, p.llm_cycles, p.fee]);
    if parts.chain([s.min_top_up]).any(|c| c >= MAX_CYCLES) {
        return Err("cycle amounts must be below 2^100".into());
    }
    if s.own.controller_cycles == 0 || s.own.llm_cycles == 0 || s.share_agent.controller_cycles == 0 {
        return Err("every new canister needs cycles".into());
    }
    if !(1..=20).contains(&s.max_llms_per_order) {
        return Err("max_llms_per_order must be between 1 and 20".into());
    }
    if s.agents_per_share_service == 0 {
        return Err("agents_per_share_service must be positive".into());
    }
    Ok(())
}

/// (price, LLM canisters) of an order kind.
pub fn price_of(s: &EconomySettings, kind: &OrderKind) -> (KindPrice, u32) {
    match kind {
        OrderKind::Own { llm_count } => (s.own.clone(), *llm_count),
        OrderKind::ShareAgent { .. } => (KindPrice { llm_cycles: 0, ..s.share_agent.clone() }, 0),
    }
}

/// The quote of `kind` when creating a canister costs `creation_fee`.
pub fn quote(s: &EconomySettings, kind: &OrderKind, creation_fee: u128) -> Result<Quote, String> {
    let (price, llms) = price_of(s, kind);
    if let OrderKind::Own { llm_count } = kind
        && !(1..=s.max_llms_per_order).contains(llm_count)
    {
        return Err(format!("an Own mAIner has 1 to {} LLMs", s.max_llms_per_order));
    }
    let n = llms as u128;
    let canister_cycles = price.controller_cycles + n * price.llm_cycles;
    let creation_fees = (n + 1) * creation_fee;
    let attached_cycles = canister_cycles + creation_fees + price.fee;
    let ledger_amount = attached_cycles + LEDGER_FEE;
    Ok(Quote {
        canister_cycles,
        creation_fees,
        fee: price.fee,
        attached_cycles,
        ledger_amount,
        approve: ledger_amount + LEDGER_FEE,
    })
}

/// 32 bytes naming an order (or a top-up) of `payer` at `created_at_time`:
/// the ledger memo, and the creator's subaccount that receives its payment.
pub fn order_name(domain: &str, payer: Principal, created_at_time: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    h.update(payer.as_slice());
    h.update(created_at_time.to_be_bytes());
    h.finalize().into()
}

/// An admin's verdict on a refund whose outcome was lost (`Unknown`): it
/// arrived (done), or it did not (due again, sent by the refund timer).
pub fn settle(refund: &mut Refund, arrived: bool, now_ns: u64) -> Result<(), String> {
    if refund.status != RefundStatus::Unknown {
        return Err(format!("only a refund whose outcome is unknown is settled; this one is {:?}", refund.status));
    }
    refund.status = if arrived { RefundStatus::Done { at_ns: now_ns } } else { RefundStatus::Due };
    refund.next_attempt_ns = 0;
    Ok(())
}

pub fn refund_view(r: &Refund) -> RefundView {
    RefundView { amount: r.amount, status: r.status.clone(), attempts: r.attempts, last_error: r.last_error.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_adds_up_and_bad_settings_are_refused() {
        let s = EconomySettings::default();
        let q = quote(&s, &OrderKind::Own { llm_count: 2 }, 100).unwrap();
        assert_eq!(q.canister_cycles, s.own.controller_cycles + 2 * s.own.llm_cycles);
        assert_eq!(q.creation_fees, 300);
        assert_eq!(q.attached_cycles, q.canister_cycles + 300 + s.own.fee);
        assert_eq!((q.ledger_amount, q.approve), (q.attached_cycles + LEDGER_FEE, q.attached_cycles + 2 * LEDGER_FEE));
        let agent = quote(&s, &OrderKind::ShareAgent { share_service: None }, 100).unwrap();
        assert_eq!(agent.canister_cycles, s.share_agent.controller_cycles);
        assert!(quote(&s, &OrderKind::Own { llm_count: 0 }, 1).is_err());
        assert!(quote(&s, &OrderKind::Own { llm_count: 5 }, 1).is_err());
        assert!(validate(&s).is_ok());
        let mut bad = s.clone();
        bad.own.fee = u128::MAX;
        assert!(validate(&bad).is_err());
        let mut bad = s;
        bad.agents_per_share_service = 0;
        assert!(validate(&bad).is_err());
    }

    /// 100 paid, 30 spent.
    fn funds(keep_on_failure: Option<bool>) -> Funds {
        Funds {
            kind: OrderKind::Own { llm_count: 1 },
            payer: Payer::Ledger(Principal::anonymous()),
            paid: 100,
            spent: 30,
            fee: 5,
            refund: None,
            keep_on_failure,
        }
    }

    #[test]
    fn a_refund_is_made_due_once_for_what_was_not_spent() {
        let mut f = funds(None);
        f.refund_unspent();
        assert_eq!(f.refund.as_ref().map(|r| (r.amount, r.status.clone())), Some((70, RefundStatus::Due)));
        f.refund.as_mut().unwrap().status = RefundStatus::InFlight;
        f.spent = 50;
        f.refund_unspent();
        assert_eq!(f.refund.as_ref().map(|r| r.amount), Some(70), "not made due again");
        assert!(f.refund_open(), "in flight is still open");
    }

    #[test]
    fn kept_funds_wait_for_a_retry_and_an_unknown_refund_is_settled_once() {
        let mut f = funds(Some(true));
        f.on_failure();
        assert!(f.refund.is_none(), "kept for retry_job");
        f.keep_on_failure = None;
        f.on_failure();
        let r = f.refund.as_mut().unwrap();
        assert!(settle(r, true, 9).is_err(), "a due refund is not settled by hand");
        r.status = RefundStatus::Unknown;
        settle(r, false, 9).unwrap();
        assert_eq!(r.status, RefundStatus::Due, "did not arrive: sent again");
        r.status = RefundStatus::Unknown;
        settle(r, true, 9).unwrap();
        assert_eq!(r.status, RefundStatus::Done { at_ns: 9 });
        assert!(settle(r, true, 10).is_err(), "settled once");
    }

    #[test]
    fn orders_have_distinct_names() {
        let (a, b) = (Principal::from_slice(&[1; 29]), Principal::from_slice(&[2; 29]));
        assert_ne!(order_name("order", a, 1), order_name("order", b, 1));
        assert_ne!(order_name("order", a, 1), order_name("order", a, 2));
        assert_ne!(order_name("order", a, 1), order_name("top-up", a, 1));
        assert_eq!(order_name("order", a, 1), order_name("order", a, 1));
    }
}
