//! Shared helpers: parse a whole body into owned, comparable entries.
#![allow(dead_code)]

use edgeprom_exposition::{Entry, Format, ParseError, Parser};
use edgeprom_model::MetricType;

/// The NaN bit pattern Prometheus stores for an exposed NaN.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

pub type Pairs = Vec<(String, String)>;

/// An owned entry; values are compared by bit pattern so NaN compares too.
#[derive(Debug, Clone, PartialEq)]
pub enum E {
    Help(String, String),
    Type(String, MetricType),
    Unit(String, String),
    Comment,
    S(S),
}

#[derive(Debug, Clone, PartialEq)]
pub struct S {
    pub raw: String,
    pub name: String,
    pub labels: Pairs,
    pub value_bits: u64,
    pub ts: Option<i64>,
    pub mtype: MetricType,
    pub exemplar: Option<(Pairs, u64, Option<i64>)>,
}

pub fn pairs(p: &[(&str, &str)]) -> Pairs {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// A sample expectation with no timestamp or exemplar.
pub fn s(raw: &str, name: &str, labels: &[(&str, &str)], v: f64, mtype: MetricType) -> E {
    E::S(S {
        raw: raw.into(),
        name: name.into(),
        labels: pairs(labels),
        value_bits: v.to_bits(),
        ts: None,
        mtype,
        exemplar: None,
    })
}

pub fn with_ts(e: E, ts: i64) -> E {
    match e {
        E::S(mut s) => {
            s.ts = Some(ts);
            E::S(s)
        }
        other => other,
    }
}

pub fn with_ex(e: E, labels: &[(&str, &str)], v: f64, ts: Option<i64>) -> E {
    match e {
        E::S(mut s) => {
            s.exemplar = Some((pairs(labels), v.to_bits(), ts));
            E::S(s)
        }
        other => other,
    }
}

pub fn help(m: &str, t: &str) -> E {
    E::Help(m.into(), t.into())
}

pub fn typ(m: &str, t: MetricType) -> E {
    E::Type(m.into(), t)
}

pub fn owned(e: Entry<'_>) -> E {
    match e {
        Entry::Help { metric, text } => E::Help(metric.into_owned(), text.into_owned()),
        Entry::Type { metric, kind } => E::Type(metric.into_owned(), kind),
        Entry::Unit { metric, unit } => E::Unit(metric.into_owned(), unit.into_owned()),
        Entry::Comment => E::Comment,
        Entry::Series(s) => E::S(S {
            raw: s.raw().to_string(),
            name: s.name().into_owned(),
            labels: s
                .labels()
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect(),
            value_bits: s.value().to_bits(),
            ts: s.timestamp_ms(),
            mtype: s.metric_type(),
            exemplar: s.exemplar().map(|e| {
                (
                    e.labels()
                        .map(|(n, v)| (n.into_owned(), v.into_owned()))
                        .collect(),
                    e.value().to_bits(),
                    e.timestamp_ms(),
                )
            }),
        }),
    }
}

/// Parses everything, stopping at the first error.
pub fn parse_all(body: &str, format: Format) -> Result<Vec<E>, ParseError> {
    parse_bytes(body.as_bytes(), format)
}

pub fn parse_bytes(body: &[u8], format: Format) -> Result<Vec<E>, ParseError> {
    let mut p = Parser::new(body, format)?;
    let mut out = Vec::new();
    while let Some(e) = p.next()? {
        out.push(owned(e));
    }
    Ok(out)
}

/// The error a body produces; panics if it parses.
pub fn parse_err(body: &str, format: Format) -> ParseError {
    match parse_all(body, format) {
        Ok(v) => panic!("expected an error for {body:?}, parsed {v:?}"),
        Err(e) => e,
    }
}
