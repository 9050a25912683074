//! What makes an OCI manifest a plugin artifact: the layout the component
//! tooling (`wkg`, `oras`) uses, an image manifest whose config has media type
//! `application/vnd.wasm.config.v0+json` and whose one layer is the component
//! (`application/wasm`). Pure parsing of registry input, kept apart from the
//! plugin host so that it builds (and is fuzzed) without the Wasm runtime.

use serde_json::Value;

/// Media type of the artifact's config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the component layer.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Media type of the artifact's manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The component layer of an artifact manifest: `(digest, size)`, or what
/// was found instead of a Wasm component artifact. `served_type` is the
/// media type the manifest was served with, used when the document has none.
pub fn component_layer(manifest: &[u8], served_type: &str) -> Result<(String, u64), String> {
    let doc: Value = serde_json::from_slice(manifest).map_err(|e| format!("manifest is not JSON ({e})"))?;
    let media_type = doc["mediaType"].as_str().unwrap_or(served_type);
    if media_type != MANIFEST_MEDIA_TYPE {
        return Err(format!("manifest media type {media_type}"));
    }
    let config = doc["config"]["mediaType"].as_str().unwrap_or_default();
    if config != CONFIG_MEDIA_TYPE {
        return Err(format!("config media type {config:?}, expected {CONFIG_MEDIA_TYPE}"));
    }
    let layers = doc["layers"].as_array().map(Vec::as_slice).unwrap_or_default();
    let [layer] = layers else {
        return Err(format!("{} layers, expected one {LAYER_MEDIA_TYPE} layer", layers.len()));
    };
    let layer_type = layer["mediaType"].as_str().unwrap_or_default();
    if layer_type != LAYER_MEDIA_TYPE {
        return Err(format!("layer media type {layer_type:?}, expected {LAYER_MEDIA_TYPE}"));
    }
    let digest = layer["digest"].as_str().unwrap_or_default().to_string();
    let size = layer["size"].as_u64().unwrap_or(0);
    Ok((digest, size))
}
