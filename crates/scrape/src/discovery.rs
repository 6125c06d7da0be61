//! File-based service discovery (`file_sd_configs`): target files are re-read when they change.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use edgeprom_config::{FileSdConfig, TargetGroup, file_sd};
use tokio_util::sync::CancellationToken;

/// How often files are checked for changes. A stat per file per second is cheap, and it notices an
/// edit as quickly as users expect from Prometheus's inotify-based watcher.
const POLL: Duration = Duration::from_secs(1);

type Stamp = Option<(SystemTime, u64)>;

struct Watcher {
    configs: Vec<FileSdConfig>,
    stamps: BTreeMap<PathBuf, Stamp>,
    groups: BTreeMap<PathBuf, Vec<TargetGroup>>,
}

impl Watcher {
    /// Re-reads files that are new or changed and forgets deleted ones; true when anything changed.
    fn refresh(&mut self, force: bool) -> bool {
        let mut stamps = BTreeMap::new();
        for cfg in &self.configs {
            for path in file_sd::expand(cfg) {
                let stamp = std::fs::metadata(&path)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())));
                stamps.insert(path, stamp);
            }
        }
        let mut changed = false;
        for (path, stamp) in &stamps {
            if !force && self.stamps.get(path) == Some(stamp) {
                continue;
            }
            match file_sd::read_target_file(path) {
                Ok(groups) => {
                    changed |= self.groups.get(path) != Some(&groups);
                    self.groups.insert(path.clone(), groups);
                }
                // Prometheus keeps the last good targets of a file that fails to parse.
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "reading file_sd target file")
                }
            }
        }
        let before = self.groups.len();
        self.groups.retain(|p, _| stamps.contains_key(p));
        changed |= self.groups.len() != before;
        self.stamps = stamps;
        changed
    }
}

/// Reads the job's target files now and returns their groups, then watches them in a task that calls
/// `on_change(job, groups)` whenever they change, until the returned token is cancelled.
pub(crate) fn start_file_sd(
    job: String,
    configs: Vec<FileSdConfig>,
    on_change: impl Fn(String, BTreeMap<PathBuf, Vec<TargetGroup>>) + Send + 'static,
) -> (BTreeMap<PathBuf, Vec<TargetGroup>>, CancellationToken) {
    let refresh = configs
        .iter()
        .map(|c| c.refresh_interval.as_std())
        .min()
        .unwrap_or(Duration::from_secs(300));
    let mut w = Watcher {
        configs,
        stamps: BTreeMap::new(),
        groups: BTreeMap::new(),
    };
    w.refresh(true);
    let initial = w.groups.clone();
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        let mut last_full = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
            let force = last_full.elapsed() >= refresh;
            if force {
                last_full = Instant::now();
            }
            // Target files are small; reading them inline costs less than a blocking-pool hop.
            if w.refresh(force) {
                on_change(job.clone(), w.groups.clone());
            }
        }
    });
    (initial, token)
}
