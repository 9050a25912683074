//! What a reload changes, decided by comparing processed values (as Vector
//! does): steps are matched by type, source and target, and a matched step
//! whose settings differ is "changed". Client-wide settings (creds and global
//! defaults) changing means the registry client is rebuilt.

use std::collections::HashMap;

use crate::config::{Config, SyncStep};

/// A step's identity across reloads: type, source and target, plus an
/// occurrence number when the same triple appears more than once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepKey(pub String);

impl std::fmt::Display for StepKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The keys of a config's steps, in order.
pub fn keys(steps: &[SyncStep]) -> Vec<StepKey> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    steps
        .iter()
        .map(|s| {
            let base = format!("{} {} -> {}", s.spec.kind.as_str(), s.spec.source, s.spec.target);
            let n = seen.entry(base.clone()).or_default();
            *n += 1;
            StepKey(if *n == 1 { base } else { format!("{base} #{n}") })
        })
        .collect()
}

/// What a reload does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    /// New steps (index in the new config).
    pub added: Vec<usize>,
    /// Steps whose settings changed (index in the new config).
    pub changed: Vec<usize>,
    /// Steps that are gone.
    pub removed: Vec<StepKey>,
    /// Steps left alone (index in the new config).
    pub unchanged: Vec<usize>,
    /// Creds or client-wide defaults changed: rebuild the registry client.
    pub client_changed: bool,
}

impl ConfigDiff {
    /// Treats every kept step as changed (its compiled parts are stale).
    pub fn restart_all(&mut self) {
        self.changed.append(&mut self.unchanged);
        self.changed.sort_unstable();
    }
}

/// Compares an old and a new config.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let old_keys = keys(&old.sync);
    let new_keys = keys(&new.sync);
    let old_by_key: HashMap<&StepKey, &SyncStep> = old_keys.iter().zip(&old.sync).collect();
    let mut d = ConfigDiff::default();
    for (i, (key, step)) in new_keys.iter().zip(&new.sync).enumerate() {
        match old_by_key.get(key) {
            None => d.added.push(i),
            Some(previous) if previous.spec != step.spec => d.changed.push(i),
            Some(_) => d.unchanged.push(i),
        }
    }
    d.removed = old_keys.into_iter().filter(|k| !new_keys.contains(k)).collect();
    let (a, b) = (&old.defaults, &new.defaults);
    d.client_changed = old.creds != new.creds
        || a.parallel != b.parallel
        || a.skip_docker_config != b.skip_docker_config
        || a.user_agent != b.user_agent
        || a.blob_limit != b.blob_limit
        || a.cache_count != b.cache_count
        || a.cache_time != b.cache_time
        || a.limits != b.limits;
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::template::Templates;

    fn cfg(yaml: &str) -> Config {
        load_str(yaml, "t.yml", &Templates::default()).unwrap().config
    }

    const BASE: &str = "sync:\n- {source: a, target: r:5000/a, type: repository, interval: 1h}\n- {source: b, target: r:5000/b, type: repository, interval: 1h}\n- {source: c, target: r:5000/c, type: repository, interval: 1h}\n";

    #[test]
    fn identical_configs_change_nothing() {
        let d = diff(&cfg(BASE), &cfg(BASE));
        assert_eq!(d, ConfigDiff { unchanged: vec![0, 1, 2], ..ConfigDiff::default() });
    }

    #[test]
    fn added_changed_removed_are_told_apart() {
        let new = "sync:\n- {source: z, target: r:5000/z, type: image, interval: 1h}\n- {source: a, target: r:5000/a, type: repository, interval: 1h}\n- {source: b, target: r:5000/b, type: repository, interval: 1h, tags: {allow: [v1]}}\n";
        let d = diff(&cfg(BASE), &cfg(new));
        assert_eq!(d.added, vec![0]);
        assert_eq!(d.unchanged, vec![1], "a moved but is the same step");
        assert_eq!(d.changed, vec![2]);
        assert_eq!(d.removed, vec![StepKey("repository c -> r:5000/c".into())]);
        assert!(!d.client_changed);
    }

    #[test]
    fn defaults_reach_steps_and_creds_reach_the_client() {
        let with_default = format!("defaults: {{interval: 2h}}\n{}", BASE.replace(", interval: 1h", ""));
        let d = diff(&cfg(&with_default), &cfg(&with_default.replace("2h", "3h")));
        assert_eq!(d.changed, vec![0, 1, 2], "a default merged into every step changes them");
        let creds = format!("creds: [{{registry: r:5000, tls: disabled}}]\n{BASE}");
        let d = diff(&cfg(BASE), &cfg(&creds));
        assert!(d.client_changed);
        assert_eq!(d.unchanged.len(), 3);
    }

    #[test]
    fn duplicate_steps_get_distinct_keys() {
        let dup = "sync:\n- {source: a, target: r:5000/a, type: repository, interval: 1h}\n- {source: a, target: r:5000/a, type: repository, interval: 2h}\n";
        let k = keys(&cfg(dup).sync);
        assert_ne!(k[0], k[1]);
    }
}
