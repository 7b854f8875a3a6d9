//! The `canister_inspect_message` entry point every canister shares: it reads
//! the method name and the argument's size (not the argument: a stranger's
//! 2 MB is never copied) and accepts the message only if the canister's own
//! rule says so. Each canister's rule lives in its `inspect.rs`, and every
//! endpoint checks its caller again: inspection only spares the canister
//! from paying for messages it would refuse.

/// Accepts the ingress message under inspection when `accepts(method,
/// argument_bytes)` is true; otherwise it is refused, before induction.
pub fn accept_if(accepts: impl FnOnce(&str, usize) -> bool) {
    let bytes = ic0::msg_arg_data_size();
    let method = ic_cdk::api::msg_method_name();
    if accepts(&method, bytes) {
        ic_cdk::api::accept_message();
    }
}
