//! Storage-level tests: batches, order rules, restart replay, chunk cutting, selection.

use super::*;
use edgeprom_model::{AppendError, SeriesRef, is_stale_nan, stale_nan};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgeprom-storage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn options() -> Options {
    Options {
        chunk_file_size: 1 << 20,
        ..Options::default()
    }
}

pub(crate) fn up(job: &str) -> Labels {
    Labels::from_pairs([("__name__", "up"), ("job", job)])
}

fn all(s: &Storage, l: &Labels) -> Vec<(i64, f64)> {
    s.samples(l, i64::MIN, i64::MAX)
        .iter()
        .map(|x| (x.t, x.v))
        .collect()
}

#[test]
fn batch_is_invisible_until_commit_and_gone_after_rollback() {
    let s = Storage::open(&dir("batch"), options()).unwrap();
    let mut app = s.appender();
    app.append(None, &up("a"), 1000, 1.0).unwrap();
    assert!(all(&s, &up("a")).is_empty());
    app.rollback();
    assert!(all(&s, &up("a")).is_empty());

    let mut app = s.appender();
    app.append(None, &up("a"), 1000, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(all(&s, &up("a")), [(1000, 1.0)]);
}

#[test]
fn out_of_order_and_duplicates_are_refused_per_sample() {
    let s = Storage::open(&dir("order"), options()).unwrap();
    let mut app = s.appender();
    let r = app.append(None, &up("a"), 2000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = s.appender();
    assert!(matches!(
        app.append(Some(r), &up("a"), 1000, 1.0),
        Err(AppendError::OutOfOrder)
    ));
    assert!(matches!(
        app.append(Some(r), &up("a"), 2000, 2.0),
        Err(AppendError::DuplicateSample)
    ));
    app.append(Some(r), &up("a"), 2000, 1.0).unwrap();
    app.append(Some(r), &up("a"), 3000, 3.0).unwrap();
    assert!(matches!(
        app.append(Some(r), &up("a"), 2500, 3.0),
        Err(AppendError::OutOfOrder)
    ));
    app.commit().unwrap();
    assert_eq!(all(&s, &up("a")), [(2000, 1.0), (3000, 3.0)]);
}

#[test]
fn unknown_or_forged_hints_fall_back_to_the_labels() {
    let s = Storage::open(&dir("hint"), options()).unwrap();
    let mut app = s.appender();
    let r = app.append(None, &up("other"), 1000, 1.0).unwrap();
    // A ref that names no series, and one whose label-hash part does not match its slot.
    app.append(Some(SeriesRef(12345)), &up("a"), 1000, 5.0)
        .unwrap();
    app.append(Some(SeriesRef(r.0 ^ (1 << 40))), &up("b"), 1000, 6.0)
        .unwrap();
    app.commit().unwrap();
    assert_eq!(all(&s, &up("a")), [(1000, 5.0)]);
    assert_eq!(all(&s, &up("b")), [(1000, 6.0)]);
    assert_eq!(all(&s, &up("other")), [(1000, 1.0)]);
}

#[test]
fn everything_committed_survives_a_restart_bit_exactly() {
    let d = dir("restart");
    let weird_nan = f64::from_bits(0x7ff8_0000_0000_0abc);
    {
        let s = Storage::open(&d, options()).unwrap();
        for i in 0..1000i64 {
            let mut app = s.appender();
            app.append(None, &up("a"), i * 1000, i as f64).unwrap();
            app.append(None, &up("b"), i * 1000, -(i as f64)).unwrap();
            app.commit().unwrap();
        }
        let mut app = s.appender();
        app.append(None, &up("a"), 1_000_000, stale_nan()).unwrap();
        app.append(None, &up("b"), 1_000_000, weird_nan).unwrap();
        app.commit().unwrap();
        // Rolled back: must not come back.
        let mut app = s.appender();
        app.append(None, &up("c"), 1_000_000, 9.0).unwrap();
        app.rollback();
    }
    let s = Storage::open(&d, options()).unwrap();
    let a = all(&s, &up("a"));
    assert_eq!(a.len(), 1001);
    assert!(
        a[..1000]
            .iter()
            .enumerate()
            .all(|(i, &(t, v))| t == i as i64 * 1000 && v == i as f64)
    );
    assert!(is_stale_nan(a[1000].1));
    let b = all(&s, &up("b"));
    assert_eq!(b[1000].1.to_bits(), weird_nan.to_bits());
    assert!(all(&s, &up("c")).is_empty());
    // Full chunks were read from the head-chunk files, the rest (if any) from the WAL, and every
    // logged sample was accounted for exactly once.
    let report = s.open_report();
    assert!(report.samples_already_in_chunks > 0, "{report:?}");
    assert_eq!(
        report.samples_already_in_chunks + report.samples_replayed,
        2002,
        "{report:?}"
    );
    // And appending continues where it stopped.
    let mut app = s.appender();
    assert!(matches!(
        app.append(None, &up("a"), 999_000, 1.0),
        Err(AppendError::OutOfOrder)
    ));
    app.append(None, &up("a"), 1_001_000, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(all(&s, &up("a")).len(), 1002);
}

#[test]
fn a_series_created_by_a_rolled_back_batch_replays_later_samples() {
    let d = dir("rollback-series");
    {
        let s = Storage::open(&d, options()).unwrap();
        let mut app = s.appender();
        let r = app.append(None, &up("x"), 1000, 1.0).unwrap();
        app.rollback();
        let mut app = s.appender();
        app.append(Some(r), &up("x"), 2000, 2.0).unwrap();
        app.commit().unwrap();
    }
    let s = Storage::open(&d, options()).unwrap();
    assert_eq!(all(&s, &up("x")), [(2000, 2.0)]);
}

#[test]
fn a_second_process_cannot_open_the_same_directory() {
    let d = dir("lock");
    let _s = Storage::open(&d, options()).unwrap();
    assert!(matches!(
        Storage::open(&d, options()),
        Err(StorageError::Locked(_))
    ));
}

#[test]
fn select_filters_by_matchers_and_time() {
    let s = Storage::open(&dir("select"), options()).unwrap();
    let mut app = s.appender();
    for job in ["a", "b", "c"] {
        for t in [1000, 2000, 3000] {
            app.append(None, &up(job), t, 1.0).unwrap();
        }
    }
    app.commit().unwrap();
    let m = |k, n: &str, v: &str| Matcher::new(k, n, v).unwrap();
    let got = s.select(
        &[
            m(MatchType::Equal, "__name__", "up"),
            m(MatchType::Regex, "job", "a|c"),
        ],
        1500,
        2500,
    );
    let jobs: Vec<&str> = got.iter().map(|x| x.labels.get("job").unwrap()).collect();
    assert_eq!(jobs, ["a", "c"]);
    assert_eq!(got[0].samples().collect::<Vec<_>>(), [(2000, 1.0)]);
    assert_eq!(s.label_values("job", &[]), ["a", "b", "c"]);
    assert_eq!(s.label_names(&[]), ["__name__", "job"]);
}

pub(crate) fn small_blocks() -> Options {
    Options {
        chunk_file_size: 1 << 20,
        block_range_ms: 100_000,
        ..Options::default()
    }
}

/// One sample per second for `secs` seconds, value = second, on series up{job=a..c}.
fn fill(s: &Storage, from: i64, secs: i64) {
    for t in from..from + secs {
        let mut app = s.appender();
        for job in ["a", "b", "c"] {
            app.append(None, &up(job), t * 1000, t as f64).unwrap();
        }
        app.commit().unwrap();
    }
}

pub(crate) fn seconds(s: &Storage, job: &str) -> Vec<i64> {
    s.samples(&up(job), i64::MIN, i64::MAX)
        .iter()
        .map(|x| {
            assert_eq!(x.v, (x.t / 1000) as f64);
            x.t / 1000
        })
        .collect()
}

#[test]
fn the_head_is_compacted_into_blocks_and_queries_see_both() {
    let d = dir("compact");
    let s = Storage::open(&d, small_blocks()).unwrap();
    fill(&s, 0, 400);
    let report = s.maintain(400_000).unwrap();
    // 400 s of data, 100 s blocks, compaction while the head spans ≥ 150 s: [0,100) .. [200,300).
    // The window [0,300) is not closed yet (no block beyond it), so they stay level 1.
    assert_eq!(report.blocks_written.len(), 3, "{report:?}");
    let blocks = s.block_list();
    assert_eq!(
        blocks.iter().map(|b| (b.1, b.2)).collect::<Vec<_>>(),
        [(0, 100_000), (100_000, 200_000), (200_000, 300_000)]
    );
    let all: Vec<i64> = (0..400).collect();
    assert_eq!(seconds(&s, "a"), all);
    // A range across a block boundary and into the head.
    let m = Matcher::new(MatchType::Equal, "job", "b").unwrap();
    let got: Vec<i64> = s.select(&[m], 250_000, 320_000)[0]
        .samples()
        .map(|(t, _)| t / 1000)
        .collect();
    assert_eq!(got, (250..=320).collect::<Vec<_>>());
    assert_eq!(s.label_values("job", &[]), ["a", "b", "c"]);

    // After a restart (WAL replays samples blocks already hold) nothing is duplicated or lost,
    // and the next compaction does not overlap the existing blocks.
    drop(s);
    let s = Storage::open(&d, small_blocks()).unwrap();
    assert_eq!(s.open_report().blocks, 3);
    assert_eq!(seconds(&s, "c"), all);
    fill(&s, 400, 100);
    s.maintain(500_000).unwrap();
    // [300,400) closes the window [0,300): its three blocks are merged into one.
    let blocks = s.block_list();
    assert_eq!(
        blocks.iter().map(|b| (b.1, b.2)).collect::<Vec<_>>(),
        [(0, 300_000), (300_000, 400_000)]
    );
    assert_eq!(seconds(&s, "a"), (0..500).collect::<Vec<_>>());
    drop(s);
    let s = Storage::open(&d, small_blocks()).unwrap();
    assert_eq!(seconds(&s, "b"), (0..500).collect::<Vec<_>>());
}

#[test]
fn a_checkpoint_holds_the_open_chunks_so_a_restart_replays_only_later_samples() {
    let d = dir("checkpoint-open");
    {
        let s = Storage::open(&d, options()).unwrap();
        fill(&s, 0, 30);
        s.maintain(30_000).unwrap();
        fill(&s, 30, 5);
    }
    let s = Storage::open(&d, options()).unwrap();
    let report = s.open_report();
    assert_eq!(report.open_chunks_loaded, 3, "{report:?}");
    assert_eq!(report.samples_replayed, 15, "{report:?}");
    for job in ["a", "b", "c"] {
        assert_eq!(seconds(&s, job), (0..35).collect::<Vec<_>>());
    }
    // A second checkpoint (the WAL has not grown to half the first one's size yet) is skipped,
    // and what it would have replaced is still replayed correctly.
    fill(&s, 35, 5);
    s.maintain(40_000).unwrap();
    drop(s);
    let s = Storage::open(&d, options()).unwrap();
    for job in ["a", "b", "c"] {
        assert_eq!(seconds(&s, job), (0..40).collect::<Vec<_>>());
    }
}

#[test]
fn deleted_ranges_stay_hidden_across_restarts_and_clean_tombstones_rewrites_blocks() {
    let d = dir("tombstones");
    let s = Storage::open(&d, small_blocks()).unwrap();
    fill(&s, 0, 300);
    s.flush_head().unwrap();
    fill(&s, 300, 50);
    let job = |j: &str| vec![Matcher::new(MatchType::Equal, "job", j).unwrap()];
    // [100, 199] s from the blocks and [320, 329] s from the head.
    assert_eq!(s.delete_series(&[job("a")], 100_000, 199_000).unwrap(), 1);
    assert_eq!(
        s.delete_series(&[job("a"), job("b")], 320_000, 329_000)
            .unwrap(),
        2
    );
    assert_eq!(s.delete_series(&[job("nope")], 0, 1_000_000).unwrap(), 0);
    let want_a: Vec<i64> = (0..350)
        .filter(|t| !(100..200).contains(t) && !(320..330).contains(t))
        .collect();
    assert_eq!(seconds(&s, "a"), want_a);
    assert_eq!(seconds(&s, "c"), (0..350).collect::<Vec<_>>());
    // A series with nothing left in the range is not selected at all.
    assert!(s.select(&job("a"), 120_000, 150_000).is_empty());
    assert_eq!(s.select(&job("c"), 120_000, 150_000).len(), 1);

    drop(s);
    let s = Storage::open(&d, small_blocks()).unwrap();
    assert_eq!(seconds(&s, "a"), want_a);
    let blocks_before = s.block_list();
    let rewritten = s.clean_tombstones().unwrap();
    assert!(rewritten >= 1, "{rewritten}");
    assert_ne!(s.block_list(), blocks_before);
    assert_eq!(seconds(&s, "a"), want_a);
    assert_eq!(seconds(&s, "b").len(), 340);
    // Only the range the head still holds is remembered.
    let kept = std::fs::read_to_string(d.join("tombstones.json")).unwrap();
    assert!(!kept.contains("100000"), "{kept}");
    assert!(kept.contains("329000"), "{kept}");
}

#[test]
fn retention_deletes_whole_old_blocks_by_time_and_by_size() {
    let d = dir("retention");
    let s = Storage::open(
        &d,
        Options {
            retention_ms: 250_000,
            ..small_blocks()
        },
    )
    .unwrap();
    fill(&s, 0, 400);
    let report = s.maintain(400_000).unwrap();
    // Cutoff 150 s: the [0,100) block ends before it and goes; [100,200) stays.
    assert_eq!(report.blocks_deleted, 1, "{report:?}");
    assert_eq!(seconds(&s, "a").first(), Some(&100));
    drop(s);

    let s = Storage::open(
        &d,
        Options {
            // Less than what is on disk: oldest blocks go until it fits or only the head is left.
            retention_bytes: 1,
            ..small_blocks()
        },
    )
    .unwrap();
    let before = s.block_list().len();
    assert!(before >= 2);
    let report = s.maintain(400_000).unwrap();
    assert_eq!(report.blocks_deleted, before);
    assert!(s.block_list().is_empty());
    // The head still answers for its range.
    assert_eq!(seconds(&s, "a").last(), Some(&399));
}

#[test]
fn a_damaged_block_is_quarantined_and_the_rest_is_served() {
    let d = dir("quarantine");
    let s = Storage::open(&d, small_blocks()).unwrap();
    fill(&s, 0, 400);
    s.maintain(400_000).unwrap();
    let blocks = s.block_list();
    drop(s);
    let victim = d.join(&blocks[1].0).join(block::SAMPLES_FILE);
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&victim, bytes).unwrap();

    let s = Storage::open(&d, small_blocks()).unwrap();
    let report = s.open_report();
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert!(report.quarantined[0].contains(&blocks[1].0));
    assert!(d.join("quarantine").join(&blocks[1].0).is_dir());
    let have = seconds(&s, "a");
    // Block [100,200) is gone (until an operator restores it); everything else is served.
    assert_eq!(have.iter().filter(|t| (100..200).contains(*t)).count(), 0);
    assert!(have.contains(&99) && have.contains(&200) && have.contains(&399));
}

#[test]
fn flush_head_writes_blocks_now_and_backfilled_overlaps_merge() {
    let d = dir("flush");
    let s = Storage::open(&d, small_blocks()).unwrap();
    fill(&s, 0, 150);
    let written = s.flush_head().unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(s.num_series(), 0);
    // Nothing of the head is left on disk: its chunk files went with it.
    assert_eq!(std::fs::read_dir(d.join("chunks_head")).unwrap().count(), 0);
    assert_eq!(seconds(&s, "a"), (0..150).collect::<Vec<_>>());
    // Backfill odd seconds of an older stretch again plus new ones: overlapping blocks merge.
    let mut app = s.appender();
    for t in (1..300).step_by(2) {
        app.append(None, &up("a"), t * 1000, t as f64).unwrap();
    }
    app.commit().unwrap();
    s.flush_head().unwrap();
    let mut expect: Vec<i64> = (0..150).collect();
    expect.extend((151..300).step_by(2));
    assert_eq!(seconds(&s, "a"), expect);
    drop(s);
    let s = Storage::open(&d, small_blocks()).unwrap();
    assert_eq!(seconds(&s, "a"), expect);
}

#[test]
fn after_a_restart_the_newest_value_on_disk_still_decides_duplicates() {
    let d = dir("dup-disk");
    {
        let s = Storage::open(&d, options()).unwrap();
        // Exactly one full chunk (a constant compresses to 2 bits a sample, far below the size
        // cap): it goes to disk and the open chunk is empty.
        for i in 0..120i64 {
            let mut app = s.appender();
            app.append(None, &up("a"), i * 1000, 7.0).unwrap();
            app.commit().unwrap();
        }
    }
    let s = Storage::open(&d, options()).unwrap();
    assert_eq!(s.open_report().samples_replayed, 0, "{:?}", s.open_report());
    let mut app = s.appender();
    assert!(matches!(
        app.append(None, &up("a"), 119_000, 5.0),
        Err(AppendError::DuplicateSample)
    ));
    app.append(None, &up("a"), 119_000, 7.0).unwrap();
    app.append(None, &up("a"), 120_000, 7.0).unwrap();
    app.commit().unwrap();
    assert_eq!(all(&s, &up("a")).len(), 121);
}

#[test]
fn a_wal_reader_hold_keeps_its_segments_until_released_or_over_the_limit() {
    use crate::wal::{Record, RecordKinds, TailStep, WalTail};
    let samples_from = |s: &Storage, from: wal::WalPosition| {
        let mut tail = WalTail::new(&s.wal_dir(), from);
        let mut out = Vec::new();
        while let TailStep::Commit(_) = tail.next_commit(RecordKinds::ALL, &mut out).unwrap() {}
        out.iter()
            .map(|r| match r {
                Record::Samples(v) => v.len(),
                _ => 0,
            })
            .sum::<usize>()
    };
    let d = dir("wal-hold");
    let s = Storage::open(&d, options()).unwrap();
    fill(&s, 0, 10);
    let held = s.wal_position();
    s.hold_wal("remote", Some(held));
    fill(&s, 10, 20);
    s.maintain(30_000).unwrap();
    // Everything after the hold is still readable: 20 commits of 3 samples.
    assert_eq!(samples_from(&s, held), 60);
    s.hold_wal("remote", None);
    fill(&s, 30, 5);
    s.maintain(35_000).unwrap();
    let mut tail = WalTail::new(&s.wal_dir(), held);
    let mut out = Vec::new();
    while let TailStep::Commit(_) = tail.next_commit(RecordKinds::ALL, &mut out).unwrap() {}
    assert!(
        tail.skipped().0 > 0,
        "released segments were checkpointed away"
    );
    drop(s);

    // Over the limit, the hold is ignored rather than the disk filled.
    let d = dir("wal-hold-limit");
    let s = Storage::open(
        &d,
        Options {
            wal_hold_max_bytes: 1,
            ..options()
        },
    )
    .unwrap();
    fill(&s, 0, 10);
    let held = s.wal_position();
    s.hold_wal("remote", Some(held));
    fill(&s, 10, 20);
    s.maintain(30_000).unwrap();
    let mut tail = WalTail::new(&s.wal_dir(), held);
    while let TailStep::Commit(_) = tail.next_commit(RecordKinds::ALL, &mut out).unwrap() {}
    assert!(tail.skipped().0 > 0);
}

#[test]
fn append_ref_takes_a_known_ref_alone_and_asks_for_labels_otherwise() {
    let d = dir("append-ref");
    let s = Storage::open(&d, options()).unwrap();
    let (a, b) = (up("a"), up("b"));
    let mut app = s.appender();
    let ra = app.append(None, &a, 1000, 1.0).unwrap();
    app.commit().unwrap();
    // `b` is created by a batch that is rolled back (its definition is still logged).
    let mut app = s.appender();
    let rb = app.append(None, &b, 1000, 1.0).unwrap();
    app.rollback();

    let mut app = s.appender();
    app.append_ref(ra, 2000, 2.0).unwrap();
    assert!(matches!(
        app.append_ref(ra, 1500, 9.0),
        Err(AppendError::OutOfOrder)
    ));
    app.append_ref(rb, 2000, 2.0).unwrap();
    assert!(matches!(
        app.append_ref(SeriesRef(u64::from(u32::MAX)), 2000, 2.0),
        Err(AppendError::NeedLabels)
    ));
    // A ref whose label hash does not match its series is not trusted either.
    assert!(matches!(
        app.append_ref(SeriesRef(ra.0 ^ (1 << 40)), 2000, 2.0),
        Err(AppendError::NeedLabels)
    ));
    app.commit().unwrap();
    drop(s);
    let s = Storage::open(&d, options()).unwrap();
    assert_eq!(all(&s, &a), [(1000, 1.0), (2000, 2.0)]);
    assert_eq!(all(&s, &b), [(2000, 2.0)]);
}

/// Regression (found by the fuzz harness's check that an untouched data directory reads back
/// whole): `flush_head` wrote its last block with the range's end as `max_time`, so after a
/// restart the head dropped every WAL sample appended after the flush below that end.
#[test]
fn sample_appended_after_flush_head_survives_restart() {
    let d = dir("flush-then-append");
    let l = up("a");
    {
        let s = Storage::open(&d, options()).unwrap();
        for step in 0..300i64 {
            let mut app = s.appender();
            app.append(None, &l, step * 30_000, step as f64).unwrap();
            app.commit().unwrap();
        }
        s.flush_head().unwrap();
        let mut app = s.appender();
        app.append(None, &l, 300 * 30_000, 1.0).unwrap();
        app.commit().unwrap();
        assert_eq!(all(&s, &l).len(), 301);
    }
    let s = Storage::open(&d, options()).unwrap();
    let got = all(&s, &l);
    assert_eq!(got.len(), 301);
    assert_eq!(got.last(), Some(&(9_000_000, 1.0)));
}

#[test]
fn reads_with_a_passed_deadline_stop_and_without_one_answer_in_full() {
    use std::time::{Duration, Instant};
    let d = dir("deadline");
    let s = Storage::open(&d, small_blocks()).unwrap();
    fill(&s, 0, 300);
    s.flush_head().unwrap();
    fill(&s, 300, 50);
    let re = vec![Matcher::new(MatchType::Regex, "job", "a|b.*").unwrap()];
    let passed = Deadline::at(Instant::now() - Duration::from_millis(1));
    let later = Deadline::after(Duration::from_secs(600));

    // Blocks and head both hold the series; a passed deadline stops before either answers.
    assert_eq!(
        s.select_until(&re, 0, 400_000, passed).err(),
        Some(DeadlineExceeded)
    );
    assert_eq!(s.label_names_until(&re, passed), Err(DeadlineExceeded));
    assert_eq!(
        s.label_values_until("job", &re, passed),
        Err(DeadlineExceeded)
    );

    let selected = s.select_until(&re, 0, 400_000, later).unwrap();
    assert_eq!(selected.len(), 2);
    assert_eq!(selected.len(), s.select(&re, 0, 400_000).len());
    assert_eq!(s.label_values_until("job", &re, later).unwrap(), ["a", "b"]);
    assert_eq!(s.label_names_until(&re, later).unwrap(), s.label_names(&re));
    drop(s);
    let _ = std::fs::remove_dir_all(&d);
}
