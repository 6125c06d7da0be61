//! The pull parser. Every entry borrows from the scraped body; the only allocations on the sample
//! path are for escaped names or values (`Cow::Owned`) and, once per scrape, the label-name
//! scratch vector used to reject duplicates.

use std::borrow::Cow;

use edgeprom_model::{Labels, LabelsBuilder, MetricType, names};

use crate::lex::{
    QuoteError, float_error_message, is_lname_start, is_mname_start, normalize_float_label,
    parse_go_float, scan_lname, scan_mname, scan_quoted, skip_ws, unescape_help, unescape_lvalue,
};
use crate::{Format, ParseError};

/// One logical line of an exposition, as [`Parser::next`] yields it.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP name text`; `text` is unescaped (`\\` and `\n`, plus `\"` in OpenMetrics).
    Help {
        /// The metric family name (quotes removed for UTF-8 names).
        metric: Cow<'a, str>,
        /// The help text.
        text: Cow<'a, str>,
    },
    /// `# TYPE name kind`; `untyped` (text) and `unknown` (OpenMetrics) map to
    /// [`MetricType::Unknown`].
    Type {
        /// The metric family name.
        metric: Cow<'a, str>,
        /// The declared type.
        kind: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics only); the unit is empty when declared empty.
    Unit {
        /// The metric family name.
        metric: Cow<'a, str>,
        /// The unit, which Prometheus checks is a `_`-separated suffix of the name.
        unit: Cow<'a, str>,
    },
    /// Any other `#` line (text format only; OpenMetrics has no free comments).
    Comment,
    /// A sample line.
    Series(Series<'a>),
}

/// Which label value Prometheus 3 rewrites to canonical float form for this sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Norm {
    None,
    Le,
    Quantile,
}

/// A sample line: series identity, value, optional timestamp and exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<'a> {
    raw: &'a str,
    name: &'a str,
    name_escaped: bool,
    labels: &'a str,
    value: f64,
    ts: Option<i64>,
    exemplar: Option<Exemplar<'a>>,
    mtype: MetricType,
    norm: Norm,
}

impl<'a> Series<'a> {
    /// The exact bytes of the metric name and label block (`name{a="1"}`, `{"n.x",a="1"}`), for
    /// use as a cache key: identical series text gives an identical slice.
    #[inline]
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The metric name, unescaped if it was a quoted UTF-8 name containing escapes.
    #[inline]
    pub fn name(&self) -> Cow<'a, str> {
        if self.name_escaped {
            unescape_lvalue(self.name)
        } else {
            Cow::Borrowed(self.name)
        }
    }

    /// The labels in exposition order, unescaped; excludes the metric name.
    ///
    /// Like Prometheus 3, a `le` label under a `histogram` TYPE and a `quantile` label under a
    /// `summary` TYPE are rewritten to canonical float form (`le="1"` yields `1.0`).
    #[inline]
    pub fn labels(&self) -> LabelIter<'a> {
        LabelIter {
            s: self.labels,
            pos: 0,
            norm: self.norm,
        }
    }

    /// The sample value. An exposed `NaN` carries Prometheus's normal-NaN bit pattern, never the
    /// stale marker's.
    #[inline]
    pub fn value(&self) -> f64 {
        self.value
    }

    /// The explicit timestamp in milliseconds: an integer in the text format, float seconds
    /// (truncated to milliseconds) in OpenMetrics.
    #[inline]
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.ts
    }

    /// The exemplar attached to this sample (OpenMetrics only).
    #[inline]
    pub fn exemplar(&self) -> Option<Exemplar<'a>> {
        self.exemplar
    }

    /// The type of the family this sample belongs to: the most recent `# TYPE` if this sample's
    /// name is that family's name or one of its sample suffixes (`_bucket`, `_sum`, `_count`,
    /// `_total`, `_created`, `_info`, `_gsum`, `_gcount` as the type allows), else `Unknown`.
    #[inline]
    pub fn metric_type(&self) -> MetricType {
        self.mtype
    }

    /// The full label set including `__name__`, sorted, with empty values dropped (the cache-miss
    /// path; allocates).
    pub fn to_labels(&self) -> Labels {
        let mut b = LabelsBuilder::new();
        b.set(names::METRIC_NAME, self.name().into_owned());
        for (n, v) in self.labels() {
            b.set(n.into_owned(), v.into_owned());
        }
        b.build()
    }
}

