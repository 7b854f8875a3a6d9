//! `canister_inspect_message`: ingress updates are refused before they are
//! inducted (so before this canister pays for them) when their caller cannot
//! pass the endpoint's own check, or their argument is larger than the
//! endpoint can ever accept. A filter against paying for strangers'
//! messages, not the security boundary: every endpoint checks its caller
//! again. Calls from canisters (the mAIner's controller, the creator) are
//! never inspected.

use mainer_types::llama_cpp::MAX_FILE_UPLOAD_CHUNK_BYTES;

use crate::files::MAX_FILENAME_BYTES;
use crate::settings::{Caller, Settings};

/// Arguments of the admin endpoints (flags of `load_model`, a principal, a level).
const SMALL_BYTES: usize = 16 * 1024;
/// Flags of an inference call: the prompt is the large part. A context of
/// 32k tokens of a few bytes each fits easily; more can never be ingested.
const PROMPT_BYTES: usize = 512 * 1024;
/// Candid framing and the offset of a `file_upload_chunk`.
const ENVELOPE_BYTES: usize = 1024;

/// Whether an ingress update to `method` from `caller` with `arg_bytes` of
/// argument is worth running.
pub fn accepts(settings: &Settings, caller: Caller, method: &str, arg_bytes: usize) -> bool {
    let (allowed, max_bytes) = match method {
        "new_chat" | "run_update" | "remove_prompt_cache" => (settings.may_infer(caller), PROMPT_BYTES),
        "file_upload_chunk" => (caller.controller, MAX_FILE_UPLOAD_CHUNK_BYTES + MAX_FILENAME_BYTES + ENVELOPE_BYTES),
        // load_model, set_max_tokens, the access endpoints, return_cycles,
        // the prompt prefixes, and queries sent as updates: controllers only.
        _ => (caller.controller, SMALL_BYTES),
    };
    allowed && arg_bytes <= max_bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ACCESS_ALL_BUT_ANONYMOUS;
    use candid::Principal;

    fn user(n: u8) -> Caller {
        Caller { principal: Principal::from_slice(&[n; 10]), controller: false }
    }

    #[test]
    fn only_callers_who_pass_the_endpoint_check_get_in() {
        let mut settings = Settings::default();
        let controller = Caller { principal: Principal::from_slice(&[1; 10]), controller: true };
        let granted = user(2);
        let stranger = user(3);
        settings.grant(granted.principal).unwrap();
        for (caller, method, bytes, expected) in [
            (stranger, "run_update", 100, false),
            (stranger, "new_chat", 100, false),
            (stranger, "file_upload_chunk", 100, false),
            (stranger, "load_model", 100, false),
            (stranger, "return_cycles", 40, false),
            (stranger, "grant_access", 40, false),
            (stranger, "health", 0, false),
            (granted, "run_update", 100, true),
            (granted, "new_chat", PROMPT_BYTES + 1, false),
            (granted, "load_model", 100, false),
            (granted, "file_upload_chunk", 100, false),
            (controller, "file_upload_chunk", 2_000_000 + 200, true),
            (controller, "file_upload_chunk", 3_000_000, false),
            (controller, "load_model", 100, true),
            (stranger, "save_prompt_prefix", 100, false),
            (granted, "save_prompt_prefix", 100, false),
            (granted, "remove_prompt_prefix", 100, false),
            (controller, "save_prompt_prefix", 100, true),
            (controller, "set_access", SMALL_BYTES + 1, false),
        ] {
            assert_eq!(accepts(&settings, caller, method, bytes), expected, "{method} from {caller:?} ({bytes} bytes)");
        }
    }

    #[test]
    fn an_open_llm_lets_every_signed_caller_infer_but_not_administer() {
        let mut settings = Settings::default();
        settings.set_level(ACCESS_ALL_BUT_ANONYMOUS).unwrap();
        assert!(accepts(&settings, user(7), "run_update", 100));
        assert!(!accepts(
            &settings,
            Caller { principal: Principal::anonymous(), controller: false },
            "run_update",
            100
        ));
        assert!(!accepts(&settings, user(7), "load_model", 100));
    }
}
