//! A deterministic, Dynamo-shaped corpus: the six scrape jobs of Dynamo's
//! `deploy/observability/prometheus.yml`, each on its own interval grid, with the metric names,
//! labels and histogram buckets a Dynamo deployment exposes (see
//! `shared/dynamo-corpus/notes/metrics.md`).
//!
//! Jobs and what scales with the number of backend workers `N`:
//!
//! | job | interval | targets | series per target |
//! |---|---|---|---|
//! | `nats-prometheus-exporter` | 2 s | 1 | fixed (`gnatsd_*`, `jetstream_*`) |
//! | `etcd-server` | 2 s | 1 | fixed (`etcd_*`, `grpc_server_*`, `go_*`, `process_*`) |
//! | `dcgm-exporter` | 5 s | one per 8 GPUs | 26 `DCGM_FI_*` per GPU, one GPU per worker |
//! | `dynamo-frontend` | 10 s | 1 | per model plus 5 per worker |
//! | `dynamo-backend` | 6 s | `N` | `dynamo_component_*` and `vllm:*` |
//! | `kvbm-metrics` | 2 s | 1 | fixed (`kvbm_*`) |
//!
//! Every target also carries Prometheus's five synthetic scrape series (`up`, ...), as a stored
//! scrape would. Exact counts for a given `N` come from [`Corpus::stats`] (`dynamo-corpus --stats`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Small deterministic PRNG (xorshift64*): the corpus must be byte-identical for a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator; any seed works.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the corpus holds.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of Dynamo backend workers (each with one GPU).
    pub workers: usize,
    /// Length of the corpus in seconds.
    pub duration_s: i64,
    /// PRNG seed: the same seed gives the same bytes.
    pub seed: u64,
    /// First timestamp in seconds. The default is aligned to a 2 h boundary so that promtool's
    /// backfill puts an hour into one block.
    pub start_s: i64,
}

/// 2026-01-01T00:00:00Z: a multiple of 7,200 s and of every job interval.
pub const DEFAULT_START_S: i64 = 1_767_225_600;

/// Default worker count: gives ≈ 33 M samples per hour, the corpus size the compare issue names.
pub const DEFAULT_WORKERS: usize = 100;

impl Default for Config {
    fn default() -> Config {
        Config {
            workers: DEFAULT_WORKERS,
            duration_s: 3600,
            seed: 1,
            start_s: DEFAULT_START_S,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    /// Counters exposed without `_total` (kvbm, `kv_cache_events_applied`): OpenMetrics only
    /// allows that name for an `unknown` family.
    Unknown,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone)]
enum Dyn {
    /// Rises by about `inc` per scrape, skipping a scrape with probability `idle`.
    Counter {
        v: f64,
        inc: f64,
        idle: f64,
        int: bool,
    },
    /// Random walk within `[lo, hi]`.
    Gauge {
        v: f64,
        lo: f64,
        hi: f64,
        step: f64,
        int: bool,
    },
    Const(f64),
    /// Per-bucket (non-cumulative) counts, the last one being `+Inf`.
    Hist {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        sum: f64,
        typical: f64,
        rate: f64,
        idle: f64,
    },
}

#[derive(Debug, Clone)]
struct Member {
    /// `name{labels} ` for each line the member writes (a histogram writes buckets, sum, count).
    prefixes: Vec<String>,
    dynamics: Dyn,
}

#[derive(Debug, Clone)]
struct Family {
    name: String,
    kind: Kind,
    members: Vec<Member>,
}

/// One scrape target: its job's interval and everything it exposes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The job name.
    pub job: &'static str,
    /// The `instance` label.
    pub instance: String,
    /// Scrape interval in seconds.
    pub interval_s: i64,
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

/// Series and samples per job, for sizing.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// `(job, interval_s, targets, series, samples)` per job, in job order.
    pub jobs: Vec<(&'static str, i64, usize, usize, u64)>,
    /// All series.
    pub series: usize,
    /// All samples over the configured duration.
    pub samples: u64,
}

/// The generator: targets with their state, advanced scrape by scrape.
#[derive(Debug, Clone)]
pub struct Corpus {
    config: Config,
    targets: Vec<Target>,
    rng: Rng,
}

const MODELS: [(&str, &str); 6] = [
    ("Qwen/Qwen3-0.6B", "qwen/qwen3-0.6b"),
    (
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/llama-3.1-8b-instruct",
    ),
    (
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        "deepseek-ai/deepseek-r1-distill-llama-8b",
    ),
    (
        "mistralai/Mistral-7B-Instruct-v0.3",
        "mistralai/mistral-7b-instruct-v0.3",
    ),
    ("google/gemma-2-9b-it", "google/gemma-2-9b-it"),
    (
        "Qwen/Qwen2.5-Coder-32B-Instruct",
        "qwen/qwen2.5-coder-32b-instruct",
    ),
];

/// Buckets as the frontend's log-spaced, 2-significant-figure algorithm prints them.
const FE_DURATION: &[f64] = &[0.0, 1.9, 3.4, 6.3, 12.0, 22.0, 40.0, 75.0, 140.0, 260.0];
const FE_ISL: &[f64] = &[
    0.0, 100.0, 210.0, 430.0, 870.0, 1800.0, 3600.0, 7400.0, 15000.0, 31000.0, 63000.0, 130000.0,
];
const FE_OSL: &[f64] = &[
    0.0, 100.0, 210.0, 430.0, 880.0, 1800.0, 3700.0, 7600.0, 16000.0, 32000.0,
];
const FE_TTFT: &[f64] = &[
    0.0, 0.0022, 0.0047, 0.01, 0.022, 0.047, 0.1, 0.22, 0.47, 1.0, 2.2, 4.7, 10.0, 22.0, 48.0,
    100.0, 220.0, 480.0,
];
const FE_ITL: &[f64] = &[
    0.0, 0.0019, 0.0035, 0.0067, 0.013, 0.024, 0.045, 0.084, 0.16, 0.3, 0.56, 1.1, 2.0,
];
const PROM_DEFAULT: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const STAGE: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0,
];
const TOKENIZER_MS: &[f64] = &[
    0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
];
const SUB_SECOND: &[f64] = &[0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0];
const FIRST_RESPONSE: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const VLLM_TTFT: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const VLLM_ITL: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
const VLLM_E2E: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];
const VLLM_TOKENS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];
const VLLM_ITER_TOKENS: &[f64] = &[
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
];
const ETCD_DISK: &[f64] = &[
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192,
];
const ROUTER_OVERHEAD: &[f64] = &[
    0.01, 0.03, 0.09, 0.27, 0.81, 2.43, 7.29, 21.87, 65.61, 196.83, 590.49, 1771.47, 5314.41,
    15943.23, 47829.69, 143489.07, 430467.21,
];

