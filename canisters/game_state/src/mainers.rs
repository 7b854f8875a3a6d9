//! mAIner registrations.

use candid::Principal;
use mainer_types::game::{GameError, GameResult, MainerInfo, RegisterMainerRequest};
use mainer_types::{Page, PageRequest};

use crate::access::{Caller, require_admin, require_admin_or_mainer, require_admin_or_registrar};
use crate::paging::page_of;
use crate::state::{MainerRecord, State};

pub fn register(state: &mut State, caller: &Caller, req: RegisterMainerRequest, now_ns: u64) -> GameResult<MainerInfo> {
    require_admin_or_registrar(state.config(), caller)?;
    if req.mainer == Principal::anonymous() || req.owner == Principal::anonymous() {
        return Err(GameError::InvalidInput("the anonymous principal cannot be a mAIner or an owner".into()));
    }
    if state.mainers.contains_key(&req.mainer) {
        return Err(GameError::AlreadyRegistered(req.mainer));
    }
    // A mAIner registered again keeps the history of its earlier submissions
    // (rare, and bounded by the number of challenges it answered).
    let mut submissions = 0;
    let mut last_submission_ns = None;
    for (_, challenge_id) in state.submissions_by_mainer.range((req.mainer, 0)..=(req.mainer, u64::MAX)) {
        submissions += 1;
        if let Some(s) = state.submission(challenge_id, req.mainer) {
            last_submission_ns = last_submission_ns.max(Some(s.submitted_at_ns));
        }
    }
    let record =
        MainerRecord { role: req.role, owner: req.owner, registered_at_ns: now_ns, submissions, last_submission_ns };
    state.mainers.insert(req.mainer, record.clone());
    Ok(record.info(req.mainer))
}

/// Removes the registration and the mAIner's hand-out; its submissions stay.
pub fn unregister(state: &mut State, caller: &Caller, mainer: Principal) -> GameResult<()> {
    require_admin_or_registrar(state.config(), caller)?;
    if state.mainers.remove(&mainer).is_none() {
        return Err(GameError::NotRegistered(mainer));
    }
    state.drop_handout(&mainer);
    Ok(())
}

/// Admins, registrars, the mAIner itself and its owner.
pub fn info(state: &State, caller: &Caller, mainer: Principal) -> GameResult<MainerInfo> {
    if require_admin_or_registrar(state.config(), caller).is_err() {
        require_admin_or_mainer(state, caller, &mainer)?;
    }
    state.mainer(&mainer).ok_or(GameError::NotRegistered(mainer))
}

/// Admins only, in principal order.
pub fn list(state: &State, caller: &Caller, page: PageRequest) -> GameResult<Page<MainerInfo>> {
    require_admin(state.config(), caller)?;
    let keys = state.mainers.keys();
    Ok(page_of(keys, state.mainers.len(), page, |m| state.mainer(&m).expect("the mAIner exists")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use mainer_types::MainerRole;

    #[test]
    fn registration_is_for_admins_and_registrars_and_happens_once() {
        let mut s = state();
        let req = RegisterMainerRequest { mainer: p(10), role: MainerRole::Own, owner: p(11) };
        let err = register(&mut s, &Caller::user(p(99)), req.clone(), 5).unwrap_err();
        assert!(matches!(err, GameError::Unauthorized(_)));
        let info = register(&mut s, &Caller::user(REGISTRAR), req.clone(), 5).unwrap();
        assert_eq!((info.registered_at_ns, info.submissions), (5, 0));
        assert_eq!(register(&mut s, &admin(), req, 6), Err(GameError::AlreadyRegistered(p(10))));
        // A controller counts as an admin.
        let controller = Caller { principal: p(98), is_controller: true };
        let req = RegisterMainerRequest { mainer: p(12), role: MainerRole::ShareAgent, owner: p(11) };
        register(&mut s, &controller, req, 7).unwrap();

        assert_eq!(
            unregister(&mut s, &Caller::user(p(10)), p(12)).map_err(|e| matches!(e, GameError::Unauthorized(_))),
            Err(true)
        );
        unregister(&mut s, &admin(), p(12)).unwrap();
        assert_eq!(unregister(&mut s, &admin(), p(12)), Err(GameError::NotRegistered(p(12))));
    }

    #[test]
    fn mainer_info_is_for_admins_registrars_the_mainer_and_its_owner() {
        let mut s = state();
        register_mainer(&mut s, p(10));
        for who in [admin(), Caller::user(REGISTRAR), Caller::user(p(10)), Caller::user(owner_of(p(10)))] {
            assert_eq!(info(&s, &who, p(10)).unwrap().mainer, p(10));
        }
        assert!(matches!(info(&s, &Caller::user(p(50)), p(10)), Err(GameError::Unauthorized(_))));
        assert!(matches!(list(&s, &Caller::user(p(10)), PageRequest::first(10)), Err(GameError::Unauthorized(_))));
    }

    #[test]
    fn mainers_are_listed_in_pages() {
        let mut s = state();
        for n in 10..17 {
            register_mainer(&mut s, p(n));
        }
        let mut seen = vec![];
        let mut req = PageRequest::first(3);
        loop {
            let page = list(&s, &admin(), req).unwrap();
            assert_eq!(page.total, 7);
            seen.extend(page.items.into_iter().map(|m| m.mainer));
            match page.next_offset {
                Some(o) => req.offset = o,
                None => break,
            }
        }
        let mut expected: Vec<_> = (10..17).map(p).collect();
        expected.sort();
        assert_eq!(seen, expected);
    }
}
