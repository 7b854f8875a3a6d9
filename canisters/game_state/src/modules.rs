//! Which code may submit. An owner is no IC controller of its mAIner, but
//! anyone who is (the creator's admins, an operator's mistake) could install
//! other code in it and submit made-up answers under its name. So the game
//! state accepts submissions only from mAIners that run a module the creator
//! installed:
//! - the creator (a registrar) reports every controller module it installs
//!   (`report_module`) before it installs a mAIner and before each upgrade
//!   of a fleet upgrade; a report naming a mAIner also forgets what was
//!   cached about it, so an upgraded mAIner is read again at once;
//! - the game state reads a mAIner's module hash with the management
//!   canister's `canister_info` (the endpoint does the call), and keeps it
//!   for [`MODULE_CHECK_SECONDS`], so a mAIner costs one such call an hour,
//!   not one per submission.
//!
//! While no module is known the check is off: a game state used without a
//! creator (mAIners registered by hand) works as before.

use candid::Principal;
use mainer_types::game::{GameError, GameResult, ModuleReport};

use crate::access::{Caller, require_admin, require_admin_or_registrar};
use crate::records::ModuleCheck;
use crate::state::State;

/// How long a module hash read with `canister_info` is trusted.
pub const MODULE_CHECK_SECONDS: u64 = 3_600;
/// Known modules at most (each report of a new wasm adds one).
pub const MAX_KNOWN_MODULES: u64 = 1_000;

/// What the check says about a submission of `mainer` at `now_ns`.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Read its module hash first, then decide again.
    Fetch,
    Refuse(GameError),
}

fn fresh(check: &ModuleCheck, now_ns: u64) -> bool {
    now_ns.saturating_sub(check.checked_at_ns) < MODULE_CHECK_SECONDS.saturating_mul(1_000_000_000)
}

pub fn verdict(state: &State, mainer: &Principal, now_ns: u64) -> Verdict {
    if state.known_modules.is_empty() {
        return Verdict::Accept;
    }
    match state.module_checks.get(mainer) {
        Some(c) if fresh(&c, now_ns) => match c.module_hash {
            Some(h) if state.known_modules.contains(&h) => Verdict::Accept,
            other => Verdict::Refuse(GameError::UnknownModule { mainer: *mainer, module_hash: other.map(hex::encode) }),
        },
        _ => Verdict::Fetch,
    }
}

/// Whether the endpoint should read the caller's module hash before it
/// submits: only for registered mAIners, so a stranger's call costs us no
/// call of our own.
pub fn needs_fetch(state: &State, caller: &Caller, now_ns: u64) -> bool {
    !state.known_modules.is_empty()
        && state.mainers.contains_key(&caller.principal)
        && verdict(state, &caller.principal, now_ns) == Verdict::Fetch
}

/// Keeps what `canister_info` said about `mainer`.
pub fn record(state: &mut State, mainer: Principal, module_hash: Option<Vec<u8>>, now_ns: u64) {
    let module_hash = module_hash.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok());
    state.module_checks.insert(mainer, ModuleCheck { module_hash, checked_at_ns: now_ns });
}

/// The submission check, after the endpoint fetched what it needed.
pub fn require_known_module(state: &State, mainer: &Principal, now_ns: u64) -> GameResult<()> {
    match verdict(state, mainer, now_ns) {
        Verdict::Accept => Ok(()),
        Verdict::Refuse(e) => Err(e),
        // The fetch failed or raced with a report: try again.
        Verdict::Fetch => Err(GameError::Unavailable(format!("the module hash of {mainer} is not known yet"))),
    }
}

/// Admins and registrars (the creator) report a module they install.
pub fn report(state: &mut State, caller: &Caller, report: ModuleReport) -> GameResult<()> {
    require_admin_or_registrar(state.config(), caller)?;
    let hash = <[u8; 32]>::try_from(report.module_hash.as_slice())
        .map_err(|_| GameError::InvalidInput("a module hash is 32 bytes (SHA-256)".into()))?;
    if !state.known_modules.contains(&hash) && state.known_modules.len() >= MAX_KNOWN_MODULES {
        return Err(GameError::InvalidInput(format!("{MAX_KNOWN_MODULES} modules are known already")));
    }
    state.known_modules.insert(hash);
    if let Some(mainer) = report.mainer {
        state.module_checks.remove(&mainer);
    }
    Ok(())
}

