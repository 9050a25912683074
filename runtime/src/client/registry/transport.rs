//! One registry host on the wire: its HTTP client (TLS settings), the
//! concurrent-request limit (`reqConcurrent`), pacing (`reqPerSec`), retries
//! with exponential backoff shared by every request to the host (HTTP-4,
//! HTTP-6), answering auth challenges, the idle timeout on every wait and
//! the redirect rules (bounded, no loops, no https → http).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER, WWW_AUTHENTICATE};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::auth::{Auth, Scope};
use super::body::{self, Activity};
use super::tls;
use super::urls;
pub use super::urls::strip_query;
use crate::client::blob::ByteStream;
use crate::client::error::{ClientError, ErrorKind, Result, describe};
use crate::config::{Host, TlsMode};

/// Retries per request after the first attempt (HTTP-4).
pub const MAX_RETRIES: u32 = 5;
/// The longest backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest `Retry-After` waited for; a registry asking for more fails the
/// request with its answer instead of holding the run.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Redirects followed for one request.
pub const MAX_REDIRECTS: usize = 10;
/// Request bodies in memory larger than this are sent in pieces of this size.
const REPLAY_PIECE: usize = 64 << 10;

/// `bytes` as a stream of [`REPLAY_PIECE`]-sized pieces (no copies).
fn pieces(bytes: Bytes) -> ByteStream {
    let n = bytes.len().div_ceil(REPLAY_PIECE);
    Box::pin(futures_util::stream::iter(
        (0..n).map(move |i| Ok(bytes.slice(i * REPLAY_PIECE..((i + 1) * REPLAY_PIECE).min(bytes.len())))),
    ))
}

/// A `Retry-After` value: seconds, or an HTTP date (RFC 9110) counted from now.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// A request body.
pub enum Body {
    /// None.
    Empty,
    /// Bytes that can be sent again on retry.
    Bytes(Bytes),
    /// A stream sent once, with its length (a blob upload).
    Stream(ByteStream, u64),
}

/// A request to one host.
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// Full URL.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Body,
    /// What the request needs to be allowed.
    pub scope: Scope,
}

impl Request {
    /// A request without body or headers.
    pub fn new(method: Method, url: String, scope: Scope) -> Self {
        Request { method, url, headers: Vec::new(), body: Body::Empty, scope }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
}

/// A response; holds the host's concurrency slot until dropped. Callers drop
/// it before making further requests to the same host, and blob bodies give
/// the slot back as soon as their headers are in, so that an upload to the
/// same host never waits for a slot its own download holds.
pub struct Response {
    /// The HTTP response.
    pub inner: reqwest::Response,
    /// The slot.
    pub permit: Option<OwnedSemaphorePermit>,
    /// The host's idle timeout, which every read of the body keeps.
    pub idle: Duration,
    /// The client's gate for large bodies.
    pub gate: body::ReadGate,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.inner.status().as_u16()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.inner.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    /// The whole body, at most `limit` bytes; `what` and `limit_name` make the error
    /// of a larger one (see [`body::read_limited`]). The request slot is held until done.
    pub async fn read_limited(
        self,
        limit: usize,
        location: &str,
        what: impl Fn() -> String,
        limit_name: &str,
    ) -> Result<Bytes> {
        self.read_gated(limit, location, what, limit_name).await.map(|(bytes, _)| bytes)
    }

    /// [`Response::read_limited`], also returning the large-body turn it took
    /// (see [`body::ReadGate`]), for a caller that parses the bytes under it.
    pub async fn read_gated(
        self,
        limit: usize,
        location: &str,
        what: impl Fn() -> String,
        limit_name: &str,
    ) -> Result<(Bytes, body::ReadTurn)> {
        let Response { inner, permit, idle, gate } = self;
        let out = body::read_gated(inner, limit, idle, Some(&gate), location, what, limit_name).await;
        drop(permit);
        out
    }

    /// The body as a stream, each chunk within the idle timeout. The request
    /// slot is given back now: the body may feed an upload to the same host.
    pub fn into_stream(self, location: String) -> ByteStream {
        body::idle_stream(self.inner, self.idle, location)
    }
}

#[derive(Default)]
struct Backoff {
    failures: u32,
    successes: u32,
    until: Option<Instant>,
}

/// Settings that shape retries; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First backoff delay; doubles per failure up to [`MAX_BACKOFF`].
    pub base: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_millis(100) }
    }
}

