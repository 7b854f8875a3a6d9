//! `canister_inspect_message`: ingress updates are refused before they are
//! inducted (so before this canister pays for them) when their caller
//! cannot pass the endpoint's own check, or their argument is larger than
//! the endpoint can ever accept. A filter against paying for strangers'
//! messages, not the security boundary: every endpoint checks its caller
//! again. Calls from canisters (the creator, ShareAgents, the ShareService)
//! are never inspected.

use candid::Principal;

use crate::access;
use crate::state::State;

/// Arguments without a large field.
const SMALL_BYTES: usize = 1024;
/// Settings carry a system prompt.
const SETTINGS_BYTES: usize = 64 * 1024;
/// A challenge: a question of at most 4 KiB and its settings.
const CHALLENGE_BYTES: usize = 16 * 1024;
/// An answer (the game state takes at most 1 MiB) and its evidence.
const DELIVERY_BYTES: usize = 1024 * 1024 + 16 * 1024;

/// Whether an ingress update to `method` from `caller` (`is_operator`: an IC
/// controller; the owner is an admin too) with `arg_bytes` of argument is
/// worth running.
pub fn accepts(state: &State, caller: &Principal, is_operator: bool, method: &str, arg_bytes: usize) -> bool {
    let config = state.config();
    let is_admin = is_operator || config.owner == *caller;
    let (allowed, max_bytes) = match method {
        "add_llm" | "remove_llm" | "set_llm_draining" | "add_share_agent" | "remove_share_agent" => {
            (is_operator || config.creator == *caller, SMALL_BYTES)
        }
        "enqueue_challenge" => (state.is_agent(caller), CHALLENGE_BYTES),
        "deliver_answer" => (config.share_service == Some(*caller), DELIVERY_BYTES),
        "set_settings" => (is_admin, SETTINGS_BYTES),
        // Every other update, and queries sent as updates: admins only.
        _ => (is_admin, SMALL_BYTES),
    };
    allowed && arg_bytes <= max_bytes
}

/// The entry point's view of the caller.
pub fn caller_is_operator(caller: &Principal) -> bool {
    access::is_operator(caller)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::state;
    use mainer_types::controller::ControllerSettings;

    #[test]
    fn strangers_and_oversize_arguments_are_refused() {
        let mut s = state(ControllerSettings::default());
        let agent = Principal::from_slice(&[3; 10]);
        let stranger = Principal::from_slice(&[4; 10]);
        s.add_agent(agent);
        let creator = s.config().creator;
        assert!(!accepts(&s, &stranger, false, "enqueue_challenge", 100));
        assert!(accepts(&s, &agent, false, "enqueue_challenge", 100));
        assert!(!accepts(&s, &agent, false, "enqueue_challenge", 2_000_000), "oversize");
        assert!(!accepts(&s, &stranger, false, "pause", 10));
        assert!(accepts(&s, &stranger, true, "pause", 10), "an admin");
        assert!(!accepts(&s, &stranger, false, "deliver_answer", 100), "no ShareService configured");
        assert!(!accepts(&s, &agent, false, "add_llm", 100));
        assert!(accepts(&s, &creator, false, "add_llm", 100), "the creator manages LLMs");
        let owner = Principal::from_slice(&[5; 10]);
        s.update_config(|c| c.owner = owner);
        assert!(accepts(&s, &owner, false, "pause", 10), "the owner pauses");
        assert!(!accepts(&s, &owner, false, "add_llm", 100), "the owner does not choose the LLMs");
        assert!(!accepts(&s, &stranger, false, "health", 0), "public queries are queries");
        assert!(!accepts(&s, &stranger, true, "set_settings", 2_000_000));
    }
}
