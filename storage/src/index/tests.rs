use super::*;
use edgeprom_model::Labels;
use proptest::prelude::*;

fn m(kind: MatchType, name: &str, value: &str) -> Matcher {
    Matcher::new(kind, name, value).expect("test matcher")
}
fn eq(n: &str, v: &str) -> Matcher {
    m(MatchType::Equal, n, v)
}
fn ne(n: &str, v: &str) -> Matcher {
    m(MatchType::NotEqual, n, v)
}
fn re(n: &str, v: &str) -> Matcher {
    m(MatchType::Regex, n, v)
}
fn nre(n: &str, v: &str) -> Matcher {
    m(MatchType::NotRegex, n, v)
}

/// What Prometheus defines selection to be: a missing label reads as `""`.
fn oracle(series: &[(u32, Labels)], ms: &[Matcher]) -> Vec<u32> {
    series
        .iter()
        .filter(|(_, l)| ms.iter().all(|m| m.matches(l.get(m.name()).unwrap_or(""))))
        .map(|(r, _)| *r)
        .collect()
}

/// Series shaped like a Dynamo deployment's: frontend histograms, worker gauges and `up`.
fn dynamo() -> Vec<(u32, Labels)> {
    let mut out = Vec::new();
    let mut push = |pairs: Vec<(&str, String)>| {
        let r = out.len() as u32;
        out.push((r, Labels::from_pairs(pairs)));
    };
    let models = ["llama-3-8b", "llama-3-70b", "Qwen2-7B", "mistral-7b"];
    let les = ["0.005", "0.05", "0.5", "1", "5", "+Inf"];
    for ns in ["dynamo", "dynamo-prod"] {
        for pod in 0..4 {
            let pod_name = format!("frontend-{ns}-{pod}");
            let instance = format!("10.0.{pod}.1:8000");
            for model in models {
                for le in les {
                    push(vec![
                        (
                            "__name__",
                            "dynamo_frontend_time_to_first_token_seconds_bucket".into(),
                        ),
                        ("job", "dynamo-frontend".into()),
                        ("instance", instance.clone()),
                        ("namespace", ns.into()),
                        ("pod", pod_name.clone()),
                        ("model", model.into()),
                        ("le", le.into()),
                    ]);
                }
                push(vec![
                    ("__name__", "dynamo_frontend_requests_total".into()),
                    ("job", "dynamo-frontend".into()),
                    ("instance", instance.clone()),
                    ("namespace", ns.into()),
                    ("pod", pod_name.clone()),
                    ("model", model.into()),
                    (
                        "status",
                        if pod % 2 == 0 { "success" } else { "error" }.into(),
                    ),
                ]);
            }
            push(vec![
                ("__name__", "up".into()),
                ("job", "dynamo-frontend".into()),
                ("instance", instance.clone()),
                ("namespace", ns.into()),
                ("pod", pod_name.clone()),
            ]);
            // Workers have no namespace label (scraped by a static config).
            push(vec![
                ("__name__", "dynamo_component_kv_cache_usage_percent".into()),
                ("job", "dynamo-worker".into()),
                ("instance", format!("worker-{ns}-{pod}:9090")),
                ("model", models[pod % models.len()].into()),
            ]);
        }
    }
    out
}

fn index_of(series: &[(u32, Labels)]) -> MemIndex {
    let mut ix = MemIndex::new();
    for (r, l) in series {
        ix.add(*r, l);
    }
    ix
}

fn selectors() -> Vec<Vec<Matcher>> {
    vec![
        vec![],
        vec![eq("__name__", "up")],
        vec![eq("__name__", "nope")],
        vec![eq("job", "dynamo-frontend"), eq("model", "llama-3-8b")],
        vec![eq("namespace", "")],
        vec![ne("namespace", "")],
        vec![eq("__name__", "up"), ne("pod", "frontend-dynamo-0")],
        vec![ne("pod", "frontend-dynamo-0")],
        vec![re("model", "llama-3-8b|Qwen2-7B|mistral-7b")],
        vec![re("model", "|llama-3-8b")],
        vec![nre("model", "|llama-3-8b")],
        vec![re("model", ".*")],
        vec![nre("model", ".*")],
        vec![re("model", ".+")],
        vec![nre("model", ".+")],
        vec![re("model", "llama.*")],
        vec![re("model", "(?i)qwen2-7b")],
        vec![re("model", ".*7.*")],
        vec![re("instance", r"10\.0\.[0-2]\.1:\d+")],
        vec![nre("le", r"0\..*"), re("__name__", ".*_bucket")],
        vec![re("__name__", "dynamo_.+"), nre("job", "dynamo-worker")],
        vec![eq("le", ""), eq("model", "")],
        vec![eq("missing", "")],
        vec![ne("missing", "")],
        vec![re("missing", "x|")],
        vec![nre("missing", "x")],
        vec![ne("job", "a"), nre("model", "llama.*")],
        vec![eq("status", "error"), re("namespace", "dynamo|")],
    ]
}