/// An OpenMetrics exemplar: `# {trace_id="x"} 1.0 123.456` after a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar<'a> {
    labels: &'a str,
    value: f64,
    ts: Option<i64>,
}

impl<'a> Exemplar<'a> {
    /// The exemplar's labels in exposition order, unescaped.
    pub fn labels(&self) -> LabelIter<'a> {
        LabelIter {
            s: self.labels,
            pos: 0,
            norm: Norm::None,
        }
    }

    /// The exact text between the exemplar's braces, for telling cheaply whether an exemplar
    /// has the same labels as one seen before.
    pub fn raw_labels(&self) -> &'a str {
        self.labels
    }

    /// The exemplar value.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// The exemplar timestamp in milliseconds, if given.
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.ts
    }
}

/// Iterator over `(name, value)` label pairs of an already validated label block.
#[derive(Debug, Clone)]
pub struct LabelIter<'a> {
    s: &'a str,
    pos: usize,
    norm: Norm,
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        // The block was validated by the parser, so this re-lex can be lenient: it only needs to
        // find the pieces again, and it stops quietly rather than panicking on anything odd.
        let s = self.s;
        let b = s.as_bytes();
        loop {
            let mut i = self.pos;
            while i < b.len() && matches!(b[i], b' ' | b'\t' | b',') {
                i += 1;
            }
            if i >= b.len() {
                self.pos = b.len();
                return None;
            }
            let (name, name_esc, after) = if b[i] == b'"' {
                let (end, esc) = scan_quoted(b, i, true).ok()?;
                (s.get(i + 1..end - 1)?, esc, end)
            } else {
                let end = scan_lname(b, i);
                if end == i {
                    self.pos = b.len();
                    return None;
                }
                (s.get(i..end)?, false, end)
            };
            let j = skip_ws(b, after);
            if b.get(j) != Some(&b'=') {
                // A quoted string without `=` is the metric name, not a label.
                self.pos = j;
                continue;
            }
            let k = skip_ws(b, j + 1);
            if b.get(k) != Some(&b'"') {
                self.pos = b.len();
                return None;
            }
            let (end, val_esc) = scan_quoted(b, k, true).ok()?;
            let value = s.get(k + 1..end - 1)?;
            self.pos = end;
            let name = if name_esc {
                unescape_lvalue(name)
            } else {
                Cow::Borrowed(name)
            };
            let mut value = if val_esc {
                unescape_lvalue(value)
            } else {
                Cow::Borrowed(value)
            };
            let normalize = match self.norm {
                Norm::None => false,
                Norm::Le => name == names::BUCKET,
                Norm::Quantile => name == names::QUANTILE,
            };
            if normalize {
                value = normalize_float_label(value);
            }
            return Some((name, value));
        }
    }
}

#[derive(Debug)]
enum State {
    Running,
    Done,
    Failed(ParseError),
}

/// A label name seen in the current block: byte span and whether it needs unescaping.
type NameSpan = (usize, usize, bool);

/// Pull parser over one scraped body.
#[derive(Debug)]
pub struct Parser<'a> {
    src: &'a str,
    pos: usize,
    entry_start: usize,
    format: Format,
    family: Option<Cow<'a, str>>,
    family_type: MetricType,
    names: Vec<NameSpan>,
    state: State,
}

type Step<'a> = Result<Option<Entry<'a>>, String>;

/// Longest error message kept: messages quote names and values from the body, and a target can
/// send a label name of a hundred megabytes; the message becomes the target's `lastError` and a
/// log line.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1024;

/// Cuts `message` to [`MAX_ERROR_MESSAGE_BYTES`] (on a character boundary), saying so.
fn cap_message(mut message: String) -> String {
    if message.len() > MAX_ERROR_MESSAGE_BYTES {
        let total = message.len();
        let mut cut = MAX_ERROR_MESSAGE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str(&format!("… ({total} bytes)"));
    }
    message
}

