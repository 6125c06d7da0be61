//! The fuzz targets: one per parser of outside input. Each takes arbitrary bytes, drives the
//! parser (or the whole path behind it) the way the server does, and returns; invalid input is an
//! `Err` inside, never a panic.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use edgeprom_model::{Appendable, Labels, Sample, stale_nan};
use edgeprom_promql::{Engine, EngineOptions};
use edgeprom_remote::{BatchSeries, Encoder, RemoteWriteMessage, WriteBatch};
use edgeprom_storage::Storage;
use edgeprom_storage::index::{MatchType, Matcher};

/// One fuzz target.
pub struct Target {
    /// The name given on the command line.
    pub name: &'static str,
    /// What it feeds the input to.
    pub about: &'static str,
    /// Seed inputs (the corpus the mutator starts from).
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Grammar tokens the mutator inserts.
    pub dictionary: &'static [&'static [u8]],
    /// Longest input generated.
    pub max_len: usize,
    /// Runs one input.
    pub run: fn(&[u8]),
}

/// Every target, in the order the README lists them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "exposition",
        about: "text 0.0.4 and OpenMetrics 1.0 scrape bodies through the pull parser",
        seeds: exposition_seeds,
        dictionary: &[
            b"# HELP ",
            b"# TYPE ",
            b"# UNIT ",
            b"# EOF\n",
            b" counter\n",
            b" histogram\n",
            b"{le=\"+Inf\"}",
            b"_bucket",
            b"_total",
            b" # {trace_id=\"a\"} 1 2",
            b"NaN",
            b"+Inf",
            b"\\\"",
            b"\\n",
            b"\"",
            b"=",
            b",",
            b"}",
            b"{",
            b" 1e308",
            b" -0",
            b" 1700000000000",
        ],
        max_len: 64 << 10,
        run: run_exposition,
    },
    Target {
        name: "promql",
        about: "PromQL through parsing and the whole evaluation (instant and range) over a small storage",
        seeds: promql_seeds,
        dictionary: &[
            b"sum(",
            b"rate(",
            b"[5m]",
            b"[1m:1s]",
            b"[1h:1ms]",
            b" offset 1h",
            b" @ 100",
            b" @ end()",
            b" by (job)",
            b" without (instance)",
            b" on(job) group_left ",
            b" or ",
            b" and ",
            b" unless ",
            b"{job=~\"a.*\"}",
            b"{__name__=~\".+\"}",
            b"histogram_quantile(0.9, ",
            b"label_replace(",
            b"quantile_over_time(0.5, ",
            b"topk(2, ",
            b"count_values(\"v\", ",
            b"(",
            b")",
            b"-",
            b"^",
            b"/",
            b"%",
            b" > bool ",
            b"vector(1)",
            b"scalar(",
            b"absent(",
            b"predict_linear(",
            b"1e308",
            b"NaN",
            b"Inf",
            b"0x1f",
        ],
        max_len: 4 << 10,
        run: run_promql,
    },
    Target {
        name: "config",
        about: "prometheus.yml through Config::parse (defaults, relabel regexes, durations, sizes)",
        seeds: config_seeds,
        dictionary: &[
            b"scrape_configs:\n",
            b"  - job_name: ",
            b"    static_configs:\n",
            b"      - targets: [",
            b"    relabel_configs:\n",
            b"      - regex: ",
            b"        action: labelmap\n",
            b"{{",
            b"&a",
            b"*a",
            b"!!binary ",
            b"body_size_limit: ",
            b"1EB",
            b"scrape_interval: ",
            b"99999y",
            b"remote_write:\n",
            b"  - url: ",
            b"\t",
            b"---\n",
            b"? ",
        ],
        max_len: 16 << 10,
        run: run_config,
    },
    Target {
        name: "rules",
        about: "rule files through RuleFile::parse (PromQL, templates, durations)",
        seeds: rules_seeds,
        dictionary: &[
            b"groups:\n",
            b"  - name: ",
            b"    rules:\n",
            b"      - alert: ",
            b"      - record: ",
            b"        expr: ",
            b"        for: ",
            b"        annotations:\n",
            b"{{ $labels.job }}",
            b"{{ range $i := .}}",
            b"{{ end }}",
            b"{{ printf \"%.2f\" $value }}",
            b"{{ ",
            b" }}",
            b"humanize",
            b"(",
            b"[5m:]",
        ],
        max_len: 16 << 10,
        run: run_rules,
    },
    Target {
        name: "template",
        about: "alert label and annotation templates (Go text/template subset) parsed and executed",
        seeds: template_seeds,
        dictionary: &[
            b"{{ ",
            b" }}",
            b"{{- ",
            b" -}}",
            b"$labels.job",
            b"$value",
            b".Labels",
            b"| humanize",
            b"| humanize1024",
            b"| humanizeDuration",
            b"| humanizePercentage",
            b"printf \"%5.2f\" ",
            b"%99999d",
            b"%.9f",
            b"{{ if ",
            b"{{ else }}",
            b"{{ end }}",
            b"{{ range $k, $v := $labels }}",
            b"{{ with ",
            b"reReplaceAll \"(.*)\" \"$1\" ",
            b"title ",
            b"toUpper ",
            b"(",
            b")",
            b"\"",
        ],
        max_len: 4 << 10,
        run: run_template,
    },
    Target {
        name: "api_params",
        about: "HTTP parameters: form/query decoding, times, durations, limits and matchers",
        seeds: api_params_seeds,
        dictionary: &[
            b"&",
            b"=",
            b"%",
            b"%ff",
            b"+",
            b"match[]=",
            b"start=",
            b"step=",
            b"1e300",
            b"NaN",
            b"-Inf",
            b"T",
            b"Z",
            b"+02:00",
            b"ms",
            b"y",
            b"d",
            b".5",
            b"=~",
            b"!~",
            b"{",
            b"}",
        ],
        max_len: 4 << 10,
        run: run_api_params,
    },
    Target {
        name: "remote_write",
        about: "remote-write bodies (snappy + protobuf, 1.0 and 2.0) through edgeprom_remote::decode",
        seeds: remote_write_seeds,
        dictionary: &[
            &[0x0a],
            &[0x12],
            &[0x1a],
            &[0x22],
            &[0xff, 0xff, 0xff, 0xff, 0x0f],
            &[0x80],
        ],
        max_len: 64 << 10,
        run: run_remote_write,
    },
    Target {
        name: "wal",
        about: "a mutated WAL segment or checkpoint, then Storage::open (repair, replay) and a full select",
        seeds: wal_seeds,
        dictionary: &[&[0], &[0xff, 0xff, 0xff, 0xff], &[1], &[2], &[3], &[4]],
        max_len: 256 << 10,
        run: run_wal,
    },
    Target {
        name: "block",
        about: "a mutated block file (index, chunks, meta.json) or head-chunk file, then Storage::open and a full select",
        seeds: block_seeds,
        dictionary: &[
            &[0],
            &[0xff, 0xff, 0xff, 0xff],
            b"{",
            b"\"ulid\"",
            b"minTime",
        ],
        max_len: 256 << 10,
        run: run_block,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The repository root (seeds are read from its fixtures and test data).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn read_dir_files(dir: &Path, ext: &[&str]) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter(|p| {
            ext.is_empty()
                || p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| ext.contains(&e))
        })
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

