use super::*;
use proptest::prelude::*;

fn opts(segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        sync: SyncPolicy::Never,
    }
}

fn labels(name: &str, i: u64) -> Labels {
    Labels::from_pairs([
        ("__name__", name.to_string()),
        ("instance", format!("host-{i}:9100")),
        ("job", "node".to_string()),
    ])
}

fn series(from: u64, n: u64) -> Record {
    Record::Series(
        (from..from + n)
            .map(|r| SeriesRecord {
                r,
                labels: labels("up", r),
            })
            .collect(),
    )
}

fn samples(t: i64, refs: std::ops::Range<u64>) -> Record {
    Record::Samples(
        refs.map(|r| SampleRecord {
            r,
            t,
            v: r as f64 * 0.5,
        })
        .collect(),
    )
}

/// Replays and returns every record, asserting replay found no damage.
fn all(dir: &Path) -> Vec<Record> {
    let (recs, rep) = all_with_report(dir);
    assert_eq!(rep.corrupt, None);
    recs
}

fn all_with_report(dir: &Path) -> (Vec<Record>, ReplayReport) {
    let mut out = Vec::new();
    let rep = replay(dir, |r| out.push(r)).unwrap();
    (out, rep)
}

/// Bit-exact comparison: `PartialEq` on f64 would call NaN != NaN and -0.0 == 0.0.
fn same(a: &[Record], b: &[Record]) -> bool {
    fn bits(r: &Record) -> Record {
        match r {
            Record::Samples(v) => Record::Samples(
                v.iter()
                    .map(|s| SampleRecord {
                        r: s.r,
                        t: s.t,
                        v: f64::from_bits(0),
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let vbits = |r: &Record| match r {
        Record::Samples(v) => v.iter().map(|s| s.v.to_bits()).collect(),
        _ => Vec::new(),
    };
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| bits(x) == bits(y) && vbits(x) == vbits(y))
}

fn seg_len(dir: &Path, n: u32) -> u64 {
    std::fs::metadata(segment::segment_path(dir, n))
        .unwrap()
        .len()
}

#[test]
fn every_record_type_round_trips_bit_exact() {
    let d = tempfile::tempdir().unwrap();
    let weird = [
        f64::NAN,
        f64::from_bits(0x7ff8_0000_dead_beef),
        f64::from_bits(0xfff0_0000_0000_0001),
        f64::from_bits(edgeprom_model::STALE_NAN_BITS),
        -0.0,
        0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        f64::MAX,
        1e-310,
    ];
    let recs = vec![
        Record::Series(vec![
            SeriesRecord {
                r: 0,
                labels: labels("up", 0),
            },
            SeriesRecord {
                r: u64::MAX,
                labels: Labels::from_pairs([("__name__", "ünïcödé_☃"), ("a", "x\n\"y\\")]),
            },
            SeriesRecord {
                r: 7,
                labels: Labels::new(),
            },
        ]),
        Record::Samples(
            weird
                .iter()
                .enumerate()
                .map(|(i, &v)| SampleRecord {
                    // Refs and times jump both ways and across the full range.
                    r: [0, u64::MAX, 3, 1 << 63, 2][i % 5],
                    t: [i64::MIN, i64::MAX, 0, -1, 1_700_000_000_000][i % 5],
                    v,
                })
                .collect(),
        ),
        Record::Tombstones(vec![(1, i64::MIN, i64::MAX), (u64::MAX, -5, 5), (0, 0, 0)]),
        Record::Chunks(vec![
            ChunkRecord {
                r: 3,
                bytes: vec![0, 1, 0x80, 0xff, 0],
            },
            ChunkRecord {
                r: u64::MAX,
                bytes: Vec::new(),
            },
        ]),
        Record::Series(vec![]),
        Record::Samples(vec![]),
        Record::Tombstones(vec![]),
    ];
    let (mut w, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    assert!(rep.is_clean());
    w.log(&recs[..2]).unwrap();
    w.log(&recs[2..]).unwrap();
    drop(w);
    let (got, rep) = all_with_report(d.path());
    assert!(same(&got, &recs), "{got:?}");
    assert_eq!(rep.records, 7);
    assert_eq!(rep.chunks, 2);
    assert_eq!(rep.series, 3);
    assert_eq!(rep.samples, weird.len() as u64);
    assert_eq!(rep.tombstones, 3);
    let stale = match &got[1] {
        Record::Samples(v) => v[3].v,
        _ => unreachable!(),
    };
    assert!(edgeprom_model::is_stale_nan(stale));
}

#[test]
fn segments_are_cut_before_a_commit_would_overflow() {
    let d = tempfile::tempdir().unwrap();
    let size = 1024;
    let (mut w, _) = Wal::open(d.path(), opts(size)).unwrap();
    assert_eq!(w.segment_range(), (0, 0));
    let mut want = vec![series(0, 10)];
    w.log(&want).unwrap();
    for t in 0..100 {
        let r = samples(t * 1000, 0..10);
        w.log(std::slice::from_ref(&r)).unwrap();
        want.push(r);
    }
    let (first, last) = w.segment_range();
    assert_eq!(first, 0);
    assert!(last >= 3, "only {last} cuts");
    for n in first..=last {
        assert!(seg_len(d.path(), n) <= size);
    }
    // A commit larger than a segment gets one of its own.
    let big = samples(1_000_000, 0..1000);
    w.log(std::slice::from_ref(&big)).unwrap();
    want.push(big);
    assert_eq!(w.segment_range().1, last + 1);
    assert!(seg_len(d.path(), last + 1) > size);
    // An explicit cut starts an empty segment and appending goes on there.
    assert_eq!(w.cut_segment().unwrap(), last + 2);
    let r = samples(2_000_000, 0..3);
    w.log(std::slice::from_ref(&r)).unwrap();
    want.push(r);
    drop(w);
    assert!(same(&all(d.path()), &want));
}

#[test]
fn reopen_continues_after_the_last_record() {
    let d = tempfile::tempdir().unwrap();
    let mut want = Vec::new();
    for round in 0..3u64 {
        let (mut w, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
        assert!(rep.is_clean(), "{rep:?}");
        assert_eq!(w.segment_range(), (0, 0));
        let recs = [
            series(round * 10, 10),
            samples(round as i64, round * 10..round * 10 + 10),
        ];
        w.log(&recs).unwrap();
        want.extend(recs);
        w.close().unwrap();
    }
    assert!(same(&all(d.path()), &want));
}

#[test]
fn every_sync_policy_logs_and_closes() {
    for sync in [
        SyncPolicy::Never,
        SyncPolicy::EveryCommit,
        SyncPolicy::Interval(Duration::from_millis(5)),
        SyncPolicy::Interval(Duration::ZERO),
    ] {
        let d = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(
            d.path(),
            WalOptions {
                segment_size: 512,
                sync,
            },
        )
        .unwrap();
        for t in 0..20 {
            w.log(&[samples(t, 0..10)]).unwrap();
            if t == 10 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        w.sync().unwrap();
        w.close().unwrap();
        assert_eq!(all(d.path()).len(), 20, "{sync:?}");
    }
    assert_eq!(WalOptions::default().segment_size, 128 << 20);
    assert_eq!(
        WalOptions::default().sync,
        SyncPolicy::Interval(Duration::from_secs(1))
    );
}

/// Writes `n` commits of [series, samples] to segment 0 and returns them with the offset where the
/// last commit starts.
fn write_commits(dir: &Path, n: u64) -> (Vec<Vec<Record>>, u64) {
    let (mut w, _) = Wal::open(dir, opts(1 << 20)).unwrap();
    let mut commits = Vec::new();
    let mut last_start = 0;
    for i in 0..n {
        last_start = seg_len(dir, 0);
        let c = vec![
            series(i * 3, 3),
            samples(i as i64 * 15_000, i * 3..i * 3 + 3),
        ];
        w.log(&c).unwrap();
        commits.push(c);
    }
    drop(w);
    (commits, last_start)
}

#[test]
fn torn_tail_at_every_offset_keeps_every_earlier_commit() {
    let d = tempfile::tempdir().unwrap();
    let (commits, last_start) = write_commits(d.path(), 5);
    let full = std::fs::read(segment::segment_path(d.path(), 0)).unwrap();
    let earlier: Vec<Record> = commits[..4].concat();
    for cut in last_start..full.len() as u64 {
        let c = tempfile::tempdir().unwrap();
        std::fs::write(segment::segment_path(c.path(), 0), &full[..cut as usize]).unwrap();

        // Replay before repair stops at the tear and delivers nothing of the torn commit, not even
        // its intact first record.
        let (got, rep) = all_with_report(c.path());
        assert!(same(&got, &earlier), "cut at {cut}");
        assert_eq!(rep.corrupt.is_some(), cut > last_start, "cut at {cut}");

        let (mut w, rep) = Wal::open(c.path(), opts(1 << 20)).unwrap();
        if cut == last_start {
            assert!(rep.is_clean());
        } else {
            assert_eq!(rep.truncated.len(), 1, "cut at {cut}");
            let t = &rep.truncated[0];
            assert_eq!((t.segment, t.offset), (0, last_start));
            assert_eq!(t.bytes, cut - last_start);
            assert!(t.records >= 1);
            assert!(!t.reason.is_empty());
        }
        assert_eq!(seg_len(c.path(), 0), last_start);
        // Appending after the repair lands right after the last good commit.
        let next = vec![samples(99, 0..2)];
        w.log(&next).unwrap();
        drop(w);
        let mut want = earlier.clone();
        want.extend(next);
        assert!(same(&all(c.path()), &want), "cut at {cut}");
    }
}

#[test]
fn zero_filled_tail_is_cut_off() {
    let d = tempfile::tempdir().unwrap();
    let (commits, _) = write_commits(d.path(), 3);
    let p = segment::segment_path(d.path(), 0);
    let len = seg_len(d.path(), 0);
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len + 4096).unwrap();
    drop(f);
    let (_, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    assert_eq!(rep.dropped_bytes(), 4096);
    assert!(rep.truncated[0].reason.contains("zero"), "{rep:?}");
    assert!(same(&all(d.path()), &commits.concat()));
}

#[test]
fn a_flipped_byte_in_the_last_segment_keeps_what_precedes_it() {
    let d = tempfile::tempdir().unwrap();
    let (commits, _) = write_commits(d.path(), 10);
    let p = segment::segment_path(d.path(), 0);
    let mut bytes = std::fs::read(&p).unwrap();
    // Find where commit 5 starts by replaying the first five into a fresh WAL.
    let e = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(e.path(), opts(1 << 20)).unwrap();
    for c in &commits[..5] {
        w.log(c).unwrap();
    }
    drop(w);
    let start5 = seg_len(e.path(), 0) as usize;
    let mid = start5 + 20;
    bytes[mid] ^= 0x40;
    std::fs::write(&p, &bytes).unwrap();

    let (got, rep) = all_with_report(d.path());
    assert!(same(&got, &commits[..5].concat()));
    assert!(
        rep.corrupt.as_deref().unwrap_or("").contains("checksum"),
        "{rep:?}"
    );

    let (_, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    assert_eq!(rep.truncated.len(), 1);
    assert_eq!(rep.truncated[0].offset, start5 as u64);
    assert_eq!(rep.truncated[0].bytes, (bytes.len() - start5) as u64);
    assert!(same(&all(d.path()), &commits[..5].concat()));
}

/// Three segments of two commits each; returns the commits per segment.
fn three_segments(dir: &Path) -> Vec<Vec<Record>> {
    let (mut w, _) = Wal::open(dir, opts(1 << 20)).unwrap();
    let mut per = Vec::new();
    for s in 0..3u64 {
        if s > 0 {
            w.cut_segment().unwrap();
        }
        let mut recs = Vec::new();
        for i in 0..2 {
            let k = s * 2 + i;
            let c = vec![series(k * 2, 2), samples(k as i64, k * 2..k * 2 + 2)];
            w.log(&c).unwrap();
            recs.extend(c);
        }
        per.push(recs);
    }
    drop(w);
    per
}

#[test]
fn corruption_in_an_earlier_segment_is_reported_and_nothing_is_deleted() {
    let d = tempfile::tempdir().unwrap();
    let per = three_segments(d.path());
    let p1 = segment::segment_path(d.path(), 1);
    let mut b = std::fs::read(&p1).unwrap();
    let len1 = b.len();
    b[len1 - 3] ^= 0xff;
    std::fs::write(&p1, &b).unwrap();
    let sizes: Vec<u64> = (0..3).map(|n| seg_len(d.path(), n)).collect();

    let err = Wal::open(d.path(), opts(1 << 20)).err().unwrap();
    assert!(
        matches!(&err, WalError::Corrupt { segment: 1, .. }),
        "{err}"
    );
    assert!(matches!(
        replay(d.path(), |_| {}),
        Err(WalError::Corrupt { segment: 1, .. })
    ));
    let after: Vec<u64> = (0..3).map(|n| seg_len(d.path(), n)).collect();
    assert_eq!(sizes, after, "a refused open must not touch any file");

    // The caller's choice 1: cut segment 1, keep segment 2.
    let keep = tempfile::tempdir().unwrap();
    for n in 0..3 {
        std::fs::copy(
            segment::segment_path(d.path(), n),
            segment::segment_path(keep.path(), n),
        )
        .unwrap();
    }
    let rep = repair(keep.path(), RepairMode::TruncateKeepLater).unwrap();
    assert_eq!(rep.truncated.len(), 1);
    assert_eq!(rep.truncated[0].segment, 1);
    assert!(rep.deleted.is_empty());
    let (w, rep) = Wal::open(keep.path(), opts(1 << 20)).unwrap();
    assert!(rep.is_clean());
    assert_eq!(w.segment_range(), (0, 2));
    drop(w);
    let mut want = per[0].clone();
    want.extend_from_slice(&per[1][..2]);
    want.extend_from_slice(&per[2]);
    assert!(same(&all(keep.path()), &want));

    // Choice 2: Prometheus's way, cut and drop everything later, reported file by file.
    let rep = repair(d.path(), RepairMode::DropLater).unwrap();
    assert_eq!(rep.deleted, vec![segment::segment_path(d.path(), 2)]);
    let (w, _) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    assert_eq!(w.segment_range(), (0, 1));
    drop(w);
    let mut want = per[0].clone();
    want.extend_from_slice(&per[1][..2]);
    assert!(same(&all(d.path()), &want));
}

#[test]
fn a_missing_segment_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    three_segments(d.path());
    std::fs::remove_file(segment::segment_path(d.path(), 1)).unwrap();
    assert!(matches!(
        Wal::open(d.path(), opts(1 << 20)),
        Err(WalError::MissingSegment { missing: 1, .. })
    ));
    assert!(matches!(
        replay(d.path(), |_| {}),
        Err(WalError::MissingSegment { missing: 1, .. })
    ));
}

#[test]
fn checkpoint_keeps_what_keep_says_and_deletes_old_segments() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    w.log(&[series(0, 10)]).unwrap();
    w.log(&[
        samples(1000, 0..10),
        Record::Tombstones(vec![(2, 0, 500), (3, 0, 5000)]),
    ])
    .unwrap();
    w.cut_segment().unwrap();
    w.log(&[samples(2000, 0..10)]).unwrap();
    w.log(&[series(10, 2)]).unwrap();
    w.cut_segment().unwrap();
    let tail = vec![samples(3000, 0..12)];
    w.log(&tail).unwrap();
    assert_eq!(w.segment_range(), (0, 2));

    let even = |r: u64| r.is_multiple_of(2);
    let st = w.checkpoint(1, even, 1500).unwrap();
    assert_eq!(st.checkpoint, 1);
    assert_eq!((st.series_total, st.series_dropped), (12, 6));
    assert_eq!((st.samples_total, st.samples_dropped), (20, 15));
    assert_eq!((st.tombstones_total, st.tombstones_dropped), (2, 2));
    assert_eq!(st.segments_deleted, 2);
    assert!(st.bytes_written > 0);
    assert_eq!(w.segment_range(), (2, 2));
    assert!(!segment::segment_path(d.path(), 0).exists());
    assert!(!segment::segment_path(d.path(), 1).exists());
    assert!(segment::checkpoint_path(d.path(), 1).is_dir());

    let (got, rep) = all_with_report(d.path());
    assert_eq!(rep.checkpoint, Some(1));
    let mut series_refs = Vec::new();
    let mut sample_pts = Vec::new();
    for r in &got {
        match r {
            Record::Series(v) => series_refs.extend(v.iter().map(|s| s.r)),
            Record::Samples(v) => sample_pts.extend(v.iter().map(|s| (s.r, s.t))),
            Record::Tombstones(v) => panic!("tombstones survived: {v:?}"),
            Record::Chunks(v) => panic!("chunks appeared: {v:?}"),
        }
    }
    assert_eq!(series_refs, vec![0, 2, 4, 6, 8, 10]);
    let mut want_pts: Vec<(u64, i64)> = (0..10).step_by(2).map(|r| (r, 2000)).collect();
    want_pts.extend((0..12).map(|r| (r, 3000)));
    assert_eq!(sample_pts, want_pts);

    // A second checkpoint up to the active segment cuts first, folds in the first checkpoint,
    // and removes it.
    let st = w.checkpoint(2, |r| r < 4, 2500).unwrap();
    assert_eq!(st.checkpoints_deleted, 1);
    assert_eq!(w.segment_range(), (3, 3));
    assert!(!segment::checkpoint_path(d.path(), 1).exists());
    w.log(&[samples(4000, 0..1)]).unwrap();
    drop(w);
    let got = all(d.path());
    let mut refs = Vec::new();
    let mut pts = Vec::new();
    for r in &got {
        match r {
            Record::Series(v) => refs.extend(v.iter().map(|s| s.r)),
            Record::Samples(v) => pts.extend(v.iter().map(|s| (s.r, s.t))),
            Record::Tombstones(_) | Record::Chunks(_) => {}
        }
    }
    assert_eq!(refs, vec![0, 2]);
    assert_eq!(
        pts,
        vec![(0, 3000), (1, 3000), (2, 3000), (3, 3000), (0, 4000)]
    );

    // Reopen sees the checkpoint and goes on from segment 3.
    let (mut w, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    assert!(rep.is_clean());
    assert_eq!(w.segment_range(), (3, 3));
    assert!(matches!(
        w.checkpoint(1, |_| true, 0),
        Err(WalError::CheckpointRange { .. })
    ));
}

#[test]
fn leftovers_of_an_interrupted_checkpoint_are_cleaned_on_open() {
    let d = tempfile::tempdir().unwrap();
    three_segments(d.path());
    // A crash while writing a checkpoint leaves its .tmp directory.
    let tmp = d.path().join("checkpoint.00000001.tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::write(tmp.join("00000000"), b"half").unwrap();
    let (w, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    assert_eq!(rep.removed_tmp, vec![tmp.clone()]);
    assert!(!tmp.exists());
    drop(w);

    // A crash after the rename but before segment cleanup leaves covered segments behind.
    let (mut w, _) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    let all_before = all(d.path());
    w.checkpoint(0, |_| true, i64::MIN).unwrap();
    drop(w);
    std::fs::write(segment::segment_path(d.path(), 0), b"stale, covered").unwrap();
    let (w, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    assert_eq!(rep.deleted_covered, vec![0]);
    assert!(rep.is_clean());
    assert_eq!(w.segment_range(), (1, 2));
    drop(w);
    assert!(same(&all(d.path()), &all_before));
}

#[test]
fn a_failed_write_leaves_no_half_commit() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    let first = vec![series(0, 5), samples(1, 0..5)];
    w.log(&first).unwrap();
    let good = seg_len(d.path(), 0);
    for n in [0usize, 1, 9, 30, 10_000] {
        w.fail_write_after = Some(n);
        let err = w.log(&[samples(2, 0..5)]).err().unwrap();
        assert!(matches!(err, WalError::Io { op: "writing", .. }), "{err}");
        assert_eq!(
            seg_len(d.path(), 0),
            good,
            "partial write of {n} bytes left behind"
        );
    }
    w.fail_write_after = None;
    let next = vec![samples(3, 0..5)];
    w.log(&next).unwrap();
    drop(w);
    let (_, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    assert!(rep.is_clean());
    let mut want = first;
    want.extend(next);
    assert!(same(&all(d.path()), &want));
}

#[test]
fn an_empty_or_missing_directory_replays_as_empty() {
    let d = tempfile::tempdir().unwrap();
    let rep = replay(&d.path().join("absent"), |_| panic!()).unwrap();
    assert_eq!(rep, ReplayReport::default());
    let (w, rep) = Wal::open(&d.path().join("new"), WalOptions::default()).unwrap();
    assert!(rep.is_clean());
    assert_eq!(w.segment_range(), (0, 0));
    w.close().unwrap();
    assert_eq!(all(&d.path().join("new")).len(), 0);
    // Stray files are not segments.
    std::fs::write(d.path().join("new").join("README"), b"x").unwrap();
    assert!(Wal::open(&d.path().join("new"), opts(1 << 20)).is_ok());
}

fn arb_labels() -> impl Strategy<Value = Labels> {
    proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..5).prop_map(Labels::from_pairs)
}

fn arb_record() -> impl Strategy<Value = Record> {
    prop_oneof![
        proptest::collection::vec(
            (any::<u64>(), arb_labels()).prop_map(|(r, labels)| SeriesRecord { r, labels }),
            0..5
        )
        .prop_map(Record::Series),
        proptest::collection::vec(
            (any::<u64>(), any::<i64>(), any::<u64>()).prop_map(|(r, t, v)| SampleRecord {
                r,
                t,
                v: f64::from_bits(v)
            }),
            0..50
        )
        .prop_map(Record::Samples),
        proptest::collection::vec((any::<u64>(), any::<i64>(), any::<i64>()), 0..5)
            .prop_map(Record::Tombstones),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_commits_round_trip(
        commits in proptest::collection::vec(proptest::collection::vec(arb_record(), 1..4), 0..12),
        segment_size in 64u64..4096,
    ) {
        let d = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(d.path(), opts(segment_size)).unwrap();
        for c in &commits {
            w.log(c).unwrap();
        }
        drop(w);
        let want: Vec<Record> = commits.concat();
        prop_assert!(same(&all(d.path()), &want));
        let (_, rep) = Wal::open(d.path(), opts(segment_size)).unwrap();
        prop_assert!(rep.is_clean());
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        prefix_commits in 0usize..3,
        junk in proptest::collection::vec(any::<u8>(), 0..512),
        as_earlier_segment in any::<bool>(),
    ) {
        let d = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(d.path(), opts(1 << 20)).unwrap();
        for i in 0..prefix_commits {
            w.log(&[samples(i as i64, 0..3)]).unwrap();
        }
        drop(w);
        let p = segment::segment_path(d.path(), 0);
        let mut b = std::fs::read(&p).unwrap();
        b.extend_from_slice(&junk);
        std::fs::write(&p, &b).unwrap();
        if as_earlier_segment {
            // A later segment holding a good commit makes the damaged one a mid-log segment.
            let e = tempfile::tempdir().unwrap();
            let (mut w, _) = Wal::open(e.path(), opts(1 << 20)).unwrap();
            w.log(&[samples(50, 0..2)]).unwrap();
            drop(w);
            std::fs::copy(segment::segment_path(e.path(), 0), segment::segment_path(d.path(), 1))
                .unwrap();
        }
        let mut n = 0;
        let replayed = replay(d.path(), |_| n += 1);
        match Wal::open(d.path(), opts(1 << 20)) {
            Ok((mut w, _)) => {
                // Whatever was repaired, the WAL is appendable and replays cleanly afterwards.
                w.log(&[samples(100, 0..1)]).unwrap();
                drop(w);
                let (_, rep) = all_with_report(d.path());
                prop_assert_eq!(rep.corrupt, None);
            }
            Err(WalError::Corrupt { .. }) => {
                prop_assert!(as_earlier_segment);
                prop_assert!(replayed.is_err());
                // The caller can always get going again through repair.
                repair(d.path(), RepairMode::TruncateKeepLater).unwrap();
                Wal::open(d.path(), opts(1 << 20)).unwrap();
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        }
        prop_assert!(n >= prefix_commits.min(1) || replayed.is_err());
    }

    #[test]
    fn arbitrary_payloads_never_panic_the_decoder(ty in 0u8..7, payload in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = encoding::decode(ty, &payload);
    }

    #[test]
    fn damaged_compressed_payloads_never_panic_the_decoder(
        n in 8u64..300,
        at in any::<prop::sample::Index>(),
        x in 1u8..=255,
        keep in any::<prop::sample::Index>(),
    ) {
        let mut frame = Vec::new();
        encoding::Compressor::default()
            .encode_frame(&mut frame, &scrape(15_000, 0..n), false)
            .unwrap();
        let mut payload = frame.split_off(encoding::HEADER_LEN);
        let i = at.index(payload.len());
        payload[i] ^= x;
        payload.truncate(keep.index(payload.len() + 1));
        let _ = encoding::decode(encoding::TYPE_SNAPPY, &payload);
    }
}

#[test]
fn a_torn_segment_followed_only_by_empty_ones_is_a_torn_tail() {
    // With SyncPolicy::Never, power loss right after a cut can lose the finished segment's tail
    // while the new, empty segment survives.
    let d = tempfile::tempdir().unwrap();
    let (commits, last_start) = write_commits(d.path(), 3);
    let p0 = segment::segment_path(d.path(), 0);
    let len = seg_len(d.path(), 0);
    OpenOptions::new()
        .write(true)
        .open(&p0)
        .unwrap()
        .set_len(len - 4)
        .unwrap();
    std::fs::write(segment::segment_path(d.path(), 1), b"").unwrap();
    let (got, rep) = all_with_report(d.path());
    assert!(same(&got, &commits[..2].concat()));
    assert!(rep.corrupt.is_some());
    let (mut w, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    assert_eq!(rep.truncated.len(), 1);
    assert_eq!(rep.truncated[0].offset, last_start);
    assert_eq!(w.segment_range(), (0, 1));
    w.log(&[samples(7, 0..1)]).unwrap();
    drop(w);
    assert_eq!(all(d.path()).len(), 5);
}

/// Reads every commit available from `tail`, returning the records.
fn drain(tail: &mut WalTail, kinds: RecordKinds) -> Vec<Record> {
    let mut out = Vec::new();
    while let TailStep::Commit(_) = tail.next_commit(kinds, &mut out).unwrap() {}
    out
}

#[test]
fn tail_follows_commits_across_segment_cuts() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments: compressed, these commits are about 40 bytes each.
    let (mut wal, _) = Wal::open(dir.path(), opts(1024)).unwrap();
    wal.log(&[series(0, 10)]).unwrap();
    let mut tail = WalTail::new(dir.path(), WalPosition::default());
    let mut want = vec![series(0, 10)];
    assert!(same(&drain(&mut tail, RecordKinds::ALL), &want));
    assert_eq!(tail.position(), wal.position());
    // Many small commits: several segments are cut while the reader follows.
    let mut got = Vec::new();
    for t in 0..200 {
        wal.log(&[samples(t, 0..10)]).unwrap();
        want.push(samples(t, 0..10));
        if t % 7 == 0 {
            got.extend(drain(&mut tail, RecordKinds::ALL));
        }
    }
    got.extend(drain(&mut tail, RecordKinds::ALL));
    assert!(wal.segment_range().1 > 3, "segments were cut");
    assert!(same(&got, &want[1..]));
    assert_eq!(tail.position(), wal.position());
    assert_eq!(tail.skipped(), (0, 0));
    // Idle at the end, and a reader started anywhere on a boundary sees the same suffix.
    let mut out = Vec::new();
    assert_eq!(
        tail.next_commit(RecordKinds::ALL, &mut out).unwrap(),
        TailStep::Idle
    );
    assert!(out.is_empty());
}

#[test]
fn tail_waits_for_a_commit_written_only_in_part() {
    let src = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(src.path(), opts(1 << 20)).unwrap();
    wal.log(&[series(0, 3)]).unwrap();
    let first_end = wal.position().offset;
    // A commit of two records: two frames, the first flagged "more".
    wal.log(&[samples(1, 0..3), samples(2, 0..3)]).unwrap();
    let bytes = std::fs::read(src.path().join("00000000")).unwrap();

    let dst = tempfile::tempdir().unwrap();
    let seg = dst.path().join("00000000");
    let mut tail = WalTail::new(dst.path(), WalPosition::default());
    // Every cut point inside the second commit: the first commit is returned, the second not.
    for cut in first_end as usize..bytes.len() {
        std::fs::write(&seg, &bytes[..cut]).unwrap();
        let mut tail = WalTail::new(dst.path(), WalPosition::default());
        let got = drain(&mut tail, RecordKinds::ALL);
        assert!(same(&got, &[series(0, 3)]), "cut at {cut}");
        assert_eq!(tail.position().offset, first_end);
    }
    // The same reader, once the rest arrives, continues where it stopped.
    std::fs::write(&seg, &bytes[..first_end as usize + 5]).unwrap();
    assert_eq!(drain(&mut tail, RecordKinds::ALL).len(), 1);
    std::fs::write(&seg, &bytes).unwrap();
    let got = drain(&mut tail, RecordKinds::ALL);
    assert!(same(&got, &[samples(1, 0..3), samples(2, 0..3)]));
}

#[test]
fn tail_skips_a_damaged_tail_once_the_writer_moved_on_and_segments_removed_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    wal.log(&[series(0, 3)]).unwrap();
    wal.log(&[samples(1, 0..3)]).unwrap();
    drop(wal);
    // Garbage after the last commit of segment 0, then a new segment written by a restart.
    let seg0 = dir.path().join("00000000");
    let good = std::fs::metadata(&seg0).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&seg0).unwrap();
    f.write_all(&[2, 200, 0, 0, 0, 1, 2, 3, 4, 5]).unwrap();
    drop(f);
    let mut tail = WalTail::new(dir.path(), WalPosition::default());
    assert_eq!(drain(&mut tail, RecordKinds::ALL).len(), 2);
    assert_eq!(
        tail.position().offset,
        good,
        "waits while segment 0 is the newest"
    );
    std::fs::write(dir.path().join("00000001"), b"").unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    wal.log(&[samples(2, 0..3)]).unwrap();
    let got = drain(&mut tail, RecordKinds::ALL);
    assert!(same(&got, &[samples(2, 0..3)]));
    assert_eq!(tail.skipped(), (0, 0), "open() cut the torn tail itself");

    // A reader far behind whose segments were deleted jumps to the first one left.
    let (mut wal, _) = Wal::open(dir.path(), opts(1024)).unwrap();
    for t in 0..100 {
        wal.log(&[samples(t, 0..10)]).unwrap();
    }
    let (first, _) = wal.segment_range();
    for n in first..first + 3 {
        std::fs::remove_file(dir.path().join(format!("{n:08}"))).unwrap();
    }
    let mut behind = WalTail::new(
        dir.path(),
        WalPosition {
            segment: first,
            offset: 0,
        },
    );
    let got = drain(&mut behind, RecordKinds::SERIES_AND_SAMPLES);
    assert!(!got.is_empty());
    assert_eq!(behind.skipped().0, 3);
    assert_eq!(behind.position(), wal.position());
}

#[test]
fn series_before_reads_the_checkpoint_and_segments_up_to_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    wal.log(&[series(0, 5), samples(1, 0..5)]).unwrap();
    wal.log(&[series(5, 5), samples(2, 0..10)]).unwrap();
    let (_, cur) = wal.segment_range();
    wal.checkpoint(cur, |_| true, i64::MIN).unwrap();
    wal.log(&[series(10, 5), samples(3, 0..15)]).unwrap();
    let mid = wal.position();
    wal.log(&[series(15, 5), samples(4, 0..20)]).unwrap();

    let mut refs = Vec::new();
    series_before(dir.path(), mid, |r| match r {
        Record::Series(v) => refs.extend(v.iter().map(|s| s.r)),
        other => panic!("only series wanted, got {other:?}"),
    })
    .unwrap();
    refs.sort_unstable();
    assert_eq!(refs, (0..15).collect::<Vec<u64>>());
    // Samples from that position on are the last commit's.
    let mut tail = WalTail::new(dir.path(), mid);
    let got = drain(&mut tail, RecordKinds::SERIES_AND_SAMPLES);
    assert!(same(&got, &[series(15, 5), samples(4, 0..20)]));
}

/// The type byte (without the "more" flag) of every frame in a segment.
fn frame_types(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + encoding::HEADER_LEN <= bytes.len() {
        let len = u32::from_le_bytes([bytes[at + 1], bytes[at + 2], bytes[at + 3], bytes[at + 4]]);
        out.push(bytes[at] & !encoding::FLAG_MORE);
        at += encoding::HEADER_LEN + len as usize;
    }
    out
}

/// One scrape's worth of samples with counter-like values, as the head logs them.
fn scrape(t: i64, refs: std::ops::Range<u64>) -> Record {
    Record::Samples(
        refs.map(|r| SampleRecord {
            r,
            t,
            v: (r % 100 * 7 + t as u64 / 15_000) as f64,
        })
        .collect(),
    )
}

#[test]
fn large_records_are_written_compressed_and_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let commits = vec![
        vec![series(0, 1000), scrape(15_000, 0..1000)],
        vec![scrape(30_000, 0..1000)],
        // Too small to compress: stays a plain frame.
        vec![samples(45_000, 0..2)],
    ];
    let (mut w, _) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    for c in &commits {
        w.log(c).unwrap();
    }
    drop(w);
    let bytes = std::fs::read(segment::segment_path(d.path(), 0)).unwrap();
    assert_eq!(
        frame_types(&bytes),
        [
            encoding::TYPE_SNAPPY,
            encoding::TYPE_SNAPPY,
            encoding::TYPE_SNAPPY,
            encoding::TYPE_SAMPLES
        ]
    );
    let mut plain = Vec::new();
    for c in &commits {
        for (i, r) in c.iter().enumerate() {
            encoding::encode_frame(&mut plain, r, i + 1 < c.len()).unwrap();
        }
    }
    assert!(
        bytes.len() * 2 < plain.len(),
        "{} vs {}",
        bytes.len(),
        plain.len()
    );
    assert!(same(&all(d.path()), &commits.concat()));

    // The tail reader decodes them too, and filters on the kind inside a compressed frame.
    let mut tail = WalTail::new(d.path(), WalPosition::default());
    assert!(same(
        &drain(&mut tail, RecordKinds::SERIES_AND_SAMPLES),
        &commits.concat()
    ));
    let mut tail = WalTail::new(d.path(), WalPosition::default());
    assert!(same(
        &drain(&mut tail, RecordKinds::SERIES),
        &[series(0, 1000)]
    ));
}

#[test]
fn segments_written_uncompressed_still_replay_and_take_new_commits() {
    let d = tempfile::tempdir().unwrap();
    // Segment 0 as a version without compression wrote it: plain frames only.
    let old = vec![
        vec![series(0, 500), scrape(15_000, 0..500)],
        vec![scrape(30_000, 0..500)],
    ];
    let mut bytes = Vec::new();
    for c in &old {
        for (i, r) in c.iter().enumerate() {
            encoding::encode_frame(&mut bytes, r, i + 1 < c.len()).unwrap();
        }
    }
    std::fs::write(segment::segment_path(d.path(), 0), &bytes).unwrap();
    assert!(
        frame_types(&bytes)
            .iter()
            .all(|&t| t != encoding::TYPE_SNAPPY)
    );

    let (mut w, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    assert!(rep.is_clean());
    let new = vec![series(500, 500), scrape(45_000, 0..1000)];
    w.log(&new).unwrap();
    let (_, cur) = w.segment_range();
    drop(w);
    let mut want = old.concat();
    want.extend(new.clone());
    assert!(same(&all(d.path()), &want));
    let mut tail = WalTail::new(d.path(), WalPosition::default());
    assert!(same(&drain(&mut tail, RecordKinds::ALL), &want));

    // A checkpoint reads both forms and writes compressed frames.
    let (mut w, _) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    w.checkpoint(cur, |_| true, i64::MIN).unwrap();
    drop(w);
    assert!(same(&all(d.path()), &want));
}

/// A compressed frame whose CRC is right but whose Snappy block is damaged, as a buggy or hostile
/// writer could produce: `damage` edits the payload, then the CRC is recomputed.
fn damaged_compressed_frame(r: &Record, damage: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut frame = Vec::new();
    encoding::Compressor::default()
        .encode_frame(&mut frame, r, false)
        .unwrap();
    assert_eq!(frame[0], encoding::TYPE_SNAPPY);
    let mut payload = frame.split_off(encoding::HEADER_LEN);
    damage(&mut payload);
    let crc = encoding::frame_crc(frame[0], &payload);
    frame[1..5].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    frame[5..9].copy_from_slice(&crc.to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

#[test]
fn a_commit_written_whole_that_does_not_decode_is_skipped_and_later_ones_replay() {
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 4] = [
        ("block cut short", |p| p.truncate(p.len() - 10)),
        ("claimed length too large", |p| {
            // Replace the uvarint after the inner type with a claim of 4 GiB - 1.
            let mut end = 1;
            while p[end] & 0x80 != 0 {
                end += 1;
            }
            p.splice(1..=end, [0xff, 0xff, 0xff, 0xff, 0x0f]);
        }),
        ("inner type not a record", |p| p[0] = encoding::TYPE_SNAPPY),
        ("flipped bits in the block", |p| {
            let n = p.len();
            for b in &mut p[n / 2..n / 2 + 4] {
                *b ^= 0x5a;
            }
        }),
    ];
    for (what, damage) in damages {
        let d = tempfile::tempdir().unwrap();
        let (commits, _) = write_commits(d.path(), 3);
        let p = segment::segment_path(d.path(), 0);
        let good = seg_len(d.path(), 0);
        let bad = damaged_compressed_frame(&scrape(99_000, 0..1000), damage);
        let (ty, payload) = (bad[0], &bad[encoding::HEADER_LEN..]);
        assert!(encoding::decode(ty, payload).is_err(), "{what}");
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&bad).unwrap();
        drop(f);

        // Open checks framing and CRCs only: a frame whose CRC matches was written whole, so it
        // is not a torn tail and stays; the commits logged after it must not be lost behind it.
        let (mut w, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
        assert!(rep.is_clean(), "{what}");
        assert_eq!(seg_len(d.path(), 0), good + bad.len() as u64, "{what}");
        let later = vec![scrape(100_000, 0..10)];
        w.log(&later).unwrap();
        drop(w);

        let want: Vec<Record> = commits.concat().into_iter().chain(later).collect();
        let (got, rep) = all_with_report(d.path());
        assert!(same(&got, &want), "{what}");
        assert_eq!(rep.corrupt, None, "{what}");
        assert_eq!(rep.undecodable_commits, 1, "{what}: {rep:?}");
        assert!(rep.undecodable.is_some(), "{what}");
        let mut tail = WalTail::new(d.path(), WalPosition::default());
        assert!(same(&drain(&mut tail, RecordKinds::ALL), &want), "{what}");
    }
}

#[test]
fn a_torn_or_flipped_compressed_frame_is_cut_off_as_before() {
    let d = tempfile::tempdir().unwrap();
    let (commits, _) = write_commits(d.path(), 3);
    let good = seg_len(d.path(), 0);
    let (mut w, _) = Wal::open(d.path(), opts(1 << 20)).unwrap();
    w.log(&[scrape(99_000, 0..1000)]).unwrap();
    drop(w);
    let p = segment::segment_path(d.path(), 0);
    let full = std::fs::read(&p).unwrap();
    assert_eq!(full[good as usize], encoding::TYPE_SNAPPY);
    let flipped = {
        let mut b = full.clone();
        let mid = (good as usize + full.len()) / 2;
        b[mid] ^= 0x10;
        b
    };
    let torn = full[..full.len() - 7].to_vec();
    for (what, bytes) in [("flipped", flipped), ("torn", torn)] {
        std::fs::write(&p, &bytes).unwrap();
        let (got, rep) = all_with_report(d.path());
        assert!(same(&got, &commits.concat()), "{what}");
        assert!(rep.corrupt.is_some(), "{what}");
        let (_, rep) = Wal::open(d.path(), opts(1 << 20)).unwrap();
        assert_eq!(rep.truncated.len(), 1, "{what}");
        assert_eq!(rep.truncated[0].offset, good, "{what}");
        assert_eq!(seg_len(d.path(), 0), good, "{what}");
        assert!(same(&all(d.path()), &commits.concat()), "{what}");
    }
}
