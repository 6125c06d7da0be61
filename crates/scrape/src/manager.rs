//! The scrape manager: one pool per job, one loop per target, kept in step with the configuration
//! and with file-based discovery.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use edgeprom_config::{Config, ScrapeConfig, TargetGroup};
use edgeprom_model::{Appendable, Labels};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::client::JobClient;
use crate::discovery;
use crate::exemplars::ExemplarStorage;
use crate::metadata::MetadataSnapshot;
use crate::metrics::{JobLabels, ScrapeMetrics};
use crate::scrape_loop::{LoopSettings, ScrapeLoop, StopHandle};
use crate::target::{Target, populate_labels};

/// A target's health as `/api/v1/targets` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetHealth {
    /// Not scraped yet.
    Unknown,
    /// The last scrape succeeded.
    Up,
    /// The last scrape failed.
    Down,
}

impl TargetHealth {
    /// Prometheus's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealth::Unknown => "unknown",
            TargetHealth::Up => "up",
            TargetHealth::Down => "down",
        }
    }
}

/// A target and the outcome of its last scrape.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    /// The target.
    pub target: Target,
    /// Health after the last scrape.
    pub health: TargetHealth,
    /// The last scrape's error, empty when it succeeded.
    pub last_error: String,
    /// When the last scrape started.
    pub last_scrape: Option<SystemTime>,
    /// How long the last scrape took.
    pub last_scrape_duration: Duration,
}

impl TargetStatus {
    fn new(target: Target) -> TargetStatus {
        TargetStatus {
            target,
            health: TargetHealth::Unknown,
            last_error: String::new(),
            last_scrape: None,
            last_scrape_duration: Duration::ZERO,
        }
    }
}

/// An active target and the metric metadata its scrapes declared.
#[derive(Debug, Clone)]
pub struct TargetMetadata {
    /// The target.
    pub target: Target,
    /// Its families' HELP/TYPE/UNIT, sorted by family name.
    pub metadata: MetadataSnapshot,
}

/// A discovered target that is not scraped, and why.
#[derive(Debug, Clone)]
pub struct DroppedTarget {
    /// The job.
    pub job: String,
    /// Its labels before relabelling.
    pub discovered: Labels,
    /// Why: dropped by relabelling (empty) or an invalid target.
    pub reason: String,
}

struct RunningLoop {
    settings: watch::Sender<Arc<LoopSettings>>,
    stop: StopHandle,
    status: Arc<Mutex<TargetStatus>>,
    metadata: Arc<Mutex<MetadataSnapshot>>,
}

impl RunningLoop {
    fn stop(&self, mark_stale: bool) {
        self.stop.mark_stale.store(mark_stale, Ordering::Relaxed);
        self.stop.cancel.cancel();
    }
}

struct Pool {
    config: Arc<ScrapeConfig>,
    client: Arc<Result<JobClient, String>>,
    file_groups: BTreeMap<PathBuf, Vec<TargetGroup>>,
    loops: HashMap<String, RunningLoop>,
    dropped: Vec<DroppedTarget>,
    /// Targets not scraped because the job exceeds `target_limit`.
    over_limit: Vec<TargetStatus>,
    discovery: Option<CancellationToken>,
}

struct Shared {
    storage: Arc<dyn Appendable>,
    metrics: Arc<ScrapeMetrics>,
    exemplars: Option<Arc<ExemplarStorage>>,
    pools: Mutex<HashMap<String, Pool>>,
}

/// Runs every job's targets. Must be created and used inside a tokio runtime.
pub struct Manager {
    shared: Arc<Shared>,
}

impl Manager {
    /// A manager appending to `storage` and updating `metrics`; it scrapes nothing until
    /// [`Manager::apply_config`].
    pub fn new(storage: Arc<dyn Appendable>, metrics: Arc<ScrapeMetrics>) -> Manager {
        Manager::with_exemplars(storage, metrics, None)
    }

