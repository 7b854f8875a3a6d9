//! Who may do what: admins are the listed admins and the canister's
//! controllers; `create_mainer` is also open to allow-listed callers.

use candid::Principal;
use mainer_types::creator::CreatorError;

use crate::state::read_state;

pub fn is_admin(caller: &Principal) -> bool {
    ic_cdk::api::is_controller(caller) || read_state(|s| s.config().admins.contains(caller))
}

pub fn require_admin(caller: &Principal) -> Result<(), CreatorError> {
    if is_admin(caller) {
        Ok(())
    } else {
        Err(CreatorError::Unauthorized("only an admin of the creator may call this".into()))
    }
}

pub fn require_creator(caller: &Principal) -> Result<(), CreatorError> {
    if is_admin(caller) || read_state(|s| s.config().allowed_creators.contains(caller)) {
        Ok(())
    } else {
        Err(CreatorError::Unauthorized("only an admin or an allow-listed caller may create mAIners".into()))
    }
}
