//! One target's scrape loop: when to scrape, what a scrape stores, and what a failure stores.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edgeprom_config::{ScrapeConfig, ScrapeProtocol, relabel};
use edgeprom_exposition::{Entry, Format, ParseError, Parser};
use edgeprom_model::{
    AppendError, Appendable, Appender, Labels, LabelsBuilder, SeriesRef, names, stale_nan,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::client::JobClient;
use crate::exemplars::{Exemplar, ExemplarError, ExemplarStorage};
use crate::manager::{TargetHealth, TargetStatus};
use crate::metadata::{MetadataCache, MetadataSnapshot};
use crate::metrics::{IntervalLabels, ScrapeMetrics, TargetLabels};
use crate::target::Target;

/// Why a scrape stored nothing but its report series; the text becomes the target's `lastError`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScrapeError {
    #[error("{0}")]
    Http(String),
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body size limit exceeded ({0} bytes)")]
    BodySizeLimit(u64),
    #[error("context deadline exceeded (scrape timeout {0:?})")]
    Timeout(Duration),
    #[error(
        "received unsupported Content-Type {0:?} and no fallback_scrape_protocol specified for target"
    )]
    ContentType(String),
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("sample limit exceeded ({found} > {limit})")]
    SampleLimit { found: usize, limit: u64 },
    #[error("{0}")]
    LabelLimit(String),
    #[error("__name__ label is missing after relabeling ({0})")]
    NameMissing(String),
    #[error("storage: {0}")]
    Storage(#[from] AppendError),
    #[error("{0}")]
    Client(String),
}

/// Settings a running loop picks up on reload without a gap in its scrapes.
pub(crate) struct LoopSettings {
    pub target: Target,
    pub config: Arc<ScrapeConfig>,
    pub client: Arc<Result<JobClient, String>>,
}

/// How a loop is told to stop.
#[derive(Clone)]
pub(crate) struct StopHandle {
    pub cancel: CancellationToken,
    /// Whether to write stale markers after the last scrape (target gone) or not (shutdown).
    pub mark_stale: Arc<AtomicBool>,
}

/// A cached series: the storage ref of the exposition text's series (after target labels and
/// metric relabelling), so a steady-state scrape neither builds labels nor looks them up. The
/// final labels are kept only until the engine has given a ref: a label set per series would
/// cost more memory than the engine's whole series.
struct CacheEntry {
    /// Metric relabelling dropped the series.
    dropped: bool,
    /// The final labels, until `sref` is known.
    labels: Option<Labels>,
    sref: Option<SeriesRef>,
    /// The sample carried its own timestamp: no stale marker is written for it (Prometheus's rule).
    explicit_ts: bool,
    /// The scrape iteration that last stored a sample for it.
    seen: u64,
    /// The last exemplar exposed with this series (only with exemplar storage on).
    exemplar: Option<Box<CachedExemplar>>,
}

/// An exemplar as last exposed, keyed by its label text so that a repeat builds no labels.
struct CachedExemplar {
    raw_labels: Box<str>,
    /// The series' final labels, the exemplar ring's key.
    series: Labels,
    exemplar: Exemplar,
}

#[derive(Default)]
struct SeriesCache {
    index: HashMap<Box<str>, usize>,
    entries: Vec<CacheEntry>,
}

impl SeriesCache {
    /// Drops entries not seen in the last successful scrape once they dominate the cache, so churned
    /// series do not accumulate forever.
    fn compact(&mut self, alive_iter: u64) {
        let alive = self.entries.iter().filter(|e| e.seen == alive_iter).count();
        if self.entries.len() <= 2 * alive + 1024 {
            return;
        }
        let mut keep = Vec::with_capacity(alive);
        let mut remap = vec![usize::MAX; self.entries.len()];
        for (i, e) in std::mem::take(&mut self.entries).into_iter().enumerate() {
            if e.seen == alive_iter {
                remap[i] = keep.len();
                keep.push(e);
            }
        }
        self.index.retain(|_, i| {
            *i = remap[*i];
            *i != usize::MAX
        });
        self.entries = keep;
    }
}

/// What one scrape added, for the report series.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct AppendStats {
    pub scraped: usize,
    pub post_relabel: usize,
    pub series_added: usize,
}

/// The per-target state that survives between scrapes.
pub(crate) struct ScrapeLoop {
    settings: Arc<LoopSettings>,
    storage: Arc<dyn Appendable>,
    metrics: Arc<ScrapeMetrics>,
    status: Arc<Mutex<TargetStatus>>,
    cache: SeriesCache,
    staged: Vec<(usize, i64, f64)>,
    /// HELP/TYPE/UNIT of the target's families, for the metadata endpoints.
    metadata: MetadataCache,
    /// Where exemplars go; `None` unless `--enable-feature=exemplar-storage`.
    exemplars: Option<Arc<ExemplarStorage>>,
    /// This scrape's exemplars with their series, stored once the batch commits.
    staged_exemplars: Vec<(Labels, Exemplar)>,
    iter: u64,
    /// Iteration of the last successful scrape, whose series are alive (0: none).
    alive_iter: u64,
    report: ReportLabels,
    last_append_ms: Option<i64>,
    last_start: Option<Instant>,
}

struct ReportLabels {
    up: Labels,
    duration: Labels,
    scraped: Labels,
    post_relabel: Labels,
    series_added: Labels,
}

