//! Damage on disk keeps every earlier record: a torn WAL tail loses only the torn commit, a flipped
//! byte in a head-chunk file is reported and the WAL fills the gap, and both are reported.

use std::path::{Path, PathBuf};

use edgeprom_model::{Appendable, Labels};
use edgeprom_storage::{Options, Storage};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgeprom-repair-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn options() -> Options {
    Options {
        chunk_file_size: 1 << 20,
        ..Options::default()
    }
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", "repair_test".to_string()),
        ("i", i.to_string()),
    ])
}

fn write_batches(d: &Path, n: i64) {
    let s = Storage::open(d, options()).unwrap();
    for b in 0..n {
        let mut app = s.appender();
        for i in 0..10 {
            app.append(None, &labels(i), b * 1000, b as f64).unwrap();
        }
        app.commit().unwrap();
    }
}

fn batches(s: &Storage, i: usize) -> Vec<i64> {
    s.samples(&labels(i), i64::MIN, i64::MAX)
        .iter()
        .map(|x| x.t / 1000)
        .collect()
}

fn newest_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.pop().unwrap()
}

#[test]
fn a_torn_wal_tail_loses_only_the_torn_commit() {
    let d = dir("torn");
    write_batches(&d, 300);
    let seg = newest_file(&d.join("wal"));
    let len = std::fs::metadata(&seg).unwrap().len();
    // Cut into the middle of the last commit, as a crash mid-write(2) would.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let s = Storage::open(&d, options()).unwrap();
    let expect: Vec<i64> = (0..299).collect();
    for i in [0, 9] {
        assert_eq!(batches(&s, i), expect);
    }
    assert!(
        s.open_report().wal_repair.contains("truncated: [T"),
        "{:?}",
        s.open_report()
    );
}

#[test]
fn a_flipped_byte_in_a_head_chunk_is_reported_and_the_wal_fills_in() {
    let d = dir("flip");
    // 300 batches: two full chunks (120 samples) per series on disk, the rest open.
    write_batches(&d, 300);
    let chunk_file = newest_file(&d.join("chunks_head"));
    let mut bytes = std::fs::read(&chunk_file).unwrap();
    // Damage the first record's data (the file header is 8 bytes, the record header 29).
    bytes[8 + 29 + 3] ^= 0x55;
    std::fs::write(&chunk_file, bytes).unwrap();
    let s = Storage::open(&d, options()).unwrap();
    let report = s.open_report();
    assert_eq!(report.head_chunk_problems.len(), 1, "{report:?}");
    let expect: Vec<i64> = (0..300).collect();
    for i in 0..10 {
        assert_eq!(batches(&s, i), expect, "series {i}: {report:?}");
    }
}
