//! An embedded Internet Computer simulator.
//!
//! It runs real canister wasm under wasmtime with the `ic0` system API, the
//! management canister, inter-canister calls, cycles, timers and the IC's
//! limits, deterministically, in-process. See the repository README for what
//! it models and what it does not.

mod api;
mod canister;
mod cost;
mod ic_cost_table;
mod instance;
mod management;
mod meter;
mod module;
mod sim;
mod stable;
mod system_api;
mod types;

pub use cost::{CostModel, Limits};
pub use management::{InstallMode, ManagementFault};
pub use module::MAX_WASM_MODULE_BYTES;
pub use sim::{DEFAULT_PROVISIONAL_CYCLES, GENESIS_TIME_NS, SimConfig, Simulator, simulated_certificate};
pub use stable::WASM_PAGE;
pub use types::*;

pub use ic_management_canister_types as mgmt;
