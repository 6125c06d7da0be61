//! Relabel table tests. Expected values follow the cases of Prometheus's `relabel_test.go`
//! (re-expressed as data here), plus edge cases of Go's `Regexp.Expand`.

use edgeprom_config::relabel::{self, Action, Regex, RelabelConfig};
use edgeprom_model::Labels;

/// A rule with Prometheus's defaults, then the given overrides.
#[derive(Default)]
struct R {
    action: Option<Action>,
    src: &'static [&'static str],
    sep: Option<&'static str>,
    regex: Option<&'static str>,
    target: &'static str,
    repl: Option<&'static str>,
    modulus: u64,
}

impl R {
    fn build(self) -> RelabelConfig {
        let d = RelabelConfig::default();
        let cfg = RelabelConfig {
            source_labels: self.src.iter().map(|s| s.to_string()).collect(),
            separator: self.sep.map_or(d.separator, str::to_string),
            regex: self
                .regex
                .map_or(d.regex, |r| Regex::new(r).expect("test regex compiles")),
            modulus: self.modulus,
            target_label: self.target.to_string(),
            replacement: self.repl.map_or(d.replacement, str::to_string),
            action: self.action.unwrap_or(Action::Replace),
        };
        cfg.validate(self.regex.is_some())
            .expect("test rule is valid");
        cfg
    }
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

struct Case {
    name: &'static str,
    input: &'static [(&'static str, &'static str)],
    rules: Vec<R>,
    /// `None` = dropped.
    output: Option<&'static [(&'static str, &'static str)]>,
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let rules: Vec<RelabelConfig> = c.rules.into_iter().map(R::build).collect();
        let got = relabel::process(&l(c.input), &rules);
        let want = c.output.map(l);
        assert_eq!(got, want, "case {}", c.name);
        // The builder path must agree with the Labels path.
        let mut b = l(c.input).to_builder();
        let kept = relabel::process_builder(&mut b, &rules);
        assert_eq!(kept, want.is_some(), "case {} (builder)", c.name);
        if let Some(w) = &want {
            assert_eq!(&b.build(), w, "case {} (builder)", c.name);
        }
    }
}

const ABC: &[(&str, &str)] = &[("a", "foo"), ("b", "bar"), ("c", "baz")];
const PORTS: &[(&str, &str)] = &[
    ("__tmp_port", "1234"),
    ("__port1", "1234"),
    ("__port2", "5678"),
];

