//! Splitting one config's work across processes: `--shard I/N`. The unit of
//! work is one target repository; each unit belongs to exactly one shard,
//! chosen by rendezvous (highest-random-weight) hashing of the unit's name, so
//! every shard computes the same assignment from the config alone and going
//! from N to N+1 shards moves only the units the new shard wins (about
//! 1/(N+1) of them). No coordination, no shared state; pure and table-tested.

use sha2::{Digest, Sha256};

/// Which part of the work this process does: shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0 ≤ index < count`.
    pub index: u32,
    /// How many shards share the work.
    pub count: u32,
}

/// A shard setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `I/N` with whole numbers.
    #[error("{origin}: {value:?} is not a shard: expected I/N, e.g. 0/3")]
    Malformed {
        /// Where it came from (`--shard`, `REGSYNC_SHARD`, …).
        origin: String,
        /// What was given.
        value: String,
    },
    /// `N` is 0 or `I ≥ N`.
    #[error("{origin}: shard {index} of {count} does not exist: I must be below N, and N above 0")]
    OutOfRange {
        /// Where it came from.
        origin: String,
        /// I.
        index: u64,
        /// N.
        count: u64,
    },
    /// The flag or `REGSYNC_SHARD` disagrees with what Kubernetes says.
    #[error(
        "{origin} says shard {given}, but {k8s_origin} says {k8s}: run each pod with its own index, or set neither"
    )]
    Conflict {
        /// The explicit setting.
        origin: String,
        /// Its value.
        given: Shard,
        /// The Kubernetes setting.
        k8s_origin: String,
        /// Its value.
        k8s: Shard,
    },
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Parses `I/N`; `origin` names the source in errors.
    pub fn parse(value: &str, origin: &str) -> Result<Shard, ShardError> {
        let malformed = || ShardError::Malformed { origin: origin.to_string(), value: value.to_string() };
        let (i, n) = value.trim().split_once('/').ok_or_else(malformed)?;
        let number = |s: &str| -> Result<u64, ShardError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            s.parse().map_err(|_| malformed())
        };
        let (index, count) = (number(i.trim())?, number(n.trim())?);
        Self::checked(index, count, origin)
    }

    fn checked(index: u64, count: u64, origin: &str) -> Result<Shard, ShardError> {
        if count == 0 || index >= count || count > u32::MAX as u64 {
            return Err(ShardError::OutOfRange { origin: origin.to_string(), index, count });
        }
        Ok(Shard { index: index as u32, count: count as u32 })
    }

    /// The shard from, in order: `flag` (`--shard`), `REGSYNC_SHARD`, then
    /// Kubernetes (`JOB_COMPLETION_INDEX` of an Indexed Job, else the ordinal
    /// at the end of a StatefulSet pod's `HOSTNAME`, each with
    /// `REGSYNC_SHARDS=N`). `None` when nothing asks for sharding. An
    /// explicit setting that disagrees with Kubernetes is an error.
    pub fn resolve(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>, ShardError> {
        let explicit = match (flag, env("REGSYNC_SHARD")) {
            (Some(f), _) => Some(Self::parse(f, "--shard")?),
            (None, Some(v)) if !v.trim().is_empty() => Some(Self::parse(&v, "REGSYNC_SHARD")?),
            _ => None,
        };
        let k8s = Self::from_kubernetes(&env)?;
        match (explicit, k8s) {
            (Some(given), Some((k8s, k8s_origin))) if given != k8s => Err(ShardError::Conflict {
                origin: if flag.is_some() { "--shard" } else { "REGSYNC_SHARD" }.to_string(),
                given,
                k8s_origin,
                k8s,
            }),
            (Some(given), _) => Ok(Some(given)),
            (None, k8s) => Ok(k8s.map(|(s, _)| s)),
        }
    }

    fn from_kubernetes(env: &impl Fn(&str) -> Option<String>) -> Result<Option<(Shard, String)>, ShardError> {
        let Some(count) = env("REGSYNC_SHARDS").filter(|v| !v.trim().is_empty()) else { return Ok(None) };
        let n = |origin: &str| -> Result<u64, ShardError> {
            count.trim().parse().map_err(|_| ShardError::Malformed { origin: origin.into(), value: count.clone() })
        };
        if let Some(index) = env("JOB_COMPLETION_INDEX").filter(|v| !v.trim().is_empty()) {
            let origin = "JOB_COMPLETION_INDEX with REGSYNC_SHARDS";
            let i = index
                .trim()
                .parse()
                .map_err(|_| ShardError::Malformed { origin: origin.into(), value: index.clone() })?;
            return Ok(Some((Self::checked(i, n(origin)?, origin)?, origin.to_string())));
        }
        let origin = "the HOSTNAME ordinal with REGSYNC_SHARDS";
        let host = env("HOSTNAME").unwrap_or_default();
        let ordinal =
            host.rsplit_once('-').map(|(_, o)| o).filter(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()));
        let Some(ordinal) = ordinal else {
            return Err(ShardError::Malformed { origin: origin.into(), value: host });
        };
        let i = ordinal.parse().map_err(|_| ShardError::Malformed { origin: origin.into(), value: host.clone() })?;
        Ok(Some((Self::checked(i, n(origin)?, origin)?, origin.to_string())))
    }

    /// True when `unit` (a target repository) is this shard's.
    pub fn owns(&self, unit: &str) -> bool {
        owner(unit, self.count) == self.index
    }
}

