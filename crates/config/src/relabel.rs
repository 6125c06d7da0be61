//! Relabelling with Prometheus 3.x semantics (`model/relabel/relabel.go`): the same actions,
//! defaults, validation messages, fully anchored `^(?s:…)$` regexes, Go `Regexp.Expand` template
//! rules, and md5-based `hashmod`.
//!
//! Label names are validated the way Prometheus 3 does by default (UTF-8 name validation): any
//! non-empty string is a valid label name.

use std::fmt;

use edgeprom_model::{Labels, LabelsBuilder};

/// What a relabel rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    /// Sets `target_label` to the expanded `replacement` when `regex` matches the joined sources.
    #[default]
    Replace,
    /// Drops the target/series unless `regex` matches the joined sources.
    Keep,
    /// Drops the target/series when `regex` matches the joined sources.
    Drop,
    /// Drops unless the joined sources equal the value of `target_label`.
    KeepEqual,
    /// Drops when the joined sources equal the value of `target_label`.
    DropEqual,
    /// Sets `target_label` to md5(joined sources) mod `modulus`.
    HashMod,
    /// Copies every label whose name matches `regex` to the expanded `replacement` name.
    LabelMap,
    /// Removes every label whose name matches `regex`.
    LabelDrop,
    /// Removes every label whose name does not match `regex`.
    LabelKeep,
    /// Sets `target_label` to the joined sources in lower case.
    Lowercase,
    /// Sets `target_label` to the joined sources in upper case.
    Uppercase,
}