impl ReportLabels {
    fn new(target: &Labels) -> ReportLabels {
        let with = |name: &str| {
            let mut b = target.to_builder();
            b.set(names::METRIC_NAME, name);
            b.build()
        };
        ReportLabels {
            up: with("up"),
            duration: with("scrape_duration_seconds"),
            scraped: with("scrape_samples_scraped"),
            post_relabel: with("scrape_samples_post_metric_relabeling"),
            series_added: with("scrape_series_added"),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Prometheus's start offset: scrapes of a target happen at a fixed phase of the interval derived from
/// a hash of the target, so restarts keep the phase and thousands of targets never fire at once.
pub(crate) fn start_offset(hash: u64, interval: Duration, now: SystemTime) -> Duration {
    let iv = interval.as_nanos().max(1) as u64;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let base = iv - now % iv;
    let mut next = base + hash % iv;
    if next > iv {
        next -= iv;
    }
    Duration::from_nanos(next)
}

/// Snaps a scrape timestamp onto the previous one plus the interval when it is within tolerance
/// (min(2 ms, 1 % of the interval), Prometheus's default), which keeps delta-of-delta timestamp
/// encoding at its cheapest.
pub(crate) fn align_timestamp(t: i64, last: Option<i64>, interval: Duration) -> i64 {
    let Some(last) = last else { return t };
    let iv = interval.as_millis() as i64;
    let tolerance = (iv / 100).min(2);
    let expected = last + iv;
    if (t - expected).abs() <= tolerance {
        expected
    } else {
        t
    }
}

impl ScrapeLoop {
    pub(crate) fn new(
        settings: Arc<LoopSettings>,
        storage: Arc<dyn Appendable>,
        metrics: Arc<ScrapeMetrics>,
        status: Arc<Mutex<TargetStatus>>,
        exemplars: Option<Arc<ExemplarStorage>>,
    ) -> ScrapeLoop {
        let report = ReportLabels::new(&settings.target.labels);
        ScrapeLoop {
            settings,
            storage,
            metrics,
            status,
            cache: SeriesCache::default(),
            staged: Vec::new(),
            metadata: MetadataCache::default(),
            exemplars,
            staged_exemplars: Vec::new(),
            iter: 0,
            alive_iter: 0,
            report,
            last_append_ms: None,
            last_start: None,
        }
    }

    /// What readers of this target's metadata keep: always the latest snapshot.
    pub(crate) fn metadata_handle(&self) -> Arc<Mutex<MetadataSnapshot>> {
        self.metadata.handle()
    }

    fn target_labels(&self) -> TargetLabels {
        let l = &self.settings.target.labels;
        TargetLabels {
            job: self.settings.target.job.clone(),
            instance: l.get(names::INSTANCE).unwrap_or("").to_string(),
        }
    }

    /// Runs until cancelled: waits for the target's offset, then scrapes once per interval.
    pub(crate) async fn run(
        mut self,
        mut updates: watch::Receiver<Arc<LoopSettings>>,
        stop: StopHandle,
    ) {
        let mut interval = self.settings.target.interval;
        let offset = start_offset(self.settings.target.hash(), interval, SystemTime::now());
        tokio::select! {
            _ = stop.cancel.cancelled() => return,
            _ = tokio::time::sleep(offset) => {}
        }
        let mut ticker = new_ticker(interval);
        loop {
            tokio::select! {
                _ = stop.cancel.cancelled() => break,
                changed = updates.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let next = updates.borrow_and_update().clone();
                    let reschedule = next.target.interval != interval;
                    // The target's labels are part of its identity, so they cannot change here; only
                    // job-level settings (relabelling, limits, client) do. Cached labels may be stale.
                    // A new job config may relabel differently: cached labels are void. As in
                    // Prometheus, series the new rules no longer produce get no stale marker.
                    if !Arc::ptr_eq(&next.config, &self.settings.config) {
                        self.cache = SeriesCache::default();
                        self.alive_iter = 0;
                    }
                    self.settings = next;
                    if reschedule {
                        interval = self.settings.target.interval;
                        ticker = new_ticker(interval);
                    }
                }
                _ = ticker.tick() => self.scrape_and_report().await,
            }
        }
        if stop.mark_stale.load(Ordering::Relaxed) {
            self.end_of_run_staleness(interval).await;
        }
        self.metrics.remove_target(&self.target_labels());
    }

    async fn scrape_and_report(&mut self) {
        let start = Instant::now();
        let wall_ms = now_ms();
        let append_ms =
            align_timestamp(wall_ms, self.last_append_ms, self.settings.target.interval);
        if let Some(prev) = self.last_start {
            self.metrics
                .interval_length
                .get_or_create(&IntervalLabels {
                    interval: edgeprom_config::Duration::from_std(self.settings.target.interval)
                        .to_string(),
                })
                .observe(start.duration_since(prev).as_secs_f64());
        }
        self.last_start = Some(start);

        let settings = self.settings.clone();
        let fetched = match settings.client.as_ref() {
            Ok(client) => {
                match tokio::time::timeout(
                    settings.target.timeout,
                    client.fetch(&settings.target.url, settings.target.timeout),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(ScrapeError::Timeout(settings.target.timeout)),
                }
            }
            Err(e) => Err(ScrapeError::Client(e.clone())),
        };
        let duration = start.elapsed();
        let result = fetched.and_then(|f| {
            let format = self.format(f.content_type.as_deref())?;
            Ok((f.body, format))
        });
        let outcome = self.store(result, append_ms, duration);
        self.last_append_ms = Some(append_ms);

        let tl = self.target_labels();
        self.metrics.target_scrapes.get_or_create(&tl).inc();
        self.metrics
            .target_last_duration
            .get_or_create(&tl)
            .set(duration.as_secs_f64());
        self.metrics
            .target_last_timestamp
            .get_or_create(&tl)
            .set(wall_ms as f64 / 1000.0);
        let up = outcome.is_ok();
        self.metrics.target_up.get_or_create(&tl).set(i64::from(up));
        if let Err(e) = &outcome {
            self.metrics.target_scrape_failures.get_or_create(&tl).inc();
            match e {
                ScrapeError::SampleLimit { .. } => self.metrics.exceeded_sample_limit.inc(),
                ScrapeError::BodySizeLimit(_) => self.metrics.exceeded_body_size_limit.inc(),
                ScrapeError::LabelLimit(_) => self.metrics.exceeded_label_limits.inc(),
                _ => 0,
            };
            tracing::debug!(target = %settings.target.url, error = %e, "scrape failed");
        }
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.health = if up {
            TargetHealth::Up
        } else {
            TargetHealth::Down
        };
        status.last_error = outcome.err().map(|e| e.to_string()).unwrap_or_default();
        status.last_scrape = Some(SystemTime::now() - duration);
        status.last_scrape_duration = duration;
    }

    fn format(&self, content_type: Option<&str>) -> Result<Format, ScrapeError> {
        if let Some(f) = content_type.and_then(Format::from_content_type) {
            return Ok(f);
        }
        match self.settings.config.fallback_scrape_protocol {
            Some(ScrapeProtocol::OpenMetricsText1_0_0 | ScrapeProtocol::OpenMetricsText0_0_1) => {
                Ok(Format::OpenMetrics)
            }
            Some(ScrapeProtocol::PrometheusText0_0_4 | ScrapeProtocol::PrometheusText1_0_0) => {
                Ok(Format::Text)
            }
            _ => Err(ScrapeError::ContentType(
                content_type.unwrap_or("").to_string(),
            )),
        }
    }

    /// Stores one scrape's outcome as a single batch: the samples (or, on failure, stale markers for
    /// everything the last good scrape had) plus the report series.
    fn store(
        &mut self,
        fetched: Result<(Vec<u8>, Format), ScrapeError>,
        t: i64,
        duration: Duration,
    ) -> Result<AppendStats, ScrapeError> {
        self.iter += 1;
        let storage = self.storage.clone();
        let mut app = storage.appender();
        let result =
            fetched.and_then(|(body, format)| self.append_body(&mut *app, &body, format, t));
        let stats = match &result {
            Ok(stats) => *stats,
            Err(_) => {
                app.rollback();
                app = storage.appender();
                self.append_stale_markers(&mut *app, t);
                AppendStats::default()
            }
        };
        self.append_report(&mut *app, t, result.is_ok(), duration, stats);
        let committed = app.commit();
        if result.is_ok() && committed.is_ok() {
            self.metadata.scrape_done();
            self.store_exemplars();
        } else {
            // HELP/TYPE lines before the failure were applied, as in Prometheus; exemplars
            // belong to samples that were not stored.
            self.metadata.publish();
            self.staged_exemplars.clear();
        }
        if let Err(e) = committed {
            tracing::warn!(error = %e, "committing scrape failed");
            return Err(e.into());
        }
        result
    }

    /// Hands this scrape's exemplars to the exemplar storage under one lock; repeats of a
    /// series' newest exemplar are no-ops there.
    fn store_exemplars(&mut self) {
        let Some(store) = &self.exemplars else {
            self.staged_exemplars.clear();
            return;
        };
        if self.staged_exemplars.is_empty() {
            return;
        }
        let mut out_of_order = 0u64;
        let mut writer = store.writer();
        for (series, e) in self.staged_exemplars.drain(..) {
            match writer.add(&series, &e) {
                Ok(_) => {}
                Err(ExemplarError::OutOfOrder) => out_of_order += 1,
                // `max_exemplars` ≤ 0: every other one would be refused too.
                Err(ExemplarError::Disabled) => break,
                Err(err) => {
                    tracing::debug!(series = %series, error = %err, "exemplar not stored");
                }
            }
        }
        drop(writer);
        if out_of_order > 0 {
            self.metrics.exemplar_out_of_order.inc_by(out_of_order);
        }
    }

    /// Parses the whole body into the staging buffer first so that a malformed line or an exceeded
    /// limit stores nothing, then appends.
    fn append_body(
        &mut self,
        app: &mut dyn Appender,
        body: &[u8],
        format: Format,
        t: i64,
    ) -> Result<AppendStats, ScrapeError> {
        let cfg = self.settings.config.clone();
        let mut stats = AppendStats::default();
        self.staged.clear();
        self.staged_exemplars.clear();
        let keep_exemplars = self.exemplars.is_some();
        let mut parser = Parser::new(body, format)?;
        while let Some(entry) = parser.next()? {
            let s = match entry {
                Entry::Series(s) => s,
                Entry::Help { metric, text } => {
                    self.metadata.set_help(&metric, &text);
                    continue;
                }
                Entry::Type { metric, kind } => {
                    self.metadata.set_type(&metric, kind);
                    continue;
                }
                Entry::Unit { metric, unit } => {
                    self.metadata.set_unit(&metric, &unit);
                    continue;
                }
                Entry::Comment => continue,
            };
            stats.scraped += 1;
            let ts = match s.timestamp_ms() {
                Some(ts) if cfg.honor_timestamps => ts,
                _ => t,
            };
            let idx = match self.cache.index.get(s.raw()) {
                Some(&i) => i,
                None => {
                    let labels = self.sample_labels(s.to_labels(), &cfg)?;
                    let i = self.cache.entries.len();
                    self.cache.entries.push(CacheEntry {
                        dropped: labels.is_none(),
                        labels,
                        sref: None,
                        explicit_ts: false,
                        seen: 0,
                        exemplar: None,
                    });
                    self.cache.index.insert(s.raw().into(), i);
                    i
                }
            };
            if self.cache.entries[idx].dropped {
                continue;
            }
            // The exemplar ring keys exemplars by the series' labels, which the cache keeps only
            // for series that carry exemplars: built when the series' exemplar changes.
            let exemplar = s.exemplar().filter(|_| keep_exemplars);
            let new_exemplar_series = match (&exemplar, &self.cache.entries[idx].exemplar) {
                (Some(_), None) => self.sample_labels(s.to_labels(), &cfg)?,
                _ => None,
            };
            let entry = &mut self.cache.entries[idx];
            entry.explicit_ts = s.timestamp_ms().is_some() && cfg.honor_timestamps;
            self.staged.push((idx, ts, s.value()));
            if let Some(e) = exemplar {
                // Prometheus gives an exemplar without its own timestamp the sample's.
                let (ets, has_ts) = match e.timestamp_ms() {
                    Some(ets) => (ets, true),
                    None => (ts, false),
                };
                let cached = match &mut entry.exemplar {
                    Some(c) if *c.raw_labels == *e.raw_labels() => {
                        c.exemplar.value = e.value();
                        c.exemplar.ts = ets;
                        c.exemplar.has_ts = has_ts;
                        c
                    }
                    slot => {
                        let series = slot
                            .take()
                            .map(|c| c.series)
                            .or(new_exemplar_series)
                            .unwrap_or_default();
                        slot.insert(Box::new(CachedExemplar {
                            raw_labels: Box::from(e.raw_labels()),
                            series,
                            exemplar: Exemplar {
                                labels: Labels::from_pairs(e.labels()),
                                value: e.value(),
                                ts: ets,
                                has_ts,
                            },
                        }))
                    }
                };
                self.staged_exemplars
                    .push((cached.series.clone(), cached.exemplar.clone()));
            }
        }
        stats.post_relabel = self.staged.len();
        if cfg.sample_limit > 0 && self.staged.len() as u64 > cfg.sample_limit {
            return Err(ScrapeError::SampleLimit {
                found: self.staged.len(),
                limit: cfg.sample_limit,
            });
        }

        let mut need_labels = Vec::new();
        for &(idx, ts, v) in &self.staged {
            let entry = &mut self.cache.entries[idx];
            let result = match (entry.sref, &entry.labels) {
                (Some(r), _) => app.append_ref(r, ts, v).map(|()| r),
                (None, Some(labels)) => {
                    stats.series_added += 1;
                    app.append(None, labels, ts, v)
                }
                (None, None) => Err(AppendError::NeedLabels),
            };
            match result {
                Ok(r) => {
                    entry.sref = Some(r);
                    entry.labels = None;
                    entry.seen = self.iter;
                }
                Err(AppendError::NeedLabels) => need_labels.push((idx, ts, v)),
                Err(AppendError::OutOfOrder) => {
                    self.metrics.sample_out_of_order.inc();
                }
                Err(AppendError::DuplicateSample) => {
                    entry.seen = self.iter;
                    self.metrics.sample_duplicate_timestamp.inc();
                }
                Err(AppendError::TooOld) => {
                    self.metrics.sample_out_of_bounds.inc();
                }
                Err(e) => return Err(e.into()),
            }
        }

        if !need_labels.is_empty() {
            self.append_with_labels(app, body, format, &cfg, &need_labels)?;
        }

        // Series the last good scrape had and this one lacks get a stale marker now: entries seen
        // in this scrape carry the new iteration, so only the vanished ones match.
        self.append_stale_markers(app, t);
        self.alive_iter = self.iter;
        self.cache.compact(self.alive_iter);
        Ok(stats)
    }

    /// The rare path of a ref the engine cannot take alone (its series was removed, or a failed
    /// batch left its definition unwritten): parses the body again for those series' labels and
    /// appends by labels.
    fn append_with_labels(
        &mut self,
        app: &mut dyn Appender,
        body: &[u8],
        format: Format,
        cfg: &ScrapeConfig,
        pending: &[(usize, i64, f64)],
    ) -> Result<(), ScrapeError> {
        let mut labels_of: HashMap<usize, Labels> = HashMap::with_capacity(pending.len());
        let mut parser = Parser::new(body, format)?;
        while let Some(entry) = parser.next()? {
            let Entry::Series(s) = entry else { continue };
            if let Some(&idx) = self.cache.index.get(s.raw())
                && pending.iter().any(|p| p.0 == idx)
                && !labels_of.contains_key(&idx)
                && let Some(l) = self.sample_labels(s.to_labels(), cfg)?
            {
                labels_of.insert(idx, l);
            }
        }
        for &(idx, ts, v) in pending {
            let Some(labels) = labels_of.get(&idx) else {
                continue;
            };
            let entry = &mut self.cache.entries[idx];
            match app.append(None, labels, ts, v) {
                Ok(r) => {
                    entry.sref = Some(r);
                    entry.seen = self.iter;
                }
                Err(AppendError::DuplicateSample) => entry.seen = self.iter,
                Err(e) if e.is_per_sample() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes stale markers for the series alive after the last good scrape that have not been seen
    /// since, and forgets that they were alive.
    fn append_stale_markers(&mut self, app: &mut dyn Appender, t: i64) {
        if self.alive_iter == 0 {
            return;
        }
        let track = self.settings.config.track_timestamps_staleness;
        let alive = self
            .cache
            .entries
            .iter()
            .filter(|e| e.seen == self.alive_iter && (track || !e.explicit_ts));
        for e in alive {
            // Per-sample refusals (e.g. the series already has a newer sample) are expected, and
            // a series whose ref the engine no longer knows needs no marker.
            if let Some(r) = e.sref {
                let _ = app.append_ref(r, t, stale_nan());
            }
        }
        self.alive_iter = 0;
    }

    fn append_report(
        &self,
        app: &mut dyn Appender,
        t: i64,
        up: bool,
        duration: Duration,
        stats: AppendStats,
    ) {
        let r = &self.report;
        let samples = [
            (&r.up, if up { 1.0 } else { 0.0 }),
            (&r.duration, duration.as_secs_f64()),
            (&r.scraped, stats.scraped as f64),
            (&r.post_relabel, stats.post_relabel as f64),
            (&r.series_added, stats.series_added as f64),
        ];
        for (labels, v) in samples {
            if let Err(e) = app.append(None, labels, t, v) {
                tracing::debug!(series = %labels, error = %e, "report sample refused");
            }
        }
    }

    async fn end_of_run_staleness(&mut self, interval: Duration) {
        let Some(last) = self.last_start else { return };
        // Wait until the next scrape would have happened, so that a target that merely moved to a
        // new loop (same labels) has already written its next sample and is not marked stale.
        let wake = last + interval;
        tokio::time::sleep_until(wake.into()).await;
        let t = now_ms();
        let storage = self.storage.clone();
        let mut app = storage.appender();
        self.append_stale_markers(&mut *app, t);
        let r = &self.report;
        for labels in [
            &r.up,
            &r.duration,
            &r.scraped,
            &r.post_relabel,
            &r.series_added,
        ] {
            let _ = app.append(None, labels, t, stale_nan());
        }
        if let Err(e) = app.commit() {
            tracing::warn!(error = %e, "writing end-of-run stale markers failed");
        }
    }

    /// Joins scraped labels with the target's labels (Prometheus's `honor_labels` rules), applies
    /// `metric_relabel_configs` and the label limits. `Ok(None)`: relabelling dropped the series.
    fn sample_labels(
        &self,
        scraped: Labels,
        cfg: &ScrapeConfig,
    ) -> Result<Option<Labels>, ScrapeError> {
        let target = &self.settings.target.labels;
        let mut b = merge_target_labels(&scraped, target, cfg.honor_labels);
        if !relabel::process_builder(&mut b, &cfg.metric_relabel_configs) {
            return Ok(None);
        }
        let labels = b.build();
        if labels.metric_name().is_empty() {
            return Err(ScrapeError::NameMissing(labels.to_string()));
        }
        check_label_limits(&labels, cfg)?;
        Ok(Some(labels))
    }

    #[cfg(test)]
    pub(crate) fn store_for_test(
        &mut self,
        body: Result<(Vec<u8>, Format), ScrapeError>,
        t: i64,
    ) -> Result<AppendStats, ScrapeError> {
        self.store(body, t, Duration::from_millis(5))
    }
}

fn new_ticker(interval: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval(interval);
    // Like Go's ticker: a scrape that overran its slot does not cause a burst of catch-up scrapes.
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    t
}

/// Prometheus's `mutateSampleLabels` before relabelling: with `honor_labels` the scraped value wins and
/// target labels only fill gaps; without it target labels win and a conflicting scraped label is kept
/// as `exported_<name>` (prefixed again until the name is free).
pub(crate) fn merge_target_labels(
    scraped: &Labels,
    target: &Labels,
    honor_labels: bool,
) -> LabelsBuilder {
    let mut b = scraped.to_builder();
    if honor_labels {
        for l in target {
            if scraped.get(&l.name).is_none() {
                b.set(l.name.clone(), l.value.clone());
            }
        }
        return b;
    }
    let mut conflicts = Vec::new();
    for l in target {
        if let Some(v) = scraped.get(&l.name) {
            conflicts.push((l.name.clone(), v.to_string()));
        }
        b.set(l.name.clone(), l.value.clone());
    }
    for (name, value) in conflicts {
        let mut new_name = format!("{}{name}", names::EXPORTED_PREFIX);
        while b.get(&new_name).is_some() {
            new_name = format!("{}{new_name}", names::EXPORTED_PREFIX);
        }
        b.set(new_name, value);
    }
    b
}

fn check_label_limits(labels: &Labels, cfg: &ScrapeConfig) -> Result<(), ScrapeError> {
    let name = labels.metric_name();
    if cfg.label_limit > 0 && labels.len() as u64 > cfg.label_limit {
        return Err(ScrapeError::LabelLimit(format!(
            "label_limit exceeded (metric: {name}, number of labels: {}, limit: {})",
            labels.len(),
            cfg.label_limit
        )));
    }
    for l in labels {
        if cfg.label_name_length_limit > 0 && l.name.len() as u64 > cfg.label_name_length_limit {
            return Err(ScrapeError::LabelLimit(format!(
                "label_name_length_limit exceeded (metric: {name}, label name: {}, length: {}, limit: {})",
                l.name,
                l.name.len(),
                cfg.label_name_length_limit
            )));
        }
        if cfg.label_value_length_limit > 0 && l.value.len() as u64 > cfg.label_value_length_limit {
            return Err(ScrapeError::LabelLimit(format!(
                "label_value_length_limit exceeded (metric: {name}, label name: {}, value: {:?}, length: {}, limit: {})",
                l.name,
                l.value,
                l.value.len(),
                cfg.label_value_length_limit
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeprom_config::Config;
    use edgeprom_model::{Sample, is_stale_nan};
    use edgeprom_storage::{Options, Storage};
    use std::collections::BTreeMap;
    use std::path::Path;

    struct Fixture {
        storage: Arc<Storage>,
        sl: ScrapeLoop,
        exemplars: Arc<ExemplarStorage>,
        /// Removed with the fixture: each storage preallocates a 128 MiB head-chunk file.
        _dir: tempfile::TempDir,
    }

    fn fixture(job_yaml: &str) -> Fixture {
        let yaml =
            format!("scrape_configs:\n  - job_name: j\n    scrape_interval: 10s\n{job_yaml}");
        let cfg = Config::parse(&yaml, Path::new("t.yml")).expect("config");
        let job = cfg.scrape_configs[0].clone();
        let (target, _) = crate::populate_labels(&job, &BTreeMap::new(), "h:1").expect("target");
        let target = target.expect("not dropped");
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Arc::new(Storage::open(dir.path(), Options::default()).expect("storage"));
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(ScrapeMetrics::register(&mut registry));
        let settings = Arc::new(LoopSettings {
            target: target.clone(),
            config: Arc::new(job),
            client: Arc::new(Err("no client in unit tests".into())),
        });
        let status = Arc::new(Mutex::new(TargetStatus {
            target,
            health: TargetHealth::Unknown,
            last_error: String::new(),
            last_scrape: None,
            last_scrape_duration: Duration::ZERO,
        }));
        let exemplars = Arc::new(ExemplarStorage::new(100));
        let sl = ScrapeLoop::new(
            settings,
            storage.clone(),
            metrics,
            status,
            Some(exemplars.clone()),
        );
        Fixture {
            storage,
            sl,
            exemplars,
            _dir: dir,
        }
    }

    impl Fixture {
        fn scrape(&mut self, body: &str, t: i64) -> Result<AppendStats, ScrapeError> {
            self.sl
                .store_for_test(Ok((body.as_bytes().to_vec(), Format::Text)), t)
        }

        fn scrape_om(&mut self, body: &str, t: i64) -> Result<AppendStats, ScrapeError> {
            self.sl
                .store_for_test(Ok((body.as_bytes().to_vec(), Format::OpenMetrics)), t)
        }

        fn metadata(&self) -> Vec<(String, &'static str, String, String)> {
            let snap = self.sl.metadata_handle().lock().expect("lock").clone();
            snap.iter()
                .map(|m| {
                    (
                        m.metric_family.clone(),
                        m.kind.as_str(),
                        m.help.clone(),
                        m.unit.clone(),
                    )
                })
                .collect()
        }

        /// (trace_id, value, ts) of every stored exemplar of `name`.
        fn exemplars(&self, name: &str) -> Vec<(String, f64, i64)> {
            self.exemplars
                .select(i64::MIN, i64::MAX, |l| l.metric_name() == name)
                .into_iter()
                .flat_map(|s| s.exemplars)
                .map(|e| {
                    (
                        e.labels.get("trace_id").unwrap_or("").to_string(),
                        e.value,
                        e.ts,
                    )
                })
                .collect()
        }

        fn samples(&self, pairs: &[(&str, &str)]) -> Vec<Sample> {
            self.storage.samples(
                &Labels::from_pairs(pairs.iter().copied()),
                i64::MIN,
                i64::MAX,
            )
        }

        fn values(&self, pairs: &[(&str, &str)]) -> Vec<(i64, String)> {
            self.samples(pairs)
                .iter()
                .map(|s| {
                    let v = if is_stale_nan(s.v) {
                        "stale".to_string()
                    } else {
                        s.v.to_string()
                    };
                    (s.t, v)
                })
                .collect()
        }
    }

    const TARGET: [(&str, &str); 2] = [("instance", "h:1"), ("job", "j")];

    fn with_target<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut v: Vec<(&str, &str)> = TARGET.to_vec();
        v.extend_from_slice(extra);
        v
    }

    /// An engine that never takes a ref alone (the trait's default `append_ref`).
    struct LabelsOnly(Arc<Storage>);

    struct LabelsOnlyAppender<'a>(Box<dyn Appender + 'a>);

    impl Appender for LabelsOnlyAppender<'_> {
        fn append(
            &mut self,
            hint: Option<SeriesRef>,
            labels: &Labels,
            t: i64,
            v: f64,
        ) -> Result<SeriesRef, AppendError> {
            self.0.append(hint, labels, t, v)
        }

        fn commit(self: Box<Self>) -> Result<(), AppendError> {
            self.0.commit()
        }

        fn rollback(self: Box<Self>) {
            self.0.rollback()
        }
    }

    impl Appendable for LabelsOnly {
        fn appender(&self) -> Box<dyn Appender + '_> {
            Box::new(LabelsOnlyAppender(self.0.appender()))
        }
    }

    #[test]
    fn a_ref_the_engine_cannot_take_alone_is_appended_by_labels_parsed_again() {
        let mut f = fixture("");
        f.sl.storage = Arc::new(LabelsOnly(f.storage.clone()));
        f.scrape("a 1\nb{x=\"y\"} 2\n", 1000).expect("scrape");
        // Steady state: every cached ref is refused, so the body is parsed again for labels.
        f.scrape("a 3\nb{x=\"y\"} 4\n", 2000).expect("scrape");
        f.scrape("b{x=\"y\"} 6\n", 3000).expect("scrape");
        assert_eq!(
            f.values(&with_target(&[("__name__", "a")])),
            [(1000, "1".into()), (2000, "3".into())],
            "a stale marker needs a ref the engine takes; without one none is written"
        );
        assert_eq!(
            f.values(&with_target(&[("__name__", "b"), ("x", "y")])),
            [(1000, "2".into()), (2000, "4".into()), (3000, "6".into())]
        );
    }

    #[test]
    fn a_good_scrape_stores_samples_with_target_labels_and_report_series() {
        let mut f = fixture("");
        let stats = f.scrape("a 1\nb{x=\"y\"} 2\n", 1000).expect("scrape");
        assert_eq!(
            stats,
            AppendStats {
                scraped: 2,
                post_relabel: 2,
                series_added: 2
            }
        );
        assert_eq!(
            f.values(&with_target(&[("__name__", "a")])),
            [(1000, "1".into())]
        );
        assert_eq!(
            f.values(&with_target(&[("__name__", "b"), ("x", "y")])),
            [(1000, "2".into())]
        );
        assert_eq!(
            f.values(&with_target(&[("__name__", "up")])),
            [(1000, "1".into())]
        );
        assert_eq!(
            f.values(&with_target(&[("__name__", "scrape_samples_scraped")])),
            [(1000, "2".into())]
        );
        assert_eq!(
            f.values(&with_target(&[("__name__", "scrape_series_added")])),
            [(1000, "2".into())]
        );
        // The second scrape of the same series adds none.
        f.scrape("a 1\nb{x=\"y\"} 2\n", 2000).expect("scrape");
        assert_eq!(
            f.values(&with_target(&[("__name__", "scrape_series_added")]))[1],
            (2000, "0".into())
        );
    }

    #[test]
    fn a_malformed_body_stores_nothing_but_up_0_and_stale_markers() {
        let mut f = fixture("");
        f.scrape("a 1\n", 1000).expect("first scrape");
        let err = f
            .scrape("a 2\nthis is { bad\n", 2000)
            .expect_err("malformed");
        assert!(err.to_string().contains("line 2"), "{err}");
        assert_eq!(
            f.values(&with_target(&[("__name__", "a")])),
            [(1000, "1".into()), (2000, "stale".into())]
        );
        assert_eq!(
            f.values(&with_target(&[("__name__", "up")])),
            [(1000, "1".into()), (2000, "0".into())]
        );
        // Recovery: the series comes back, and no second stale marker is written.
        f.scrape("a 3\n", 3000).expect("recovered");
        f.scrape("a 4\n", 4000).expect("steady");
        assert_eq!(f.samples(&with_target(&[("__name__", "a")])).len(), 4);
    }

    #[test]
    fn a_vanished_series_gets_one_stale_marker() {
        let mut f = fixture("");
        f.scrape("a 1\nb 1\n", 1000).unwrap();
        f.scrape("a 1\n", 2000).unwrap();
        f.scrape("a 1\n", 3000).unwrap();
        assert_eq!(
            f.values(&with_target(&[("__name__", "b")])),
            [(1000, "1".into()), (2000, "stale".into())]
        );
    }

    #[test]
    fn explicit_timestamps_are_honoured_and_never_marked_stale() {
        let mut f = fixture("");
        f.scrape("a 1 500\nb 2\n", 1000).unwrap();
        f.scrape("b 2\n", 2000).unwrap();
        assert_eq!(
            f.values(&with_target(&[("__name__", "a")])),
            [(500, "1".into())]
        );

        let mut f = fixture("    honor_timestamps: false\n");
        f.scrape("a 1 500\n", 1000).unwrap();
        assert_eq!(
            f.values(&with_target(&[("__name__", "a")])),
            [(1000, "1".into())]
        );
    }

    #[test]
    fn conflicting_labels_are_exported_unless_honored() {
        let mut f = fixture("");
        f.scrape("a{job=\"inner\",exported_job=\"x\"} 1\n", 1000)
            .unwrap();
        assert_eq!(
            f.samples(&with_target(&[
                ("__name__", "a"),
                ("exported_job", "x"),
                ("exported_exported_job", "inner")
            ]))
            .len(),
            1
        );

        let mut f = fixture("    honor_labels: true\n");
        f.scrape("a{job=\"inner\"} 1\n", 1000).unwrap();
        assert_eq!(
            f.samples(&[("__name__", "a"), ("instance", "h:1"), ("job", "inner")])
                .len(),
            1
        );
    }

    #[test]
    fn sample_limit_fails_the_whole_scrape() {
        let mut f = fixture("    sample_limit: 2\n");
        let err = f
            .scrape("a 1\nb 1\nc 1\n", 1000)
            .expect_err("over the limit");
        assert!(matches!(
            err,
            ScrapeError::SampleLimit { found: 3, limit: 2 }
        ));
        assert!(f.samples(&with_target(&[("__name__", "a")])).is_empty());
        assert_eq!(
            f.values(&with_target(&[("__name__", "up")])),
            [(1000, "0".into())]
        );
        // Dropped samples do not count against the limit.
        let mut f = fixture(
            "    sample_limit: 2\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: c\n        action: drop\n",
        );
        let stats = f
            .scrape("a 1\nb 1\nc 1\n", 1000)
            .expect("under the limit after relabel");
        assert_eq!(stats.scraped, 3);
        assert_eq!(stats.post_relabel, 2);
        assert!(f.samples(&with_target(&[("__name__", "c")])).is_empty());
    }

    #[test]
    fn label_limits_fail_the_scrape() {
        let mut f = fixture("    label_limit: 3\n");
        let err = f
            .scrape("a{x=\"1\",y=\"2\"} 1\n", 1000)
            .expect_err("4 labels > 3");
        assert!(err.to_string().contains("label_limit exceeded"), "{err}");
        let mut f = fixture("    label_value_length_limit: 3\n");
        assert!(f.scrape("a{x=\"long\"} 1\n", 1000).is_err());
    }

    const OM_BODY: &str = "# TYPE req_seconds histogram\n\
# HELP req_seconds Request latency.\n\
# UNIT req_seconds seconds\n\
req_seconds_bucket{le=\"0.5\"} 3 # {trace_id=\"abc\"} 0.25\n\
req_seconds_bucket{le=\"+Inf\"} 4 # {trace_id=\"def\"} 0.75 1000.5\n\
req_seconds_sum 1.5\n\
req_seconds_count 4\n\
# EOF\n";

    #[test]
    fn metadata_is_kept_per_family_and_survives_failed_scrapes() {
        let mut f = fixture("");
        f.scrape_om(OM_BODY, 1000).expect("scrape");
        let want = vec![(
            "req_seconds".to_string(),
            "histogram",
            "Request latency.".to_string(),
            "seconds".to_string(),
        )];
        assert_eq!(f.metadata(), want);
        f.scrape("# HELP up_like Only help.\nup_like 1\n", 2000)
            .expect("text scrape");
        let m = f.metadata();
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(
            m[1],
            (
                "up_like".to_string(),
                "unknown",
                "Only help.".to_string(),
                String::new()
            )
        );
        // A failed scrape keeps what is known; families not declared for 10 more scrapes go.
        f.sl.store_for_test(Err(ScrapeError::Http("down".into())), 3000)
            .expect_err("failed");
        assert_eq!(f.metadata().len(), 2);
        for i in 0..11 {
            f.scrape("# TYPE up_like gauge\nup_like 1\n", 4000 + i * 1000)
                .expect("scrape");
        }
        assert_eq!(
            f.metadata(),
            [(
                "up_like".to_string(),
                "gauge",
                "Only help.".to_string(),
                String::new()
            )]
        );
    }

    #[test]
    fn exemplars_of_committed_scrapes_are_stored_once() {
        let mut f = fixture("");
        f.scrape_om(OM_BODY, 1000).expect("scrape");
        // Without an exposed timestamp an exemplar takes the sample's.
        assert_eq!(f.exemplars("req_seconds_bucket").len(), 2);
        let all = f.exemplars("req_seconds_bucket");
        assert!(all.contains(&("abc".into(), 0.25, 1000)), "{all:?}");
        assert!(all.contains(&("def".into(), 0.75, 1_000_500)), "{all:?}");
        // The same exposition again: identical exemplars are not stored twice.
        f.scrape_om(OM_BODY, 2000).expect("scrape");
        assert_eq!(f.exemplars("req_seconds_bucket").len(), 2);
        // A new trace is.
        f.scrape_om(&OM_BODY.replace("abc", "xyz"), 3000)
            .expect("scrape");
        let all = f.exemplars("req_seconds_bucket");
        assert!(all.contains(&("xyz".into(), 0.25, 3000)), "{all:?}");
        assert_eq!(all.len(), 3);
        // A scrape that fails stores none of its exemplars.
        let bad = OM_BODY.replace("xyz", "bad").replace("# EOF\n", "");
        f.scrape_om(&bad, 4000).expect_err("no EOF");
        assert!(
            !f.exemplars("req_seconds_bucket")
                .iter()
                .any(|e| e.0 == "bad")
        );
        // Series labels are the final ones, target labels included.
        let series = f.exemplars.select(i64::MIN, i64::MAX, |_| true);
        assert_eq!(series[0].series.get("job"), Some("j"));
    }

    /// Allocations of the last of `n` identical scrapes of `body` (the steady state).
    fn steady_allocations(f: &mut Fixture, body: &str, om: bool, t0: i64) -> u64 {
        let mut last = 0;
        for i in 0..6 {
            let before = crate::alloc_count::allocations();
            let t = t0 + i * 1000;
            if om {
                f.scrape_om(body, t).expect("scrape");
            } else {
                f.scrape(body, t).expect("scrape");
            }
            last = crate::alloc_count::allocations() - before;
        }
        last
    }

    #[test]
    fn metadata_and_repeated_exemplars_cost_no_allocation_in_the_steady_state() {
        // Text: the same body with and without its HELP/TYPE lines allocates the same.
        let with_meta = edgeprom_exposition::testgen::dynamo_body(500);
        let without: String = with_meta
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(with_meta.len(), without.len());
        let a = steady_allocations(&mut fixture(""), &with_meta, false, 1000);
        let b = steady_allocations(&mut fixture(""), &without, false, 1000);
        assert_eq!(a, b, "metadata allocates per scrape");
        // OpenMetrics: unchanged exemplars (with the store on) allocate nothing either.
        let without_ex: String = OM_BODY
            .lines()
            .map(|l| format!("{}\n", l.split(" # {").next().unwrap_or(l)))
            .collect();
        let mut f = fixture("");
        let a = steady_allocations(&mut f, OM_BODY, true, 1000);
        assert_eq!(f.exemplars("req_seconds_bucket").len(), 2);
        let b = steady_allocations(&mut fixture(""), &without_ex, true, 1000);
        assert_eq!(a, b, "repeated exemplars allocate per scrape");
    }

    /// Steady-state cost of one scrape of a 10k-series Dynamo-shaped body (parse, cache hits,
    /// metadata, append, commit), for before/after comparisons of the hot path:
    /// `cargo test -p edgeprom-scrape --release -- --ignored --nocapture steady_state`.
    #[test]
    #[ignore = "timing, run by hand"]
    fn steady_state_scrape_timing() {
        let body = edgeprom_exposition::testgen::dynamo_body(10_000);
        let mut f = fixture("");
        for i in 0..20 {
            f.scrape(&body, i * 1000).expect("warm-up scrape");
        }
        // This thread's CPU time (utime + stime, in clock ticks of 10 ms) from /proc, which
        // other processes competing for the cores do not inflate the way they inflate wall time.
        let cpu_ticks = || -> u64 {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
            let after_comm = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let fields: Vec<&str> = after_comm.split_whitespace().collect();
            let field = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            field(11) + field(12)
        };
        let rounds = 1000;
        let start = Instant::now();
        let cpu0 = cpu_ticks();
        for i in 20..20 + rounds {
            f.scrape(&body, i * 1000).expect("scrape");
        }
        let cpu_ms = (cpu_ticks() - cpu0) as f64 * 10.0 / rounds as f64;
        let per = start.elapsed() / rounds as u32;
        println!("steady-state scrape of 10k series: {per:?} per scrape, cpu {cpu_ms:.3}ms");
    }

    #[test]
    fn timestamps_snap_to_the_grid_within_tolerance() {
        let iv = Duration::from_secs(2);
        assert_eq!(align_timestamp(1000, None, iv), 1000);
        assert_eq!(align_timestamp(3001, Some(1000), iv), 3000);
        assert_eq!(align_timestamp(2998, Some(1000), iv), 3000);
        assert_eq!(align_timestamp(3003, Some(1000), iv), 3003);
        // 1 % of a 100 ms interval is 1 ms: a 2 ms deviation stays.
        assert_eq!(
            align_timestamp(1102, Some(1000), Duration::from_millis(100)),
            1102
        );
    }

    #[test]
    fn start_offsets_are_stable_per_target_and_within_the_interval() {
        let iv = Duration::from_secs(10);
        let now = UNIX_EPOCH + Duration::from_secs(1_000_003);
        let a = start_offset(42, iv, now);
        assert_eq!(a, start_offset(42, iv, now));
        assert!(a <= iv);
        // The phase (now + offset) mod interval depends only on the hash.
        let later = now + Duration::from_millis(3700);
        let phase = |h, n: SystemTime| {
            (n.duration_since(UNIX_EPOCH).unwrap() + start_offset(h, iv, n)).as_millis() % 10_000
        };
        assert_eq!(phase(42, now), phase(42, later));
        assert_ne!(phase(42, now), phase(5_000_000_042, now));
    }
}
