//! Registry authentication (HTTP-5): `WWW-Authenticate` challenges, basic
//! auth, and bearer tokens fetched from the realm (POST with a password or
//! refresh-token grant, then GET as a fallback). Scopes accumulate on one
//! token per host, or per repository with `repoAuth`; tokens are renewed
//! shortly before they expire. Credentials come from the host settings or a
//! credential helper (CLIENT-3), and are sent only for that host.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::helper::{self, HelperError};
use crate::client::error::{ClientError, ErrorKind, Result};
use crate::config::{Host, TlsMode};

/// What a request needs: a repository and whether it writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// No repository (`/v2/` ping).
    None,
    /// `repository:<name>:pull` or `…:pull,push`.
    Repository {
        /// Repository path on the host.
        name: String,
        /// Whether the request writes.
        push: bool,
    },
    /// A cross-repository mount: push to `name`, pull from `from` (with
    /// `repoAuth`, the destination's token must carry both).
    Mount {
        /// Repository written.
        name: String,
        /// Repository the blob is mounted from.
        from: String,
    },
    /// `registry:catalog:*`.
    Catalog,
}

impl Scope {
    fn strings(&self) -> Vec<String> {
        match self {
            Scope::None => Vec::new(),
            Scope::Repository { name, push: false } => vec![format!("repository:{name}:pull")],
            Scope::Repository { name, push: true } => vec![format!("repository:{name}:pull,push")],
            Scope::Mount { name, from } => {
                vec![format!("repository:{name}:pull,push"), format!("repository:{from}:pull")]
            }
            Scope::Catalog => vec!["registry:catalog:*".to_string()],
        }
    }

