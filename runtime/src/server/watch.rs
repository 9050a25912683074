//! Noticing config changes: the directories of the config file and of its
//! plugin files are watched (so editors that write a new file and rename it
//! over the old one, and Kubernetes ConfigMap symlink swaps, are seen),
//! events are debounced, and a reload is asked for only when the content of
//! one of those files really changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc::UnboundedSender;

/// Quiet time after the last event before the files are read.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// The files whose content decides a reload.
type Files = Arc<Mutex<Vec<PathBuf>>>;

fn content_hash(files: &[PathBuf]) -> Option<Vec<u8>> {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.as_os_str().as_encoded_bytes());
        // A plugin file that vanished counts as a change; the config file must be readable.
        match std::fs::read(f) {
            Ok(b) => h.update(Sha256::digest(&b)),
            Err(_) if f != &files[0] => h.update(b"missing"),
            Err(_) => return None,
        }
    }
    Some(h.finalize().to_vec())
}

fn dir_of(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// A running watch; dropping it stops watching.
pub struct Watch {
    watcher: notify::RecommendedWatcher,
    files: Files,
    /// Hash of the files' content when last seen.
    last: Arc<Mutex<Option<Vec<u8>>>>,
    dirs: BTreeSet<PathBuf>,
}

impl Watch {
    /// Also watches these plugin files (replacing the previous list).
    pub fn set_plugins(&mut self, plugins: &[PathBuf]) {
        {
            let mut files = self.files.lock().expect("watch lock poisoned");
            if files[1..] == *plugins {
                return;
            }
            files.truncate(1);
            files.extend(plugins.iter().cloned());
            // A new list is a new baseline, not a change.
            *self.last.lock().expect("watch lock poisoned") = content_hash(&files);
        }
        // Not under the lock: the watcher's event callback takes it too.
        for f in plugins {
            let dir = dir_of(f);
            if !self.dirs.contains(&dir) {
                match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        self.dirs.insert(dir);
                    }
                    Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "Cannot watch plugin directory"),
                }
            }
        }
    }
}

/// Watches `config` (and later its plugins); sends `()` on `reload` when a
/// file's content changes.
pub fn watch(config: &str, reload: UnboundedSender<()>) -> Result<Watch, String> {
    let path = PathBuf::from(config);
    let dir = dir_of(&path);
    let files: Files = Arc::new(Mutex::new(vec![path]));
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let names = files.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Other files in the directories (logs, editor swap files) are not ours;
        // a ConfigMap update swaps the `..data` symlink.
        let names = names.lock().expect("watch lock poisoned");
        let relevant = event.is_ok_and(|e| {
            e.paths.iter().any(|p| {
                p.file_name().is_some_and(|f| {
                    f.to_string_lossy().starts_with("..") || names.iter().any(|n| n.file_name() == Some(f))
                })
            })
        });
        if relevant {
            let _ = events_tx.send(());
        }
    })
    .map_err(|e| e.to_string())?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(|e| e.to_string())?;
    let current = files.clone();
    let last = Arc::new(Mutex::new(content_hash(&current.lock().expect("watch lock poisoned"))));
    let seen = last.clone();
    tokio::spawn(async move {
        while events_rx.recv().await.is_some() {
            // Let a burst of events (write, rename, chmod) settle.
            loop {
                match tokio::time::timeout(DEBOUNCE, events_rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let list = current.lock().expect("watch lock poisoned").clone();
            let now = content_hash(&list);
            let changed = {
                let mut last = seen.lock().expect("watch lock poisoned");
                let changed = now.is_some() && now != *last;
                if changed {
                    *last = now;
                }
                changed
            };
            if changed && reload.send(()).is_err() {
                return;
            }
        }
    });
    Ok(Watch { watcher, files, last, dirs: BTreeSet::from([dir]) })
}
