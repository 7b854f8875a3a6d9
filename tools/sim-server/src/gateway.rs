//! The HTTP gateway on the same port: `http://<canister>.localhost:PORT/...`
//! or `http://127.0.0.1:PORT/...?canisterId=<canister>` goes to the
//! canister's `http_request` query (and to `http_request_update` when it asks
//! for an upgrade). Responses are passed on without checking their
//! certification, as the IC's `raw` domain and a local dfx gateway do.
//! Without a canister, `/` lists the canisters with links.

use candid::{CandidType, Deserialize, Principal};

use crate::http::{self, Response};
use crate::network::{Handle, Submitted};

#[derive(CandidType, Deserialize)]
struct HttpRequest {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    certificate_version: Option<u16>,
}

#[derive(CandidType, Deserialize)]
struct HttpResponse {
    status_code: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    upgrade: Option<bool>,
}

/// The canister a gateway request is for: the host's first label, or `?canisterId=`.
pub fn canister_of(req: &http::Request) -> Option<Principal> {
    if let Some(host) = req.header("host") {
        let first = host.split(['.', ':']).next().unwrap_or("");
        if host.split(':').next().is_some_and(|h| h.ends_with(".localhost"))
            && let Ok(p) = Principal::from_text(first)
        {
            return Some(p);
        }
    }
    req.query_param("canisterId").and_then(|t| Principal::from_text(t).ok())
}

pub fn handle(net: &Handle, req: http::Request) -> Response {
    let Some(canister) = canister_of(&req) else {
        return index(net, &req);
    };
    let request = HttpRequest {
        method: req.method.clone(),
        url: req.target.clone(),
        headers: req.headers.clone(),
        body: req.body.clone(),
        certificate_version: Some(2),
    };
    let arg = candid::encode_one(&request).expect("encodes");
    let query_arg = arg.clone();
    let answer = net.with(move |n| n.sim.query_call(Principal::anonymous(), canister, "http_request", query_arg));
    let mut response = match decode(answer) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if response.upgrade == Some(true) {
        let rid = crate::hash::sha256(&[b"gateway".as_slice(), &crate::keys::random_bytes::<16>()].concat());
        let submitted =
            net.with(move |n| n.submit(rid, Principal::anonymous(), canister, "http_request_update", arg, false));
        match submitted {
            Submitted::Refused(r) => return Response::text(502, format!("http_request_update: {r}")),
            Submitted::Accepted(done) => {
                let _ = done.recv();
            }
        }
        let result = net.with(move |n| match n.status(&rid).map(|s| s.state.clone()) {
            Some(crate::network::State::Replied(bytes)) => Ok(bytes),
            Some(crate::network::State::Rejected(r)) => Err(r),
            _ => unreachable!("a finished call"),
        });
        response = match decode(result) {
            Ok(r) => r,
            Err(e) => return e,
        };
    }
    let mut out = Response { status: response.status_code, headers: Vec::new(), body: response.body };
    for (k, v) in response.headers {
        // We frame the body ourselves.
        if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("transfer-encoding") {
            out.headers.push((k, v));
        }
    }
    out
}

fn decode(answer: Result<Vec<u8>, ic_sim::Reject>) -> Result<HttpResponse, Response> {
    let bytes = answer.map_err(|r| Response::text(502, format!("the canister rejected the request: {r}")))?;
    candid::decode_one(&bytes).map_err(|e| Response::text(502, format!("not an HttpResponse: {e}")))
}

fn index(net: &Handle, req: &http::Request) -> Response {
    if req.path() != "/" {
        return Response::text(404, "name a canister: http://<canister>.localhost:PORT/... or ?canisterId=<canister>");
    }
    let ids = net.with(|n| n.sim.canister_ids());
    let mut html = String::from(
        "<!doctype html><meta charset=utf-8><title>sim-server</title><h1>sim-server: a local IC network</h1><ul>",
    );
    for id in ids {
        html.push_str(&format!(
            "<li><code>{id}</code>: <a href=\"/?canisterId={id}\">/</a> <a href=\"/metrics?canisterId={id}\">/metrics</a> \
             <a href=\"/logs?canisterId={id}\">/logs</a></li>"
        ));
    }
    html.push_str("</ul>");
    Response::new(200, "text/html; charset=utf-8", html.into_bytes())
}
