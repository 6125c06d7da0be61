//! `/federate`: the newest sample of every series matching `match[]`, in the text exposition
//! format, with the configured external labels added.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgeprom_model::{Labels, is_stale_nan};

use crate::series::{READ_TIMED_OUT, match_sets_until, read_deadline};
use crate::{Api, ApiError, ErrorType, Params, now_ms};

/// `GET /federate`. A selection that outlasts `--query.timeout` is answered 503 with the reason
/// as plain text: federation's body is the text format, and Prometheus answers its federation
/// failures with `http.Error`, plain text too.
pub(crate) async fn handler(State(api): State<Arc<Api>>, p: Params) -> Result<Response, ApiError> {
    let deadline = read_deadline(&api, &p)?;
    let matches: Vec<String> = p.all("match[]").into_iter().map(str::to_string).collect();
    let external = api.config_status().external_labels;
    let lookback = api.options.lookback_delta.as_millis() as i64;
    // Parsing thousands of selectors takes seconds too: off the async threads, under the deadline.
    let body = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        let sets = match_sets_until(&api, &matches, deadline)?;
        let storage = &api.storage;
        let now = now_ms();
        let mut newest: std::collections::BTreeMap<Labels, (i64, f64)> = Default::default();
        for set in &sets {
            for s in storage.select_until(set, now - lookback, now, deadline)? {
                // Decoding a series costs far more than reading the clock.
                deadline.check()?;
                let last = s.samples().filter(|&(t, _)| t <= now).last();
                // A series whose newest sample is a stale marker has ended: not federated.
                if let Some((t, v)) = last
                    && !is_stale_nan(v)
                {
                    newest.insert(with_external(&s.labels, &external), (t, v));
                }
            }
        }
        let mut out = String::new();
        let mut current = String::new();
        for (labels, (t, v)) in &newest {
            let name = labels.metric_name();
            if name != current {
                let _ = writeln!(out, "# TYPE {name} untyped");
                current = name.to_string();
            }
            out.push_str(name);
            let rest: Vec<String> = labels
                .iter()
                .filter(|l| l.name != "__name__")
                .map(|l| format!("{}=\"{}\"", l.name, escape(&l.value)))
                .collect();
            if !rest.is_empty() {
                let _ = write!(out, "{{{}}}", rest.join(","));
            }
            let _ = writeln!(out, " {} {t}", exposition_value(*v));
        }
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let body = match body {
        Ok(body) => body,
        Err(e) if e.kind == ErrorType::Timeout => {
            // `http.Error` ends its text with a newline.
            let text = format!("{READ_TIMED_OUT}\n");
            return Ok((StatusCode::SERVICE_UNAVAILABLE, text).into_response());
        }
        Err(e) => return Err(e),
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// External labels apply where the series does not already have the label, as in Prometheus.
fn with_external(labels: &Labels, external: &Labels) -> Labels {
    if external.is_empty() {
        return labels.clone();
    }
    let mut b = labels.to_builder();
    for l in external.iter() {
        if !labels.contains(&l.name) {
            b.set(l.name.clone(), l.value.clone());
        }
    }
    b.build()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn exposition_value(v: f64) -> String {
    crate::format_value(v)
}