/// A registry host's connection and request rules.
pub struct Transport {
    /// Settings.
    pub host: Host,
    /// `http://hostname` or `https://hostname`.
    pub base_url: String,
    /// `base_url` parsed once: credentials go only to its origin.
    home: Option<reqwest::Url>,
    http: reqwest::Client,
    auth: Auth,
    limiter: Option<Arc<Semaphore>>,
    pacing: Option<(Duration, tokio::sync::Mutex<Instant>)>,
    backoff: Mutex<Backoff>,
    policy: RetryPolicy,
    idle: Duration,
    gate: body::ReadGate,
    /// Requests and failures, for the server's status page.
    stats: Arc<crate::client::stats::HostStats>,
}

/// Why a redirect was not followed.
#[derive(Debug, thiserror::Error)]
enum RedirectRefused {
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooMany,
    #[error("redirect loop back to {0}")]
    Loop(String),
    #[error("redirect from https to plain http ({0}) refused")]
    Downgrade(String),
}

/// Redirects are followed for at most [`MAX_REDIRECTS`] hops, never in a
/// loop, never from https to http. reqwest itself drops `Authorization` when
/// a hop changes scheme, host or port, so credentials stay with their registry.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let next = urls::strip_query(attempt.url().as_str());
        let previous = attempt.previous();
        if previous.len() > MAX_REDIRECTS {
            return attempt.error(RedirectRefused::TooMany);
        }
        if previous.iter().any(|u| u == attempt.url()) {
            return attempt.error(RedirectRefused::Loop(next));
        }
        if previous.last().is_some_and(|p| p.scheme() == "https") && attempt.url().scheme() != "https" {
            return attempt.error(RedirectRefused::Downgrade(next));
        }
        attempt.follow()
    })
}

impl Transport {
    /// Builds the transport for a host; `idle` bounds every wait
    /// (`limits.idleTimeout`), `gate` the large bodies read at once.
    pub fn new(
        host: Host,
        user_agent: &str,
        docker_certs: bool,
        policy: RetryPolicy,
        idle: Duration,
        gate: body::ReadGate,
    ) -> Result<Self> {
        let scheme = if host.tls == TlsMode::Disabled { "http" } else { "https" };
        let tls = tls::client_config(&host, docker_certs)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(user_agent)
            .connect_timeout(idle)
            .redirect(redirect_policy())
            .build()
            .map_err(|e| ClientError::new(ErrorKind::Invalid, host.registry.clone(), describe(&e)))?;
        let limiter = (host.req_concurrent > 0).then(|| Arc::new(Semaphore::new(host.req_concurrent as usize)));
        let pacing = (host.req_per_sec > 0.0)
            .then(|| (Duration::from_secs_f64(1.0 / host.req_per_sec), tokio::sync::Mutex::new(Instant::now())));
        let base_url = format!("{scheme}://{}", host.hostname);
        Ok(Transport {
            home: reqwest::Url::parse(&base_url).ok(),
            base_url,
            auth: Auth::new(host.clone(), idle),
            stats: crate::client::stats::for_registry(&host.registry),
            host,
            http,
            limiter,
            pacing,
            backoff: Mutex::new(Backoff::default()),
            policy,
            idle,
            gate,
        })
    }

    /// Whether `url` is on this host (scheme, host and port), the only place
    /// its credentials go.
    fn same_origin(&self, url: &str) -> bool {
        match (reqwest::Url::parse(url), &self.home) {
            (Ok(a), Some(home)) => a.origin() == home.origin(),
            _ => false,
        }
    }

    /// True when `apiOpts.disableHead` is set (HTTP-9).
    pub fn head_disabled(&self) -> bool {
        self.host.api_opts.get("disableHead").is_some_and(|v| v == "true")
    }

