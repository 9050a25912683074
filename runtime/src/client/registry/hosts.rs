//! Registry host settings, merged from three sources in regsync's order
//! (HOST-6): built-in Docker Hub defaults, the Docker config file
//! (`auths`, `credHelpers`, `credsStore`) unless `skipDockerConfig`, then the
//! config's `creds`, entry by entry and field by field (HOST-5).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

use super::helper;
use crate::config::{Host, Secret, TlsMode};
use crate::duration::GoDuration;
use crate::reference::{DOCKER_HUB, DOCKER_HUB_HOST};

/// The name Docker's tools use for Docker Hub credentials.
pub const DOCKER_HUB_CRED_HOST: &str = "https://index.docker.io/v1/";

/// Defaults for a host nobody configured.
pub fn default_host(name: &str) -> Host {
    let (hostname, cred_host) = if name == DOCKER_HUB {
        (DOCKER_HUB_HOST.to_string(), DOCKER_HUB_CRED_HOST.to_string())
    } else {
        (name.to_string(), String::new())
    };
    Host {
        registry: name.to_string(),
        hostname,
        user: String::new(),
        pass: Secret::default(),
        token: Secret::default(),
        cred_helper: String::new(),
        cred_expire: GoDuration::from_mins(60),
        cred_host,
        tls: TlsMode::Enabled,
        regcert: String::new(),
        client_cert: String::new(),
        client_key: Secret::default(),
        path_prefix: String::new(),
        mirrors: Vec::new(),
        priority: 0,
        repo_auth: false,
        api_opts: BTreeMap::new(),
        blob_chunk: 1 << 20,
        blob_max: -1,
        req_per_sec: 0.0,
        req_concurrent: 3,
        line: 0,
    }
}

/// Merges `over` into `base`: set fields of `over` win (HOST-5). A credential
/// helper without a login clears the login; a login without a helper clears the helper.
pub fn merge(base: &mut Host, over: &Host) {
    let d = default_host(&over.registry);
    let set = |s: &str| !s.is_empty();
    if set(&over.hostname) && over.hostname != over.registry {
        base.hostname = over.hostname.clone();
    }
    let login = set(&over.user) || !over.pass.is_empty() || !over.token.is_empty();
    if set(&over.cred_helper) && !login {
        base.user.clear();
        base.pass = Secret::default();
        base.token = Secret::default();
    }
    if login && !set(&over.cred_helper) {
        base.cred_helper.clear();
    }
    if set(&over.user) {
        base.user = over.user.clone();
    }
    if !over.pass.is_empty() {
        base.pass = over.pass.clone();
    }
    if !over.token.is_empty() {
        base.token = over.token.clone();
    }
    if set(&over.cred_helper) {
        base.cred_helper = over.cred_helper.clone();
    }
    if over.cred_expire != d.cred_expire {
        base.cred_expire = over.cred_expire;
    }
    if set(&over.cred_host) {
        base.cred_host = over.cred_host.clone();
    }
    if over.tls != TlsMode::Enabled {
        base.tls = over.tls;
    }
    for (field, value) in [
        (&mut base.regcert, &over.regcert),
        (&mut base.client_cert, &over.client_cert),
        (&mut base.path_prefix, &over.path_prefix),
    ] {
        if set(value) {
            *field = value.clone();
        }
    }
    if !over.client_key.is_empty() {
        base.client_key = over.client_key.clone();
    }
    if !over.mirrors.is_empty() {
        base.mirrors = over.mirrors.clone();
    }
    if over.priority != 0 {
        base.priority = over.priority;
    }
    base.repo_auth |= over.repo_auth;
    base.api_opts.extend(over.api_opts.clone());
    if over.blob_chunk != d.blob_chunk {
        base.blob_chunk = over.blob_chunk;
    }
    if over.blob_max != d.blob_max {
        base.blob_max = over.blob_max;
    }
    if over.req_per_sec != 0.0 {
        base.req_per_sec = over.req_per_sec;
    }
    if over.req_concurrent != d.req_concurrent {
        base.req_concurrent = over.req_concurrent;
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: String,
}

#[derive(Debug, Default, Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    identitytoken: String,
}

