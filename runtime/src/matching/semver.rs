//! regclient's lenient version grammar and range constraints (SEMVER-1 … 3).
//!
//! Tags are not strict semver: `v2`, `1.5`, `v1.2.3-alpine3.21` and
//! `1.2.3.4` all parse. Comparisons follow regclient exactly, including how
//! prerelease identifiers are split into alphabetic and numeric runs.

use std::cmp::Ordering;

/// A version parsed from a tag. Equality is version equality (`v2` == `2.0.0`).
#[derive(Debug, Clone)]
pub struct Version {
    parts: Vec<u64>,
    prerelease: String,
}

/// Why a version or range did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SemverError {
    /// A numeric component is not a non-negative integer.
    #[error("invalid version part {index}: {version}")]
    InvalidPart {
        /// Position of the component.
        index: usize,
        /// The version as written.
        version: String,
    },
    /// A `^` term whose version does not parse.
    #[error("invalid caret constraint version: {0}")]
    Caret(Box<SemverError>),
    /// A `~` term whose version does not parse.
    #[error("invalid tilde constraint version: {0}")]
    Tilde(Box<SemverError>),
    /// A comparison term whose version does not parse (also `>= 1.0`, `!=1`, `1.x`).
    #[error("invalid constraint version: {0}")]
    Term(Box<SemverError>),
    /// An empty range string.
    #[error("empty constraint")]
    Empty,
    /// An operator separated from its version, as in `>= 1.0`.
    #[error("operator \"{0}\" has no version; write it without a space, as in \"{0}1.0\"")]
    MissingVersion(String),
}

