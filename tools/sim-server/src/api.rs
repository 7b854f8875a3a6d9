//! The IC's HTTP interface: `/api/v2/status`, `call` (v2 asynchronous; v3
//! and v4 synchronous, answered with a certificate), `query` (signed by the
//! node's key) and `read_state` (certificates over the state tree), for
//! canisters and for the subnet.

use std::time::Duration;

use candid::Principal;
use serde_cbor::Value;

use crate::envelope::{Kind, Refusal, Request, authenticate};
use crate::hash::{hash_value, map};
use crate::http::{self, Response};
use crate::network::{Handle, Submitted, cbor, wall_clock_ns};

pub struct Api {
    pub net: Handle,
    /// How long a synchronous call waits before answering 202 (then the
    /// client polls `read_state`).
    pub sync_timeout: Duration,
}

enum Effective {
    Canister(Principal),
    Subnet(Principal),
}

impl Api {
    /// Routes `/api/...`; None for other paths (the HTTP gateway's).
    pub fn handle(&self, req: &http::Request) -> Option<Response> {
        let path = req.path();
        if !path.starts_with("/api/") {
            return None;
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        Some(match parts.as_slice() {
            ["api", "v2", "status"] => self.status(),
            ["api", version, scope, id, endpoint] if req.method == "POST" => {
                let Ok(id) = Principal::from_text(id) else {
                    return Some(Response::text(400, format!("`{id}` is not a principal")));
                };
                let effective = match *scope {
                    "canister" => Effective::Canister(id),
                    "subnet" => Effective::Subnet(id),
                    _ => return Some(Response::text(404, "no such endpoint")),
                };
                match (*version, *endpoint) {
                    ("v2", "call") => self.call(&req.body, effective, false),
                    ("v3" | "v4", "call") => self.call(&req.body, effective, true),
                    ("v2" | "v3", "query") => self.query(&req.body, effective),
                    ("v2" | "v3", "read_state") => self.read_state(&req.body, effective),
                    _ => Response::text(404, format!("no endpoint {path}")),
                }
            }
            _ => Response::text(404, format!("no endpoint {} {path}", req.method)),
        })
    }

    fn status(&self) -> Response {
        let status = map([
            ("ic_api_version", Value::Text("0.18.0".into())),
            ("impl_source", Value::Text("sim-server (ic-sim)".into())),
            ("impl_version", Value::Text(env!("CARGO_PKG_VERSION").into())),
            ("replica_health_status", Value::Text("healthy".into())),
            ("root_key", Value::Bytes(self.net.keys.root_key_der().to_vec())),
        ]);
        Response::cbor(cbor(&status))
    }

    fn authenticate(&self, body: &[u8], expected: &str) -> Result<Request, Response> {
        authenticate(body, expected, wall_clock_ns()).map_err(|Refusal { http_status, message }| {
            Response::text(http_status, format!("sim-server refused the {expected} request: {message}"))
        })
    }

    fn check_effective(&self, canister: Principal, effective: &Effective) -> Result<(), Response> {
        match effective {
            // Management calls name their target in the argument; creation has none.
            _ if canister == Principal::management_canister() => Ok(()),
            Effective::Canister(e) if *e == canister => Ok(()),
            Effective::Canister(e) => {
                Err(Response::text(400, format!("the effective canister id {e} is not the target {canister}")))
            }
            Effective::Subnet(_) => Err(Response::text(400, "subnet endpoints are only for the management canister")),
        }
    }

    fn call(&self, body: &[u8], effective: Effective, synchronous: bool) -> Response {
        let req = match self.authenticate(body, "call") {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let Kind::Call { canister, method, arg } = req.kind else { unreachable!("authenticated as a call") };
        if let Err(resp) = self.check_effective(canister, &effective) {
            return resp;
        }
        let (method, arg) = provisional_creation(canister, method, arg);
        let (rid, sender) = (req.request_id, req.sender);
        let submitted = self.net.with(move |n| n.submit(rid, sender, canister, &method, arg, !synchronous));
        let done = match submitted {
            Submitted::Refused(reject) => {
                let mut fields = vec![
                    ("status", Value::Text("non_replicated_rejection".into())),
                    ("reject_code", Value::Integer(reject.code as i128)),
                    ("reject_message", Value::Text(reject.message.clone())),
                ];
                if let Some(code) = reject.error_code {
                    fields.push(("error_code", Value::Text(code.into())));
                }
                let body = Value::Map(fields.into_iter().map(|(k, v)| (Value::Text(k.into()), v)).collect());
                return Response::cbor(cbor(&body));
            }
            Submitted::Accepted(done) => done,
        };
        if !synchronous || done.recv_timeout(self.sync_timeout).is_err() {
            return Response::new(202, "text/plain", Vec::new());
        }
        let paths = vec![vec![b"request_status".to_vec(), rid.to_vec()]];
        let certificate = self.net.with(move |n| n.certificate(&paths));
        Response::cbor(cbor(&map([
            ("status", Value::Text("replied".into())),
            ("certificate", Value::Bytes(certificate)),
        ])))
    }

    fn query(&self, body: &[u8], effective: Effective) -> Response {
        let req = match self.authenticate(body, "query") {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let Kind::Query { canister, method, arg } = req.kind else { unreachable!("authenticated as a query") };
        if let Err(resp) = self.check_effective(canister, &effective) {
            return resp;
        }
        let sender = req.sender;
        let result = self.net.with(move |n| n.sim.query_call(sender, canister, &method, arg));
        let timestamp = wall_clock_ns();
        let request_id = Value::Bytes(req.request_id.to_vec());
        let ts = Value::Integer(timestamp as i128);
        // The signed form: the response's fields with the request id and the
        // timestamp, hashed as a map.
        let mut response = match result {
            Ok(reply) => {
                vec![("status", Value::Text("replied".into())), ("reply", map([("arg", Value::Bytes(reply))]))]
            }
            Err(reject) => {
                let mut f = vec![
                    ("status", Value::Text("rejected".into())),
                    ("reject_code", Value::Integer(reject.code as i128)),
                    ("reject_message", Value::Text(reject.message.clone())),
                ];
                if let Some(code) = reject.error_code {
                    f.push(("error_code", Value::Text(code.into())));
                }
                f
            }
        };
        let to_map = |fields: &[(&str, Value)]| {
            Value::Map(fields.iter().map(|(k, v)| (Value::Text(k.to_string()), v.clone())).collect())
        };
        let mut signable = response.clone();
        signable.push(("request_id", request_id));
        signable.push(("timestamp", ts.clone()));
        let hash = hash_value(&to_map(&signable)).expect("hashable");
        let signature = map([
            ("timestamp", ts),
            ("signature", Value::Bytes(self.net.keys.sign_response(&hash))),
            ("identity", Value::Bytes(self.net.keys.node_id().as_slice().to_vec())),
        ]);
        response.push(("signatures", Value::Array(vec![signature])));
        Response::cbor(cbor(&to_map(&response)))
    }

    fn read_state(&self, body: &[u8], effective: Effective) -> Response {
        let req = match self.authenticate(body, "read_state") {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let Kind::ReadState { paths } = req.kind else { unreachable!("authenticated as read_state") };
        if paths.len() > 1000 {
            return Response::text(400, "too many paths");
        }
        let sender = req.sender;
        let effective_id = match effective {
            Effective::Canister(p) | Effective::Subnet(p) => p,
        };
        let checked = paths.clone();
        let answer = self.net.with(move |n| {
            // As on the IC: a request's status is only for its sender; canister
            // data only for the effective canister.
            for p in &checked {
                match p.first().map(Vec::as_slice) {
                    Some(b"request_status") if p.len() >= 2 => {
                        let rid: Option<[u8; 32]> = p[1].as_slice().try_into().ok();
                        if let Some(status) = rid.and_then(|rid| n.status(&rid))
                            && status.sender != sender
                        {
                            return Err(Response::text(403, "the request was sent by another principal"));
                        }
                    }
                    Some(b"canister") if p.len() >= 2 && p[1] != effective_id.as_slice() => {
                        return Err(Response::text(400, "canister paths must name the effective canister"));
                    }
                    Some(b"time" | b"subnet" | b"request_status" | b"canister" | b"canister_ranges") => {}
                    Some(other) => {
                        return Err(Response::text(404, format!("no path /{}", String::from_utf8_lossy(other))));
                    }
                    None => return Err(Response::text(400, "an empty path")),
                }
            }
            Ok(n.certificate(&checked))
        });
        match answer {
            Ok(certificate) => Response::cbor(cbor(&map([("certificate", Value::Bytes(certificate))]))),
            Err(resp) => resp,
        }
    }
}

/// `create_canister` sent by a user (icp-cli on a cloud-engine subnet) is
/// served as `provisional_create_canister_with_cycles` with the same settings
/// and the simulator's provisional cycles: on the IC only canisters (the
/// cycles ledger) may call it, and this local network has no cycles ledger.
fn provisional_creation(canister: Principal, method: String, arg: Vec<u8>) -> (String, Vec<u8>) {
    if canister != Principal::management_canister() || method != "create_canister" {
        return (method, arg);
    }
    let Ok(args) = candid::decode_one::<ic_sim::mgmt::CreateCanisterArgs>(&arg) else { return (method, arg) };
    let provisional = ic_sim::mgmt::ProvisionalCreateCanisterWithCyclesArgs {
        amount: None,
        settings: args.settings,
        specified_id: None,
        sender_canister_version: args.sender_canister_version,
    };
    ("provisional_create_canister_with_cycles".into(), candid::encode_one(provisional).expect("encodes"))
}
