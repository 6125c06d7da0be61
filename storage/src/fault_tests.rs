//! EIO and ENOSPC on every write path, injected through [`crate::fault`]: each failure stops only
//! the work it hit, is counted, leaves no partial file holding space, is retried, and loses no
//! stored sample — checked again after reopening the directory. (`tests/disk_full_e2e.rs` fills a
//! real tmpfs under the binary; these reach the paths a full disk seldom hits first, and EIO,
//! which no file system here can be made to return.)

use super::*;
use crate::fault::{WritePath, inject};
use crate::tests::{seconds, small_blocks, up};

const ERRNOS: [i32; 2] = [libc::EIO, libc::ENOSPC];

/// Commits one sample per second on up{job=a..c}, value = second; stops at the first refusal.
fn fill(s: &Storage, from: i64, to: i64) -> Result<(), String> {
    for t in from..to {
        let mut app = s.appender();
        for job in ["a", "b", "c"] {
            app.append(None, &up(job), t * 1000, t as f64)
                .map_err(|e| e.to_string())?;
        }
        app.commit().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn assert_all(s: &Storage, want: &[i64], what: &str) {
    for job in ["a", "b", "c"] {
        assert_eq!(seconds(s, job), want, "{what}: job {job}");
    }
}

/// Files and directories under `dir` whose names end in `.tmp`: what a failed write left behind.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.to_string_lossy().ends_with(".tmp") {
                out.push(p.clone());
            }
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

fn is_errno(e: &impl std::fmt::Display, errno: i32) -> bool {
    e.to_string()
        .contains(&std::io::Error::from_raw_os_error(errno).to_string())
}

#[test]
fn a_failing_head_chunk_write_keeps_the_chunk_in_memory_and_is_retried_later() {
    // skip 0: creating the file fails; 1: its header after creating it; 2: the first record.
    for errno in ERRNOS {
        for skip in 0..3 {
            let what = format!("errno {errno}, skip {skip}");
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path();
            let s = Storage::open(d, small_blocks()).unwrap();
            {
                let _fault = inject(d, WritePath::HeadChunks, errno, skip);
                fill(&s, 0, 300).unwrap_or_else(|e| panic!("{what}: WAL commits fail: {e}"));
                let stats = s.stats();
                assert_eq!(stats.chunks_created, 0, "{what}");
                // One failure, then a pause: not a retry (and a log line) per append.
                assert_eq!(stats.chunk_write_failures, 1, "{what}");
                assert_all(&s, &(0..300).collect::<Vec<_>>(), &what);
            }
            s.head.retry_chunk_writes_now();
            fill(&s, 300, 600).unwrap();
            assert!(s.stats().chunks_created >= 3, "{what}: {:?}", s.stats());
            assert_all(&s, &(0..600).collect::<Vec<_>>(), &what);
            drop(s);
            let s = Storage::open(d, small_blocks()).unwrap();
            assert!(
                s.open_report().head_chunk_problems.is_empty(),
                "{what}: {:?}",
                s.open_report()
            );
            assert_all(
                &s,
                &(0..600).collect::<Vec<_>>(),
                &format!("{what}, reopened"),
            );
        }
    }
}

#[test]
fn a_failing_wal_write_refuses_only_that_commit() {
    for errno in ERRNOS {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let s = Storage::open(d, small_blocks()).unwrap();
        fill(&s, 0, 10).unwrap();
        {
            let _fault = inject(d, WritePath::Wal, errno, 0);
            let e = fill(&s, 10, 11).expect_err("the commit must fail");
            assert!(
                e.contains(&std::io::Error::from_raw_os_error(errno).to_string()),
                "{e}"
            );
            assert_eq!(s.stats().wal_failures, 1);
        }
        fill(&s, 11, 20).unwrap();
        let want: Vec<i64> = (0..10).chain(11..20).collect();
        assert_all(&s, &want, "after the failure");
        drop(s);
        let s = Storage::open(d, small_blocks()).unwrap();
        assert_all(&s, &want, "reopened");
    }
}

#[test]
fn a_failing_compaction_leaves_the_head_whole_no_partial_block_and_is_retried() {
    // Different `skip`s fail the first block at its first file, part-way through, and the
    // second or third block after the first ones were written.
    for errno in ERRNOS {
        for skip in [0, 1, 2, 4, 8, 12, 20] {
            let what = format!("errno {errno}, skip {skip}");
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path();
            let s = Storage::open(d, small_blocks()).unwrap();
            fill(&s, 0, 400).unwrap();
            let all: Vec<i64> = (0..400).collect();
            {
                let _fault = inject(d, WritePath::Block, errno, skip);
                let e = s.maintain(400_000).expect_err(&what);
                assert!(is_errno(&e, errno), "{what}: {e}");
                assert_eq!(s.stats().compactions_failed, 1, "{what}");
                assert_eq!(leftovers(d), Vec::<PathBuf>::new(), "{what}");
                assert_all(&s, &all, &what);
                // Ingestion goes on meanwhile.
                fill(&s, 400, 410).unwrap();
            }
            let report = s.maintain(410_000).unwrap();
            assert!(!report.blocks_written.is_empty(), "{what}");
            assert_eq!(
                s.block_list()
                    .iter()
                    .map(|b| (b.1, b.2))
                    .collect::<Vec<_>>(),
                [(0, 100_000), (100_000, 200_000), (200_000, 300_000)],
                "{what}"
            );
            let all: Vec<i64> = (0..410).collect();
            assert_all(&s, &all, &what);
            drop(s);
            let s = Storage::open(d, small_blocks()).unwrap();
            assert_all(&s, &all, &format!("{what}, reopened"));
            assert!(s.open_report().quarantined.is_empty(), "{what}");
        }
    }
}

#[test]
fn a_failing_checkpoint_is_retried_and_the_wal_still_replays_everything() {
    let options = || Options {
        chunk_file_size: 1 << 20,
        wal: wal::WalOptions {
            segment_size: 4 << 10,
            ..Default::default()
        },
        ..Options::default()
    };
    for errno in ERRNOS {
        for skip in [0, 1, 3] {
            let what = format!("errno {errno}, skip {skip}");
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path();
            let s = Storage::open(d, options()).unwrap();
            fill(&s, 0, 300).unwrap();
            {
                let _fault = inject(d, WritePath::Checkpoint, errno, skip);
                let e = s.maintain(300_000).expect_err(&what);
                assert!(is_errno(&e, errno), "{what}: {e}");
                assert_eq!(s.stats().checkpoints_failed, 1, "{what}");
                fill(&s, 300, 310).unwrap();
            }
            s.maintain(310_000).unwrap();
            assert_eq!(leftovers(d), Vec::<PathBuf>::new(), "{what}");
            assert!(
                std::fs::read_dir(d.join("wal"))
                    .unwrap()
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("checkpoint.")),
                "{what}: no checkpoint after the retry"
            );
            drop(s);
            let s = Storage::open(d, options()).unwrap();
            assert_all(&s, &(0..310).collect::<Vec<_>>(), &what);
        }
    }
}

