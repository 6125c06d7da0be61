use std::collections::BTreeMap;
use std::time::Duration;

use edgeprom_config::{ScrapeConfig, relabel};
use edgeprom_model::{Labels, LabelsBuilder, names};

/// A scrape target after discovery and target relabelling.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The job (scrape config) the target belongs to.
    pub job: String,
    /// The labels attached to every sample scraped from it (no `__`-prefixed labels).
    pub labels: Labels,
    /// The labels as discovered, before relabelling (what `/api/v1/targets` shows).
    pub discovered: Labels,
    /// The URL scraped.
    pub url: String,
    /// How often to scrape (`__scrape_interval__` after relabelling).
    pub interval: Duration,
    /// Per-scrape timeout (`__scrape_timeout__` after relabelling).
    pub timeout: Duration,
}

impl Target {
    /// The identity the scrape manager keeps a loop under: labels plus URL, as Prometheus hashes them.
    pub fn key(&self) -> String {
        format!("{}|{}", self.labels, self.url)
    }

    /// A hash of the target, used to spread scrape start offsets over the interval.
    pub fn hash(&self) -> u64 {
        let mut b = self.labels.to_builder();
        b.set("__edgeprom_url__", self.url.clone());
        b.build().stable_hash()
    }
}

/// Why a discovered target cannot be scraped; it is shown as dropped with this reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    /// No `__address__` after relabelling.
    #[error("no address")]
    NoAddress,
    /// The address has a scheme or path in it.
    #[error("invalid address {0:?}: it must be host:port")]
    BadAddress(String),
    /// `__scrape_interval__` or `__scrape_timeout__` does not parse or is inconsistent.
    #[error("{0}")]
    BadTiming(String),
    /// A label name is not valid.
    #[error("invalid label name {0:?}")]
    BadLabelName(String),
}

/// Builds the target for one discovered address, as Prometheus's `PopulateLabels` does: group and
/// target labels, then the job's defaults (`job`, `__scheme__`, `__metrics_path__`, interval, timeout,
/// `__param_*`), then `relabel_configs`, then `instance` defaulting to the address.
///
/// Returns `Ok(None)` when relabelling drops the target.
pub fn populate_labels(
    cfg: &ScrapeConfig,
    group_labels: &BTreeMap<String, String>,
    address: &str,
) -> Result<(Option<Target>, Labels), TargetError> {
    let mut b = LabelsBuilder::new();
    for (k, v) in group_labels {
        b.set(k.clone(), v.clone());
    }
    b.set(names::ADDRESS, address);
    let defaults = [
        (names::JOB, cfg.job_name.clone()),
        (names::SCHEME, cfg.scheme.clone()),
        (names::METRICS_PATH, cfg.metrics_path.clone()),
        (names::SCRAPE_INTERVAL, cfg.scrape_interval.to_string()),
        (names::SCRAPE_TIMEOUT, cfg.scrape_timeout.to_string()),
    ];
    for (name, value) in defaults {
        if b.get(name).is_none() {
            b.set(name, value);
        }
    }
    for (param, values) in &cfg.params {
        let name = format!("{}{param}", names::PARAM_PREFIX);
        if let (None, Some(first)) = (b.get(&name), values.first()) {
            b.set(name, first.clone());
        }
    }
    let discovered = b.clone().build();

    let Some(relabelled) = relabel::process(&discovered, &cfg.relabel_configs) else {
        return Ok((None, discovered));
    };

    let address = relabelled.get(names::ADDRESS).unwrap_or("");
    if address.is_empty() {
        return Err(TargetError::NoAddress);
    }
    if address.contains('/') {
        return Err(TargetError::BadAddress(address.to_string()));
    }
    let interval = timing(&relabelled, names::SCRAPE_INTERVAL)?;
    let timeout = timing(&relabelled, names::SCRAPE_TIMEOUT)?;
    if interval.is_zero() {
        return Err(TargetError::BadTiming("scrape interval cannot be 0".into()));
    }
    if timeout.is_zero() {
        return Err(TargetError::BadTiming("scrape timeout cannot be 0".into()));
    }
    if timeout > interval {
        return Err(TargetError::BadTiming(format!(
            "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
            timeout, interval
        )));
    }

    let url = target_url(cfg, &relabelled);
    let mut public = LabelsBuilder::new();
    for l in &relabelled {
        if l.name.starts_with(names::RESERVED_PREFIX) {
            continue;
        }
        if !valid_label_name(&l.name) {
            return Err(TargetError::BadLabelName(l.name.clone()));
        }
        public.set(l.name.clone(), l.value.clone());
    }
    if public.get(names::INSTANCE).is_none() {
        public.set(names::INSTANCE, address);
    }
    Ok((
        Some(Target {
            job: cfg.job_name.clone(),
            labels: public.build(),
            discovered: discovered.clone(),
            url,
            interval,
            timeout,
        }),
        discovered,
    ))
}