fn strs(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|s| s.as_bytes().to_vec()).collect()
}

// --- exposition -------------------------------------------------------------------------------

fn exposition_seeds() -> Vec<Vec<u8>> {
    let mut seeds = read_dir_files(&repo().join("fixtures/exposition"), &[]);
    seeds.extend(strs(&[
        "# HELP up Whether up.\n# TYPE up gauge\nup{job=\"a\",instance=\"b:1\"} 1 1700000000000\n",
        "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n",
        "# TYPE c counter\n# UNIT c seconds\nc_total{a=\"\\\"q\\\\\\n\"} 1.5 # {trace_id=\"x\"} 1 1700000000.5\nc_created 1\n# EOF\n",
        "# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum +Inf\ns_count -Inf\n# EOF\n",
        "{\"quoted.name\",a=\"b\"} 1\n",
        "metric_without_newline 1",
    ]));
    seeds
}

fn run_exposition(data: &[u8]) {
    for format in [
        edgeprom_exposition::Format::Text,
        edgeprom_exposition::Format::OpenMetrics,
    ] {
        let Ok(mut p) = edgeprom_exposition::Parser::new(data, format) else {
            continue;
        };
        // Every entry consumes input, so more entries than bytes means the parser is stuck.
        let mut entries = 0usize;
        while let Ok(Some(_)) = p.next() {
            entries += 1;
            assert!(
                entries <= data.len() + 2,
                "exposition parser returned more entries than the body has bytes"
            );
        }
    }
}

