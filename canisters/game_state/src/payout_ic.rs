//! What paying asks of the IC, behind one small trait: the time, a top-up
//! of a canister (the management canister's `deposit_cycles`) and a deposit
//! on the cycles ledger. Both are guaranteed-response (unbounded-wait)
//! calls: a reject means the transfer did not happen and its cycles came
//! back, so a rejected payout can be sent again. Unit tests use a fake.

use candid::Principal;
use mainer_types::cycles_ledger::DepositArgs;

/// A rejected transfer: nothing was paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected(pub String);

#[allow(async_fn_in_trait)]
pub trait PayoutRuntime {
    fn time(&self) -> u64;
    /// Runs `f` as a task of its own (its calls are made in this message).
    fn spawn(&self, f: impl std::future::Future<Output = ()> + 'static);
    async fn deposit_cycles(&self, canister: Principal, cycles: u128) -> Result<(), Rejected>;
    /// The ledger's block index, when its reply decodes (a reply means the deposit happened).
    async fn ledger_deposit(
        &self,
        ledger: Principal,
        args: DepositArgs,
        cycles: u128,
    ) -> Result<Option<u128>, Rejected>;
}

/// The deployed canister's runtime: ic-cdk.
#[derive(Clone, Copy)]
pub struct IcPayouts;

fn rejected(e: impl std::fmt::Display) -> Rejected {
    Rejected(e.to_string())
}

impl PayoutRuntime for IcPayouts {
    fn time(&self) -> u64 {
        ic_cdk::api::time()
    }

    fn spawn(&self, f: impl std::future::Future<Output = ()> + 'static) {
        ic_cdk::futures::spawn(f)
    }

    async fn deposit_cycles(&self, canister: Principal, cycles: u128) -> Result<(), Rejected> {
        use ic_cdk::management_canister as mgmt;
        mgmt::deposit_cycles(&mgmt::DepositCyclesArgs { canister_id: canister }, cycles).await.map_err(rejected)
    }

    async fn ledger_deposit(
        &self,
        ledger: Principal,
        args: DepositArgs,
        cycles: u128,
    ) -> Result<Option<u128>, Rejected> {
        use mainer_types::calls::cycles_ledger as l;
        let arg = l::DEPOSIT.encode((args,)).map_err(rejected)?;
        let reply = ic_cdk::call::Call::unbounded_wait(ledger, l::DEPOSIT.name)
            .take_raw_args(arg)
            .with_cycles(cycles)
            .await
            .map_err(rejected)?;
        Ok(l::DEPOSIT.decode(&reply.into_bytes()).ok().map(|r| mainer_types::cycles_ledger::to_u128(&r.block_index)))
    }
}
