//! The `discover` stage: what a step covers, as units of work. One image for
//! `image`; one repository for `repository`; the registry's repositories for
//! `registry` (REG-1, REG-2), each a source and target base (the `filter`
//! stage then keeps what `repos` allows). A repository's tags are listed
//! when its turn comes (REPO-1), through the run's shared listing. Per-tag
//! references are built by joining the configured text and the tag, as
//! regsync does (REF-7).

use crate::client::{Client, ClientError, ErrorKind};
use crate::config::{SyncStep, SyncType};
use crate::reference::{Reference, ReferenceError};

/// What a step covers.
pub enum Units {
    /// An `image` step: one image.
    Image {
        /// Its source.
        source: Box<Reference>,
        /// Its target.
        target: Box<Reference>,
    },
    /// A `repository` step (one) or a `registry` step (every repository
    /// listed), in the order listed.
    Repositories(Vec<RepositoryUnit>),
}

/// One repository to sync: source and target as text bases that tags join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryUnit {
    /// The repository listed (a registry step's catalog name), or `None`
    /// for a repository step's own.
    pub listed: Option<String>,
    /// `<source>` or `<source>/<repo>`.
    pub source: String,
    /// `<target>` or `<target>/<repo>`.
    pub target: String,
}

/// The units of `step`. A registry's catalog is read here; a failure names
/// what was listed.
pub async fn units(client: &Client, step: &SyncStep) -> Result<Units, ClientError> {
    let spec = &step.spec;
    match spec.kind {
        SyncType::Image => match (&step.compiled.source_ref, &step.compiled.target_ref) {
            (Some(source), Some(target)) => {
                Ok(Units::Image { source: Box::new(source.clone()), target: Box::new(target.clone()) })
            }
            _ => Err(ClientError::new(ErrorKind::Invalid, &spec.source, "step references were not compiled")),
        },
        SyncType::Repository => Ok(Units::Repositories(vec![RepositoryUnit {
            listed: None,
            source: spec.source.clone(),
            target: spec.target.clone(),
        }])),
        SyncType::Registry => {
            let registry = crate::reference::parse_registry_host(&spec.source).unwrap_or_else(|_| spec.source.clone());
            let repos = client.catalog(&registry).await?;
            Ok(Units::Repositories(
                repos
                    .into_iter()
                    .map(|repo| RepositoryUnit {
                        source: repository_base(&spec.source, &repo),
                        target: repository_base(&spec.target, &repo),
                        listed: Some(repo),
                    })
                    .collect(),
            ))
        }
    }
}

/// `<base>:<tag>` parsed, for the source or target of one tag.
pub fn tag_reference(base: &str, tag: &str) -> std::result::Result<Reference, ReferenceError> {
    Reference::parse(&format!("{base}:{tag}"))
}

/// `<base>/<repo>`, the per-repository source or target of a registry step.
pub fn repository_base(base: &str, repo: &str) -> String {
    format!("{}/{repo}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_joined_as_text_ref_7() {
        assert_eq!(tag_reference("alpine", "3").unwrap().common_name(), "docker.io/library/alpine:3");
        assert_eq!(tag_reference("ocidir://dir/x", "v1").unwrap().common_name(), "ocidir://dir/x:v1");
        assert!(tag_reference("alpine:latest", "3").is_err(), "a repository source with a tag cannot take another");
        assert_eq!(repository_base("registry:5000/", "team/app"), "registry:5000/team/app");
    }
}
