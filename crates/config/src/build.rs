//! Turns the raw YAML shapes into validated [`Config`] values, applying Prometheus's defaults in
//! Prometheus's order (global first, then each scrape config against it).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use edgeprom_model::Labels;
use serde_saphyr::Spanned;

use crate::bytesize::ByteSize;
use crate::duration::Duration;
use crate::error::{ConfigError, ErrorKind, Position, parse_yaml, position_of};
use crate::file_sd::{self, FileSdConfig};
use crate::http::{Authorization, BasicAuth, HttpClientConfig, TlsConfig, TlsVersion};
use crate::raw::{self, RawConfig, RawGlobal, RawRelabel, RawScrape, RawScrapeFile};
use crate::relabel::{Action, Regex, RegexError, RelabelConfig};
use crate::{
    Config, DEFAULT_MAX_EXEMPLARS, ExemplarsConfig, GlobalConfig, ScrapeConfig, ScrapeProtocol,
    StorageConfig, TargetGroup,
};

/// Where errors point: the file, plus helpers to build located errors.
struct Ctx<'a> {
    file: &'a Path,
    dir: PathBuf,
}

impl Ctx<'_> {
    fn at<T>(
        &self,
        s: &Spanned<T>,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(
            self.file,
            position_of(&s.referenced),
            field,
            ErrorKind::Invalid,
            msg,
        )
    }

    fn nowhere(
        &self,
        pos: Option<Position>,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(self.file, pos, field, ErrorKind::Invalid, msg)
    }

    fn unsupported<T>(&self, s: &Spanned<T>, field: impl Into<String>, what: &str) -> ConfigError {
        ConfigError::new(
            self.file,
            position_of(&s.referenced),
            field,
            ErrorKind::Unsupported,
            format!("{what} is not supported yet by edgeprom"),
        )
    }

    /// Prometheus's `config.JoinDir`: absolute paths stay, relative ones join the config dir.
    fn join(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() || self.dir.as_os_str().is_empty() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }
}

fn dir_of(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Parses YAML and turns unknown-field errors on fields Prometheus has but edgeprom lacks into
/// "not supported yet" errors.
fn parse_raw<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &Path,
) -> Result<Option<T>, ConfigError> {
    parse_yaml::<T>(text, file).map_err(|mut e| {
        if let Some(name) = e
            .message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
            .map(|(n, _)| n.to_string())
            && raw::unsupported_field(&e.field, &name)
        {
            e.kind = ErrorKind::Unsupported;
            e.message = format!("`{name}` is not supported yet by edgeprom");
        }
        e
    })
}

pub(crate) fn parse_config(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let ctx = Ctx {
        file: path,
        dir: dir_of(path),
    };
    let raw: RawConfig = parse_raw(text, path)?.unwrap_or_default();
    let global = build_global(&ctx, raw.global.unwrap_or_default())?;

    let mut rule_files = Vec::new();
    for (i, rf) in raw.rule_files.unwrap_or_default().iter().enumerate() {
        let field = format!("rule_files[{i}]");
        if !file_sd::valid_star_pattern(&rf.value) {
            return Err(ctx.at(rf, field, format!("invalid rule file path {:?}", rf.value)));
        }
        let joined = ctx.join(&rf.value);
        let joined_str = joined.to_string_lossy().into_owned();
        let found = file_sd::glob_paths(&joined_str);
        // promtool's rule: a pattern without `*` names a file that must exist.
        if !rf.value.contains('*') && found.is_empty() {
            return Err(ConfigError::new(
                path,
                position_of(&rf.referenced),
                field,
                ErrorKind::MissingRuleFile,
                format!("{joined_str:?} does not point to an existing file"),
            ));
        }
        rule_files.extend(found);
    }

    let mut scrape_configs = Vec::new();
    // Job name -> where it was first defined, for Prometheus's duplicate messages.
    let mut seen: HashMap<String, Option<PathBuf>> = HashMap::new();
    for (i, sc) in raw
        .scrape_configs
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let field = format!("scrape_configs[{i}]");
        let built = build_scrape(&ctx, &global, sc, &field, &mut seen, None)?;
        scrape_configs.push(built);
    }

    for (i, sf) in raw
        .scrape_config_files
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("scrape_config_files[{i}]");
        if !file_sd::valid_star_pattern(&sf.value) {
            return Err(ctx.at(
                sf,
                field,
                format!("invalid scrape config file path {:?}", sf.value),
            ));
        }
        let joined = ctx.join(&sf.value).to_string_lossy().into_owned();
        for file in file_sd::glob_paths(&joined) {
            let text = std::fs::read_to_string(&file).map_err(|e| ConfigError::io(&file, &e))?;
            let sub = Ctx {
                file: &file,
                dir: dir_of(&file),
            };
            let raw: RawScrapeFile = parse_raw(&text, &file)?.unwrap_or_default();
            for (j, sc) in raw
                .scrape_configs
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                let f = format!("scrape_configs[{j}]");
                let built = build_scrape(&sub, &global, sc, &f, &mut seen, Some(&file))?;
                scrape_configs.push(built);
            }
        }
    }

    let alerting = build_alerting(&ctx, raw.alerting)?;

    let storage = StorageConfig {
        exemplars: raw
            .storage
            .and_then(|s| s.exemplars)
            .map(|e| ExemplarsConfig {
                max_exemplars: e.max_exemplars.unwrap_or(DEFAULT_MAX_EXEMPLARS),
            }),
    };

    let remote_write = build_remote_writes(&ctx, raw.remote_write.unwrap_or_default())?;

    Ok(Config {
        global,
        rule_files,
        scrape_configs,
        alerting,
        storage,
        remote_write,
        source: path.to_path_buf(),
        text: text.to_string(),
    })
}

