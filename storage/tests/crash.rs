//! `kill -9` at random points never loses a committed batch: a child process appends numbered
//! batches and reports each commit; after every kill the directory is reopened and every reported
//! batch must be there, for every series. Rounds: `EDGEPROM_CRASH_ROUNDS` (default 30).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use edgeprom_model::Labels;
use edgeprom_storage::{Options, Storage};

/// A small deterministic PRNG (xorshift): kill points vary but a failure is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn kill_9_never_loses_a_committed_batch() {
    let rounds: usize = std::env::var("EDGEPROM_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let dir = std::env::temp_dir().join(format!("edgeprom-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut reported: i64 = -1;
    for round in 0..rounds {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgeprom-storage-crash-writer"))
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start crash writer");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let n = line
                    .strip_prefix("committed ")
                    .and_then(|n| n.parse::<i64>().ok());
                if n.is_some_and(|n| tx.send(n).is_err()) {
                    return;
                }
            }
        });
        // Wait for the writer to get going, then let it run a random while and kill it mid-flight.
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("writer made no commit");
        reported = reported.max(first);
        let run = Duration::from_millis(5 + rng.next() % 150);
        let start = Instant::now();
        while start.elapsed() < run {
            if let Ok(n) = rx.recv_timeout(Duration::from_millis(1)) {
                reported = reported.max(n);
            }
        }
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        while let Ok(n) = rx.try_recv() {
            reported = reported.max(n);
        }

        let storage = Storage::open(&dir, Options::default()).expect("reopen after kill");
        for series in [0, 17, 49] {
            let labels = Labels::from_pairs([
                ("__name__", "crash_test".to_string()),
                ("series", series.to_string()),
            ]);
            let samples = storage.samples(&labels, i64::MIN, i64::MAX);
            let have: Vec<i64> = samples.iter().map(|s| s.t / 1000).collect();
            assert!(
                have.len() as i64 > reported,
                "round {round}: series {series} has {} batches, {reported} reported committed; report: {:?}",
                have.len(),
                storage.open_report()
            );
            for (i, s) in samples.iter().enumerate() {
                assert_eq!(s.t, i as i64 * 1000, "round {round}: gap or reorder at {i}");
                assert_eq!(s.v, i as f64, "round {round}: wrong value at {i}");
            }
        }
    }
    assert!(reported > 0);
}
