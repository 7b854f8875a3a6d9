//! Who may do what. Admins are the canister's controllers and the mAIner's
//! owner; the creator canister may also manage the LLM pool and ShareAgents.

use candid::Principal;
use mainer_types::MainerRole;
use mainer_types::controller::ControllerError;

use crate::storage;

fn unauthorized(what: &str) -> ControllerError {
    canister_common::warn!("refused {}: only {what} may call this", ic_cdk::api::msg_caller());
    ControllerError::Unauthorized(format!("only {what} may call this"))
}

pub fn is_admin(caller: &Principal) -> bool {
    ic_cdk::api::is_controller(caller) || storage::read(|s| s.config().owner == *caller)
}

pub fn require_admin(caller: &Principal) -> Result<(), ControllerError> {
    if is_admin(caller) { Ok(()) } else { Err(unauthorized("a controller of this canister or the mAIner's owner")) }
}

/// Admins and the creator canister.
pub fn require_manager(caller: &Principal) -> Result<(), ControllerError> {
    if is_admin(caller) || storage::read(|s| s.config().creator == *caller) {
        Ok(())
    } else {
        Err(unauthorized("an admin or the mAIner creator"))
    }
}

pub fn require_role(allowed: &[MainerRole], needs: &str) -> Result<MainerRole, ControllerError> {
    let role = storage::read(|s| s.config().role);
    if allowed.contains(&role) { Ok(role) } else { Err(ControllerError::WrongRole { role, needs: needs.to_string() }) }
}

/// ShareService: only the ShareAgents it serves.
pub fn require_agent(caller: &Principal) -> Result<(), ControllerError> {
    if storage::read(|s| s.agents.contains_key(caller)) {
        Ok(())
    } else {
        Err(unauthorized("a ShareAgent of this ShareService"))
    }
}

/// ShareAgent: only its ShareService.
pub fn require_service(caller: &Principal) -> Result<(), ControllerError> {
    if storage::read(|s| s.config().share_service == Some(*caller)) {
        Ok(())
    } else {
        Err(unauthorized("this ShareAgent's ShareService"))
    }
}
