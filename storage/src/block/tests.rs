use std::path::Path;

use edgeprom_model::Labels;
use proptest::prelude::*;

use super::*;
use crate::index::{MatchType, Matcher};

type Input = Vec<(Labels, Vec<(i64, f64)>)>;

const STALE: u64 = 0x7ff0_0000_0000_0002;

fn write(parent: &Path, input: &Input, mint: i64, maxt: i64) -> Block {
    let meta = write_block(
        parent,
        input.iter().cloned(),
        mint,
        maxt,
        1,
        vec!["src".into()],
    )
    .expect("write_block");
    Block::open(&parent.join(&meta.id)).expect("open")
}

fn read_all(b: &Block) -> Input {
    b.select(&[], i64::MIN, i64::MAX)
        .iter()
        .map(|s| (s.labels.clone(), s.samples().collect()))
        .collect()
}

fn bits(input: &Input) -> Vec<(Labels, Vec<(i64, u64)>)> {
    input
        .iter()
        .map(|(l, s)| {
            (
                l.clone(),
                s.iter().map(|&(t, v)| (t, v.to_bits())).collect(),
            )
        })
        .collect()
}

/// A value of one of the shapes the encoder distinguishes.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0i64..1000).prop_map(|x| x as f64),
        (-100_000i64..100_000).prop_map(|x| x as f64 / 10.0),
        any::<f64>(),
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::from_bits(STALE)),
        Just(-0.0),
        Just(f64::INFINITY),
    ]
}

fn series_strategy() -> impl Strategy<Value = Input> {
    let labels = (0u8..4, 0u8..3, proptest::option::of(0u8..3)).prop_map(|(n, a, b)| {
        let mut pairs = vec![("__name__", format!("m{n}")), ("a", format!("x{a}"))];
        if let Some(b) = b {
            pairs.push(("b", format!("y{b}")));
        }
        Labels::from_pairs(pairs)
    });
    let samples = (
        -1_000_000i64..1_000_000,
        prop_oneof![Just(true), Just(false)],
        proptest::collection::vec((1i64..5000, value()), 1..60),
    )
        .prop_map(|(start, decimal_run, steps)| {
            let mut t = start;
            let mut c = 0.0;
            steps
                .into_iter()
                .map(|(d, v)| {
                    t += d;
                    // Half the series are counters, so the decimal path sees real runs.
                    let v = if decimal_run {
                        c += (d % 7) as f64;
                        c
                    } else {
                        v
                    };
                    (t, v)
                })
                .collect::<Vec<_>>()
        });
    proptest::collection::btree_map(labels, samples, 0..12).prop_map(|m| m.into_iter().collect())
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    let name = prop_oneof![Just("__name__"), Just("a"), Just("b"), Just("zz")];
    let value = prop_oneof![
        Just("m1".to_string()),
        Just("x0".to_string()),
        Just("y1".to_string()),
        Just("".to_string()),
        Just("x.*".to_string()),
        Just("m0|m2".to_string()),
        Just(".*".to_string()),
        Just("y.+".to_string()),
    ];
    let kind = prop_oneof![
        Just(MatchType::Equal),
        Just(MatchType::NotEqual),
        Just(MatchType::Regex),
        Just(MatchType::NotRegex),
    ];
    (kind, name, value).prop_filter_map("valid", |(k, n, v)| Matcher::new(k, n, &v).ok())
}

