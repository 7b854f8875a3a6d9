//! Public value types of the simulator: reject codes, rejects, message ids.

use std::fmt;

pub use candid::Principal;

/// The IC's reject codes, as `ic0.msg_reject_code` and ingress replies carry them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum RejectCode {
    SysFatal = 1,
    SysTransient = 2,
    DestinationInvalid = 3,
    CanisterReject = 4,
    CanisterError = 5,
    SysUnknown = 6,
}

impl RejectCode {
    pub fn from_u32(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::SysFatal,
            2 => Self::SysTransient,
            3 => Self::DestinationInvalid,
            4 => Self::CanisterReject,
            5 => Self::CanisterError,
            6 => Self::SysUnknown,
            _ => return None,
        })
    }
}

/// A rejected call: the reject code, the message, and the IC's error code
/// (such as `IC0503`) when the system produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub code: RejectCode,
    pub message: String,
    pub error_code: Option<&'static str>,
}

impl Reject {
    pub fn new(code: RejectCode, error_code: &'static str, message: impl Into<String>) -> Self {
        Reject { code, message: message.into(), error_code: Some(error_code) }
    }

    /// A reject produced by the canister itself with `ic0.msg_reject`.
    pub fn by_canister(message: impl Into<String>) -> Self {
        Reject { code: RejectCode::CanisterReject, message: message.into(), error_code: None }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error_code {
            Some(e) => write!(f, "{:?} ({}): {}", self.code, e, self.message),
            None => write!(f, "{:?}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for Reject {}

pub type CallResult = Result<Vec<u8>, Reject>;

/// Handle of a submitted ingress message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// The management canister `aaaaa-aa`.
pub fn management_canister() -> Principal {
    Principal::management_canister()
}

/// Canister ids as the IC makes them: an 8-byte big-endian index and `0x01 0x01`.
pub fn canister_id_from_index(index: u64) -> Principal {
    let mut bytes = index.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[1, 1]);
    Principal::from_slice(&bytes)
}

/// What ran in one execution, for benchmarks and debugging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionRecord {
    pub canister: Principal,
    /// `update inc`, `query get`, `reply callback`, `canister_init`, ...
    pub entry: String,
    pub instructions: u64,
    pub trapped: bool,
    pub cycles_charged: u128,
}

/// One line of a canister's log (`ic0.debug_print` and trap messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub index: u64,
    pub time_ns: u64,
    pub text: String,
}

/// Outcome of an ingress update, with what it cost.
#[derive(Clone, Debug)]
pub struct IngressOutcome {
    pub result: CallResult,
    /// Instructions of every execution in the call context the ingress opened
    /// (the method and its callbacks, not the canisters it called).
    pub instructions: u64,
}
