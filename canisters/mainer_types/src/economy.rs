//! The creator's economy interface: what users order and how they pay,
//! admin-set prices and limits, quotes, orders with their funds and
//! refunds, top-ups, the creator's books, and the typed payment errors.

use candid::{CandidType, Principal};
use serde::Deserialize;

use crate::controller::ControllerSettings;

/// What a user orders; the caller becomes the mAIner's owner.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum OrderKind {
    /// A mAIner with LLM canisters of its own.
    Own { llm_count: u32 },
    /// A mAIner served by a ShareService: the given one, or (None) the one
    /// with the most room.
    ShareAgent { share_service: Option<Principal> },
}

/// How an order or a top-up is paid.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Payment {
    /// ICRC-2 on the cycles ledger: the caller approved the creator for the
    /// quote's `approve` amount; the creator pulls it with
    /// `icrc2_transfer_from` and turns it into cycles with `withdraw`.
    /// `created_at_time` (nanoseconds, within the ledger's 24 h window) names
    /// the order: a call repeated with the same value is the same order,
    /// charged once (default: now, so every call is a new order).
    CyclesLedger { created_at_time: Option<u64> },
    /// Cycles attached to the call by a calling canister; the creator
    /// accepts the price and the rest goes back to the caller.
    AttachedCycles,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OrderRequest {
    pub kind: OrderKind,
    pub payment: Payment,
    /// The controller's settings (default: the controller's defaults).
    pub controller_settings: Option<ControllerSettings>,
    /// If the job fails, keep its unspent cycles with it for `retry_job`
    /// (the owner may retry, or ask for them with `refund_order`) instead of
    /// refunding them at once (the default).
    pub keep_funds_on_failure: Option<bool>,
}

/// The price of one kind of mAIner.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct KindPrice {
    /// Cycles the new controller canister gets.
    pub controller_cycles: u128,
    /// Cycles each new LLM canister gets (Own only).
    pub llm_cycles: u128,
    /// What the creator keeps for itself.
    pub fee: u128,
}

/// Prices and limits of user orders, set by admins.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EconomySettings {
    /// The cycles ledger payments go through (None: only attached cycles).
    pub cycles_ledger: Option<Principal>,
    pub own: KindPrice,
    pub share_agent: KindPrice,
    /// LLMs an Own order may ask for (1..=this).
    pub max_llms_per_order: u32,
    /// Orders one user may place (failed and refunded ones do not count).
    pub max_orders_per_user: u32,
    /// Orders placed in total.
    pub max_orders_total: u64,
    /// ShareAgents one ShareService takes.
    pub agents_per_share_service: u32,
    /// Smallest top-up accepted.
    pub min_top_up: u128,
}

impl Default for EconomySettings {
    fn default() -> Self {
        EconomySettings {
            cycles_ledger: None,
            own: KindPrice {
                controller_cycles: 2_000_000_000_000,
                llm_cycles: 5_000_000_000_000,
                fee: 100_000_000_000,
            },
            share_agent: KindPrice { controller_cycles: 1_000_000_000_000, llm_cycles: 0, fee: 100_000_000_000 },
            max_llms_per_order: 4,
            max_orders_per_user: 10,
            max_orders_total: 10_000,
            agents_per_share_service: 600,
            min_top_up: 100_000_000_000,
        }
    }
}

/// What an order costs, by part.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// Cycles the new canisters get.
    pub canister_cycles: u128,
    /// What the IC charges for creating them.
    pub creation_fees: u128,
    pub fee: u128,
    /// Paid with attached cycles: canister cycles + creation fees + fee.
    pub attached_cycles: u128,
    /// Paid on the cycles ledger: the amount `icrc2_transfer_from` moves
    /// (`attached_cycles` plus the ledger's fee on the `withdraw`).
    pub ledger_amount: u128,
    /// What to approve the creator for: `ledger_amount` plus the ledger's
    /// fee on the `icrc2_transfer_from` (the approval itself costs another fee).
    pub approve: u128,
}

/// Where a refund goes.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Payer {
    /// The payer's cycles-ledger account (a `deposit`; the ledger keeps its fee).
    Ledger(Principal),
    /// The paying canister (`deposit_cycles`).
    Canister(Principal),
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum RefundStatus {
    /// To be sent (retried until sent).
    Due,
    /// Being sent now.
    InFlight,
    Done {
        at_ns: u64,
    },
    /// The reply of the refund call was lost (an upgrade without a stop):
    /// whether it arrived is unknown, so it is not sent again; an admin
    /// checks the ledger.
    Unknown,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RefundView {
    pub amount: u128,
    pub status: RefundStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// A paid order: the job making the mAIner, and its money.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub job: u64,
    pub owner: Principal,
    pub kind: OrderKind,
    pub payer: Payer,
    /// Cycles the creator received for it.
    pub paid: u128,
    /// Cycles spent on its canisters so far.
    pub spent: u128,
    pub fee: u128,
    pub refund: Option<RefundView>,
    pub status: crate::creator::JobStatus,
    /// The mAIner's controller, once created.
    pub controller: Option<Principal>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TopUpRequest {
    /// A mAIner controller made by this creator.
    pub mainer: Principal,
    /// Cycles the mAIner gets (for attached cycles: what is attached, at most).
    pub amount: u128,
    pub payment: Payment,
}

/// The creator's books, in cycles of its own balance: its balance changed by
/// `received - spent_on_canisters - refunded - forwarded` (and what its own
/// messages cost). `fees` and `ledger_fees` say where part of `received` went.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Books {
    /// Cycles that came in: attached to orders and top-ups, or withdrawn from the ledger.
    pub received: u128,
    /// Cycles given to new canisters, with the IC's creation fees (every job).
    pub spent_on_canisters: u128,
    /// Cycles sent back to payers.
    pub refunded: u128,
    /// Top-up cycles passed on to mAIners.
    pub forwarded: u128,
    /// Fees of orders whose mAIner was made.
    pub fees: u128,
    /// Ledger fees of withdrawals paid out of prices (never reached the balance).
    pub ledger_fees: u128,
    /// Orders placed (paid).
    pub orders: u64,
    pub top_ups: u64,
    /// Refunds whose outcome is unknown (see `RefundStatus::Unknown`).
    pub refunds_unknown: u64,
}

/// Why a payment was refused.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum PaymentError {
    /// No cycles ledger is configured.
    NoLedger,
    /// Fewer cycles attached than the price.
    NotEnoughAttached {
        needed: u128,
        attached: u128,
    },
    InsufficientAllowance {
        allowance: u128,
        needed: u128,
    },
    InsufficientFunds {
        balance: u128,
    },
    /// `created_at_time` is outside the ledger's window.
    BadTime(String),
    /// The ledger refused or could not be reached; nothing was charged, or
    /// (when `charged`) the amount was sent back.
    Ledger {
        message: String,
        charged: bool,
    },
}

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PaymentError::NoLedger => write!(f, "no cycles ledger is configured: attach cycles instead"),
            PaymentError::NotEnoughAttached { needed, attached } => {
                write!(f, "{attached} cycles attached, {needed} needed")
            }
            PaymentError::InsufficientAllowance { allowance, needed } => {
                write!(f, "the creator is approved for {allowance}, {needed} needed")
            }
            PaymentError::InsufficientFunds { balance } => write!(f, "the ledger balance is only {balance}"),
            PaymentError::BadTime(w) => write!(f, "created_at_time: {w}"),
            PaymentError::Ledger { message, charged } => {
                write!(f, "the cycles ledger: {message}{}", if *charged { " (sent back)" } else { "" })
            }
        }
    }
}
