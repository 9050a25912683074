//! Waiting for a source's rate limit (RL-1 … RL-5): after a copy slot is
//! taken, the source is asked again; while fewer pulls remain than
//! `ratelimit.min`, the slot is given back and the step sleeps `retry`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::client::{Client, ClientError, ErrorKind, RateLimitInfo, Result};
use crate::reference::Reference;

/// A step's `ratelimit` settings, with the wait to use.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Pulls that must remain before a copy starts.
    pub min: i64,
    /// How long to wait before asking again.
    pub retry: Duration,
}

/// Holds the copy slot until the source has at least `min` pulls left.
pub async fn wait(
    client: &Client,
    source: &Reference,
    first: Option<RateLimitInfo>,
    Policy { min, retry }: Policy,
    slots: &Arc<Semaphore>,
    permit: &mut Option<OwnedSemaphorePermit>,
    cancel: &CancellationToken,
) -> Result<()> {
    // Only sources that reported a limit on the first HEAD are watched (RL-2).
    if min <= 0 || first.is_none() {
        return Ok(());
    }
    loop {
        let head = client.manifest_head(source).await.inspect_err(|e| {
            tracing::error!(source = %source.common_name(), error = %e, "rate limit check failed");
        })?;
        match head.rate_limit {
            Some(limit) if limit.remaining < min => {
                *permit = None;
                tracing::info!(
                    source = %source.common_name(),
                    "source-remain" = limit.remaining,
                    "source-limit" = limit.limit.unwrap_or(0),
                    "step-min" = min,
                    sleep = %crate::duration::GoDuration::from(retry),
                    "Delaying for rate limit"
                );
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = cancel.cancelled() => return Err(ClientError::new(ErrorKind::Cancelled, source.common_name(), "")),
                }
                *permit = Some(
                    slots.clone().acquire_owned().await.map_err(|_| ClientError::new(ErrorKind::Cancelled, "", ""))?,
                );
            }
            limit => {
                tracing::debug!(
                    source = %source.common_name(),
                    "source-remain" = limit.map_or(-1, |l| l.remaining),
                    "step-min" = min,
                    "Rate limit passed"
                );
                return Ok(());
            }
        }
    }
}
