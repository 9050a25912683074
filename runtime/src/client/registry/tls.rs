//! TLS settings per host (HTTP-3, CLIENT-4): the system roots, plus
//! `/etc/docker/certs.d/<hostname>/*.crt`, plus the host's `regcert`;
//! `tls: insecure` skips verification; `clientCert`/`clientKey` give mTLS.
//! rustls with the `ring` provider.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::client::error::{ClientError, ErrorKind, Result};
use crate::config::{Host, TlsMode};

/// Where Docker keeps per-host CA certificates.
pub const DOCKER_CERTS_DIR: &str = "/etc/docker/certs.d";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

/// The system's trusted roots, loaded once per process.
fn system_roots() -> Vec<CertificateDer<'static>> {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            for e in &loaded.errors {
                tracing::debug!(error = %e, "Problem loading a system certificate");
            }
            loaded.certs
        })
        .clone()
}

fn pem_certs(pem: &str, origin: &str) -> Vec<CertificateDer<'static>> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes()).filter_map(|c| c.ok()).collect();
    if certs.is_empty() {
        tracing::warn!(source = origin, "No certificate found, using the system roots only");
    }
    certs
}

/// The rustls config for one host.
pub fn client_config(host: &Host, docker_certs: bool) -> Result<rustls::ClientConfig> {
    let location = format!("host {}", host.registry);
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::new(ErrorKind::Invalid, &location, e.to_string()))?;
    let builder = if host.tls == TlsMode::Insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
    } else if host.tls == TlsMode::Disabled {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(LazyRoots::default()))
    } else {
        let mut roots = RootCertStore::empty();
        let (_, ignored) = roots.add_parsable_certificates(system_roots());
        if ignored > 0 {
            tracing::debug!(ignored, "System certificates rustls could not use");
        }
        if docker_certs {
            for cert in docker_cert_dir(&Path::new(DOCKER_CERTS_DIR).join(&host.hostname)) {
                let _ = roots.add(cert);
            }
        }
        if !host.regcert.is_empty() {
            for cert in pem_certs(&host.regcert, "regcert") {
                roots
                    .add(cert)
                    .map_err(|e| ClientError::new(ErrorKind::Invalid, &location, format!("regcert: {e}")))?;
            }
        }
        builder.with_root_certificates(roots)
    };
    if !host.client_cert.is_empty() && !host.client_key.is_empty() {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(host.client_cert.as_bytes()).filter_map(|c| c.ok()).collect();
        let key = PrivateKeyDer::from_pem_slice(host.client_key.expose().as_bytes())
            .map_err(|_| ClientError::new(ErrorKind::Invalid, &location, "clientKey is not a PEM private key"))?;
        builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| ClientError::new(ErrorKind::Invalid, &location, format!("clientCert: {e}")))
    } else {
        Ok(builder.with_no_client_auth())
    }
}

/// `*.crt` files of a certs.d directory.
fn docker_cert_dir(dir: &Path) -> Vec<CertificateDer<'static>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "crt")
            && let Ok(pem) = std::fs::read_to_string(&path)
        {
            out.extend(pem_certs(&pem, &path.display().to_string()));
        }
    }
    out
}

/// `tls: disabled`: the host speaks plain HTTP and meets TLS only when it
/// redirects (blob storage on https); the system roots are loaded then,
/// not on every run (loading them is most of a no-op run's CPU).
#[derive(Debug, Default)]
struct LazyRoots(OnceLock<std::result::Result<Arc<rustls::client::WebPkiServerVerifier>, String>>);

impl LazyRoots {
    fn verifier(&self) -> std::result::Result<&Arc<rustls::client::WebPkiServerVerifier>, rustls::Error> {
        self.0
            .get_or_init(|| {
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(system_roots());
                rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| rustls::Error::General(e.clone()))
    }
}

impl ServerCertVerifier for LazyRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

/// `tls: insecure`: encrypt, but accept any certificate.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
