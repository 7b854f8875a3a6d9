//! Challengers and judges: canisters registered by admins (or the creator,
//! a registrar) for one game role each.

use candid::Principal;
use mainer_types::game::{GameError, GameResult};
use mainer_types::game_play::{GameAgent, GameAgentKind};
use mainer_types::{Page, PageRequest};

use crate::access::{Caller, require_admin, require_admin_or_registrar};
use crate::paging::page_of;
use crate::play_records::AgentRecord;
use crate::state::State;

fn agent(p: Principal, r: AgentRecord) -> GameAgent {
    GameAgent { agent: p, kind: r.kind, registered_at_ns: r.registered_at_ns, done: r.done }
}

/// Admins and registrars. Registering again with the same kind returns the
/// registration as it is; with the other kind it is refused.
pub fn register(
    state: &mut State,
    caller: &Caller,
    p: Principal,
    kind: GameAgentKind,
    now_ns: u64,
) -> GameResult<GameAgent> {
    require_admin_or_registrar(state.config(), caller)?;
    if p == Principal::anonymous() {
        return Err(GameError::InvalidInput("the anonymous principal cannot be a challenger or judge".into()));
    }
    match state.play.agents.get(&p) {
        Some(r) if r.kind == kind => Ok(agent(p, r)),
        Some(_) => Err(GameError::AlreadyRegistered(p)),
        None => {
            let r = AgentRecord { kind, registered_at_ns: now_ns, done: 0 };
            state.play.agents.insert(p, r.clone());
            Ok(agent(p, r))
        }
    }
}

/// Admins and registrars. A judge's live lease is left to expire, so its
/// submission goes back to the queue.
pub fn unregister(state: &mut State, caller: &Caller, p: Principal) -> GameResult<()> {
    require_admin_or_registrar(state.config(), caller)?;
    state.play.agents.remove(&p).map(|_| ()).ok_or(GameError::NotRegistered(p))
}

/// Admins only, in principal order.
pub fn list(state: &State, caller: &Caller, page: PageRequest) -> GameResult<Page<GameAgent>> {
    require_admin(state.config(), caller)?;
    let entries = state.play.agents.iter().map(|e| (*e.key(), e.value()));
    Ok(page_of(entries, state.play.agents.len(), page, |(p, r)| agent(p, r)))
}

pub fn require(state: &State, caller: &Caller, kind: GameAgentKind) -> GameResult<()> {
    if state.play.agent_kind(&caller.principal) == Some(kind) {
        return Ok(());
    }
    Err(match kind {
        GameAgentKind::Challenger => GameError::NotAChallenger(caller.principal),
        GameAgentKind::Judge => GameError::NotAJudge(caller.principal),
    })
}

/// Counts one piece of work done by a registered agent.
pub(crate) fn count_done(state: &mut State, p: &Principal) {
    if let Some(mut r) = state.play.agents.get(p) {
        r.done += 1;
        state.play.agents.insert(*p, r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn admins_and_registrars_register_challengers_and_judges() {
        let mut s = state();
        let stranger = Caller::user(p(50));
        let err = register(&mut s, &stranger, p(20), GameAgentKind::Judge, 1).unwrap_err();
        assert!(matches!(err, GameError::Unauthorized(_)));
        let j = register(&mut s, &Caller::user(REGISTRAR), p(20), GameAgentKind::Judge, 1).unwrap();
        assert_eq!((j.kind, j.registered_at_ns, j.done), (GameAgentKind::Judge, 1, 0));
        assert_eq!(register(&mut s, &admin(), p(20), GameAgentKind::Judge, 5).unwrap(), j, "idempotent");
        assert_eq!(
            register(&mut s, &admin(), p(20), GameAgentKind::Challenger, 5),
            Err(GameError::AlreadyRegistered(p(20)))
        );
        register(&mut s, &admin(), p(21), GameAgentKind::Challenger, 2).unwrap();
        assert!(require(&s, &Caller::user(p(20)), GameAgentKind::Judge).is_ok());
        assert_eq!(require(&s, &Caller::user(p(20)), GameAgentKind::Challenger), Err(GameError::NotAChallenger(p(20))));
        assert_eq!(require(&s, &stranger, GameAgentKind::Judge), Err(GameError::NotAJudge(p(50))));
        assert!(matches!(list(&s, &stranger, PageRequest::first(10)), Err(GameError::Unauthorized(_))));
        assert_eq!(list(&s, &admin(), PageRequest::first(10)).unwrap().total, 2);
        assert!(matches!(unregister(&mut s, &stranger, p(20)), Err(GameError::Unauthorized(_))));
        unregister(&mut s, &admin(), p(20)).unwrap();
        assert_eq!(unregister(&mut s, &admin(), p(20)), Err(GameError::NotRegistered(p(20))));
        assert_eq!(require(&s, &Caller::user(p(20)), GameAgentKind::Judge), Err(GameError::NotAJudge(p(20))));
    }
}