/// A bucket bound in the canonical form Prometheus 3 normalises `le` to (`1.0`, `0.0019`, `+Inf`),
/// so every store sees identical label values.
pub fn canonical_le(b: f64) -> String {
    if b.is_infinite() {
        return "+Inf".to_string();
    }
    if b.fract() == 0.0 && b.abs() < 1e6 {
        format!("{b:.1}")
    } else {
        format!("{b}")
    }
}

fn render_labels(out: &mut String, name: &str, base: &[(&str, String)], labels: &[(&str, &str)]) {
    out.push_str(name);
    out.push('{');
    let mut first = true;
    let all = base
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .chain(labels.iter().copied());
    for (n, v) in all {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push_str("} ");
}

/// Builds one target's families.
struct TargetBuilder<'r> {
    target: Target,
    base: Vec<(&'static str, String)>,
    rng: &'r mut Rng,
}

impl TargetBuilder<'_> {
    fn new<'r>(
        rng: &'r mut Rng,
        job: &'static str,
        instance: String,
        interval_s: i64,
    ) -> TargetBuilder<'r> {
        TargetBuilder {
            base: vec![("job", job.to_string()), ("instance", instance.clone())],
            target: Target {
                job,
                instance,
                interval_s,
                families: Vec::new(),
                index: HashMap::new(),
            },
            rng,
        }
    }

    fn family(&mut self, name: &str, kind: Kind) -> &mut Family {
        let i = match self.target.index.get(name) {
            Some(&i) => i,
            None => {
                self.target.families.push(Family {
                    name: name.to_string(),
                    kind,
                    members: Vec::new(),
                });
                let i = self.target.families.len() - 1;
                self.target.index.insert(name.to_string(), i);
                i
            }
        };
        &mut self.target.families[i]
    }

    fn prefix(&self, name: &str, labels: &[(&str, &str)]) -> String {
        let mut s = String::new();
        render_labels(&mut s, name, &self.base, labels);
        s
    }

    /// A counter family `name` whose sample is `name_total`; `inc` per scrape on average.
    fn counter(&mut self, name: &str, labels: &[(&str, &str)], inc: f64, idle: f64) {
        let int = inc >= 1.0;
        let start = (self.rng.unit() * inc * 5_000.0).round();
        let m = Member {
            prefixes: vec![self.prefix(&format!("{name}_total"), labels)],
            dynamics: Dyn::Counter {
                v: start,
                inc,
                idle,
                int,
            },
        };
        self.family(name, Kind::Counter).members.push(m);
    }

    /// A counter exposed without `_total`.
    fn raw_counter(&mut self, name: &str, labels: &[(&str, &str)], inc: f64, idle: f64) {
        let start = (self.rng.unit() * inc * 5_000.0).round();
        let m = Member {
            prefixes: vec![self.prefix(name, labels)],
            dynamics: Dyn::Counter {
                v: start,
                inc,
                idle,
                int: true,
            },
        };
        self.family(name, Kind::Unknown).members.push(m);
    }

    fn gauge(&mut self, name: &str, labels: &[(&str, &str)], lo: f64, hi: f64, int: bool) {
        let v = lo + self.rng.unit() * (hi - lo);
        let v = if int { v.round() } else { v };
        let m = Member {
            prefixes: vec![self.prefix(name, labels)],
            dynamics: Dyn::Gauge {
                v,
                lo,
                hi,
                step: (hi - lo) / 50.0,
                int,
            },
        };
        self.family(name, Kind::Gauge).members.push(m);
    }

    fn constant(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let m = Member {
            prefixes: vec![self.prefix(name, labels)],
            dynamics: Dyn::Const(v),
        };
        self.family(name, Kind::Gauge).members.push(m);
    }

    /// A classic histogram: observations around `typical`, `rate` per scrape on average.
    fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        typical: f64,
        rate: f64,
    ) {
        let mut prefixes = Vec::with_capacity(bounds.len() + 3);
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        let les: Vec<String> = bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .map(canonical_le)
            .collect();
        for le in &les {
            with_le.truncate(labels.len());
            with_le.push(("le", le));
            prefixes.push(self.prefix(&format!("{name}_bucket"), &with_le));
        }
        prefixes.push(self.prefix(&format!("{name}_sum"), labels));
        prefixes.push(self.prefix(&format!("{name}_count"), labels));
        let m = Member {
            prefixes,
            dynamics: Dyn::Hist {
                bounds: bounds.to_vec(),
                counts: vec![0; bounds.len() + 1],
                sum: 0.0,
                typical,
                rate,
                // Registered-but-idle histograms are common (notes §11: eager registration).
                idle: if self.rng.below(4) == 0 { 1.0 } else { 0.3 },
            },
        };
        self.family(name, Kind::Histogram).members.push(m);
    }

    fn scrape_meta(&mut self) {
        self.constant("up", &[], 1.0);
        self.gauge("scrape_duration_seconds", &[], 0.002, 0.08, false);
        let series: usize = self
            .target
            .families
            .iter()
            .flat_map(|f| &f.members)
            .map(|m| m.prefixes.len())
            .sum();
        let n = series as f64 + 5.0;
        self.constant("scrape_samples_scraped", &[], n - 5.0);
        self.constant("scrape_samples_post_metric_relabeling", &[], n - 5.0);
        self.constant("scrape_series_added", &[], 0.0);
    }

    fn build(mut self) -> Target {
        self.scrape_meta();
        self.target
    }
}

