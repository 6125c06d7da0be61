//! Rule files in Prometheus's format (`rulefmt`): parsing with positions, and the checks
//! Prometheus and `promtool check rules` make.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use edgeprom_config::{ConfigError, Duration, ErrorKind, position_of};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::template::Template;

type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    groups: Option<Vec<S<RawGroup>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Option<S<String>>,
    interval: Option<S<Duration>>,
    query_offset: Option<S<Duration>>,
    limit: Option<u64>,
    labels: Option<S<BTreeMap<String, String>>>,
    rules: Option<Vec<S<RawRule>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    record: Option<S<String>>,
    alert: Option<S<String>>,
    expr: Option<S<String>>,
    #[serde(rename = "for")]
    for_: Option<S<Duration>>,
    keep_firing_for: Option<S<Duration>>,
    labels: Option<S<BTreeMap<String, S<String>>>>,
    annotations: Option<S<BTreeMap<String, S<String>>>>,
}

/// A loaded rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    /// The file's path as given.
    pub path: PathBuf,
    /// Its groups, in file order.
    pub groups: Vec<GroupSpec>,
}

/// One `groups` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// The group name, unique within its file.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// `interval`; the global `evaluation_interval` when absent.
    pub interval: Option<Duration>,
    /// `query_offset`; the global `rule_query_offset` when absent.
    pub query_offset: Option<Duration>,
    /// `limit`: at most this many series (recording) or alerts (alerting) per rule; 0 = none.
    pub limit: u64,
    /// `labels` added to every rule of the group (rule labels win).
    pub labels: BTreeMap<String, String>,
    /// The rules, in file order.
    pub rules: Vec<RuleSpec>,
}

/// What kind of rule, with the fields only that kind has.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// `record: NAME`.
    Recording,
    /// `alert: NAME`.
    Alerting {
        /// `for`.
        hold: Duration,
        /// `keep_firing_for`.
        keep_firing_for: Duration,
        /// `annotations`, templates unexpanded.
        annotations: BTreeMap<String, String>,
    },
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// The recorded metric name or the alert name.
    pub name: String,
    /// The PromQL expression as written.
    pub expr: String,
    /// `labels` (group labels merged in); templates for alerting rules.
    pub labels: BTreeMap<String, String>,
    /// Recording or alerting.
    pub kind: RuleKind,
}

impl RuleFile {
    /// Number of rules over all groups.
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(|g| g.rules.len()).sum()
    }

    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<RuleFile, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, None, "", ErrorKind::Io, e.to_string()))?;
        RuleFile::parse(&text, path)
    }

    /// Parses and checks `text` as the rule file `path`.
    pub fn parse(text: &str, path: &Path) -> Result<RuleFile, ConfigError> {
        let raw: RawFile = edgeprom_config::parse_yaml(text, path)?.unwrap_or_default();
        let at = |pos, field: String, msg: String| {
            ConfigError::new(path, pos, field, ErrorKind::Invalid, msg)
        };
        let mut groups = Vec::new();
        let mut names = HashSet::new();
        for (gi, g) in raw.groups.unwrap_or_default().into_iter().enumerate() {
            let gpos = position_of(&g.referenced);
            let g = g.value;
            let gf = format!("groups[{gi}]");
            let name = match &g.name {
                Some(n) if !n.value.is_empty() => n.value.clone(),
                other => {
                    let pos = other
                        .as_ref()
                        .and_then(|n| position_of(&n.referenced))
                        .or(gpos);
                    return Err(at(
                        pos,
                        format!("{gf}.name"),
                        "Groupname must not be empty".into(),
                    ));
                }
            };
            if !names.insert(name.clone()) {
                let pos = g.name.as_ref().and_then(|n| position_of(&n.referenced));
                return Err(at(
                    pos,
                    format!("{gf}.name"),
                    format!("{name:?} is repeated in the same file"),
                ));
            }
            let mut group_labels = BTreeMap::new();
            if let Some(l) = &g.labels {
                for (k, v) in &l.value {
                    if !valid_label_name(k) || k == "__name__" {
                        return Err(at(
                            position_of(&l.referenced),
                            format!("{gf}.labels"),
                            format!("invalid label name: {k}"),
                        ));
                    }
                    group_labels.insert(k.clone(), v.clone());
                }
            }
            let mut rules = Vec::new();
            for (ri, r) in g.rules.unwrap_or_default().into_iter().enumerate() {
                let rpos = position_of(&r.referenced);
                let rf = format!("{gf}.rules[{ri}]");
                let rule = check_rule(r.value, rpos, &name, ri, &group_labels).map_err(
                    |(pos, field, msg)| {
                        let field = if field.is_empty() {
                            rf.clone()
                        } else {
                            format!("{rf}.{field}")
                        };
                        at(pos.or(rpos), field, msg)
                    },
                )?;
                rules.push(rule);
            }
            groups.push(GroupSpec {
                name,
                file: path.to_path_buf(),
                interval: g.interval.map(|i| i.value).filter(|d| !d.is_zero()),
                query_offset: g.query_offset.map(|i| i.value),
                limit: g.limit.unwrap_or(0),
                labels: group_labels,
                rules,
            });
        }
        Ok(RuleFile {
            path: path.to_path_buf(),
            groups,
        })
    }
}

