//! `platform`: the one child of an index a step copies (IMG-6), remembered
//! per index digest in a bounded cache, unlike regsync's map (a server runs
//! for months and sees a new index digest with every upstream release).

use mini_moka::sync::Cache;

use crate::client::{Client, ClientError, Descriptor, ErrorKind, Manifest, Result};
use crate::platform::Platform;
use crate::reference::Reference;

/// Entries the cache keeps.
pub const CACHE_ENTRIES: u64 = 4096;

/// Index digest + platform → the chosen child.
pub struct PlatformCache {
    chosen: Cache<String, Descriptor>,
}

impl Default for PlatformCache {
    fn default() -> Self {
        PlatformCache { chosen: Cache::new(CACHE_ENTRIES) }
    }
}

impl PlatformCache {
    /// The child for `wanted` of the index `src` names (pinned to its digest).
    /// `list` is the index when the caller already has it; otherwise it is
    /// fetched unless remembered.
    pub async fn resolve(
        &self,
        client: &Client,
        src: &Reference,
        list: Option<&Manifest>,
        wanted: &Platform,
    ) -> Result<Descriptor> {
        let key = format!("{}|{wanted}", src.digest);
        if let Some(d) = self.chosen.get(&key) {
            return Ok(d);
        }
        let fetched;
        let list = match list {
            Some(l) => l,
            None => {
                fetched = client.manifest_get(src).await.inspect_err(|e| {
                    tracing::error!(source = %src.common_name(), error = %e, "Failed to get source manifest");
                })?;
                &fetched
            }
        };
        let doc = list.doc().map_err(|e| ClientError::new(ErrorKind::Invalid, src.common_name(), e.to_string()))?;
        let Some(chosen) = crate::client::select_platform(wanted, &doc.manifests) else {
            let available: Vec<String> =
                doc.manifests.iter().filter_map(|d| d.platform.as_ref().map(|p| p.platform().to_string())).collect();
            tracing::warn!(platform = %wanted, platforms = ?available, "Platform could not be found in source manifest list");
            return Err(ClientError::new(
                ErrorKind::NotFound,
                src.common_name(),
                format!("platform {wanted} not found"),
            ));
        };
        self.chosen.insert(key, chosen.clone());
        Ok(chosen.clone())
    }
}
