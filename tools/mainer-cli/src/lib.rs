//! `mainer`, the admin CLI of the mAIner factory.
//!
//! The commands run against a [`client::CanisterClient`]: `agent::AgentClient`
//! (ic-agent: a local replica or the IC) in the binary, the embedded
//! simulator in the tests. [`run`] is the whole CLI behind that trait.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

pub mod agent;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod ctx;
pub mod error;
pub mod fmt;
pub mod json;

use cli::{ChallengeCmd, Cli, Command, FleetSwitch};
use client::CanisterClient;
use commands::{economy, factory, game, status, upload};
use ctx::{Ctx, Retry};
use error::{CliError, exit};
use mainer_types::calls::creator as creator_calls;

/// Parses the command line; Err carries the exit code and clap's message.
pub fn parse<I: IntoIterator<Item = T>, T: Into<OsString> + Clone>(args: I) -> Result<Cli, (i32, String)> {
    Cli::try_parse_from(args).map_err(|e| {
        let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
        (code, e.render().to_string())
    })
}

/// The dfx project: `--project`, else the nearest directory with a dfx.json.
pub fn project_dir(cli: &Cli) -> Option<PathBuf> {
    cli.global.project.clone().or_else(|| std::env::current_dir().ok().and_then(|d| config::find_project(&d)))
}

/// Runs a parsed command with `client`; returns the exit code.
pub fn execute(cli: &Cli, client: &dyn CanisterClient, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let result = (|| {
        let project = project_dir(cli);
        let network = config::network(&cli.global.network, project.as_deref())?;
        let ids = config::canister_ids(&cli.global, &network, project.as_deref())?;
        let mut ctx = Ctx::new(client, &mut *out, &mut *err);
        ctx.json = cli.global.json;
        ctx.progress = !cli.global.quiet && !cli.global.json;
        ctx.retry = Retry { attempts: cli.global.retries.max(1), ..Retry::default() };
        ctx.creator = ids.creator;
        ctx.game_state = ids.game_state;
        ctx.follow_timeout = cli.global.follow_timeout.map(Duration::from_secs);
        ctx.network = network.name.clone();
        dispatch(&mut ctx, &cli.command)
    })();
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            e.exit_code()
        }
    }
}

/// Parses `args` (with the program name first) and runs them with `client`.
pub fn run<I: IntoIterator<Item = T>, T: Into<OsString> + Clone>(
    args: I,
    client: &dyn CanisterClient,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match parse(args) {
        Ok(cli) => execute(&cli, client, out, err),
        Err((code, message)) => {
            let _ = if code == exit::OK { write!(out, "{message}") } else { write!(err, "{message}") };
            code
        }
    }
}

fn dispatch(ctx: &mut Ctx, command: &Command) -> Result<(), CliError> {
    match command {
        Command::Upload(a) => upload::run(ctx, a),
        Command::Artefacts { kind } => factory::artefacts(ctx, *kind),
        Command::Uploads => factory::uploads(ctx),
        Command::CancelUpload { id } => factory::cancel_upload(ctx, *id),
        Command::CreateMainer(a) => factory::create_mainer(ctx, a),
        Command::Jobs(a) => factory::jobs(ctx, a),
        Command::RetryJob { id, follow } => factory::retry_job(ctx, *id, *follow),
        Command::Mainers => factory::mainers(ctx),
        Command::Llms => factory::llms(ctx),
        Command::FleetUpgrade(a) => factory::fleet_upgrade(ctx, &creator_calls::UPGRADE_CONTROLLERS, a),
        Command::UpgradeLlms(a) => factory::fleet_upgrade(ctx, &creator_calls::UPGRADE_LLMS, a),
        Command::RemoveLlm { llm, no_follow } => factory::remove_llm(ctx, llm, !no_follow),
        Command::FleetJob { id, follow } => factory::fleet_job(ctx, *id, *follow),
        Command::Challenge(ChallengeCmd::Add(a)) => game::add(ctx, a),
        Command::Challenge(ChallengeCmd::List) => game::list(ctx),
        Command::Challenge(ChallengeCmd::Close { id }) => game::close(ctx, *id),
        Command::Submissions(a) => game::submissions(ctx, a),
        Command::Whoami => whoami(ctx),
        Command::Price(a) => economy::price(ctx, a),
        Command::Order(a) => economy::order(ctx, a),
        Command::Orders => economy::orders(ctx),
        Command::TopUp { mainer, amount } => economy::top_up(ctx, mainer, amount),
        Command::BurnRate { mainer, rate } => economy::burn_rate(ctx, mainer, rate),
        Command::Cycles { mainer } => economy::cycles(ctx, mainer),
        Command::Books => economy::books(ctx),
        Command::Status => status::status(ctx),
        Command::Logs { canister, priority, limit } => status::logs(ctx, canister, priority.as_deref(), *limit),
        Command::Metrics { canister } => status::metrics(ctx, canister),
        Command::Pause { role } => status::switch(ctx, FleetSwitch::Pause, *role),
        Command::Resume { role } => status::switch(ctx, FleetSwitch::Resume, *role),
    }
}

#[derive(candid::CandidType)]
struct WhoAmI {
    principal: candid::Principal,
    network: String,
    creator: Option<candid::Principal>,
    game_state: Option<candid::Principal>,
    controller_of_creator: Option<bool>,
}

fn whoami(ctx: &mut Ctx) -> Result<(), CliError> {
    let controller_of_creator = match ctx.creator {
        Some(creator) => Some(ctx.call(creator, &creator_calls::AM_I_CONTROLLER, ())?),
        None => None,
    };
    let me = WhoAmI {
        principal: ctx.caller(),
        network: ctx.network.clone(),
        creator: ctx.creator,
        game_state: ctx.game_state,
        controller_of_creator,
    };
    if ctx.json {
        ctx.print_json(&me);
        return Ok(());
    }
    let id = |p: Option<candid::Principal>| p.map_or("-".into(), |c| c.to_text());
    outln!(ctx, "principal:   {}", me.principal);
    outln!(ctx, "network:     {}", me.network);
    outln!(ctx, "creator:     {}", id(me.creator));
    outln!(ctx, "game state:  {}", id(me.game_state));
    if let Some(c) = me.controller_of_creator {
        outln!(ctx, "controller of the creator: {}", if c { "yes" } else { "no" });
    }
    Ok(())
}