type RuleErr = (Option<edgeprom_config::Position>, String, String);

fn pos<T>(s: &S<T>) -> Option<edgeprom_config::Position> {
    position_of(&s.referenced)
}

/// Prometheus's `RuleNode.Validate` plus template parsing, as promtool does.
fn check_rule(
    r: RawRule,
    rpos: Option<edgeprom_config::Position>,
    group: &str,
    index: usize,
    group_labels: &BTreeMap<String, String>,
) -> Result<RuleSpec, RuleErr> {
    let name_for_msg = r
        .record
        .as_ref()
        .or(r.alert.as_ref())
        .map(|n| n.value.clone())
        .unwrap_or_default();
    let ctx = |msg: String| {
        format!(
            "group {group:?}, rule {}, {name_for_msg:?}: {msg}",
            index + 1
        )
    };
    let fail = |p, field: &str, msg: String| Err((p, field.to_string(), ctx(msg)));
    let (name, recording) = match (&r.record, &r.alert) {
        (Some(rec), Some(al)) if !rec.value.is_empty() && !al.value.is_empty() => {
            return fail(
                pos(rec),
                "record",
                "only one of 'record' and 'alert' must be set".into(),
            );
        }
        (Some(rec), _) if !rec.value.is_empty() => (rec, true),
        (_, Some(al)) if !al.value.is_empty() => (al, false),
        _ => return fail(rpos, "", "one of 'record' or 'alert' must be set".into()),
    };
    let Some(expr) = r.expr.as_ref().filter(|e| !e.value.trim().is_empty()) else {
        return fail(rpos, "expr", "field 'expr' must be set in rule".into());
    };
    // Bounded like queries: `check rules` and reloads must not overflow the stack on a rule
    // nested ten thousand levels deep.
    if let Err(e) =
        edgeprom_promql::parse_bounded(&expr.value, &edgeprom_promql::QueryLimits::default())
    {
        return fail(
            pos(expr),
            "expr",
            format!("could not parse expression: {e}"),
        );
    }
    if recording {
        if !valid_metric_name(&name.value) {
            return fail(
                pos(name),
                "record",
                format!("invalid recording rule name: {}", name.value),
            );
        }
        if let Some(a) = &r.annotations {
            return fail(
                pos(a),
                "annotations",
                "invalid field 'annotations' in recording rule".into(),
            );
        }
        if let Some(f) = &r.for_ {
            return fail(
                pos(f),
                "for",
                "invalid field 'for' in recording rule".into(),
            );
        }
        if let Some(f) = &r.keep_firing_for {
            return fail(
                pos(f),
                "keep_firing_for",
                "invalid field 'keep_firing_for' in recording rule".into(),
            );
        }
    }
    let mut labels = group_labels.clone();
    if let Some(l) = &r.labels {
        for (k, v) in &l.value {
            if !valid_label_name(k) || k == "__name__" {
                return fail(pos(l), "labels", format!("invalid label name: {k}"));
            }
            if !recording && let Err(e) = Template::parse(&v.value) {
                return fail(
                    pos(v),
                    &format!("labels.{k}"),
                    format!("template: __alert_{}: {e}", name.value),
                );
            }
            labels.insert(k.clone(), v.value.clone());
        }
    }
    let kind = if recording {
        RuleKind::Recording
    } else {
        let mut annotations = BTreeMap::new();
        if let Some(a) = &r.annotations {
            for (k, v) in &a.value {
                if !valid_label_name(k) {
                    return fail(
                        pos(a),
                        "annotations",
                        format!("invalid annotation name: {k}"),
                    );
                }
                if let Err(e) = Template::parse(&v.value) {
                    return fail(
                        pos(v),
                        &format!("annotations.{k}"),
                        format!("template: __alert_{}: {e}", name.value),
                    );
                }
                annotations.insert(k.clone(), v.value.clone());
            }
        }
        RuleKind::Alerting {
            hold: r.for_.as_ref().map_or(Duration::ZERO, |f| f.value),
            keep_firing_for: r
                .keep_firing_for
                .as_ref()
                .map_or(Duration::ZERO, |f| f.value),
            annotations,
        }
    };
    Ok(RuleSpec {
        name: name.value.clone(),
        expr: expr.value.clone(),
        labels,
        kind,
    })
}

fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn valid_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

/// `promtool check rules` for one file: the rule count, or the first problem with its position.
pub fn check_rules_file(path: &Path) -> Result<usize, ConfigError> {
    RuleFile::load(path).map(|f| f.rule_count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuleFile, ConfigError> {
        RuleFile::parse(text, Path::new("/r/rules.yml"))
    }

    #[test]
    fn the_platform_rule_file_loads() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/testdata/xpu-alert-rules.yml");
        let f = RuleFile::load(&path).expect("xpu rules load");
        assert_eq!(f.groups.len(), 2);
        assert_eq!(f.rule_count(), 8);
        let g = &f.groups[0];
        assert_eq!(g.name, "xpu_health");
        assert_eq!(g.interval, Some(Duration::from_secs(15)));
        let r = &g.rules[1];
        assert_eq!(r.name, "XPUCriticalTemperature");
        assert_eq!(
            r.labels.get("severity").map(String::as_str),
            Some("critical")
        );
        match &r.kind {
            RuleKind::Alerting {
                hold, annotations, ..
            } => {
                assert_eq!(*hold, Duration::from_secs(30));
                assert!(annotations["description"].contains("$labels.device_id"));
            }
            RuleKind::Recording => panic!("alerting rule expected"),
        }
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases = [
            (
                "groups:\n  - name: g\n    rules:\n      - record: job:up\n        expr: sum(up\n",
                "/r/rules.yml:5:15: groups[0].rules[0].expr: group \"g\", rule 1, \"job:up\": could not parse expression",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - expr: up\n",
                "/r/rules.yml:4:9: groups[0].rules[0]: group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - record: 'bad name'\n        expr: up\n",
                "/r/rules.yml:4:17: groups[0].rules[0].record: group \"g\", rule 1, \"bad name\": invalid recording rule name: bad name",
            ),
            (
                "groups:\n  - name: g\n    rules: []\n  - name: g\n",
                "/r/rules.yml:4:11: groups[1].name: \"g\" is repeated in the same file",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations:\n          s: '{{ $labels.x '\n",
                "/r/rules.yml:7:14: groups[0].rules[0].annotations.s: group \"g\", rule 1, \"A\": template: __alert_A: unclosed action",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        forr: 5m\n",
                "/r/rules.yml:6:9: groups[0].rules[0].forr: unknown field `forr`",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).expect_err(text).to_string();
            assert!(got.starts_with(want), "\n got: {got}\nwant: {want}");
        }
    }
}
