//! The one door to the IC: raw Candid calls. The commands only see this
//! trait; `agent::AgentClient` speaks to a replica or mainnet, and the tests
//! implement it over the embedded simulator.

use std::fmt;
use std::time::Duration;

use candid::Principal;

/// Reject codes of the IC interface specification.
pub mod reject_code {
    pub const SYS_FATAL: u32 = 1;
    pub const SYS_TRANSIENT: u32 = 2;
    pub const DESTINATION_INVALID: u32 = 3;
    pub const CANISTER_REJECT: u32 = 4;
    pub const CANISTER_ERROR: u32 = 5;
    pub const SYS_UNKNOWN: u32 = 6;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The IC or the canister rejected the call (trap, missing canister or
    /// method, out of cycles, ...).
    Reject { code: u32, message: String, error_code: Option<String> },
    /// The request never reached the IC: it is safe to send it again.
    Unreachable(String),
    /// The request was sent but no answer came: an update may or may not have run.
    NoAnswer(String),
    /// Any other failure of the connection or the agent.
    Other(String),
}

impl ClientError {
    pub fn is_out_of_cycles(&self) -> bool {
        match self {
            ClientError::Reject { message, error_code, .. } => {
                error_code.as_deref() == Some("IC0207") || message.contains("out of cycles")
            }
            _ => false,
        }
    }

    /// Whether sending the same call again may succeed. `idempotent` says
    /// whether running the call twice is harmless (then a call whose outcome
    /// is unknown may be repeated too).
    pub fn is_retryable(&self, idempotent: bool) -> bool {
        match self {
            ClientError::Unreachable(_) => true,
            ClientError::NoAnswer(_) => idempotent,
            // Refused before execution (e.g. a full queue), unless it is for want of cycles.
            ClientError::Reject { code, .. } if *code == reject_code::SYS_TRANSIENT => !self.is_out_of_cycles(),
            // A best-effort time-out: unknown outcome.
            ClientError::Reject { code, .. } if *code == reject_code::SYS_UNKNOWN => idempotent,
            _ => false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Reject { code, message, error_code } => {
                write!(f, "rejected (code {code}")?;
                if let Some(e) = error_code {
                    write!(f, ", {e}")?;
                }
                write!(f, "): {message}")
            }
            ClientError::Unreachable(m) => write!(f, "could not reach the IC: {m}"),
            ClientError::NoAnswer(m) => write!(f, "no answer: {m}"),
            ClientError::Other(m) => write!(f, "{m}"),
        }
    }
}

/// Raw calls with Candid-encoded arguments and replies, signed by one identity.
pub trait CanisterClient {
    fn update(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, ClientError>;
    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, ClientError>;
    /// The cycle balance of `canister` (the management canister's
    /// `canister_status`: only for its controllers).
    fn canister_cycles(&self, canister: Principal) -> Result<u128, ClientError>;
    /// The principal the calls are signed as.
    fn principal(&self) -> Principal;
    /// The IC's time as nanoseconds since the epoch (for deadlines).
    fn now_ns(&self) -> u64;
    /// Lets `d` pass: sleeps on a real network, moves the clock of a simulator.
    fn sleep(&self, d: Duration);
}
