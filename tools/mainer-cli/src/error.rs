//! Errors of the CLI and the exit codes scripts rely on.

use std::fmt;

use candid::Principal;

use crate::client::{ClientError, reject_code};

/// Exit codes.
pub mod exit {
    pub const OK: i32 = 0;
    /// The canister (or the IC on its behalf) answered with an error.
    pub const CANISTER: i32 = 1;
    /// Bad command line, missing canister id or identity.
    pub const USAGE: i32 = 2;
    /// Connection or transport failure, unknown canister, time-out.
    pub const TRANSPORT: i32 = 3;
    /// A SHA-256 did not match.
    pub const HASH_MISMATCH: i32 = 4;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    Usage(String),
    Canister(String),
    Transport(String),
    HashMismatch(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Canister(_) => exit::CANISTER,
            CliError::Transport(_) => exit::TRANSPORT,
            CliError::HashMismatch(_) => exit::HASH_MISMATCH,
        }
    }

    /// The same error with a line of advice added.
    pub fn context(self, more: impl fmt::Display) -> CliError {
        let add = |m: String| format!("{m}\n{more}");
        match self {
            CliError::Usage(m) => CliError::Usage(add(m)),
            CliError::Canister(m) => CliError::Canister(add(m)),
            CliError::Transport(m) => CliError::Transport(add(m)),
            CliError::HashMismatch(m) => CliError::HashMismatch(add(m)),
        }
    }

    /// A failed call to `canister.method`, explained for an operator.
    pub fn from_client(e: &ClientError, canister: Principal, method: &str, caller: Principal) -> CliError {
        match e {
            ClientError::Reject { code, message, .. } if *code == reject_code::DESTINATION_INVALID => {
                CliError::Transport(format!(
                    "canister {canister} does not exist on this network ({message}); check the canister id and --network"
                ))
            }
            _ if e.is_out_of_cycles() => CliError::Canister(format!(
                "canister {canister} is out of cycles ({e}); top it up, e.g. `dfx canister deposit-cycles 2000000000000 {canister}`"
            )),
            ClientError::Reject { message, error_code, .. }
                if error_code.as_deref() == Some("IC0536")
                    || message.contains("has no update method")
                    || message.contains("has no query method") =>
            {
                CliError::Canister(format!(
                    "canister {canister} has no method `{method}`: is it really the canister you mean? ({message})"
                ))
            }
            ClientError::Reject { message, .. } if message.contains("Only controllers") => {
                CliError::Canister(format!("{caller} is not a controller of {canister}: {message}"))
            }
            ClientError::Reject { .. } => CliError::Canister(format!("{canister}.{method}: {e}")),
            ClientError::Unreachable(_) | ClientError::NoAnswer(_) | ClientError::Other(_) => {
                CliError::Transport(format!("{canister}.{method}: {e}"))
            }
        }
    }

    /// A typed error the canister returned, with a hint when the caller lacks rights.
    pub fn refused(what: impl fmt::Display, unauthorized: bool, caller: Principal) -> CliError {
        if !unauthorized {
            return CliError::Canister(what.to_string());
        }
        let hint = if caller == Principal::anonymous() {
            "you are calling as the anonymous principal: pass --identity NAME or --pem FILE".to_string()
        } else {
            format!("you are calling as {caller}: make it an admin (install/upgrade argument) or a controller")
        };
        CliError::Canister(format!("{what} ({hint})"))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Canister(m) | CliError::Transport(m) | CliError::HashMismatch(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for CliError {}
