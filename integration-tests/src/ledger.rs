//! DFINITY's cycles ledger (`../shared/peers/cycles_ledger.wasm.gz`, see its
//! README there) in a [`TestEnv`]: installed with initial balances (and the
//! cycles behind them), balances, approvals.

use candid::{Nat, Principal};
use mainer_types::calls::cycles_ledger as ledger;
use mainer_types::cycles_ledger::{Account, ApproveArgs, ApproveError, InitArgs, LedgerArgs, to_u128};

use crate::deploy::admin;
use crate::{TestEnv, TestEnvExt};

/// Where the cycles ledger's module lives, next to the project.
pub fn cycles_ledger_path() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/cycles_ledger.wasm.gz")
}

/// The gzipped module, or why a test cannot use it (to print when skipping).
pub fn cycles_ledger_wasm() -> Result<Vec<u8>, String> {
    let path = cycles_ledger_path();
    std::fs::read(&path).map_err(|e| format!("SKIPPED: no cycles ledger at {} ({e})", path.display()))
}

/// Installs the ledger with `balances` minted (and the ledger given the
/// cycles behind them, which minting at install does not bring).
pub fn deploy_cycles_ledger(env: &dyn TestEnv, wasm: &[u8], balances: &[(Principal, u128)]) -> Principal {
    let backing: u128 = balances.iter().map(|(_, b)| *b).sum();
    let id = env.create_canister_with(vec![admin()], 10_000_000_000_000 + backing);
    let init = InitArgs {
        max_blocks_per_request: 1000,
        index_id: None,
        initial_balances: Some(balances.iter().map(|(p, b)| (Account::of(*p), Nat::from(*b))).collect()),
    };
    env.install(admin(), id, wasm, candid::encode_one(LedgerArgs::Init(init)).unwrap()).expect("the ledger installs");
    id
}

pub fn balance(env: &dyn TestEnv, ledger_id: Principal, owner: Principal) -> u128 {
    to_u128(&env.call(admin(), ledger_id, &ledger::BALANCE_OF, (Account::of(owner),)).unwrap())
}

/// `owner` approves `spender` for `amount` (costs `owner` the ledger's fee).
pub fn approve(
    env: &dyn TestEnv,
    ledger_id: Principal,
    owner: Principal,
    spender: Principal,
    amount: u128,
) -> Result<Nat, ApproveError> {
    let args = ApproveArgs {
        from_subaccount: None,
        spender: Account::of(spender),
        amount: Nat::from(amount),
        expected_allowance: None,
        expires_at: None,
        fee: None,
        memo: None,
        created_at_time: None,
    };
    env.call(owner, ledger_id, &ledger::APPROVE, (args,)).unwrap()
}