impl<'a> Parser<'a> {
    /// Starts parsing `body` in `format`. The body is checked to be UTF-8 once, here.
    pub fn new(body: &'a [u8], format: Format) -> Result<Parser<'a>, ParseError> {
        let src = std::str::from_utf8(body).map_err(|e| ParseError {
            line: line_of(body, e.valid_up_to()),
            message: "invalid UTF-8".to_string(),
        })?;
        Ok(Parser {
            src,
            pos: 0,
            entry_start: 0,
            format,
            family: None,
            family_type: MetricType::Unknown,
            names: Vec::with_capacity(16),
            state: State::Running,
        })
    }

    /// The format being parsed.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The next entry, `Ok(None)` at the end. In OpenMetrics the end is `# EOF`: a body without
    /// it, or with anything after it, is an error. After an error every call returns it again.
    #[allow(clippy::should_implement_trait)] // Fallible, so it cannot be `Iterator::next`.
    pub fn next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        match &self.state {
            State::Running => {}
            State::Done => return Ok(None),
            State::Failed(e) => return Err(e.clone()),
        }
        let step = match self.format {
            Format::Text => self.next_text(),
            Format::OpenMetrics => self.next_om(),
        };
        match step {
            Ok(Some(e)) => Ok(Some(e)),
            Ok(None) => {
                self.state = State::Done;
                Ok(None)
            }
            Err(message) => {
                let e = ParseError {
                    line: line_of(self.src.as_bytes(), self.entry_start),
                    message: cap_message(message),
                };
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    // ---- Prometheus text format 0.0.4 ----

    fn next_text(&mut self) -> Step<'a> {
        let b = self.src.as_bytes();
        loop {
            self.entry_start = self.pos;
            let i = skip_ws(b, self.pos);
            let Some(&c) = b.get(i) else {
                self.pos = b.len();
                return Ok(None);
            };
            match c {
                b'\n' => self.pos = i + 1,
                b'#' => return self.text_comment(i),
                b'{' => return self.series(i, false).map(Some),
                c if is_mname_start(c) => return self.series(i, false).map(Some),
                _ => {
                    return Err(format!(
                        "expected a valid start token, got {}",
                        got(self.src, i)
                    ));
                }
            }
        }
    }

    fn text_comment(&mut self, hash: usize) -> Step<'a> {
        let b = self.src.as_bytes();
        let i = skip_ws(b, hash + 1);
        if i > hash + 1 {
            let rest = &b[i..];
            let keyword = if rest.starts_with(b"HELP") {
                Some(true)
            } else if rest.starts_with(b"TYPE") {
                Some(false)
            } else {
                None
            };
            if let Some(is_help) = keyword
                && matches!(b.get(i + 4), Some(b' ' | b'\t'))
            {
                return self.text_meta(is_help, skip_ws(b, i + 4)).map(Some);
            }
        }
        // Anything else starting with `#` is a comment, including `#HELP` and `# HELP` with
        // nothing after it, as in Prometheus's lexer.
        self.pos = next_line(b, line_end(b, hash));
        Ok(Some(Entry::Comment))
    }

    fn text_meta(&mut self, is_help: bool, i: usize) -> Result<Entry<'a>, String> {
        let src = self.src;
        let b = src.as_bytes();
        let what = if is_help { "HELP" } else { "TYPE" };
        let (metric, after) = self.meta_name(i, what)?;
        let eol = line_end(b, after);
        self.pos = next_line(b, eol);
        let rest = &src[after..eol];
        // Prometheus takes everything after the name and drops its first character (normally the
        // separating blank); a remainder of only blanks means empty text.
        let text = if rest.bytes().all(|c| c == b' ' || c == b'\t') {
            ""
        } else {
            let mut chars = rest.chars();
            match chars.next() {
                Some(c) if c.is_ascii() => chars.as_str(),
                _ => {
                    return Err(format!(
                        "{what} text is not valid UTF-8 after the metric name"
                    ));
                }
            }
        };
        if is_help {
            return Ok(Entry::Help {
                metric,
                text: unescape_help(text),
            });
        }
        let kind = match text {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Unknown,
            _ => return Err(format!("invalid metric type {text:?}")),
        };
        self.family = Some(metric.clone());
        self.family_type = kind;
        Ok(Entry::Type { metric, kind })
    }

    /// The metric name of a HELP/TYPE/UNIT line: a plain name or a quoted UTF-8 one.
    fn meta_name(&self, i: usize, what: &str) -> Result<(Cow<'a, str>, usize), String> {
        let src = self.src;
        let b = src.as_bytes();
        match b.get(i) {
            Some(b'"') => {
                let (end, esc) = scan_quoted(b, i, true)
                    .map_err(|_| format!("unterminated quoted metric name after {what}"))?;
                let name = &src[i + 1..end - 1];
                let name = if esc {
                    unescape_lvalue(name)
                } else {
                    Cow::Borrowed(name)
                };
                Ok((name, end))
            }
            Some(&c) if is_mname_start(c) => {
                let end = scan_mname(b, i);
                Ok((Cow::Borrowed(&src[i..end]), end))
            }
            _ => Err(format!(
                "expected metric name after {what}, got {}",
                got(src, i)
            )),
        }
    }