fn nats(rng: &mut Rng) -> Target {
    let mut b = TargetBuilder::new(
        rng,
        "nats-prometheus-exporter",
        "nats-prometheus-exporter:7777".into(),
        2,
    );
    let sid: &[(&str, &str)] = &[(
        "server_id",
        "NDWHG3JCGC4VZWQOXH6Q2BIFHX6NDHHHWVHIUEBVUDKNA3SQXRC5VQ4V",
    )];
    for g in [
        "gnatsd_varz_connections",
        "gnatsd_varz_subscriptions",
        "gnatsd_varz_slow_consumers",
        "gnatsd_varz_mem",
        "gnatsd_varz_cpu",
        "gnatsd_varz_routes",
        "gnatsd_varz_remotes",
        "gnatsd_varz_leafnodes",
        "gnatsd_varz_cores",
        "gnatsd_varz_max_connections",
        "gnatsd_varz_max_payload",
        "gnatsd_varz_uptime",
        "gnatsd_connz_num_connections",
        "gnatsd_connz_total",
        "gnatsd_connz_pending_bytes",
        "gnatsd_connz_subscriptions",
        "gnatsd_routez_num_routes",
        "gnatsd_subz_num_subscriptions",
        "gnatsd_subz_num_cache",
        "gnatsd_subz_num_inserts",
        "gnatsd_subz_num_removes",
        "gnatsd_subz_num_matches",
        "gnatsd_subz_cache_hit_rate",
        "gnatsd_subz_max_fanout",
        "gnatsd_subz_avg_fanout",
        "gnatsd_leafz_conn_count",
        "gnatsd_gatewayz_outbound_gateways_count",
        "gnatsd_gatewayz_inbound_gateways_count",
        "jetstream_server_total_streams",
        "jetstream_server_total_consumers",
        "jetstream_server_total_messages",
        "jetstream_server_total_message_bytes",
        "jetstream_server_max_memory",
        "jetstream_server_max_storage",
        "jetstream_server_jetstream_disabled",
    ] {
        b.gauge(g, sid, 0.0, 1000.0, true);
    }
    for c in [
        "gnatsd_varz_in_msgs",
        "gnatsd_varz_out_msgs",
        "gnatsd_varz_in_bytes",
        "gnatsd_varz_out_bytes",
        "gnatsd_connz_in_msgs",
        "gnatsd_connz_out_msgs",
        "gnatsd_connz_in_bytes",
        "gnatsd_connz_out_bytes",
        "gnatsd_varz_total_connections",
    ] {
        b.raw_counter(c, sid, 900.0, 0.05);
    }
    // JetStream streams Dynamo creates (KV events, the request plane) and their consumers.
    for stream in [
        "namespace-dynamo-kv-events",
        "namespace-dynamo-requests",
        "KV_dynamo-metadata",
    ] {
        let l = [
            sid[0],
            ("stream_name", stream),
            ("account", "$G"),
            ("is_meta_leader", "true"),
        ];
        for g in [
            "jetstream_stream_total_messages",
            "jetstream_stream_total_bytes",
            "jetstream_stream_first_seq",
            "jetstream_stream_last_seq",
            "jetstream_stream_consumer_count",
        ] {
            b.gauge(g, &l, 0.0, 1e6, true);
        }
        for consumer in 0..3 {
            let name = format!("consumer-{consumer}");
            let lc = [l[0], l[1], l[2], ("consumer_name", name.as_str())];
            for g in [
                "jetstream_consumer_num_pending",
                "jetstream_consumer_num_ack_pending",
                "jetstream_consumer_delivered_consumer_seq",
                "jetstream_consumer_num_redelivered",
            ] {
                b.gauge(g, &lc, 0.0, 5000.0, true);
            }
        }
    }
    b.build()
}

fn etcd(rng: &mut Rng) -> Target {
    let mut b = TargetBuilder::new(rng, "etcd-server", "etcd-server:2379".into(), 2);
    for g in [
        "etcd_server_has_leader",
        "etcd_server_is_leader",
        "etcd_server_leader_changes_seen_total",
        "etcd_server_proposals_pending",
        "etcd_server_quota_backend_bytes",
        "etcd_mvcc_db_total_size_in_bytes",
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "etcd_debugging_mvcc_keys_total",
        "etcd_debugging_mvcc_watcher_total",
        "etcd_debugging_mvcc_watch_stream_total",
        "etcd_network_client_grpc_received_bytes_total",
        "etcd_network_client_grpc_sent_bytes_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "go_goroutines",
        "go_threads",
        "go_memstats_alloc_bytes",
        "go_memstats_heap_inuse_bytes",
        "go_memstats_heap_objects",
        "go_memstats_stack_inuse_bytes",
        "go_memstats_sys_bytes",
        "go_memstats_next_gc_bytes",
    ] {
        b.gauge(g, &[], 0.0, 5e7, true);
    }
    for c in [
        "etcd_server_proposals_committed",
        "etcd_server_proposals_applied",
        "etcd_server_proposals_failed",
        "etcd_mvcc_put",
        "etcd_mvcc_delete",
        "etcd_mvcc_range",
        "etcd_mvcc_txn",
        "process_cpu_seconds",
        "go_memstats_alloc_bytes",
        "go_memstats_mallocs",
        "go_memstats_frees",
        "go_gc_cycles_automatic_gc_cycles",
    ] {
        b.counter(c, &[], 40.0, 0.1);
    }
    b.histogram(
        "etcd_disk_wal_fsync_duration_seconds",
        &[],
        ETCD_DISK,
        0.004,
        6.0,
    );
    b.histogram(
        "etcd_disk_backend_commit_duration_seconds",
        &[],
        ETCD_DISK,
        0.008,
        3.0,
    );
    b.histogram(
        "etcd_mvcc_db_compaction_pause_duration_milliseconds",
        &[],
        VLLM_ITER_TOKENS,
        3.0,
        0.1,
    );
    for (svc, methods) in [
        (
            "etcdserverpb.KV",
            &["Range", "Put", "DeleteRange", "Txn", "Compact"][..],
        ),
        (
            "etcdserverpb.Lease",
            &[
                "LeaseGrant",
                "LeaseRevoke",
                "LeaseKeepAlive",
                "LeaseTimeToLive",
            ][..],
        ),
        ("etcdserverpb.Watch", &["Watch"][..]),
        ("etcdserverpb.Maintenance", &["Status"][..]),
    ] {
        for m in methods {
            let kind = if *m == "Watch" || *m == "LeaseKeepAlive" {
                "bidi_stream"
            } else {
                "unary"
            };
            let l = [
                ("grpc_method", *m),
                ("grpc_service", svc),
                ("grpc_type", kind),
            ];
            b.counter("grpc_server_started", &l, 20.0, 0.2);
            b.counter("grpc_server_msg_received", &l, 20.0, 0.2);
            b.counter("grpc_server_msg_sent", &l, 20.0, 0.2);
            for code in ["OK", "Canceled", "Unavailable"] {
                let l = [l[0], l[1], l[2], ("grpc_code", code)];
                let inc = if code == "OK" { 20.0 } else { 0.05 };
                b.counter("grpc_server_handled", &l, inc, 0.5);
            }
        }
    }
    for q in ["0", "0.25", "0.5", "0.75", "1"] {
        b.gauge(
            "go_gc_duration_seconds",
            &[("quantile", q)],
            1e-5,
            2e-3,
            false,
        );
    }
    b.build()
}