/// The registry name a Docker config key stands for, or `None` for keys
/// with a path, which Docker config allows but regsync ignores (CLIENT-2).
fn docker_config_name(key: &str) -> Option<String> {
    if key == DOCKER_HUB_CRED_HOST || key == "index.docker.io" || key == "registry-1.docker.io" || key == DOCKER_HUB {
        return Some(DOCKER_HUB.to_string());
    }
    let bare = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let bare = bare.strip_suffix('/').unwrap_or(bare);
    (!bare.is_empty() && !bare.contains('/')).then(|| bare.to_string())
}

/// The Docker config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Host entries from the Docker config file and `DOCKER_AUTH_CONFIG`.
/// Problems are warnings: a broken Docker config must not stop a sync.
pub async fn from_docker_config() -> Vec<Host> {
    let mut texts = Vec::new();
    if let Some(path) = docker_config_path() {
        match std::fs::read_to_string(&path) {
            Ok(t) => texts.push((path.display().to_string(), t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "Failed to load docker creds")
            }
        }
    }
    if let Ok(t) = std::env::var("DOCKER_AUTH_CONFIG") {
        texts.push(("DOCKER_AUTH_CONFIG".to_string(), t));
    }
    let mut hosts = Vec::new();
    for (origin, text) in texts {
        match parse_docker_config(&text).await {
            Ok(h) => hosts.extend(h),
            Err(e) => tracing::warn!(file = origin, error = %e, "Failed to load docker creds"),
        }
    }
    hosts
}

/// Host entries from the text of a Docker `config.json`, with the hosts its
/// credential store (`credsStore`) lists.
pub async fn parse_docker_config(text: &str) -> Result<Vec<Host>, serde_json::Error> {
    let (mut hosts, store) = docker_config_hosts(text)?;
    if let Some(store) = store {
        for key in list_store_hosts(&store).await {
            if let Some(h) = helper_host(&key, &store) {
                hosts.push(h);
            }
        }
    }
    Ok(hosts)
}

/// The host entry of a credential helper for the Docker config key `key`.
fn helper_host(key: &str, helper: &str) -> Option<Host> {
    let name = docker_config_name(key)?;
    let mut h = default_host(&name);
    h.cred_helper = format!("docker-credential-{helper}");
    if name != DOCKER_HUB {
        h.cred_host = key.to_string();
    }
    Some(h)
}

/// Host entries from the text of a Docker `config.json` (`auths`,
/// `credHelpers`), and its `credsStore` if it names one. Pure: nothing is run.
pub fn docker_config_hosts(text: &str) -> Result<(Vec<Host>, Option<String>), serde_json::Error> {
    let cfg: DockerConfig = serde_json::from_str(text)?;
    let mut hosts = Vec::new();
    for (key, auth) in &cfg.auths {
        let Some(name) = docker_config_name(key) else {
            continue;
        };
        let mut h = default_host(&name);
        let (mut user, mut pass) = (auth.username.clone(), auth.password.clone());
        if !auth.auth.is_empty()
            && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(auth.auth.trim())
            && let Some((u, p)) = String::from_utf8_lossy(&decoded).split_once(':')
        {
            user = u.to_string();
            pass = p.to_string();
        }
        if !auth.identitytoken.is_empty() {
            h.token = Secret::new(auth.identitytoken.clone());
        }
        if user.is_empty() && pass.is_empty() && h.token.is_empty() {
            continue;
        }
        h.user = user;
        h.pass = Secret::new(pass);
        hosts.push(h);
    }
    hosts.extend(cfg.cred_helpers.iter().filter_map(|(key, helper)| helper_host(key, helper)));
    Ok((hosts, (!cfg.creds_store.is_empty()).then(|| cfg.creds_store.clone())))
}

