//! [`CanisterClient`] over `ic-agent`: a local replica or the IC.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use candid::{Encode, Principal};
use ic_agent::agent::agent_error::TransportError;
use ic_agent::identity::{AnonymousIdentity, BasicIdentity, Prime256v1Identity, Secp256k1Identity};
use ic_agent::{Agent, AgentError, Identity};
use ic_management_canister_types::{CanisterStatusArgs, CanisterStatusResult};

use crate::client::{CanisterClient, ClientError};
use crate::error::CliError;

pub struct AgentClient {
    agent: Agent,
    runtime: tokio::runtime::Runtime,
    principal: Principal,
}

/// Reads a dfx PEM: secp256k1 (what `dfx identity new` makes), Ed25519 or prime256v1.
pub fn identity_from_pem(path: &Path) -> Result<Arc<dyn Identity>, CliError> {
    let pem = std::fs::read(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    identity_from_pem_bytes(&pem).ok_or_else(|| {
        CliError::Usage(format!(
            "{} is not a plaintext secp256k1, Ed25519 or prime256v1 PEM key (an encrypted dfx identity must be \
             exported first: dfx identity export NAME > key.pem)",
            path.display()
        ))
    })
}

/// A key from PEM text, of any of the three kinds dfx makes.
pub fn identity_from_pem_bytes(pem: &[u8]) -> Option<Arc<dyn Identity>> {
    if let Ok(id) = Secp256k1Identity::from_pem(pem) {
        return Some(Arc::new(id));
    }
    if let Ok(id) = BasicIdentity::from_pem(pem) {
        return Some(Arc::new(id));
    }
    if let Ok(id) = Prime256v1Identity::from_pem(pem) {
        return Some(Arc::new(id));
    }
    None
}

pub fn anonymous() -> Arc<dyn Identity> {
    Arc::new(AnonymousIdentity)
}

impl AgentClient {
    /// Connects to `url`; `fetch_root_key` for a local replica (never on mainnet).
    pub fn connect(url: &str, identity: Arc<dyn Identity>, fetch_root_key: bool) -> Result<Self, CliError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Transport(format!("cannot start the async runtime: {e}")))?;
        let principal = identity.sender().map_err(|e| CliError::Usage(format!("bad identity: {e}")))?;
        let agent = Agent::builder()
            .with_url(url)
            .with_arc_identity(identity)
            .with_max_polling_time(Duration::from_secs(300))
            .build()
            .map_err(|e| CliError::Usage(format!("cannot use {url}: {e}")))?;
        if fetch_root_key {
            runtime.block_on(agent.fetch_root_key()).map_err(|e| {
                CliError::Transport(format!(
                    "cannot reach the replica at {url} ({e}); is it running? (dfx start --background)"
                ))
            })?;
        }
        Ok(AgentClient { agent, runtime, principal })
    }
}

fn map_error(e: AgentError) -> ClientError {
    match e {
        AgentError::CertifiedReject { reject, .. } | AgentError::UncertifiedReject { reject, .. } => {
            ClientError::Reject {
                code: reject.reject_code as u32,
                message: reject.reject_message,
                error_code: reject.error_code,
            }
        }
        AgentError::TimeoutWaitingForResponse() => {
            ClientError::NoAnswer("timed out waiting for the IC to answer".into())
        }
        AgentError::TransportError(TransportError::Reqwest(r)) if r.is_connect() => {
            ClientError::Unreachable(r.to_string())
        }
        AgentError::TransportError(t) => ClientError::NoAnswer(t.to_string()),
        AgentError::HttpError(p) if p.status == 429 => ClientError::Unreachable(format!("HTTP 429: {p}")),
        AgentError::HttpError(p) if p.status >= 500 => ClientError::NoAnswer(format!("HTTP {}: {p}", p.status)),
        other => ClientError::Other(other.to_string()),
    }
}

impl CanisterClient for AgentClient {
    fn update(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.runtime.block_on(self.agent.update(&canister, method).with_arg(arg).call_and_wait()).map_err(map_error)
    }

    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.runtime.block_on(self.agent.query(&canister, method).with_arg(arg).call()).map_err(map_error)
    }

    fn canister_cycles(&self, canister: Principal) -> Result<u128, ClientError> {
        let arg = Encode!(&CanisterStatusArgs { canister_id: canister }).expect("encodes");
        let call = self
            .agent
            .update(&Principal::management_canister(), "canister_status")
            .with_effective_canister_id(canister)
            .with_arg(arg)
            .call_and_wait();
        let bytes = self.runtime.block_on(call).map_err(map_error)?;
        let status = candid::decode_one::<CanisterStatusResult>(&bytes)
            .map_err(|e| ClientError::Other(format!("canister_status reply: {e}")))?;
        Ok(u128::try_from(&status.cycles.0).unwrap_or(u128::MAX))
    }

    fn principal(&self) -> Principal {
        self.principal
    }

    fn now_ns(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Throw-away keys made for this test with openssl.
    const SECP256K1: &str = "-----BEGIN EC PRIVATE KEY-----
MHQCAQEEIP7HjQvTdl4NDcRs5MqE5ng2zExZGMwLTRgwEdOmT9rmoAcGBSuBBAAK
oUQDQgAEL5S2jMLaOiNlvy0rWu8IAH3/DYnk9RSE8C4Gxig7e+ugvJtcTKwF578D
u66koIlHKyJkuqecb449ufBeifexOg==
-----END EC PRIVATE KEY-----
";
    const ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHlaBHi/ue8SvldqLJH/ri5RyL2taBpwRHQv3He3opSV
-----END PRIVATE KEY-----
";

    #[test]
    fn dfx_pem_keys_of_both_kinds_are_read() {
        let dir = std::env::temp_dir().join(format!("mainer-cli-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut principals = Vec::new();
        for (name, pem) in [("secp256k1.pem", SECP256K1), ("ed25519.pem", ED25519)] {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            let id = identity_from_pem(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let p = id.sender().unwrap();
            assert_eq!(p.as_slice().last(), Some(&2), "{name}: a self-authenticating principal");
            principals.push(p);
        }
        assert_ne!(principals[0], principals[1]);
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a key").unwrap();
        assert!(matches!(identity_from_pem(&junk), Err(CliError::Usage(_))));
        assert!(matches!(identity_from_pem(&dir.join("missing.pem")), Err(CliError::Usage(_))));
        assert_eq!(anonymous().sender().unwrap(), Principal::anonymous());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