    /// Like [`Manager::new`], also storing the exemplars of every committed scrape in
    /// `exemplars` (Prometheus's `--enable-feature=exemplar-storage`; `None`: dropped).
    pub fn with_exemplars(
        storage: Arc<dyn Appendable>,
        metrics: Arc<ScrapeMetrics>,
        exemplars: Option<Arc<ExemplarStorage>>,
    ) -> Manager {
        Manager {
            shared: Arc::new(Shared {
                storage,
                metrics,
                exemplars,
                pools: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Brings the running loops in line with `cfg`: loops of targets that remain keep running (they
    /// receive the new job settings and keep their schedule), new targets start, vanished targets stop
    /// and get stale markers.
    pub fn apply_config(&self, cfg: &Config) {
        let mut pools = lock(&self.shared.pools);
        let wanted: HashMap<&str, &ScrapeConfig> = cfg
            .scrape_configs
            .iter()
            .map(|j| (j.job_name.as_str(), j))
            .collect();
        pools.retain(|job, pool| {
            let keep = wanted.contains_key(job.as_str());
            if !keep {
                pool.shutdown(true);
                self.shared.metrics.pool_targets.remove(&JobLabels {
                    scrape_job: job.clone(),
                });
            }
            keep
        });
        for job in &cfg.scrape_configs {
            let client = Arc::new(JobClient::new(job));
            if let Err(e) = client.as_ref() {
                tracing::error!(job = %job.job_name, error = %e, "cannot build HTTP client; the job's scrapes will fail");
            }
            let pool = pools.entry(job.job_name.clone()).or_insert_with(|| Pool {
                config: Arc::new(job.clone()),
                client: client.clone(),
                file_groups: BTreeMap::new(),
                loops: HashMap::new(),
                dropped: Vec::new(),
                over_limit: Vec::new(),
                discovery: None,
            });
            pool.config = Arc::new(job.clone());
            pool.client = client;
            if let Some(d) = pool.discovery.take() {
                d.cancel();
            }
            pool.file_groups = BTreeMap::new();
            if !job.file_sd_configs.is_empty() {
                let (groups, token) = discovery::start_file_sd(
                    job.job_name.clone(),
                    job.file_sd_configs.clone(),
                    on_discovery(Arc::downgrade(&self.shared)),
                );
                pool.file_groups = groups;
                pool.discovery = Some(token);
            }
            sync_pool(&self.shared, &job.job_name, pool);
        }
        self.shared.metrics.pools.set(pools.len() as i64);
    }

    /// Every active target and its last scrape's outcome, by job then labels.
    pub fn targets(&self) -> Vec<TargetStatus> {
        let pools = lock(&self.shared.pools);
        let mut out: Vec<TargetStatus> = pools
            .values()
            .flat_map(|p| {
                p.loops
                    .values()
                    .map(|l| lock(&l.status).clone())
                    .chain(p.over_limit.iter().cloned())
            })
            .collect();
        out.sort_by(|a, b| {
            (a.target.job.as_str(), &a.target.labels)
                .cmp(&(b.target.job.as_str(), &b.target.labels))
        });
        out
    }

    /// The metric metadata of every scraped target, in the order of [`Manager::targets`]. A
    /// target's metadata goes with it when it stops being scraped, as in Prometheus.
    pub fn metadata(&self) -> Vec<TargetMetadata> {
        let pools = lock(&self.shared.pools);
        let mut out: Vec<TargetMetadata> = pools
            .values()
            .flat_map(|p| p.loops.values())
            .map(|l| TargetMetadata {
                target: lock(&l.status).target.clone(),
                metadata: lock(&l.metadata).clone(),
            })
            .collect();
        out.sort_by(|a, b| {
            (a.target.job.as_str(), &a.target.labels)
                .cmp(&(b.target.job.as_str(), &b.target.labels))
        });
        out
    }

    /// Discovered targets that are not scraped.
    pub fn dropped_targets(&self) -> Vec<DroppedTarget> {
        lock(&self.shared.pools)
            .values()
            .flat_map(|p| p.dropped.iter().cloned())
            .collect()
    }

    /// Stops every loop without stale markers (the process is shutting down, the data is not gone).
    pub fn stop(&self) {
        for pool in lock(&self.shared.pools).values_mut() {
            pool.shutdown(false);
        }
    }
}

impl Pool {
    fn shutdown(&mut self, mark_stale: bool) {
        if let Some(d) = self.discovery.take() {
            d.cancel();
        }
        for (_, l) in self.loops.drain() {
            l.stop(mark_stale);
        }
    }
}

fn on_discovery(
    shared: Weak<Shared>,
) -> impl Fn(String, BTreeMap<PathBuf, Vec<TargetGroup>>) + Send + 'static {
    move |job, groups| {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut pools = lock(&shared.pools);
        if let Some(pool) = pools.get_mut(&job) {
            pool.file_groups = groups;
            sync_pool(&shared, &job, pool);
        }
    }
}

/// Recomputes a pool's targets from its static and discovered groups and starts/stops/updates loops.
fn sync_pool(shared: &Shared, job: &str, pool: &mut Pool) {
    let cfg = pool.config.clone();
    let mut active: BTreeMap<String, Target> = BTreeMap::new();
    pool.dropped.clear();
    let groups = cfg
        .static_configs
        .iter()
        .chain(pool.file_groups.values().flatten());
    for group in groups {
        for address in &group.targets {
            match populate_labels(&cfg, &group.labels, address) {
                Ok((Some(t), _)) => {
                    active.insert(t.key(), t);
                }
                Ok((None, discovered)) => pool.dropped.push(DroppedTarget {
                    job: job.to_string(),
                    discovered,
                    reason: String::new(),
                }),
                Err(e) => {
                    tracing::warn!(job, address, error = %e, "invalid target");
                    pool.dropped.push(DroppedTarget {
                        job: job.to_string(),
                        discovered: Labels::from_pairs([("__address__", address.as_str())]),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    pool.over_limit.clear();
    if cfg.target_limit > 0 && active.len() as u64 > cfg.target_limit {
        // Prometheus stops the whole pool rather than choosing which targets to keep.
        shared.metrics.pool_exceeded_target_limit.inc();
        let error = format!(
            "target_limit exceeded (number of targets: {}, limit: {})",
            active.len(),
            cfg.target_limit
        );
        for (_, l) in pool.loops.drain() {
            l.stop(true);
        }
        pool.over_limit = active
            .into_values()
            .map(|t| TargetStatus {
                health: TargetHealth::Down,
                last_error: error.clone(),
                ..TargetStatus::new(t)
            })
            .collect();
        return;
    }

    pool.loops.retain(|key, l| {
        let keep = active.contains_key(key);
        if !keep {
            l.stop(true);
        }
        keep
    });
    for (key, target) in active {
        let settings = Arc::new(LoopSettings {
            target: target.clone(),
            config: cfg.clone(),
            client: pool.client.clone(),
        });
        if let Some(running) = pool.loops.get(&key) {
            lock(&running.status).target = target;
            // A send error means the loop already ended; it is replaced on the next sync.
            let _ = running.settings.send(settings);
            continue;
        }
        let status = Arc::new(Mutex::new(TargetStatus::new(target)));
        let (tx, rx) = watch::channel(settings.clone());
        let stop = StopHandle {
            cancel: CancellationToken::new(),
            mark_stale: Arc::new(AtomicBool::new(false)),
        };
        let sl = ScrapeLoop::new(
            settings,
            shared.storage.clone(),
            shared.metrics.clone(),
            status.clone(),
            shared.exemplars.clone(),
        );
        let metadata = sl.metadata_handle();
        tokio::spawn(sl.run(rx, stop.clone()));
        pool.loops.insert(
            key,
            RunningLoop {
                settings: tx,
                stop,
                status,
                metadata,
            },
        );
    }
    shared
        .metrics
        .pool_targets
        .get_or_create(&JobLabels {
            scrape_job: job.to_string(),
        })
        .set(pool.loops.len() as i64);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing under these locks leaves data half-updated on panic; keep scraping.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