fn oracle_matches(labels: &Labels, ms: &[Matcher]) -> bool {
    ms.iter()
        .all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_and_select(
        input in series_strategy(),
        ms in proptest::collection::vec(matcher_strategy(), 0..3),
        lo in -1_000_000i64..1_500_000,
        span in 0i64..500_000,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = write(dir.path(), &input, -1_000_000, 2_000_000);
        prop_assert_eq!(bits(&read_all(&b)), bits(&input));
        prop_assert_eq!(b.meta().num_series, input.len() as u64);

        let (mint, maxt) = (lo, lo + span);
        let got: Input = b
            .select(&ms, mint, maxt)
            .iter()
            .map(|s| (s.labels.clone(), s.samples().collect()))
            .collect();
        let want: Input = input
            .iter()
            .filter(|(l, s)| {
                oracle_matches(l, &ms)
                    && s.first().is_some_and(|f| f.0 <= maxt)
                    && s.last().is_some_and(|l| l.0 >= mint)
            })
            .map(|(l, s)| {
                (l.clone(), s.iter().copied().filter(|&(t, _)| t >= mint && t <= maxt).collect())
            })
            .collect();
        prop_assert_eq!(bits(&got), bits(&want));

        let selected: Vec<&Labels> =
            input.iter().map(|x| &x.0).filter(|l| oracle_matches(l, &ms)).collect();
        let mut names: Vec<String> =
            selected.iter().flat_map(|l| l.iter().map(|x| x.name.clone())).collect();
        names.sort();
        names.dedup();
        prop_assert_eq!(b.label_names(&ms), names);
        for name in ["__name__", "a", "b", "zz"] {
            let mut values: Vec<String> =
                selected.iter().filter_map(|l| l.get(name).map(str::to_string)).collect();
            values.sort();
            values.dedup();
            prop_assert_eq!(b.label_values(name, &ms), values);
        }
    }

    #[test]
    fn compact_equals_union(a in series_strategy(), b in series_strategy()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ba = write(dir.path(), &a, -1_000_000, 2_000_000);
        let bb = write(dir.path(), &b, -1_000_000, 2_000_000);
        let meta = compact(dir.path(), &[&ba, &bb]).expect("compact");
        prop_assert_eq!(meta.level, 2);
        prop_assert_eq!(&meta.sources, &vec!["src".to_string()]);
        let c = Block::open(&dir.path().join(&meta.id)).expect("open");
        let mut union: std::collections::BTreeMap<Labels, std::collections::BTreeMap<i64, f64>> =
            Default::default();
        for (l, s) in b.iter().chain(a.iter()) {
            // `a` last: at a repeated timestamp the first block's sample wins.
            union.entry(l.clone()).or_default().extend(s.iter().copied());
        }
        let want: Input =
            union.into_iter().map(|(l, s)| (l, s.into_iter().collect())).collect();
        prop_assert_eq!(bits(&read_all(&c)), bits(&want));
    }
}

fn sample_block(dir: &Path) -> Block {
    let input: Input = (0..20)
        .map(|i| {
            let l = Labels::from_pairs([("__name__", "m"), ("i", &format!("{i:02}"))]);
            (l, (0..100).map(|t| (t * 1000, (t * i) as f64)).collect())
        })
        .collect();
    write(dir, &input, 0, 100_000)
}

#[test]
fn flipped_byte_in_each_file_fails_open_naming_it() {
    for file in [META_FILE, INDEX_FILE, SAMPLES_FILE] {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = sample_block(dir.path());
        let bdir = b.dir().to_path_buf();
        drop(b);
        let path = bdir.join(file);
        let mut bytes = std::fs::read(&path).expect("read");
        for pos in [0, bytes.len() / 2, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[pos] ^= 0x10;
            std::fs::write(&path, &damaged).expect("write");
            let err = Block::open(&bdir).expect_err("corrupt block opened");
            let msg = err.to_string();
            assert!(msg.contains(file), "{file}@{pos}: {msg}");
        }
        bytes.truncate(3);
        std::fs::write(&path, &bytes).expect("write");
        assert!(
            Block::open(&bdir)
                .expect_err("truncated")
                .to_string()
                .contains(file)
        );
    }
}

