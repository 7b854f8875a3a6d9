//! What a command runs with: the client, the output streams, the canister
//! ids, and typed calls with retries and operator-friendly errors.

use std::io::Write;
use std::time::Duration;

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use mainer_types::calls::{Method, Mode, creator as creator_calls};
use mainer_types::controller::ControllerError;
use mainer_types::creator::CreatorError;
use mainer_types::game::GameError;
use mainer_types::{Page, PageRequest};
use serde::de::DeserializeOwned;

use crate::client::{CanisterClient, ClientError};

/// Items the CLI asks for per page: small enough that a page is quick to
/// fetch and print, large enough that few round trips walk a listing.
pub const PAGE_SIZE: u64 = 100;
use crate::error::CliError;

/// Back-off for calls that may succeed when sent again.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Tries in all (1: no retry).
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 6, base: Duration::from_secs(1), max: Duration::from_secs(30) }
    }
}

impl Retry {
    /// The wait before try number `attempt + 1` (`attempt` >= 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Query,
    /// An update that must not run twice by accident (not repeated after a lost answer).
    Update,
    /// An update that is harmless to repeat.
    IdempotentUpdate,
}

impl Kind {
    /// How a call of a method in this `mode` is sent and retried.
    pub fn of(mode: Mode) -> Kind {
        match mode {
            Mode::Query => Kind::Query,
            Mode::Update => Kind::Update,
            Mode::IdempotentUpdate => Kind::IdempotentUpdate,
        }
    }
}

pub struct Ctx<'a> {
    pub client: &'a dyn CanisterClient,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub json: bool,
    /// Draw progress bars (on a terminal, not in JSON mode).
    pub progress: bool,
    pub retry: Retry,
    pub creator: Option<Principal>,
    pub game_state: Option<Principal>,
    /// Time between two polls of a job being followed.
    pub poll: Duration,
    /// Following a job gives up after this long (None: never).
    pub follow_timeout: Option<Duration>,
    /// The network's name, for messages.
    pub network: String,
}

/// Prints a line of results to the output stream.
#[macro_export]
macro_rules! outln {
    ($ctx:expr) => {{
        let _ = ::std::io::Write::write_all(&mut *$ctx.out, b"\n");
    }};
    ($ctx:expr, $($arg:tt)*) => {{
        let _ = ::std::io::Write::write_fmt(&mut *$ctx.out, format_args!("{}\n", format_args!($($arg)*)));
    }};
}

/// Prints a note (progress, retries) to the error stream.
#[macro_export]
macro_rules! note {
    ($ctx:expr, $($arg:tt)*) => {{
        let _ = ::std::io::Write::write_fmt(&mut *$ctx.err, format_args!("{}\n", format_args!($($arg)*)));
    }};
}

impl<'a> Ctx<'a> {
    pub fn new(client: &'a dyn CanisterClient, out: &'a mut dyn Write, err: &'a mut dyn Write) -> Self {
        Ctx {
            client,
            out,
            err,
            json: false,
            progress: false,
            retry: Retry::default(),
            creator: None,
            game_state: None,
            poll: Duration::from_secs(2),
            follow_timeout: None,
            network: "local".into(),
        }
    }

    pub fn caller(&self) -> Principal {
        self.client.principal()
    }

    pub fn creator(&self) -> Result<Principal, CliError> {
        self.creator.ok_or_else(|| {
            CliError::Usage(
                "no mainer_creator canister id: pass --creator ID, or run inside the project after `dfx deploy` \
                 (it reads .dfx/local/canister_ids.json, or canister_ids.json for --network ic)"
                    .into(),
            )
        })
    }

    /// The game state: from the flags or dfx's files, else the one the creator uses.
    pub fn game_state(&mut self) -> Result<Principal, CliError> {
        if let Some(g) = self.game_state {
            return Ok(g);
        }
        let creator = self.creator().map_err(|_| {
            CliError::Usage(
                "no game_state canister id: pass --game-state ID (or --creator ID to ask the creator)".into(),
            )
        })?;
        let g = self.call(creator, &creator_calls::GAME_STATE, ())?;
        self.game_state = Some(g);
        Ok(g)
    }

