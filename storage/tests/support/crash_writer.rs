//! Test support for `tests/crash.rs`: appends numbered batches to a storage directory forever and
//! prints `committed N` after each commit returns, until it is killed.
//!
//! Batch N writes value N at timestamp N*1000 to each of `SERIES` series. A second thread runs
//! storage maintenance (a WAL checkpoint of the head) every few milliseconds while commits go on,
//! so kills land inside checkpoints, and checkpoints race commits and chunk cuts. It starts after
//! the newest batch already in the directory so that restarts never append out of order.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use edgeprom_model::{Appendable, Labels};
use edgeprom_storage::{Options, Storage};

const SERIES: usize = 50;

fn main() {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: crash_writer DIR");
        std::process::exit(2);
    };
    let options = Options {
        chunk_file_size: 1 << 20,
        ..Options::default()
    };
    let storage = match Storage::open(&dir, options) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("open: {e}");
            std::process::exit(1);
        }
    };
    let labels: Vec<Labels> = (0..SERIES)
        .map(|i| Labels::from_pairs([("__name__", "crash_test"), ("series", &i.to_string())]))
        .collect();
    let maintenance = Arc::clone(&storage);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(3));
            // No retention is configured, so `now` only matters for block compaction, which the
            // writer's timestamps (seconds since 0) never reach.
            if let Err(e) = maintenance.maintain(0) {
                eprintln!("maintain: {e}");
                std::process::exit(1);
            }
        }
    });
    let mut n = storage.time_range().map_or(0, |(_, max)| max / 1000 + 1);
    let mut out = std::io::stdout().lock();
    loop {
        let mut app = storage.appender();
        for l in &labels {
            if let Err(e) = app.append(None, l, n * 1000, n as f64) {
                eprintln!("append {n}: {e}");
                std::process::exit(1);
            }
        }
        if let Err(e) = app.commit() {
            eprintln!("commit {n}: {e}");
            std::process::exit(1);
        }
        if writeln!(out, "committed {n}")
            .and_then(|_| out.flush())
            .is_err()
        {
            std::process::exit(0);
        }
        n += 1;
    }
}