#[test]
fn tmp_leftover_is_cleaned_and_never_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = sample_block(dir.path());
    let tmp = dir.path().join(format!("{}{TMP_SUFFIX}", b.meta().id));
    std::fs::create_dir(&tmp).expect("mkdir");
    for f in [META_FILE, INDEX_FILE, SAMPLES_FILE] {
        std::fs::copy(b.dir().join(f), tmp.join(f)).expect("copy");
    }
    assert!(Block::open(&tmp).is_err(), "a .tmp directory must not open");
    assert_eq!(cleanup_tmp(dir.path()).expect("cleanup"), 1);
    assert!(!tmp.exists());
    assert!(b.dir().exists());
    assert_eq!(cleanup_tmp(dir.path()).expect("cleanup"), 0);
    assert_eq!(
        cleanup_tmp(&dir.path().join("missing")).expect("cleanup"),
        0
    );
}

#[test]
fn empty_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = write(dir.path(), &Vec::new(), 0, 7_200_000);
    assert_eq!(b.meta().num_series, 0);
    assert_eq!(b.meta().num_samples, 0);
    assert!(b.select(&[], i64::MIN, i64::MAX).is_empty());
    assert!(b.label_names(&[]).is_empty());
    assert!(b.label_values("__name__", &[]).is_empty());
    let c = compact(dir.path(), &[&b, &b]).expect("compact");
    assert_eq!(c.num_series, 0);
}

#[test]
fn huge_and_negative_timestamps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = |n: &str| Labels::from_pairs([("__name__", n)]);
    let input: Input = vec![
        (
            l("a"),
            vec![
                (i64::MIN, 1.0),
                (-5, 2.5),
                (0, f64::NAN),
                (i64::MAX - 1, 3.0),
            ],
        ),
        (
            l("b"),
            vec![(i64::MIN + 1, f64::from_bits(STALE)), (i64::MAX - 2, -0.0)],
        ),
    ];
    let b = write(dir.path(), &input, i64::MIN, i64::MAX);
    assert_eq!(bits(&read_all(&b)), bits(&input));
    let got: Vec<_> = b.select(&[], -10, 0)[0].samples().map(|s| s.0).collect();
    assert_eq!(got, vec![-5, 0]);
}

#[test]
fn writer_rejects_bad_input_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = |n: &str| Labels::from_pairs([("__name__", n)]);
    let cases: Vec<Input> = vec![
        vec![(l("b"), vec![(1, 1.0)]), (l("a"), vec![(1, 1.0)])],
        vec![(l("a"), vec![(2, 1.0), (1, 1.0)])],
        vec![(l("a"), vec![(1, 1.0), (1, 2.0)])],
        vec![(l("a"), vec![(100, 1.0)])],
    ];
    for input in cases {
        let err = write_block(dir.path(), input.into_iter(), 0, 100, 1, vec![]);
        assert!(matches!(err, Err(BlockError::InvalidInput(_))), "{err:?}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
}

#[test]
fn ids_sort_in_write_order() {
    let ids: Vec<String> = (0..1000).map(|_| new_block_id()).collect();
    assert!(ids.iter().all(|id| id.len() == 26));
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn meta_and_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = sample_block(dir.path());
    let m = b.meta();
    assert_eq!(
        (m.min_time, m.max_time, m.num_series, m.num_samples),
        (0, 100_000, 20, 2000)
    );
    let on_disk: u64 = [META_FILE, INDEX_FILE, SAMPLES_FILE]
        .iter()
        .map(|f| std::fs::metadata(b.dir().join(f)).map_or(0, |x| x.len()))
        .sum();
    assert_eq!(b.size_bytes(), on_disk);
    let json: BlockMeta =
        serde_json::from_slice(&std::fs::read(b.dir().join(META_FILE)).expect("read"))
            .expect("json");
    assert_eq!(&json, m);
}

#[test]
fn corpus_round_trips() {
    let data = super::corpus::dynamo_hour(3, 2);
    let input: Input = data.into_iter().map(|(l, _, s)| (l, s)).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let b = write(
        dir.path(),
        &input,
        super::corpus::START_MS,
        super::corpus::START_MS + super::corpus::HOUR_MS,
    );
    assert_eq!(bits(&read_all(&b)), bits(&input));
}
