//! Requests as they arrive: the CBOR envelope (content, sender key and
//! signature, delegations), its request id, the ingress expiry, and the
//! sender's authentication: Ed25519, secp256k1 and prime256v1 keys, with
//! chains of delegations as agents send them.

use std::collections::BTreeMap;

use candid::Principal;
use serde_cbor::Value;

use crate::hash::hash_of_map;

const REQUEST_DOMAIN: &[u8] = b"\x0aic-request";
const DELEGATION_DOMAIN: &[u8] = b"\x1aic-request-auth-delegation";
/// The IC accepts requests that expire at most this far ahead (5 minutes)
/// plus an allowance for clock drift.
pub const MAX_INGRESS_EXPIRY_NS: u64 = (5 * 60 + 30) * 1_000_000_000;
/// The IC accepts at most 20 delegations in a chain.
const MAX_DELEGATIONS: usize = 20;

const ED25519_PREFIX: &[u8] = &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
const SECP256K1_PREFIX: &[u8] = &[
    0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
    0x0a, 0x03, 0x42, 0x00,
];
const P256_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// OID 1.3.6.1.4.1.56387.1.2 of canister signatures (Internet Identity).
const CANISTER_SIG_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb8, 0x43, 0x01, 0x02];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Call { canister: Principal, method: String, arg: Vec<u8> },
    Query { canister: Principal, method: String, arg: Vec<u8> },
    ReadState { paths: Vec<Vec<Vec<u8>>> },
}

/// An authenticated request.
#[derive(Clone, Debug)]
pub struct Request {
    pub kind: Kind,
    pub sender: Principal,
    pub request_id: [u8; 32],
    pub ingress_expiry: u64,
    /// Canisters the delegations restrict the request to (None: any).
    pub targets: Option<Vec<Principal>>,
}

/// Why a request was refused: HTTP 400 (malformed, expired) or 403 (bad signature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub http_status: u16,
    pub message: String,
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal { http_status: 400, message: message.into() }
}

fn forbidden(message: impl Into<String>) -> Refusal {
    Refusal { http_status: 403, message: message.into() }
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tag(_, inner) => untag(inner),
        v => v,
    }
}

fn field<'a>(m: &'a BTreeMap<Value, Value>, name: &str) -> Option<&'a Value> {
    m.get(&Value::Text(name.to_string())).map(untag)
}

fn bytes<'a>(m: &'a BTreeMap<Value, Value>, name: &str) -> Result<&'a [u8], Refusal> {
    match field(m, name) {
        Some(Value::Bytes(b)) => Ok(b),
        Some(_) => Err(bad(format!("`{name}` is not a blob"))),
        None => Err(bad(format!("`{name}` is missing"))),
    }
}

fn text<'a>(m: &'a BTreeMap<Value, Value>, name: &str) -> Result<&'a str, Refusal> {
    match field(m, name) {
        Some(Value::Text(t)) => Ok(t),
        Some(_) => Err(bad(format!("`{name}` is not text"))),
        None => Err(bad(format!("`{name}` is missing"))),
    }
}

fn nat(m: &BTreeMap<Value, Value>, name: &str) -> Result<u64, Refusal> {
    match field(m, name) {
        Some(Value::Integer(i)) => u64::try_from(*i).map_err(|_| bad(format!("`{name}` is out of range"))),
        Some(_) => Err(bad(format!("`{name}` is not a natural number"))),
        None => Err(bad(format!("`{name}` is missing"))),
    }
}

fn as_map(v: &Value, what: &str) -> Result<BTreeMap<Value, Value>, Refusal> {
    match untag(v) {
        Value::Map(m) => Ok(m.clone()),
        _ => Err(bad(format!("{what} is not a CBOR map"))),
    }
}

fn principal(b: &[u8], what: &str) -> Result<Principal, Refusal> {
    Principal::try_from_slice(b).map_err(|e| bad(format!("{what}: {e}")))
}

/// Verifies `sig` over `msg` with a DER-encoded public key.
pub fn verify_signature(der: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), String> {
    use k256::ecdsa::signature::Verifier;
    if let Some(raw) = der.strip_prefix(ED25519_PREFIX) {
        let key: [u8; 32] = raw.try_into().map_err(|_| "an Ed25519 key of the wrong length")?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|e| format!("bad Ed25519 key: {e}"))?;
        let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|e| format!("bad Ed25519 signature: {e}"))?;
        return key.verify_strict(msg, &sig).map_err(|_| "the Ed25519 signature does not verify".to_string());
    }
    if let Some(raw) = der.strip_prefix(SECP256K1_PREFIX) {
        let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(raw).map_err(|e| format!("bad secp256k1 key: {e}"))?;
        let sig = k256::ecdsa::Signature::from_slice(sig).map_err(|e| format!("bad secp256k1 signature: {e}"))?;
        return key.verify(msg, &sig).map_err(|_| "the secp256k1 signature does not verify".to_string());
    }
    if let Some(raw) = der.strip_prefix(P256_PREFIX) {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(raw).map_err(|e| format!("bad prime256v1 key: {e}"))?;
        let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|e| format!("bad prime256v1 signature: {e}"))?;
        return key.verify(msg, &sig).map_err(|_| "the prime256v1 signature does not verify".to_string());
    }
    if der.windows(CANISTER_SIG_OID.len()).any(|w| w == CANISTER_SIG_OID) {
        return Err("canister signatures (Internet Identity) are not supported by sim-server".into());
    }
    Err("an unsupported public key (Ed25519, secp256k1 and prime256v1 are supported)".into())
}