// --- promql -----------------------------------------------------------------------------------

fn promql_seeds() -> Vec<Vec<u8>> {
    let mut seeds = strs(&[
        "up",
        "sum by (job) (rate(http_requests_total[5m]))",
        "histogram_quantile(0.9, sum by (le) (rate(req_bucket[5m])))",
        "max_over_time(rate(http_requests_total[1m])[10m:30s])",
        "up offset 5m @ 300",
        "label_replace(up, \"x\", \"$1\", \"job\", \"(.*)\")",
        "topk(2, up) or on(job) bottomk(1, up)",
        "count_values(\"v\", up) / ignoring(v) group_left sum(up)",
        "absent(nope{job=\"x\"})",
        "predict_linear(http_requests_total[10m], 3600) > bool 5",
        "-(-(1)) ^ 2 % 3",
        "quantile_over_time(0.5, req_bucket{le=\"+Inf\"}[1h])",
        "sort_desc(sum without (instance) (up))",
        "time() - timestamp(up)",
    ]);
    // Expressions from Prometheus's own PromQL test files.
    for file in read_dir_files(&repo().join("crates/promql/testdata/promqltest"), &["test"]) {
        let text = String::from_utf8_lossy(&file);
        for line in text.lines() {
            let line = line.trim();
            let expr = line
                .strip_prefix("eval instant at ")
                .or_else(|| line.strip_prefix("eval range from "))
                .and_then(|rest| rest.split_once(' ').map(|(_, e)| e))
                .map(|e| e.split_once(" step ").map_or(e, |(_, e)| e))
                .map(|e| {
                    e.split_once(' ')
                        .filter(|(w, _)| w.ends_with('m') || w.ends_with('s'))
                        .map_or(e, |(_, e)| e)
                });
            if let Some(e) = expr {
                seeds.push(e.as_bytes().to_vec());
            }
        }
    }
    seeds.truncate(2000);
    seeds
}

/// A storage with a few series over 20 minutes, made once per process; queries only read it.
fn promql_storage() -> &'static (tempfile::TempDir, Arc<Storage>) {
    static S: OnceLock<(tempfile::TempDir, Arc<Storage>)> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let st = Storage::open(
            dir.path(),
            edgeprom_storage::Options {
                chunk_file_size: 1 << 20,
                ..Default::default()
            },
        )
        .expect("open storage");
        let mut app = st.appender();
        let series = [
            Labels::from_pairs([("__name__", "up"), ("job", "a"), ("instance", "x:1")]),
            Labels::from_pairs([("__name__", "up"), ("job", "b"), ("instance", "y:1")]),
            Labels::from_pairs([
                ("__name__", "http_requests_total"),
                ("job", "a"),
                ("instance", "x:1"),
            ]),
            Labels::from_pairs([("__name__", "req_bucket"), ("le", "0.1"), ("job", "a")]),
            Labels::from_pairs([("__name__", "req_bucket"), ("le", "+Inf"), ("job", "a")]),
        ];
        for i in 0..80i64 {
            for (k, l) in series.iter().enumerate() {
                let v = if i == 40 && k == 1 {
                    stale_nan()
                } else {
                    (i * (k as i64 + 1)) as f64
                };
                app.append(None, l, i * 15_000, v).expect("append");
            }
        }
        app.commit().expect("commit");
        (dir, Arc::new(st))
    })
}

