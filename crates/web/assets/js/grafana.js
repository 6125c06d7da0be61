// Grafana's rules for Prometheus panels, as its Prometheus datasource applies them (the same
// rules tests/dashboards_e2e.rs plays in Rust): template variables, `$__interval`,
// `$__rate_interval`, `$__range`, step computation and alignment, variable queries.

import * as api from './api.js';

// The datasource sets no `timeInterval`, so Grafana assumes a 15 s scrape interval: the floor
// of `$__interval` and the base of `$__rate_interval`.
export const SCRAPE_MS = 15000;
// Grafana never asks for more points than this per series ("safe resolution").
const SAFE_RESOLUTION = 11000;

const UNIT_MS = {ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3, y: 31536000e3};

// `15s`, `5m`, `1h`, `2d`, `100ms`, `>10s` (Grafana's "at least" prefix); null if unreadable.
export function durationMs(s) {
  const m = /^>?\s*(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$/.exec(String(s || '').trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]] : null;
}

// A time of the range picker: `now`, `now-30m`, `now-1d/d` (rounding ignored) or epoch ms.
export function parseTime(s, now) {
  if (/^\d+$/.test(s)) return Number(s);
  const m = /^now(?:-(\w+))?/.exec(s || 'now');
  if (!m) return now;
  return now - (m[1] ? durationMs(m[1]) ?? 3600e3 : 0);
}

// Grafana's interval rounding: a calculated interval snaps to the next "nice" value.
const ROUNDING = [
  [10, 1], [15, 10], [35, 20], [75, 50], [150, 100], [350, 200], [750, 500], [1500, 1000],
  [3500, 2000], [7500, 5000], [12500, 10000], [17500, 15000], [25000, 20000], [45000, 30000],
  [90000, 60000], [210000, 120000], [450000, 300000], [750000, 600000], [1050000, 900000],
  [1500000, 1200000], [2700000, 1800000], [5400000, 3600000], [9000000, 7200000],
];

export function roundInterval(ms) {
  for (const [limit, v] of ROUNDING) if (ms <= limit) return v;
  return Math.floor(ms / 3600000) * 3600000;
}

// Grafana's duration text: the largest whole unit (`15s`, `1m`, `90s`, `1500ms`).
export function formatDuration(ms) {
  for (const [u, size] of [['d', 86400e3], ['h', 3600e3], ['m', 60e3], ['s', 1e3]]) {
    if (ms >= size && ms % size === 0) return `${ms / size}${u}`;
  }
  return `${ms}ms`;
}

// `$__rate_interval`: at least four scrape intervals, and one scrape interval more than the step.
export const rateInterval = (intervalMs) => Math.max(intervalMs + SCRAPE_MS, 4 * SCRAPE_MS);

// The step and built-in values of one query: maxDataPoints (default: the panel's width in
// pixels) over the range, floored by the min interval, rounded, capped by the safe resolution;
// range queries get start and end floored to the step.
export function timing({fromMs, toMs, maxDataPoints, minInterval}) {
  const rangeMs = toMs - fromMs;
  const min = (minInterval && !minInterval.includes('$') && durationMs(minInterval)) || SCRAPE_MS;
  const calculated = rangeMs / Math.max(maxDataPoints, 1);
  const interval = calculated < min ? min : roundInterval(calculated);
  const stepMs = Math.max(interval, Math.floor(rangeMs / SAFE_RESOLUTION), 1);
  return {
    stepMs,
    rateMs: rateInterval(stepMs),
    rangeMs,
    startMs: Math.floor(fromMs / stepMs) * stepMs,
    endMs: Math.floor(toMs / stepMs) * stepMs,
  };
}

