//! Who may do what. Operators are the canister's IC controllers (the creator
//! and its admins); admins are the operators and the mAIner's owner. The
//! owner has roles, not IC control: it reads everything, pauses and resumes,
//! changes the settings within their bounds and triggers steps, but cannot
//! change the code, take cycles, or choose the LLMs and ShareAgents (which
//! would let it answer with a canister of its own): managing those is for
//! operators and the creator canister.

use candid::Principal;
use mainer_types::MainerRole;
use mainer_types::controller::ControllerError;

use crate::state::read_state;

fn unauthorized(what: &str) -> ControllerError {
    canister_common::warn!("refused {}: only {what} may call this", ic_cdk::api::msg_caller());
    ControllerError::Unauthorized(format!("only {what} may call this"))
}

/// An IC controller of this canister.
pub fn is_operator(caller: &Principal) -> bool {
    ic_cdk::api::is_controller(caller)
}

pub fn is_admin(caller: &Principal) -> bool {
    is_operator(caller) || read_state(|s| s.config().owner == *caller)
}

pub fn require_admin(caller: &Principal) -> Result<(), ControllerError> {
    if is_admin(caller) { Ok(()) } else { Err(unauthorized("a controller of this canister or the mAIner's owner")) }
}

/// Operators and the creator canister (not the owner).
pub fn require_manager(caller: &Principal) -> Result<(), ControllerError> {
    if is_operator(caller) || read_state(|s| s.config().creator == *caller) {
        Ok(())
    } else {
        Err(unauthorized("an operator or the mAIner creator"))
    }
}

/// The mAIner creator canister only.
pub fn require_creator(caller: &Principal) -> Result<(), ControllerError> {
    if read_state(|s| s.config().creator == *caller) { Ok(()) } else { Err(unauthorized("the mAIner creator")) }
}

pub fn require_role(allowed: &[MainerRole], needs: &str) -> Result<MainerRole, ControllerError> {
    let role = read_state(|s| s.role());
    if allowed.contains(&role) { Ok(role) } else { Err(ControllerError::WrongRole { role, needs: needs.to_string() }) }
}

/// ShareService: only the ShareAgents it serves.
pub fn require_agent(caller: &Principal) -> Result<(), ControllerError> {
    if read_state(|s| s.is_agent(caller)) { Ok(()) } else { Err(unauthorized("a ShareAgent of this ShareService")) }
}

/// ShareAgent: only its ShareService.
pub fn require_service(caller: &Principal) -> Result<(), ControllerError> {
    if read_state(|s| s.config().share_service == Some(*caller)) {
        Ok(())
    } else {
        Err(unauthorized("this ShareAgent's ShareService"))
    }
}
