//! Settings kept in stable memory, so an upgrade keeps them (the llama.cpp
//! canister loses them): the access level and granted principals,
//! `max_tokens`, and the model `load_model` last loaded (reloaded by itself
//! after an upgrade).

use std::borrow::Cow;

use candid::{CandidType, Decode, Encode, Principal};
use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;
use mainer_types::llama_cpp::MaxTokensRecord;
use serde::Deserialize;

/// llama.cpp's access levels for the inference endpoints.
pub const ACCESS_CONTROLLERS: u16 = 0;
pub const ACCESS_ALL_BUT_ANONYMOUS: u16 = 1;
/// Principals that can be granted access (keeps the settings small).
pub const MAX_GRANTS: usize = 256;

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ModelArgs {
    pub path: String,
    /// `-c`, when given.
    pub ctx_size: Option<u64>,
    /// `-ctk/-ctv f16`: the KV cache in half precision (absent: f32).
    pub f16_cache: Option<bool>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub access_level: u16,
    /// May use the inference endpoints at any level.
    pub granted: Vec<Principal>,
    pub max_tokens: MaxTokensRecord,
    /// What the last successful `load_model` loaded.
    pub model: Option<ModelArgs>,
}

impl Default for Settings {
    /// As the llama.cpp canister starts: only controllers, no per-call limit.
    fn default() -> Self {
        Settings {
            access_level: ACCESS_CONTROLLERS,
            granted: Vec::new(),
            max_tokens: MaxTokensRecord { max_tokens_update: 0, max_tokens_query: 0 },
            model: None,
        }
    }
}

impl Storable for Settings {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(Encode!(self).expect("settings encode"))
    }

    fn into_bytes(self) -> Vec<u8> {
        Encode!(&self).expect("settings encode")
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // Written by `to_bytes` only; a failure here traps post_upgrade, which
        // rolls the upgrade back rather than losing the access settings.
        Decode!(&bytes, Settings).expect("stored settings decode")
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// Who is calling, as far as access is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub controller: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessError {
    UnknownLevel(u16),
    Anonymous,
    TooManyGrants,
}

impl std::fmt::Display for AccessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessError::UnknownLevel(l) => {
                write!(f, "unknown access level {l} (0: only controllers, 1: all except anonymous)")
            }
            AccessError::Anonymous => write!(f, "the anonymous principal cannot be granted access"),
            AccessError::TooManyGrants => write!(f, "at most {MAX_GRANTS} principals can be granted access"),
        }
    }
}

pub fn explanation(level: u16) -> Result<&'static str, AccessError> {
    match level {
        ACCESS_CONTROLLERS => Ok("Only controllers"),
        ACCESS_ALL_BUT_ANONYMOUS => Ok("All except anonymous"),
        other => Err(AccessError::UnknownLevel(other)),
    }
}

impl Settings {
    /// Whether `caller` may use the inference endpoints.
    pub fn may_infer(&self, caller: Caller) -> bool {
        caller.controller
            || self.granted.contains(&caller.principal)
            || (self.access_level == ACCESS_ALL_BUT_ANONYMOUS && caller.principal != Principal::anonymous())
    }

    pub fn set_level(&mut self, level: u16) -> Result<&'static str, AccessError> {
        let text = explanation(level)?;
        self.access_level = level;
        Ok(text)
    }

    pub fn grant(&mut self, principal: Principal) -> Result<(), AccessError> {
        if principal == Principal::anonymous() {
            return Err(AccessError::Anonymous);
        }
        if !self.granted.contains(&principal) {
            if self.granted.len() >= MAX_GRANTS {
                return Err(AccessError::TooManyGrants);
            }
            self.granted.push(principal);
        }
        Ok(())
    }

    /// Whether the principal had been granted access.
    pub fn revoke(&mut self, principal: Principal) -> bool {
        let before = self.granted.len();
        self.granted.retain(|p| *p != principal);
        before != self.granted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u8) -> Caller {
        Caller { principal: Principal::self_authenticating([n; 32]), controller: false }
    }

    #[test]
    fn levels_grants_and_controllers() {
        let mut s = Settings::default();
        let admin = Caller { controller: true, ..user(0) };
        let anonymous = Caller { principal: Principal::anonymous(), controller: false };
        assert!(s.may_infer(admin) && !s.may_infer(user(1)) && !s.may_infer(anonymous), "default: controllers only");
        s.grant(user(1).principal).unwrap();
        s.grant(user(1).principal).unwrap();
        assert_eq!(s.granted.len(), 1);
        assert!(s.may_infer(user(1)) && !s.may_infer(user(2)));
        assert_eq!(s.set_level(1), Ok("All except anonymous"));
        assert!(s.may_infer(user(2)) && !s.may_infer(anonymous));
        assert_eq!(s.set_level(7), Err(AccessError::UnknownLevel(7)));
        assert_eq!(s.access_level, 1);
        s.set_level(0).unwrap();
        assert!(s.revoke(user(1).principal) && !s.revoke(user(1).principal));
        assert!(!s.may_infer(user(1)));
        assert_eq!(s.grant(Principal::anonymous()), Err(AccessError::Anonymous));
    }

    #[test]
    fn grants_are_capped() {
        let mut s = Settings::default();
        for i in 0..MAX_GRANTS {
            s.grant(Principal::from_slice(&(i as u32).to_be_bytes())).unwrap();
        }
        assert_eq!(s.grant(user(9).principal), Err(AccessError::TooManyGrants));
    }

    #[test]
    fn settings_round_trip() {
        let s = Settings {
            access_level: 1,
            granted: vec![user(3).principal],
            max_tokens: MaxTokensRecord { max_tokens_update: 4, max_tokens_query: 1 },
            model: Some(ModelArgs { path: "models/model.gguf".into(), ctx_size: Some(128), f16_cache: None }),
        };
        assert_eq!(Settings::from_bytes(s.to_bytes()), s);
    }
}