/// The `remote_write` entries: Prometheus's defaults and checks (`RemoteWriteConfig.UnmarshalYAML`,
/// `QueueConfig.Validate`), then the name each queue gets and the duplicate checks of
/// `Config.UnmarshalYAML` and `remote.WriteStorage.ApplyConfig`.
fn build_remote_writes(
    ctx: &Ctx<'_>,
    list: Vec<Spanned<raw::RawRemoteWrite>>,
) -> Result<Vec<crate::RemoteWriteConfig>, ConfigError> {
    let mut out: Vec<crate::RemoteWriteConfig> = Vec::new();
    let mut names: HashMap<String, ()> = HashMap::new();
    let mut unnamed: Vec<String> = Vec::new();
    for (i, rw) in list.into_iter().enumerate() {
        let field = format!("remote_write[{i}]");
        let here = position_of(&rw.referenced);
        let explicit_name = rw.value.name.as_ref().map(|n| n.value.clone());
        let mut built = build_remote_write(ctx, rw.value, &field, here)?;
        match explicit_name.filter(|n| !n.is_empty()) {
            Some(name) => {
                if names.insert(name.clone(), ()).is_some() {
                    return Err(ctx.nowhere(
                        here,
                        format!("{field}.name"),
                        format!("found multiple remote write configs with job name {name:?}"),
                    ));
                }
                built.name = name;
            }
            None => {
                // Prometheus names an unnamed queue by a hash of its configuration, and refuses
                // two identical configurations.
                let digest = format!("{:x}", md5::compute(format!("{built:?}")));
                if unnamed.contains(&digest) {
                    return Err(ctx.nowhere(
                        here,
                        field,
                        format!(
                            "duplicate remote write configs are not allowed, found duplicate for URL: {}",
                            built.url
                        ),
                    ));
                }
                unnamed.push(digest.clone());
                built.name = digest[..6].to_string();
            }
        }
        out.push(built);
    }
    Ok(out)
}

fn build_remote_write(
    ctx: &Ctx<'_>,
    rw: raw::RawRemoteWrite,
    field: &str,
    here: Option<Position>,
) -> Result<crate::RemoteWriteConfig, ConfigError> {
    let f = |name: &str| format!("{field}.{name}");
    let url = match &rw.url {
        None => return Err(ctx.nowhere(here, f("url"), "url for remote_write is empty")),
        Some(u) if u.value.is_empty() => {
            return Err(ctx.at(u, f("url"), "url for remote_write is empty"));
        }
        Some(u) => {
            let scheme_ok = ["http://", "https://"]
                .iter()
                // Compared as bytes: the URL's `p.len()`th byte may be inside a character.
                .any(|p| {
                    u.value.len() > p.len()
                        && u.value.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
                });
            if !scheme_ok || u.value.chars().any(char::is_whitespace) {
                return Err(ctx.at(
                    u,
                    f("url"),
                    format!("{:?} is not an absolute http or https URL", u.value),
                ));
            }
            u.value.clone()
        }
    };
    for (flag, what) in [
        (&rw.send_native_histograms, "send_native_histograms"),
        (&rw.round_robin_dns, "round_robin_dns"),
    ] {
        if let Some(b) = flag.as_ref().filter(|b| b.value) {
            return Err(ctx.unsupported(b, f(what), &format!("`{what}: true`")));
        }
    }
    let mut headers = BTreeMap::new();
    if let Some(h) = &rw.headers {
        for (name, value) in &h.value {
            let lower = name.to_ascii_lowercase();
            if lower == "authorization" {
                return Err(ctx.at(
                    h,
                    f("headers"),
                    "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
                ));
            }
            if crate::RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err(ctx.at(
                    h,
                    f("headers"),
                    format!("{name} is a reserved header. It must not be changed"),
                ));
            }
            headers.insert(name.clone(), value.clone());
        }
    }
    let protobuf_message = match &rw.protobuf_message {
        None => crate::RemoteWriteMessage::default(),
        Some(m) => crate::RemoteWriteMessage::parse(&m.value).map_err(|e| {
            ctx.at(
                m,
                f("protobuf_message"),
                format!("invalid protobuf_message value: {e}"),
            )
        })?,
    };
    let queue_config = build_queue(ctx, rw.queue_config.as_ref(), &f("queue_config"))?;
    let mut metadata_config = crate::MetadataConfig::default();
    if let Some(m) = &rw.metadata_config {
        if let Some(send) = m.send {
            metadata_config.send = send;
        }
        if let Some(i) = m.send_interval {
            metadata_config.send_interval = i;
        }
        if let Some(n) = &m.max_samples_per_send {
            // Prometheus's `omitempty` int: zero means the default.
            if n.value < 0 {
                return Err(ctx.at(
                    n,
                    f("metadata_config.max_samples_per_send"),
                    "remote write metadata max_samples_per_send must not be negative",
                ));
            }
            if n.value > 0 {
                metadata_config.max_samples_per_send = n.value as usize;
            }
        }
    }
    let http = build_http(ctx, &HttpFields::of_remote_write(&rw), field, false)?;
    let write_relabel_configs = relabels(
        ctx,
        rw.write_relabel_configs.unwrap_or_default(),
        &f("write_relabel_configs"),
    )?;
    Ok(crate::RemoteWriteConfig {
        url,
        name: String::new(),
        remote_timeout: rw
            .remote_timeout
            .map_or(Duration::from_secs(30), |t| t.value),
        headers,
        write_relabel_configs,
        send_exemplars: rw.send_exemplars.unwrap_or(false),
        protobuf_message,
        http,
        queue_config,
        metadata_config,
    })
}

