//! The `referrers` stage, part of every image copy: referrers (through the
//! API or the `sha256-<hex>` tag schema), filtered by `referrerFilters`, read
//! from `referrerSource` and written to `referrerTarget`, recursively; and
//! digest tags (`sha256-<hex>.*`, COPY-8, COPY-10, COPY-11).
//!
//! Loops (an index whose referrer is itself, a digest tag naming its own
//! image) end because each manifest is copied once per image copy, and tags
//! are pushed only after everything they name is in place.

use std::sync::Arc;

use super::copy::{ImageCopy, repo_key};
use crate::client::{Descriptor, Result, fallback_tag};
use crate::config::ReferrerFilter;
use crate::reference::Reference;

/// True when a referrer passes the filters: any filter whose artifact type
/// (if set) matches and whose annotations are all present (with the same
/// value, unless the filter's value is empty). No filters take everything.
pub fn passes(filters: &[ReferrerFilter], d: &Descriptor) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            (f.artifact_type.is_empty() || d.artifact_type.as_deref() == Some(f.artifact_type.as_str()))
                && f.annotations.iter().all(|(k, v)| d.annotations.get(k).is_some_and(|dv| v.is_empty() || dv == v))
        })
}

/// Copies the referrers of `digest`.
pub(super) async fn copy_referrers(copy: &ImageCopy<'_>, src: &Reference, dst: &Reference, digest: &str) -> Result<()> {
    let from = copy.options.referrer_source.as_ref().unwrap_or(src);
    let to = copy.options.referrer_target.as_ref().unwrap_or(dst);
    let list = copy.client.referrers(&from.with_digest(digest), None).await?;
    for d in list.iter().filter(|d| passes(&copy.options.referrer_filters, d)) {
        if copy.visited.lock().expect("poisoned").contains(&d.digest) {
            continue;
        }
        let target = to.with_digest(&d.digest);
        let present = copy.client.manifest_head(&target).await.is_ok_and(|h| h.digest == d.digest);
        let m = copy.client.manifest_get(&from.with_digest(&d.digest)).await?;
        copy.copy_tree(from, to, &m).await?;
        if !present || copy.options.force_recursive {
            copy.client.manifest_put(&target, &m, false).await?;
            copy.stats.lock().expect("poisoned").manifests += 1;
        }
    }
    Ok(())
}

/// Copies the digest tags of `digest` from the source repository; the tags
/// are pushed at the end of the image copy.
pub(super) async fn copy_digest_tags(
    copy: &ImageCopy<'_>,
    src: &Reference,
    dst: &Reference,
    digest: &str,
) -> Result<()> {
    let tags = {
        let mut cache = copy.source_tags.lock().await;
        match cache.get(&repo_key(src)) {
            Some(t) => t.clone(),
            None => {
                let t = Arc::new(copy.client.tag_list(src).await?);
                cache.insert(repo_key(src), t.clone());
                t
            }
        }
    };
    let prefix = fallback_tag(digest);
    for tag in tags.iter().filter(|t| t.starts_with(&prefix)) {
        // With referrers on, the fallback index itself is the target's to maintain.
        if *tag == prefix && copy.options.referrers {
            continue;
        }
        let m = copy.client.manifest_get(&src.with_tag(tag)).await?;
        copy.copy_tree(src, dst, &m).await?;
        copy.deferred.lock().expect("poisoned").push((dst.with_tag(tag), m));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(artifact_type: &str, annotations: &[(&str, &str)]) -> Descriptor {
        let mut d = Descriptor::new("application/vnd.oci.image.manifest.v1+json", "sha256:x", 1);
        d.artifact_type = Some(artifact_type.to_string());
        d.annotations = annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        d
    }

    fn filter(artifact_type: &str, annotations: &[(&str, &str)]) -> ReferrerFilter {
        ReferrerFilter {
            artifact_type: artifact_type.into(),
            annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn referrer_filters_img_13() {
        let sbom = desc("application/example.sbom", &[("preference", "1"), ("team", "a")]);
        let sig = desc("application/example.signature", &[]);
        assert!(passes(&[], &sig));
        let only_sbom = [filter("application/example.sbom", &[])];
        assert!(passes(&only_sbom, &sbom) && !passes(&only_sbom, &sig));
        assert!(passes(&[filter("", &[("preference", "1")])], &sbom));
        assert!(!passes(&[filter("", &[("preference", "2")])], &sbom));
        assert!(passes(&[filter("", &[("team", "")])], &sbom), "an empty value only needs the key");
        assert!(!passes(&[filter("", &[("owner", "")])], &sbom));
        let either = [filter("application/example.signature", &[]), filter("", &[("team", "a")])];
        assert!(passes(&either, &sbom) && passes(&either, &sig));
        assert!(!passes(&[filter("application/example.sbom", &[("team", "b")])], &sbom), "both parts must match");
    }
}
