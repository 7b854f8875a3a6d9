//! ic-agent 0.49 (the agent of the `mainer` CLI and icp-cli) against a
//! running sim-server over real HTTP: the root key from `/api/v2/status`,
//! canister creation and installation through the management canister,
//! synchronous and polled calls with certificates it verifies, queries with
//! node signatures it verifies, `read_state` of module hash and controllers,
//! the three kinds of keys, delegations, and refused requests.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use candid::{Encode, Nat, Principal};
use ic_agent::identity::{
    AnonymousIdentity, BasicIdentity, DelegatedIdentity, Prime256v1Identity, Secp256k1Identity, SignedDelegation,
};
use ic_agent::{Agent, AgentError, Identity};
use sha2::{Digest, Sha256};

// Throw-away keys made for these tests with openssl.
const ED25519_A: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHlaBHi/ue8SvldqLJH/ri5RyL2taBpwRHQv3He3opSV
-----END PRIVATE KEY-----
";
const ED25519_B: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINBW2WJtkGuZFOV1L9VTky4nSFLWGRCxCIP4DrXZNqlt
-----END PRIVATE KEY-----
";
const SECP256K1: &str = "-----BEGIN EC PRIVATE KEY-----
MHQCAQEEIP7HjQvTdl4NDcRs5MqE5ng2zExZGMwLTRgwEdOmT9rmoAcGBSuBBAAK
oUQDQgAEL5S2jMLaOiNlvy0rWu8IAH3/DYnk9RSE8C4Gxig7e+ugvJtcTKwF578D
u66koIlHKyJkuqecb449ufBeifexOg==
-----END EC PRIVATE KEY-----
";
const P256: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIAHfylWgl7ZMB6MQGG8EI5iFi6Szwba7x8NKmwQdoq7voAoGCCqGSM49
AwEHoUQDQgAEOIS1KSr61nJk+X+dTH4zHrYbOMcViJhPbVSyFCQZ0ajdDiVrdFU+
uL1vAPNJoqINsFSk8u32YI/XwpsKVKGbgQ==
-----END EC PRIVATE KEY-----
";

struct Net {
    running: sim_server::Running,
    rt: tokio::runtime::Runtime,
}

impl Net {
    fn start(sync_timeout: Duration) -> Self {
        let config = sim_server::Config { bind: "127.0.0.1:0".into(), sync_timeout, ..Default::default() };
        let running = sim_server::start(config).expect("the server starts");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Net { running, rt }
    }

    fn agent(&self, identity: Arc<dyn Identity>) -> Agent {
        let agent = Agent::builder().with_url(&self.running.url).with_arc_identity(identity).build().unwrap();
        self.rt.block_on(agent.fetch_root_key()).expect("the root key from /api/v2/status");
        agent
    }

    /// A probe canister controlled by `agent`'s identity.
    fn probe(&self, agent: &Agent) -> Principal {
        let args = ic_sim::mgmt::ProvisionalCreateCanisterWithCyclesArgs {
            amount: Some(Nat::from(10_000_000_000_000u64)),
            settings: None,
            specified_id: None,
            sender_canister_version: None,
        };
        let (lo, _) = sim_server::network::canister_range();
        let reply = self
            .rt
            .block_on(
                agent
                    .update(&Principal::management_canister(), "provisional_create_canister_with_cycles")
                    .with_effective_canister_id(lo)
                    .with_arg(Encode!(&args).unwrap())
                    .call_and_wait(),
            )
            .expect("provisional creation");
        let id = candid::decode_one::<ic_sim::mgmt::CanisterIdRecord>(&reply).unwrap().canister_id;
        let install = ic_sim::mgmt::InstallCodeArgs {
            mode: ic_sim::mgmt::CanisterInstallMode::Install,
            canister_id: id,
            wasm_module: integration_tests::wasm("sim_probe"),
            arg: Encode!().unwrap(),
            sender_canister_version: None,
        };
        self.rt
            .block_on(
                agent
                    .update(&Principal::management_canister(), "install_code")
                    .with_effective_canister_id(id)
                    .with_arg(Encode!(&install).unwrap())
                    .call_and_wait(),
            )
            .expect("install_code");
        id
    }

