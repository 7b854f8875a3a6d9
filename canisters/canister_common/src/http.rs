//! `http_request` routing shared by every canister:
//!
//! - `GET /metrics`: Prometheus text ([`crate::metrics`]);
//! - `GET /logs`: the kept log entries as JSON, `{"entries": [...]}`, oldest
//!   first, each `{timestamp, priority, counter, file, line, message}`.
//!   Query parameters: `priority=ERROR,WARN` (default: all), `since=<ns>`
//!   (entries at or after that IC time), `limit=<n>` (the newest n). The
//!   body stays under [`MAX_LOGS_BODY_BYTES`] by dropping the oldest entries.
//!
//! Anything else is 404, a method other than GET 405, a malformed parameter
//! 400 with the reason. The HTTP gateway calls anonymously, so these routes
//! answer anyone: nothing secret is logged (principals and item ids only),
//! as in dfinity's own canisters. Served on the raw domain (the responses
//! are not certified).

use std::io;

use mainer_types::http::{HttpRequest, HttpResponse};
use serde_bytes::ByteBuf;

use crate::log::{self, Entry, Priority};
use crate::metrics::{self, Encoder, SystemFigures};

/// The largest `/logs` body: well under a query's reply limit.
pub const MAX_LOGS_BODY_BYTES: usize = 1_000_000;

/// Answers `req`; `own_metrics` writes the canister's own figures.
pub fn serve(req: &HttpRequest, own_metrics: impl FnOnce(&mut Encoder) -> io::Result<()>) -> HttpResponse {
    serve_with(req, SystemFigures::current(), own_metrics)
}

/// [`serve`] with the system figures given (for tests).
pub fn serve_with(
    req: &HttpRequest,
    system: SystemFigures,
    own_metrics: impl FnOnce(&mut Encoder) -> io::Result<()>,
) -> HttpResponse {
    if !req.method.eq_ignore_ascii_case("GET") {
        return with_headers(405, "text/plain", format!("{} is not supported: use GET", req.method).into_bytes())
            .with_header("Allow", "GET");
    }
    let (path, query) = req.url.split_once('?').unwrap_or((&req.url, ""));
    match path {
        "/metrics" => match metrics::encode(system, own_metrics) {
            Ok(body) => with_headers(200, "text/plain; version=0.0.4", body),
            Err(e) => text(500, format!("cannot encode the metrics: {e}")),
        },
        "/logs" => match LogQuery::parse(query) {
            Ok(q) => with_headers(200, "application/json", q.render(&log::entries(&q.priorities)).into_bytes()),
            Err(e) => text(400, e),
        },
        _ => text(404, format!("{path} not found: try /metrics or /logs")),
    }
}

/// What `/logs` was asked for.
#[derive(Debug, PartialEq, Eq)]
struct LogQuery {
    priorities: Vec<Priority>,
    since_ns: u64,
    limit: Option<usize>,
}

