//! Active, Dynamo-shaped series for the memory and remote-write benches: the corpus generator's
//! series for as many workers as it takes, cut at the count asked for, and the values each scrape
//! gives them.

use edgeprom_exposition::{Entry, Format};
use edgeprom_model::{Appendable, Labels, SeriesRef};

use crate::corpus::{Config, Corpus};

/// First scrape's timestamp (2026-01-01T00:00:00Z).
pub const T0_MS: i64 = 1_767_225_600_000;
/// Scrape interval.
pub const STEP_MS: i64 = 15_000;

/// The first `n` corpus series as `(target, labels)`, with the generator and the text they were
/// parsed from.
pub type Fixture = (Corpus, String, Vec<(usize, Labels)>);

/// The first `n` corpus series. The caller keeps the generator and text alive so that memory freed
/// here is not reused by the engine, which would hide the engine's growth from an RSS delta.
pub fn dynamo_series(n: usize) -> Result<Fixture, String> {
    let mut workers = 64;
    let corpus = loop {
        let c = Corpus::new(Config {
            workers,
            ..Config::default()
        });
        if c.stats().series >= n || workers > 1 << 20 {
            break c;
        }
        workers *= 2;
    };
    let mut body = String::new();
    let mut targets = Vec::with_capacity(n);
    for (t, text) in corpus.series_texts().take(n) {
        body.push_str(text);
        body.push_str(" 0\n");
        targets.push(t);
    }
    let mut out = Vec::with_capacity(n);
    {
        let mut p = edgeprom_exposition::Parser::new(body.as_bytes(), Format::Text)
            .map_err(|e| e.to_string())?;
        let mut ti = targets.into_iter();
        while let Some(e) = p.next().map_err(|e| e.to_string())? {
            if let Entry::Series(s) = e {
                out.push((ti.next().unwrap_or(0), s.to_labels()));
            }
        }
    }
    Ok((corpus, body, out))
}

/// Appends scrape `k` of `series` (from [`dynamo_series`]) at `T0_MS + k × STEP_MS`, with
/// [`value`]s: one commit per target, as the scraper commits a scrape, passing each series' ref
/// from the previous scrape as the scrape cache does. `names[i]` is the metric name of
/// `series[i]`, computed once by the caller rather than per sample; `refs` (one per series,
/// `None` at first) is filled in.
pub fn append_scrape(
    storage: &dyn Appendable,
    series: &[(usize, Labels)],
    names: &[String],
    refs: &mut [Option<SeriesRef>],
    k: usize,
) -> Result<(), String> {
    let t = T0_MS + k as i64 * STEP_MS;
    let mut i = 0;
    while i < series.len() {
        let target = series[i].0;
        let mut app = storage.appender();
        while i < series.len() && series[i].0 == target {
            let r = app
                .append(refs[i], &series[i].1, t, value(i, k, &names[i]))
                .map_err(|e| e.to_string())?;
            refs[i] = Some(r);
            i += 1;
        }
        app.commit().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Counter-like for `_total`/`_bucket`/`_count`/`_sum`, a wandering gauge otherwise.
pub fn value(i: usize, k: usize, name: &str) -> f64 {
    let noise = ((i.wrapping_mul(2_654_435_761) ^ k.wrapping_mul(40_503)) % 97) as f64;
    if name.ends_with("_total") || name.ends_with("_bucket") || name.ends_with("_count") {
        (k * 13 + i % 1000) as f64 + noise
    } else if name.ends_with("_sum") {
        k as f64 * 3.217 + noise * 0.013
    } else {
        (i % 500) as f64 + noise * 0.5
    }
}
