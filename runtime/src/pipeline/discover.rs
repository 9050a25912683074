//! The `discover` stage: what a step covers. One reference for `image`; the
//! source's tags for `repository` (REPO-1); the registry's repositories for
//! `registry` (REG-1, REG-2). Per-tag references are built by joining the
//! configured text and the tag, as regsync does (REF-7).

use crate::client::{Client, Result};
use crate::reference::{Reference, ReferenceError};

/// `<base>:<tag>` parsed, for the source or target of one tag.
pub fn tag_reference(base: &str, tag: &str) -> std::result::Result<Reference, ReferenceError> {
    Reference::parse(&format!("{base}:{tag}"))
}

/// `<base>/<repo>`, the per-repository source or target of a registry step.
pub fn repository_base(base: &str, repo: &str) -> String {
    format!("{}/{repo}", base.trim_end_matches('/'))
}

/// The tags of a repository.
pub async fn tags(client: &Client, repository: &Reference) -> Result<Vec<String>> {
    client.tag_list(repository).await
}

/// The repositories of a registry.
pub async fn repositories(client: &Client, registry: &str) -> Result<Vec<String>> {
    client.catalog(registry).await
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