/// `queue_config` over Prometheus's defaults, then `QueueConfig.Validate`'s checks in its order.
fn build_queue(
    ctx: &Ctx<'_>,
    raw: Option<&Spanned<raw::RawQueue>>,
    field: &str,
) -> Result<crate::QueueConfig, ConfigError> {
    let mut q = crate::QueueConfig::default();
    let Some(spanned) = raw else {
        return Ok(q);
    };
    let r = &spanned.value;
    let fail = |msg: &str| Err(ctx.at(spanned, field, msg));
    let int = |v: Option<i64>, default: usize| v.map_or(default as i64, |v| v);
    let capacity = int(r.capacity, q.capacity);
    let max_shards = int(r.max_shards, q.max_shards);
    let min_shards = int(r.min_shards, q.min_shards);
    let max_samples = int(r.max_samples_per_send, q.max_samples_per_send);
    if let Some(d) = r.batch_send_deadline {
        q.batch_send_deadline = d;
    }
    if let Some(d) = r.min_backoff {
        q.min_backoff = d;
    }
    if let Some(d) = r.max_backoff {
        q.max_backoff = d;
    }
    if let Some(d) = r.sample_age_limit {
        q.sample_age_limit = d;
    }
    q.retry_on_http_429 = r.retry_on_http_429.unwrap_or(false);
    if max_shards <= 0 {
        return fail("remote write queue max_shards must be positive");
    }
    if min_shards <= 0 {
        return fail("remote write queue min_shards must be positive");
    }
    if min_shards > max_shards {
        return fail("remote write queue min_shards must not be greater than max_shards");
    }
    if max_samples <= 0 {
        return fail("remote write queue max_samples_per_send must be positive");
    }
    if capacity <= 0 {
        return fail("remote write queue capacity must be positive");
    }
    if q.max_backoff < q.min_backoff {
        return fail("remote write queue max_backoff must not be less than min_backoff");
    }
    q.capacity = capacity as usize;
    q.max_shards = max_shards as usize;
    q.min_shards = min_shards as usize;
    q.max_samples_per_send = max_samples as usize;
    Ok(q)
}

/// The `alerting` section: Prometheus's defaults (`http`, `/`, 10s, `v2`) and checks.
fn build_alerting(
    ctx: &Ctx<'_>,
    raw: Option<raw::RawAlerting>,
) -> Result<crate::AlertingConfig, ConfigError> {
    let mut alertmanagers = Vec::new();
    let list = raw.and_then(|r| r.alertmanagers).unwrap_or_default();
    for (i, am) in list.into_iter().enumerate() {
        let field = format!("alerting.alertmanagers[{i}]");
        let f = |name: &str| format!("{field}.{name}");
        let am = am.value;
        let scheme = match &am.scheme {
            None => "http".to_string(),
            Some(s) if s.value == "http" || s.value == "https" => s.value.clone(),
            Some(s) => {
                return Err(ctx.at(s, f("scheme"), format!("invalid scheme: {:?}", s.value)));
            }
        };
        let api_version = match &am.api_version {
            None => "v2".to_string(),
            Some(v) if v.value == "v2" => v.value.clone(),
            Some(v) => {
                return Err(ctx.at(
                    v,
                    f("api_version"),
                    format!(
                        "expected Alertmanager api version to be one of [v2] but got {}",
                        v.value
                    ),
                ));
            }
        };
        let timeout = nonzero(&am.timeout).map_or(Duration::from_secs(10), |t| t.value);
        let mut targets = Vec::new();
        for (j, tg) in am
            .static_configs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            for (k, t) in tg.targets.unwrap_or_default().into_iter().enumerate() {
                if t.value.contains('/') {
                    return Err(ctx.at(
                        &t,
                        format!("{field}.static_configs[{j}].targets[{k}]"),
                        format!("{:?} is not a valid hostname", t.value),
                    ));
                }
                targets.push(t.value);
            }
        }
        alertmanagers.push(crate::AlertmanagerConfig {
            scheme,
            path_prefix: am.path_prefix.unwrap_or_else(|| "/".into()),
            timeout,
            api_version,
            targets,
        });
    }
    Ok(crate::AlertingConfig { alertmanagers })
}

