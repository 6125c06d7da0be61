//! `remote-bench`: how fast a remote-write queue forwards what the WAL holds, per CPU core, and
//! how much memory the sender takes for `--series` active series.
//!
//! Appends `--scrapes` scrapes of `--series` Dynamo-shaped series to a fresh storage (one commit
//! per target, as the scraper does), points a queue's progress file at the start of the WAL and
//! starts it against a receiver in a child process (the same binary with `--serve`, which decodes
//! every request and counts its samples), then waits until the receiver has counted every sample.
//! The CPU time is this process's (WAL reading, batching, encoding, HTTP), not the receiver's.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use clap::Parser;
use edgeprom_bench::active::{append_scrape, dynamo_series};
use edgeprom_bench::sys::{memory, mib};
use edgeprom_model::SeriesRef;
use edgeprom_remote::progress::{Progress, ShardPosition, url_hash};
use edgeprom_remote::{RemoteMetrics, RemoteWrite, RemoteWriteMessage};
use edgeprom_storage::{Options, Storage};

/// Measure remote-write forwarding rate and sender memory.
#[derive(Debug, Parser)]
#[command(name = "remote-bench")]
struct Args {
    /// Active series.
    #[arg(long, default_value_t = 460_000)]
    series: usize,
    /// Scrapes of every series (15 s apart) to forward.
    #[arg(long, default_value_t = 10)]
    scrapes: usize,
    /// Protocol: 1.0 or 2.0.
    #[arg(long, default_value = "1.0")]
    protocol: String,
    /// Data directory (should be new or empty).
    #[arg(long = "storage.tsdb.path")]
    path: Option<PathBuf>,
    /// Run as the receiver on this loopback port (used by the bench itself).
    #[arg(long)]
    serve: Option<u16>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

fn cpu_seconds() -> f64 {
    // utime and stime (fields 14 and 15 of /proc/self/stat) in clock ticks of 1/100 s.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

async fn serve(port: u16) -> Result<(), String> {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let app = Router::new()
        .route(
            "/api/v1/write",
            post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let c = c.clone();
                async move {
                    let v2 = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.contains("io.prometheus.write.v2"));
                    let message = if v2 {
                        RemoteWriteMessage::V2
                    } else {
                        RemoteWriteMessage::V1
                    };
                    match edgeprom_remote::decode(&body, message, 64 << 20) {
                        Ok(d) => {
                            let n = d.batch.sample_count() as u64;
                            c.fetch_add(n, Ordering::Relaxed);
                            let mut resp = axum::http::Response::builder().status(204);
                            if v2 {
                                resp = resp
                                    .header("X-Prometheus-Remote-Write-Samples-Written", n)
                                    .header("X-Prometheus-Remote-Write-Histograms-Written", 0)
                                    .header("X-Prometheus-Remote-Write-Exemplars-Written", 0);
                            }
                            resp.body(axum::body::Body::empty()).unwrap_or_default()
                        }
                        Err(e) => axum::http::Response::builder()
                            .status(400)
                            .body(axum::body::Body::from(e.to_string()))
                            .unwrap_or_default(),
                    }
                }
            }),
        )
        .route(
            "/count",
            get(move || {
                let n = count.load(Ordering::Relaxed);
                async move { n.to_string() }
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn run(args: &Args) -> Result<(), String> {
    let path = args.path.clone().ok_or("--storage.tsdb.path is required")?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut receiver = Command::new(exe)
        .arg("--serve")
        .arg(port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let result = forward(args, &path, port).await;
    let _ = receiver.kill();
    let _ = receiver.wait();
    result
}

async fn forward(args: &Args, path: &std::path::Path, port: u16) -> Result<(), String> {
    let (_corpus, _body, series) = dynamo_series(args.series)?;
    let names: Vec<String> = series
        .iter()
        .map(|(_, l)| l.metric_name().to_string())
        .collect();
    let storage = Arc::new(Storage::open(path, Options::default()).map_err(|e| e.to_string())?);
    let mut refs: Vec<Option<SeriesRef>> = vec![None; series.len()];
    let start = Instant::now();
    for k in 0..args.scrapes {
        append_scrape(&*storage, &series, &names, &mut refs, k)?;
    }
    let total = (series.len() * args.scrapes) as u64;
    println!("series {}", series.len());
    println!("samples {total}");
    println!("append_seconds {:.2}", start.elapsed().as_secs_f64());

    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let message = match args.protocol.as_str() {
        "2.0" => "io.prometheus.write.v2.Request",
        _ => "prometheus.WriteRequest",
    };
    let cfg_path = path.join("remote-bench.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "remote_write:\n  - url: {url}\n    name: bench\n    protobuf_message: {message}\n    \
             metadata_config:\n      send: false\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let cfg = edgeprom_config::Config::load(&cfg_path).map_err(|e| e.to_string())?;
    // Send everything the WAL holds: the queue resumes from its progress file.
    Progress::create(
        &path.join("remote").join("bench.progress"),
        url_hash(&url),
        vec![ShardPosition::default()],
    )
    .map_err(|e| e.to_string())?;

    let client = reqwest::Client::new();
    let received = || async {
        let r = client
            .get(format!("http://127.0.0.1:{port}/count"))
            .send()
            .await
            .ok()?;
        r.text().await.ok()?.trim().parse::<u64>().ok()
    };
    let until = Instant::now() + Duration::from_secs(30);
    while received().await.is_none() {
        if Instant::now() > until {
            return Err("receiver did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mem0 = memory();
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut registry = prometheus_client::registry::Registry::default();
    let remote = RemoteWrite::new(
        storage.clone(),
        RemoteMetrics::register(&mut registry),
        Duration::from_secs(5),
        None,
    );
    remote
        .apply_config(&cfg.remote_write, &cfg.global.external_labels)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut peak_rss = mem0.rss_kib;
    loop {
        let n = received().await.unwrap_or(0);
        peak_rss = peak_rss.max(memory().rss_kib);
        if n >= total {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {n} of {total} samples arrived"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let mem1 = memory();
    let mut metrics = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut metrics, &registry);
    let shards = metrics
        .lines()
        .find(|l| l.starts_with("prometheus_remote_storage_shards{"))
        .and_then(|l| l.rsplit_once(' '))
        .map_or("?".to_string(), |(_, v)| v.to_string());
    remote.stop().await;
    println!("protocol {}", args.protocol);
    println!("forward_seconds {secs:.2}");
    println!("forward_samples_per_second {:.0}", total as f64 / secs);
    println!("sender_cpu_seconds {cpu:.2}");
    println!("samples_per_cpu_second {:.0}", total as f64 / cpu.max(1e-9));
    println!("shards_at_end {shards}");
    println!("rss_before_queue_mib {}", mib(mem0.rss_kib * 1024));
    println!(
        "sender_rss_mib {}",
        mib(mem1.rss_kib.saturating_sub(mem0.rss_kib) * 1024)
    );
    println!(
        "sender_peak_rss_mib {}",
        mib(peak_rss.saturating_sub(mem0.rss_kib) * 1024)
    );
    println!(
        "sender_rss_mib_per_1000_series {:.3}",
        mem1.rss_kib.saturating_sub(mem0.rss_kib) as f64 / 1024.0 / (series.len() as f64 / 1000.0)
    );
    Ok(())
}

/// The same allocator as the `edgeprom` binary, so the RSS measured is the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("remote-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.serve {
        Some(port) => rt.block_on(serve(port)),
        None => rt.block_on(run(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("remote-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
