//! Admission, the stage between an image's plan and its writes: a copy slot
//! (PAR-1), then the source's rate limit (RL-1 … RL-5). While
//! fewer pulls remain than `ratelimit.min`, the slot is given back and the
//! image sleeps `retry`. A plan that must pull (a platform lookup, a changed
//! referrers index) is admitted first, so no pull happens before the
//! rate-limit check (RL-2).

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

/// One image's admission: its copy slot and the rate-limit wait.
pub struct Admission<'a> {
    client: &'a Client,
    slots: &'a Arc<Semaphore>,
    cancel: &'a CancellationToken,
    policy: Policy,
    /// The source by the name the step gave (a tag): digest lookups may be
    /// cached, limits must be live.
    source: Reference,
    /// What the first source lookup reported (RL-2).
    first: Option<RateLimitInfo>,
    permit: Option<OwnedSemaphorePermit>,
    passed: bool,
}

impl<'a> Admission<'a> {
    /// Admission for one image.
    pub fn new(
        client: &'a Client,
        slots: &'a Arc<Semaphore>,
        cancel: &'a CancellationToken,
        policy: Policy,
        source: Reference,
    ) -> Self {
        Admission { client, slots, cancel, policy, source, first: None, permit: None, passed: false }
    }

    /// Records what the first source lookup reported.
    pub fn first_lookup(&mut self, info: Option<RateLimitInfo>) {
        self.first = info;
    }

    /// True when the rate limit applies: `ratelimit.min` is set and the first
    /// lookup reported limits (RL-2).
    pub fn limited(&self) -> bool {
        self.policy.min > 0 && self.first.is_some()
    }

    /// True once admitted (a slot is held).
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// Before a pull during planning: admits only when a rate
    /// limit applies, so a plan's pulls never run ahead of the check.
    pub async fn before_pull(&mut self) -> Result<()> {
        if self.limited() { self.pass().await } else { Ok(()) }
    }

    /// Takes a copy slot and waits until the source has at least `min` pulls left.
    pub async fn pass(&mut self) -> Result<()> {
        if self.passed {
            return Ok(());
        }
        self.permit = Some(self.acquire().await?);
        if self.limited() {
            self.wait().await?;
        }
        self.passed = true;
        Ok(())
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit> {
        let cancelled = || ClientError::new(ErrorKind::Cancelled, self.source.common_name(), "");
        tokio::select! {
            p = self.slots.clone().acquire_owned() => p.map_err(|_| cancelled()),
            _ = self.cancel.cancelled() => Err(cancelled()),
        }
    }

    async fn wait(&mut self) -> Result<()> {
        let Policy { min, retry } = self.policy;
        loop {
            let head = self.client.manifest_head(&self.source).await.inspect_err(|e| {
                tracing::error!(source = %self.source.common_name(), error = %e, "rate limit check failed");
            })?;
            match head.rate_limit {
                Some(limit) if limit.remaining < min => {
                    self.permit = None;
                    tracing::info!(
                        source = %self.source.common_name(),
                        "source-remain" = limit.remaining,
                        "source-limit" = limit.limit.unwrap_or(0),
                        "step-min" = min,
                        sleep = %crate::duration::GoDuration::from(retry),
                        "Delaying for rate limit"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(retry) => {}
                        _ = self.cancel.cancelled() => {
                            return Err(ClientError::new(ErrorKind::Cancelled, self.source.common_name(), ""));
                        }
                    }
                    self.permit = Some(self.acquire().await?);
                }
                limit => {
                    tracing::debug!(
                        source = %self.source.common_name(),
                        "source-remain" = limit.map_or(-1, |l| l.remaining),
                        "step-min" = min,
                        "Rate limit passed"
                    );
                    return Ok(());
                }
            }
        }
    }
}
