//! Errors between stages: which stage failed, for which step and what
//! (an image `source -> target`, a repository, a registry), and why.

use std::fmt;

use crate::client::{ClientError, ErrorKind};
use crate::reference::ReferenceError;

/// A pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Listing what a step covers.
    Discover,
    /// Tag and repository filters (plugins included).
    Filter,
    /// Looking at source and target and deciding.
    Plan,
    /// Admission: a copy slot, then the source's rate limit.
    Admission,
    /// Checking the image's signatures against the step's policy.
    Verify,
    /// The step's gate plugins.
    Gate,
    /// Saving the target before it is overwritten.
    Backup,
    /// Writing to the target.
    Copy,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Discover => "discover",
            Stage::Filter => "filter",
            Stage::Plan => "plan",
            Stage::Admission => "rate limit",
            Stage::Verify => "verify",
            Stage::Gate => "gate",
            Stage::Backup => "backup",
            Stage::Copy => "copy",
        })
    }
}

/// Why a stage failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Cause {
    /// A registry or layout request.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The backup name could not be made.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// A reference built from the step did not parse (REF-7).
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A tag filter (a plugin) failed or is missing.
    #[error("{0}")]
    Filter(String),
    /// The signature policy refused the image.
    #[error("refused by the signature policy: {0}")]
    Refused(String),
    /// A gate denied the image.
    #[error("denied by {0}")]
    Denied(super::gate::Denied),
}

/// Why a backup could not even be attempted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackupError {
    /// The template failed.
    #[error("failed to expand backup template: {0}")]
    Template(String),
    /// The name it gave is not a reference.
    #[error("failed to parse backup reference \"{name}\": {reason}")]
    Reference {
        /// The expanded name.
        name: String,
        /// Why it did not parse.
        reason: String,
    },
}

/// A failed stage of one step.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{subject}: {cause}")]
pub struct StageError {
    /// Where it failed.
    pub stage: Stage,
    /// The step's position in `sync:`.
    pub step: usize,
    /// What it was working on: `source -> target` for an image, else a reference.
    pub subject: String,
    /// Why.
    #[source]
    pub cause: Cause,
}

impl StageError {
    /// A failure of `stage` on `subject`.
    pub fn new(stage: Stage, step: usize, subject: impl Into<String>, cause: impl Into<Cause>) -> Self {
        StageError { stage, step, subject: subject.into(), cause: cause.into() }
    }

    /// True when the run was cancelled (not reported as an error, SIG-3).
    pub fn is_cancelled(&self) -> bool {
        matches!(&self.cause, Cause::Client(e) if e.kind == ErrorKind::Cancelled)
    }
}

/// Errors print as their text in reports.
pub fn serialize_errors<S: serde::Serializer>(errors: &[StageError], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(errors.iter().map(ToString::to_string))
}
