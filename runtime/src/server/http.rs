//! The server's HTTP endpoints: `/` (the status page), `/status.json` (the
//! same as data), `/metrics` (Prometheus text), `/healthz` (alive) and
//! `/readyz` (ready once the first pass is done). All read-only.
//!
//! The port may face a whole cluster network, so the HTTP/1.1 parsing is
//! hyper's and every connection is bounded: headers must arrive within
//! [`HEADER_READ_TIMEOUT`] and fit in [`MAX_BUFFER`], a connection lives at
//! most [`CONNECTION_LIFETIME`], and past [`MAX_CONNECTIONS`] new ones are
//! closed at once. An idle or hostile client costs one small task until its
//! deadline, never the probes or the syncs.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Shared;

/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may stay open, keep-alive included.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// Connections served at once; a scraper and two probes need a handful.
pub const MAX_CONNECTIONS: usize = 512;
/// Read buffer per connection: the longest request head accepted.
pub const MAX_BUFFER: usize = 16 * 1024;

const HTML: &str = "text/html; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` and serves in the background.
pub async fn spawn(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(listen = %listener.local_addr()?, "Serving the status page, /status.json, /metrics, /healthz and /readyz");
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, typically: give connections time to close.
                    tracing::debug!(error = %e, "Metrics endpoint cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |request| {
                    let response = answer(&request, &shared);
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .max_buf_size(MAX_BUFFER)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            });
        }
    });
    Ok(())
}

/// Prometheus asks for OpenMetrics in its `Accept`; anything else (curl,
/// `promtool check metrics`) gets the classic text format.
fn wants_openmetrics(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"))
}

fn answer(request: &Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => (StatusCode::OK, HTML, super::page::page(&shared.status.snapshot())),
        (&Method::GET, "/status.fragment") => (StatusCode::OK, HTML, super::page::main(&shared.status.snapshot())),
        (&Method::GET, "/status.json") => {
            let body = serde_json::to_string_pretty(&shared.status.snapshot()).unwrap_or_default();
            (StatusCode::OK, "application/json", body)
        }
        (&Method::GET, "/metrics") if wants_openmetrics(request) => {
            (StatusCode::OK, OPENMETRICS, shared.metrics.encode())
        }
        (&Method::GET, "/metrics") => (StatusCode::OK, PROMETHEUS_TEXT, shared.metrics.encode_prometheus()),
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        (&Method::GET, "/readyz") if shared.ready.load(Ordering::SeqCst) => {
            (StatusCode::OK, "text/plain", "ready\n".to_string())
        }
        (&Method::GET, "/readyz") => {
            (StatusCode::SERVICE_UNAVAILABLE, "text/plain", "first pass running\n".to_string())
        }
        (&Method::GET, _) => (StatusCode::NOT_FOUND, "text/plain", "not found\n".to_string()),
        _ => (StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(csp) = HeaderValue::from_str(&super::page::CSP) {
        headers.insert("content-security-policy", csp);
    }
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}
