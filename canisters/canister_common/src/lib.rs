//! Helpers every canister of the project shares, on the ic-cdk side (the
//! Candid types they serve are in `mainer_types`, which stays free of ic-cdk):
//!
//! - [`log`]: bounded, leveled log buffers and the `log!` / `info!` / `warn!`
//!   / `error!` / `debug!` macros;
//! - [`metrics`]: the gauges every canister reports (cycles, memory, log
//!   entries) in Prometheus text, plus the canister's own;
//! - [`http`]: `http_request` routing for `/logs` (JSON, filterable) and
//!   `/metrics`;
//! - [`cycles`]: `return_cycles`, for canisters the creator deletes;
//! - [`guard`]: the one guard for every "do not overlap" rule;
//! - [`inspect`]: the `canister_inspect_message` entry point;
//! - `did` (feature `did-test`): the unit test that keeps a `.did` file equal
//!   to the Rust interface.

pub mod cycles;
#[cfg(feature = "did-test")]
pub mod did;
pub mod guard;
pub mod http;
pub mod inspect;
pub mod log;
pub mod metrics;
