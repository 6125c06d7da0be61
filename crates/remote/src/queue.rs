//! One remote-write queue: a WAL watcher thread that follows the log and hands each commit's
//! samples to shards, and the shards (tokio tasks) that batch, send and retry them.
//!
//! * **Nothing is copied in memory beyond the shards' bounded buffers**: the WAL is the queue. When
//!   the receiver is down the shards fill up, the watcher stops reading, and the WAL is kept for it
//!   ([`Storage::hold_wal`]); when the receiver returns, reading resumes where it stopped.
//! * **Per-series order**: a series always goes to the same shard (by its ref), and a shard sends
//!   one batch at a time, retrying it until it is accepted or refused for good.
//! * **Exactly where it stopped after a restart**: every acknowledged batch moves the shard's
//!   position in the progress file ([`crate::progress`]); on start, each shard skips the commits it
//!   had already sent, so a receiver never sees a sample twice (Prometheus rejects a resent sample
//!   older than the series' newest, and would drop the whole request with it).
//! * **Resharding** follows the sample rate as Prometheus's does (desired shards = time per sample
//!   × (rate in + 5 % of the backlog per second)), but only at a point where every shard is empty,
//!   so that the series-to-shard mapping never changes under unsent samples.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use edgeprom_config::RemoteWriteConfig;
use edgeprom_model::{Labels, LabelsBuilder, Sample};
use edgeprom_storage::Storage;
use edgeprom_storage::wal::{Record, RecordKinds, TailStep, WalPosition, WalTail, series_before};
use tokio::sync::{mpsc, watch};

use crate::client::RemoteWriteClient;
use crate::codec::{BatchSeries, FamilyMetadata, WireLabels, WriteBatch};
use crate::metrics::QueueMetrics;
use crate::progress::{Progress, Saved, ShardPosition, url_hash};

/// A sample read from the WAL on its way to a shard.
struct Queued {
    r: u32,
    labels: WireLabels,
    t: i64,
    v: f64,
}

/// One WAL commit's samples for one shard.
struct Msg {
    samples: Vec<Queued>,
    /// The shard's samples of this commit before `samples[0]` (sent before a restart).
    first: u32,
    /// End of the commit: once these samples are sent, the shard has everything before it.
    end: WalPosition,
}

/// What the watcher, the shards and the queue's owner share.
struct Shared {
    cfg: RemoteWriteConfig,
    storage: Arc<Storage>,
    client: RemoteWriteClient,
    metrics: QueueMetrics,
    progress: Mutex<Progress>,
    progress_path: PathBuf,
    /// How long shards may take to send what they hold when stopping or resharding.
    flush_deadline: Duration,
    /// Set to stop reading the WAL; shards then send what they hold.
    stopping: AtomicBool,
    /// Set when the flush deadline passes: shards give up at once, leaving the rest for next time.
    abort: watch::Sender<bool>,
    /// Samples acknowledged, and nanoseconds spent in successful sends, for the shard calculation.
    sent: AtomicU64,
    send_nanos: AtomicU64,
    retried: AtomicU64,
}

/// Where the sender gets metric metadata from (the scrape manager, in the binary): every family
/// currently declared by some target.
pub trait MetadataSource: Send + Sync {
    /// The metadata of every scraped family; duplicates are removed by the caller.
    fn metric_metadata(&self) -> Vec<FamilyMetadata>;
}