fn nonzero(d: &Option<Spanned<Duration>>) -> Option<&Spanned<Duration>> {
    // Prometheus treats an explicit zero exactly like an absent value.
    d.as_ref().filter(|s| !s.value.is_zero())
}

fn build_global(ctx: &Ctx<'_>, g: RawGlobal) -> Result<GlobalConfig, ConfigError> {
    let def = GlobalConfig::default();
    check_name_scheme(
        ctx,
        &g.metric_name_validation_scheme,
        &g.metric_name_escaping_scheme,
        "global",
    )?;
    if let Some(b) = g
        .convert_classic_histograms_to_nhcb
        .as_ref()
        .filter(|b| b.value)
    {
        return Err(ctx.unsupported(
            b,
            "global.convert_classic_histograms_to_nhcb",
            "converting classic histograms to native histograms",
        ));
    }

    let mut external = Vec::new();
    if let Some(el) = &g.external_labels {
        for (name, value) in &el.value {
            if name.is_empty() {
                return Err(ctx.at(
                    el,
                    "global.external_labels",
                    format!("{name:?} is not a valid label name"),
                ));
            }
            external.push((name.clone(), expand_env(value)));
        }
    }

    let scrape_interval = nonzero(&g.scrape_interval).map_or(def.scrape_interval, |s| s.value);
    let scrape_timeout = match nonzero(&g.scrape_timeout) {
        Some(t) if t.value > scrape_interval => {
            return Err(ctx.at(
                t,
                "global.scrape_timeout",
                "global scrape timeout greater than scrape interval",
            ));
        }
        Some(t) => t.value,
        None => def.scrape_timeout.min(scrape_interval),
    };
    let scrape_protocols = match &g.scrape_protocols {
        Some(p) => protocols(ctx, p, "global.scrape_protocols", " for global config")?,
        None => def.scrape_protocols,
    };
    Ok(GlobalConfig {
        scrape_interval,
        scrape_timeout,
        evaluation_interval: nonzero(&g.evaluation_interval)
            .map_or(def.evaluation_interval, |s| s.value),
        rule_query_offset: g.rule_query_offset.map_or(Duration::ZERO, |s| s.value),
        external_labels: Labels::from_pairs(external),
        scrape_protocols,
        body_size_limit: g.body_size_limit.map_or(0, |b: ByteSize| b.0),
        sample_limit: g.sample_limit.unwrap_or(0),
        label_limit: g.label_limit.unwrap_or(0),
        label_name_length_limit: g.label_name_length_limit.unwrap_or(0),
        label_value_length_limit: g.label_value_length_limit.unwrap_or(0),
        target_limit: g.target_limit.unwrap_or(0),
        keep_dropped_targets: g.keep_dropped_targets.unwrap_or(0),
    })
}

