//! What a plugin instance may touch: an empty WASI (no files, no
//! environment, no sockets), its own settings, a memory limit, a deadline,
//! for notifiers HTTP POSTs to the hosts it is allowed, and for gates the
//! referrers of the image being judged. Plugins never see credentials: none
//! are in reach of this state.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{v0_1_0, v0_2_0};
use crate::pipeline::gate::ReferrerReader;

/// The settings of one plugin that every call needs.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The plugin's name, for logs.
    pub name: String,
    /// `host.get-config` answers.
    pub config: BTreeMap<String, String>,
    /// `host:port`s `outbound-http.post` may reach.
    pub allow_hosts: Vec<String>,
    /// Memory limit per instance, bytes.
    pub memory: usize,
    /// Longest call.
    pub timeout: Duration,
}

/// The store data of one call.
pub struct PluginState {
    sandbox: Arc<Sandbox>,
    /// A gate use's settings, read before the plugin's own.
    settings: BTreeMap<String, String>,
    /// What a gate may read; none outside gate calls.
    reader: Option<Arc<dyn ReferrerReader>>,
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory limit.
    pub limits: Limits,
}

/// The memory limit of one instance. Growing past it traps with a message
/// that says so, rather than letting the guest see a failed allocation and
/// abort with an anonymous `unreachable`.
pub struct Limits {
    memory: usize,
}

/// Tables grow with the guest's function references; this is far above any real need.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory {
            wasmtime::bail!("memory limit of {} MiB reached", self.memory >> 20);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!("table limit of {MAX_TABLE_ELEMENTS} elements reached");
        }
        Ok(true)
    }
}

impl PluginState {
    /// Fresh state for one call.
    pub fn new(sandbox: Arc<Sandbox>) -> Self {
        let limits = Limits { memory: sandbox.memory };
        // Nothing inherited: no args, env, preopened dirs or network.
        let wasi = WasiCtxBuilder::new().build();
        PluginState { sandbox, settings: BTreeMap::new(), reader: None, wasi, table: ResourceTable::new(), limits }
    }

    /// The state of a gate call: the use's settings and the image's referrers in reach.
    pub fn for_gate(mut self, settings: BTreeMap<String, String>, reader: Arc<dyn ReferrerReader>) -> Self {
        self.settings = settings;
        self.reader = Some(reader);
        self
    }

    fn log(&self, level: tracing::Level, message: &str) {
        let plugin = self.sandbox.name.as_str();
        match level {
            tracing::Level::TRACE => tracing::trace!(plugin, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(plugin, "{message}"),
            _ => tracing::error!(plugin, "{message}"),
        }
    }

    fn config(&self, key: &str) -> Option<String> {
        self.settings.get(key).or_else(|| self.sandbox.config.get(key)).cloned()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// `host` of each WIT version: the same two functions.
macro_rules! host {
    ($($v:ident),*) => {$(
        impl $v::host::Host for PluginState {
            fn log(&mut self, level: $v::host::Level, message: String) {
                use $v::host::Level;
                let level = match level {
                    Level::Trace => tracing::Level::TRACE,
                    Level::Debug => tracing::Level::DEBUG,
                    Level::Info => tracing::Level::INFO,
                    Level::Warn => tracing::Level::WARN,
                    Level::Error => tracing::Level::ERROR,
                };
                PluginState::log(self, level, &message);
            }

            fn get_config(&mut self, key: String) -> Option<String> {
                self.config(&key)
            }
        }

        impl $v::notifier::regsync::plugin::outbound_http::Host for PluginState {
            fn post(&mut self, url: String, content_type: String, body: String) -> Result<u16, String> {
                self.post(&url, content_type, body)
            }
        }
    )*};
}

host!(v0_1_0, v0_2_0);

impl v0_2_0::image_reader::Host for PluginState {
    fn read_referrer(&mut self, digest: String, layer: Option<u32>, max_bytes: u64) -> Result<Vec<u8>, String> {
        let Some(reader) = &self.reader else {
            return Err("read-referrer is only available to gates".to_string());
        };
        reader.read(&digest, layer, max_bytes)
    }
}

/// The `host:port` of an http(s) URL, with the scheme's default port.
pub fn host_port(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    Some(format!("{}:{}", parsed.host_str()?, parsed.port_or_known_default()?))
}

/// True when `url` is on the allow list (entries `host:port`, or `host` for the default port).
pub fn allowed(url: &str, allow: &[String]) -> bool {
    let Some(target) = host_port(url) else { return false };
    allow.iter().any(|a| {
        if a.contains(':') && !a.starts_with('[') {
            *a == target
        } else {
            host_port(&format!("http://{a}")).is_some_and(|d| d == target)
                || host_port(&format!("https://{a}")).is_some_and(|d| d == target)
        }
    })
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

impl PluginState {
    fn post(&mut self, url: &str, content_type: String, body: String) -> Result<u16, String> {
        if !allowed(url, &self.sandbox.allow_hosts) {
            tracing::warn!(plugin = self.sandbox.name, url, "Plugin HTTP request refused: host not in allowHosts");
            return Err(format!("host of {url} is not in allowHosts"));
        }
        // Calls run on blocking threads (see `plugin::call`), so waiting here is fine.
        let handle = tokio::runtime::Handle::try_current().map_err(|_| "no runtime for HTTP".to_string())?;
        handle.block_on(async {
            http()
                .post(url)
                // Past the plugin's deadline the call is over anyway.
                .timeout(self.sandbox.timeout)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_host_and_port() {
        let allow = vec!["127.0.0.1:8080".to_string(), "hooks.example".to_string()];
        assert!(allowed("http://127.0.0.1:8080/x", &allow));
        assert!(!allowed("http://127.0.0.1:8081/x", &allow));
        assert!(allowed("https://hooks.example/a", &allow));
        assert!(allowed("http://hooks.example/a", &allow));
        assert!(!allowed("http://hooks.example:9000/a", &allow));
        assert!(!allowed("http://evil.example/", &allow));
        assert!(!allowed("file:///etc/passwd", &allow));
        assert!(!allowed("http://user:pw@evil.example@127.0.0.1:8080/", &["evil.example".into()]));
    }
}