#[test]
fn replace() {
    run(vec![
        Case {
            name: "braced group twice",
            input: ABC,
            rules: vec![R {
                src: &["a"],
                regex: Some("f(.*)"),
                target: "d",
                repl: Some("ch${1}-ch${1}"),
                ..R::default()
            }],
            output: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
        },
        Case {
            name: "chained rules see earlier results",
            input: ABC,
            rules: vec![
                R {
                    src: &["a", "b"],
                    regex: Some("f(.*);(.*)r"),
                    target: "a",
                    repl: Some("b${1}${2}m"),
                    ..R::default()
                },
                R {
                    src: &["c", "a"],
                    regex: Some("(b).*b(.*)ba(.*)"),
                    target: "d",
                    repl: Some("$1$2$2$3"),
                    ..R::default()
                },
            ],
            output: Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]),
        },
        Case {
            name: "inner group",
            input: &[("a", "abc")],
            rules: vec![R {
                src: &["a"],
                regex: Some(".*(b).*"),
                target: "d",
                repl: Some("$1"),
                ..R::default()
            }],
            output: Some(&[("a", "abc"), ("d", "b")]),
        },
        Case {
            name: "no match, no change",
            input: &[("a", "boo")],
            rules: vec![R {
                src: &["a"],
                regex: Some("f"),
                target: "b",
                repl: Some("bar"),
                ..R::default()
            }],
            output: Some(&[("a", "boo")]),
        },
        Case {
            name: "blank replacement deletes the target",
            input: &[("a", "foo"), ("f", "baz")],
            rules: vec![R {
                src: &["a"],
                regex: Some("(f).*"),
                target: "$1",
                repl: Some("$2"),
                ..R::default()
            }],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "target from a group",
            input: &[("a", "some-name-value")],
            rules: vec![R {
                src: &["a"],
                regex: Some("some-([^-]+)-([^,]+)"),
                target: "${1}",
                repl: Some("${2}"),
                ..R::default()
            }],
            output: Some(&[("a", "some-name-value"), ("name", "value")]),
        },
        Case {
            name: "missing group in replacement sets nothing",
            input: &[("a", "some-name-value")],
            rules: vec![R {
                src: &["a"],
                regex: Some("some-([^-]+)-([^,]+)"),
                target: "${1}",
                repl: Some("${3}"),
                ..R::default()
            }],
            output: Some(&[("a", "some-name-value")]),
        },
        Case {
            name: "target expanding to empty is skipped",
            input: &[("a", "some-name-0")],
            rules: vec![
                R {
                    src: &["a"],
                    regex: Some("some-([^-]+)-([^,]+)"),
                    target: "${3}",
                    repl: Some("${1}"),
                    ..R::default()
                },
                R {
                    src: &["a"],
                    regex: Some("some-([^-]+)(-[^,]+)"),
                    target: "${3}",
                    repl: Some("${1}"),
                    ..R::default()
                },
            ],
            output: Some(&[("a", "some-name-0")]),
        },
        Case {
            name: "service discovery tags",
            input: &[("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar")],
            rules: vec![
                R {
                    src: &["__meta_sd_tags"],
                    regex: Some("(?:.+,|^)path:(/[^,]+).*"),
                    target: "__metrics_path__",
                    repl: Some("${1}"),
                    ..R::default()
                },
                R {
                    src: &["__meta_sd_tags"],
                    regex: Some("(?:.+,|^)job:([^,]+).*"),
                    target: "job",
                    repl: Some("${1}"),
                    ..R::default()
                },
                R {
                    src: &["__meta_sd_tags"],
                    regex: Some("(?:.+,|^)label:([^=]+)=([^,]+).*"),
                    target: "${1}",
                    repl: Some("${2}"),
                    ..R::default()
                },
            ],
            output: Some(&[
                ("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"),
                ("__metrics_path__", "/secret"),
                ("job", "some-job"),
                ("foo", "bar"),
            ]),
        },
        Case {
            name: "dot matches newline",
            input: &[("a", "line1\nline2"), ("b", "bar")],
            rules: vec![R {
                src: &["a"],
                regex: Some("line1.*line2"),
                target: "d",
                repl: Some("match${1}"),
                ..R::default()
            }],
            output: Some(&[("a", "line1\nline2"), ("b", "bar"), ("d", "match")]),
        },
        Case {
            name: "UTF-8 target with variable",
            input: &[("a", "line1\nline2")],
            rules: vec![R {
                src: &["a"],
                regex: Some("line1.*line2"),
                target: "utf-8.label${1}",
                repl: Some("match${1}"),
                ..R::default()
            }],
            output: Some(&[("a", "line1\nline2"), ("utf-8.label", "match")]),
        },
        Case {
            name: "named groups, braced and bare",
            input: &[("a", "line1\nline2")],
            rules: vec![
                R {
                    src: &["a"],
                    regex: Some("(line1).*(?P<second>line2)"),
                    target: "label1_${1}",
                    repl: Some("val_${second}"),
                    ..R::default()
                },
                R {
                    src: &["a"],
                    regex: Some("(line1).*(?P<second>line2)"),
                    target: "label2_$1",
                    repl: Some("val_$second"),
                    ..R::default()
                },
            ],
            output: Some(&[
                ("a", "line1\nline2"),
                ("label1_line1", "val_line2"),
                ("label2_line1", "val_line2"),
            ]),
        },
        Case {
            name: "xpu-smi-exporter: constant replacement into instance",
            input: &[
                ("__address__", "host.docker.internal:9966"),
                ("instance", "host.docker.internal:9966"),
            ],
            rules: vec![R {
                src: &["__address__"],
                target: "instance",
                repl: Some("xpu-host"),
                ..R::default()
            }],
            output: Some(&[
                ("__address__", "host.docker.internal:9966"),
                ("instance", "xpu-host"),
            ]),
        },
        Case {
            name: "default rule on absent source sets the constant",
            input: &[("a", "1")],
            rules: vec![R {
                target: "env",
                repl: Some("prod"),
                ..R::default()
            }],
            output: Some(&[("a", "1"), ("env", "prod")]),
        },
        Case {
            name: "router address rewrite forces a port",
            input: &[("__address__", "10.0.0.7:8000")],
            rules: vec![R {
                src: &["__address__"],
                regex: Some(r"([^:]+)(?::\d+)?"),
                target: "__address__",
                repl: Some("${1}:9090"),
                ..R::default()
            }],
            output: Some(&[("__address__", "10.0.0.7:9090")]),
        },
        Case {
            name: "Go Expand: $1x is group `1x`, $$ is a dollar, bad $ stays",
            input: &[("a", "foo")],
            rules: vec![R {
                src: &["a"],
                regex: Some("(f)(o+)"),
                target: "b",
                repl: Some("$1x|${1}x|$$1|$-|${2"),
                ..R::default()
            }],
            output: Some(&[("a", "foo"), ("b", "|fx|$1|$-|${2")]),
        },
        Case {
            name: "Go Expand: leading zero is a (missing) name, not group 1",
            input: &[("a", "foo")],
            rules: vec![R {
                src: &["a"],
                regex: Some("(foo)"),
                target: "b",
                repl: Some("[$01][${1}]"),
                ..R::default()
            }],
            output: Some(&[("a", "foo"), ("b", "[][foo]")]),
        },
        Case {
            name: "regex is anchored at both ends",
            input: &[("a", "xfoox")],
            rules: vec![R {
                src: &["a"],
                regex: Some("foo"),
                target: "b",
                repl: Some("hit"),
                ..R::default()
            }],
            output: Some(&[("a", "xfoox")]),
        },
        Case {
            name: "custom separator joins missing sources as empty",
            input: &[("a", "1"), ("c", "3")],
            rules: vec![R {
                src: &["a", "b", "c"],
                sep: Some("-"),
                target: "joined",
                ..R::default()
            }],
            output: Some(&[("a", "1"), ("c", "3"), ("joined", "1--3")]),
        },
    ]);
}