struct Shard {
    tx: mpsc::UnboundedSender<Msg>,
    /// Samples handed to the shard and not yet acknowledged or given up.
    pending: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// A running queue. Dropping it without [`Queue::stop`] stops it without flushing.
pub struct Queue {
    shared: Arc<Shared>,
    watcher: Option<JoinHandle<()>>,
    metadata: Option<tokio::task::JoinHandle<()>>,
}

/// Why a queue could not start.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The HTTP client could not be built (TLS files, proxy URL…).
    #[error("remote_write {name}: {source}")]
    Client {
        /// The queue's name.
        name: String,
        /// The cause.
        source: crate::client::ClientBuildError,
    },
    /// The progress file could not be created.
    #[error("remote_write {name}: {source}")]
    Progress {
        /// The queue's name.
        name: String,
        /// The cause.
        source: crate::progress::ProgressError,
    },
    /// The watcher thread could not be started.
    #[error("remote_write {name}: starting the WAL watcher: {source}")]
    Thread {
        /// The queue's name.
        name: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// How often the watcher recomputes the number of shards.
const RESHARD_EVERY: Duration = Duration::from_secs(10);
/// How long the watcher sleeps when the WAL has nothing new.
const IDLE_POLL: Duration = Duration::from_millis(25);

impl Queue {
    /// Starts the queue: resumes from its progress file under `<data>/remote/` if one exists for
    /// this URL, else from the WAL's current end.
    pub(crate) fn start(
        cfg: RemoteWriteConfig,
        external_labels: Labels,
        storage: Arc<Storage>,
        metrics: QueueMetrics,
        metadata: Option<Arc<dyn MetadataSource>>,
        flush_deadline: Duration,
        runtime: tokio::runtime::Handle,
    ) -> Result<Queue, QueueError> {
        let name = cfg.name.clone();
        let client = RemoteWriteClient::new(&cfg).map_err(|source| QueueError::Client {
            name: name.clone(),
            source,
        })?;
        let progress_path = storage
            .dir()
            .join("remote")
            .join(format!("{}.progress", sanitize(&name)));
        let hash = url_hash(&cfg.url);
        let saved = match Progress::load(&progress_path, hash) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(queue = %name, error = %e, "remote-write progress unusable; sending from the WAL's end");
                None
            }
        };
        let (start, skip) = match &saved {
            Some(s) if !s.shards.is_empty() => (s.resume_from(), s.shards.clone()),
            _ => {
                let now = storage.wal_position();
                (
                    now,
                    vec![ShardPosition::at(now); cfg.queue_config.min_shards.max(1)],
                )
            }
        };
        if cfg.send_exemplars {
            tracing::warn!(queue = %name, "send_exemplars: exemplars are kept in memory, not in the WAL this queue reads, so they are not forwarded");
        }
        // Hold the WAL before anything else can checkpoint it away.
        storage.hold_wal(&name, Some(start));
        let progress = Progress::create(&progress_path, hash, skip.clone()).map_err(|source| {
            QueueError::Progress {
                name: name.clone(),
                source,
            }
        })?;
        let q = &cfg.queue_config;
        metrics.shards_min.set(q.min_shards as i64);
        metrics.shards_max.set(q.max_shards as i64);
        metrics.shard_capacity.set(q.capacity as i64);
        let (abort, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            cfg,
            storage,
            client,
            metrics,
            progress: Mutex::new(progress),
            progress_path,
            flush_deadline,
            stopping: AtomicBool::new(false),
            abort,
            sent: AtomicU64::new(0),
            send_nanos: AtomicU64::new(0),
            retried: AtomicU64::new(0),
        });
        let metadata = metadata
            .filter(|_| shared.cfg.metadata_config.send)
            .map(|source| runtime.spawn(send_metadata(shared.clone(), source)));
        let s = shared.clone();
        let watcher = std::thread::Builder::new()
            .name(format!("remote-{name}"))
            .spawn(move || {
                let mut w = Watcher::new(s, external_labels, runtime, Saved { shards: skip });
                w.run(start);
            })
            .map_err(|source| QueueError::Thread {
                name: name.clone(),
                source,
            })?;
        tracing::info!(queue = %name, url = %shared.cfg.url, segment = start.segment, offset = start.offset, resumed = saved.is_some(), "remote write started");
        Ok(Queue {
            shared,
            watcher: Some(watcher),
            metadata,
        })
    }

    /// The configuration the queue runs with.
    pub fn config(&self) -> &RemoteWriteConfig {
        &self.shared.cfg
    }

    /// Stops reading the WAL, lets the shards send what they hold for at most the flush deadline,
    /// then stops them; whatever is unsent stays in the WAL for the next start.
    pub async fn stop(mut self) {
        let flush_deadline = self.shared.flush_deadline;
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(m) = self.metadata.take() {
            m.abort();
        }
        let watcher = self.watcher.take();
        let shared = self.shared.clone();
        let abort_later = tokio::spawn(async move {
            tokio::time::sleep(flush_deadline).await;
            shared.abort.send_replace(true);
        });
        if let Some(w) = watcher {
            // The watcher joins its shards before it returns.
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        abort_later.abort();
        tracing::info!(queue = %self.shared.cfg.name, "remote write stopped");
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.abort.send_replace(true);
        if let Some(m) = self.metadata.take() {
            m.abort();
        }
    }
}

