//! Noticing config changes: the config file's directory is watched (so
//! editors that write a new file and rename it over the old one, and
//! Kubernetes ConfigMap symlink swaps, are seen), events are debounced, and a
//! reload is asked for only when the file's content really changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc::UnboundedSender;

/// Quiet time after the last event before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(250);

fn content_hash(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok().map(|b| Sha256::digest(&b).to_vec())
}

/// Watches `config`; sends `()` on `reload` when its content changes. The
/// returned watcher must be kept alive.
pub fn watch(config: &str, reload: UnboundedSender<()>) -> Result<notify::RecommendedWatcher, String> {
    let path = PathBuf::from(config);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Other files in the directory (logs, editor swap files) are not ours; a
        // ConfigMap update swaps the `..data` symlink.
        let relevant = event.is_ok_and(|e| {
            e.paths
                .iter()
                .any(|p| p.file_name().is_some_and(|f| f == name.as_os_str() || f.to_string_lossy().starts_with("..")))
        });
        if relevant {
            let _ = events_tx.send(());
        }
    })
    .map_err(|e| e.to_string())?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(|e| e.to_string())?;
    let mut last = content_hash(&path);
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
            let now = content_hash(&path);
            if now.is_some() && now != last {
                last = now;
                if reload.send(()).is_err() {
                    return;
                }
            }
        }
    });
    Ok(watcher)
}