impl LogQuery {
    fn parse(query: &str) -> Result<Self, String> {
        let mut q = LogQuery { priorities: Priority::ALL.to_vec(), since_ns: 0, limit: None };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value).ok_or_else(|| format!("{name}: bad percent-encoding"))?;
            match name {
                "priority" => {
                    q.priorities = value
                        .split(',')
                        .map(|p| {
                            Priority::parse(p.trim())
                                .ok_or_else(|| format!("unknown priority {p:?}: use ERROR, WARN, INFO or DEBUG"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "since" => {
                    q.since_ns = value.parse().map_err(|_| format!("since={value}: expected nanoseconds"))?;
                }
                "limit" => {
                    q.limit = Some(value.parse().map_err(|_| format!("limit={value}: expected a count"))?);
                }
                _ => return Err(format!("unknown parameter {name:?}: use priority, since or limit")),
            }
        }
        Ok(q)
    }

    /// The matching entries as JSON, the newest that fit.
    fn render(&self, entries: &[Entry]) -> String {
        let matching: Vec<&Entry> = entries.iter().filter(|e| e.timestamp >= self.since_ns).collect();
        let newest = matching.len().saturating_sub(self.limit.unwrap_or(usize::MAX));
        let mut kept = Vec::new();
        let mut size = 0;
        for e in matching[newest..].iter().rev() {
            let json = serde_json::to_string(e).expect("a log entry serializes");
            size += json.len() + 1;
            if size > MAX_LOGS_BODY_BYTES {
                break;
            }
            kept.push(json);
        }
        kept.reverse();
        format!("{{\"entries\":[{}]}}", kept.join(","))
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn with_headers(status_code: u16, content_type: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse {
        status_code,
        headers: vec![
            ("Content-Type".into(), content_type.into()),
            ("Content-Length".into(), body.len().to_string()),
            ("Cache-Control".into(), "no-store".into()),
        ],
        body: ByteBuf::from(body),
    }
}

fn text(status_code: u16, message: String) -> HttpResponse {
    with_headers(status_code, "text/plain; charset=utf-8", message.into_bytes())
}

trait WithHeader {
    fn with_header(self, name: &str, value: &str) -> Self;
}

impl WithHeader for HttpResponse {
    fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::append_for_test;

    fn get(url: &str) -> HttpResponse {
        serve_with(&HttpRequest::get(url), SystemFigures::default(), |w| {
            w.encode_gauge("own_queue_length", 3.0, "Items queued.")
        })
    }

    fn messages(resp: &HttpResponse) -> Vec<String> {
        assert_eq!(resp.status_code, 200, "{}", String::from_utf8_lossy(&resp.body));
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        v["entries"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap().to_string()).collect()
    }

    fn write_some() {
        append_for_test(Priority::Info, 10, "step one");
        append_for_test(Priority::Warn, 20, "retry \"two\"");
        append_for_test(Priority::Error, 30, "gave up on three");
        append_for_test(Priority::Debug, 40, "detail four");
    }

    #[test]
    fn logs_are_json_oldest_first_with_every_field() {
        write_some();
        let resp = get("/logs");
        assert_eq!(messages(&resp), ["step one", "retry \"two\"", "gave up on three", "detail four"]);
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        let e = &v["entries"][2];
        assert_eq!(e["priority"], "ERROR");
        assert_eq!(e["timestamp"], 30);
        assert!(e["file"].as_str().unwrap().ends_with("log.rs"));
        assert!(e["line"].as_u64().unwrap() > 0 && e["counter"].as_u64().unwrap() > 0);
    }

    #[test]
    fn logs_filter_by_priority_time_and_count() {
        write_some();
        assert_eq!(messages(&get("/logs?priority=ERROR")), ["gave up on three"]);
        assert_eq!(messages(&get("/logs?priority=error%2Cwarn")), ["retry \"two\"", "gave up on three"]);
        assert_eq!(messages(&get("/logs?since=30")), ["gave up on three", "detail four"]);
        assert_eq!(messages(&get("/logs?limit=1&priority=INFO,WARN")), ["retry \"two\""]);
        assert!(messages(&get("/logs?since=41")).is_empty());
    }

    #[test]
    fn bad_parameters_paths_and_methods_are_refused_with_the_reason() {
        for (url, says) in [
            ("/logs?priority=LOUD", "unknown priority"),
            ("/logs?since=yesterday", "expected nanoseconds"),
            ("/logs?limit=-1", "expected a count"),
            ("/logs?colour=red", "unknown parameter"),
            ("/logs?priority=%zz", "percent-encoding"),
        ] {
            let resp = get(url);
            assert_eq!(resp.status_code, 400, "{url}");
            assert!(String::from_utf8_lossy(&resp.body).contains(says), "{url}");
        }
        assert_eq!(get("/").status_code, 404);
        assert_eq!(get("/metricsx").status_code, 404);
        let post = HttpRequest { method: "POST".into(), ..HttpRequest::get("/logs") };
        let resp = serve_with(&post, SystemFigures::default(), |_| Ok(()));
        assert_eq!(resp.status_code, 405);
        assert_eq!(resp.header("allow"), Some("GET"));
    }

    #[test]
    fn a_large_log_keeps_the_newest_entries_that_fit() {
        let line = "x".repeat(log::MAX_MESSAGE_BYTES - 20);
        for i in 0..Priority::Info.capacity() {
            append_for_test(Priority::Info, i as u64, &format!("{i:04} {line}"));
        }
        for i in 0..Priority::Warn.capacity() {
            append_for_test(Priority::Warn, i as u64, &format!("{i:04} {line}"));
        }
        let resp = get("/logs");
        assert!(resp.body.len() <= MAX_LOGS_BODY_BYTES, "{}", resp.body.len());
        let got = messages(&resp);
        assert!(got.len() < 2 * Priority::Info.capacity() && !got.is_empty());
        assert!(got.last().unwrap().starts_with(&format!("{:04}", Priority::Warn.capacity() - 1)));
    }

    #[test]
    fn metrics_are_prometheus_text_with_the_canisters_own() {
        let resp = get("/metrics");
        assert_eq!(resp.status_code, 200);
        assert_eq!(resp.header("Content-Type"), Some("text/plain; version=0.0.4"));
        let text = String::from_utf8(resp.body.to_vec()).unwrap();
        assert!(text.contains("canister_cycles_balance 0 0\n"), "{text}");
        assert!(text.contains("own_queue_length 3 0\n"), "{text}");
        assert_eq!(resp.header("content-length"), Some(text.len().to_string().as_str()));
    }
}