#[test]
fn a_failing_snapshot_leaves_nothing_behind_and_a_retry_is_complete() {
    for errno in ERRNOS {
        for skip in [0, 1, 3, 6, 12] {
            let what = format!("errno {errno}, skip {skip}");
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path();
            let s = Storage::open(d, small_blocks()).unwrap();
            fill(&s, 0, 400).unwrap();
            s.maintain(400_000).unwrap();
            assert_eq!(s.block_list().len(), 3);
            let snap = d.join("snapshots").join("one");
            {
                let _fault = inject(d, WritePath::Snapshot, errno, skip);
                let e = s.snapshot(&snap, false).expect_err(&what);
                assert!(is_errno(&e, errno), "{what}: {e}");
                assert!(!snap.exists(), "{what}: a partial snapshot was left");
            }
            s.snapshot(&snap, false).unwrap();
            // A snapshot is a data directory of its own; opening it (a copy, since opening
            // writes a WAL) gives back every sample.
            let copy = tmp.path().join("copy");
            copy_tree(&snap, &copy);
            let opened = Storage::open(&copy, small_blocks()).unwrap();
            assert_all(&opened, &(0..400).collect::<Vec<_>>(), &what);
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn a_deletion_the_disk_refuses_hides_nothing() {
    for errno in ERRNOS {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let s = Storage::open(d, small_blocks()).unwrap();
        fill(&s, 0, 100).unwrap();
        let job_a = vec![index::Matcher::new(index::MatchType::Equal, "job", "a").unwrap()];
        {
            let _fault = inject(d, WritePath::Tombstones, errno, 0);
            let e = s.delete_series(std::slice::from_ref(&job_a), 0, 50_000);
            assert!(e.is_err_and(|e| is_errno(&e, errno)));
            assert_eq!(seconds(&s, "a"), (0..100).collect::<Vec<_>>());
        }
        s.delete_series(&[job_a], 0, 50_000).unwrap();
        assert_eq!(seconds(&s, "a"), (51..100).collect::<Vec<_>>());
        drop(s);
        let s = Storage::open(d, small_blocks()).unwrap();
        assert_eq!(seconds(&s, "a"), (51..100).collect::<Vec<_>>());
        assert_eq!(seconds(&s, "b"), (0..100).collect::<Vec<_>>());
    }
}

#[test]
fn a_segment_cut_that_fails_after_creating_the_file_can_be_retried() {
    // Checkpointing cuts a segment first: its file is created (the skipped check), then the
    // directory sync fails. The retry must not trip over the file the failed cut created.
    for errno in ERRNOS {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let s = Storage::open(d, small_blocks()).unwrap();
        fill(&s, 0, 50).unwrap();
        {
            let _fault = inject(d, WritePath::Wal, errno, 1);
            let e = s.maintain(50_000).expect_err("the cut must fail");
            assert!(is_errno(&e, errno), "{e}");
        }
        fill(&s, 50, 60).unwrap();
        s.maintain(60_000).unwrap();
        fill(&s, 60, 70).unwrap();
        drop(s);
        let s = Storage::open(d, small_blocks()).unwrap();
        assert_all(&s, &(0..70).collect::<Vec<_>>(), "reopened");
    }
}