fn run_promql(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    let (_, storage) = promql_storage();
    // Small bounds so that one input cannot take the fuzzer's whole budget; the bounds are the
    // same code as the server's, only with other numbers.
    let engine = Engine::new(EngineOptions {
        max_samples: 200_000,
        timeout: std::time::Duration::from_millis(500),
        experimental_functions: true,
        ..EngineOptions::default()
    });
    let _ = engine.instant_query(storage, &query, 600_000);
    let _ = engine.range_query(storage, &query, 0, 1_200_000, 60_000);
}

// --- config and rules -------------------------------------------------------------------------

fn config_seeds() -> Vec<Vec<u8>> {
    let mut seeds = read_dir_files(&repo().join("crates/config/testdata"), &["yml"]);
    seeds.extend(strs(&[
        "global:\n  scrape_interval: 15s\n  external_labels: {site: a}\nscrape_configs:\n  - job_name: j\n    body_size_limit: 10MB\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'go_.*'\n        action: drop\n    static_configs:\n      - targets: ['a:1']\n",
        "remote_write:\n  - url: http://x/api/v1/write\n    protobuf_message: io.prometheus.write.v2.Request\n    queue_config: {capacity: 10}\n",
    ]));
    seeds
}

fn run_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = edgeprom_config::Config::parse(&text, Path::new("/fuzz/prometheus.yml"));
}

fn rules_seeds() -> Vec<Vec<u8>> {
    let mut seeds = read_dir_files(&repo().join("crates/config/testdata"), &["yml"]);
    seeds.retain(|s| s.starts_with(b"groups") || s.windows(7).any(|w| w == b"groups:"));
    seeds.extend(strs(&[
        "groups:\n  - name: g\n    interval: 30s\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: Down\n        expr: up == 0\n        for: 5m\n        labels: {severity: page}\n        annotations:\n          summary: '{{ $labels.job }} down ({{ $value | humanize }})'\n",
    ]));
    seeds
}

fn run_rules(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = edgeprom_rules::RuleFile::parse(&text, Path::new("/fuzz/rules.yml"));
}

fn template_seeds() -> Vec<Vec<u8>> {
    strs(&[
        "{{ $labels.instance }} of {{ $labels.job }} is down ({{ $value | humanize }})",
        "{{ printf \"%.1f\" $value }}% {{ humanizePercentage 0.25 }} {{ humanizeDuration 3600 }}",
        "{{ if gt $value 0.5 }}high{{ else }}low{{ end }}",
        "{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}",
        "{{ with $labels.pod }}{{ . | toUpper }}{{ end }} {{ $externalURL }}",
        "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }} {{ title \"a b\" }}",
        "{{/* comment */}}{{- $x := 3 -}}{{ $x }}",
    ])
}

fn run_template(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    let labels = Labels::from_pairs([("job", "a"), ("instance", "x:1"), ("pod", "p-0")]);
    let value = edgeprom_rules::template::alert_data(
        &labels,
        0.75,
        &Labels::from_pairs([("site", "edge")]),
        "http://edge:9090",
    );
    let _ = edgeprom_rules::template::expand(&src, &value);
}

// --- HTTP parameters --------------------------------------------------------------------------

fn api_params_seeds() -> Vec<Vec<u8>> {
    strs(&[
        "query=up&time=1700000000.5",
        "start=2015-07-01T20:10:51.781Z&end=2015-07-01T22:10:51+02:00&step=15s",
        "step=1m30s&timeout=0.5&lookback_delta=5m&limit=10",
        "match[]=up{job=~\"a|b\"}&match[]={__name__=~\".+\",instance!~\"x.*\"}",
        "start=-9e15&end=9e15&step=1e12",
        "time=9999-99-99&step=NaN",
    ])
}