    // ---- OpenMetrics 1.0 ----

    fn next_om(&mut self) -> Step<'a> {
        let b = self.src.as_bytes();
        let i = self.pos;
        self.entry_start = i;
        match b.get(i) {
            None => Err("data does not end with # EOF".to_string()),
            Some(b'#') => self.om_hash(i),
            Some(&c) if c == b'{' || is_mname_start(c) => self.series(i, true).map(Some),
            Some(_) => Err(format!(
                "expected a valid start token, got {}",
                got(self.src, i)
            )),
        }
    }

    fn om_hash(&mut self, hash: usize) -> Step<'a> {
        let b = self.src.as_bytes();
        if b.get(hash + 1) != Some(&b' ') {
            return Err(format!(
                "expected a valid start token, got {}",
                got(self.src, hash)
            ));
        }
        let k = hash + 2;
        let rest = &b[k..];
        if rest.starts_with(b"EOF") {
            let mut end = k + 3;
            if b.get(end) == Some(&b'\n') {
                end += 1;
            }
            if end != b.len() {
                return Err("unexpected data after # EOF".to_string());
            }
            self.pos = end;
            return Ok(None);
        }
        let what = if rest.starts_with(b"HELP ") {
            "HELP"
        } else if rest.starts_with(b"TYPE ") {
            "TYPE"
        } else if rest.starts_with(b"UNIT ") {
            "UNIT"
        } else {
            // OpenMetrics has no free-form comments.
            return Err(format!(
                "expected HELP, TYPE, UNIT or EOF after \"# \", got {}",
                got(self.src, k)
            ));
        };
        self.om_meta(what, k + 5).map(Some)
    }

    fn om_meta(&mut self, what: &'static str, i: usize) -> Result<Entry<'a>, String> {
        let src = self.src;
        let b = src.as_bytes();
        let (metric, after) = self.meta_name(i, what)?;
        if b.get(after) != Some(&b' ') {
            return Err(format!("expected text in {what}"));
        }
        let Some(eol) = memchr::memchr(b'\n', &b[after + 1..]).map(|r| after + 1 + r) else {
            return Err(format!("expected text in {what}"));
        };
        self.pos = eol + 1;
        let text = &src[after + 1..eol];
        match what {
            "HELP" => Ok(Entry::Help {
                metric,
                text: unescape_lvalue(text),
            }),
            "TYPE" => {
                let kind = match text {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    "gaugehistogram" => MetricType::GaugeHistogram,
                    "summary" => MetricType::Summary,
                    "info" => MetricType::Info,
                    "stateset" => MetricType::StateSet,
                    "unknown" => MetricType::Unknown,
                    _ => return Err(format!("invalid metric type {text:?}")),
                };
                self.family = Some(metric.clone());
                self.family_type = kind;
                Ok(Entry::Type { metric, kind })
            }
            _ => {
                // Prometheus checks the unit against the name as written (inside the quotes).
                let raw_name = if b[i] == b'"' {
                    &src[i + 1..after - 1]
                } else {
                    &src[i..after]
                };
                if !text.is_empty() {
                    let ok = raw_name.len() > text.len()
                        && raw_name.ends_with(text)
                        && raw_name.as_bytes()[raw_name.len() - text.len() - 1] == b'_';
                    if !ok {
                        return Err(format!("unit {text:?} not a suffix of metric {raw_name:?}"));
                    }
                }
                Ok(Entry::Unit {
                    metric,
                    unit: Cow::Borrowed(text),
                })
            }
        }
    }

    // ---- sample lines, both formats ----

    /// Parses a sample line starting at `i` (a name character or `{`). `om` selects the
    /// OpenMetrics rules: single spaces only, mandatory commas, float-second timestamps,
    /// exemplars.
    fn series(&mut self, i: usize, om: bool) -> Result<Entry<'a>, String> {
        let src = self.src;
        let b = src.as_bytes();
        let mut name: Option<NameSpan> = None;
        let mut j = i;
        let mut raw_end = i;
        if b[i] != b'{' {
            j = scan_mname(b, i);
            raw_end = j;
            name = Some((i, j, false));
            if !om {
                j = skip_ws(b, j);
            }
        }
        let mut labels = "";
        if b.get(j) == Some(&b'{') {
            let close = self.label_block(j, om, false, &mut name)?;
            labels = &src[j + 1..close - 1];
            raw_end = close;
            j = close;
        }
        let Some((ns, ne, nesc)) = name else {
            return Err(format!(
                "metric name not set while parsing {:?}",
                &src[i..raw_end]
            ));
        };
        let name = &src[ns..ne];

        let (value, ts, exemplar) = if om {
            self.om_suffix(j)?
        } else {
            let (v, t) = self.text_suffix(j)?;
            (v, t, None)
        };

        let (mtype, norm) = self.classify(name, nesc);
        Ok(Entry::Series(Series {
            raw: &src[i..raw_end],
            name,
            name_escaped: nesc,
            labels,
            value,
            ts,
            exemplar,
            mtype,
            norm,
        }))
    }

    /// Type of the family the sample belongs to, and which label Prometheus normalises.
    #[inline]
    fn classify(&self, name: &str, escaped: bool) -> (MetricType, Norm) {
        // Prometheus keys normalisation off the last TYPE seen, whatever family it named.
        let norm = match self.family_type {
            MetricType::Histogram => Norm::Le,
            MetricType::Summary => Norm::Quantile,
            _ => Norm::None,
        };
        let Some(family) = &self.family else {
            return (MetricType::Unknown, norm);
        };
        let name = if escaped {
            unescape_lvalue(name)
        } else {
            Cow::Borrowed(name)
        };
        let t = if part_of_family(&name, family, self.family_type) {
            self.family_type
        } else {
            MetricType::Unknown
        };
        (t, norm)
    }

    /// Parses `{...}` whose `{` is at `open`; returns the index just past `}`. Sets `name` when
    /// the block carries a quoted metric name. Exemplar blocks may not, and skip the duplicate
    /// check (Prometheus never fails a scrape over an exemplar's labels).
    fn label_block(
        &mut self,
        open: usize,
        om: bool,
        exemplar: bool,
        name: &mut Option<NameSpan>,
    ) -> Result<usize, String> {
        let src = self.src;
        let b = src.as_bytes();
        if !exemplar {
            self.names.clear();
        }
        let mut i = open + 1;
        loop {
            if !om {
                i = skip_ws(b, i);
            }
            let Some(&c) = b.get(i) else {
                return Err("expected label name or '}', got end of input".to_string());
            };
            if c == b'}' {
                return Ok(i + 1);
            }
            let (ns, ne, nesc, quoted, after) = if c == b'"' {
                let (end, esc) = scan_quoted(b, i, !(om && exemplar))
                    .map_err(|e| quote_error("label name", e))?;
                (i + 1, end - 1, esc, true, end)
            } else if is_lname_start(c) {
                let end = scan_lname(b, i);
                (i, end, false, false, end)
            } else {
                return Err(format!("expected label name, got {}", got(src, i)));
            };
            let mut j = if om { after } else { skip_ws(b, after) };
            let next = b.get(j).copied();
            if quoted && matches!(next, Some(b',' | b'}')) {
                if exemplar {
                    return Err("expected label name in exemplar, got a bare quoted string".into());
                }
                if name.is_some() {
                    return Err(format!(
                        "metric name already set while parsing {:?}",
                        &src[open..j]
                    ));
                }
                if ns == ne {
                    return Err("empty metric name".to_string());
                }
                *name = Some((ns, ne, nesc));
                if next == Some(b'}') {
                    return Ok(j + 1);
                }
                i = j + 1;
                continue;
            }
            if next != Some(b'=') {
                return Err(format!("expected equal, got {}", got(src, j)));
            }
            if ns == ne {
                return Err("empty label name".to_string());
            }
            j += 1;
            if !om {
                j = skip_ws(b, j);
            }
            if b.get(j) != Some(&b'"') {
                return Err(format!("expected label value, got {}", got(src, j)));
            }
            let (end, _) = scan_quoted(b, j, !om).map_err(|e| quote_error("label value", e))?;
            if !exemplar {
                self.check_duplicate(ns, ne, nesc)?;
            }
            let k = if om { end } else { skip_ws(b, end) };
            match b.get(k) {
                Some(b',') => i = k + 1,
                Some(b'}') => i = k,
                // The text lexer lets label pairs follow each other without a comma.
                _ if !om => i = k,
                _ => {
                    return Err(format!(
                        "expected comma or brace close, got {}",
                        got(src, k)
                    ));
                }
            }
        }
    }

    /// Rejects a label name already used in this block, or `__name__` (which would duplicate
    /// the metric name, as Prometheus's scrape-time check finds).
    #[inline]
    fn check_duplicate(&mut self, ns: usize, ne: usize, nesc: bool) -> Result<(), String> {
        let src = self.src;
        let new = &src.as_bytes()[ns..ne];
        let dup = |name: &str| format!("label name {name:?} is not unique");
        if !nesc && new == names::METRIC_NAME.as_bytes() {
            return Err(dup(names::METRIC_NAME));
        }
        for &(s, e, esc) in &self.names {
            let same = if esc || nesc {
                unescape_lvalue(&src[s..e]) == unescape_lvalue(&src[ns..ne])
            } else {
                &src.as_bytes()[s..e] == new
            };
            if same {
                return Err(dup(&unescape_lvalue(&src[ns..ne])));
            }
        }
        if nesc && unescape_lvalue(&src[ns..ne]) == names::METRIC_NAME {
            return Err(dup(names::METRIC_NAME));
        }
        self.names.push((ns, ne, nesc));
        Ok(())
    }

    /// Value and optional integer timestamp of a text-format sample, from just after the name
    /// or label block.
    fn text_suffix(&mut self, j: usize) -> Result<(f64, Option<i64>), String> {
        let src = self.src;
        let b = src.as_bytes();
        let vs = skip_ws(b, j);
        let mut ve = vs;
        while ve < b.len() && !matches!(b[ve], b' ' | b'\t' | b'\n' | b'{') {
            ve += 1;
        }
        if ve == vs {
            return Err(format!("expected value after metric, got {}", got(src, vs)));
        }
        let value = parse_value(&src[vs..ve])?;
        let mut k = skip_ws(b, ve);
        let mut ts = None;
        if let Some(&c) = b.get(k)
            && c.is_ascii_digit()
        {
            let ds = k;
            let mut t: i64 = 0;
            while k < b.len() && b[k].is_ascii_digit() {
                t = t
                    .checked_mul(10)
                    .and_then(|t| t.checked_add(i64::from(b[k] - b'0')))
                    .ok_or_else(|| format!("timestamp {:?} out of range", digits_at(src, ds)))?;
                k += 1;
            }
            ts = Some(t);
            k = skip_ws(b, k);
            if !matches!(b.get(k), None | Some(b'\n')) {
                return Err(format!(
                    "expected next entry after timestamp, got {}",
                    got(src, k)
                ));
            }
        } else if !matches!(b.get(k), None | Some(b'\n')) {
            return Err(format!(
                "expected timestamp or new record, got {}",
                got(src, k)
            ));
        }
        self.pos = next_line(b, k);
        Ok((value, ts))
    }

    /// Value, optional timestamp and optional exemplar of an OpenMetrics sample.
    #[allow(clippy::type_complexity)]
    fn om_suffix(&mut self, j: usize) -> Result<(f64, Option<i64>, Option<Exemplar<'a>>), String> {
        let src = self.src;
        let b = src.as_bytes();
        let (value, mut k) = om_token(src, j)
            .ok_or_else(|| format!("expected value after metric, got {}", got(src, j)))?;
        let value = parse_value(value)?;
        let mut ts = None;
        let mut exemplar = None;
        if b.get(k) == Some(&b' ') && !b[k..].starts_with(b" # {") {
            let (t, end) = om_token(src, k).ok_or_else(|| {
                format!("expected timestamp or exemplar, got {}", got(src, k + 1))
            })?;
            ts = Some(parse_om_timestamp(t, "timestamp")?);
            k = end;
        }
        if b[k..].starts_with(b" # {") {
            let mut none = None;
            let close = self.label_block(k + 3, true, true, &mut none)?;
            let labels = &src[k + 4..close - 1];
            let (v, mut e) = om_token(src, close).ok_or_else(|| {
                format!(
                    "expected value after exemplar labels, got {}",
                    got(src, close)
                )
            })?;
            let v = parse_value(v)?;
            let mut ets = None;
            if b.get(e) == Some(&b' ') {
                let (t, end) = om_token(src, e).ok_or_else(|| {
                    format!("expected exemplar timestamp, got {}", got(src, e + 1))
                })?;
                ets = Some(parse_om_timestamp(t, "exemplar timestamp")?);
                e = end;
            }
            exemplar = Some(Exemplar {
                labels,
                value: v,
                ts: ets,
            });
            k = e;
        }
        match b.get(k) {
            Some(b'\n') => {
                self.pos = k + 1;
                Ok((value, ts, exemplar))
            }
            None => Err("data does not end with # EOF".to_string()),
            Some(_) => Err(format!(
                "expected next entry after sample, got {}",
                got(src, k)
            )),
        }
    }
}

