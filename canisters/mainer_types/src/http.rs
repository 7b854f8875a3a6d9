//! The interface the IC's HTTP gateway calls on a canister: the
//! `http_request` query with its request and response records. Every
//! canister of the project serves `/logs` and `/metrics` through it.

use candid::CandidType;
use serde::Deserialize;
use serde_bytes::ByteBuf;

/// A header name and value.
pub type HeaderField = (String, String);

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// The path and query, e.g. `/logs?priority=ERROR`.
    pub url: String,
    pub headers: Vec<HeaderField>,
    pub body: ByteBuf,
}

impl HttpRequest {
    /// A GET of `url` without headers or body.
    pub fn get(url: impl Into<String>) -> Self {
        HttpRequest { method: "GET".into(), url: url.into(), headers: Vec::new(), body: ByteBuf::new() }
    }
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status_code: u16,
    pub headers: Vec<HeaderField>,
    pub body: ByteBuf,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}