// Grafana's built-in variables; the longer names first (`$__interval_ms` before `$__interval`).
export function builtins(expr, t) {
  const rangeS = Math.round(t.rangeMs / 1000);
  const values = [
    ['__rate_interval_ms', String(t.rateMs)],
    ['__rate_interval', formatDuration(t.rateMs)],
    ['__interval_ms', String(t.stepMs)],
    ['__interval', formatDuration(t.stepMs)],
    ['__range_ms', String(t.rangeMs)],
    ['__range_s', String(rangeS)],
    ['__range', `${rangeS}s`],
  ];
  let e = expr;
  for (const [name, v] of values) e = e.split(`\${${name}}`).join(v).split(`$${name}`).join(v);
  return e;
}

// Escapes a value for a PromQL regex matcher inside a double-quoted string, as Grafana's
// Prometheus datasource does for multi-value and include-all variables.
export const regexEscape = (v) => v.replace(/[\\^$*+?.()|{}[\]']/g, (c) => `\\\\${c}`);
const plainEscape = (v) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');

// The values a variable stands for now: every option (or the custom all value) under "All".
export function selectedValues(v) {
  if (v.includeAll && v.current.includes('$__all')) return v.allValue != null ? null : v.options;
  return v.current;
}

// The text `$name` becomes in a PromQL expression (`format` from `${name:format}`).
function renderVariable(v, format) {
  const values = selectedValues(v);
  if (values === null) return v.allValue; // a custom all value is used verbatim
  const regex = () => (values.length === 1 ? regexEscape(values[0]) : `(${values.map(regexEscape).join('|')})`);
  switch (format) {
    case 'raw': case 'csv': return values.join(',');
    case 'pipe': return values.join('|');
    case 'regex': return regex();
    default: return !v.multi && !v.includeAll ? plainEscape(values[0] ?? '') : regex();
  }
}

// Replaces `$name`, `${name}`, `${name:format}` and `[[name]]` of the dashboard's variables;
// anything else (Grafana's `$__…`) stays for `builtins`.
export function interpolate(expr, vars) {
  return expr.replace(/\$\{([\w]+)(?::([\w]+))?\}|\[\[([\w]+)(?::([\w]+))?\]\]|\$([A-Za-z_]\w*)/g,
    (all, n1, f1, n2, f2, n3) => {
      const v = vars.find((x) => x.name === (n1 || n2 || n3));
      return v ? renderVariable(v, f1 || f2) : all;
    });
}

// The datasource type a reference resolves to: an object's `type`, else the type a
// `${datasource}`-style reference names through a datasource variable, else Prometheus.
export function datasourceType(ds, list) {
  if (ds && typeof ds === 'object' && ds.type) return ds.type;
  const ref = String((ds && typeof ds === 'object' ? ds.uid : ds) || '').replace(/^\$\{?|\}$/g, '');
  const v = list.find((x) => x.type === 'datasource' && x.name === ref);
  return v?.query || 'prometheus';
}

// A variable's `regex` (`/re/flags`): with a capture group its first group is the value,
// otherwise options that do not match are dropped.
function applyRegex(regex, options) {
  const m = /^\/(.*)\/([gimsuy]*)$/.exec(regex);
  let re;
  try {
    re = m ? new RegExp(m[1], m[2].replace('g', '')) : new RegExp(regex);
  } catch {
    return options;
  }
  const out = [];
  for (const o of options) {
    const c = re.exec(o);
    if (!c) continue;
    const v = c[1] ?? o;
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

// Grafana's variable `sort`: 1/2 alphabetical, 3/4 numerical, 5/6 alphabetical ignoring case.
function sortOptions(options, sort) {
  const cmp = {
    1: (a, b) => a.localeCompare(b), 3: (a, b) => parseFloat(a) - parseFloat(b),
    5: (a, b) => a.toLowerCase().localeCompare(b.toLowerCase()),
  }[sort - ((sort % 2) === 0 ? 1 : 0)];
  if (!cmp) return options;
  const sorted = [...options].sort(cmp);
  return sort % 2 === 0 ? sorted.reverse() : sorted;
}

const secs = (ms) => ms / 1000;

// Runs one variable query of Grafana's Prometheus datasource.
async function variableQuery(q, fromMs, toMs) {
  const args = (f) => {
    const m = new RegExp(`^${f}\\s*\\(([\\s\\S]*)\\)$`).exec(q.trim());
    return m ? m[1].trim() : null;
  };
  const range = {start: secs(fromMs), end: secs(toMs)};
  let a;
  if ((a = args('label_values')) !== null) {
    // `label_values(selector, label)`: the label is after the last comma.
    const i = a.lastIndexOf(',');
    const label = (i < 0 ? a : a.slice(i + 1)).trim();
    const params = i < 0 ? range : {...range, 'match[]': a.slice(0, i).trim()};
    return api.get(`api/v1/label/${encodeURIComponent(label)}/values`, params);
  }
  if ((a = args('metrics')) !== null) {
    return applyRegex(a, await api.get('api/v1/label/__name__/values', range));
  }
  if (args('label_names') !== null) return api.get('api/v1/labels', range);
  if ((a = args('query_result')) !== null) {
    const data = await api.query(a, toMs);
    return data.result.map((s) => {
      const {__name__: name = '', ...labels} = s.metric;
      const text = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(', ');
      return `${name}{${text}} ${s.value[1]} ${s.value[0] * 1000}`;
    });
  }
  throw new Error(`unsupported variable query: ${q}`);
}

// Resolves one templating variable given those before it. Returns {name, label, kind, multi,
// includeAll, allValue, options, current, hide, error?}; `current` keeps `selection` (from the
// URL or an earlier resolution), else the saved value, when still valid, else the first option.
export async function resolveVariable(def, list, before, fromMs, toMs, selection) {
  const query = typeof def.query === 'string' ? def.query : def.query?.query ?? '';
  const v = {
    name: def.name, label: def.label || def.name, kind: def.type, multi: !!def.multi,
    includeAll: !!def.includeAll, allValue: def.allValue || null, options: [], current: [],
    hide: def.hide === 2 || def.type === 'datasource' || def.type === 'adhoc',
  };
  try {
    if (def.type === 'query') {
      const ds = datasourceType(def.datasource, list);
      if (ds !== 'prometheus') throw new Error(`${ds.charAt(0).toUpperCase()}${ds.slice(1)} variables are not supported`);
      // `$__range` and friends work in variable queries too (query_result(…[$__range])).
      const t = timing({fromMs, toMs, maxDataPoints: 1000});
      v.options = await variableQuery(builtins(interpolate(query, before), t), fromMs, toMs);
    } else if (def.type === 'custom' || def.type === 'interval') {
      v.options = query.split(',').map((o) => o.trim()).map((o) => o.split(' : ').pop()).filter(Boolean);
    } else if (def.type === 'constant' || def.type === 'textbox') {
      v.options = [selection?.[0] ?? query];
    } else if (def.type === 'datasource') {
      v.options = [def.current?.value || 'prometheus'];
    }
  } catch (e) {
    v.error = e.message;
  }
  if (def.regex) v.options = applyRegex(def.regex, v.options);
  v.options = sortOptions(v.options, def.sort || 0);
  const saved = [def.current?.value].flat().filter((x) => x !== undefined && x !== null && x !== '');
  const valid = (sel) => sel?.length && sel.every((s) => v.options.includes(s) || (s === '$__all' && v.includeAll));
  v.current = valid(selection) ? selection : valid(saved) ? saved : v.options.slice(0, 1);
  if (!v.multi && v.current.length > 1) v.current = v.current.slice(0, 1);
  return v;
}

// A series' display name: `legendFormat` with `{{label}}` filled in; without one (or
// `__auto`), the series as Prometheus prints it, or the expression for a label-less result.
export function legendName(format, metric, expr) {
  if (format && format !== '__auto') {
    return format.replace(/\{\{\s*([^}\s]+)\s*\}\}/g, (all, l) => metric[l] ?? '');
  }
  const {__name__: name = '', ...labels} = metric;
  const text = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(', ');
  if (!name && !text) return expr;
  return text ? `${name}{${text}}` : name;
}
