//! Plugins kept in registries as OCI artifacts, in the layout the component
//! tooling (`wkg`, `oras`) uses: an image manifest whose config has media type
//! `application/vnd.wasm.config.v0+json` and whose one layer is the component
//! (`application/wasm`). Pulled with the same client, credentials, TLS and
//! mirrors as images, verified against their digests, and kept on disk by
//! manifest digest, so a pinned plugin loads after a restart without a network.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::client::{Client, ClientError, Manifest, PutOptions};
use crate::config::Config;
use crate::reference::Reference;

use crate::artifact::MANIFEST_MEDIA_TYPE;
pub use crate::artifact::{CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE};
/// Largest component pulled (`REGSYNC_PLUGIN_MAX_BYTES` changes it).
pub const DEFAULT_SIZE_LIMIT: u64 = 64 << 20;

/// Why a plugin artifact could not be used. Each names the reference.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The registry or layout could not be read.
    #[error("{reference}: {source}")]
    Unreachable {
        /// The plugin's `ref`.
        reference: String,
        /// The client's error.
        source: ClientError,
    },
    /// Not a Wasm component artifact.
    #[error("{reference} is not a WebAssembly component artifact: {found}")]
    NotAComponent {
        /// The plugin's `ref`.
        reference: String,
        /// What was there instead.
        found: String,
    },
    /// The component layer is larger than the limit.
    #[error("{reference}: the component is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The plugin's `ref`.
        reference: String,
        /// Its declared or actual size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes are not what the manifest promised.
    #[error("{reference}: the component's digest is {actual}, the manifest says {expected}")]
    DigestMismatch {
        /// The plugin's `ref`.
        reference: String,
        /// The manifest's layer digest.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// The reference does not parse, or the file to push cannot be read.
    #[error("{0}")]
    Invalid(String),
}

/// A component pulled from an artifact.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest digest (what a `ref` pins).
    pub digest: String,
    /// The component.
    pub bytes: Vec<u8>,
    /// True when it came from the on-disk cache.
    pub cached: bool,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn size_limit() -> u64 {
    std::env::var("REGSYNC_PLUGIN_MAX_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_SIZE_LIMIT)
}

/// The component layer a manifest names, after checking it is a Wasm artifact.
fn component_layer(reference: &str, m: &Manifest, limit: u64) -> Result<(String, u64), ArtifactError> {
    let (digest, size) = crate::artifact::component_layer(&m.bytes, &m.media_type)
        .map_err(|found| ArtifactError::NotAComponent { reference: reference.to_string(), found })?;
    if size > limit {
        return Err(ArtifactError::TooLarge { reference: reference.to_string(), size, limit });
    }
    Ok((digest, size))
}

/// Where a pulled artifact is kept: `<cache>/oci/<manifest hex>/`.
fn cache_entry(cache: &Path, digest: &str) -> PathBuf {
    cache.join("oci").join(digest.trim_start_matches("sha256:"))
}

/// The cached component of manifest `digest`, if it is there and still
/// hashes to what its manifest says (a damaged entry is ignored).
fn from_cache(cache: &Path, reference: &str, digest: &str) -> Option<Pulled> {
    let dir = cache_entry(cache, digest);
    let manifest = std::fs::read(dir.join("manifest.json")).ok()?;
    if sha256(&manifest) != digest {
        return None;
    }
    let m = Manifest {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        digest: digest.into(),
        bytes: manifest.into(),
        rate_limit: None,
    };
    let (layer, _) = component_layer(reference, &m, u64::MAX).ok()?;
    let bytes = std::fs::read(dir.join("component.wasm")).ok()?;
    (sha256(&bytes) == layer).then(|| Pulled { digest: digest.to_string(), bytes, cached: true })
}

fn store(cache: &Path, m: &Manifest, bytes: &[u8]) -> std::io::Result<()> {
    let dir = cache_entry(cache, &m.digest);
    std::fs::create_dir_all(&dir)?;
    // Component first, manifest last: an entry without its manifest is no entry.
    for (name, data) in [("component.wasm", bytes), ("manifest.json", &m.bytes[..])] {
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, dir.join(name))?;
    }
    Ok(())
}

/// Pulls the component of `reference`: from the cache when it is pinned by a
/// digest already there, else from its registry or layout, verified and then cached.
pub async fn pull(client: &Client, reference: &str, cache: Option<&Path>) -> Result<Pulled, ArtifactError> {
    let r = Reference::parse(reference).map_err(|e| ArtifactError::Invalid(format!("{reference}: {e}")))?;
    if !r.digest.is_empty()
        && let Some(hit) = cache.and_then(|c| from_cache(c, reference, &r.digest))
    {
        return Ok(hit);
    }
    let unreachable = |source| ArtifactError::Unreachable { reference: reference.to_string(), source };
    let m = client.manifest_get(&r).await.map_err(unreachable)?;
    let limit = size_limit();
    let (layer, size) = component_layer(reference, &m, limit)?;
    let mut stream = client.blob_get(&r, &layer).await.map_err(unreachable)?;
    let mut bytes = Vec::with_capacity(size as usize);
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.map_err(unreachable)?);
        if bytes.len() as u64 > limit {
            return Err(ArtifactError::TooLarge { reference: reference.to_string(), size: bytes.len() as u64, limit });
        }
    }
    let actual = sha256(&bytes);
    if actual != layer {
        return Err(ArtifactError::DigestMismatch { reference: reference.to_string(), expected: layer, actual });
    }
    if let Some(c) = cache
        && let Err(e) = store(c, &m, &bytes)
    {
        tracing::warn!(reference, error = %e, "Cannot cache the plugin component");
    }
    Ok(Pulled { digest: m.digest, bytes, cached: false })
}