/// Keeps a queue name usable as a file name.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Spreads dense series refs over shards.
fn shard_of(r: u32, n: usize) -> usize {
    ((u64::from(r).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % n as u64) as usize
}

struct Watcher {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    external_labels: Labels,
    /// Per series ref, its labels as sent (external labels and relabelling applied, in wire
    /// form), or `None` when relabelling dropped it or it was never defined.
    series: Vec<Option<WireLabels>>,
    shards: Vec<Shard>,
    /// Per shard, what was sent before a restart: commits ending at or before `done`, and the
    /// first `sent` of the shard's samples in the next commit that has any.
    skip: Vec<ShardPosition>,
    /// End of the last commit read.
    read_to: WalPosition,
    enqueued: u64,
    last_reshard: Instant,
    last_rates: (u64, u64, u64, u64),
    desired: f64,
}

impl Watcher {
    fn new(
        shared: Arc<Shared>,
        external_labels: Labels,
        runtime: tokio::runtime::Handle,
        skip: Saved,
    ) -> Watcher {
        let n = skip.shards.len().max(1);
        let mut w = Watcher {
            shared,
            runtime,
            external_labels,
            series: Vec::new(),
            shards: Vec::new(),
            skip: skip.shards,
            read_to: WalPosition::default(),
            enqueued: 0,
            last_reshard: Instant::now(),
            last_rates: (0, 0, 0, 0),
            desired: n as f64,
        };
        w.spawn_shards(n);
        w
    }

    fn spawn_shards(&mut self, n: usize) {
        self.shards = (0..n)
            .map(|i| {
                let (tx, rx) = mpsc::unbounded_channel();
                let pending = Arc::new(AtomicUsize::new(0));
                let task =
                    self.runtime
                        .spawn(run_shard(i, rx, self.shared.clone(), pending.clone()));
                Shard { tx, pending, task }
            })
            .collect();
        self.shared.metrics.shards.set(n as i64);
    }

    fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    fn run(&mut self, start: WalPosition) {
        let wal_dir = self.shared.storage.wal_dir();
        if let Err(e) = series_before(&wal_dir, start, |r| self.on_series(&r)) {
            tracing::error!(queue = %self.shared.cfg.name, error = %e, "reading series from the WAL; samples of series it misses are dropped");
        }
        let mut tail = WalTail::new(&wal_dir, start);
        self.read_to = start;
        let mut records = Vec::new();
        let mut last_progress = Instant::now();
        let mut skipped_seen = 0;
        while !self.stopping() {
            records.clear();
            match tail.next_commit(RecordKinds::SERIES_AND_SAMPLES, &mut records) {
                Ok(TailStep::Commit(end)) => {
                    self.on_commit(&mut records, end);
                    self.read_to = end;
                    self.backpressure();
                }
                Ok(TailStep::Idle) => std::thread::sleep(IDLE_POLL),
                Err(e) => {
                    tracing::error!(queue = %self.shared.cfg.name, error = %e, "reading the WAL");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            let skipped = tail.skipped().0;
            if skipped > skipped_seen {
                self.shared
                    .metrics
                    .wal_skipped_segments
                    .inc_by(skipped - skipped_seen);
                skipped_seen = skipped;
            }
            if last_progress.elapsed() >= Duration::from_millis(500) {
                last_progress = Instant::now();
                self.shared
                    .metrics
                    .wal_segment
                    .set(i64::from(tail.position().segment));
                self.publish_progress();
            }
            if self.last_reshard.elapsed() >= RESHARD_EVERY {
                self.maybe_reshard();
            }
        }
        // Closing the channels lets each shard send what it holds and return.
        let shards = std::mem::take(&mut self.shards);
        let tasks: Vec<_> = shards
            .into_iter()
            .map(|s| {
                drop(s.tx);
                s.task
            })
            .collect();
        self.runtime.block_on(async {
            for t in tasks {
                let _ = t.await;
            }
        });
        self.publish_progress();
    }

    fn on_series(&mut self, r: &Record) {
        let Record::Series(series) = r else { return };
        for s in series {
            let Ok(r) = usize::try_from(s.r) else {
                continue;
            };
            if r >= self.series.len() {
                self.series.resize(r + 1, None);
            }
            self.series[r] = self.outgoing_labels(&s.labels).map(|l| WireLabels::new(&l));
        }
    }

    /// External labels (the series' own win), then `write_relabel_configs`.
    fn outgoing_labels(&self, labels: &Labels) -> Option<Labels> {
        let relabel = &self.shared.cfg.write_relabel_configs;
        if self.external_labels.is_empty() && relabel.is_empty() {
            return Some(labels.clone());
        }
        let mut b: LabelsBuilder = labels.to_builder();
        for l in self.external_labels.iter() {
            if labels.get(&l.name).is_none() {
                b.set(l.name.clone(), l.value.clone());
            }
        }
        if !edgeprom_config::relabel::process_builder(&mut b, relabel) {
            return None;
        }
        let out = b.build();
        (!out.is_empty()).then_some(out)
    }

    fn on_commit(&mut self, records: &mut Vec<Record>, end: WalPosition) {
        let n = self.shards.len();
        let mut per_shard: Vec<Vec<Queued>> = (0..n).map(|_| Vec::new()).collect();
        // Per shard, its samples in this commit skipped as sent before a restart.
        let mut skipped = vec![0u32; n];
        let mut any = vec![false; n];
        let mut dropped = 0u64;
        let mut highest = i64::MIN;
        for rec in records.drain(..) {
            match rec {
                Record::Series(_) => self.on_series(&rec),
                Record::Samples(samples) => {
                    for s in samples {
                        highest = highest.max(s.t);
                        let labels = u32::try_from(s.r)
                            .ok()
                            .and_then(|r| Some((r, self.series.get(r as usize)?.as_ref()?)));
                        let Some((r, labels)) = labels else {
                            dropped += 1;
                            continue;
                        };
                        let i = shard_of(r, n);
                        if let Some(p) = self.skip.get(i) {
                            if end <= p.done {
                                continue;
                            }
                            any[i] = true;
                            if skipped[i] < p.sent {
                                skipped[i] += 1;
                                continue;
                            }
                        }
                        per_shard[i].push(Queued {
                            r,
                            labels: labels.clone(),
                            t: s.t,
                            v: s.v,
                        });
                    }
                }
                Record::Tombstones(_) | Record::Chunks(_) => {}
            }
        }
        // A partly sent commit is skipped only once: the first with samples for the shard.
        for (p, any) in self.skip.iter_mut().zip(any) {
            if any {
                *p = ShardPosition::at(end);
            }
        }
        if dropped > 0 {
            self.shared.metrics.samples_dropped.inc_by(dropped);
        }
        if highest > i64::MIN {
            let secs = highest as f64 / 1000.0;
            if secs > self.shared.metrics.highest_in.get() {
                self.shared.metrics.highest_in.set(secs);
            }
        }
        for ((shard, samples), first) in self.shards.iter().zip(per_shard).zip(skipped) {
            if samples.is_empty() {
                continue;
            }
            let k = samples.len();
            shard.pending.fetch_add(k, Ordering::AcqRel);
            self.enqueued += k as u64;
            self.shared.metrics.samples_pending.inc_by(k as i64);
            if shard
                .tx
                .send(Msg {
                    samples,
                    first,
                    end,
                })
                .is_err()
            {
                // The shard ended early (only on shutdown); its samples stay in the WAL.
                shard.pending.fetch_sub(k, Ordering::AcqRel);
                self.shared.metrics.samples_pending.dec_by(k as i64);
            }
        }
    }

    /// Waits while any shard holds more than its capacity: the WAL keeps the rest.
    fn backpressure(&mut self) {
        let cap = self.shared.cfg.queue_config.capacity.max(1);
        while !self.stopping()
            && self
                .shards
                .iter()
                .any(|s| s.pending.load(Ordering::Acquire) > cap)
        {
            std::thread::sleep(Duration::from_millis(5));
            if self.last_reshard.elapsed() >= RESHARD_EVERY {
                self.maybe_reshard();
            }
        }
    }

    /// Records idle shards as caught up to what was read, and keeps the WAL from the oldest
    /// position still needed.
    fn publish_progress(&mut self) {
        let mut p = match self.shared.progress.lock() {
            Ok(p) => p,
            Err(e) => e.into_inner(),
        };
        for (i, s) in self.shards.iter().enumerate() {
            // A shard still owing the rest of a partly sent commit keeps its partial position.
            let partial = self.skip.get(i).is_some_and(|k| k.sent > 0);
            if s.pending.load(Ordering::Acquire) == 0
                && !partial
                && let Err(e) = p.advance(i, ShardPosition::at(self.read_to))
            {
                tracing::warn!(queue = %self.shared.cfg.name, error = %e, "writing remote-write progress");
            }
        }
        let oldest = p
            .shards()
            .iter()
            .map(|s| s.done)
            .min()
            .unwrap_or(self.read_to);
        drop(p);
        self.shared
            .storage
            .hold_wal(&self.shared.cfg.name, Some(oldest));
        // Skip positions only matter until every shard has passed them.
        if self
            .skip
            .iter()
            .all(|s| s.sent == 0 && s.done <= self.read_to)
        {
            self.skip.clear();
        }
    }

    /// Prometheus's shard calculation, applied only when every shard is empty.
    fn maybe_reshard(&mut self) {
        let elapsed = self.last_reshard.elapsed().as_secs_f64();
        self.last_reshard = Instant::now();
        let sent = self.shared.sent.load(Ordering::Relaxed);
        let nanos = self.shared.send_nanos.load(Ordering::Relaxed);
        let retried = self.shared.retried.load(Ordering::Relaxed);
        let (in0, sent0, nanos0, retried0) = self.last_rates;
        self.last_rates = (self.enqueued, sent, nanos, retried);
        let q = self.shared.cfg.queue_config;
        let n = self.shards.len();
        let rate_in = (self.enqueued - in0) as f64 / elapsed;
        let out = sent - sent0;
        if out == 0 || elapsed <= 0.0 {
            return;
        }
        let time_per_sample = (nanos - nanos0) as f64 / 1e9 / out as f64;
        let pending: usize = self
            .shards
            .iter()
            .map(|s| s.pending.load(Ordering::Acquire))
            .sum();
        let desired = time_per_sample * (rate_in + 0.05 * pending as f64);
        self.shared.metrics.shards_desired.set(desired);
        self.desired = desired;
        let mut target = desired.ceil() as usize;
        target = target.clamp(q.min_shards.max(1), q.max_shards.max(1));
        // Within 30 % of what runs: not worth a pause.
        let (lo, hi) = (n as f64 * 0.7, n as f64 * 1.3);
        if (lo..=hi).contains(&desired) && (q.min_shards..=q.max_shards).contains(&n) {
            return;
        }
        // More shards do not help a receiver that is failing.
        if target > n && retried > retried0 {
            return;
        }
        if target == n {
            return;
        }
        // Wait for every shard to empty, so no series changes shard with samples unsent; reading
        // the WAL pauses meanwhile, as Prometheus's resharding flushes its old shards. A receiver
        // too slow to empty them within the flush deadline keeps the current count.
        let until = Instant::now() + self.shared.flush_deadline;
        while self
            .shards
            .iter()
            .any(|s| s.pending.load(Ordering::Acquire) > 0)
        {
            if Instant::now() >= until || self.stopping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let old = std::mem::take(&mut self.shards);
        let tasks: Vec<_> = old
            .into_iter()
            .map(|s| {
                drop(s.tx);
                s.task
            })
            .collect();
        self.runtime.block_on(async {
            for t in tasks {
                let _ = t.await;
            }
        });
        let hash = url_hash(&self.shared.cfg.url);
        match Progress::create(
            &self.shared.progress_path,
            hash,
            vec![ShardPosition::at(self.read_to); target],
        ) {
            Ok(p) => {
                *self
                    .shared
                    .progress
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = p;
            }
            Err(e) => {
                tracing::error!(queue = %self.shared.cfg.name, error = %e, "rewriting remote-write progress; keeping the shard count");
                target = n;
            }
        }
        self.skip.clear();
        tracing::info!(queue = %self.shared.cfg.name, from = n, to = target, desired, "remote write resharded");
        self.spawn_shards(target);
    }
}

/// What became of one batch.
enum Sent {
    Ok,
    /// Refused for good (or too old): dropped, counted as failed.
    Dropped,
    /// Stopped before it was accepted: left in the WAL.
    Aborted,
}

async fn run_shard(
    i: usize,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    shared: Arc<Shared>,
    pending: Arc<AtomicUsize>,
) {
    let q = shared.cfg.queue_config;
    let max = q.max_samples_per_send.max(1);
    let deadline = q.batch_send_deadline.as_std();
    let mut abort = shared.abort.subscribe();
    let mut queue: VecDeque<Msg> = VecDeque::new();
    // Samples of `queue.front()` already sent.
    let mut cursor = 0usize;
    // End of the last commit whose samples for this shard were all acknowledged.
    let mut last_done = shared
        .progress
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .shards()
        .get(i)
        .map_or_else(WalPosition::default, |p| p.done);
    let mut queued = 0usize;
    let mut closed = false;
    let mut batch = WriteBatch::default();
    // Series carry their labels in wire form; one empty `Labels` shared, not one per series.
    let no_labels = Labels::new();
    loop {
        if queued == 0 {
            if closed {
                return;
            }
            match rx.recv().await {
                Some(m) => {
                    queued += m.samples.len();
                    queue.push_back(m);
                }
                None => return,
            }
        }
        let until = tokio::time::Instant::now() + deadline;
        while queued < max && !closed {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => {
                        queued += m.samples.len();
                        queue.push_back(m);
                    }
                    None => closed = true,
                },
                _ = tokio::time::sleep_until(until) => break,
            }
        }
        // Build one batch from the front of the queue.
        batch.series.clear();
        let mut taken = 0usize;
        let mut too_old = 0u64;
        let mut highest = i64::MIN;
        // `sample_age_limit`: samples older than this are not worth sending any more.
        let oldest_ok = match q.sample_age_limit.as_std() {
            d if d.is_zero() => i64::MIN,
            d => now_ms() - d.as_millis() as i64,
        };
        {
            let mut slot: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
            let (mut m, mut c) = (0usize, cursor);
            while taken < max && m < queue.len() {
                let msg = &queue[m];
                while c < msg.samples.len() && taken < max {
                    let s = &msg.samples[c];
                    taken += 1;
                    c += 1;
                    if s.t < oldest_ok {
                        too_old += 1;
                        continue;
                    }
                    let idx = *slot.entry(s.r).or_insert_with(|| {
                        batch.series.push(BatchSeries {
                            labels: no_labels.clone(),
                            wire_labels: Some(s.labels.clone()),
                            ..BatchSeries::default()
                        });
                        batch.series.len() - 1
                    });
                    batch.series[idx].samples.push(Sample { t: s.t, v: s.v });
                    highest = highest.max(s.t);
                }
                if c == msg.samples.len() {
                    m += 1;
                    c = 0;
                }
            }
        }
        if too_old > 0 {
            shared.metrics.samples_dropped.inc_by(too_old);
        }
        let outcome = if batch.series.is_empty() {
            Sent::Ok
        } else {
            send(
                &shared,
                &batch,
                taken - too_old as usize,
                highest,
                &mut abort,
            )
            .await
        };
        if matches!(outcome, Sent::Aborted) {
            return;
        }
        // Consume what was sent (or given up): whole commits done move the shard's position.
        let mut left = taken;
        let mut done: Option<WalPosition> = None;
        while left > 0 {
            let Some(front) = queue.front() else { break };
            let remaining = front.samples.len() - cursor;
            if remaining <= left {
                left -= remaining;
                done = Some(front.end);
                queue.pop_front();
                cursor = 0;
            } else {
                cursor += left;
                left = 0;
            }
        }
        queued -= taken;
        if let Some(end) = done {
            last_done = end;
        }
        let partial = queue
            .front()
            .filter(|_| cursor > 0)
            .map(|f| f.first + cursor as u32);
        if done.is_some() || partial.is_some() {
            let mut p = shared.progress.lock().unwrap_or_else(|e| e.into_inner());
            // The watcher may have moved an idle shard past `last_done` meanwhile.
            let base = p
                .shards()
                .get(i)
                .map_or(last_done, |s| s.done.max(last_done));
            let pos = ShardPosition {
                done: base,
                sent: partial.unwrap_or(0),
            };
            if let Err(e) = p.advance(i, pos) {
                tracing::warn!(queue = %shared.cfg.name, error = %e, "writing remote-write progress");
            }
        }
        pending.fetch_sub(taken, Ordering::AcqRel);
        shared.metrics.samples_pending.dec_by(taken as i64);
    }
}

/// Sends one batch, retrying recoverable errors with exponential backoff until it is accepted,
/// refused for good, or the queue is aborted.
async fn send(
    shared: &Shared,
    batch: &WriteBatch,
    n: usize,
    highest: i64,
    abort: &mut watch::Receiver<bool>,
) -> Sent {
    let q = shared.cfg.queue_config;
    let m = &shared.metrics;
    let mut backoff = q.min_backoff.as_std();
    loop {
        if *abort.borrow() {
            return Sent::Aborted;
        }
        let started = Instant::now();
        let result = tokio::select! {
            r = shared.client.send(batch) => r,
            _ = abort.wait_for(|a| *a) => return Sent::Aborted,
        };
        let took = started.elapsed();
        match result {
            Ok(stats) => {
                m.batch_duration.observe(took.as_secs_f64());
                m.samples.inc_by(n as u64);
                m.bytes.inc_by(stats.request_bytes);
                let secs = highest as f64 / 1000.0;
                if secs > m.highest_sent.get() {
                    m.highest_sent.set(secs);
                }
                shared.sent.fetch_add(n as u64, Ordering::Relaxed);
                shared
                    .send_nanos
                    .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
                return Sent::Ok;
            }
            Err(e) if e.is_retryable() => {
                m.samples_retried.inc_by(n as u64);
                shared.retried.fetch_add(n as u64, Ordering::Relaxed);
                let wait = e.retry_after().unwrap_or(backoff).max(backoff);
                tracing::debug!(queue = %shared.cfg.name, error = %e, wait_ms = wait.as_millis() as u64, "remote write failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = abort.wait_for(|a| *a) => return Sent::Aborted,
                }
                backoff = (backoff * 2).min(q.max_backoff.as_std());
            }
            Err(e) => {
                m.samples_failed.inc_by(n as u64);
                tracing::error!(queue = %shared.cfg.name, error = %e, samples = n, "remote write refused; batch dropped");
                return Sent::Dropped;
            }
        }
    }
}

/// Prometheus 1.0 behaviour: every `metadata_config.send_interval`, all current metadata in
/// requests of at most `metadata_config.max_samples_per_send` entries. A 2.0 receiver gets
/// metadata with each series instead (the encoder attaches it), so nothing is sent separately.
async fn send_metadata(shared: Arc<Shared>, source: Arc<dyn MetadataSource>) {
    let m = shared.cfg.metadata_config;
    let mut abort = shared.abort.subscribe();
    let mut tick = tokio::time::interval(m.send_interval.as_std().max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.client.message() != edgeprom_config::RemoteWriteMessage::V1 {
            continue;
        }
        let mut all = source.metric_metadata();
        all.sort_by(|a, b| a.family.cmp(&b.family));
        all.dedup();
        for chunk in all.chunks(m.max_samples_per_send.max(1)) {
            let batch = WriteBatch {
                series: Vec::new(),
                metadata: chunk.to_vec(),
            };
            match send(&shared, &batch, 0, i64::MIN, &mut abort).await {
                Sent::Ok => shared.metrics.metadata.inc_by(chunk.len() as u64),
                Sent::Dropped => shared.metrics.metadata_failed.inc_by(chunk.len() as u64),
                Sent::Aborted => return,
            };
        }
    }
}
