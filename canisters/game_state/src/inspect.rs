//! `canister_inspect_message`: ingress updates are refused before they are
//! inducted (so before the canister pays for them) when their caller cannot
//! pass the endpoint's own check, or their argument is larger than the
//! endpoint can ever accept. This is a filter against paying for strangers'
//! messages, not the security boundary: every endpoint still checks its
//! caller and validates its argument. Inter-canister calls (mAIners are
//! canisters) are never inspected.

use candid::Principal;
use mainer_types::game_play::GameAgentKind;

use crate::access::{Caller, is_admin, require_admin_or_mainer};
use crate::challenges::MAX_QUESTION_BYTES;
use crate::judging::MAX_RAW_OUTPUT_BYTES;
use crate::state::State;
use crate::topics::MAX_TOPIC_BYTES;

/// Room for everything of a request besides its one large field.
const ENVELOPE_BYTES: usize = 4 * 1024;
/// Requests with no large field.
const SMALL_BYTES: usize = 1024;

/// Whether an ingress update to `method` from `caller` with an argument of
/// `arg_bytes` bytes is worth running.
pub fn accepts(state: &State, caller: &Caller, method: &str, arg_bytes: usize) -> bool {
    accepts_about(state, caller, method, arg_bytes, || None)
}

/// [`accepts`], with `about` decoding the mAIner a small `set_payout_to`
/// is about (its owner may call it).
pub fn accepts_about(
    state: &State,
    caller: &Caller,
    method: &str,
    arg_bytes: usize,
    about: impl FnOnce() -> Option<Principal>,
) -> bool {
    let admin = is_admin(state.config(), caller);
    let agent = |kind| state.play.agent_kind(&caller.principal) == Some(kind);
    let registered = || state.mainers.contains_key(&caller.principal);
    let (allowed, max_bytes) = match method {
        "register_mainer" | "unregister_mainer" | "report_module" => {
            (admin || state.config().registrars.contains(&caller.principal), SMALL_BYTES)
        }
        "add_challenge" => (admin, MAX_QUESTION_BYTES + ENVELOPE_BYTES),
        "close_challenge" => (admin, SMALL_BYTES),
        "get_challenge" | "release_challenge" => (registered(), SMALL_BYTES),
        "submit" => (registered(), state.config().max_answer_bytes as usize + ENVELOPE_BYTES),
        "add_topic" | "update_topic" | "remove_topic" | "set_game_settings" | "fund_reward_pool" => {
            (admin, MAX_TOPIC_BYTES + ENVELOPE_BYTES)
        }
        "register_game_agent" | "unregister_game_agent" => {
            (admin || state.config().registrars.contains(&caller.principal), SMALL_BYTES)
        }
        "next_topic" => (agent(GameAgentKind::Challenger), SMALL_BYTES),
        "add_generated_challenge" => (agent(GameAgentKind::Challenger), MAX_QUESTION_BYTES + ENVELOPE_BYTES),
        "next_to_judge" => (agent(GameAgentKind::Judge), SMALL_BYTES),
        "submit_score" => (agent(GameAgentKind::Judge), MAX_RAW_OUTPUT_BYTES + ENVELOPE_BYTES),
        "set_payout_to" => {
            let allowed = admin
                || (arg_bytes <= SMALL_BYTES
                    && about().is_some_and(|m| require_admin_or_mainer(state, caller, &m).is_ok()));
            (allowed, SMALL_BYTES)
        }
        // Queries sent as updates, and anything else: admins only.
        _ => (admin, SMALL_BYTES),
    };
    allowed && arg_bytes <= max_bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn only_callers_who_pass_the_endpoint_check_get_in() {
        let mut s = state();
        register_mainer(&mut s, p(10));
        let mainer = Caller::user(p(10));
        let stranger = Caller::user(p(50));
        let registrar = Caller::user(REGISTRAR);
        for (caller, method, expected) in [
            (&stranger, "submit", false),
            (&stranger, "get_challenge", false),
            (&stranger, "add_challenge", false),
            (&stranger, "register_mainer", false),
            (&stranger, "counts", false),
            (&stranger, "no_such_method", false),
            (&mainer, "submit", true),
            (&mainer, "get_challenge", true),
            (&mainer, "release_challenge", true),
            (&mainer, "add_challenge", false),
            (&registrar, "register_mainer", true),
            (&registrar, "report_module", true),
            (&stranger, "report_module", false),
            (&registrar, "forget_module", false),
            (&registrar, "submit", false),
            (&admin(), "add_challenge", true),
            (&admin(), "list_challenges", true),
            (&Caller { principal: p(60), is_controller: true }, "close_challenge", true),
        ] {
            assert_eq!(accepts(&s, caller, method, 100), expected, "{} {method}", caller.principal);
        }
    }

    #[test]
    fn the_game_s_updates_let_in_only_their_callers() {
        let mut s = state();
        register_mainer(&mut s, p(10));
        make_judge(&mut s, p(20));
        make_challenger(&mut s, p(30));
        let (judge, challenger, stranger) = (Caller::user(p(20)), Caller::user(p(30)), Caller::user(p(50)));
        for (caller, method, expected) in [
            (&stranger, "add_topic", false),
            (&challenger, "add_topic", false),
            (&admin(), "add_topic", true),
            (&stranger, "set_game_settings", false),
            (&stranger, "fund_reward_pool", false),
            (&stranger, "register_game_agent", false),
            (&Caller::user(REGISTRAR), "register_game_agent", true),
            (&stranger, "next_topic", false),
            (&judge, "next_topic", false),
            (&challenger, "next_topic", true),
            (&challenger, "add_generated_challenge", true),
            (&stranger, "next_to_judge", false),
            (&challenger, "next_to_judge", false),
            (&Caller::user(p(10)), "submit_score", false),
            (&judge, "next_to_judge", true),
            (&judge, "submit_score", true),
        ] {
            assert_eq!(accepts(&s, caller, method, 100), expected, "{} {method}", caller.principal);
        }
        let owner = Caller::user(owner_of(p(10)));
        assert!(accepts_about(&s, &owner, "set_payout_to", 100, || Some(p(10))));
        assert!(!accepts_about(&s, &stranger, "set_payout_to", 100, || Some(p(10))));
        assert!(!accepts_about(&s, &owner, "set_payout_to", 100, || None));
        assert!(!accepts_about(&s, &owner, "set_payout_to", 5_000, || Some(p(10))));
        assert!(!accepts(&s, &judge, "submit_score", 2_000_000));
    }

    #[test]
    fn oversize_arguments_are_refused_before_decoding() {
        let mut s = state();
        register_mainer(&mut s, p(10));
        let mainer = Caller::user(p(10));
        let max = s.config().max_answer_bytes as usize;
        assert!(accepts(&s, &mainer, "submit", max + 1000));
        assert!(!accepts(&s, &mainer, "submit", 2_000_000));
        assert!(!accepts(&s, &mainer, "get_challenge", 5_000));
        assert!(accepts(&s, &admin(), "add_challenge", MAX_QUESTION_BYTES + 100));
        assert!(!accepts(&s, &admin(), "add_challenge", 2_000_000));
    }
}