impl Version {
    /// Parses a tag: one leading `v`, `+metadata` and `-prerelease` split off,
    /// then one or more dot-separated non-negative integers.
    pub fn parse(tag: &str) -> Result<Self, SemverError> {
        let v = tag.strip_prefix('v').unwrap_or(tag);
        let v = v.split_once('+').map_or(v, |(head, _)| head);
        let (numbers, prerelease) = v.split_once('-').unwrap_or((v, ""));
        let parts = numbers
            .split('.')
            .enumerate()
            .map(|(index, p)| {
                parse_go_atoi(p).ok_or_else(|| SemverError::InvalidPart { index, version: tag.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Version { parts, prerelease: prerelease.to_string() })
    }

    fn part(&self, i: usize) -> u64 {
        self.parts.get(i).copied().unwrap_or(0)
    }

    fn from_parts(parts: [u64; 3]) -> Self {
        Version { parts: parts.to_vec(), prerelease: String::new() }
    }
}

/// Go's `strconv.Atoi` for the values a version part can hold: an optional
/// `+` sign then digits. (A `-` never reaches here: it starts the prerelease.)
fn parse_go_atoi(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.parts.len().max(other.parts.len());
        for i in 0..len {
            match self.part(i).cmp(&other.part(i)) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        match (self.prerelease.is_empty(), other.prerelease.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) if self.prerelease == other.prerelease => Ordering::Equal,
            (false, false) => compare_prereleases(&self.prerelease, &other.prerelease),
        }
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares dot-separated identifiers; within one identifier, runs of
/// non-digits are compared as text and runs of digits as numbers. As in
/// regclient, two identifiers that both lack a number where one is expected
/// end the comparison as equal.
fn compare_prereleases(a: &str, b: &str) -> Ordering {
    let a_ids: Vec<&str> = a.split('.').collect();
    let b_ids: Vec<&str> = b.split('.').collect();
    for (mut a_cur, mut b_cur) in a_ids.iter().copied().zip(b_ids.iter().copied()) {
        while !a_cur.is_empty() && !b_cur.is_empty() {
            let (a_head, a_num, a_tail) = split_numeric(a_cur);
            let (b_head, b_num, b_tail) = split_numeric(b_cur);
            if a_head != b_head {
                return a_head.cmp(b_head);
            }
            match (parse_go_atoi(a_num), parse_go_atoi(b_num)) {
                (Some(x), Some(y)) if x != y => return x.cmp(&y),
                (Some(_), Some(_)) => {}
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (None, None) => return Ordering::Equal,
            }
            a_cur = a_tail;
            b_cur = b_tail;
        }
        if !a_cur.is_empty() {
            return Ordering::Greater;
        }
        if !b_cur.is_empty() {
            return Ordering::Less;
        }
    }
    a_ids.len().cmp(&b_ids.len())
}

/// Splits `abc12def` into (`abc`, `12`, `def`).
fn split_numeric(v: &str) -> (&str, &str, &str) {
    let head_len = v.find(|c: char| c.is_ascii_digit()).unwrap_or(v.len());
    let (head, rest) = v.split_at(head_len);
    let num_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let (num, tail) = rest.split_at(num_len);
    (head, num, tail)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

/// One range string: space-separated terms that must all hold.
#[derive(Debug, Clone)]
pub struct Constraint {
    terms: Vec<(Op, Version)>,
}

impl Constraint {
    /// Parses `>=1.0.0 <2.0.0`, `^1.2`, `~0.3.1`, `1.4` (exact), and so on.
    pub fn parse(range: &str) -> Result<Self, SemverError> {
        let mut terms = Vec::new();
        for part in range.split_whitespace() {
            if let Some(v) = part.strip_prefix('^') {
                let v = Version::parse(v).map_err(|e| SemverError::Caret(Box::new(e)))?;
                let upper = if v.part(0) > 0 {
                    [v.part(0) + 1, 0, 0]
                } else if v.part(1) > 0 {
                    [0, v.part(1) + 1, 0]
                } else {
                    [0, 0, v.part(2) + 1]
                };
                terms.push((Op::Ge, v));
                terms.push((Op::Lt, Version::from_parts(upper)));
                continue;
            }
            if let Some(v) = part.strip_prefix('~') {
                let v = Version::parse(v).map_err(|e| SemverError::Tilde(Box::new(e)))?;
                let upper = [v.part(0), v.part(1) + 1, 0];
                terms.push((Op::Ge, v));
                terms.push((Op::Lt, Version::from_parts(upper)));
                continue;
            }
            if matches!(part, ">=" | "<=" | ">" | "<" | "=" | "^" | "~") {
                return Err(SemverError::MissingVersion(part.to_string()));
            }
            let (op, version) = [(">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt), ("=", Op::Eq)]
                .iter()
                .find_map(|(prefix, op)| part.strip_prefix(prefix).map(|rest| (*op, rest)))
                .unwrap_or((Op::Eq, part));
            let v = Version::parse(version).map_err(|e| SemverError::Term(Box::new(e)))?;
            terms.push((op, v));
        }
        if terms.is_empty() {
            return Err(SemverError::Empty);
        }
        Ok(Constraint { terms })
    }

    /// True when `v` satisfies every term.
    pub fn matches(&self, v: &Version) -> bool {
        self.terms.iter().all(|(op, bound)| {
            let ord = v.cmp(bound);
            match op {
                Op::Eq => ord == Ordering::Equal,
                Op::Gt => ord == Ordering::Greater,
                Op::Ge => ord != Ordering::Less,
                Op::Lt => ord == Ordering::Less,
                Op::Le => ord != Ordering::Greater,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn lenient_version_grammar_semver_1() {
        for ok in ["1", "v1", "1.2", "1.2.3.4", "01.002", "v1.2.3-alpine3.21", "1.0.0+build.5", "1-rc1+x"] {
            assert!(Version::parse(ok).is_ok(), "{ok} should parse");
        }
        for bad in ["latest", "b1", "sha256-abc", "1.x", "v", "", "vv1", "1..2", "1.2.", "x1.0", "+1.2"] {
            assert!(Version::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn ordering_semver_2() {
        assert_eq!(v("v2"), v("2.0.0"));
        assert_eq!(v("1.0.0+a"), v("1.0.0+b"));
        assert!(v("2.0.0-alpine3.21") < v("2.0.0"));
        assert!(v("1.10") > v("1.9"));
        assert!(v("1.0.0-rc2") < v("1.0.0-rc10"));
        assert!(v("1.0.0-alpha") < v("1.0.0-beta"));
        assert!(v("1.0.0-rc1.2") < v("1.0.0-rc1.10"));
        // Text runs compare before numbers: the empty head of `1` sorts before `a`.
        assert!(v("1.0.0-1") < v("1.0.0-a"));
        // regclient quirk: identifiers without digits stop the comparison as equal.
        assert_eq!(v("1.0.0-alpha").cmp(&v("1.0.0-alpha.1")), Ordering::Equal);
        assert_eq!(compare_prereleases("alpha.x", "alpha.y"), Ordering::Equal);
    }

    #[test]
    fn ranges_semver_3() {
        let c = Constraint::parse(">=1.0.0 <2.0.0").unwrap();
        assert!(c.matches(&v("1.5")));
        assert!(c.matches(&v("v2.0.0-rc1")));
        assert!(!c.matches(&v("2.0.0")));
        let caret = Constraint::parse("^1.2.3").unwrap();
        assert!(caret.matches(&v("1.9.9")) && !caret.matches(&v("2.0.0")) && !caret.matches(&v("1.2.2")));
        let caret0 = Constraint::parse("^0.2.3").unwrap();
        assert!(caret0.matches(&v("0.2.9")) && !caret0.matches(&v("0.3.0")));
        let caret00 = Constraint::parse("^0.0.3").unwrap();
        assert!(caret00.matches(&v("0.0.3")) && !caret00.matches(&v("0.0.4")));
        let tilde = Constraint::parse("~1.2.3").unwrap();
        assert!(tilde.matches(&v("1.2.9")) && !tilde.matches(&v("1.3.0")));
        let exact = Constraint::parse("1.4").unwrap();
        assert!(exact.matches(&v("v1.4.0")) && !exact.matches(&v("1.4.1")));
        let eq = Constraint::parse("=1.4").unwrap();
        assert!(eq.matches(&v("1.4")));
        let gt = Constraint::parse(">1 <=3").unwrap();
        assert!(!gt.matches(&v("1")) && gt.matches(&v("1.0.1")) && gt.matches(&v("3")));
    }

    #[test]
    fn range_errors_semver_3() {
        assert_eq!(
            Constraint::parse(">= 1.0").unwrap_err().to_string(),
            "operator \">=\" has no version; write it without a space, as in \">=1.0\""
        );
        for bad in ["!=1.0", "1.x", "*", "^x", "~", "||", ">=1.0 || <0.5"] {
            assert!(Constraint::parse(bad).is_err(), "{bad} should fail");
        }
        assert_eq!(Constraint::parse("   ").unwrap_err(), SemverError::Empty);
    }
}