/// Admins retire a module: mAIners still running it are refused once
/// their cached check is read again.
pub fn forget(state: &mut State, caller: &Caller, module_hash: Vec<u8>) -> GameResult<()> {
    require_admin(state.config(), caller)?;
    let hash = <[u8; 32]>::try_from(module_hash.as_slice())
        .map_err(|_| GameError::InvalidInput("a module hash is 32 bytes (SHA-256)".into()))?;
    state.known_modules.remove(&hash);
    // Cached checks that name it must be read again.
    let stale: Vec<Principal> = state
        .module_checks
        .iter()
        .filter(|entry| entry.value().module_hash == Some(hash))
        .map(|entry| *entry.key())
        .collect();
    for mainer in stale {
        state.module_checks.remove(&mainer);
    }
    Ok(())
}

/// Admins and registrars: the known modules (hex).
pub fn list(state: &State, caller: &Caller) -> GameResult<Vec<String>> {
    require_admin_or_registrar(state.config(), caller)?;
    Ok(state.known_modules.iter().map(hex::encode).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    const HOUR: u64 = 3_600_000_000_000;

    fn report_of(hash: [u8; 32], mainer: Option<Principal>) -> ModuleReport {
        ModuleReport { module_hash: hash.to_vec(), mainer }
    }

    #[test]
    fn without_known_modules_the_check_is_off() {
        let mut s = state();
        register_mainer(&mut s, p(10));
        assert_eq!(verdict(&s, &p(10), 5), Verdict::Accept);
        assert!(!needs_fetch(&s, &Caller::user(p(10)), 5));
    }

    #[test]
    fn a_mainer_is_read_once_an_hour_and_refused_unless_its_module_is_known() {
        let mut s = state();
        register_mainer(&mut s, p(10));
        report(&mut s, &Caller::user(REGISTRAR), report_of([1; 32], None)).unwrap();
        assert!(needs_fetch(&s, &Caller::user(p(10)), 5));
        assert!(!needs_fetch(&s, &Caller::user(p(50)), 5), "strangers cost no call");
        assert!(matches!(require_known_module(&s, &p(10), 5), Err(GameError::Unavailable(_))));

        record(&mut s, p(10), Some(vec![1; 32]), 5);
        assert_eq!(verdict(&s, &p(10), 5 + HOUR - 1), Verdict::Accept);
        assert_eq!(verdict(&s, &p(10), 5 + HOUR), Verdict::Fetch, "read again after an hour");

        record(&mut s, p(10), Some(vec![2; 32]), 10);
        let refused = require_known_module(&s, &p(10), 10).unwrap_err();
        assert_eq!(refused, GameError::UnknownModule { mainer: p(10), module_hash: Some(hex::encode([2; 32])) });
        record(&mut s, p(10), None, 11);
        assert!(matches!(
            require_known_module(&s, &p(10), 11),
            Err(GameError::UnknownModule { module_hash: None, .. })
        ));
    }

    #[test]
    fn a_reported_upgrade_is_read_again_at_once_and_a_retired_module_is_refused() {
        let mut s = state();
        register_mainer(&mut s, p(10));
        report(&mut s, &admin(), report_of([1; 32], None)).unwrap();
        record(&mut s, p(10), Some(vec![1; 32]), 5);
        // The creator upgrades p(10) to module 2: reported first, then read again.
        report(&mut s, &Caller::user(REGISTRAR), report_of([2; 32], Some(p(10)))).unwrap();
        assert_eq!(verdict(&s, &p(10), 6), Verdict::Fetch);
        record(&mut s, p(10), Some(vec![2; 32]), 6);
        assert_eq!(verdict(&s, &p(10), 7), Verdict::Accept);

        forget(&mut s, &admin(), vec![2; 32]).unwrap();
        assert_eq!(verdict(&s, &p(10), 8), Verdict::Fetch, "its cached check is dropped");
        record(&mut s, p(10), Some(vec![2; 32]), 8);
        assert!(matches!(verdict(&s, &p(10), 9), Verdict::Refuse(GameError::UnknownModule { .. })));
        assert_eq!(list(&s, &admin()).unwrap(), vec![hex::encode([1; 32])]);
    }

    #[test]
    fn only_admins_and_registrars_report_and_only_admins_retire() {
        let mut s = state();
        let stranger = Caller::user(p(50));
        assert!(matches!(report(&mut s, &stranger, report_of([1; 32], None)), Err(GameError::Unauthorized(_))));
        assert!(matches!(forget(&mut s, &Caller::user(REGISTRAR), vec![1; 32]), Err(GameError::Unauthorized(_))));
        assert!(matches!(list(&s, &stranger), Err(GameError::Unauthorized(_))));
        let short = ModuleReport { module_hash: vec![1; 31], mainer: None };
        assert!(matches!(report(&mut s, &admin(), short), Err(GameError::InvalidInput(_))));
        assert!(s.known_modules.is_empty(), "nothing stored by a refusal");
    }
}
