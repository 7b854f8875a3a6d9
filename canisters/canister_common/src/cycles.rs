//! `return_cycles`, for the canisters the creator deletes (our LLM canister
//! and the test fixture): before deleting a canister the creator has it send
//! its cycles back, since the IC burns the cycles of a deleted canister.

use candid::Principal;
use ic_cdk::management_canister::{DepositCyclesArgs, deposit_cycles};
use mainer_types::llama_cpp::ApiError;

/// Cycles kept by `return_cycles`: enough to answer the call and be stopped.
pub const RETURN_CYCLES_KEEP: u128 = 100_000_000_000;

/// The body of a `return_cycles(to)` update: controllers only (401 for
/// anyone else), and only back to the calling controller itself (403 for
/// another `to`): the creator, the only controller of the LLMs it makes,
/// takes back what it gave, and nobody can route a canister's cycles
/// elsewhere. Sends every cycle above [`RETURN_CYCLES_KEEP`] and says how many.
pub async fn return_cycles(to: Principal) -> Result<u128, ApiError> {
    let caller = ic_cdk::api::msg_caller();
    if !ic_cdk::api::is_controller(&caller) {
        crate::warn!("return_cycles refused: {caller} is not a controller");
        return Err(ApiError::StatusCode(401));
    }
    if to != caller {
        crate::warn!("return_cycles refused: {caller} asked to send the cycles to {to}, not to itself");
        return Err(ApiError::StatusCode(403));
    }
    let amount = ic_cdk::api::canister_liquid_cycle_balance().saturating_sub(RETURN_CYCLES_KEEP);
    match deposit_cycles(&DepositCyclesArgs { canister_id: to }, amount).await {
        Ok(()) => {
            crate::info!("returned {amount} cycles to {to}");
            Ok(amount)
        }
        Err(e) => {
            crate::error!("return_cycles: deposit_cycles to {to} failed: {e}");
            Err(ApiError::Other(format!("deposit_cycles: {e}")))
        }
    }
}