#[test]
fn select_equals_oracle_on_dynamo_shaped_series() {
    let series = dynamo();
    let ix = index_of(&series);
    for ms in selectors() {
        let desc: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
        assert_eq!(ix.select(&ms), oracle(&series, &ms), "{desc:?}");
    }
    assert_eq!(ix.select(&[]).len(), series.len());
    assert!(ix.select(&[eq("namespace", "")]).len() == 8);
}

#[test]
fn empty_matchers_select_series_lacking_the_label() {
    let ix = index_of(&[
        (0, Labels::from_pairs([("__name__", "a"), ("x", "1")])),
        (1, Labels::from_pairs([("__name__", "a")])),
        (2, Labels::from_pairs([("__name__", "a"), ("x", "2")])),
    ]);
    assert_eq!(ix.select(&[eq("x", "")]), [1]);
    assert_eq!(ix.select(&[ne("x", "")]), [0, 2]);
    assert_eq!(ix.select(&[re("x", "|1")]), [0, 1]);
    assert_eq!(ix.select(&[nre("x", "1")]), [1, 2]);
    assert_eq!(ix.select(&[ne("x", "1")]), [1, 2]);
    assert_eq!(ix.select(&[re("x", "")]), [1]);
}

#[test]
fn regexes_are_anchored_and_dot_matches_newline() {
    assert!(!re("a", "a").matches("ba"));
    assert!(!re("a", "a").matches("ab"));
    assert!(!re("a", "a|b").matches("ab"));
    assert!(!re("a", "a.*").matches("ba"));
    assert!(!re("a", "[ab]c").matches("xac"));
    assert!(!re("a", r"a\d").matches("a1x"));
    assert!(re("a", ".*").matches("x\ny"));
    assert!(re("a", ".+").matches("\n"));
    assert!(re("a", "a.b").matches("a\nb"));
    assert!(re("a", "foo.*bar").matches("foo\n\nbar"));
    assert!(nre("a", "a").matches("ba"));
    // The pattern must be valid on its own, not just once wrapped in the anchoring group.
    assert!(Matcher::new(MatchType::Regex, "a", "a)|(b").is_err());
    assert!(Matcher::new(MatchType::Regex, "a", "(").is_err());
}

#[test]
fn hostile_regexes_error_instead_of_growing() {
    // Within Go's repetition limits but past the compiled-size limit.
    let e = Matcher::new(MatchType::Regex, "a", &"(\\w{1000})".repeat(20));
    assert!(matches!(e, Err(MatcherError::Regex { .. })), "{e:?}");
    // Past Go's limits, refused in Go's words before compiling.
    for (pattern, op) in [
        ("(((a{100}){100}){100})", "{100}"),
        ("(a|b){10000}", "{10000}"),
        ("(a{10}){101}", "{101}"),
    ] {
        let e = Matcher::new(MatchType::Regex, "a", pattern).map_err(|e| e.to_string());
        assert_eq!(
            e.err(),
            Some(format!(
                "error parsing regexp: invalid repeat count: `{op}`"
            )),
            "{pattern}"
        );
    }
    assert!(Matcher::new(MatchType::NotRegex, "a", "(a{10}){100}").is_ok());
    assert!(Matcher::new(MatchType::Regex, "a", "(a|b){1000}").is_ok());
    let e = Matcher::new(MatchType::Regex, "a", &"(".repeat(1000));
    assert!(e.is_err());
}

