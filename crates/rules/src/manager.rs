//! The rules manager: loads rule files, runs one task per group at the group's interval, carries
//! alert state over reloads, and answers the API's questions through [`RulesView`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgeprom_config::Config;
use edgeprom_model::rules::{GroupStatus, RulesView};
use edgeprom_storage::Storage;
use tokio::sync::watch;

use crate::RulesError;
use crate::file::RuleFile;
use crate::group::{EvalContext, Group, mark_stale};
use crate::metrics::RuleMetrics;
use crate::notifier::Notifier;

struct Running {
    key: (PathBuf, String),
    group: Arc<Mutex<Group>>,
    stop: watch::Sender<bool>,
}

/// Runs rule groups over storage and hands their alerts to the notifier.
pub struct Manager {
    storage: Arc<Storage>,
    notifier: Arc<Notifier>,
    metrics: RuleMetrics,
    base: EvalContext,
    context: RwLock<Arc<EvalContext>>,
    groups: Mutex<Vec<Running>>,
    /// Set by the first successful load: only groups loaded at start restore `for` state, as
    /// in Prometheus (later ones start fresh or take over a running group's state).
    loaded: AtomicBool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A stable offset within the interval per group, so groups do not all evaluate at once and a
/// restart keeps each group's phase (Prometheus hashes the same two strings).
fn phase(file: &str, name: &str, interval_ms: i64) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in file.bytes().chain([0xff]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    (h % interval_ms.max(1) as u64) as i64
}

impl Manager {
    /// A manager over `storage`; `base` holds the engine and the alert flags (its external
    /// labels are replaced by each config's).
    pub fn new(
        storage: Arc<Storage>,
        notifier: Arc<Notifier>,
        metrics: RuleMetrics,
        base: EvalContext,
    ) -> Manager {
        Manager {
            storage,
            notifier,
            metrics,
            context: RwLock::new(Arc::new(base.clone())),
            base,
            groups: Mutex::new(Vec::new()),
            loaded: AtomicBool::new(false),
        }
    }

    /// Loads `config.rule_files` and replaces the running groups. On an error nothing changes.
    /// A group that stays (same file and name) keeps the state of every rule that stays (same
    /// name and labels): pending alerts keep counting `for`, firing ones keep firing.
    /// Must be called from within a tokio runtime.
    pub fn apply_config(&self, config: &Config) -> Result<(), RulesError> {
        let files = config
            .rule_files
            .iter()
            .map(|p| RuleFile::load(p).map_err(RulesError::File))
            .collect::<Result<Vec<_>, _>>()?;
        let ctx = Arc::new(EvalContext {
            external_labels: config.global.external_labels.clone(),
            ..self.base.clone()
        });
        *self.context.write().unwrap_or_else(|e| e.into_inner()) = ctx.clone();
        self.notifier
            .apply_config(&config.alerting, &config.global.external_labels);

        let mut running = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let first_load = !self.loaded.swap(true, Ordering::SeqCst);
        let mut old: HashMap<(PathBuf, String), Running> =
            running.drain(..).map(|r| (r.key.clone(), r)).collect();
        let mut next = Vec::new();
        for f in files {
            for spec in f.groups {
                let interval = spec
                    .interval
                    .unwrap_or(config.global.evaluation_interval)
                    .as_std();
                let offset = spec
                    .query_offset
                    .unwrap_or(config.global.rule_query_offset)
                    .as_std();
                let key = (spec.file.clone(), spec.name.clone());
                let mut group = Group::new(spec, interval, offset);
                group.should_restore = first_load;
                if let Some(prev) = old.remove(&key) {
                    let _ = prev.stop.send(true);
                    let mut prev_group = prev.group.lock().unwrap_or_else(|e| e.into_inner());
                    let mut by_identity: HashMap<_, usize> = HashMap::new();
                    for (i, r) in prev_group.rules.iter().enumerate() {
                        by_identity.entry(r.identity()).or_insert(i);
                    }
                    for rule in &mut group.rules {
                        if let Some(&i) = by_identity.get(&rule.identity()) {
                            rule.copy_state(&mut prev_group.rules[i]);
                        }
                    }
                    group.last_eval = prev_group.last_eval;
                    group.eval_duration = prev_group.eval_duration;
                    group.should_restore = prev_group.should_restore;
                }
                self.metrics
                    .group_loaded(&group.key(), interval.as_secs_f64(), group.rules.len());
                let group = Arc::new(Mutex::new(group));
                let (stop, stopped) = watch::channel(false);
                tokio::spawn(run_group(
                    group.clone(),
                    self.storage.clone(),
                    self.notifier.clone(),
                    self.metrics.clone(),
                    ctx.clone(),
                    stopped,
                ));
                next.push(Running { key, group, stop });
            }
        }
        // Groups that went away: stop them and end their series.
        for (_, prev) in old {
            let _ = prev.stop.send(true);
            let storage = self.storage.clone();
            let metrics = self.metrics.clone();
            tokio::task::spawn_blocking(move || {
                let mut g = prev.group.lock().unwrap_or_else(|e| e.into_inner());
                metrics.group_removed(&g.key());
                mark_stale(&mut g, &storage, now_ms());
            });
        }
        *running = next;
        Ok(())
    }

    /// Stops every group.
    pub fn stop(&self) {
        for r in self.groups.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = r.stop.send(true);
        }
    }
}

impl RulesView for Manager {
    fn groups(&self) -> Vec<GroupStatus> {
        let running: Vec<Arc<Mutex<Group>>> = self
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|r| r.group.clone())
            .collect();
        running
            .iter()
            .map(|g| g.lock().unwrap_or_else(|e| e.into_inner()).status())
            .collect()
    }

    fn alertmanagers(&self) -> Vec<String> {
        self.notifier.alertmanager_urls()
    }
}

async fn run_group(
    group: Arc<Mutex<Group>>,
    storage: Arc<Storage>,
    notifier: Arc<Notifier>,
    metrics: RuleMetrics,
    ctx: Arc<EvalContext>,
    mut stop: watch::Receiver<bool>,
) {
    let (interval_ms, phase_ms) = {
        let g = group.lock().unwrap_or_else(|e| e.into_inner());
        let i = g.interval.as_millis().max(1) as i64;
        (
            i,
            phase(&g.spec.file.display().to_string(), &g.spec.name, i),
        )
    };
    loop {
        // The next evaluation time on this group's grid after now.
        let now = now_ms();
        let next = (now - phase_ms).div_euclid(interval_ms) * interval_ms + phase_ms + interval_ms;
        let wait = Duration::from_millis((next - now).max(0) as u64);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let g = group.clone();
        let s = storage.clone();
        let m = metrics.clone();
        let c = ctx.clone();
        let evaluated = tokio::task::spawn_blocking(move || {
            let mut g = g.lock().unwrap_or_else(|e| e.into_inner());
            g.eval(next, &c, &s, &m)
        })
        .await;
        match evaluated {
            Ok(alerts) => notifier.send(alerts),
            Err(e) => tracing::error!(error = %e, "rule group evaluation panicked"),
        }
    }
}