/// `docker-credential-<store> list`: the hosts a credential store knows.
async fn list_store_hosts(store: &str) -> Vec<String> {
    let program = format!("docker-credential-{store}");
    match helper::run(&program, "list", "").await {
        Ok(out) => serde_json::from_slice::<BTreeMap<String, String>>(&out)
            .map(|m| m.into_keys().collect())
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!(helper = program, error = %e, "Failed to list credential store");
            Vec::new()
        }
    }
}

/// All known hosts by registry name, merged in HOST-6 order.
pub async fn merged_hosts(config_hosts: &[Host], skip_docker_config: bool) -> BTreeMap<String, Host> {
    let mut out: BTreeMap<String, Host> = BTreeMap::new();
    out.insert(DOCKER_HUB.to_string(), default_host(DOCKER_HUB));
    let docker = if skip_docker_config { Vec::new() } else { from_docker_config().await };
    for h in docker.iter().chain(config_hosts) {
        let entry = out.entry(h.registry.clone()).or_insert_with(|| default_host(&h.registry));
        merge(entry, h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> Host {
        default_host(name)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn later_fields_win_host_5() {
        let mut base = host("r:5000");
        base.user = "a".into();
        base.pass = Secret::new("p1");
        let mut over = host("r:5000");
        over.tls = TlsMode::Disabled;
        over.pass = Secret::new("p2");
        merge(&mut base, &over);
        assert_eq!((base.user.as_str(), base.pass.expose(), base.tls), ("a", "p2", TlsMode::Disabled));
    }

    #[test]
    fn helper_and_login_exclude_each_other_host_5() {
        let mut base = host("r:5000");
        base.user = "a".into();
        base.pass = Secret::new("p");
        let mut helper = host("r:5000");
        helper.cred_helper = "docker-credential-x".into();
        merge(&mut base, &helper);
        assert_eq!(
            (base.user.as_str(), base.pass.is_empty(), base.cred_helper.as_str()),
            ("", true, "docker-credential-x")
        );
        let mut login = host("r:5000");
        login.pass = Secret::new("q");
        merge(&mut base, &login);
        assert_eq!((base.pass.expose(), base.cred_helper.as_str()), ("q", ""));
    }

    #[test]
    fn docker_config_keys_client_2() {
        assert_eq!(docker_config_name("https://index.docker.io/v1/").as_deref(), Some("docker.io"));
        assert_eq!(docker_config_name("https://ghcr.io").as_deref(), Some("ghcr.io"));
        assert_eq!(docker_config_name("localhost:5000").as_deref(), Some("localhost:5000"));
        assert_eq!(docker_config_name("quay.io/team"), None);
    }

    #[test]
    fn docker_config_entries_client_2() {
        let text = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},"r:5000":{"identitytoken":"tok"},"q.io/x":{"auth":"dXNlcjpwYXNz"},"empty.io":{}},"credHelpers":{"gcr.io":"gcloud"}}"#;
        let hosts = block_on(parse_docker_config(text)).unwrap();
        let names: Vec<&str> = hosts.iter().map(|h| h.registry.as_str()).collect();
        assert_eq!(names, vec!["docker.io", "r:5000", "gcr.io"]);
        let hub = &hosts[0];
        assert_eq!((hub.user.as_str(), hub.pass.expose()), ("user", "pass"));
        assert_eq!(hosts[1].token.expose(), "tok");
        assert_eq!(
            (hosts[2].cred_helper.as_str(), hosts[2].cred_host.as_str()),
            ("docker-credential-gcloud", "gcr.io")
        );
    }

    #[test]
    fn docker_hub_defaults() {
        let h = default_host("docker.io");
        assert_eq!((h.hostname.as_str(), h.cred_host.as_str()), ("registry-1.docker.io", DOCKER_HUB_CRED_HOST));
        let merged = block_on(merged_hosts(&[], true));
        assert!(merged.contains_key("docker.io"));
    }
}