#[test]
fn keep_and_drop() {
    run(vec![
        Case {
            name: "drop stops the chain",
            input: &[("a", "foo")],
            rules: vec![
                R {
                    action: Some(Action::Drop),
                    src: &["a"],
                    regex: Some(".*o.*"),
                    ..R::default()
                },
                R {
                    src: &["a"],
                    regex: Some("f(.*)"),
                    target: "d",
                    repl: Some("ch$1-ch$1"),
                    ..R::default()
                },
            ],
            output: None,
        },
        Case {
            name: "drop on match",
            input: &[("a", "foo"), ("b", "bar")],
            rules: vec![R {
                action: Some(Action::Drop),
                src: &["a"],
                regex: Some(".*o.*"),
                ..R::default()
            }],
            output: None,
        },
        Case {
            name: "drop without match keeps",
            input: &[("a", "foo")],
            rules: vec![R {
                action: Some(Action::Drop),
                src: &["a"],
                regex: Some("no-match"),
                ..R::default()
            }],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "drop alternation must match the whole value",
            input: &[("a", "foo")],
            rules: vec![R {
                action: Some(Action::Drop),
                src: &["a"],
                regex: Some("f|o"),
                ..R::default()
            }],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "keep without match drops",
            input: &[("a", "foo")],
            rules: vec![R {
                action: Some(Action::Keep),
                src: &["a"],
                regex: Some("no-match"),
                ..R::default()
            }],
            output: None,
        },
        Case {
            name: "keep on match",
            input: &[("a", "foo")],
            rules: vec![R {
                action: Some(Action::Keep),
                src: &["a"],
                regex: Some("f.*"),
                ..R::default()
            }],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "keep on absent label matches empty string",
            input: &[("a", "foo")],
            rules: vec![R {
                action: Some(Action::Keep),
                src: &["zzz"],
                regex: Some(""),
                ..R::default()
            }],
            output: Some(&[("a", "foo")]),
        },
    ]);
}

