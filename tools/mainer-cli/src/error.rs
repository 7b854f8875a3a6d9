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

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(code: u32, message: &str, error_code: Option<&str>) -> ClientError {
        ClientError::Reject { code, message: message.into(), error_code: error_code.map(str::to_string) }
    }

    #[test]
    fn failures_map_to_exit_codes_with_advice() {
        let c = Principal::from_text("bkyz2-fmaaa-aaaaa-qaaaq-cai").unwrap();
        let me = Principal::anonymous();
        let out = reject(2, &format!("Canister {c} is out of cycles"), Some("IC0207"));
        let e = CliError::from_client(&out, c, "create_mainer", me);
        assert_eq!(e.exit_code(), exit::CANISTER);
        assert!(e.to_string().contains("deposit-cycles"), "{e}");
        assert!(!out.is_retryable(true));
        let missing = CliError::from_client(&reject(3, "Canister not found", Some("IC0301")), c, "job", me);
        assert_eq!(missing.exit_code(), exit::TRANSPORT);
        assert!(missing.to_string().contains("does not exist on this network"));
        let trap = CliError::from_client(&reject(5, "trapped", Some("IC0503")), c, "job", me);
        assert_eq!(trap.exit_code(), exit::CANISTER);
        let gone = CliError::from_client(&ClientError::Unreachable("refused".into()), c, "job", me);
        assert_eq!(gone.exit_code(), exit::TRANSPORT);
        assert!(ClientError::NoAnswer("x".into()).is_retryable(true));
        assert!(!ClientError::NoAnswer("x".into()).is_retryable(false));
        assert!(reject(2, "queue full", None).is_retryable(false));
        let refused = CliError::refused("unauthorized: admins only", true, me);
        assert!(refused.to_string().contains("anonymous principal"));
        assert_eq!(CliError::HashMismatch("x".into()).context("again").to_string(), "x\nagain");
    }
}
