//! The mAIner creator canister: stores uploaded artefacts (controller wasm,
//! LLM wasm, GGUF models) in stable memory with their SHA-256 computed
//! on-chain, and runs the factory's jobs that create mAIners.
//!
//! Endpoints live in `*_api.rs` modules; each checks its caller and calls
//! the logic modules.

mod access;
mod config;
mod economy;
mod fleet;
mod fleet_steps;
mod ic;
mod inspect;
mod job;
mod jobs_api;
mod management;
mod memory;
mod metrics;
mod orders_api;
mod payment;
mod scheduler;
mod state;
mod steps;
mod store;
mod store_api;
#[cfg(test)]
mod testing;

use ic_cdk::{init, post_upgrade, query};
use mainer_types::creator::{CreatorArgs, CreatorSettings};

use crate::config::Config;
use crate::state::{mutate_state, read_state};

// Types named in the signatures of endpoints in other modules, which
// `export_service!` refers to from here.
#[allow(unused_imports)]
use candid::Principal;
#[allow(unused_imports)]
use mainer_types::creator::*;
#[allow(unused_imports)]
use mainer_types::economy::*;
#[allow(unused_imports)]
use mainer_types::{Page, PageRequest};

#[init]
fn init(args: CreatorArgs) {
    let CreatorArgs::Init(init) = args else { ic_cdk::trap("install needs CreatorArgs::Init") };
    let settings = init.settings.unwrap_or_default();
    if let Err(e) = config::validate(&settings) {
        ic_cdk::trap(format!("invalid settings: {e}"));
    }
    mutate_state(|s| {
        s.set_config(Config {
            admins: init.admins,
            game_state: init.game_state,
            allowed_creators: init.allowed_creators,
            settings,
        });
        s.mark_indexed();
    });
    scheduler::arm_timer();
}

#[post_upgrade]
fn post_upgrade(args: Option<CreatorArgs>) {
    match args {
        None => {}
        Some(CreatorArgs::Upgrade(up)) => {
            let config = read_state(|s| s.config()).upgraded(up).unwrap_or_else(|e| ic_cdk::trap(format!("{e}")));
            mutate_state(|s| s.set_config(config));
        }
        Some(CreatorArgs::Init(_)) => ic_cdk::trap("upgrade needs CreatorArgs::Upgrade (or no argument)"),
    }
    mutate_state(|s| {
        s.migrate();
        s.refunds_in_flight_unknown();
    });
    scheduler::arm_timer();
}

/// Refuses strangers' and oversize ingress before the creator pays for it
/// (see `inspect.rs`); the endpoints check everything again.
#[ic_cdk::inspect_message]
fn inspect_message() {
    let caller = ic_cdk::api::msg_caller();
    let controller = ic_cdk::api::is_controller(&caller);
    canister_common::inspect::accept_if(|method, bytes| {
        read_state(|s| {
            // Owners retry or take back their own failed orders.
            let ordered = matches!(method, "retry_job" | "refund_order") && s.has_orders(caller);
            inspect::accepts(&s.config(), &caller, controller, ordered, method, bytes)
        })
    });
}

#[query]
fn health() -> bool {
    true
}

/// `/logs` and `/metrics` for the HTTP gateway, which calls anonymously
/// (see `canister_common::http`: nothing secret is logged).
#[query]
fn http_request(req: mainer_types::http::HttpRequest) -> mainer_types::http::HttpResponse {
    canister_common::http::serve(&req, metrics::encode)
}

#[query]
fn whoami() -> candid::Principal {
    ic_cdk::api::msg_caller()
}

#[query]
fn am_i_controller() -> bool {
    ic_cdk::api::is_controller(&ic_cdk::api::msg_caller())
}

#[query]
fn settings() -> CreatorSettings {
    read_state(|s| s.config().settings)
}

candid::export_service!();

#[cfg(test)]
canister_common::did_test!("mainer_creator.did");
