//! A Sigstore `trusted_root.json`, read from a file and never fetched: the
//! transparency logs whose signed entry timestamps a policy accepts, each
//! with its key and the window it was valid in.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::VerifyError;
use super::keys::PublicKey;

/// The parts of a trusted root a policy uses.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedRoot {
    /// Transparency logs (Rekor).
    pub tlogs: Vec<LogKey>,
}

/// One transparency log's key.
#[derive(Debug, Clone, PartialEq)]
pub struct LogKey {
    /// The log's ID: SHA-256 of its key's DER, hex.
    pub log_id: String,
    /// The key.
    pub key: PublicKey,
    /// When the key started to be used.
    pub start: Option<DateTime<Utc>>,
    /// When it stopped, if it did.
    pub end: Option<DateTime<Utc>>,
}

impl LogKey {
    /// True when an entry integrated at `time` (Unix seconds) falls in the key's window.
    pub fn valid_at(&self, time: i64) -> bool {
        self.start.is_none_or(|s| s.timestamp() <= time) && self.end.is_none_or(|e| time <= e.timestamp())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    media_type: Option<String>,
    #[serde(default)]
    tlogs: Vec<RawLog>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: String,
    valid_for: Option<RawValidity>,
}

#[derive(Deserialize)]
struct RawValidity {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

impl TrustedRoot {
    /// Parses `trusted_root.json`; every log key must be usable.
    pub fn parse(text: &[u8]) -> Result<Self, VerifyError> {
        let raw: RawRoot =
            serde_json::from_slice(text).map_err(|e| VerifyError::TrustedRoot(format!("not a trusted root: {e}")))?;
        if raw.media_type.as_deref().is_some_and(|m| !m.starts_with("application/vnd.dev.sigstore.trustedroot")) {
            return Err(VerifyError::TrustedRoot(format!("unexpected mediaType {:?}", raw.media_type)));
        }
        let mut tlogs = Vec::new();
        for (i, log) in raw.tlogs.into_iter().enumerate() {
            let bad = |what: String| VerifyError::TrustedRoot(format!("tlogs[{i}]: {what}"));
            let der = STANDARD.decode(&log.public_key.raw_bytes).map_err(|e| bad(format!("rawBytes: {e}")))?;
            let key = PublicKey::from_spki(&der).map_err(|e| bad(e.to_string()))?;
            let id = STANDARD.decode(&log.log_id.key_id).map_err(|e| bad(format!("logId: {e}")))?;
            let validity = log.public_key.valid_for.unwrap_or(RawValidity { start: None, end: None });
            let time = |t: Option<String>, what: &str| -> Result<Option<DateTime<Utc>>, VerifyError> {
                t.map(|t| DateTime::parse_from_rfc3339(&t).map(|d| d.with_timezone(&Utc)))
                    .transpose()
                    .map_err(|e| bad(format!("validFor.{what}: {e}")))
            };
            let (start, end) = (time(validity.start, "start")?, time(validity.end, "end")?);
            tlogs.push(LogKey { log_id: crate::verify::hex(&id), key, start, end });
        }
        Ok(TrustedRoot { tlogs })
    }

    /// True when every log key's window has ended before `now`: nothing
    /// signed from now on could be checked against this root.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        !self.tlogs.is_empty() && self.tlogs.iter().all(|l| l.end.is_some_and(|e| e < now))
    }

    /// The log with this ID.
    pub fn log(&self, log_id: &str) -> Option<&LogKey> {
        self.tlogs.iter().find(|l| l.log_id.eq_ignore_ascii_case(log_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_root_that_is_not_one_says_so() {
        let err = TrustedRoot::parse(b"{").unwrap_err().to_string();
        assert!(err.contains("not a trusted root"), "{err}");
        let err = TrustedRoot::parse(br#"{"tlogs":[{"publicKey":{"rawBytes":"!!"},"logId":{"keyId":""}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tlogs[0]: rawBytes"), "{err}");
    }
}