fn timing(labels: &Labels, name: &str) -> Result<Duration, TargetError> {
    let raw = labels.get(name).unwrap_or("");
    edgeprom_config::Duration::parse(raw)
        .map(|d| d.as_std())
        .map_err(|e| TargetError::BadTiming(format!("error parsing {name} {raw:?}: {e}")))
}

/// `scheme://address/path?params`, where `__param_<name>` labels replace the first value of that
/// parameter, as Prometheus builds the URL.
fn target_url(cfg: &ScrapeConfig, labels: &Labels) -> String {
    let mut params: BTreeMap<String, Vec<String>> = cfg.params.clone();
    for l in labels {
        if let Some(name) = l.name.strip_prefix(names::PARAM_PREFIX) {
            let values = params.entry(name.to_string()).or_default();
            match values.first_mut() {
                Some(first) => *first = l.value.clone(),
                None => values.push(l.value.clone()),
            }
        }
    }
    let scheme = labels.get(names::SCHEME).unwrap_or("http");
    let address = labels.get(names::ADDRESS).unwrap_or("");
    let path = labels.get(names::METRICS_PATH).unwrap_or("/metrics");
    let mut url = format!("{scheme}://{address}{path}");
    let mut sep = '?';
    for (name, values) in &params {
        for v in values {
            url.push(sep);
            sep = '&';
            url.push_str(&query_escape(name));
            url.push('=');
            url.push_str(&query_escape(v));
        }
    }
    url
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Prometheus 3 accepts any UTF-8 label name; it still refuses empty names.
fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeprom_config::Config;
    use std::path::Path;

    fn job(yaml: &str) -> ScrapeConfig {
        let cfg = Config::parse(yaml, Path::new("test.yml")).expect("config parses");
        cfg.scrape_configs.into_iter().next().expect("one job")
    }

    #[test]
    fn defaults_give_job_instance_and_url() {
        let cfg = job(
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 2s\n    static_configs:\n      - targets: ['h:1']\n",
        );
        let (t, _) = populate_labels(&cfg, &BTreeMap::new(), "h:1").unwrap();
        let t = t.unwrap();
        assert_eq!(
            t.labels,
            Labels::from_pairs([("instance", "h:1"), ("job", "a")])
        );
        assert_eq!(t.url, "http://h:1/metrics");
        assert_eq!(t.interval, Duration::from_secs(2));
        assert_eq!(t.timeout, Duration::from_secs(2));
    }

    #[test]
    fn relabel_sets_instance_like_the_xpu_config() {
        let cfg = job(
            "scrape_configs:\n  - job_name: x\n    scrape_interval: 5s\n    scrape_timeout: 5s\n    relabel_configs:\n      - source_labels: [__address__]\n        target_label: instance\n        replacement: 'xpu-host'\n",
        );
        let (t, discovered) = populate_labels(&cfg, &BTreeMap::new(), "host:9966").unwrap();
        let t = t.unwrap();
        assert_eq!(t.labels.get("instance"), Some("xpu-host"));
        assert_eq!(t.url, "http://host:9966/metrics");
        assert_eq!(discovered.get("__address__"), Some("host:9966"));
    }

    #[test]
    fn params_and_param_labels_build_the_query() {
        let cfg = job(
            "scrape_configs:\n  - job_name: a\n    metrics_path: /probe\n    params:\n      module: [http_2xx, x]\n    relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n",
        );
        let (t, _) = populate_labels(&cfg, &BTreeMap::new(), "h:1").unwrap();
        assert_eq!(
            t.unwrap().url,
            "http://h:1/probe?module=http_2xx&module=x&target=h%3A1"
        );
    }

    #[test]
    fn dropped_targets_return_none_and_bad_addresses_error() {
        let cfg = job(
            "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: drop\n        source_labels: [__address__]\n        regex: 'h:.*'\n",
        );
        assert!(
            populate_labels(&cfg, &BTreeMap::new(), "h:1")
                .unwrap()
                .0
                .is_none()
        );
        let cfg = job("scrape_configs:\n  - job_name: a\n");
        assert_eq!(
            populate_labels(&cfg, &BTreeMap::new(), "http://h:1").unwrap_err(),
            TargetError::BadAddress("http://h:1".into())
        );
    }

    #[test]
    fn group_labels_are_kept_and_meta_labels_removed() {
        let cfg = job("scrape_configs:\n  - job_name: a\n");
        let group = BTreeMap::from([
            ("env".to_string(), "prod".to_string()),
            ("__meta_filepath".to_string(), "/x.json".to_string()),
        ]);
        let (t, _) = populate_labels(&cfg, &group, "h:1").unwrap();
        let t = t.unwrap();
        assert_eq!(t.labels.get("env"), Some("prod"));
        assert!(!t.labels.contains("__meta_filepath"));
    }
}
