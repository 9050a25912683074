//! Client errors: what went wrong, where (URL or layout path), and the
//! registry's own error code when it sent one. Never contains credentials:
//! URLs carry no user info and headers are not included.

use std::fmt;

/// The kind of failure, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 404, or a missing file in a layout.
    NotFound,
    /// 401/403, or a token the realm refused.
    Unauthorized,
    /// 429 that outlasted the retries.
    RateLimited,
    /// Bytes that do not hash to the digest they were asked for.
    DigestMismatch,
    /// The registry does not offer the API (referrers, HEAD disabled, deletes).
    UnsupportedApi,
    /// Any other HTTP status.
    Http,
    /// Could not connect, TLS failure, reset connection.
    Connect,
    /// Local file-system error (ocidir).
    Io,
    /// A response or file that does not parse, or an argument we cannot use.
    Invalid,
    /// The operation was cancelled.
    Cancelled,
    /// A response larger than a configured limit (`defaults.limits`), or a
    /// graph deeper or wider than one; the message names the limit.
    TooLarge,
}

/// A client failure.
#[derive(Debug, Clone)]
pub struct ClientError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The URL or path involved.
    pub location: String,
    /// HTTP status, when there was one.
    pub status: Option<u16>,
    /// The registry's error code (`MANIFEST_UNKNOWN`, `DENIED`, …), when it sent one.
    pub code: Option<String>,
    /// Human-readable detail.
    pub message: String,
}

/// HTTP statuses that may pass if asked again later; the transport retries them.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

impl ClientError {
    /// A new error.
    pub fn new(kind: ErrorKind, location: impl Into<String>, message: impl Into<String>) -> Self {
        ClientError { kind, location: location.into(), status: None, code: None, message: message.into() }
    }

    /// The same error for another location.
    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = location.into();
        self
    }

    /// True for [`ErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// True when the registry refused (a 4xx that is not [`is_transient_status`]):
    /// asking again within the run gets the same answer.
    pub fn is_refusal(&self) -> bool {
        self.status.is_some_and(|s| (400..500).contains(&s) && !is_transient_status(s))
    }

    /// A local IO error.
    pub fn io(location: impl Into<String>, e: &std::io::Error) -> Self {
        let kind = if e.kind() == std::io::ErrorKind::NotFound { ErrorKind::NotFound } else { ErrorKind::Io };
        ClientError::new(kind, location, e.to_string())
    }

    /// A connection-level failure of a request to `location`.
    pub fn connect(location: impl Into<String>, e: &reqwest::Error) -> Self {
        ClientError::new(ErrorKind::Connect, location, describe(e))
    }

    /// A digest mismatch.
    pub fn digest_mismatch(location: impl Into<String>, expected: &str, actual: &str) -> Self {
        ClientError::new(
            ErrorKind::DigestMismatch,
            location,
            format!("digest mismatch: expected {expected}, got {actual}"),
        )
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::NotFound => "not found",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::RateLimited => "rate limit exceeded",
            ErrorKind::DigestMismatch => "digest mismatch",
            ErrorKind::UnsupportedApi => "unsupported API",
            ErrorKind::Http => "unexpected http status",
            ErrorKind::Connect => "failed to connect",
            ErrorKind::Io => "file error",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Cancelled => "task was canceled",
            ErrorKind::TooLarge => "over a limit",
        };
        write!(f, "{what}")?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if !self.message.is_empty() && self.message != what {
            write!(f, ": {}", self.message)?;
        }
        if let Some(status) = self.status {
            write!(f, " [http {status}]")?;
        }
        if !self.location.is_empty() {
            write!(f, " at {}", self.location)?;
        }
        Ok(())
    }
}

impl std::error::Error for ClientError {}

/// A reqwest error with its causes, which is where TLS reasons are.
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

/// Shorthand.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
