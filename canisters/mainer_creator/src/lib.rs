//! The mAIner creator canister: stores uploaded artefacts (controller wasm,
//! LLM wasm, GGUF models) in stable memory with their SHA-256 computed
//! on-chain, and runs the factory's jobs that create mAIners.
//!
//! Endpoints live in `*_api.rs` modules; each checks its caller and calls
//! the logic modules.

mod access;
mod config;
mod fleet;
mod jobs;
mod jobs_api;
mod memory;
mod metrics;
mod steps;
mod store;
mod store_api;

use ic_cdk::{init, post_upgrade, query};
use mainer_types::creator::{CreatorArgs, CreatorSettings};

use crate::config::Config;

// Types named in the signatures of endpoints in other modules, which
// `export_service!` refers to from here.
#[allow(unused_imports)]
use candid::Principal;
#[allow(unused_imports)]
use mainer_types::creator::*;
#[allow(unused_imports)]
use mainer_types::{Page, PageRequest};

#[init]
fn init(args: CreatorArgs) {
    let CreatorArgs::Init(init) = args else { ic_cdk::trap("install needs CreatorArgs::Init") };
    config::set(Config {
        admins: init.admins,
        game_state: init.game_state,
        allowed_creators: init.allowed_creators,
        settings: init.settings.unwrap_or_default(),
    });
    jobs::arm_timer();
}

#[post_upgrade]
fn post_upgrade(args: Option<CreatorArgs>) {
    match args {
        None => {}
        Some(CreatorArgs::Upgrade(up)) => config::update(|c| {
            if let Some(a) = up.admins {
                c.admins = a;
            }
            if let Some(g) = up.game_state {
                c.game_state = g;
            }
            if let Some(a) = up.allowed_creators {
                c.allowed_creators = a;
            }
            if let Some(s) = up.settings {
                c.settings = s;
            }
        }),
        Some(CreatorArgs::Init(_)) => ic_cdk::trap("upgrade needs CreatorArgs::Upgrade (or no argument)"),
    }
    jobs::arm_timer();
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
    config::get().settings
}

candid::export_service!();

#[cfg(test)]
canister_common::did_test!("mainer_creator.did");