#[test]
fn keepequal_and_dropequal() {
    run(vec![
        Case {
            name: "keepequal equal",
            input: PORTS,
            rules: vec![R {
                action: Some(Action::KeepEqual),
                src: &["__tmp_port"],
                target: "__port1",
                ..R::default()
            }],
            output: Some(PORTS),
        },
        Case {
            name: "keepequal different",
            input: PORTS,
            rules: vec![R {
                action: Some(Action::KeepEqual),
                src: &["__tmp_port"],
                target: "__port2",
                ..R::default()
            }],
            output: None,
        },
        Case {
            name: "dropequal equal",
            input: PORTS,
            rules: vec![R {
                action: Some(Action::DropEqual),
                src: &["__tmp_port"],
                target: "__port1",
                ..R::default()
            }],
            output: None,
        },
        Case {
            name: "dropequal different",
            input: PORTS,
            rules: vec![R {
                action: Some(Action::DropEqual),
                src: &["__tmp_port"],
                target: "__port2",
                ..R::default()
            }],
            output: Some(PORTS),
        },
    ]);
}

#[test]
fn hashmod() {
    run(vec![
        Case {
            name: "md5 tail mod 1000",
            input: ABC,
            rules: vec![R {
                action: Some(Action::HashMod),
                src: &["c"],
                target: "d",
                modulus: 1000,
                ..R::default()
            }],
            output: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
        },
        Case {
            name: "newline in value",
            input: &[("a", "foo\nbar")],
            rules: vec![R {
                action: Some(Action::HashMod),
                src: &["a"],
                target: "b",
                modulus: 1000,
                ..R::default()
            }],
            output: Some(&[("a", "foo\nbar"), ("b", "734")]),
        },
    ]);
}

#[test]
fn labelmap() {
    run(vec![
        Case {
            name: "prefix added",
            input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            rules: vec![R {
                action: Some(Action::LabelMap),
                regex: Some("(b.*)"),
                repl: Some("bar_${1}"),
                ..R::default()
            }],
            output: Some(&[
                ("a", "foo"),
                ("b1", "bar"),
                ("b2", "baz"),
                ("bar_b1", "bar"),
                ("bar_b2", "baz"),
            ]),
        },
        Case {
            name: "meta prefix stripped",
            input: &[
                ("a", "foo"),
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
                ("__meta_other", "ccc"),
            ],
            rules: vec![R {
                action: Some(Action::LabelMap),
                regex: Some("__meta_(my.*)"),
                repl: Some("${1}"),
                ..R::default()
            }],
            output: Some(&[
                ("a", "foo"),
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
                ("__meta_other", "ccc"),
                ("my_bar", "aaa"),
                ("my_baz", "bbb"),
            ]),
        },
        Case {
            name: "default replacement is $1",
            input: &[("__meta_kubernetes_pod_label_app", "web")],
            rules: vec![R {
                action: Some(Action::LabelMap),
                regex: Some("__meta_kubernetes_pod_label_(.+)"),
                ..R::default()
            }],
            output: Some(&[("__meta_kubernetes_pod_label_app", "web"), ("app", "web")]),
        },
    ]);
}