fn kvbm(rng: &mut Rng) -> Target {
    let mut b = TargetBuilder::new(rng, "kvbm-metrics", "kvbm-leader:6880".into(), 2);
    for c in [
        "kvbm_offload_blocks_d2h",
        "kvbm_offload_blocks_h2d",
        "kvbm_offload_blocks_d2d",
        "kvbm_offload_blocks_d2o",
        "kvbm_onboard_blocks_h2d",
        "kvbm_onboard_blocks_d2d",
        "kvbm_onboard_blocks_o2d",
        "kvbm_matched_tokens",
        "kvbm_object_read_failures",
        "kvbm_object_write_failures",
        "kvbm_offload_bytes_object",
        "kvbm_onboard_bytes_object",
    ] {
        let inc = if c.ends_with("failures") { 0.01 } else { 60.0 };
        b.raw_counter(c, &[], inc, 0.3);
    }
    for g in [
        "kvbm_host_cache_hit_rate",
        "kvbm_disk_cache_hit_rate",
        "kvbm_object_cache_hit_rate",
    ] {
        b.gauge(g, &[], 0.0, 1.0, false);
    }
    b.build()
}

fn frontend(rng: &mut Rng, models: usize, workers: usize) -> Target {
    let mut b = TargetBuilder::new(rng, "dynamo-frontend", "dynamo-frontend:8000".into(), 10);
    b.gauge("dynamo_frontend_disconnected_clients", &[], 0.0, 3.0, true);
    for &(served, lower) in &MODELS[..models] {
        let m = [("model", lower)];
        for endpoint in ["chat_completions", "completions"] {
            for rt in ["stream", "unary"] {
                for (status, et) in [
                    ("success", ""),
                    ("error", "cancelled"),
                    ("error", "internal"),
                ] {
                    let mut l = vec![
                        ("endpoint", endpoint),
                        ("model", lower),
                        ("request_type", rt),
                        ("status", status),
                    ];
                    if !et.is_empty() {
                        l.push(("error_type", et));
                    }
                    let inc = if status == "success" { 30.0 } else { 0.05 };
                    b.counter("dynamo_frontend_requests", &l, inc, 0.1);
                }
                b.counter(
                    "dynamo_frontend_model_cancellation",
                    &[
                        ("endpoint", endpoint),
                        ("model", lower),
                        ("request_type", rt),
                    ],
                    0.05,
                    0.9,
                );
            }
            b.counter(
                "dynamo_frontend_model_rejection",
                &[("endpoint", endpoint), ("model", lower)],
                0.02,
                0.95,
            );
        }
        for g in [
            "dynamo_frontend_inflight_requests",
            "dynamo_frontend_active_requests",
            "dynamo_frontend_queued_requests",
        ] {
            b.gauge(g, &m, 0.0, 64.0, true);
        }
        b.histogram(
            "dynamo_frontend_request_duration_seconds",
            &m,
            FE_DURATION,
            4.0,
            30.0,
        );
        b.histogram(
            "dynamo_frontend_input_sequence_tokens",
            &m,
            FE_ISL,
            1500.0,
            30.0,
        );
        b.histogram(
            "dynamo_frontend_output_sequence_tokens",
            &m,
            FE_OSL,
            300.0,
            30.0,
        );
        b.histogram("dynamo_frontend_cached_tokens", &m, FE_ISL, 600.0, 30.0);
        b.histogram(
            "dynamo_frontend_time_to_first_token_seconds",
            &m,
            FE_TTFT,
            0.12,
            30.0,
        );
        b.histogram(
            "dynamo_frontend_inter_token_latency_seconds",
            &m,
            FE_ITL,
            0.012,
            300.0,
        );
        b.counter("dynamo_frontend_output_tokens", &m, 9000.0, 0.1);
        for mt in ["new_request", "ongoing_request"] {
            b.counter(
                "dynamo_frontend_model_migration",
                &[("migration_type", mt), ("model", lower)],
                0.01,
                0.98,
            );
        }
        b.counter(
            "dynamo_frontend_model_migration_max_seq_len_exceeded",
            &m,
            0.01,
            0.99,
        );
        let sm = [("model", served)];
        b.constant("dynamo_frontend_model_total_kv_blocks", &sm, 92962.0);
        b.constant("dynamo_frontend_model_max_num_seqs", &sm, 256.0);
        b.constant("dynamo_frontend_model_max_num_batched_tokens", &sm, 16384.0);
        b.constant("dynamo_frontend_model_context_length", &sm, 40960.0);
        b.constant("dynamo_frontend_model_kv_cache_block_size", &sm, 16.0);
        b.constant("dynamo_frontend_model_migration_limit", &sm, 0.0);
    }
    for op in ["tokenize", "detokenize"] {
        b.histogram(
            "dynamo_frontend_tokenizer_latency_ms",
            &[("operation", op)],
            TOKENIZER_MS,
            2.0,
            40.0,
        );
    }
    for stage in ["preprocess", "route", "transport_roundtrip", "postprocess"] {
        b.histogram(
            "dynamo_frontend_stage_duration_seconds",
            &[("stage", stage)],
            STAGE,
            0.004,
            40.0,
        );
    }
    for stage in ["preprocess", "route", "dispatch"] {
        for phase in ["prefill", "decode", "aggregated"] {
            b.gauge(
                "dynamo_frontend_stage_requests",
                &[("phase", phase), ("stage", stage)],
                0.0,
                16.0,
                true,
            );
        }
    }
    b.histogram(
        "dynamo_frontend_event_loop_delay_seconds",
        &[],
        &[0.0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0],
        0.002,
        10.0,
    );
    b.counter("dynamo_frontend_event_loop_stall", &[], 0.05, 0.9);
    let router = [
        ("dynamo_namespace", "dynamo"),
        ("dynamo_component", "router"),
        ("dynamo_endpoint", "generate"),
        ("router_id", "0"),
    ];
    b.counter("dynamo_component_router_requests", &router, 60.0, 0.1);
    b.histogram(
        "dynamo_component_router_time_to_first_token_seconds",
        &router,
        FE_TTFT,
        0.12,
        60.0,
    );
    b.histogram(
        "dynamo_component_router_inter_token_latency_seconds",
        &router,
        FE_ITL,
        0.012,
        600.0,
    );
    b.histogram(
        "dynamo_component_router_input_sequence_tokens",
        &router,
        FE_ISL,
        1500.0,
        60.0,
    );
    b.histogram(
        "dynamo_component_router_output_sequence_tokens",
        &router,
        FE_OSL,
        300.0,
        60.0,
    );
    let hit: Vec<f64> = (0..21).map(|i| 0.05 * f64::from(i)).collect();
    b.histogram(
        "dynamo_component_router_kv_hit_rate",
        &router,
        &hit,
        0.4,
        60.0,
    );
    for o in ["block_hashing", "seq_hashing"] {
        let exp: Vec<f64> = (0..15).map(|i| 0.001 * f64::from(1u32 << i)).collect();
        b.histogram(
            &format!("dynamo_router_overhead_{o}_ms"),
            &[("router_id", "0")],
            &exp,
            0.05,
            60.0,
        );
    }
    for o in ["indexer_find_matches", "scheduling", "total"] {
        b.histogram(
            &format!("dynamo_router_overhead_{o}_ms"),
            &[("router_id", "0")],
            ROUTER_OVERHEAD,
            0.5,
            60.0,
        );
    }
    for status in ["ok", "parent_block_not_found", "block_not_found"] {
        for event in ["stored", "removed", "cleared"] {
            let inc = if status == "ok" { 400.0 } else { 0.02 };
            b.raw_counter(
                "dynamo_component_kv_cache_events_applied",
                &[("event_type", event), ("status", status)],
                inc,
                0.2,
            );
        }
    }
    for w in 0..workers {
        let id = format!("{:x}", 0x694d_9a3c_0000_0000u64 + w as u64 * 0x1_0f3b);
        let l = [
            ("dp_rank", "0"),
            ("worker_id", id.as_str()),
            ("worker_type", "decode"),
        ];
        b.gauge(
            "dynamo_frontend_worker_active_decode_blocks",
            &l,
            0.0,
            8192.0,
            true,
        );
        b.gauge(
            "dynamo_frontend_worker_active_prefill_tokens",
            &l,
            0.0,
            16384.0,
            true,
        );
        b.gauge(
            "dynamo_frontend_worker_last_time_to_first_token_seconds",
            &l,
            0.01,
            2.0,
            false,
        );
        b.gauge(
            "dynamo_frontend_worker_last_input_sequence_tokens",
            &l,
            1.0,
            8000.0,
            true,
        );
        b.gauge(
            "dynamo_frontend_worker_last_inter_token_latency_seconds",
            &l,
            0.005,
            0.05,
            false,
        );
    }
    b.build()
}