    fn key(&self, repo_auth: bool) -> String {
        match self {
            Scope::Repository { name, .. } | Scope::Mount { name, .. } if repo_auth => name.clone(),
            _ => String::new(),
        }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=…`
    Basic,
    /// `Bearer realm=…,service=…`
    Bearer {
        /// Token endpoint.
        realm: String,
        /// Service name to ask for.
        service: String,
    },
}

/// Parses the challenges of a `WWW-Authenticate` header; Bearer wins over Basic.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let mut result = None;
    let mut rest = header.trim();
    while !rest.is_empty() {
        let (scheme, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let mut params = BTreeMap::new();
        let mut p = after.trim_start();
        // key=value or key="quoted, value" pairs, comma separated, until the next scheme.
        while let Some(eq) = p.find('=') {
            let key = p[..eq].trim().to_ascii_lowercase();
            if key.contains(char::is_whitespace) {
                break;
            }
            let after_eq = &p[eq + 1..];
            let (value, remaining) = if let Some(q) = after_eq.strip_prefix('"') {
                let end = q.find('"').unwrap_or(q.len());
                (q[..end].to_string(), q.get(end + 1..).unwrap_or(""))
            } else {
                let end = after_eq.find(',').unwrap_or(after_eq.len());
                (after_eq[..end].trim().to_string(), &after_eq[end..])
            };
            params.insert(key, value);
            p = remaining.trim_start().strip_prefix(',').unwrap_or(remaining).trim_start();
            let next_word = p.split(['=', ' ']).next().unwrap_or("");
            if matches!(next_word.to_ascii_lowercase().as_str(), "basic" | "bearer") {
                break;
            }
        }
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" => {
                if let Some(realm) = params.get("realm") {
                    return Some(Challenge::Bearer {
                        realm: realm.clone(),
                        service: params.get("service").cloned().unwrap_or_default(),
                    });
                }
            }
            "basic" => result = Some(Challenge::Basic),
            _ => {}
        }
        if p.len() == rest.len() {
            break;
        }
        rest = p;
    }
    result
}

/// Whether a `WWW-Authenticate` header says the token lacked the scope
/// (`error="insufficient_scope"`).
pub fn insufficient_scope(header: &str) -> bool {
    let h = header.to_ascii_lowercase();
    h.contains("error=\"insufficient_scope\"") || h.contains("error=insufficient_scope")
}

/// A login for one host.
#[derive(Clone, PartialEq, Eq)]
pub enum Login {
    /// Anonymous.
    None,
    /// User and password.
    Password {
        /// User name.
        user: String,
        /// Password.
        pass: String,
    },
    /// An identity (refresh) token.
    IdentityToken(String),
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::None => f.write_str("Login::None"),
            Login::Password { user, .. } => write!(f, "Login::Password({user}, [redacted])"),
            Login::IdentityToken(_) => f.write_str("Login::IdentityToken([redacted])"),
        }
    }
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: u64,
    #[serde(default)]
    refresh_token: String,
}

#[derive(Clone)]
struct Token {
    value: String,
    scopes: BTreeSet<String>,
    renew_at: Instant,
    /// Fetched again after `insufficient_scope`: a second refusal is final.
    second_try: bool,
}

struct HelperCache {
    login: Login,
    valid_until: Instant,
}

#[derive(Default)]
struct State {
    challenge: Option<Challenge>,
    tokens: HashMap<String, Token>,
    /// Token keys dropped after `insufficient_scope`: their next token is a second try.
    retrying: BTreeSet<String>,
    refresh_token: Option<String>,
    helper: Option<HelperCache>,
}

/// Authentication for one registry host.
pub struct Auth {
    host: Host,
    state: tokio::sync::Mutex<State>,
    /// The idle timeout of token requests (the host's `limits.idleTimeout`).
    idle: Duration,
}

/// How much earlier than its expiry a token is renewed.
const RENEW_EARLY: Duration = Duration::from_secs(5);
/// The shortest lifetime assumed for a token.
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// After a helper fails, when it is asked again.
const HELPER_RETRY: Duration = Duration::from_secs(5);
/// After a helper timed out, when it is asked again.
const HELPER_RETRY_AFTER_TIMEOUT: Duration = Duration::from_secs(600);

impl Auth {
    /// Authentication state for a host.
    pub fn new(host: Host, idle: Duration) -> Self {
        Auth { host, state: tokio::sync::Mutex::new(State::default()), idle }
    }

    /// The login configured for the host, asking its credential helper when it has one.
    async fn login(&self, state: &mut State) -> Login {
        if !self.host.cred_helper.is_empty() {
            if let Some(cache) = &state.helper
                && cache.valid_until > Instant::now()
            {
                return cache.login.clone();
            }
            let (login, ttl) = match self.run_helper().await {
                Ok(l) => (l, self.host.cred_expire.to_std()),
                Err(e) => {
                    tracing::warn!(host = self.host.registry, helper = self.host.cred_helper, error = %e, "Credential helper failed");
                    // A helper that hangs would hang again: every request to the
                    // host would wait out the deadline anew.
                    let retry = if matches!(e, HelperError::TimedOut { .. }) {
                        HELPER_RETRY_AFTER_TIMEOUT
                    } else {
                        HELPER_RETRY
                    };
                    (Login::None, retry)
                }
            };
            state.helper = Some(HelperCache { login: login.clone(), valid_until: Instant::now() + ttl });
            return login;
        }
        if !self.host.token.is_empty() {
            return Login::IdentityToken(self.host.token.expose().to_string());
        }
        if !self.host.user.is_empty() || !self.host.pass.is_empty() {
            return Login::Password { user: self.host.user.clone(), pass: self.host.pass.expose().to_string() };
        }
        Login::None
    }

    /// Runs `<helper> get` with the host name on stdin (CLIENT-3), within the
    /// helper deadline ([`helper::timeout`]).
    async fn run_helper(&self) -> std::result::Result<Login, HelperError> {
        let name = if self.host.cred_host.is_empty() { &self.host.hostname } else { &self.host.cred_host };
        let helper = &self.host.cred_helper;
        let stdout = helper::run(helper, "get", name).await?;
        let parsed: HelperOutput = serde_json::from_slice(&stdout)
            .map_err(|e| HelperError::Unreadable { program: helper.clone(), reason: e.to_string() })?;
        Ok(if parsed.username == "<token>" {
            Login::IdentityToken(parsed.secret)
        } else {
            Login::Password { user: parsed.username, pass: parsed.secret }
        })
    }

    /// Records a challenge from a 401 to a request for `url`; the next
    /// [`Auth::header`] answers it. Returns false when asking again cannot
    /// help: the registry said `insufficient_scope` to a fresh token fetched
    /// again for this scope after a first refusal (Docker Hub answers so for
    /// a repository that does not exist), so that token, good for everything
    /// else, is kept. The first refusal gets a new token: the old one may
    /// predate the repository, or a login that failed for a moment.
    pub async fn challenged(&self, www_authenticate: &str, scope: &Scope, url: &str) -> bool {
        let mut state = self.state.lock().await;
        let key = scope.key(self.host.repo_auth);
        let denied = insufficient_scope(www_authenticate);
        if denied
            && let Some(t) = state.tokens.get(&key)
            && t.second_try
            && t.renew_at > Instant::now()
            && scope.strings().iter().all(|s| t.scopes.contains(s))
        {
            return false;
        }
        if denied {
            state.retrying.insert(key.clone());
        }
        state.challenge = parse_challenge(www_authenticate).map(|c| match c {
            // A relative realm is relative to the request that was challenged.
            Challenge::Bearer { realm, service } => {
                Challenge::Bearer { realm: super::urls::join(url, &realm).unwrap_or(realm), service }
            }
            other => other,
        });
        // The token we sent was not good enough for this scope: drop it.
        state.tokens.remove(&key);
        true
    }

    /// The `Authorization` header for a request, fetching a token if needed.
    /// `None` before the host has challenged us, or when anonymous basic.
    pub async fn header(&self, http: &reqwest::Client, scope: &Scope) -> Result<Option<String>> {
        let mut state = self.state.lock().await;
        match state.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => match self.login(&mut state).await {
                Login::Password { user, pass } => {
                    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                    Ok(Some(format!("Basic {encoded}")))
                }
                _ => Ok(None),
            },
            Some(Challenge::Bearer { realm, service }) => {
                let key = scope.key(self.host.repo_auth);
                let wanted = scope.strings();
                if let Some(t) = state.tokens.get(&key)
                    && t.renew_at > Instant::now()
                    && wanted.iter().all(|s| t.scopes.contains(s))
                {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let mut scopes: BTreeSet<String> = state.tokens.get(&key).map(|t| t.scopes.clone()).unwrap_or_default();
                scopes.extend(wanted);
                let login = self.login(&mut state).await;
                let secret = login != Login::None || state.refresh_token.is_some();
                if secret && self.host.tls != TlsMode::Disabled && !realm.starts_with("https://") {
                    // The password or refresh token would cross the network
                    // unencrypted; an anonymous token request has nothing to lose.
                    return Err(ClientError::new(
                        ErrorKind::Unauthorized,
                        super::urls::strip_query(&realm),
                        format!(
                            "token realm refused: {} is an https registry and the realm is not https",
                            self.host.registry
                        ),
                    ));
                }
                let refresh = state.refresh_token.clone();
                let (token, refresh_token) =
                    fetch_token(http, self.idle, &realm, &service, &scopes, &login, refresh).await?;
                if refresh_token.is_some() {
                    state.refresh_token = refresh_token;
                }
                let header = format!("Bearer {}", token.value);
                let second_try = state.retrying.remove(&key);
                state.tokens.insert(key, Token { scopes, second_try, ..token });
                Ok(Some(header))
            }
        }
    }
}

/// Asks the realm for a token: POST form (OAuth2 password or refresh grant),
/// falling back to GET with basic auth, as Docker's token servers accept.
async fn fetch_token(
    http: &reqwest::Client,
    idle: Duration,
    realm: &str,
    service: &str,
    scopes: &BTreeSet<String>,
    login: &Login,
    refresh: Option<String>,
) -> Result<(Token, Option<String>)> {
    let client_id = "regsync";
    let unauthorized = |m: String| ClientError::new(ErrorKind::Unauthorized, realm.to_string(), m);
    let post_form: Option<Vec<(&str, String)>> = match (login, refresh) {
        (Login::IdentityToken(t), _) => {
            Some(vec![("grant_type", "refresh_token".into()), ("refresh_token", t.clone())])
        }
        (_, Some(r)) => Some(vec![("grant_type", "refresh_token".into()), ("refresh_token", r)]),
        (Login::Password { user, pass }, None) => {
            Some(vec![("grant_type", "password".into()), ("username", user.clone()), ("password", pass.clone())])
        }
        (Login::None, None) => None,
    };
    let started = Instant::now();
    if let Some(mut form) = post_form {
        if !service.is_empty() {
            form.push(("service", service.to_string()));
        }
        form.push(("client_id", client_id.to_string()));
        for s in scopes {
            form.push(("scope", s.clone()));
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = super::urls::form_body(&pairs);
        let post = http.post(realm).header("content-type", "application/x-www-form-urlencoded").body(body);
        let resp = super::body::send_idle(post, idle, realm).await?;
        if resp.status().is_success() {
            return parse_token(resp, idle, started, realm).await;
        }
        tracing::debug!(realm, status = resp.status().as_u16(), "Token POST refused, trying GET");
    }
    let mut query: Vec<(&str, String)> = vec![("client_id", client_id.to_string())];
    if !service.is_empty() {
        query.insert(0, ("service", service.to_string()));
    }
    for s in scopes {
        query.push(("scope", s.clone()));
    }
    if let Login::Password { user, .. } = login {
        query.push(("account", user.clone()));
    }
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut get = http.get(super::urls::with_query(realm, &pairs)?);
    if let Login::Password { user, pass } = login {
        get = get.basic_auth(user, Some(pass));
    }
    let resp = super::body::send_idle(get, idle, realm).await?;
    if !resp.status().is_success() {
        return Err(unauthorized(format!("token request refused with status {}", resp.status().as_u16())));
    }
    parse_token(resp, idle, started, realm).await
}

async fn parse_token(
    resp: reqwest::Response,
    idle: Duration,
    started: Instant,
    realm: &str,
) -> Result<(Token, Option<String>)> {
    let location = super::urls::strip_query(realm);
    let body = super::body::read_limited(
        resp,
        super::body::TOKEN_BODY_LIMIT,
        idle,
        &location,
        || "token response".to_string(),
        "the token size limit",
    )
    .await?;
    let answer =
        parse_token_body(&body).map_err(|why| ClientError::new(ErrorKind::Unauthorized, location.clone(), why))?;
    let token = Token {
        value: answer.token,
        scopes: BTreeSet::new(),
        renew_at: started + answer.renew_after,
        second_try: false,
    };
    Ok((token, answer.refresh_token))
}

/// What a token response gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAnswer {
    /// The bearer token (`token`, else `access_token`).
    pub token: String,
    /// When to ask for a new one, counted from the request.
    pub renew_after: Duration,
    /// A refresh token for the next request, when the realm sent one.
    pub refresh_token: Option<String>,
}

/// Longest a token is trusted, whatever `expires_in` says: a huge value
/// would overflow the clock arithmetic, and a day is more than any realm gives.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Parses a token response body (distribution's token spec, with OAuth2's
/// `access_token` as an alternative name). The error says why, never the body.
pub fn parse_token_body(body: &[u8]) -> std::result::Result<TokenAnswer, String> {
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|e| format!("unreadable token: {e}"))?;
    let token = if parsed.token.is_empty() { parsed.access_token } else { parsed.token };
    if token.is_empty() {
        return Err("token response has no token".into());
    }
    let lifetime = Duration::from_secs(parsed.expires_in).clamp(MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME);
    let refresh_token = (!parsed.refresh_token.is_empty()).then_some(parsed.refresh_token);
    Ok(TokenAnswer { token, renew_after: lifetime - RENEW_EARLY, refresh_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: "registry.docker.io".into()
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="registry""#), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(r#"Basic realm="x", Bearer realm="https://t/token",service="s""#),
            Some(Challenge::Bearer { realm: "https://t/token".into(), service: "s".into() })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        // Quirks: no service or scope; a Basic without realm after a Bearer without one.
        assert_eq!(
            parse_challenge(r#"Bearer realm="/token""#),
            Some(Challenge::Bearer { realm: "/token".into(), service: String::new() })
        );
        assert_eq!(parse_challenge(r#"Bearer error="invalid_request", Basic"#), Some(Challenge::Basic));
    }

    #[test]
    fn insufficient_scope_is_recognised_however_quoted() {
        assert!(insufficient_scope(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nope:pull",error="insufficient_scope""#
        ));
        assert!(insufficient_scope("Bearer realm=x,error=insufficient_scope"));
        assert!(!insufficient_scope(r#"Bearer realm="x",error="invalid_token""#));
    }

    #[tokio::test]
    async fn relative_realms_resolve_against_the_challenged_request() {
        let auth = Auth::new(crate::client::registry::hosts::default_host("reg.example"), Duration::from_secs(5));
        let scope = Scope::Repository { name: "a/b".into(), push: false };
        assert!(auth.challenged(r#"Bearer realm="/token""#, &scope, "https://reg.example/v2/a/b/manifests/v1").await);
        let state = auth.state.lock().await;
        assert_eq!(
            state.challenge,
            Some(Challenge::Bearer { realm: "https://reg.example/token".into(), service: String::new() })
        );
    }

    #[tokio::test]
    async fn an_http_realm_for_an_https_registry_is_refused_with_a_login() {
        let mut host = crate::client::registry::hosts::default_host("reg.example");
        host.user = "u".into();
        host.pass = crate::config::Secret::new("p");
        let auth = Auth::new(host, Duration::from_secs(5));
        let scope = Scope::Repository { name: "a/b".into(), push: false };
        auth.challenged(r#"Bearer realm="http://auth.example/token""#, &scope, "https://reg.example/v2/").await;
        let host = crate::client::registry::hosts::default_host("reg.example");
        let tls = crate::client::registry::tls::client_config(&host, false).unwrap();
        let http = reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap();
        let err = auth.header(&http, &scope).await.unwrap_err();
        assert!(err.to_string().contains("token realm refused"), "{err}");
    }

    #[test]
    fn scopes_and_keys() {
        let pull = Scope::Repository { name: "a/b".into(), push: false };
        let push = Scope::Repository { name: "a/b".into(), push: true };
        assert_eq!(pull.strings(), vec!["repository:a/b:pull"]);
        assert_eq!(push.strings(), vec!["repository:a/b:pull,push"]);
        assert_eq!(Scope::Catalog.strings(), vec!["registry:catalog:*"]);
        let mount = Scope::Mount { name: "a/b".into(), from: "c".into() };
        assert_eq!(mount.strings(), vec!["repository:a/b:pull,push", "repository:c:pull"]);
        assert_eq!(mount.key(true), "a/b", "a mount's token is the destination's");
        assert_eq!(pull.key(false), "");
        assert_eq!(pull.key(true), "a/b");
    }

    #[test]
    fn logins_do_not_print_secrets() {
        let l = Login::Password { user: "u".into(), pass: "hunter22".into() };
        assert!(!format!("{l:?}").contains("hunter22"));
    }
}