    fn update(&self, agent: &Agent, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, AgentError> {
        self.rt.block_on(agent.update(&canister, method).with_arg(arg).call_and_wait())
    }

    fn query(&self, agent: &Agent, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, AgentError> {
        self.rt.block_on(agent.query(&canister, method).with_arg(arg).call())
    }
}

fn ed25519(text: &str) -> Arc<dyn Identity> {
    Arc::new(BasicIdentity::from_pem(text.as_bytes()).expect("a valid key"))
}

fn secp256k1(text: &str) -> Arc<dyn Identity> {
    Arc::new(Secp256k1Identity::from_pem(text.as_bytes()).expect("a valid key"))
}

fn prime256v1(text: &str) -> Arc<dyn Identity> {
    Arc::new(Prime256v1Identity::from_pem(text.as_bytes()).expect("a valid key"))
}

fn u64_of(bytes: &[u8]) -> u64 {
    candid::decode_one(bytes).unwrap()
}

#[test]
fn ic_agent_creates_installs_calls_and_reads_state() {
    let net = Net::start(Duration::from_secs(10));
    let owner = ed25519(ED25519_A);
    let agent = net.agent(owner.clone());
    assert_eq!(agent.read_root_key(), net.running.net.keys.root_key_der(), "the agent took the server's root key");
    let probe = net.probe(&agent);

    // Certified state: module hash and controllers.
    let hash = net.rt.block_on(agent.read_state_canister_module_hash(probe)).unwrap();
    assert_eq!(hash, Sha256::digest(integration_tests::wasm("sim_probe")).to_vec());
    let controllers = net.rt.block_on(agent.read_state_canister_controllers(probe)).unwrap();
    assert_eq!(controllers, vec![owner.sender().unwrap()]);

    // Updates answered synchronously with a certificate, queries signed by the node.
    assert_eq!(u64_of(&net.update(&agent, probe, "inc", Encode!().unwrap()).unwrap()), 1);
    assert_eq!(u64_of(&net.update(&agent, probe, "inc", Encode!().unwrap()).unwrap()), 2);
    assert_eq!(u64_of(&net.query(&agent, probe, "get", Encode!().unwrap()).unwrap()), 2);

    // Every kind of key is checked and names its principal.
    for id in
        [ed25519(ED25519_B), secp256k1(SECP256K1), prime256v1(P256), Arc::new(AnonymousIdentity) as Arc<dyn Identity>]
    {
        let a = net.agent(id.clone());
        let who: Principal = candid::decode_one(&net.update(&a, probe, "whoami", Encode!().unwrap()).unwrap()).unwrap();
        assert_eq!(who, id.sender().unwrap());
        let who: Principal = candid::decode_one(&net.query(&a, probe, "whoami", Encode!().unwrap()).unwrap()).unwrap();
        assert_eq!(who, id.sender().unwrap());
    }

    // Rejections arrive certified (updates) or signed (queries), with their codes.
    let reject = net.update(&agent, probe, "reject_with", Encode!(&"no thanks").unwrap()).unwrap_err();
    match reject {
        AgentError::CertifiedReject { reject, .. } => {
            assert_eq!((reject.reject_code as u32, reject.reject_message.as_str()), (4, "no thanks"));
        }
        other => panic!("expected a certified reject, got {other}"),
    }
    let missing = net.query(&agent, probe, "no_such_method", Encode!().unwrap()).unwrap_err();
    assert!(matches!(missing, AgentError::UncertifiedReject { .. }), "{missing}");
    // Another principal may not read a controller-only status.
    let stranger = net.agent(ed25519(ED25519_B));
    let status = net.rt.block_on(
        stranger
            .update(&Principal::management_canister(), "canister_status")
            .with_effective_canister_id(probe)
            .with_arg(Encode!(&ic_sim::mgmt::CanisterIdRecord { canister_id: probe }).unwrap())
            .call_and_wait(),
    );
    assert!(matches!(status, Err(AgentError::CertifiedReject { .. })), "{status:?}");
}

#[test]
fn delegations_are_followed_and_their_limits_enforced() {
    let net = Net::start(Duration::from_secs(10));
    let from = BasicIdentity::from_pem(ED25519_A.as_bytes()).unwrap();
    let owner_agent = net.agent(Arc::new(BasicIdentity::from_pem(ED25519_A.as_bytes()).unwrap()));
    let probe = net.probe(&owner_agent);
    let session = || Box::new(Secp256k1Identity::from_pem(SECP256K1.as_bytes()).unwrap()) as Box<dyn Identity>;
    let session_key = session().public_key().unwrap();
    let in_an_hour = ic_sim_now() + 3_600_000_000_000;
    let delegate = |expiration: u64, targets: Option<Vec<Principal>>| {
        let delegation =
            ic_agent::identity::Delegation { pubkey: session_key.clone(), expiration, targets, permissions: None };
        let signature = from.sign_delegation(&delegation).unwrap().signature.unwrap();
        let id = DelegatedIdentity::new_unchecked(
            from.public_key().unwrap(),
            session(),
            vec![SignedDelegation { delegation, signature }],
        );
        net.agent(Arc::new(id))
    };

    // Signed by the session key, the calls are the delegating principal's.
    let agent = delegate(in_an_hour, None);
    let who: Principal = candid::decode_one(&net.update(&agent, probe, "whoami", Encode!().unwrap()).unwrap()).unwrap();
    assert_eq!(who, from.sender().unwrap());
    let agent = delegate(in_an_hour, Some(vec![probe]));
    assert_eq!(u64_of(&net.update(&agent, probe, "inc", Encode!().unwrap()).unwrap()), 1);

    // Outside its targets, or expired, a delegation is refused (HTTP 403 / 400).
    let elsewhere = delegate(in_an_hour, Some(vec![Principal::management_canister()]));
    let err = net.update(&elsewhere, probe, "inc", Encode!().unwrap()).unwrap_err();
    assert!(err.to_string().contains("do not allow calls to"), "{err}");
    let expired = delegate(ic_sim_now() - 1, None);
    let err = net.query(&expired, probe, "get", Encode!().unwrap()).unwrap_err();
    assert!(err.to_string().contains("has expired"), "{err}");
}

fn ic_sim_now() -> u64 {
    sim_server::network::wall_clock_ns()
}

/// Posts `body` to `path` over a plain socket; returns the status and body.
fn post(url: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/cbor\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap();
    (status, out[split + 4..].to_vec())
}

#[test]
fn asynchronous_calls_are_polled_and_forged_or_stale_requests_refused() {
    // A zero wait: every call is answered 202 and the agent polls read_state.
    let net = Net::start(Duration::ZERO);
    let agent = net.agent(ed25519(ED25519_A));
    let probe = net.probe(&agent);
    assert!(u64_of(&net.update(&agent, probe, "burn", Encode!(&200_000u64).unwrap()).unwrap()) > 0);

    // The v2 endpoint: 202, then the certified status.
    let signed = agent.update(&probe, "inc").with_arg(Encode!().unwrap()).sign().unwrap();
    let (status, _) = post(&net.running.url, &format!("/api/v2/canister/{probe}/call"), &signed.signed_update);
    assert_eq!(status, 202);
    let first = signed.request_id;
    let (reply, _) = net.rt.block_on(agent.wait(&first, probe)).unwrap();
    assert_eq!(u64_of(&reply), 1);
    // The same request again is not run twice.
    let (status, _) = post(&net.running.url, &format!("/api/v2/canister/{probe}/call"), &signed.signed_update);
    assert_eq!(status, 202);
    assert_eq!(u64_of(&net.query(&agent, probe, "get", Encode!().unwrap()).unwrap()), 1);

    // A changed argument breaks the signature.
    let signed = agent.update(&probe, "echo").with_arg(Encode!(&b"XYZXYZ".to_vec()).unwrap()).sign().unwrap();
    let mut forged = signed.signed_update.clone();
    let at = forged.windows(6).position(|w| w == b"XYZXYZ").unwrap();
    forged[at] = b'A';
    let (status, body) = post(&net.running.url, &format!("/api/v3/canister/{probe}/call"), &forged);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    // Expired, or meant for another canister.
    let (lo, _) = sim_server::network::canister_range();
    let stale = agent.update(&probe, "inc").with_arg(Encode!().unwrap()).expire_after(Duration::ZERO).sign().unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let (status, body) = post(&net.running.url, &format!("/api/v3/canister/{probe}/call"), &stale.signed_update);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("expired"));
    let signed = agent.update(&probe, "inc").with_arg(Encode!().unwrap()).sign().unwrap();
    let other = if lo == probe { sim_server::network::canister_range().1 } else { lo };
    let (status, _) = post(&net.running.url, &format!("/api/v3/canister/{other}/call"), &signed.signed_update);
    assert_eq!(status, 400);
    // Someone else's request status is not theirs to read.
    let stranger = net.agent(ed25519(ED25519_B));
    let err = net.rt.block_on(stranger.request_status_raw(&first, probe)).unwrap_err();
    assert!(err.to_string().contains("403") || err.to_string().contains("another principal"), "{err}");

    // The gateway's index lists the canister.
    let addr = net.running.url.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    assert!(page.contains(&format!("/metrics?canisterId={probe}")), "{page}");
}