/// The shard of `count` that owns `unit`: the one whose hash with the unit is highest.
pub fn owner(unit: &str, count: u32) -> u32 {
    (0..count).max_by_key(|&i| (weight(unit, i), std::cmp::Reverse(i))).unwrap_or(0)
}

/// A stable weight for (unit, shard): the first 8 bytes of sha256, the same
/// on every machine, build and version.
fn weight(unit: &str, shard: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(unit.as_bytes());
    h.update([0]);
    h.update(shard.to_be_bytes());
    u64::from_be_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn values_parse_or_say_why() {
        assert_eq!(Shard::parse("1/3", "--shard"), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(Shard::parse(" 0 / 1 ", "--shard"), Ok(Shard { index: 0, count: 1 }));
        for bad in ["", "1", "a/3", "1/b", "-1/3", "1/3/4", "+1/3"] {
            assert!(matches!(Shard::parse(bad, "--shard"), Err(ShardError::Malformed { .. })), "{bad:?}");
        }
        for (bad, i, n) in [("3/3", 3, 3), ("0/0", 0, 0), ("7/2", 7, 2)] {
            assert_eq!(
                Shard::parse(bad, "--shard"),
                Err(ShardError::OutOfRange { origin: "--shard".into(), index: i, count: n })
            );
        }
        assert_eq!(
            Shard::parse("3/3", "--shard").unwrap_err().to_string(),
            "--shard: shard 3 of 3 does not exist: I must be below N, and N above 0"
        );
    }

    #[test]
    fn the_flag_then_the_environment_then_kubernetes() {
        assert_eq!(Shard::resolve(None, env(&[])), Ok(None));
        assert_eq!(
            Shard::resolve(Some("1/2"), env(&[("REGSYNC_SHARD", "0/2")])),
            Ok(Some(Shard { index: 1, count: 2 }))
        );
        assert_eq!(Shard::resolve(None, env(&[("REGSYNC_SHARD", "0/2")])), Ok(Some(Shard { index: 0, count: 2 })));
        let job = env(&[("JOB_COMPLETION_INDEX", "2"), ("REGSYNC_SHARDS", "4")]);
        assert_eq!(Shard::resolve(None, job), Ok(Some(Shard { index: 2, count: 4 })));
        let sts = env(&[("HOSTNAME", "regsync-shard-3"), ("REGSYNC_SHARDS", "5")]);
        assert_eq!(Shard::resolve(None, sts), Ok(Some(Shard { index: 3, count: 5 })));
        // Agreeing explicit settings are fine; disagreeing ones are an error.
        let job = env(&[("JOB_COMPLETION_INDEX", "1"), ("REGSYNC_SHARDS", "3")]);
        assert_eq!(Shard::resolve(Some("1/3"), &job), Ok(Some(Shard { index: 1, count: 3 })));
        let e = Shard::resolve(Some("1/4"), &job).unwrap_err().to_string();
        assert_eq!(
            e,
            "--shard says shard 1/4, but JOB_COMPLETION_INDEX with REGSYNC_SHARDS says 1/3: run each pod with its own index, or set neither"
        );
        assert!(Shard::resolve(None, env(&[("HOSTNAME", "regsync"), ("REGSYNC_SHARDS", "3")])).is_err());
        assert!(Shard::resolve(None, env(&[("JOB_COMPLETION_INDEX", "3"), ("REGSYNC_SHARDS", "3")])).is_err());
        assert!(Shard::resolve(None, env(&[("JOB_COMPLETION_INDEX", "0"), ("REGSYNC_SHARDS", "x")])).is_err());
    }

    #[test]
    fn every_unit_has_exactly_one_owner_and_owners_are_stable() {
        let units: Vec<String> = (0..2000).map(|i| format!("reg.example/team-{}/app-{i}", i % 17)).collect();
        for n in [1u32, 2, 3, 8] {
            for u in &units {
                let owners = (0..n).filter(|&i| Shard { index: i, count: n }.owns(u)).count();
                assert_eq!(owners, 1, "{u} with {n} shards");
            }
        }
        // Pinned values: the assignment must never change between builds or machines.
        let pinned = ["a", "b", "c", "reg.example/library/alpine"].map(|u| owner(u, 4));
        assert_eq!(pinned, [3, 2, 3, 0]);
    }

    /// Balance and movement (issue targets: max/mean ≤ 1.1 at 8 shards;
    /// going from N to N+1 moves at most 1.2/(N+1) of the units).
    #[test]
    fn balanced_and_minimal_movement_on_10000_units() {
        let units: Vec<String> = (0..10_000).map(|i| format!("registry.example/org-{}/repo-{i}", i % 97)).collect();
        for n in [2u32, 4, 8, 16] {
            let mut per = vec![0usize; n as usize];
            for u in &units {
                per[owner(u, n) as usize] += 1;
            }
            let max = *per.iter().max().unwrap() as f64;
            let mean = units.len() as f64 / n as f64;
            if n == 8 {
                assert!(max / mean <= 1.1, "max/mean {} at {n} shards: {per:?}", max / mean);
            }
            let moved = units.iter().filter(|u| owner(u, n) != owner(u, n + 1)).count() as f64 / units.len() as f64;
            assert!(moved <= 1.2 / (n as f64 + 1.0), "{n}→{}: moved {moved}", n + 1);
            // Every moved unit went to the new shard.
            assert!(units.iter().all(|u| owner(u, n) == owner(u, n + 1) || owner(u, n + 1) == n));
        }
    }
}
