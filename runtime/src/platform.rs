//! Platform strings (`linux/amd64`, `linux/arm/v7`, `windows/amd64,osver=10.0.17763`)
//! parsed and normalised the way regclient does, so `x86_64` and `amd64` match.

use std::fmt;

/// An OS/architecture/variant triple with an optional OS version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture, e.g. `amd64`.
    pub architecture: String,
    /// Architecture variant, e.g. `v7`.
    pub variant: String,
    /// OS version (Windows images).
    pub os_version: String,
}

/// Why a platform string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// A component with characters outside `[A-Za-z0-9_-]`.
    #[error("invalid platform component \"{component}\" in \"{input}\"")]
    Component {
        /// The bad component.
        component: String,
        /// The whole input.
        input: String,
    },
    /// An option after `,` other than `osver`.
    #[error("unsupported platform option \"{option}\" in \"{input}\"")]
    Option {
        /// The option as written.
        option: String,
        /// The whole input.
        input: String,
    },
}

const KNOWN_ARCHES: &[&str] = &[
    "386", "amd64", "i386", "x86_64", "x86-64", "arm", "armhf", "armel", "arm64", "aarch64", "mips", "mips64",
    "mips64le", "ppc", "ppc64", "ppc64le", "loong64", "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm",
];

impl Platform {
    /// The platform this binary runs on (`local`).
    pub fn local() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        let mut p =
            Platform { os: std::env::consts::OS.to_string(), architecture: arch.to_string(), ..Platform::default() };
        p.normalize();
        p
    }

    /// Parses `os[/arch[/variant]][,osver=X]`, a bare known architecture, or `local`.
    pub fn parse(input: &str) -> Result<Self, PlatformError> {
        if input == "local" {
            return Ok(Platform::local());
        }
        let (main, options) = match input.split_once(',') {
            Some((m, o)) => (m, Some(o)),
            None => (input, None),
        };
        let mut parts = Vec::new();
        for part in main.split('/') {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return Err(PlatformError::Component { component: part.to_string(), input: input.to_string() });
            }
            parts.push(part.to_ascii_lowercase());
        }
        let mut p = Platform::default();
        if parts.len() == 1 && KNOWN_ARCHES.contains(&parts[0].as_str()) {
            p.architecture = parts[0].clone();
        } else {
            p.os = parts[0].clone();
        }
        if let Some(arch) = parts.get(1) {
            p.architecture = arch.clone();
        }
        if let Some(variant) = parts.get(2) {
            p.variant = variant.clone();
        }
        for option in options.into_iter().flat_map(|o| o.split(',')) {
            match option.split_once('=') {
                Some((k, v)) if matches!(k.trim().to_ascii_lowercase().as_str(), "osver" | "osversion") => {
                    p.os_version = v.trim().to_string();
                }
                _ => {
                    return Err(PlatformError::Option { option: option.to_string(), input: input.to_string() });
                }
            }
        }
        let local = Platform::local();
        if p.os.is_empty() || p.os == "local" {
            p.os = local.os.clone();
        }
        p.normalize();
        if parts.len() < 2 && p.os == local.os && p.architecture.is_empty() {
            p.architecture = local.architecture;
        }
        Ok(p)
    }

    fn normalize(&mut self) {
        if self.os == "macos" {
            self.os = "darwin".into();
        }
        match self.architecture.as_str() {
            "i386" => {
                self.architecture = "386".into();
                self.variant.clear();
            }
            "x86_64" | "x86-64" | "amd64" => {
                self.architecture = "amd64".into();
                if self.variant == "v1" {
                    self.variant.clear();
                }
            }
            "aarch64" | "arm64" => {
                self.architecture = "arm64".into();
                if self.variant == "8" || self.variant == "v8" {
                    self.variant.clear();
                }
            }
            "armhf" => {
                self.architecture = "arm".into();
                self.variant = "v7".into();
            }
            "armel" => {
                self.architecture = "arm".into();
                self.variant = "v6".into();
            }
            "arm" => match self.variant.as_str() {
                "" | "7" => self.variant = "v7".into(),
                "5" | "6" | "8" => self.variant = format!("v{}", self.variant),
                _ => {}
            },
            _ => {}
        }
    }
}

impl Platform {
    /// A platform from the fields an index entry gives, normalised.
    pub fn from_parts(os: &str, architecture: &str, variant: &str, os_version: &str) -> Self {
        let mut out = Platform {
            os: os.to_ascii_lowercase(),
            architecture: architecture.to_ascii_lowercase(),
            variant: variant.to_ascii_lowercase(),
            os_version: os_version.to_string(),
        };
        out.normalize();
        out
    }

    /// Same OS, architecture and variant (and OS version, when this one names
    /// a Windows version): the `platforms` filter (COPY-9).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && self.variant == other.variant
            && (self.os != "windows" || self.os_version.is_empty() || self.os_version == other.os_version)
    }

    /// Whether an image for `candidate` runs here: same OS and architecture,
    /// and for ARM a variant no newer than ours.
    pub fn runs(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        if self.variant == candidate.variant || candidate.variant.is_empty() {
            return true;
        }
        self.architecture == "arm" && candidate.variant < self.variant
    }

    /// Of the candidates (anything with a platform), the one that best fits
    /// this platform (IMG-6): an exact match, else the newest compatible variant.
    pub fn select<T>(&self, candidates: impl IntoIterator<Item = (T, Platform)>) -> Option<T> {
        let candidates: Vec<(T, Platform)> = candidates.into_iter().collect();
        let exact = candidates.iter().position(|(_, p)| self.matches(p));
        let best = exact.or_else(|| {
            let compatible = candidates.iter().enumerate().filter(|(_, (_, p))| self.runs(p));
            compatible.max_by(|a, b| (a.1).1.variant.cmp(&(b.1).1.variant)).map(|(i, _)| i)
        })?;
        candidates.into_iter().nth(best).map(|(c, _)| c)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.os.is_empty() {
            return f.write_str("unknown");
        }
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        Platform::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).to_string()
    }

    #[test]
    fn normalises_like_regclient_img_6() {
        assert_eq!(p("linux/amd64"), "linux/amd64");
        assert_eq!(p("linux/x86_64"), "linux/amd64");
        assert_eq!(p("linux/aarch64"), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("linux/arm"), "linux/arm/v7");
        assert_eq!(p("linux/arm/6"), "linux/arm/v6");
        assert_eq!(p("linux/armhf"), "linux/arm/v7");
        assert_eq!(p("Linux/AMD64"), "linux/amd64");
        assert_eq!(p("macos/arm64"), "darwin/arm64");
        assert_eq!(p("arm64"), format!("{}/arm64", std::env::consts::OS));
        assert_eq!(p("local"), Platform::local().to_string());
        let win = Platform::parse("windows/amd64,osver=10.0.17763.1234").unwrap();
        assert_eq!(win.os_version, "10.0.17763.1234");
    }

    #[test]
    fn rejects_bad_platforms() {
        assert!(Platform::parse("linux/amd 64").is_err());
        assert!(Platform::parse("linux//amd64").is_err());
        assert!(Platform::parse("").is_err());
        assert!(Platform::parse("linux/amd64,color=blue").is_err());
    }
}