    async fn wait_backoff(&self) {
        let until = self.backoff.lock().expect("backoff poisoned").until;
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                tokio::time::sleep(until - now).await;
            }
        }
    }

    async fn wait_pacing(&self) {
        if let Some((interval, next)) = &self.pacing {
            let mut next = next.lock().await;
            let now = Instant::now();
            if *next > now {
                tokio::time::sleep(*next - now).await;
            }
            *next = Instant::now().max(*next) + *interval;
        }
    }

    fn record_failure(&self, retry_after: Option<Duration>) -> Duration {
        let mut b = self.backoff.lock().expect("backoff poisoned");
        b.failures += 1;
        b.successes = 0;
        let exp = self.policy.base.saturating_mul(1u32 << (b.failures - 1).min(16));
        let delay = exp.min(MAX_BACKOFF).max(retry_after.unwrap_or_default());
        b.until = Some(Instant::now() + delay);
        delay
    }

    fn record_success(&self) {
        let mut b = self.backoff.lock().expect("backoff poisoned");
        b.successes += 1;
        if b.successes >= 5 && b.failures > 0 {
            b.failures -= 1;
            b.successes = 0;
        }
    }

    /// Sends a request, answering one auth challenge and retrying
    /// connection errors and 408/429/500/502/503/504 with backoff. A streamed
    /// body cannot be sent twice, so such requests are not retried here.
    pub async fn send(&self, req: Request) -> Result<Response> {
        let Request { method, url, headers, body, scope } = req;
        let mut stream_body = None;
        let replay = match body {
            Body::Empty => None,
            Body::Bytes(b) => Some(b),
            Body::Stream(s, len) => {
                stream_body = Some((s, len));
                None
            }
        };
        let replayable = stream_body.is_none();
        let mut answered_challenge = false;
        let mut attempt = 0;
        loop {
            self.wait_backoff().await;
            self.wait_pacing().await;
            let permit = match &self.limiter {
                Some(l) => Some(l.clone().acquire_owned().await.expect("semaphore closed")),
                None => None,
            };
            let mut rb = self.http.request(method.clone(), &url);
            for (k, v) in &headers {
                rb = rb.header(*k, v);
            }
            // Credentials stay with this host: a `Link` or upload `Location`
            // elsewhere (object storage) gets none.
            if self.same_origin(&url)
                && let Some(h) = self.auth.header(&self.http, &scope).await?
            {
                rb = rb.header(AUTHORIZATION, h);
            }
            // Sending the body and waiting for the answer share one idle timeout:
            // a chunk the registry takes is progress, as is the answer itself.
            let activity = Activity::new();
            if let Some(b) = &replay {
                rb = if b.len() > REPLAY_PIECE {
                    // A large chunk on a slow link takes longer than the idle timeout
                    // to send; sent in pieces, each one the registry takes is progress.
                    let len = b.len() as u64;
                    rb.header(CONTENT_LENGTH, len).body(reqwest::Body::wrap_stream(activity.watch(pieces(b.clone()))))
                } else {
                    rb.body(b.clone())
                };
            } else if let Some((s, len)) = stream_body.take() {
                rb = rb.header(CONTENT_LENGTH, len).body(reqwest::Body::wrap_stream(activity.watch(s)));
            }
            let result = match body::within_idle(self.idle, &activity, rb.send()).await {
                Some(r) => r.map_err(|e| body::request_error(&url, &e)),
                None => Err(body::idle_error(&strip_query(&url), self.idle)),
            };
            let failed = match &result {
                Ok(r) => r.status().as_u16() == 429 || r.status().is_server_error(),
                Err(_) => true,
            };
            self.stats.request(failed);
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let delay = self.record_failure(None);
                    if replayable && attempt < MAX_RETRIES && e.kind == ErrorKind::Connect {
                        tracing::debug!(url = strip_query(&url), error = %e, ?delay, "Request failed, retrying");
                        attempt += 1;
                        continue;
                    }
                    return Err(e);
                }
            };
            let status = resp.status().as_u16();
            let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
            if let Some(limit) = crate::client::RateLimitInfo::parse(
                header("ratelimit-limit"),
                header("ratelimit-remaining"),
                header("ratelimit-reset"),
            ) {
                self.stats.rate_limit(&limit);
            }
            // LOG-2: regsync's trace dump; the Authorization header is never logged.
            tracing::trace!(method = %method, url = strip_query(&url), status, "reg http request");
            // Only this host's own challenges touch its login: a 401 from
            // another host (a `Location` or `Link` elsewhere) is just an answer.
            let answered_by = resp.url().to_string();
            if status == 401
                && !answered_challenge
                && self.same_origin(&answered_by)
                && let Some(challenge) = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok())
            {
                tracing::debug!(url = strip_query(&url), challenge, "Registry asked for authentication");
                answered_challenge = true;
                if self.auth.challenged(challenge, &scope, &answered_by).await && replayable {
                    continue;
                }
            }
            if crate::client::error::is_transient_status(status) {
                let retry_after =
                    resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                // Asked to wait longer than a run should: fail now with the answer.
                let too_long = retry_after.is_some_and(|d| d > MAX_RETRY_AFTER);
                let delay = self.record_failure(retry_after.map(|d| d.min(MAX_RETRY_AFTER)));
                if replayable && attempt < MAX_RETRIES && !too_long {
                    tracing::debug!(url = strip_query(&url), status, ?delay, "Registry asked to retry");
                    attempt += 1;
                    continue;
                }
            } else {
                self.record_success();
            }
            return Ok(Response { inner: resp, permit, idle: self.idle, gate: self.gate.clone() });
        }
    }

    /// Turns a non-success response into an error with the registry's code.
    pub async fn error(resp: Response, url: &str) -> ClientError {
        let status = resp.status();
        let kind = match status {
            401 | 403 => ErrorKind::Unauthorized,
            404 => ErrorKind::NotFound,
            429 => ErrorKind::RateLimited,
            405 => ErrorKind::UnsupportedApi,
            _ => ErrorKind::Http,
        };
        let denied =
            status == 401 && resp.header("www-authenticate").is_some_and(|h| super::auth::insufficient_scope(&h));
        let body = body::read_prefix(resp.inner, body::ERROR_BODY_LIMIT, resp.idle).await;
        drop(resp.permit);
        let (code, mut message) = registry_error(&body);
        if denied {
            // Docker Hub answers so for a repository that does not exist, too.
            let said = if message.is_empty() { String::new() } else { format!(": {message}") };
            message = format!("access denied or no such repository (insufficient_scope){said}");
        }
        ClientError { kind, location: strip_query(url), status: Some(status), code, message }
    }
}

