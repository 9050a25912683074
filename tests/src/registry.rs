//! Real registries for tests: Debian's `docker-registry` (the distribution
//! registry) started on 127.0.0.1 with an ephemeral port and a temporary
//! storage directory, stopped on drop. Options add htpasswd basic auth, TLS
//! with a generated CA, and client-certificate (mTLS) checks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The registry binary; override with `REGSYNC_TEST_REGISTRY_BIN`.
pub fn registry_binary() -> PathBuf {
    std::env::var_os("REGSYNC_TEST_REGISTRY_BIN")
        .map_or_else(|| PathBuf::from("/usr/bin/docker-registry"), PathBuf::from)
}

/// A certificate authority and a server certificate for 127.0.0.1 signed by it.
pub struct TestPki {
    /// CA certificate, PEM (what `regcert` gets).
    pub ca_pem: String,
    /// Server certificate, PEM.
    pub server_cert_pem: String,
    /// Server key, PEM.
    pub server_key_pem: String,
    /// A client certificate signed by the CA, PEM (for mTLS).
    pub client_cert_pem: String,
    /// The client key, PEM.
    pub client_key_pem: String,
}

impl TestPki {
    /// Generates a fresh CA, server and client certificate.
    pub fn generate() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.distinguished_name.push(DnType::CommonName, "regsync test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("server params");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &issuer).expect("server cert");

        let client_key = KeyPair::generate().expect("client key");
        let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client_params.distinguished_name.push(DnType::CommonName, "regsync test client");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &issuer).expect("client cert");

        TestPki {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }
}

/// How to start a registry.
#[derive(Default, Clone)]
pub struct RegistryOptions {
    /// Require basic auth with these users (name, password).
    pub htpasswd: Vec<(String, String)>,
    /// Serve HTTPS with this PKI's server certificate.
    pub tls: Option<Arc<TestPki>>,
    /// Also require a client certificate signed by the PKI's CA.
    pub require_client_cert: bool,
    /// Allow manifest and tag deletion.
    pub delete: bool,
    /// Send relative `Location` headers (needed behind the fault proxy).
    pub relative_urls: bool,
    /// Refuse every write (distribution's read-only maintenance mode).
    pub read_only: bool,
    /// Extra top-level YAML appended to the generated config (for options not modelled here).
    pub extra_yaml: String,
}

impl RegistryOptions {
    /// Adds a basic-auth user.
    pub fn user(mut self, name: &str, pass: &str) -> Self {
        self.htpasswd.push((name.to_string(), pass.to_string()));
        self
    }

    /// Serves HTTPS.
    pub fn tls(mut self, pki: Arc<TestPki>) -> Self {
        self.tls = Some(pki);
        self
    }

    /// Relative `Location` headers, so uploads work through a proxy.
    pub fn relative_urls(mut self) -> Self {
        self.relative_urls = true;
        self
    }

    /// Requires client certificates (implies TLS).
    pub fn mtls(mut self, pki: Arc<TestPki>) -> Self {
        self.tls = Some(pki);
        self.require_client_cert = true;
        self
    }

    fn config_yaml(&self, dir: &Path, port: u16) -> String {
        let mut y = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {}\n  maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: regsync-test-secret\n  relativeurls: {}\n",
            dir.join("storage").display(),
            self.delete,
            self.read_only,
            self.relative_urls
        );
        if let Some(pki) = &self.tls {
            std::fs::write(dir.join("server.crt"), &pki.server_cert_pem).expect("write cert");
            std::fs::write(dir.join("server.key"), &pki.server_key_pem).expect("write key");
            y += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.join("server.crt").display(),
                dir.join("server.key").display()
            );
            if self.require_client_cert {
                std::fs::write(dir.join("client-ca.crt"), &pki.ca_pem).expect("write ca");
                y += &format!("    clientcas:\n      - {}\n", dir.join("client-ca.crt").display());
            }
        }
        if !self.htpasswd.is_empty() {
            let lines: String =
                self.htpasswd.iter().map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("bcrypt"))).collect();
            std::fs::write(dir.join("htpasswd"), lines).expect("write htpasswd");
            y +=
                &format!("auth:\n  htpasswd:\n    realm: regsync-test\n    path: {}\n", dir.join("htpasswd").display());
        }
        y += &self.extra_yaml;
        y
    }
}

/// A running registry; stopped and its storage removed on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`
    pub host: String,
    /// `http://…` or `https://…`
    pub url: String,
    dir: TempDir,
    options: RegistryOptions,
}

impl Registry {
    /// Starts a plain-HTTP registry without auth.
    pub fn start() -> Registry {
        Self::start_with(RegistryOptions::default())
    }

    /// Starts a registry with options; panics with the registry's log if it does not come up.
    pub fn start_with(options: RegistryOptions) -> Registry {
        let bin = registry_binary();
        assert!(
            bin.exists(),
            "{} is missing: install Debian's docker-registry package (scripts/test.sh does)",
            bin.display()
        );
        let mut last_log = String::new();
        // The port is free when picked but may be taken before the registry binds it; retry.
        for _ in 0..5 {
            let dir = tempfile::Builder::new().prefix("regsync-registry-").tempdir().expect("temp dir");
            let port = crate::bin::free_port();
            let config = dir.path().join("config.yml");
            std::fs::write(&config, options.config_yaml(dir.path(), port)).expect("write registry config");
            let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let scheme = if options.tls.is_some() { "https" } else { "http" };
            let mut reg = Registry {
                child,
                host: format!("127.0.0.1:{port}"),
                url: format!("{scheme}://127.0.0.1:{port}"),
                dir,
                options: options.clone(),
            };
            if reg.wait_ready(Duration::from_secs(15)) {
                return reg;
            }
            last_log = std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default();
        }
        panic!("docker-registry did not start; last log:\n{last_log}");
    }

    /// Waits until `/v2/` answers (200, or 401 with auth).
    fn wait_ready(&mut self, limit: Duration) -> bool {
        let client = self.http_client();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(resp) = client.get(format!("{}/v2/", self.url)).send()
                && matches!(resp.status().as_u16(), 200 | 401)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// A blocking HTTP client that trusts this registry (and presents the client certificate under mTLS).
    pub fn http_client(&self) -> reqwest::blocking::Client {
        install_crypto_provider();
        let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30));
        if let Some(pki) = &self.options.tls {
            builder = builder.tls_backend_preconfigured(rustls_config(pki, self.options.require_client_cert));
        }
        builder.build().expect("http client")
    }

    /// A client for the distribution API of this registry, with the first user's credentials.
    pub fn api(&self) -> crate::oci::RegistryHttp {
        let api = crate::oci::RegistryHttp::new(&self.url, self.http_client());
        match self.options.htpasswd.first() {
            Some((u, p)) => api.with_basic_auth(u, p),
            None => api,
        }
    }

    /// The storage root (for fault tests that damage it).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The temporary directory holding config and storage.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// reqwest is built without a default TLS provider; tests use ring, as the runtime does.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A rustls client config trusting the test CA, with the client certificate when asked.
pub fn rustls_config(pki: &TestPki, client_cert: bool) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(cert.expect("ca pem")).expect("add ca");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    if client_cert {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pki.client_cert_pem.as_bytes()).map(|c| c.expect("client pem")).collect();
        let key = PrivateKeyDer::from_pem_slice(pki.client_key_pem.as_bytes()).expect("client key");
        builder.with_client_auth_cert(certs, key).expect("client auth")
    } else {
        builder.with_no_client_auth()
    }
}
