//! `mainer`: the admin CLI of the mAIner factory (see `mainer --help`).

use std::io::Write;

use mainer_cli::agent::AgentClient;
use mainer_cli::{config, error::exit, execute, parse, project_dir};

fn main() {
    let cli = match parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err((code, message)) => {
            if code == exit::OK {
                print!("{message}");
            } else {
                eprint!("{message}");
            }
            std::process::exit(code);
        }
    };
    let connected = (|| {
        let project = project_dir(&cli);
        let network = config::network(&cli.global.network, project.as_deref())?;
        let identity = config::identity(&cli.global)?;
        AgentClient::connect(&network.url, identity, network.fetch_root_key)
    })();
    let client = match connected {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    };
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let code = execute(&cli, &client, &mut out, &mut err);
    let _ = out.flush();
    std::process::exit(code);
}