/// The first entry of a distribution-API error body.
fn registry_error(body: &[u8]) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let first = &e.errors[0];
            ((!first.code.is_empty()).then(|| first.code.clone()), first.message.clone())
        }
        // Whatever else the registry sent (an HTML page), shortened and without
        // control characters, so it cannot rewrite a terminal or a log line.
        _ => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            (None, text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies() {
        let (code, msg) = registry_error(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#);
        assert_eq!((code.as_deref(), msg.as_str()), (Some("MANIFEST_UNKNOWN"), "manifest unknown"));
        let (code, msg) = registry_error(b"404 page not found\n");
        assert_eq!((code, msg.as_str()), (None, "404 page not found"));
    }

    #[tokio::test]
    async fn large_bodies_go_in_pieces_that_add_up() {
        use futures_util::StreamExt;
        let bytes = Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let parts: Vec<Bytes> = pieces(bytes.clone()).map(|p| p.unwrap()).collect().await;
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.len() <= REPLAY_PIECE));
        assert_eq!(parts.concat(), bytes.to_vec());
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        let soon = std::time::SystemTime::now() + Duration::from_secs(30);
        let waited = parse_retry_after(&httpdate::fmt_http_date(soon)).unwrap();
        assert!(waited > Duration::from_secs(27) && waited <= Duration::from_secs(30), "{waited:?}");
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_doubles_and_honours_retry_after() {
        let mut host = crate::client::registry::hosts::default_host("127.0.0.1:1");
        host.tls = TlsMode::Disabled;
        let t =
            Transport::new(host, "test", false, RetryPolicy::default(), Duration::from_secs(30), Default::default())
                .unwrap();
        assert_eq!(t.record_failure(None), Duration::from_millis(100));
        assert_eq!(t.record_failure(None), Duration::from_millis(200));
        assert_eq!(t.record_failure(Some(Duration::from_secs(2))), Duration::from_secs(2));
        for _ in 0..20 {
            t.record_failure(None);
        }
        assert_eq!(t.record_failure(None), MAX_BACKOFF);
    }
}