/// edgeprom implements Prometheus 3's defaults (UTF-8 names, no escaping); other schemes would
/// change what is accepted and are refused rather than ignored.
fn check_name_scheme(
    ctx: &Ctx<'_>,
    validation: &Option<Spanned<String>>,
    escaping: &Option<Spanned<String>>,
    field: &str,
) -> Result<(), ConfigError> {
    if let Some(v) = validation {
        match v.value.as_str() {
            "" | "utf8" => {}
            "legacy" => {
                return Err(ctx.unsupported(
                    v,
                    format!("{field}.metric_name_validation_scheme"),
                    "legacy metric name validation",
                ));
            }
            other => {
                return Err(ctx.at(
                    v,
                    format!("{field}.metric_name_validation_scheme"),
                    format!("unknown name validation method specified, must be either '', 'legacy' or 'utf8', got {other}"),
                ));
            }
        }
    }
    if let Some(e) = escaping {
        match e.value.as_str() {
            "" | "allow-utf-8" => {}
            "underscores" | "dots" | "values" => {
                return Err(ctx.unsupported(
                    e,
                    format!("{field}.metric_name_escaping_scheme"),
                    "metric name escaping",
                ));
            }
            other => {
                return Err(ctx.at(
                    e,
                    format!("{field}.metric_name_escaping_scheme"),
                    format!("unknown name escaping method specified, must be one of 'allow-utf-8', 'underscores', 'dots', or 'values', got {other:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// Go's `os.Expand` with Prometheus's mapping: `$$` → `$`, `$VAR`/`${VAR}` → environment (empty
/// when unset).
fn expand_env(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            out.push_str(&s[last..i]);
            let rest = &s[i + 1..];
            let (name, width) = shell_name(rest);
            match name {
                None if width > 0 => {} // Bad syntax such as `${}`: eaten, as Go does.
                None => out.push('$'),
                Some("$") => out.push('$'),
                Some(n) => out.push_str(&std::env::var(n).unwrap_or_default()),
            }
            i += 1 + width;
            last = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[last..]);
    out
}

/// Go's `getShellName`: returns the variable name after `$` and how many bytes it used.
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let b = s.as_bytes();
    let special =
        |c: u8| matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-') || c.is_ascii_digit();
    if b[0] == b'{' {
        if b.len() > 2 && special(b[1]) && b[2] == b'}' {
            return (Some(&s[1..2]), 3);
        }
        for (i, &c) in b.iter().enumerate().skip(1) {
            if c == b'}' {
                if i == 1 {
                    return (None, 2);
                }
                return (Some(&s[1..i]), i + 1);
            }
        }
        return (None, 1);
    }
    if special(b[0]) {
        return (Some(&s[0..1]), 1);
    }
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    if n == 0 {
        (None, 0)
    } else {
        (Some(&s[..n]), n)
    }
}

fn protocols(
    ctx: &Ctx<'_>,
    p: &Spanned<Vec<String>>,
    field: &str,
    suffix: &str,
) -> Result<Vec<ScrapeProtocol>, ConfigError> {
    if p.value.is_empty() {
        return Err(ctx.at(
            p,
            field,
            format!("scrape_protocols cannot be empty{suffix}"),
        ));
    }
    let mut out = Vec::new();
    let mut seen_lower = Vec::new();
    for name in &p.value {
        let lower = name.to_lowercase();
        if seen_lower.contains(&lower) {
            return Err(ctx.at(
                p,
                field,
                format!(
                    "duplicated protocol in scrape_protocols, got [{}]{suffix}",
                    p.value.join(" ")
                ),
            ));
        }
        seen_lower.push(lower);
        let proto = ScrapeProtocol::parse(name)
            .map_err(|e| ctx.at(p, field, format!("scrape_protocols: {e}{suffix}")))?;
        out.push(proto);
    }
    Ok(out)
}

fn build_scrape(
    ctx: &Ctx<'_>,
    global: &GlobalConfig,
    spanned: Spanned<RawScrape>,
    field: &str,
    seen: &mut HashMap<String, Option<PathBuf>>,
    from_file: Option<&Path>,
) -> Result<ScrapeConfig, ConfigError> {
    let here = position_of(&spanned.referenced);
    let sc = spanned.value;
    let job_name = match &sc.job_name {
        Some(j) if !j.value.is_empty() => j.value.clone(),
        Some(j) => return Err(ctx.at(j, format!("{field}.job_name"), "job_name is empty")),
        None => return Err(ctx.nowhere(here, format!("{field}.job_name"), "job_name is empty")),
    };
    let f = |name: &str| format!("{field}.{name}");
    let job = |msg: &str| format!("{msg} for scrape config with job name {job_name:?}");

    // Duplicate check first: Prometheus reports it once the earlier job validated.
    if let Some(first) = seen.get(&job_name) {
        let msg = match (from_file, first) {
            (None, _) => format!("found multiple scrape configs with job name {job_name:?}"),
            (Some(_), None) => format!(
                "found multiple scrape configs with job name {job_name:?}, first found in main config file"
            ),
            (Some(_), Some(p)) => format!(
                "found multiple scrape configs with job name {job_name:?}, first found in {:?}",
                absolute(p).to_string_lossy()
            ),
        };
        let pos = sc
            .job_name
            .as_ref()
            .and_then(|j| position_of(&j.referenced));
        return Err(ctx.nowhere(pos, f("job_name"), msg));
    }
    seen.insert(job_name.clone(), from_file.map(Path::to_path_buf));

    check_name_scheme(
        ctx,
        &sc.metric_name_validation_scheme,
        &sc.metric_name_escaping_scheme,
        field,
    )?;
    if let Some(b) = sc
        .convert_classic_histograms_to_nhcb
        .as_ref()
        .filter(|b| b.value)
    {
        return Err(ctx.unsupported(
            b,
            f("convert_classic_histograms_to_nhcb"),
            "converting classic histograms to native histograms",
        ));
    }
    // `always_scrape_classic_histograms` is accepted either way: without native histogram
    // support every classic histogram is scraped anyway, which is what `true` asks for.

    let scheme = match &sc.scheme {
        None => "http".to_string(),
        Some(s) if s.value == "http" || s.value == "https" => s.value.clone(),
        Some(s) => return Err(ctx.at(s, f("scheme"), format!("invalid scheme: {:?}", s.value))),
    };

    let scrape_interval = nonzero(&sc.scrape_interval).map_or(global.scrape_interval, |s| s.value);
    let scrape_timeout = match nonzero(&sc.scrape_timeout) {
        Some(t) if t.value > scrape_interval => {
            return Err(ctx.at(
                t,
                f("scrape_timeout"),
                job("scrape timeout greater than scrape interval"),
            ));
        }
        Some(t) => t.value,
        None => global.scrape_timeout.min(scrape_interval),
    };
    let scrape_protocols = match &sc.scrape_protocols {
        Some(p) => protocols(ctx, p, &f("scrape_protocols"), &job(""))?,
        None => global.scrape_protocols.clone(),
    };
    let fallback_scrape_protocol = match &sc.fallback_scrape_protocol {
        None => None,
        Some(p) if p.value.is_empty() => None,
        Some(p) => Some(ScrapeProtocol::parse(&p.value).map_err(|e| {
            ctx.at(
                p,
                f("fallback_scrape_protocol"),
                format!("invalid fallback_scrape_protocol for scrape config with job name {job_name:?}: {e}"),
            )
        })?),
    };

    let http = build_http(ctx, &HttpFields::of_scrape(&sc), field, true)?;

    let relabel_configs = relabels(
        ctx,
        sc.relabel_configs.unwrap_or_default(),
        &f("relabel_configs"),
    )?;
    let metric_relabel_configs = relabels(
        ctx,
        sc.metric_relabel_configs.unwrap_or_default(),
        &f("metric_relabel_configs"),
    )?;

    let mut static_configs = Vec::new();
    for (i, tg) in sc
        .static_configs
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let gf = format!("{field}.static_configs[{i}]");
        let mut labels = BTreeMap::new();
        if let Some(l) = &tg.labels {
            for (k, v) in &l.value {
                if k.is_empty() {
                    return Err(ctx.at(
                        l,
                        format!("{gf}.labels"),
                        format!("{k:?} is not a valid label name"),
                    ));
                }
                labels.insert(k.clone(), v.clone());
            }
        }
        let mut targets = Vec::new();
        for (j, t) in tg.targets.unwrap_or_default().into_iter().enumerate() {
            // Prometheus catches URLs pasted as targets, unless relabelling may fix them up.
            if relabel_configs.is_empty() && t.value.contains('/') {
                return Err(ctx.at(
                    &t,
                    format!("{gf}.targets[{j}]"),
                    format!("{:?} is not a valid hostname", t.value),
                ));
            }
            targets.push(t.value);
        }
        static_configs.push(TargetGroup {
            targets,
            labels,
            source: i.to_string(),
        });
    }

    let mut file_sd_configs = Vec::new();
    for (i, fs) in sc
        .file_sd_configs
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let ff = format!("{field}.file_sd_configs[{i}]");
        let fs_pos = position_of(&fs.referenced);
        let files = fs.value.files.unwrap_or_default();
        if files.is_empty() {
            return Err(ctx.nowhere(
                fs_pos,
                format!("{ff}.files"),
                "file service discovery config must contain at least one path name",
            ));
        }
        let mut patterns = Vec::new();
        for (j, name) in files.iter().enumerate() {
            if !file_sd::valid_pattern(&name.value) {
                return Err(ctx.at(
                    name,
                    format!("{ff}.files[{j}]"),
                    format!("path name {:?} is not valid for file discovery", name.value),
                ));
            }
            patterns.push(ctx.join(&name.value).to_string_lossy().into_owned());
        }
        file_sd_configs.push(FileSdConfig {
            files: patterns,
            refresh_interval: fs
                .value
                .refresh_interval
                .unwrap_or(FileSdConfig::default().refresh_interval),
        });
    }

    Ok(ScrapeConfig {
        job_name,
        scrape_interval,
        scrape_timeout,
        metrics_path: sc.metrics_path.unwrap_or_else(|| "/metrics".to_string()),
        scheme,
        params: sc.params.unwrap_or_default(),
        honor_labels: sc.honor_labels.unwrap_or(false),
        honor_timestamps: sc.honor_timestamps.unwrap_or(true),
        track_timestamps_staleness: sc.track_timestamps_staleness.unwrap_or(false),
        static_configs,
        file_sd_configs,
        relabel_configs,
        metric_relabel_configs,
        // Zero means "inherit the global value", as in Prometheus's Validate.
        sample_limit: sc
            .sample_limit
            .filter(|v| *v != 0)
            .unwrap_or(global.sample_limit),
        label_limit: sc
            .label_limit
            .filter(|v| *v != 0)
            .unwrap_or(global.label_limit),
        label_name_length_limit: sc
            .label_name_length_limit
            .filter(|v| *v != 0)
            .unwrap_or(global.label_name_length_limit),
        label_value_length_limit: sc
            .label_value_length_limit
            .filter(|v| *v != 0)
            .unwrap_or(global.label_value_length_limit),
        body_size_limit: sc
            .body_size_limit
            .map(|b| b.0)
            .filter(|v| *v != 0)
            .unwrap_or(global.body_size_limit),
        target_limit: sc
            .target_limit
            .filter(|v| *v != 0)
            .unwrap_or(global.target_limit),
        keep_dropped_targets: sc
            .keep_dropped_targets
            .filter(|v| *v != 0)
            .unwrap_or(global.keep_dropped_targets),
        scrape_protocols,
        fallback_scrape_protocol,
        enable_compression: sc.enable_compression.unwrap_or(true),
        http,
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Reads a secret file at load; Prometheus trims surrounding whitespace from such files.
fn read_secret(
    ctx: &Ctx<'_>,
    s: &Spanned<String>,
    field: String,
) -> Result<(PathBuf, String), ConfigError> {
    let path = ctx.join(&s.value);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok((path, t.trim().to_string())),
        Err(e) => Err(ctx.at(s, field, format!("unable to read {}: {e}", path.display()))),
    }
}

/// The inlined HTTP client fields of a scrape config or a remote-write entry, borrowed.
pub(crate) struct HttpFields<'a> {
    basic_auth: &'a Option<Spanned<raw::RawBasicAuth>>,
    authorization: &'a Option<Spanned<raw::RawAuthorization>>,
    bearer_token: &'a Option<Spanned<String>>,
    bearer_token_file: &'a Option<Spanned<String>>,
    tls_config: &'a Option<raw::RawTls>,
    follow_redirects: Option<bool>,
    enable_http2: Option<bool>,
    proxy_url: &'a Option<Spanned<String>>,
}

impl<'a> HttpFields<'a> {
    fn of_scrape(sc: &'a RawScrape) -> HttpFields<'a> {
        HttpFields {
            basic_auth: &sc.basic_auth,
            authorization: &sc.authorization,
            bearer_token: &sc.bearer_token,
            bearer_token_file: &sc.bearer_token_file,
            tls_config: &sc.tls_config,
            follow_redirects: sc.follow_redirects,
            enable_http2: sc.enable_http2,
            proxy_url: &sc.proxy_url,
        }
    }

    fn of_remote_write(rw: &'a raw::RawRemoteWrite) -> HttpFields<'a> {
        HttpFields {
            basic_auth: &rw.basic_auth,
            authorization: &rw.authorization,
            bearer_token: &rw.bearer_token,
            bearer_token_file: &rw.bearer_token_file,
            tls_config: &rw.tls_config,
            follow_redirects: rw.follow_redirects,
            enable_http2: rw.enable_http2,
            proxy_url: &rw.proxy_url,
        }
    }
}

/// `default_http2`: true for scrapes, false for remote write (Prometheus's
/// `DefaultRemoteWriteHTTPClientConfig`).
fn build_http(
    ctx: &Ctx<'_>,
    sc: &HttpFields<'_>,
    field: &str,
    default_http2: bool,
) -> Result<HttpClientConfig, ConfigError> {
    let f = |name: &str| format!("{field}.{name}");
    let mut http = HttpClientConfig::default();
    let bearer = sc.bearer_token.as_ref().filter(|b| !b.value.is_empty());
    let bearer_file = sc
        .bearer_token_file
        .as_ref()
        .filter(|b| !b.value.is_empty());
    if let (Some(_), Some(b)) = (bearer, bearer_file) {
        return Err(ctx.at(
            b,
            f("bearer_token_file"),
            "at most one of bearer_token & bearer_token_file must be configured",
        ));
    }
    if let (Some(ba), true) = (sc.basic_auth, bearer.is_some() || bearer_file.is_some()) {
        return Err(ctx.at(ba, f("basic_auth"), "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"));
    }

    if let Some(ba) = sc.basic_auth {
        let v = &ba.value;
        let bf = f("basic_auth");
        if v.username.as_ref().is_some_and(|u| !u.is_empty()) && v.username_file.is_some() {
            return Err(ctx.at(ba, bf, "at most one of basic_auth username, username_file & username_ref must be configured"));
        }
        if v.password.as_ref().is_some_and(|p| !p.is_empty()) && v.password_file.is_some() {
            return Err(ctx.at(ba, bf, "at most one of basic_auth password, password_file & password_ref must be configured"));
        }
        let username = match &v.username_file {
            Some(uf) => read_secret(ctx, uf, format!("{bf}.username_file"))?.1,
            None => v.username.clone().unwrap_or_default(),
        };
        let (password, password_file) = match &v.password_file {
            Some(pf) => {
                let (p, secret) = read_secret(ctx, pf, format!("{bf}.password_file"))?;
                (Some(secret), Some(p))
            }
            None => (v.password.clone(), None),
        };
        http.basic_auth = Some(BasicAuth {
            username,
            password,
            password_file,
        });
    }

    if let Some(a) = sc.authorization {
        let af = f("authorization");
        if bearer.is_some() || bearer_file.is_some() {
            return Err(ctx.at(
                a,
                af,
                "authorization is not compatible with bearer_token & bearer_token_file",
            ));
        }
        let v = &a.value;
        if v.credentials.as_ref().is_some_and(|c| !c.is_empty()) && v.credentials_file.is_some() {
            return Err(ctx.at(
                a,
                af,
                "at most one of authorization credentials & credentials_file must be configured",
            ));
        }
        let kind = v
            .kind
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .unwrap_or("Bearer")
            .to_string();
        if kind.eq_ignore_ascii_case("basic") {
            return Err(ctx.at(
                a,
                af,
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
            ));
        }
        if sc.basic_auth.is_some() {
            return Err(ctx.at(
                a,
                af,
                "at most one of basic_auth, oauth2 & authorization must be configured",
            ));
        }
        let (credentials, credentials_file) = match &v.credentials_file {
            Some(cf) => {
                let (p, secret) = read_secret(ctx, cf, format!("{af}.credentials_file"))?;
                (Some(secret), Some(p))
            }
            None => (v.credentials.clone(), None),
        };
        http.authorization = Some(Authorization {
            kind,
            credentials,
            credentials_file,
        });
    } else if let Some(b) = bearer {
        http.authorization = Some(Authorization {
            kind: "Bearer".to_string(),
            credentials: Some(b.value.clone()),
            credentials_file: None,
        });
    } else if let Some(b) = bearer_file {
        let (p, secret) = read_secret(ctx, b, f("bearer_token_file"))?;
        http.authorization = Some(Authorization {
            kind: "Bearer".to_string(),
            credentials: Some(secret),
            credentials_file: Some(p),
        });
    }

    if let Some(t) = sc.tls_config {
        let tf = f("tls_config");
        let version =
            |v: &Option<Spanned<String>>, name: &str| -> Result<Option<TlsVersion>, ConfigError> {
                match v {
                    None => Ok(None),
                    Some(s) if s.value.is_empty() => Ok(None),
                    Some(s) => TlsVersion::parse(&s.value)
                        .map(Some)
                        .map_err(|e| ctx.at(s, format!("{tf}.{name}"), e)),
                }
            };
        fn nonempty(s: &Option<String>) -> Option<&String> {
            s.as_ref().filter(|v| !v.is_empty())
        }
        http.tls_config = TlsConfig {
            ca_file: nonempty(&t.ca_file).map(|p| ctx.join(p)),
            cert_file: nonempty(&t.cert_file).map(|p| ctx.join(p)),
            key_file: nonempty(&t.key_file).map(|p| ctx.join(p)),
            server_name: nonempty(&t.server_name).cloned(),
            insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
            min_version: version(&t.min_version, "min_version")?,
            max_version: version(&t.max_version, "max_version")?,
        };
        // common's TLSConfig.Validate: a certificate needs its key and vice versa.
        if http.tls_config.cert_file.is_some() != http.tls_config.key_file.is_some() {
            let msg = if http.tls_config.cert_file.is_some() {
                "exactly one of key or key_file must be configured when a client certificate is configured"
            } else {
                "exactly one of cert or cert_file must be configured when a client key is configured"
            };
            return Err(ctx.nowhere(None, tf, msg));
        }
    }
    http.follow_redirects = sc.follow_redirects.unwrap_or(true);
    http.enable_http2 = sc.enable_http2.unwrap_or(default_http2);
    http.proxy_url = sc
        .proxy_url
        .as_ref()
        .map(|p| p.value.clone())
        .filter(|p| !p.is_empty());
    Ok(http)
}

fn relabels(
    ctx: &Ctx<'_>,
    raws: Vec<Spanned<RawRelabel>>,
    field: &str,
) -> Result<Vec<RelabelConfig>, ConfigError> {
    raws.into_iter()
        .enumerate()
        .map(|(i, r)| relabel_config(ctx, r, &format!("{field}[{i}]")))
        .collect()
}

fn relabel_config(
    ctx: &Ctx<'_>,
    spanned: Spanned<RawRelabel>,
    field: &str,
) -> Result<RelabelConfig, ConfigError> {
    let here = position_of(&spanned.referenced);
    let r = spanned.value;
    let regex = match &r.regex {
        None => Regex::default(),
        Some(s) => Regex::new(&s.value).map_err(|e| {
            let message = match e {
                // Already Go's whole message.
                RegexError::GoLimit(e) => e.to_string(),
                RegexError::Compile(e) => {
                    format!("error parsing regexp: {}", one_line(&e.to_string()))
                }
            };
            ctx.at(s, format!("{field}.regex"), message)
        })?,
    };
    let cfg = RelabelConfig {
        source_labels: r.source_labels.unwrap_or_default(),
        separator: r.separator.unwrap_or_else(|| ";".to_string()),
        regex,
        modulus: r.modulus.unwrap_or(0),
        target_label: r.target_label.unwrap_or_default(),
        replacement: r.replacement.unwrap_or_else(|| "$1".to_string()),
        action: r.action.unwrap_or(Action::Replace),
    };
    if let Some(bad) = cfg.source_labels.iter().find(|n| n.is_empty()) {
        return Err(ctx.nowhere(
            here,
            format!("{field}.source_labels"),
            format!("{bad:?} is not a valid label name"),
        ));
    }
    cfg.validate(r.regex.is_some())
        .map_err(|e| ctx.nowhere(here, field, e))?;
    Ok(cfg)
}

/// The regex crate's messages span lines with a caret diagram; one line reads better in
/// `FILE:LINE:COL:` output.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion_follows_go_os_expand() {
        // SAFETY-free: set_var is unsafe in edition 2024; use a variable that is always set.
        let home = std::env::var("PATH").unwrap_or_default();
        assert_eq!(expand_env("a$PATH"), format!("a{home}"));
        assert_eq!(expand_env("a${PATH}b"), format!("a{home}b"));
        assert_eq!(expand_env("cost $$5"), "cost $5");
        assert_eq!(expand_env("x$"), "x$");
        assert_eq!(expand_env("x${}y"), "xy");
        assert_eq!(expand_env("x$-y"), "xy");
        assert_eq!(expand_env("x$ y"), "x$ y");
        assert_eq!(expand_env("$EDGEPROM_SURELY_UNSET_VAR"), "");
    }
}
