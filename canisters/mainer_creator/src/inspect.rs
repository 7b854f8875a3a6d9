//! `canister_inspect_message`: ingress updates are refused before they are
//! inducted (so before the creator pays for them) when their caller cannot
//! pass the endpoint's own check, or their argument is larger than the
//! endpoint can ever accept. A filter against paying for strangers'
//! messages, not the security boundary: every endpoint checks its caller
//! again (`access.rs`, `orders_api.rs`). Calls from canisters are never
//! inspected.

use candid::Principal;
use mainer_types::creator::MAX_ARTEFACT_CHUNK_BYTES;

use crate::config::Config;

/// Requests with no large field.
const SMALL_BYTES: usize = 4 * 1024;
/// A mAIner request carries the controller's settings (a system prompt).
const MAINER_REQUEST_BYTES: usize = 64 * 1024;
/// A fleet request may name every canister of a large fleet.
const FLEET_REQUEST_BYTES: usize = 512 * 1024;
/// Everything of an `upload_chunk` besides its bytes.
const CHUNK_ENVELOPE_BYTES: usize = 1024;

/// Whether an ingress update to `method` from `caller` (`controller`: an IC
/// controller of the creator; `ordered`: the caller has placed orders) with
/// `arg_bytes` of argument is worth running.
pub fn accepts(
    config: &Config,
    caller: &Principal,
    controller: bool,
    ordered: bool,
    method: &str,
    arg_bytes: usize,
) -> bool {
    let admin = controller || config.admins.contains(caller);
    let (allowed, max_bytes) = match method {
        "create_mainer" => (admin || config.allowed_creators.contains(caller), MAINER_REQUEST_BYTES),
        // Users order and top up mAIners and pay for them (the endpoints
        // check the payment); only the anonymous principal can own nothing.
        "order_mainer" => (*caller != Principal::anonymous(), MAINER_REQUEST_BYTES),
        "top_up" => (*caller != Principal::anonymous(), SMALL_BYTES),
        // An order's owner retries its failed job or takes back its kept funds.
        "retry_job" | "refund_order" => (admin || ordered, SMALL_BYTES),
        "upload_chunk" => (admin, MAX_ARTEFACT_CHUNK_BYTES as usize + CHUNK_ENVELOPE_BYTES),
        "upgrade_controllers" | "upgrade_llms" => (admin, FLEET_REQUEST_BYTES),
        // Every other update (uploads, jobs, fleet, settings) and queries
        // sent as updates: admins only.
        _ => (admin, SMALL_BYTES),
    };
    allowed && arg_bytes <= max_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8) -> Principal {
        Principal::from_slice(&[n; 10])
    }

    #[test]
    fn only_callers_who_pass_the_endpoint_check_get_in() {
        let config =
            Config { admins: vec![p(1)], game_state: p(9), allowed_creators: vec![p(2)], settings: Default::default() };
        let (admin, allowed, stranger, controller) = (p(1), p(2), p(3), p(4));
        for (caller, is_controller, method, bytes, expected) in [
            (stranger, false, "refund_order", 10, false),
            (stranger, false, "upload_chunk", 100, false),
            (stranger, false, "start_upload", 100, false),
            (stranger, false, "create_mainer", 100, false),
            (stranger, false, "retry_job", 10, false),
            (stranger, false, "upgrade_controllers", 10, false),
            (stranger, false, "list_jobs", 10, false),
            (allowed, false, "create_mainer", 100, true),
            (allowed, false, "create_mainer", MAINER_REQUEST_BYTES + 1, false),
            (allowed, false, "upload_chunk", 100, false),
            (allowed, false, "remove_llm", 10, false),
            (admin, false, "upload_chunk", 2_000_000 + 200, true),
            (admin, false, "upload_chunk", 2_100_000, false),
            (admin, false, "set_game_state", 40, true),
            (admin, false, "finish_upload", SMALL_BYTES + 1, false),
            (stranger, false, "order_mainer", 200, true),
            (stranger, false, "order_mainer", MAINER_REQUEST_BYTES + 1, false),
            (Principal::anonymous(), false, "order_mainer", 200, false),
            (stranger, false, "top_up", 100, true),
            (stranger, false, "set_economy", 100, false),
            (controller, true, "upgrade_llms", 100_000, true),
            (controller, true, "delete_artefact", 100, true),
        ] {
            assert_eq!(
                accepts(&config, &caller, is_controller, false, method, bytes),
                expected,
                "{method} from {caller} ({bytes} bytes)"
            );
        }
        // Someone who placed orders may retry them or take back their funds.
        assert!(accepts(&config, &stranger, false, true, "retry_job", 10));
        assert!(accepts(&config, &stranger, false, true, "refund_order", 10));
        assert!(!accepts(&config, &stranger, false, true, "set_economy", 10));
    }
}
