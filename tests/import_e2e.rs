//! `edgeprom import openmetrics`: a good file lands whole (generator corpus, and `stale` values
//! as staleness markers); a malformed line fails naming that line and leaves no block behind.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::temp_dir;
use edgeprom_fixtures::corpus::{Config, Corpus};
use edgeprom_storage::index::{MatchType, Matcher};
use edgeprom_storage::{Options, Storage};

fn import(file: &Path, data: &Path) -> Output {
    // The import reads a local file and ends on its own; no network, nothing to wait for.
    Command::new(env!("CARGO_BIN_EXE_edgeprom"))
        .args(["import", "openmetrics"])
        .arg(file)
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .output()
        .expect("run edgeprom import")
}

fn block_dirs(data: &Path) -> Vec<String> {
    std::fs::read_dir(data)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    e.path().join("meta.json").is_file()
                        || e.file_name().to_string_lossy().ends_with(".tmp")
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn all_samples(data: &Path) -> Vec<(String, Vec<(i64, f64)>)> {
    let storage = Storage::open(data, Options::default()).expect("open storage");
    let all = Matcher::new(MatchType::Regex, "__name__", ".+").expect("matcher");
    storage
        .select(&[all], i64::MIN, i64::MAX)
        .into_iter()
        .map(|s| (s.labels.to_string(), s.samples().collect()))
        .collect()
}

#[test]
fn imports_a_generated_corpus_whole() {
    let dir = temp_dir("import-corpus");
    let file = dir.join("corpus.om");
    let mut corpus = Corpus::new(Config {
        workers: 2,
        duration_s: 120,
        ..Config::default()
    });
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("create"));
    let written = corpus.write(&mut out).expect("write corpus");
    drop(out);
    let data = dir.join("data");
    let o = import(&file, &data);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!block_dirs(&data).is_empty());
    let got = all_samples(&data);
    let stored: usize = got.iter().map(|(_, s)| s.len()).sum();
    assert_eq!(stored as u64, written);
    assert_eq!(got.len(), corpus.stats().series);
}

#[test]
fn stale_values_become_staleness_markers() {
    let dir = temp_dir("import-stale");
    let file = dir.join("in.om");
    std::fs::write(
        &file,
        "# TYPE temp gauge\ntemp{room=\"a\"} 21.5 1767225600\ntemp{room=\"a\"} stale 1767225615\ntemp{room=\"a\"} 22 1767225630.5\n# EOF\n",
    )
    .expect("write");
    let data = dir.join("data");
    let o = import(&file, &data);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = all_samples(&data);
    assert_eq!(got.len(), 1);
    let s = &got[0].1;
    assert_eq!(s.len(), 3);
    assert_eq!(s[0], (1_767_225_600_000, 21.5));
    assert!(edgeprom_model::is_stale_nan(s[1].1) && s[1].0 == 1_767_225_615_000);
    assert_eq!(s[2], (1_767_225_630_500, 22.0));
}

#[test]
fn malformed_line_is_named_and_no_block_appears() {
    let dir = temp_dir("import-bad");
    let file = dir.join("bad.om");
    // Line 6 is broken; the lines before it are fine and must not be kept either.
    std::fs::write(
        &file,
        "# TYPE a gauge\na 1 1767225600\na 2 1767225610\n# TYPE b gauge\nb 1 1767225600\nb{x=\"1\" 2 1767225610\n# EOF\n",
    )
    .expect("write");
    let data = dir.join("data");
    let o = import(&file, &data);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.om:6:"), "{err}");
    assert!(block_dirs(&data).is_empty(), "{:?}", block_dirs(&data));

    // A sample without a timestamp is refused too, naming its line.
    std::fs::write(&file, "# TYPE a gauge\na 1 1767225600\na 2\n# EOF\n").expect("write");
    let o = import(&file, &data);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.om:3:") && err.contains("timestamp"),
        "{err}"
    );
    assert!(block_dirs(&data).is_empty());
}