    /// A raw call, sent again with back-off while the failure is transient.
    pub fn raw(&mut self, kind: Kind, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, CliError> {
        let mut attempt = 1;
        loop {
            let result = match kind {
                Kind::Query => self.client.query(canister, method, arg.clone()),
                Kind::Update | Kind::IdempotentUpdate => self.client.update(canister, method, arg.clone()),
            };
            let e = match result {
                Ok(bytes) => return Ok(bytes),
                Err(e) => e,
            };
            if attempt < self.retry.attempts && e.is_retryable(kind != Kind::Update) {
                let wait = self.retry.delay(attempt);
                crate::note!(self, "{method}: {e}; trying again in {}s", wait.as_secs_f64());
                self.client.sleep(wait);
                attempt += 1;
                continue;
            }
            let mut err = CliError::from_client(&e, canister, method, self.caller());
            if kind == Kind::Update && matches!(e, ClientError::NoAnswer(_)) {
                err = CliError::Transport(format!("{err} (the call may have run: check before repeating it)"));
            }
            return Err(err);
        }
    }

    /// A call of `method` with its Candid arguments and result.
    pub fn call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &mut self,
        canister: Principal,
        method: &Method<A, R>,
        args: A,
    ) -> Result<R, CliError> {
        let name = method.name;
        let arg = method.encode(args).map_err(|e| CliError::Usage(format!("cannot encode arguments: {e}")))?;
        let bytes = self.raw(Kind::of(method.mode), canister, name, arg)?;
        method.decode(&bytes).map_err(|e| {
            CliError::Canister(format!(
                "the reply of {canister}.{name} does not decode ({e}): is it the canister you mean, with this interface?"
            ))
        })
    }

    /// A call to the creator; its typed errors become CLI errors.
    pub fn creator_call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &mut self,
        method: &Method<A, Result<R, CreatorError>>,
        args: A,
    ) -> Result<R, CliError> {
        let creator = self.creator()?;
        let r = self.call(creator, method, args)?;
        r.map_err(|e| self.creator_error(method.name, e))
    }

    pub fn creator_error(&self, method: &str, e: CreatorError) -> CliError {
        match &e {
            CreatorError::HashMismatch { .. } => CliError::HashMismatch(format!("{method}: {e}")),
            CreatorError::InsufficientCycles { .. } => CliError::Canister(format!(
                "{method}: {e}; top up the creator, e.g. `dfx canister deposit-cycles 10000000000000 mainer_creator`"
            )),
            CreatorError::Unauthorized(_) => CliError::refused(format!("{method}: {e}"), true, self.caller()),
            _ => CliError::Canister(format!("{method}: {e}")),
        }
    }

    /// A call to the game state; its typed errors become CLI errors.
    pub fn game_call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &mut self,
        method: &Method<A, Result<R, GameError>>,
        args: A,
    ) -> Result<R, CliError> {
        let game = self.game_state()?;
        let r = self.call(game, method, args)?;
        r.map_err(|e| {
            CliError::refused(format!("{}: {e}", method.name), matches!(e, GameError::Unauthorized(_)), self.caller())
        })
    }

    /// A call to a mAIner controller; its typed errors become CLI errors.
    pub fn controller_call<A: ArgumentEncoder, R: CandidType + DeserializeOwned>(
        &mut self,
        controller: Principal,
        method: &Method<A, Result<R, ControllerError>>,
        args: A,
    ) -> Result<R, CliError> {
        let r = self.call(controller, method, args)?;
        r.map_err(|e| {
            CliError::refused(
                format!("{controller}.{}: {e}", method.name),
                matches!(e, ControllerError::Unauthorized(_)),
                self.caller(),
            )
        })
    }

    /// Every item of a paginated listing, `fetch` asked page by page
    /// ([`PAGE_SIZE`] items a page; canisters also bound a page by bytes,
    /// so a page may hold fewer and the walk follows `next_offset`).
    pub fn all_pages<T>(
        &mut self,
        mut fetch: impl FnMut(&mut Self, PageRequest) -> Result<Page<T>, CliError>,
    ) -> Result<Vec<T>, CliError> {
        let mut items = Vec::new();
        let mut offset = 0;
        loop {
            let page = fetch(self, PageRequest { offset, limit: PAGE_SIZE })?;
            items.extend(page.items);
            match page.next_offset {
                Some(next) if next > offset => offset = next,
                _ => return Ok(items),
            }
        }
    }

    /// Prints `value` as JSON (one document).
    pub fn print_json<T: CandidType>(&mut self, value: &T) {
        let text = serde_json::to_string_pretty(&crate::json::to_json(value)).expect("JSON serializes");
        crate::outln!(self, "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_its_cap() {
        let r = Retry::default();
        let waits: Vec<u64> = (1..=7).map(|a| r.delay(a).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30]);
    }
}
