//! The real-registry harness works: plain HTTP, basic auth, TLS and mTLS.

use std::sync::Arc;

use regsync_tests::fixtures;
use regsync_tests::oci::{LayoutReader, RegistryHttp, sha256_digest};
use regsync_tests::registry::{Registry, RegistryOptions, TestPki};

/// Pushes a generated multi-platform image and its referrers with plain HTTP
/// calls and reads everything back byte for byte.
#[test]
fn push_and_read_back_a_generated_image() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let shapes = fixtures::shapes_layout(dir.path());
    let layout = LayoutReader::open(dir.path());
    let api = reg.api();
    api.push_from_layout(&layout, "shapes", &shapes.multi, Some("multi")).unwrap();
    api.push_from_layout(&layout, "shapes", &shapes.sbom, None).unwrap();

    let (media_type, bytes, header_digest) = api.manifest("shapes", "multi").expect("tag exists");
    assert_eq!(media_type, fixtures::MT_INDEX);
    assert_eq!(sha256_digest(&bytes), shapes.multi.digest);
    assert_eq!(header_digest, shapes.multi.digest);
    assert_eq!(bytes, layout.blob(&shapes.multi.digest).unwrap(), "manifest bytes are unchanged");
    assert_eq!(api.verify_tag("shapes", "multi"), Vec::<String>::new());
    assert_eq!(api.digest_of("shapes", &shapes.sbom.digest), Some(shapes.sbom.digest.clone()));
    assert_eq!(api.tags("shapes"), vec!["multi"]);
    assert_eq!(api.manifest("shapes", "absent"), None);
}

#[test]
fn basic_auth_registry_requires_credentials() {
    let reg = Registry::start_with(RegistryOptions::default().user("alice", "wonderland"));
    let anonymous = RegistryHttp::new(&reg.url, reg.http_client());
    assert_eq!(anonymous.ping().unwrap(), 401);
    let wrong = RegistryHttp::new(&reg.url, reg.http_client()).with_basic_auth("alice", "nope");
    assert_eq!(wrong.ping().unwrap(), 401);
    assert_eq!(reg.api().ping().unwrap(), 200);
    let digest = reg.api().push_blob("private/x", b"payload").unwrap();
    assert_eq!(reg.api().blob("private/x", &digest).unwrap(), b"payload");
    assert_eq!(anonymous.blob("private/x", &digest), None);
}

#[test]
fn tls_registry_is_trusted_only_with_its_ca() {
    let pki = Arc::new(TestPki::generate());
    let reg = Registry::start_with(RegistryOptions::default().tls(pki));
    assert!(reg.url.starts_with("https://127.0.0.1:"));
    assert_eq!(reg.api().ping().unwrap(), 200);
    let untrusted = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(regsync_tests::registry::rustls_config(&TestPki::generate(), false))
        .build()
        .unwrap();
    let err = RegistryHttp::new(&reg.url, untrusted).ping().unwrap_err();
    assert!(err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"), "{err}");
}

#[test]
fn mtls_registry_requires_a_client_certificate() {
    let pki = Arc::new(TestPki::generate());
    let reg = Registry::start_with(RegistryOptions::default().mtls(pki.clone()));
    assert_eq!(reg.api().ping().unwrap(), 200);
    let no_cert = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(regsync_tests::registry::rustls_config(&pki, false))
        .build()
        .unwrap();
    assert!(RegistryHttp::new(&reg.url, no_cert).ping().is_err());
}
