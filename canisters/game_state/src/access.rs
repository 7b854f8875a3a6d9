//! Who may do what. Endpoints build a [`Caller`] from the message, so these
//! checks (and the logic that uses them) run natively in unit tests.

use candid::Principal;
use mainer_types::game::{GameError, GameResult, MainerInfo};

use crate::state::{Config, State};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    /// Whether the caller controls this canister (controllers are admins).
    pub is_controller: bool,
}

impl Caller {
    /// A caller that is not a controller.
    pub fn user(principal: Principal) -> Caller {
        Caller { principal, is_controller: false }
    }
}

pub fn is_admin(config: &Config, caller: &Caller) -> bool {
    caller.is_controller || config.admins.contains(&caller.principal)
}

pub fn require_admin(config: &Config, caller: &Caller) -> GameResult<()> {
    if is_admin(config, caller) { Ok(()) } else { Err(GameError::Unauthorized("admins only".into())) }
}

pub fn require_admin_or_registrar(config: &Config, caller: &Caller) -> GameResult<()> {
    if is_admin(config, caller) || config.registrars.contains(&caller.principal) {
        Ok(())
    } else {
        Err(GameError::Unauthorized("admins and registrars only".into()))
    }
}

/// The caller's registration; only registered mAIners take and answer challenges.
pub fn require_registered(state: &State, caller: &Caller) -> GameResult<MainerInfo> {
    state.mainer(&caller.principal).ok_or(GameError::NotRegistered(caller.principal))
}

/// Admins, the mAIner itself and its owner may read what concerns one mAIner.
pub fn require_admin_or_mainer(state: &State, caller: &Caller, mainer: &Principal) -> GameResult<()> {
    if is_admin(state.config(), caller) || caller.principal == *mainer {
        return Ok(());
    }
    match state.mainer(mainer) {
        Some(info) if info.owner == caller.principal => Ok(()),
        _ => Err(GameError::Unauthorized("admins, the mAIner and its owner only".into())),
    }
}
