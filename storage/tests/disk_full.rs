//! A full disk refuses commits with an error and a counted failure, corrupts nothing already
//! stored, and ingestion resumes once space is freed. Runs on a 4 MiB tmpfs, which needs root;
//! where the machine cannot mount one the test says so and checks nothing.

use std::path::Path;

use edgeprom_model::{Appendable, Labels};
use edgeprom_storage::{Options, Storage};

#[path = "support/tmpfs.rs"]
mod tmpfs;

use tmpfs::Tmpfs;

fn options() -> Options {
    Options {
        chunk_file_size: 256 << 10,
        wal: edgeprom_storage::wal::WalOptions {
            segment_size: 256 << 10,
            ..Default::default()
        },
        ..Options::default()
    }
}

fn series() -> Vec<Labels> {
    (0..100)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", "disk_full_test".to_string()),
                ("series", i.to_string()),
            ])
        })
        .collect()
}

/// Appends batch `n` (value n at n*1000 ms) to every series.
fn append(s: &Storage, n: i64) -> Result<(), String> {
    let mut app = s.appender();
    for l in series() {
        app.append(None, &l, n * 1000, n as f64)
            .map_err(|e| e.to_string())?;
    }
    app.commit().map_err(|e| e.to_string())
}

fn check_batches(dir: &Path, expect: &[i64]) {
    let s = Storage::open(dir, options()).expect("reopen");
    for l in series().iter().step_by(33) {
        let got: Vec<i64> = s
            .samples(l, i64::MIN, i64::MAX)
            .iter()
            .map(|x| x.t / 1000)
            .collect();
        assert_eq!(got, expect, "series {l}");
    }
}

#[test]
fn a_full_disk_refuses_commits_and_ingestion_resumes_after() {
    let mount_at = std::env::temp_dir().join(format!("edgeprom-diskfull-{}", std::process::id()));
    let Some(fs) = Tmpfs::mount(mount_at, "4m") else {
        eprintln!("disk_full: no size-limited tmpfs on this machine (needs root); nothing checked");
        return;
    };
    let dir = fs.path().join("data");
    // Leave the storage only a little room.
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; 3 << 20]).expect("filler");

    let s = Storage::open(&dir, options()).expect("open");
    let mut committed = Vec::new();
    let mut error = None;
    for n in 0..100_000 {
        match append(&s, n) {
            Ok(()) => committed.push(n),
            Err(e) => {
                error = Some((n, e));
                break;
            }
        }
    }
    let (failed_at, message) = error.expect("the disk never filled");
    assert!(
        message.contains("No space left") || message.contains("os error 28"),
        "{message}"
    );
    assert!(s.stats().wal_failures >= 1);
    // More attempts while full fail the same way and store nothing.
    assert!(append(&s, failed_at).is_err());

    // Free space: the same process resumes ingestion where it stopped.
    std::fs::remove_file(&filler).expect("free space");
    for n in failed_at..failed_at + 50 {
        append(&s, n).expect("append after freeing space");
        committed.push(n);
    }
    drop(s);
    check_batches(&dir, &committed);

    // And after a restart too.
    let s = Storage::open(&dir, options()).expect("reopen");
    let next = committed[committed.len() - 1] + 1;
    for n in next..next + 50 {
        append(&s, n).expect("append after restart");
        committed.push(n);
    }
    drop(s);
    check_batches(&dir, &committed);
}