#[test]
fn labeldrop_and_labelkeep() {
    run(vec![
        Case {
            name: "labelkeep",
            input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            rules: vec![R {
                action: Some(Action::LabelKeep),
                regex: Some("(b.*)"),
                ..R::default()
            }],
            output: Some(&[("b1", "bar"), ("b2", "baz")]),
        },
        Case {
            name: "labeldrop",
            input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
            rules: vec![R {
                action: Some(Action::LabelDrop),
                regex: Some("(b.*)"),
                ..R::default()
            }],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "labeldrop then replace then keep (prometheus#12283)",
            input: &[
                ("__meta_kubernetes_pod_container_port_name", "foo"),
                ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
            ],
            rules: vec![
                R {
                    action: Some(Action::LabelDrop),
                    regex: Some("^__meta_kubernetes_pod_container_port_name$"),
                    ..R::default()
                },
                R {
                    src: &["__meta_kubernetes_pod_annotation_XXX_metrics_port"],
                    regex: Some("(.+)"),
                    target: "__meta_kubernetes_pod_container_port_name",
                    repl: Some("metrics"),
                    ..R::default()
                },
                R {
                    action: Some(Action::Keep),
                    src: &["__meta_kubernetes_pod_container_port_name"],
                    regex: Some("^metrics$"),
                    ..R::default()
                },
            ],
            output: Some(&[
                ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
                ("__meta_kubernetes_pod_container_port_name", "metrics"),
            ]),
        },
    ]);
}

#[test]
fn lowercase_and_uppercase() {
    run(vec![Case {
        name: "both",
        input: &[("foo", "bAr123Foo")],
        rules: vec![
            R {
                action: Some(Action::Uppercase),
                src: &["foo"],
                target: "foo_uppercase",
                ..R::default()
            },
            R {
                action: Some(Action::Lowercase),
                src: &["foo"],
                target: "foo_lowercase",
                ..R::default()
            },
        ],
        output: Some(&[
            ("foo", "bAr123Foo"),
            ("foo_lowercase", "bar123foo"),
            ("foo_uppercase", "BAR123FOO"),
        ]),
    }]);
}

#[test]
fn validation_messages_match_prometheus() {
    let check = |r: RelabelConfig, regex_given: bool| r.validate(regex_given).err();
    let base = RelabelConfig::default;
    assert_eq!(
        check(
            RelabelConfig {
                action: Action::HashMod,
                target_label: "x".into(),
                ..base()
            },
            false
        )
        .as_deref(),
        Some("relabel configuration for hashmod requires non-zero modulus")
    );
    assert_eq!(
        check(base(), false).as_deref(),
        Some("relabel configuration for replace action requires 'target_label' value")
    );
    assert_eq!(
        check(
            RelabelConfig {
                action: Action::Lowercase,
                ..base()
            },
            false
        )
        .as_deref(),
        Some("relabel configuration for lowercase action requires 'target_label' value")
    );
    // UTF-8 names: these are legal in Prometheus 3.
    assert_eq!(
        check(
            RelabelConfig {
                action: Action::Lowercase,
                target_label: "${3}".into(),
                ..base()
            },
            false
        ),
        None
    );
    assert_eq!(
        check(
            RelabelConfig {
                target_label: "0${3}".into(),
                ..base()
            },
            false
        ),
        None
    );
    assert_eq!(
        check(
            RelabelConfig {
                target_label: "-${3}".into(),
                ..base()
            },
            false
        ),
        None
    );
    assert_eq!(
        check(
            RelabelConfig {
                action: Action::Uppercase,
                target_label: "x".into(),
                replacement: "y".into(),
                ..base()
            },
            false
        )
        .as_deref(),
        Some("'replacement' can not be set for uppercase action")
    );
    assert_eq!(
        check(
            RelabelConfig {
                action: Action::KeepEqual,
                target_label: "x".into(),
                ..base()
            },
            true
        )
        .as_deref(),
        Some(
            "keepequal action requires only 'source_labels' and `target_label`, and no other fields"
        )
    );
    assert_eq!(
        check(
            RelabelConfig {
                action: Action::LabelDrop,
                source_labels: vec!["a".into()],
                ..base()
            },
            true
        )
        .as_deref(),
        Some("labeldrop action requires only 'regex', and no other fields")
    );
    assert_eq!(
        check(
            RelabelConfig {
                action: Action::LabelMap,
                replacement: "".into(),
                ..base()
            },
            true
        )
        .as_deref(),
        Some("\"\" is invalid 'replacement' for labelmap action")
    );
    assert_eq!(Action::parse("LabelMap"), Ok(Action::LabelMap));
    assert_eq!(
        Action::parse("nope"),
        Err("unknown relabel action \"nope\"".to_string())
    );
}