impl Action {
    /// Prometheus's spelling of the action.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses an action name case-insensitively, as Prometheus does.
    pub fn parse(s: &str) -> Result<Action, String> {
        Ok(match s.to_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return Err(format!("unknown relabel action {s:?}")),
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Action::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A relabel regex: the text as written plus its compiled, fully anchored form `^(?s:TEXT)$`.
#[derive(Debug, Clone)]
pub struct Regex {
    source: String,
    re: regex::Regex,
}

/// The regex used when a rule gives none.
pub const DEFAULT_REGEX: &str = "(.*)";

/// Why a relabel regex was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegexError {
    /// Go's `regexp`, and so Prometheus, refuses it (a repetition count over 1000); the message
    /// is Go's.
    #[error(transparent)]
    GoLimit(#[from] edgeprom_model::goregex::GoRegexError),
    /// It does not compile.
    #[error(transparent)]
    Compile(#[from] regex::Error),
}

impl Regex {
    /// Compiles `source` anchored at both ends with `.` matching newlines, like Prometheus, and
    /// refuses what Go's `regexp` would.
    pub fn new(source: &str) -> Result<Regex, RegexError> {
        edgeprom_model::goregex::check(source)?;
        let re = regex::Regex::new(&format!("^(?s:{source})$"))?;
        Ok(Regex {
            source: source.to_string(),
            re,
        })
    }

    /// The regex as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// The compiled, anchored regex.
    pub fn compiled(&self) -> &regex::Regex {
        &self.re
    }
}

impl Default for Regex {
    fn default() -> Regex {
        // The default pattern is a constant known to compile; building it by hand keeps this
        // infallible without an unwrap on user input.
        match Regex::new(DEFAULT_REGEX) {
            Ok(r) => r,
            Err(e) => unreachable!("default relabel regex must compile: {e}"),
        }
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Regex) -> bool {
        self.source == other.source
    }
}

impl Eq for Regex {}

/// One relabel rule, with Prometheus's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` to form the input.
    pub source_labels: Vec<String>,
    /// Joins the source values; default `;`.
    pub separator: String,
    /// Matched against the joined input (or label names for the label* actions); default `(.*)`.
    pub regex: Regex,
    /// Modulus for `hashmod`; required there, 0 otherwise.
    pub modulus: u64,
    /// The label written by replace/hashmod/lowercase/uppercase, compared by keepequal/dropequal.
    pub target_label: String,
    /// The template written by replace and labelmap; default `$1`.
    pub replacement: String,
    /// What the rule does; default `replace`.
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> RelabelConfig {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: ";".to_string(),
            regex: Regex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: "$1".to_string(),
            action: Action::Replace,
        }
    }
}

/// With UTF-8 name validation (Prometheus 3's default) a label name is valid when non-empty.
fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

impl RelabelConfig {
    /// Checks the rule like Prometheus's `relabel.Config.Validate`; the error text is
    /// Prometheus's. `regex_given` says whether the configuration spelled out a regex, because
    /// Prometheus forbids any regex (even `(.*)`) on keepequal/dropequal.
    pub fn validate(&self, regex_given: bool) -> Result<(), String> {
        use Action::*;
        let a = self.action;
        if self.modulus == 0 && a == HashMod {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(
            a,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && self.target_label.is_empty()
        {
            return Err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        if matches!(
            a,
            Replace | Lowercase | Uppercase | KeepEqual | DropEqual | HashMod
        ) && !valid_label_name(&self.target_label)
        {
            return Err(format!(
                "{:?} is invalid 'target_label' for {a} action",
                self.target_label
            ));
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual) && self.replacement != "$1" {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if a == LabelMap && !valid_label_name(&self.replacement) {
            return Err(format!(
                "{:?} is invalid 'replacement' for {a} action",
                self.replacement
            ));
        }
        if matches!(a, KeepEqual | DropEqual)
            && (regex_given
                || self.modulus != 0
                || self.separator != ";"
                || self.replacement != "$1")
        {
            return Err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != ";"
                || self.replacement != "$1")
        {
            return Err(format!(
                "{a} action requires only 'regex', and no other fields"
            ));
        }
        Ok(())
    }
}

/// Applies `cfgs` in order; `None` when a rule drops the label set.
pub fn process(labels: &Labels, cfgs: &[RelabelConfig]) -> Option<Labels> {
    let mut b = labels.to_builder();
    process_builder(&mut b, cfgs).then(|| b.build())
}

/// Applies `cfgs` in order to a builder; `false` when a rule drops the label set (the builder is
/// then in an unspecified state).
pub fn process_builder(b: &mut LabelsBuilder, cfgs: &[RelabelConfig]) -> bool {
    cfgs.iter().all(|cfg| relabel(cfg, b))
}

fn joined_source(cfg: &RelabelConfig, b: &LabelsBuilder) -> String {
    let mut val = String::new();
    for (i, name) in cfg.source_labels.iter().enumerate() {
        if i > 0 {
            val.push_str(&cfg.separator);
        }
        val.push_str(b.get(name).unwrap_or(""));
    }
    val
}

fn relabel(cfg: &RelabelConfig, b: &mut LabelsBuilder) -> bool {
    let val = joined_source(cfg, b);
    match cfg.action {
        Action::Drop => return !cfg.regex.is_match(&val),
        Action::Keep => return cfg.regex.is_match(&val),
        Action::DropEqual => return b.get(&cfg.target_label).unwrap_or("") != val,
        Action::KeepEqual => return b.get(&cfg.target_label).unwrap_or("") == val,
        Action::Replace => {
            // No match means no change, not a deletion.
            let Some(caps) = cfg.regex.compiled().captures(&val) else {
                return true;
            };
            let target = expand(cfg.regex.compiled(), &caps, &cfg.target_label);
            // A target that expands to an invalid name is skipped, as Prometheus does.
            if !valid_label_name(&target) {
                return true;
            }
            let value = expand(cfg.regex.compiled(), &caps, &cfg.replacement);
            // An empty value deletes the label (LabelsBuilder::set does that).
            b.set(target, value);
        }
        Action::Lowercase => {
            b.set(cfg.target_label.clone(), map_case(&val, char::to_lowercase));
        }
        Action::Uppercase => {
            b.set(cfg.target_label.clone(), map_case(&val, char::to_uppercase));
        }
        Action::HashMod => {
            let digest = md5::compute(val.as_bytes());
            // Prometheus reads the last 8 of the 16 digest bytes as a big-endian u64.
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&digest.0[8..]);
            let m = u64::from_be_bytes(tail) % cfg.modulus.max(1);
            b.set(cfg.target_label.clone(), m.to_string());
        }
        Action::LabelMap => {
            // Iterate over a snapshot: labels added by this rule must not be re-mapped, as
            // Go's Builder.Range works on a copy.
            let snapshot: Vec<(String, String)> = b
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            for (name, value) in snapshot {
                if let Some(caps) = cfg.regex.compiled().captures(&name) {
                    let new_name = expand(cfg.regex.compiled(), &caps, &cfg.replacement);
                    b.set(new_name, value);
                }
            }
        }
        Action::LabelDrop => {
            b.retain(|l| !cfg.regex.is_match(&l.name));
        }
        Action::LabelKeep => {
            b.retain(|l| cfg.regex.is_match(&l.name));
        }
    }
    true
}

/// Go's `unicode.ToLower`/`ToUpper` map one rune to one rune; where Rust's full mapping would
/// produce several characters (`ß` → `SS`) the character is kept, as Go keeps it.
fn map_case<I: Iterator<Item = char>>(s: &str, f: impl Fn(char) -> I) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let mut it = f(c);
        match (it.next(), it.next()) {
            (Some(m), None) => out.push(m),
            _ => out.push(c),
        }
    }
    out
}

/// Expands `template` like Go's `Regexp.ExpandString`: `$$` is `$`; `$name`/`${name}` take the
/// longest run of letters, digits and `_`; all-digit names (no leading zero) are group numbers;
/// unknown or non-participating groups expand to nothing; a malformed `$` stays literal.
pub fn expand(re: &regex::Regex, caps: &regex::Captures<'_>, template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let Some((name, after)) = extract_name(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        match group_number(name) {
            Some(n) => {
                if let Some(m) = caps.get(n) {
                    out.push_str(m.as_str());
                }
            }
            None => {
                let idx = re
                    .capture_names()
                    .enumerate()
                    .find(|(i, n)| *n == Some(name) && caps.get(*i).is_some())
                    .map(|(i, _)| i);
                if let Some(m) = idx.and_then(|i| caps.get(i)) {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses the name after a `$`: `{name}` or a bare run; returns the name and the remaining text.
fn extract_name(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|(_, c)| !(c.is_alphabetic() || c.is_numeric() || *c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if braced {
        let after = body[end..].strip_prefix('}')?;
        Some((name, after))
    } else {
        Some((name, &body[end..]))
    }
}

/// A group number as Go reads it: ASCII digits only, no leading zero, below 10^8.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let mut n: usize = 0;
    for b in name.bytes() {
        if n >= 100_000_000 {
            return None;
        }
        n = n * 10 + usize::from(b - b'0');
    }
    Some(n)
}