fn backend(rng: &mut Rng, worker: usize, models: usize) -> Target {
    let (served, lower) = MODELS[worker % models];
    let instance = format!("vllm-worker-{worker:03}:8081");
    let mut b = TargetBuilder::new(rng, "dynamo-backend", instance, 6);
    let ns = [
        ("dynamo_component", "backend"),
        ("dynamo_namespace", "dynamo"),
    ];
    for ep in [
        "generate",
        "clear_kv_blocks",
        "list_loras",
        "load_lora",
        "unload_lora",
    ] {
        let busy = ep == "generate";
        let l = [ns[0], ("dynamo_endpoint", ep), ns[1], ("model", lower)];
        let (inc, idle) = if busy { (6.0, 0.1) } else { (0.01, 0.99) };
        b.counter("dynamo_component_requests", &l, inc, idle);
        b.counter("dynamo_component_request_bytes", &l, inc * 4000.0, idle);
        b.counter("dynamo_component_response_bytes", &l, inc * 90_000.0, idle);
        b.counter("dynamo_component_cancellation", &l, inc / 100.0, 0.95);
        b.gauge(
            "dynamo_component_inflight_requests",
            &l,
            0.0,
            if busy { 32.0 } else { 1.0 },
            true,
        );
        b.histogram(
            "dynamo_component_request_duration_seconds",
            &l,
            PROM_DEFAULT,
            if busy { 3.0 } else { 0.01 },
            inc,
        );
        for et in ["generate", "response_stream"] {
            let le = [l[0], l[1], l[2], ("error_type", et), l[3]];
            b.counter("dynamo_component_errors", &le, 0.001, 0.999);
        }
    }
    b.gauge("dynamo_component_total_blocks", &ns, 8192.0, 8192.0, true);
    b.gauge(
        "dynamo_component_gpu_cache_usage_percent",
        &ns,
        0.0,
        1.0,
        false,
    );
    b.gauge(
        "dynamo_component_kvstats_active_blocks",
        &ns,
        0.0,
        8192.0,
        true,
    );
    b.gauge(
        "dynamo_component_kvstats_total_blocks",
        &ns,
        8192.0,
        8192.0,
        true,
    );
    b.gauge(
        "dynamo_component_kvstats_gpu_cache_usage_percent",
        &ns,
        0.0,
        1.0,
        false,
    );
    b.gauge(
        "dynamo_component_kvstats_gpu_prefix_cache_hit_rate",
        &ns,
        0.0,
        1.0,
        false,
    );
    b.counter("dynamo_component_uptime_seconds", &[], 6.0, 0.0);
    b.constant(
        "dynamo_component_model_load_time_seconds",
        &[],
        41.7 + (worker % 7) as f64,
    );
    for w in 0..4 {
        let ws = w.to_string();
        let l = [("worker", ws.as_str())];
        b.gauge(
            "dynamo_tokio_worker_mean_poll_time_ns",
            &l,
            1000.0,
            90_000.0,
            true,
        );
        b.gauge("dynamo_tokio_worker_busy_ratio", &l, 0.0, 1.0, false);
        b.gauge("dynamo_tokio_worker_local_queue_depth", &l, 0.0, 64.0, true);
        b.counter("dynamo_tokio_worker_park_count", &l, 300.0, 0.0);
        b.counter("dynamo_tokio_worker_steal_count", &l, 20.0, 0.2);
        b.counter("dynamo_tokio_worker_overflow_count", &l, 0.1, 0.9);
    }
    for g in [
        "dynamo_tokio_global_queue_depth",
        "dynamo_tokio_blocking_threads",
        "dynamo_tokio_blocking_idle_threads",
        "dynamo_tokio_blocking_queue_depth",
        "dynamo_tokio_alive_tasks",
    ] {
        b.gauge(g, &[], 0.0, 200.0, true);
    }
    b.counter("dynamo_tokio_budget_forced_yield", &[], 5.0, 0.3);
    b.histogram(
        "dynamo_work_handler_network_transit_seconds",
        &[],
        SUB_SECOND,
        0.002,
        6.0,
    );
    b.histogram(
        "dynamo_work_handler_time_to_first_response_seconds",
        &[],
        FIRST_RESPONSE,
        0.1,
        6.0,
    );
    b.histogram(
        "dynamo_request_plane_queue_seconds",
        &[],
        SUB_SECOND,
        0.0005,
        6.0,
    );
    b.histogram(
        "dynamo_request_plane_send_seconds",
        &[],
        SUB_SECOND,
        0.001,
        6.0,
    );
    b.histogram(
        "dynamo_request_plane_roundtrip_ttft_seconds",
        &[],
        &FIRST_RESPONSE[..11],
        0.1,
        6.0,
    );
    b.gauge(
        "dynamo_request_plane_inflight_requests",
        &[],
        0.0,
        32.0,
        true,
    );
    for g in [
        "dynamo_transport_tcp_pool_active",
        "dynamo_transport_tcp_pool_idle",
        "dynamo_transport_tcp_server_queue_depth",
    ] {
        b.gauge(g, &[], 0.0, 16.0, true);
    }
    b.counter("dynamo_transport_tcp_bytes_sent", &[], 500_000.0, 0.1);
    b.counter("dynamo_transport_tcp_bytes_received", &[], 30_000.0, 0.1);
    // vLLM pass-through: the engine's `model_name` plus the `model` and component labels the
    // bridge adds.
    let v = [
        ("dynamo_component", "backend"),
        ("dynamo_namespace", "dynamo"),
        ("engine", "0"),
        ("model", lower),
        ("model_name", served),
    ];
    for (g, hi, int) in [
        ("vllm:num_requests_running", 64.0, true),
        ("vllm:num_requests_waiting", 16.0, true),
        ("vllm:kv_cache_usage_perc", 1.0, false),
        ("vllm:engine_sleep_state", 0.0, true),
    ] {
        b.gauge(g, &v, 0.0, hi, int);
    }
    for reason in ["stop", "length", "abort"] {
        let l = [v[0], v[1], v[2], ("finished_reason", reason), v[3], v[4]];
        b.counter(
            "vllm:request_success",
            &l,
            if reason == "stop" { 5.0 } else { 0.3 },
            0.2,
        );
    }
    for (c, inc) in [
        ("vllm:prompt_tokens", 9000.0),
        ("vllm:generation_tokens", 1800.0),
        ("vllm:num_preemptions", 0.02),
        ("vllm:prefix_cache_queries", 9000.0),
        ("vllm:prefix_cache_hits", 4000.0),
    ] {
        b.counter(c, &v, inc, 0.1);
    }
    b.histogram("vllm:time_to_first_token_seconds", &v, VLLM_TTFT, 0.12, 6.0);
    b.histogram(
        "vllm:inter_token_latency_seconds",
        &v,
        VLLM_ITL,
        0.015,
        60.0,
    );
    b.histogram(
        "vllm:request_time_per_output_token_seconds",
        &v,
        VLLM_ITL,
        0.015,
        6.0,
    );
    for h in [
        "vllm:e2e_request_latency_seconds",
        "vllm:request_queue_time_seconds",
        "vllm:request_inference_time_seconds",
        "vllm:request_prefill_time_seconds",
        "vllm:request_decode_time_seconds",
    ] {
        let typical = if h.contains("queue") { 0.05 } else { 3.0 };
        b.histogram(h, &v, VLLM_E2E, typical, 6.0);
    }
    b.histogram("vllm:request_prompt_tokens", &v, VLLM_TOKENS, 1500.0, 6.0);
    b.histogram(
        "vllm:request_generation_tokens",
        &v,
        VLLM_TOKENS,
        300.0,
        6.0,
    );
    b.histogram("vllm:request_params_n", &v, VLLM_TOKENS, 1.0, 6.0);
    b.histogram(
        "vllm:request_params_max_tokens",
        &v,
        VLLM_TOKENS,
        2000.0,
        6.0,
    );
    b.histogram(
        "vllm:iteration_tokens_total",
        &v,
        VLLM_ITER_TOKENS,
        256.0,
        60.0,
    );
    b.build()
}

