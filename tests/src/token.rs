//! A small token issuer for distribution's `auth: token` mode: serves
//! `/token` on 127.0.0.1 (GET with basic auth, or POST form with a password
//! grant), and signs ES256 JWTs with a key it generates; the registry trusts
//! its certificate through `rootcertbundle`.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

/// The issuer name the registry must be told.
pub const ISSUER: &str = "regsync-test-issuer";
/// The service name.
pub const SERVICE: &str = "regsync-test-registry";

/// A running token issuer.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`
    pub realm: String,
    /// PEM of the signing certificate (the registry's `rootcertbundle`).
    pub cert_pem: String,
    /// Token requests answered, by method: (GET, POST).
    pub requests: Arc<Mutex<Vec<String>>>,
    /// The `scope` parameters of each token request, in order.
    pub scopes: Arc<Mutex<Vec<Vec<String>>>>,
    issued: Arc<AtomicUsize>,
}

impl TokenServer {
    /// Starts an issuer accepting these users.
    pub fn start(users: &[(&str, &str)]) -> TokenServer {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, "regsync test token signer");
        let cert = params.self_signed(&key).expect("cert");
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &SystemRandom::new())
                .expect("signing key");
        let x5c = STANDARD.encode(cert.der());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let realm = format!("http://{}/token", listener.local_addr().expect("addr"));
        let users: Vec<(String, String)> = users.iter().map(|(u, p)| (u.to_string(), p.to_string())).collect();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let scopes: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let issued = Arc::new(AtomicUsize::new(0));
        let (req_log, count, scope_log) = (requests.clone(), issued.clone(), scopes.clone());
        let signer = Arc::new(signer);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (users, signer, x5c, req_log, count, scope_log) =
                    (users.clone(), signer.clone(), x5c.clone(), req_log.clone(), count.clone(), scope_log.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, &users, &signer, &x5c, (&req_log, &scope_log), &count);
                });
            }
        });
        TokenServer { realm, cert_pem: cert.pem(), requests, scopes, issued }
    }

    /// How many tokens were issued.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }

    /// The registry config block that delegates auth to this issuer.
    pub fn registry_yaml(&self, dir: &std::path::Path) -> String {
        let bundle = dir.join("token-signer.pem");
        std::fs::write(&bundle, &self.cert_pem).expect("write bundle");
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm,
            bundle.display()
        )
    }
}

fn decode_query(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k), unescape(v))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(
    conn: std::net::TcpStream,
    users: &[(String, String)],
    signer: &EcdsaKeyPair,
    x5c: &str,
    (log, scope_log): (&Mutex<Vec<String>>, &Mutex<Vec<Vec<String>>>),
    count: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    let Some(request) = crate::http1::read_request(&mut reader)? else {
        return Ok(());
    };
    let auth = request.header("authorization").map(str::to_string);
    let crate::http1::Request { method, target, body, .. } = request;
    log.lock().unwrap().push(method.clone());
    let mut params = decode_query(target.split_once('?').map_or("", |(_, q)| q));
    if method == "POST" {
        params.extend(decode_query(&String::from_utf8_lossy(&body)));
    }
    let param = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone());
    scope_log.lock().unwrap().push(params.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect());
    let mut user = None;
    if let Some(basic) = auth.as_deref().and_then(|a| a.strip_prefix("Basic "))
        && let Ok(decoded) = STANDARD.decode(basic)
    {
        let text = String::from_utf8_lossy(&decoded).into_owned();
        if let Some((u, p)) = text.split_once(':') {
            user = Some((u.to_string(), p.to_string()));
        }
    }
    if param("grant_type").as_deref() == Some("password") {
        user = Some((param("username").unwrap_or_default(), param("password").unwrap_or_default()));
    }
    let authenticated = user.as_ref().is_some_and(|(u, p)| users.iter().any(|(uu, pp)| uu == u && pp == p));
    if user.is_some() && !authenticated {
        let msg = b"{\"details\":\"bad credentials\"}";
        write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            msg.len()
        )?;
        out.write_all(msg)?;
        return Ok(());
    }
    // Scopes are granted only to known users; anonymous callers get an empty grant.
    let access: Vec<serde_json::Value> = if authenticated {
        params
            .iter()
            .filter(|(k, _)| k == "scope")
            .filter_map(|(_, s)| {
                let mut it = s.splitn(3, ':');
                let (t, n, a) = (it.next()?, it.next()?, it.next()?);
                Some(json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
            })
            .collect()
    } else {
        Vec::new()
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let n = count.fetch_add(1, Ordering::SeqCst);
    let header = json!({"alg": "ES256", "typ": "JWT", "x5c": [x5c]});
    let claims = json!({
        "iss": ISSUER, "sub": user.map(|u| u.0).unwrap_or_default(), "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("t{n}"), "access": access,
    });
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = signer.sign(&SystemRandom::new(), signing_input.as_bytes()).expect("sign");
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
    let body = json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    Ok(())
}