fn signed(domain: &[u8], hash: &[u8; 32]) -> Vec<u8> {
    let mut msg = domain.to_vec();
    msg.extend_from_slice(hash);
    msg
}

/// Parses and authenticates one envelope at wall-clock time `now_ns`.
/// `expected` is the request type of the endpoint ("call", "query", "read_state").
pub fn authenticate(body: &[u8], expected: &str, now_ns: u64) -> Result<Request, Refusal> {
    let envelope: Value = serde_cbor::from_slice(body).map_err(|e| bad(format!("not a CBOR envelope: {e}")))?;
    let envelope = as_map(&envelope, "the envelope")?;
    let content = as_map(field(&envelope, "content").ok_or_else(|| bad("`content` is missing"))?, "`content`")?;
    let request_id = hash_of_map(&content).map_err(bad)?;

    let request_type = text(&content, "request_type")?;
    if request_type != expected {
        return Err(bad(format!("a `{request_type}` request sent to the {expected} endpoint")));
    }
    let sender = principal(bytes(&content, "sender")?, "sender")?;
    let ingress_expiry = nat(&content, "ingress_expiry")?;
    if ingress_expiry < now_ns {
        return Err(bad(format!("the request expired {} s ago", (now_ns - ingress_expiry) / 1_000_000_000)));
    }
    if ingress_expiry > now_ns.saturating_add(MAX_INGRESS_EXPIRY_NS) {
        return Err(bad("the ingress expiry is more than 5 minutes ahead"));
    }
    let kind = match request_type {
        "call" | "query" => {
            let canister = principal(bytes(&content, "canister_id")?, "canister_id")?;
            let method = text(&content, "method_name")?.to_string();
            let arg = bytes(&content, "arg")?.to_vec();
            if request_type == "call" {
                Kind::Call { canister, method, arg }
            } else {
                Kind::Query { canister, method, arg }
            }
        }
        _ => {
            let Some(Value::Array(paths)) = field(&content, "paths") else { return Err(bad("`paths` is missing")) };
            let mut out = Vec::new();
            for p in paths {
                let Value::Array(labels) = untag(p) else { return Err(bad("a path is not an array")) };
                let mut path = Vec::new();
                for l in labels {
                    let Value::Bytes(b) = untag(l) else { return Err(bad("a path label is not a blob")) };
                    path.push(b.clone());
                }
                out.push(path);
            }
            Kind::ReadState { paths: out }
        }
    };

    let mut request = Request { kind, sender, request_id, ingress_expiry, targets: None };
    if sender == Principal::anonymous() {
        return Ok(request);
    }
    let pubkey = bytes(&envelope, "sender_pubkey").map_err(|_| forbidden("a signed request needs `sender_pubkey`"))?;
    if Principal::self_authenticating(pubkey) != sender {
        return Err(forbidden(format!("the sender {sender} is not the principal of `sender_pubkey`")));
    }
    let sig = bytes(&envelope, "sender_sig").map_err(|_| forbidden("a signed request needs `sender_sig`"))?;
    let mut key = pubkey.to_vec();
    if let Some(chain) = field(&envelope, "sender_delegation") {
        let Value::Array(chain) = chain else { return Err(bad("`sender_delegation` is not an array")) };
        if chain.len() > MAX_DELEGATIONS {
            return Err(forbidden(format!("more than {MAX_DELEGATIONS} delegations")));
        }
        for (i, signed_delegation) in chain.iter().enumerate() {
            let sd = as_map(signed_delegation, "a signed delegation")?;
            let delegation =
                as_map(field(&sd, "delegation").ok_or_else(|| bad("`delegation` is missing"))?, "a delegation")?;
            let dsig = bytes(&sd, "signature")?;
            let hash = hash_of_map(&delegation).map_err(bad)?;
            verify_signature(&key, &signed(DELEGATION_DOMAIN, &hash), dsig)
                .map_err(|e| forbidden(format!("delegation {i}: {e}")))?;
            if nat(&delegation, "expiration")? < now_ns {
                return Err(forbidden(format!("delegation {i} has expired")));
            }
            if let Some(Value::Array(targets)) = field(&delegation, "targets") {
                let mut allowed = Vec::new();
                for t in targets {
                    let Value::Bytes(b) = untag(t) else { return Err(bad("a delegation target is not a blob")) };
                    allowed.push(principal(b, "a delegation target")?);
                }
                request.targets = Some(match request.targets.take() {
                    None => allowed,
                    Some(prev) => prev.into_iter().filter(|p| allowed.contains(p)).collect(),
                });
            }
            if matches!(field(&delegation, "permissions"), Some(Value::Text(t)) if t == "queries")
                && matches!(request.kind, Kind::Call { .. })
            {
                return Err(forbidden(format!("delegation {i} permits only queries and read_state")));
            }
            key = bytes(&delegation, "pubkey")?.to_vec();
        }
    }
    verify_signature(&key, &signed(REQUEST_DOMAIN, &request_id), sig).map_err(forbidden)?;
    if let (Some(targets), Kind::Call { canister, .. } | Kind::Query { canister, .. }) =
        (&request.targets, &request.kind)
        && !targets.contains(canister)
    {
        return Err(forbidden(format!("the delegations do not allow calls to {canister}")));
    }
    Ok(request)
}
