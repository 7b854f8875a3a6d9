//! `sim-server [--port N] [--bind ADDR] [--port-file FILE] [--sync-timeout SECS]`:
//! a local IC network on the embedded simulator (see `--help`).

use std::time::Duration;

const HELP: &str = "\
sim-server: the embedded IC simulator as a local IC network.

It speaks the IC's HTTP interface (/api/v2/status with the root key,
/api/v2|v3|v4 call, query and read_state, certificates signed with a
BLS12-381 root key made at start) and serves canisters' http_request at
http://<canister>.localhost:PORT/ and http://127.0.0.1:PORT/?canisterId=<canister>.
State lives in memory only: the simulator has no snapshots, so every start
is a fresh network (deploy again).

Options:
  --port N            port on 127.0.0.1 (default 4943, dfx's local port; 0: any free port)
  --bind ADDR         address to listen on (default 127.0.0.1)
  --port-file FILE    write the port there once listening (for scripts)
  --sync-timeout SECS how long a synchronous call waits before answering 202 (default 10)
  --log               echo canister logs to stderr
";

fn fail(msg: &str) -> ! {
    eprintln!("sim-server: {msg}\n\n{HELP}");
    std::process::exit(2);
}

fn main() {
    let mut config = sim_server::Config::default();
    let (mut bind, mut port, mut port_file) = ("127.0.0.1".to_string(), 4943u16, None::<String>);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return;
            }
            "--port" => port = value().parse().unwrap_or_else(|_| fail("--port needs a number")),
            "--bind" => bind = value(),
            "--port-file" => port_file = Some(value()),
            "--sync-timeout" => {
                let secs = value().parse().unwrap_or_else(|_| fail("--sync-timeout needs a number"));
                config.sync_timeout = Duration::from_secs(secs);
            }
            "--log" => config.sim.print_logs = true,
            other => fail(&format!("unknown option {other}")),
        }
    }
    config.bind = format!("{bind}:{port}");
    let running = sim_server::start(config).unwrap_or_else(|e| {
        eprintln!("sim-server: cannot listen on {bind}:{port}: {e}");
        std::process::exit(3);
    });
    let (root_key, subnet) = running.net.with(|n| (hex::encode(n.keys.root_key_der()), n.keys.subnet_id()));
    eprintln!("sim-server: a local IC network at {} (subnet {subnet})", running.url);
    eprintln!("sim-server: root key {root_key}");
    eprintln!("sim-server: canister pages at http://<canister>.localhost:{}/", running.port);
    if let Some(file) = port_file {
        std::fs::write(&file, format!("{}\n", running.port))
            .unwrap_or_else(|e| fail(&format!("cannot write {file}: {e}")));
    }
    loop {
        std::thread::park();
    }
}