/// An OpenMetrics `{S}[^ \n]+` token starting at the space at `j`: the token and its end.
#[inline]
fn om_token(src: &str, j: usize) -> Option<(&str, usize)> {
    let b = src.as_bytes();
    if b.get(j) != Some(&b' ') {
        return None;
    }
    let s = j + 1;
    let mut e = s;
    while e < b.len() && b[e] != b' ' && b[e] != b'\n' {
        e += 1;
    }
    if e == s {
        return None;
    }
    Some((&src[s..e], e))
}

#[inline]
fn parse_value(text: &str) -> Result<f64, String> {
    parse_go_float(text).map_err(|e| float_error_message(e, text))
}

/// OpenMetrics timestamps are float seconds; Prometheus truncates `seconds * 1000` to int64.
fn parse_om_timestamp(text: &str, what: &str) -> Result<i64, String> {
    let s = parse_value(text)?;
    if !s.is_finite() {
        let shown = if s.is_nan() {
            "NaN"
        } else if s > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        };
        return Err(format!("invalid {what} {shown}"));
    }
    Ok((s * 1000.0) as i64)
}

/// Prometheus's family-membership rule (scrape's `isSeriesPartOfFamily`), extended with the
/// OpenMetrics `_created` samples of counters, histograms and summaries.
fn part_of_family(name: &str, family: &str, t: MetricType) -> bool {
    fn cut<'s>(s: &'s str, suffixes: &[&str]) -> &'s str {
        for suf in suffixes {
            if let Some(stem) = s.strip_suffix(suf) {
                return stem;
            }
        }
        s
    }
    if !name.starts_with(family.strip_suffix("_total").unwrap_or(family)) {
        return false;
    }
    match t {
        MetricType::Counter => cut(family, &["_total"]) == cut(name, &["_total", "_created"]),
        MetricType::Histogram => family == cut(name, &["_bucket", "_sum", "_count", "_created"]),
        MetricType::GaugeHistogram => family == cut(name, &["_bucket", "_gsum", "_gcount"]),
        MetricType::Summary => family == cut(name, &["_sum", "_count", "_created"]),
        MetricType::Info => cut(family, &["_info"]) == cut(name, &["_info"]),
        _ => family == name,
    }
}