fn dcgm(rng: &mut Rng, host: usize, gpus: std::ops::Range<usize>) -> Target {
    let hostname = format!("gpu-node-{host:02}");
    let mut b = TargetBuilder::new(rng, "dcgm-exporter", format!("{hostname}:9401"), 5);
    for g in gpus {
        let local = (g % 8).to_string();
        let uuid = format!(
            "GPU-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            0x5f2c_0000u32 + g as u32,
            g * 7 % 0xffff,
            0x4a1e,
            0x9c00 + g % 256,
            0x3f7a_0000_0000u64 + g as u64
        );
        let bus = format!("00000000:{:02X}:00.0", 0x18 + (g % 8) * 0x10);
        let device = format!("nvidia{local}");
        let l = [
            ("DCGM_FI_DRIVER_VERSION", "570.124.06"),
            ("Hostname", hostname.as_str()),
            ("UUID", uuid.as_str()),
            ("device", device.as_str()),
            ("gpu", local.as_str()),
            ("modelName", "NVIDIA H100 80GB HBM3"),
            ("pci_bus_id", bus.as_str()),
        ];
        for (name, lo, hi, int) in [
            ("DCGM_FI_DEV_GPU_UTIL", 0.0, 100.0, true),
            ("DCGM_FI_DEV_MEM_COPY_UTIL", 0.0, 100.0, true),
            ("DCGM_FI_DEV_FB_USED", 60_000.0, 79_000.0, true),
            ("DCGM_FI_DEV_FB_FREE", 1_000.0, 20_000.0, true),
            ("DCGM_FI_DEV_FB_RESERVED", 500.0, 500.0, true),
            ("DCGM_FI_DEV_GPU_TEMP", 35.0, 80.0, true),
            ("DCGM_FI_DEV_MEMORY_TEMP", 35.0, 85.0, true),
            ("DCGM_FI_DEV_POWER_USAGE", 70.0, 700.0, false),
            ("DCGM_FI_DEV_SM_CLOCK", 345.0, 1980.0, true),
            ("DCGM_FI_DEV_MEM_CLOCK", 2619.0, 2619.0, true),
            ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0.0, 1.0, false),
            ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", 0.0, 1.0, false),
            ("DCGM_FI_PROF_DRAM_ACTIVE", 0.0, 1.0, false),
            ("DCGM_FI_PROF_PCIE_TX_BYTES", 0.0, 2e9, true),
            ("DCGM_FI_PROF_PCIE_RX_BYTES", 0.0, 2e9, true),
            ("DCGM_FI_PROF_NVLINK_TX_BYTES", 0.0, 5e10, true),
            ("DCGM_FI_PROF_NVLINK_RX_BYTES", 0.0, 5e10, true),
            ("DCGM_FI_DEV_ENC_UTIL", 0.0, 0.0, true),
            ("DCGM_FI_DEV_DEC_UTIL", 0.0, 0.0, true),
            ("DCGM_FI_DEV_XID_ERRORS", 0.0, 0.0, true),
            ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", 0.0, 0.0, true),
            ("DCGM_FI_DEV_ROW_REMAP_FAILURE", 0.0, 0.0, true),
        ] {
            b.gauge(name, &l, lo, hi, int);
        }
        for (name, inc) in [
            ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", 2_000_000.0),
            ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", 0.001),
            ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", 1e9),
            ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", 0.0),
        ] {
            // DCGM exports its counters with TYPE counter but no `_total`; OpenMetrics calls that unknown.
            b.raw_counter(name, &l, inc, 0.05);
        }
    }
    b.build()
}