fn run_api_params(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let params = edgeprom_api::Params::from_encoded(data, Some(&text));
    for name in ["time", "start", "end"] {
        let _ = params.time(name, 0);
    }
    for name in ["step", "timeout", "lookback_delta"] {
        let _ = params.duration(name);
    }
    let _ = params.limit();
    for v in params.all("match[]") {
        let _ = edgeprom_promql::parse_bounded(v, &edgeprom_promql::QueryLimits::default());
    }
    // Every value as a raw time, duration and matcher of each kind, as the API would see it.
    for v in text.split('&') {
        let _ = edgeprom_api::parse_time(v);
        let _ = edgeprom_api::parse_duration(v);
        for kind in [
            MatchType::Equal,
            MatchType::NotEqual,
            MatchType::Regex,
            MatchType::NotRegex,
        ] {
            if let Ok(m) = Matcher::new(kind, "job", v) {
                let _ = m.matches(v);
                let _ = m.matches("");
            }
        }
    }
}

// --- remote write -----------------------------------------------------------------------------

fn remote_write_seeds() -> Vec<Vec<u8>> {
    let batch = WriteBatch {
        series: vec![
            BatchSeries {
                labels: Labels::from_pairs([("__name__", "up"), ("job", "a"), ("zone", "日本")]),
                samples: vec![
                    Sample { t: 1, v: 1.0 },
                    Sample {
                        t: 2,
                        v: stale_nan(),
                    },
                ],
                ..Default::default()
            },
            BatchSeries {
                labels: Labels::from_pairs([("__name__", "x_total"), ("a", "\"q\"")]),
                samples: vec![Sample { t: 3, v: f64::NAN }],
                ..Default::default()
            },
        ],
        metadata: Vec::new(),
    };
    let mut enc = Encoder::new();
    let mut seeds = Vec::new();
    for (tag, message) in [(0u8, RemoteWriteMessage::V1), (1, RemoteWriteMessage::V2)] {
        // Mode byte first: 0/1 decode a snappy body as 1.0/2.0, 2/3 the raw protobuf.
        if let Ok(body) = enc.encode(&batch, message) {
            let mut s = vec![tag];
            s.extend_from_slice(body);
            seeds.push(s);
        }
        let mut s = vec![tag + 2];
        s.extend_from_slice(enc.encode_protobuf(&batch, message));
        seeds.push(s);
    }
    seeds
}

fn run_remote_write(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let message = if mode & 1 == 0 {
        RemoteWriteMessage::V1
    } else {
        RemoteWriteMessage::V2
    };
    if mode & 2 == 0 {
        let _ = edgeprom_remote::decode(body, message, 32 << 20);
    } else {
        let _ = edgeprom_remote::decode_protobuf(body, message);
    }
}

// --- storage files read at start-up -----------------------------------------------------------

/// A data directory written by the real storage: WAL (with a checkpoint-worthy history), head
/// chunks and one block. Kept for the process; each input works on a copy.
fn seed_data_dir() -> &'static (tempfile::TempDir, Vec<PathBuf>) {
    static D: OnceLock<(tempfile::TempDir, Vec<PathBuf>)> = OnceLock::new();
    D.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let st = Storage::open(dir.path(), storage_options()).expect("open storage");
            let series: Vec<Labels> = (0..6)
                .map(|i| {
                    Labels::from_pairs([
                        ("__name__", format!("m{}", i % 3)),
                        ("job", format!("j{i}")),
                    ])
                })
                .collect();
            // Two hours and a bit at 30 s: a full block range, chunks cut, samples in the head.
            for step in 0..300i64 {
                let mut app = st.appender();
                for (k, l) in series.iter().enumerate() {
                    let v = if step % 97 == 5 {
                        stale_nan()
                    } else {
                        (step * k as i64) as f64 / 3.0
                    };
                    app.append(None, l, step * 30_000, v).expect("append");
                }
                app.commit().expect("commit");
            }
            st.flush_head().expect("flush head to a block");
            let mut app = st.appender();
            for l in &series {
                app.append(None, l, 300 * 30_000, 1.0).expect("append");
            }
            app.commit().expect("commit");
        }
        let mut files = Vec::new();
        collect_files(dir.path(), dir.path(), &mut files);
        files.sort();
        (dir, files)
    })
}

