//! URLs of the distribution API, built with a URL type: `Location` and
//! `Link` targets resolved against the request they answer (absolute,
//! rooted or relative), query parameters encoded by `query_pairs_mut`, and
//! the `rel="next"` target of a `Link` header.

use crate::client::error::{ClientError, ErrorKind, Result};

fn parse(url: &str) -> Result<reqwest::Url> {
    reqwest::Url::parse(url).map_err(|e| ClientError::new(ErrorKind::Invalid, url, e.to_string()))
}

/// `target` (a `Location` or `Link` value) resolved against `base`, the URL it answered.
pub fn join(base: &str, target: &str) -> Result<String> {
    parse(base)?
        .join(target)
        .map(|u| u.to_string())
        .map_err(|e| ClientError::new(ErrorKind::Invalid, strip_query(base), format!("bad target {target}: {e}")))
}

/// `url` with these query parameters added (encoded).
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> Result<String> {
    let mut u = parse(url)?;
    u.query_pairs_mut().extend_pairs(pairs);
    Ok(u.to_string())
}

/// `url` with its query replaced by these parameters.
pub fn with_only_query(url: &str, pairs: &[(&str, &str)]) -> Result<String> {
    let mut u = parse(url)?;
    u.set_query(None);
    if !pairs.is_empty() {
        u.query_pairs_mut().extend_pairs(pairs);
    }
    Ok(u.to_string())
}

/// An `application/x-www-form-urlencoded` body of these pairs.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut u = reqwest::Url::parse("http://form.invalid/").expect("a fixed URL parses");
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap_or_default().to_string()
}

/// URLs in errors and logs lose their query (upload session state, mirror `ns=`).
pub fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

/// The target of the `rel="next"` entry of a `Link` header, as written.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|entry| {
        let (target, params) = entry.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let next = params.split(';').any(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            k.trim().eq_ignore_ascii_case("rel") && v.trim().trim_matches('"').split_whitespace().any(|r| r == "next")
        });
        next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_give_their_next_target() {
        let rows = [
            (
                r#"<https://r.example/v2/_catalog?last=b&n=2>; rel="next""#,
                Some("https://r.example/v2/_catalog?last=b&n=2"),
            ),
            (r#"</v2/app/tags/list?last=v3&n=50>; rel="next""#, Some("/v2/app/tags/list?last=v3&n=50")),
            (r#"<list?last=v3>; rel=next"#, Some("list?last=v3")),
            (r#"<a?x=1>; title="first page"; rel="next"; type="application/json""#, Some("a?x=1")),
            (r#"<p1>; rel="prev", <p3>; rel="next""#, Some("p3")),
            (r#"<p1>; rel="prev""#, None),
            (r#"<p1>; rel="prev next""#, Some("p1")),
            ("garbage", None),
        ];
        for (header, want) in rows {
            assert_eq!(next_link(header).as_deref(), want, "{header}");
        }
    }

    #[test]
    fn targets_resolve_against_the_request() {
        let base = "http://r:5000/v2/app/tags/list?n=2";
        assert_eq!(join(base, "https://other/v2/x?y=1").unwrap(), "https://other/v2/x?y=1");
        assert_eq!(join(base, "/v2/app/tags/list?last=b").unwrap(), "http://r:5000/v2/app/tags/list?last=b");
        assert_eq!(join(base, "list?last=b").unwrap(), "http://r:5000/v2/app/tags/list?last=b");
        assert_eq!(join(base, "?last=b").unwrap(), "http://r:5000/v2/app/tags/list?last=b");
        let upload = "http://r:5000/v2/app/blobs/uploads/abc?_state=x%2By";
        assert_eq!(
            with_query(upload, &[("digest", "sha256:0a")]).unwrap(),
            "http://r:5000/v2/app/blobs/uploads/abc?_state=x%2By&digest=sha256%3A0a"
        );
        assert_eq!(with_only_query(base, &[("last", "a b")]).unwrap(), "http://r:5000/v2/app/tags/list?last=a+b");
        assert_eq!(strip_query(upload), "http://r:5000/v2/app/blobs/uploads/abc");
        assert_eq!(
            form_body(&[("scope", "repository:a/b:pull,push"), ("password", "p@ss w")]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush&password=p%40ss+w"
        );
    }
}