impl Corpus {
    /// Builds every target for `config`. Deterministic in `config.seed`.
    pub fn new(config: Config) -> Corpus {
        let mut rng = Rng::new(config.seed);
        let workers = config.workers;
        let models = workers.div_ceil(20).clamp(1, MODELS.len());
        let mut targets = vec![nats(&mut rng), etcd(&mut rng)];
        for host in 0..workers.div_ceil(8) {
            targets.push(dcgm(
                &mut rng,
                host,
                host * 8..((host + 1) * 8).min(workers),
            ));
        }
        targets.push(frontend(&mut rng, models, workers));
        for w in 0..workers {
            targets.push(backend(&mut rng, w, models));
        }
        targets.push(kvbm(&mut rng));
        Corpus {
            config,
            targets,
            rng,
        }
    }

    /// The targets, in the order their same-timestamp scrapes are written.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Every series' label set, rendered `name{job="..",...}`, with its target's index, target
    /// by target.
    pub fn series_texts(&self) -> impl Iterator<Item = (usize, &str)> {
        self.targets.iter().enumerate().flat_map(|(i, t)| {
            t.families
                .iter()
                .flat_map(|f| &f.members)
                .flat_map(|m| &m.prefixes)
                .map(move |p| (i, p.trim_end()))
        })
    }

