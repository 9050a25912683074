//! Authentication and TLS against real registries: htpasswd basic auth,
//! distribution's token auth with our own issuer, credentials from a Docker
//! config and from a credential helper, regcert, insecure and mTLS.

use std::sync::Arc;

use regsync::client::ErrorKind;
use regsync::client::registry::hosts::{default_host, parse_docker_config};
use regsync::config::{Secret, TlsMode};
use regsync_tests::copy::copy_image;
use regsync_tests::fixtures;
use regsync_tests::registry::{Registry, RegistryOptions, TestPki};
use regsync_tests::token::TokenServer;

use crate::client::{client, http_host, r, rt};

fn example() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    fixtures::example_layout(dir.path());
    let s = format!("ocidir://{}:v1", dir.path().display());
    (dir, s)
}

#[test]
fn basic_auth_needs_the_configured_login() {
    let reg = Registry::start_with(RegistryOptions::default().user("alice", "s3cret"));
    let (_dir, src) = example();
    let mut good = http_host(&reg.host);
    good.user = "alice".into();
    good.pass = Secret::new("s3cret");
    let dst = r(&format!("{}/private/app:v1", reg.host));
    rt().block_on(copy_image(&client(vec![good]), &r(&src), &dst)).unwrap();
    assert!(reg.api().digest_of("private/app", "v1").is_some());

    let err = rt().block_on(copy_image(&client(vec![http_host(&reg.host)]), &r(&src), &dst)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}");
    let mut wrong = http_host(&reg.host);
    wrong.user = "alice".into();
    wrong.pass = Secret::new("nope");
    let err = rt().block_on(copy_image(&client(vec![wrong]), &r(&src), &dst)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert!(!err.to_string().contains("nope"), "the password is not in the error: {err}");
}

#[test]
fn token_auth_fetches_scoped_tokens() {
    let issuer = TokenServer::start(&[("bob", "t0ken-pass")]);
    let cfg_dir = tempfile::tempdir().unwrap();
    let options = RegistryOptions { extra_yaml: issuer.registry_yaml(cfg_dir.path()), ..RegistryOptions::default() };
    let reg = Registry::start_with(options);
    let (_dir, src) = example();
    let mut login = http_host(&reg.host);
    login.user = "bob".into();
    login.pass = Secret::new("t0ken-pass");
    let c = client(vec![login]);
    let host = reg.host.clone();
    rt().block_on(async {
        copy_image(&c, &r(&src), &r(&format!("{host}/team/app:v1"))).await.unwrap();
        // Pull from another repository: a token with the accumulated scopes.
        copy_image(&c, &r(&format!("{host}/team/app:v1")), &r(&format!("{host}/team/copy:v1"))).await.unwrap();
        assert!(c.manifest_head(&r(&format!("{host}/team/copy:v1"))).await.is_ok());
    });
    assert!(issuer.issued() >= 2, "tokens were issued");
    assert!(issuer.requests.lock().unwrap().iter().any(|m| m == "POST"), "the password grant is tried first");
    let err = rt()
        .block_on(copy_image(&client(vec![http_host(&reg.host)]), &r(&src), &r(&format!("{}/team/x:v1", reg.host))))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized, "anonymous: {err}");
}

#[test]
fn docker_config_and_credential_helpers_supply_logins_client_2_client_3() {
    let reg = Registry::start_with(RegistryOptions::default().user("carol", "from-config"));
    let (_dir, src) = example();
    // A Docker config entry (base64 user:pass) for the registry.
    let encoded = base64_encode(b"carol:from-config");
    let config = format!(r#"{{"auths":{{"{}":{{"auth":"{encoded}"}}}}}}"#, reg.host);
    let mut from_config = rt().block_on(parse_docker_config(&config)).unwrap().remove(0);
    from_config.tls = TlsMode::Disabled;
    rt().block_on(copy_image(&client(vec![from_config]), &r(&src), &r(&format!("{}/a:v1", reg.host)))).unwrap();

    // A credential helper program: `<helper> get` reads the host on stdin.
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-regsync-test");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread host\n[ \"$host\" = \"{}\" ] || exit 1\necho '{{\"ServerURL\":\"'$host'\",\"Username\":\"carol\",\"Secret\":\"from-config\"}}'\n", reg.host),
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&helper).status().unwrap();
    let mut with_helper = default_host(&reg.host);
    with_helper.tls = TlsMode::Disabled;
    with_helper.cred_helper = helper.display().to_string();
    rt().block_on(copy_image(&client(vec![with_helper]), &r(&src), &r(&format!("{}/b:v1", reg.host)))).unwrap();
    assert!(reg.api().digest_of("b", "v1").is_some());
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn tls_with_regcert_insecure_and_mtls_http_3() {
    let pki = Arc::new(TestPki::generate());
    let reg = Registry::start_with(RegistryOptions::default().tls(pki.clone()));
    let (_dir, src) = example();
    let dst = r(&format!("{}/tls/app:v1", reg.host));
    let mut trusted = default_host(&reg.host);
    trusted.regcert = pki.ca_pem.clone();
    rt().block_on(copy_image(&client(vec![trusted]), &r(&src), &dst)).unwrap();

    let mut insecure = default_host(&reg.host);
    insecure.tls = TlsMode::Insecure;
    rt().block_on(copy_image(&client(vec![insecure]), &dst, &r(&format!("{}/tls/insecure:v1", reg.host)))).unwrap();

    let err = rt().block_on(copy_image(&client(vec![default_host(&reg.host)]), &r(&src), &dst)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connect);
    assert!(err.to_string().to_lowercase().contains("certificate"), "a clear certificate error: {err}");

    let mtls = Registry::start_with(RegistryOptions::default().mtls(pki.clone()));
    let mut with_cert = default_host(&mtls.host);
    with_cert.regcert = pki.ca_pem.clone();
    with_cert.client_cert = pki.client_cert_pem.clone();
    with_cert.client_key = Secret::new(pki.client_key_pem.clone());
    rt().block_on(copy_image(&client(vec![with_cert]), &r(&src), &r(&format!("{}/m/app:v1", mtls.host)))).unwrap();
    let mut no_cert = default_host(&mtls.host);
    no_cert.regcert = pki.ca_pem.clone();
    let err = rt()
        .block_on(copy_image(&client(vec![no_cert]), &r(&src), &r(&format!("{}/m/app:v1", mtls.host))))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connect, "{err}");
}
