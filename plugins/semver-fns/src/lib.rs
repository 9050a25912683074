//! Template functions for version-shaped tags and digests of text:
//!
//! - `semverMajor "v1.2.3"` → `1`, `semverMinor` → `2`, `semverPatch` → `3`
//!   (a leading `v` and missing parts are accepted: `v1.2` has patch 0);
//! - `sha256 "text"` → the hex sha256 of the text.

use regsync_plugin_sdk::{TemplateFunctions, export_template};
use semver::Version;
use sha2::{Digest, Sha256};

/// The plugin.
pub struct SemverFns;

fn parse(text: &str) -> Result<Version, String> {
    let bare = text.strip_prefix('v').unwrap_or(text);
    let (core, rest) = bare.split_at(bare.find(['-', '+']).unwrap_or(bare.len()));
    let parts = core.split('.').count();
    if parts > 3 {
        return Err(format!("{text:?} is not a semantic version"));
    }
    Version::parse(&format!("{core}{}{rest}", ".0".repeat(3 - parts)))
        .map_err(|_| format!("{text:?} is not a semantic version"))
}

fn one_arg<'a>(name: &str, args: &'a [String]) -> Result<&'a str, String> {
    match args {
        [a] => Ok(a),
        _ => Err(format!("{name} takes 1 argument, got {}", args.len())),
    }
}

/// Runs one function.
pub fn call(name: &str, args: &[String]) -> Result<String, String> {
    match name {
        "semverMajor" => parse(one_arg(name, args)?).map(|v| v.major.to_string()),
        "semverMinor" => parse(one_arg(name, args)?).map(|v| v.minor.to_string()),
        "semverPatch" => parse(one_arg(name, args)?).map(|v| v.patch.to_string()),
        "sha256" => Ok(Sha256::digest(one_arg(name, args)?.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()),
        other => Err(format!("unknown function {other}")),
    }
}

impl TemplateFunctions for SemverFns {
    fn functions() -> Vec<String> {
        ["semverMajor", "semverMinor", "semverPatch", "sha256"].map(String::from).to_vec()
    }

    fn call(name: String, args: Vec<String>) -> Result<String, String> {
        call(&name, &args)
    }
}

export_template!(SemverFns);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_digests() {
        let a = |s: &str| vec![s.to_string()];
        assert_eq!(call("semverMajor", &a("v1.22.3")).unwrap(), "1");
        assert_eq!(call("semverMinor", &a("1.22")).unwrap(), "22");
        assert_eq!(call("semverPatch", &a("1.2.3-rc.1")).unwrap(), "3");
        assert!(call("semverMajor", &a("latest")).is_err());
        assert_eq!(call("sha256", &a("")).unwrap(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