fn quote_error(what: &str, e: QuoteError) -> String {
    match e {
        QuoteError::Unterminated => format!("unterminated quoted {what}"),
        QuoteError::Newline => format!("line break inside quoted {what}"),
    }
}

/// Describes what the parser found at `i`, for error messages.
fn got(src: &str, i: usize) -> String {
    match src.get(i..).and_then(|s| s.chars().next()) {
        None => "end of input".to_string(),
        Some('\n') => "line break".to_string(),
        Some(c) => format!("{c:?}"),
    }
}

fn digits_at(src: &str, i: usize) -> &str {
    let b = src.as_bytes();
    let mut e = i;
    while e < b.len() && b[e].is_ascii_digit() {
        e += 1;
    }
    &src[i..e]
}

/// Index of the `\n` ending the line containing `i`, or the body length.
#[inline]
fn line_end(b: &[u8], i: usize) -> usize {
    memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |r| i + r)
}

/// Start of the line after the one ending at `eol` (a `\n` index or the body length).
#[inline]
fn next_line(b: &[u8], eol: usize) -> usize {
    (eol + 1).min(b.len())
}

/// 1-based line number of byte offset `at`; counted only when an error is reported, so the
/// happy path never tracks lines.
fn line_of(b: &[u8], at: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &b[..at.min(b.len())]).count()
}