    /// Series and samples per job over the configured duration.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        for t in &self.targets {
            let series = t.series();
            let samples = series as u64 * scrapes(self.config.duration_s, t.interval_s);
            match stats.jobs.iter_mut().find(|j| j.0 == t.job) {
                Some(j) => {
                    j.2 += 1;
                    j.3 += series;
                    j.4 += samples;
                }
                None => stats.jobs.push((t.job, t.interval_s, 1, series, samples)),
            }
            stats.series += series;
            stats.samples += samples;
        }
        stats
    }

    /// Writes the whole corpus as OpenMetrics text: for each second of the grid, one block per
    /// target scraped at that second (its `# TYPE` lines, then its samples, each timestamped in
    /// whole seconds), and `# EOF` at the end. Returns the number of samples written.
    pub fn write<W: Write>(&mut self, out: &mut W) -> io::Result<u64> {
        let mut buf = String::with_capacity(1 << 20);
        let mut samples = 0u64;
        let end = self.config.start_s + self.config.duration_s;
        for t in self.config.start_s..end {
            for target in &mut self.targets {
                if t.rem_euclid(target.interval_s) != 0 {
                    continue;
                }
                samples += target.scrape(&mut self.rng, t, &mut buf);
                if buf.len() > 1 << 20 {
                    out.write_all(buf.as_bytes())?;
                    buf.clear();
                }
            }
        }
        buf.push_str("# EOF\n");
        out.write_all(buf.as_bytes())?;
        Ok(samples)
    }
}

fn scrapes(duration_s: i64, interval_s: i64) -> u64 {
    // Grid points in [start, start + duration) when start is on every job's grid.
    u64::try_from(duration_s.max(0) / interval_s).unwrap_or(0)
}

impl Target {
    /// Number of series this target exposes (histogram buckets, sums and counts each count).
    pub fn series(&self) -> usize {
        self.families
            .iter()
            .flat_map(|f| &f.members)
            .map(|m| m.prefixes.len())
            .sum()
    }

    /// Advances every series one scrape and renders the block at `t` seconds.
    fn scrape(&mut self, rng: &mut Rng, t: i64, out: &mut String) -> u64 {
        let mut n = 0u64;
        for f in &mut self.families {
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.word());
            for m in &mut f.members {
                m.dynamics.step(rng);
                match &m.dynamics {
                    Dyn::Hist { counts, sum, .. } => {
                        let mut cum = 0u64;
                        for (p, c) in m.prefixes.iter().zip(counts) {
                            cum += c;
                            let _ = writeln!(out, "{p}{cum} {t}");
                        }
                        let k = counts.len();
                        let _ = writeln!(out, "{}{} {t}", m.prefixes[k], sum);
                        let _ = writeln!(out, "{}{cum} {t}", m.prefixes[k + 1]);
                    }
                    Dyn::Counter { v, .. } | Dyn::Gauge { v, .. } | Dyn::Const(v) => {
                        let _ = writeln!(out, "{}{} {t}", m.prefixes[0], v);
                    }
                }
                n += m.prefixes.len() as u64;
            }
        }
        n
    }
}

impl Dyn {
    fn step(&mut self, rng: &mut Rng) {
        match self {
            Dyn::Counter { v, inc, idle, int } => {
                if rng.unit() >= *idle {
                    let d = *inc * (0.2 + 1.6 * rng.unit());
                    *v += if *int { d.round().max(1.0) } else { d };
                }
            }
            Dyn::Gauge {
                v,
                lo,
                hi,
                step,
                int,
            } => {
                let d = (rng.unit() - 0.5) * 2.0 * *step;
                let next = (*v + d).clamp(*lo, *hi);
                *v = if *int { next.round() } else { next };
            }
            Dyn::Const(_) => {}
            Dyn::Hist {
                bounds,
                counts,
                sum,
                typical,
                rate,
                idle,
            } => {
                if rng.unit() < *idle {
                    return;
                }
                let k = rng.below((2.0 * *rate) as u64 + 1);
                for _ in 0..k {
                    // Log-normal-ish spread around the typical value: latencies and token counts
                    // cluster, with a long tail into the high buckets.
                    let z = rng.unit() + rng.unit() + rng.unit() + rng.unit() - 2.0;
                    let x = *typical * (1.2 * z).exp();
                    let i = bounds.partition_point(|&b| b < x);
                    counts[i] += 1;
                    *sum += x;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Config {
        Config {
            workers: 2,
            duration_s: 60,
            ..Config::default()
        }
    }

    #[test]
    fn deterministic_and_counted() {
        let mut a = Vec::new();
        let n = Corpus::new(small()).write(&mut a).expect("write");
        let mut b = Vec::new();
        Corpus::new(small()).write(&mut b).expect("write");
        assert_eq!(a, b);
        assert_eq!(n, Corpus::new(small()).stats().samples);
        assert!(a.ends_with(b"# EOF\n"));
    }

    #[test]
    fn parses_as_openmetrics_with_consistent_histograms() {
        let mut body = Vec::new();
        let written = Corpus::new(small()).write(&mut body).expect("write");
        let mut p =
            edgeprom_exposition::Parser::new(&body, edgeprom_exposition::Format::OpenMetrics)
                .expect("utf8");
        let mut n = 0u64;
        let mut inf = HashMap::new();
        let mut checked = 0;
        while let Some(e) = p.next().expect("parse") {
            if let edgeprom_exposition::Entry::Series(s) = e {
                n += 1;
                assert!(s.timestamp_ms().is_some_and(|t| t % 1000 == 0));
                let l = s.to_labels();
                let name = l.metric_name();
                let key = |suffix: &str| {
                    let base = name.strip_suffix(suffix).unwrap_or(name);
                    (
                        base.to_string(),
                        l.get("instance").map(str::to_string),
                        s.timestamp_ms(),
                    )
                };
                if name.ends_with("_bucket") && l.get("le") == Some("+Inf") && l.len() == 4 {
                    inf.insert(key("_bucket"), s.value());
                }
                if name.ends_with("_count")
                    && l.len() == 3
                    && let Some(v) = inf.get(&key("_count"))
                {
                    assert_eq!(*v, s.value(), "{l}");
                    checked += 1;
                }
            }
        }
        assert_eq!(n, written);
        assert!(checked > 0, "no label-less histogram was checked");
    }

    #[test]
    fn canonical_le_forms() {
        assert_eq!(canonical_le(1.0), "1.0");
        assert_eq!(canonical_le(0.0019), "0.0019");
        assert_eq!(canonical_le(130000.0), "130000.0");
        assert_eq!(canonical_le(f64::INFINITY), "+Inf");
    }
}
