//! `sim-server`: the embedded IC simulator as a local IC network on
//! `127.0.0.1:PORT`, speaking the IC's HTTP interface as a replica does, so
//! that real clients (ic-agent and the `mainer` CLI, icp-cli, dfx, browsers)
//! run against it. See the crate README section in the repository README.

pub mod api;
pub mod envelope;
pub mod gateway;
pub mod hash;
pub mod http;
pub mod keys;
pub mod network;
pub mod tree;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

pub use network::Handle;

pub struct Config {
    /// `127.0.0.1:4943`; port 0 picks a free one.
    pub bind: String,
    pub sync_timeout: Duration,
    pub sim: ic_sim::SimConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:4943".into(),
            sync_timeout: Duration::from_secs(10),
            sim: ic_sim::SimConfig::default(),
        }
    }
}

/// A running network.
pub struct Running {
    pub port: u16,
    pub url: String,
    pub net: Handle,
}

/// Generates the keys, starts the simulator thread and serves HTTP on
/// background threads; returns once the socket listens.
pub fn start(config: Config) -> std::io::Result<Running> {
    let listener = TcpListener::bind(&config.bind)?;
    let port = listener.local_addr()?.port();
    let keys = Arc::new(keys::Keys::generate());
    let sim_config = config.sim;
    let net = Handle::start(keys, move || ic_sim::Simulator::with_config(sim_config));
    let api = api::Api { net: net.clone(), sync_timeout: config.sync_timeout };
    let gateway_net = net.clone();
    let handler: http::Handler = Arc::new(move |req: http::Request| {
        if req.method == "OPTIONS" {
            // CORS preflight of browsers' agents.
            let mut r = http::Response::new(204, "text/plain", Vec::new());
            r.headers.push(("Access-Control-Allow-Methods".into(), "GET, POST, HEAD, OPTIONS".into()));
            r.headers.push(("Access-Control-Allow-Headers".into(), "Content-Type".into()));
            return r;
        }
        match api.handle(&req) {
            Some(r) => r,
            None => gateway::handle(&gateway_net, req),
        }
    });
    std::thread::Builder::new().name("sim-accept".into()).spawn(move || http::serve(listener, handler))?;
    let host = config.bind.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h).to_string();
    Ok(Running { port, url: format!("http://{host}:{port}"), net })
}
