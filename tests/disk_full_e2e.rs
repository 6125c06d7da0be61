//! Issue #12: the disk fills while the real binary scrapes and answers queries. Its data directory
//! is a 32 MiB tmpfs; once a filler file has taken the rest of the space, scrapes cannot be
//! stored, yet the process keeps running, `/-/healthy` answers 200, queries answer from what is
//! stored, and no sample stored before the disk filled is lost. When the filler is removed,
//! ingestion resumes.
//!
//! Mounting a tmpfs needs root; where the machine does not allow it the test says so and passes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{start, temp_dir};
use serde_json::Value;

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

async fn query(client: &reqwest::Client, base: &str, q: &str) -> (u16, Value) {
    let r = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q)])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("query answered");
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The single value of an instant query's result, if any.
async fn value(client: &reqwest::Client, base: &str, q: &str) -> Option<f64> {
    let (status, v) = query(client, base, q).await;
    assert_eq!(status, 200, "{q}: {v}");
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
}

/// Writes zeros to `path` until the file system refuses (ENOSPC).
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 << 10];
    let mut written = 0;
    while f.write_all(&block).is_ok() {
        written += block.len() as u64;
    }
    let _ = f.sync_all();
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_during_scraping_and_querying_loses_nothing_and_recovers() {
    let dir = temp_dir("disk-full");
    let Some(_tmpfs) = Tmpfs::mount(&dir.join("data"), "32m") else {
        println!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1s\n").expect("config");
    let mut ep = start(&dir, &config, &[]).await;
    let base = ep.base.clone();
    let addr = base.trim_start_matches("http://").to_string();
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .expect("config");
    let hup = Command::new("kill")
        .args(["-HUP", &ep.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let client = reqwest::Client::new();
    let count = "count_over_time(up{job=\"self\"}[1h])";

    // A few scrapes stored.
    let deadline = Instant::now() + Duration::from_secs(30);
    while value(&client, &base, count).await.unwrap_or(0.0) < 3.0 {
        assert!(Instant::now() < deadline, "no scrapes stored within 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Fill the disk.
    let filler = dir.join("data").join("filler");
    let t_fill = now_s();
    let before = value(
        &client,
        &base,
        &format!("count_over_time(up{{job=\"self\"}}[1h] @ {t_fill:.3})"),
    )
    .await
    .expect("samples before the fill");
    let filled = fill(&filler);
    println!(
        "filler took {} KiB; {before} samples stored before",
        filled >> 10
    );

    // While full: alive, healthy, queries answer.
    let full_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < full_until {
        if let Ok(Some(status)) = ep.child.try_wait() {
            panic!("edgeprom exited with {status} while the disk was full");
        }
        let healthy = client
            .get(format!("{base}/-/healthy"))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        assert!(
            healthy.is_ok_and(|r| r.status() == 200),
            "/-/healthy failed"
        );
        let (status, v) = query(&client, &base, "up").await;
        assert_eq!(status, 200, "query while full: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Nothing stored before the fill was lost.
    let after = value(
        &client,
        &base,
        &format!("count_over_time(up{{job=\"self\"}}[1h] @ {t_fill:.3})"),
    )
    .await
    .expect("samples before the fill, read while full");
    assert_eq!(
        after, before,
        "samples stored before the disk filled were lost"
    );
    let during = value(&client, &base, count).await.unwrap_or(0.0);

    // Space returns: ingestion resumes.
    std::fs::remove_file(&filler).expect("remove filler");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = value(&client, &base, count).await.unwrap_or(0.0);
        if now >= during + 3.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ingestion did not resume within 30 s of freeing space ({during} → {now})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let again = value(
        &client,
        &base,
        &format!("count_over_time(up{{job=\"self\"}}[1h] @ {t_fill:.3})"),
    )
    .await
    .expect("samples before the fill, after recovery");
    assert_eq!(
        again, before,
        "samples stored before the disk filled were lost"
    );
    let log = std::fs::read_to_string(dir.join("edgeprom.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "a panic was logged:\n{log}");
    // The disk really was full: commits were refused with ENOSPC and said so.
    assert!(
        log.contains("No space left on device"),
        "no ENOSPC in the log:\n{log}"
    );
}