fn storage_options() -> edgeprom_storage::Options {
    edgeprom_storage::Options {
        chunk_file_size: 1 << 20,
        ..Default::default()
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_path_buf());
        }
    }
}

fn is_wal_file(rel: &Path) -> bool {
    rel.starts_with("wal")
}

/// Seeds for the files `pick` selects: the file's index (one byte) then its contents.
fn storage_seeds(pick: fn(&Path) -> bool) -> Vec<Vec<u8>> {
    let (dir, files) = seed_data_dir();
    files
        .iter()
        .enumerate()
        .filter(|(_, f)| pick(f))
        .filter_map(|(i, f)| {
            let mut s = vec![i as u8];
            s.extend(std::fs::read(dir.path().join(f)).ok()?);
            Some(s)
        })
        .collect()
}

fn wal_seeds() -> Vec<Vec<u8>> {
    storage_seeds(is_wal_file)
}

fn block_seeds() -> Vec<Vec<u8>> {
    storage_seeds(is_block_file)
}

/// Copies the seed directory, replaces file number `data[0]` with `data[1..]`, opens storage on
/// it and reads every series back.
fn run_storage(data: &[u8], pick: fn(&Path) -> bool) -> usize {
    let (seed, files) = seed_data_dir();
    let candidates: Vec<&PathBuf> = files.iter().filter(|f| pick(f)).collect();
    let Some((&which, contents)) = data.split_first() else {
        return 0;
    };
    if candidates.is_empty() {
        return 0;
    }
    // The index byte names a file of the whole list (as the seeds do); others wrap around.
    let target = files
        .get(which as usize)
        .filter(|f| pick(f))
        .unwrap_or(candidates[which as usize % candidates.len()]);
    let Ok(copy) = tempfile::tempdir() else {
        return 0;
    };
    for f in files {
        let to = copy.path().join(f);
        if let Some(parent) = to.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if f == target {
            let _ = std::fs::write(&to, contents);
        } else {
            let _ = std::fs::copy(seed.path().join(f), &to);
        }
    }
    let mut samples = 0;
    if let Ok(st) = Storage::open(copy.path(), storage_options()) {
        let all = [Matcher::new(MatchType::Regex, "__name__", ".+").expect("matcher")];
        for s in st.select(&all, i64::MIN / 4, i64::MAX / 4) {
            samples += s.samples().count();
        }
        let _ = st.label_names(&[]);
    }
    samples
}

fn run_wal(data: &[u8]) {
    run_storage(data, is_wal_file);
}

fn run_block(data: &[u8]) {
    run_storage(data, is_block_file);
}

fn is_block_file(f: &Path) -> bool {
    !is_wal_file(f) && !f.ends_with("lock")
}

/// Samples read back when each seed of the `wal` and `block` targets is run unchanged: the
/// harness itself must open a good directory and see all of it, or the targets test nothing.
pub fn storage_seed_samples() -> Vec<(String, usize)> {
    let (_, files) = seed_data_dir();
    let mut out = Vec::new();
    for (pick, seeds) in [
        (is_wal_file as fn(&Path) -> bool, wal_seeds()),
        (is_block_file, block_seeds()),
    ] {
        for seed in seeds {
            let name = files
                .get(usize::from(seed[0]))
                .map_or_else(String::new, |f| f.display().to_string());
            out.push((name, run_storage(&seed, pick)));
        }
    }
    out
}