#[test]
fn matcher_display_is_prometheus_style() {
    assert_eq!(eq("job", "a").to_string(), r#"job="a""#);
    assert_eq!(ne("job", "a").to_string(), r#"job!="a""#);
    assert_eq!(re("job", "a|b").to_string(), r#"job=~"a|b""#);
    assert_eq!(nre("job", r"a\.b").to_string(), r#"job!~"a\\.b""#);
    assert_eq!(eq("x", "q\"\n\t\u{1}").to_string(), r#"x="q\"\n\t\x01""#);
    assert_eq!(eq("a.b", "1").to_string(), r#""a.b"="1""#);
    assert_eq!(eq("a:b", "1").to_string(), r#""a:b"="1""#);
    assert_eq!(eq("_a1", "é").to_string(), r#"_a1="é""#);
    assert_eq!(eq("1a", "").to_string(), r#""1a"="""#);
    assert_eq!(m(MatchType::Equal, "", "").to_string(), r#"""="""#);
}

#[test]
fn matches_empty_and_accessors() {
    let x = re("job", "|a");
    assert!(x.matches_empty());
    assert_eq!(
        (x.name(), x.value(), x.kind()),
        ("job", "|a", MatchType::Regex)
    );
    assert!(!eq("job", "a").matches_empty());
    assert!(ne("job", "a").matches_empty());
    assert!(!ne("job", "").matches_empty());
    assert!(!re("job", ".+").matches_empty());
    assert!(nre("job", ".+").matches_empty());
}

#[test]
fn label_names_and_values_with_matchers() {
    let series = dynamo();
    let ix = index_of(&series);
    assert_eq!(
        ix.label_names(&[]),
        [
            "__name__",
            "instance",
            "job",
            "le",
            "model",
            "namespace",
            "pod",
            "status"
        ]
    );
    assert_eq!(
        ix.label_names(&[eq("__name__", "up")]),
        ["__name__", "instance", "job", "namespace", "pod"]
    );
    assert_eq!(
        ix.label_names(&[eq("job", "dynamo-worker")]),
        ["__name__", "instance", "job", "model"]
    );
    assert!(ix.label_names(&[eq("job", "nope")]).is_empty());
    assert_eq!(ix.label_values("namespace", &[]), ["dynamo", "dynamo-prod"]);
    assert_eq!(
        ix.label_values(
            "model",
            &[
                eq("job", "dynamo-worker"),
                re("instance", "worker-dynamo-[01].*")
            ]
        ),
        ["llama-3-70b", "llama-3-8b"]
    );
    assert_eq!(
        ix.label_values("le", &[eq("model", "Qwen2-7B")]),
        ["+Inf", "0.005", "0.05", "0.5", "1", "5"]
    );
    assert_eq!(
        ix.label_values("status", &[eq("pod", "frontend-dynamo-1")]),
        ["error"]
    );
    assert!(ix.label_values("nope", &[]).is_empty());
    assert!(ix.label_values("le", &[eq("__name__", "up")]).is_empty());
    // Both strategies (probe each value's list, walk selected series) agree with the oracle.
    for ms in selectors() {
        for name in ["le", "model", "instance", "namespace", "__name__"] {
            let mut want: Vec<String> = oracle(&series, &ms)
                .iter()
                .filter_map(|&r| series[r as usize].1.get(name).map(str::to_string))
                .collect();
            want.sort();
            want.dedup();
            if !ms.is_empty() {
                assert_eq!(ix.label_values(name, &ms), want, "{name} {ms:?}");
            }
        }
    }
}

#[test]
fn labels_and_exact_lookup_round_trip() {
    let series = dynamo();
    let ix = index_of(&series);
    for (r, l) in &series {
        assert_eq!(ix.labels(*r).as_ref(), Some(l));
        assert_eq!(ix.get_ref(l), Some(*r));
        let sl = ix.symbol_labels(*r).expect("live");
        assert_eq!(sl.get(ix.symbols(), "job"), l.get("job"));
        assert_eq!(sl.get(ix.symbols(), "zzz"), None);
    }
    assert_eq!(ix.get_ref(&Labels::from_pairs([("__name__", "up")])), None);
    assert_eq!(
        ix.get_ref(&Labels::from_pairs([("__name__", "never-seen")])),
        None
    );
    assert_eq!(ix.labels(100_000), None);
}

#[test]
fn remove_then_select() {
    let series = dynamo();
    let mut ix = index_of(&series);
    let keep: Vec<(u32, Labels)> = series.iter().filter(|(r, _)| r % 3 != 0).cloned().collect();
    for (r, _) in series.iter().filter(|(r, _)| r % 3 == 0) {
        ix.remove(*r);
        ix.remove(*r);
    }
    assert_eq!(ix.len(), keep.len());
    for ms in selectors() {
        assert_eq!(ix.select(&ms), oracle(&keep, &ms), "{ms:?}");
    }
    assert_eq!(ix.get_ref(&series[0].1), None);
    assert_eq!(ix.labels(0), None);
    // Re-adding an old ref with other labels must not revive its former postings.
    ix.add(0, &Labels::from_pairs([("__name__", "fresh")]));
    assert_eq!(ix.select(&[eq("__name__", "fresh")]), [0]);
    assert!(!ix.select(&[eq("__name__", "up")]).contains(&0));
}

#[test]
fn removal_sweeps_postings_and_symbols() {
    let mut ix = MemIndex::new();
    let mk =
        |i: u32| Labels::from_pairs([("__name__", "m".to_string()), ("pod", format!("pod-{i}"))]);
    for i in 0..5000 {
        ix.add(i, &mk(i));
    }
    let before = ix.symbols().len();
    for i in 0..4900 {
        ix.remove(i);
    }
    assert!(
        ix.symbols().len() < before / 2,
        "{} symbols",
        ix.symbols().len()
    );
    let live: Vec<(u32, Labels)> = (4900..5000).map(|i| (i, mk(i))).collect();
    for ms in [
        vec![],
        vec![re("pod", "pod-49.*")],
        vec![ne("pod", "pod-4950")],
    ] {
        assert_eq!(ix.select(&ms), oracle(&live, &ms));
    }
    for (r, l) in &live {
        assert_eq!(ix.get_ref(l), Some(*r));
        assert_eq!(ix.labels(*r).as_ref(), Some(l));
    }
    assert_eq!(ix.label_values("pod", &[]).len(), 100);
    assert_eq!(ix.stats(1).num_label_pairs, 101);
    for i in 5000..5010 {
        ix.add(i, &mk(i));
        assert_eq!(ix.get_ref(&mk(i)), Some(i));
    }
}

#[test]
fn stats_count_series_and_values() {
    let series = dynamo();
    let ix = index_of(&series);
    let s = ix.stats(3);
    assert_eq!(s.num_series, series.len());
    assert_eq!(
        s.series_count_by_metric_name[0],
        (
            "dynamo_frontend_time_to_first_token_seconds_bucket".to_string(),
            2 * 4 * 4 * 6
        )
    );
    assert_eq!(s.series_count_by_metric_name.len(), 3);
    assert_eq!(
        s.label_value_count_by_label_name[0],
        ("instance".to_string(), 4 + 8)
    );
    assert_eq!(
        s.series_count_by_label_value_pair[0].1,
        2 * 4 * (4 * 6 + 4 + 1)
    );
    let pairs: usize = [
        "__name__",
        "instance",
        "job",
        "le",
        "model",
        "namespace",
        "pod",
        "status",
    ]
    .iter()
    .map(|n| ix.label_values(n, &[]).len())
    .sum();
    assert_eq!(s.num_label_pairs, pairs);
}

#[test]
fn memory_estimate_is_sane() {
    let mut ix = MemIndex::new();
    assert!(ix.memory_bytes() < 1024);
    let n = 20_000u32;
    for i in 0..n {
        ix.add(
            i,
            &Labels::from_pairs([
                ("__name__", format!("metric_{}", i % 50)),
                ("job", "dynamo".to_string()),
                ("instance", format!("10.0.0.{}:9090", i % 200)),
                ("model", format!("model-{}", i % 4)),
                ("le", format!("{}", i % 12)),
                ("pod", format!("pod-{}", i % 200)),
            ]),
        );
    }
    let per = ix.memory_bytes() / n as usize;
    // Six labels at 8 bytes, seven postings entries at 4, plus slots and hash table: well under
    // the 512 bytes per series the whole head may spend, and more than the bare arrays.
    assert!((48 + 28..=300).contains(&per), "{per} bytes/series");
}

#[test]
fn regex_fast_paths_are_chosen() {
    use fastregex::FastRegex as F;
    let kind = |p: &str| match F::new(p).expect("valid") {
        F::Any => "any",
        F::NonEmpty => "nonempty",
        F::Set(_) => "set",
        F::FoldAscii(_) => "fold",
        F::Affix { .. } => "affix",
        F::Contains(_) => "contains",
        F::Regex { .. } => "regex",
    };
    assert_eq!(kind(".*"), "any");
    assert_eq!(kind("(.*)"), "any");
    assert_eq!(kind(".+"), "nonempty");
    assert_eq!(kind("a|b|c"), "set");
    assert_eq!(kind("foo|foobar|baz"), "set");
    assert_eq!(kind("(?i)llama-3-8b"), "set");
    assert_eq!(kind("(?i)dynamo-frontend"), "fold");
    assert_eq!(kind("(?i)ab"), "set");
    assert_eq!(kind("foo.*"), "affix");
    assert_eq!(kind(".*foo"), "affix");
    assert_eq!(kind("foo.+bar"), "affix");
    assert_eq!(kind(".*foo.*"), "contains");
    assert_eq!(kind("fo+"), "regex");
}

const PATTERNS: &[&str] = &[
    "",
    ".*",
    ".+",
    "a",
    "a|b|c",
    "|a",
    "a|",
    "foo|foobar",
    "(?i)foo",
    "(?i)FOO",
    "(?i)sk",
    "(?i)ab",
    "(?i:k)",
    "fo.*",
    ".*oo",
    ".*o.*",
    "f.+o",
    "f.*o",
    "a.*a",
    "(a|b)c?",
    "[a-c]+",
    r"\d",
    r"\w+",
    "x*",
    "(?s:.)",
    "^a",
    "a$",
    r"\n",
    ".",
    "..",
    "(foo)",
    "((foo|bar))",
    "foo.*bar.*",
    "[^a]*",
    "(?i)ſ",
    "ab?c",
    "(?-s:.*)",
    "(?i)foo-bar",
    "\u{17f}|K",
];

fn value_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('a'),
            Just('b'),
            Just('c'),
            Just('f'),
            Just('o'),
            Just('O'),
            Just('F'),
            Just('k'),
            Just('K'),
            Just('s'),
            Just('S'),
            Just('\u{17f}'),
            Just('\u{212a}'),
            Just('\n'),
            Just('1'),
            Just('-'),
            Just('r'),
            Just('é'),
        ],
        0..7,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        proptest::sample::select(PATTERNS).prop_map(str::to_string),
        value_strategy().prop_map(|v| regex_syntax::escape(&v)),
    ];
    proptest::collection::vec(piece, 1..4).prop_flat_map(|ps| {
        prop_oneof![
            Just(ps.concat()),
            Just(ps.join("|")),
            Just(format!("(?i){}", ps.concat()))
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fast_paths_equal_the_plain_regex(p in pattern_strategy(), vs in proptest::collection::vec(value_strategy(), 1..12)) {
        let Ok(fast) = Matcher::new(MatchType::Regex, "x", &p) else {
            // Invalid on its own (e.g. a dangling `|`-free alternation is fine; `(?i)` + `*` is not).
            prop_assert!(regex::Regex::new(&p).is_err());
            return Ok(());
        };
        let plain = regex::Regex::new(&format!("^(?s:{p})$")).expect("valid when fast is");
        for v in vs.iter().chain(PATTERNS.iter().map(|s| s.to_string()).collect::<Vec<_>>().iter()) {
            prop_assert_eq!(fast.matches(v), plain.is_match(v), "pattern {:?} value {:?}", p, v);
        }
    }
}

fn labels_strategy() -> impl Strategy<Value = Labels> {
    proptest::collection::vec(
        (
            proptest::sample::select(&["__name__", "a", "b", "c"][..]),
            proptest::sample::select(&["", "x", "y", "xy", "z"][..]),
        ),
        0..4,
    )
    .prop_map(Labels::from_pairs)
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    (
        proptest::sample::select(
            &[
                MatchType::Equal,
                MatchType::NotEqual,
                MatchType::Regex,
                MatchType::NotRegex,
            ][..],
        ),
        proptest::sample::select(&["__name__", "a", "b", "c", "d"][..]),
        proptest::sample::select(
            &[
                "", "x", "y", "xy", "x|y", "|x", ".*", ".+", "x.*", ".*y", "(?i)X", "[xz]",
            ][..],
        ),
    )
        .prop_map(|(k, n, v)| Matcher::new(k, n, v).expect("valid"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn select_equals_oracle_on_random_series(
        ls in proptest::collection::vec(labels_strategy(), 0..40),
        remove in proptest::collection::vec(any::<bool>(), 40),
        mss in proptest::collection::vec(proptest::collection::vec(matcher_strategy(), 0..4), 1..8),
    ) {
        let mut ix = MemIndex::new();
        let mut series: Vec<(u32, Labels)> = Vec::new();
        for l in ls {
            // Exact duplicates would be one series in the head.
            if series.iter().any(|(_, x)| *x == l) {
                continue;
            }
            let r = series.len() as u32 * 2;
            ix.add(r, &l);
            series.push((r, l));
        }
        let mut live = Vec::new();
        for (i, (r, l)) in series.into_iter().enumerate() {
            if remove[i] {
                ix.remove(r);
            } else {
                live.push((r, l));
            }
        }
        for ms in &mss {
            prop_assert_eq!(ix.select(ms), oracle(&live, ms), "{:?}", ms);
            let mut names: Vec<String> = oracle(&live, ms).iter()
                .flat_map(|r| live.iter().find(|(x, _)| x == r).map(|(_, l)| l.iter().map(|l| l.name.clone()).collect::<Vec<_>>()).unwrap_or_default())
                .collect();
            names.sort();
            names.dedup();
            prop_assert_eq!(ix.label_names(ms), names);
        }
        for (r, l) in &live {
            prop_assert_eq!(ix.get_ref(l), Some(*r));
        }
    }
}