/// [`pull`] for callers without an async runtime (config loading): a client
/// for `config`'s registry settings on a runtime of its own thread.
pub fn pull_blocking(config: &Config, reference: &str, cache: Option<&Path>) -> Result<Pulled, ArtifactError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ArtifactError::Invalid(format!("{reference}: {e}")))?;
            runtime.block_on(async {
                let client = Client::from_config(config, crate::version::VersionInfo::current().user_agent()).await;
                pull(&client, reference, cache).await
            })
        })
        .join()
        .unwrap_or_else(|_| Err(ArtifactError::Invalid(format!("{reference}: the pull panicked"))))
    })
}

/// `reference` with its tag replaced by nothing and `digest` appended: what a
/// tag resolved to, for `regsync config` and reload comparisons.
pub fn pinned(reference: &str, digest: &str) -> String {
    let base = reference.split('@').next().unwrap_or(reference);
    format!("{base}@{digest}")
}

/// The artifact config for a component: its world and the interfaces it
/// imports and exports, in the shape of the Wasm OCI artifact format. No
/// `created` time (it is optional there): the same component pushes as the
/// same digest wherever and whenever it is pushed.
pub fn artifact_config(layer_digest: &str, exports: &[String], imports: &[String], world: &str) -> Value {
    json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
        "component": {
            "exports": exports,
            "imports": imports,
            "target": world,
        },
    })
}

/// Publishes `component` at `reference` as a Wasm artifact (config from
/// `config`); the manifest digest.
pub async fn push(client: &Client, reference: &str, component: &[u8], config: &Value) -> Result<String, ArtifactError> {
    let r = Reference::parse(reference).map_err(|e| ArtifactError::Invalid(format!("{reference}: {e}")))?;
    let unreachable = |source| ArtifactError::Unreachable { reference: reference.to_string(), source };
    let config_bytes = serde_json::to_vec(config).expect("JSON values serialise");
    let layer = crate::client::Descriptor::new(LAYER_MEDIA_TYPE, &sha256(component), component.len() as u64);
    let config_desc =
        crate::client::Descriptor::new(CONFIG_MEDIA_TYPE, &sha256(&config_bytes), config_bytes.len() as u64);
    client.blob_put_bytes(&r, &config_desc, config_bytes.into()).await.map_err(unreachable)?;
    client.blob_put_bytes(&r, &layer, component.to_vec().into()).await.map_err(unreachable)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": "application/wasm",
        "config": config_desc,
        "layers": [layer],
    });
    let bytes = serde_json::to_vec(&manifest).expect("JSON values serialise");
    let m = Manifest {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        digest: sha256(&bytes),
        bytes: bytes.into(),
        rate_limit: None,
    };
    client.manifest_put(&r, &m, PutOptions::default()).await.map_err(unreachable)?;
    Ok(m.digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(doc: Value) -> Manifest {
        let bytes = serde_json::to_vec(&doc).unwrap();
        Manifest {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: sha256(&bytes),
            bytes: bytes.into(),
            rate_limit: None,
        }
    }

    #[test]
    fn only_wasm_artifacts_with_one_component_layer_pass() {
        let layer = json!({"mediaType": LAYER_MEDIA_TYPE, "digest": "sha256:ab", "size": 10});
        let good =
            json!({"mediaType": MANIFEST_MEDIA_TYPE, "config": {"mediaType": CONFIG_MEDIA_TYPE}, "layers": [layer]});
        assert_eq!(component_layer("r", &manifest(good), 100).unwrap(), ("sha256:ab".to_string(), 10));
        let image = json!({"mediaType": MANIFEST_MEDIA_TYPE, "config": {"mediaType": "application/vnd.oci.image.config.v1+json"}, "layers": [layer]});
        let e = component_layer("reg/p:1", &manifest(image), 100).unwrap_err().to_string();
        assert!(e.starts_with("reg/p:1 is not a WebAssembly component artifact: config media type"), "{e}");
        let two = json!({"mediaType": MANIFEST_MEDIA_TYPE, "config": {"mediaType": CONFIG_MEDIA_TYPE}, "layers": [layer, layer]});
        assert!(component_layer("r", &manifest(two), 100).unwrap_err().to_string().contains("2 layers"));
        let big =
            json!({"mediaType": MANIFEST_MEDIA_TYPE, "config": {"mediaType": CONFIG_MEDIA_TYPE}, "layers": [layer]});
        assert!(matches!(component_layer("r", &manifest(big), 5), Err(ArtifactError::TooLarge { size: 10, .. })));
    }

    #[test]
    fn pinned_references_drop_an_old_digest() {
        assert_eq!(pinned("reg/p:1", "sha256:cd"), "reg/p:1@sha256:cd");
        assert_eq!(pinned("reg/p:1@sha256:ab", "sha256:ab"), "reg/p:1@sha256:ab");
    }
}
