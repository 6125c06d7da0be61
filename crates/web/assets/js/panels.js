// Renderers of the Grafana panel types the platform's dashboards use. Each takes the panel's
// body element, the panel JSON and its query results ("frames": one per target, with the
// Prometheus `data`), draws, and returns {nodata, chart?} (a uPlot chart to destroy on redraw). Query errors never reach a renderer: the
// dashboard shows them in place of the panel body.

import {chart} from './chart.js';
import {h} from './dom.js';
import {color, formatUnit, PALETTE, thresholdColor} from './format.js';
import {legendName} from './grafana.js';

// Every series of the frames: [{name, metric, values: [[t, number]…]}].
function series(frames) {
  const out = [];
  for (const f of frames) {
    const {resultType: type, result} = f.data;
    const list = type === 'matrix' ? result.map((s) => ({metric: s.metric, values: s.values}))
      : type === 'vector' ? result.map((s) => ({metric: s.metric, values: [s.value]}))
      : type === 'scalar' ? [{metric: {}, values: [result]}] : [];
    for (const s of list) {
      out.push({
        refId: f.refId,
        metric: s.metric,
        name: legendName(f.legendFormat, s.metric, f.expr),
        values: s.values.map(([t, v]) => [t, parseFloat(v)]),
      });
    }
  }
  return out;
}

// The field options of a series: fieldConfig.defaults with the overrides matching its name.
function fieldOptions(panel, name) {
  const d = panel.fieldConfig?.defaults || {};
  const o = {unit: d.unit, decimals: d.decimals, min: d.min, max: d.max, thresholds: d.thresholds,
    mappings: d.mappings, color: d.color, displayName: d.displayName};
  for (const ov of panel.fieldConfig?.overrides || []) {
    const m = ov.matcher || {};
    let hit = false;
    if (m.id === 'byName') hit = m.options === name;
    else if (m.id === 'byRegexp') {
      try {
        hit = new RegExp(m.options).test(name);
      } catch {
        hit = false;
      }
    }
    if (!hit) continue;
    for (const p of ov.properties || []) {
      if (['unit', 'decimals', 'min', 'max', 'thresholds', 'mappings', 'color', 'displayName'].includes(p.id)) o[p.id] = p.value;
    }
  }
  return o;
}

// A series' color: fixed, by thresholds (of `value`), or the classic palette by position.
function seriesColor(opts, i, value) {
  if (opts.color?.mode === 'fixed' && opts.color.fixedColor) return color(opts.color.fixedColor);
  if (opts.color?.mode === 'thresholds' && value !== undefined) {
    return thresholdColor(value, opts.thresholds, opts.min ?? 0, opts.max ?? 100) || PALETTE[i % PALETTE.length];
  }
  return PALETTE[i % PALETTE.length];
}

// Grafana's reducers (`reduceOptions.calcs`, legend calcs).
const REDUCERS = {
  lastNotNull: (v) => { const x = v.filter(Number.isFinite); return x.length ? x[x.length - 1] : null; },
  last: (v) => (v.length ? v[v.length - 1] : null),
  firstNotNull: (v) => v.find(Number.isFinite) ?? null,
  first: (v) => (v.length ? v[0] : null),
  mean: (v) => { const x = v.filter(Number.isFinite); return x.length ? x.reduce((a, b) => a + b, 0) / x.length : null; },
  max: (v) => { const x = v.filter(Number.isFinite); return x.length ? Math.max(...x) : null; },
  min: (v) => { const x = v.filter(Number.isFinite); return x.length ? Math.min(...x) : null; },
  sum: (v) => v.filter(Number.isFinite).reduce((a, b) => a + b, 0),
  count: (v) => v.length,
  range: (v) => { const x = v.filter(Number.isFinite); return x.length ? Math.max(...x) - Math.min(...x) : null; },
  delta: (v) => { const x = v.filter(Number.isFinite); return x.length ? x[x.length - 1] - x[0] : null; },
};
const CALC_NAMES = {lastNotNull: 'Last *', last: 'Last', firstNotNull: 'First *', first: 'First', mean: 'Mean', max: 'Max', min: 'Min', sum: 'Total', count: 'Count', range: 'Range', delta: 'Delta'};

const reduce = (values, calc) => (REDUCERS[calc] || REDUCERS.lastNotNull)(values.map((p) => p[1]));

// A value's mapping (`mappings`: value, range and special), as {text, color}.
function mapValue(v, mappings) {
  for (const m of mappings || []) {
    const o = m.options || {};
    if (m.type === 'value' && o[String(v)]) return o[String(v)];
    if (m.type === 'range' && v >= (o.from ?? -Infinity) && v <= (o.to ?? Infinity)) return o.result;
    if (m.type === 'special' && ((o.match === 'null' && v === null) || (o.match === 'nan' && Number.isNaN(v)))) return o.result;
  }
  return null;
}

function display(v, opts) {
  const m = v === null ? null : mapValue(v, opts.mappings);
  return {
    text: m?.text ?? (v === null ? 'No data' : formatUnit(v, opts.unit, opts.decimals)),
    color: m?.color ? color(m.color) : null,
  };
}

function noData(body) {
  body.append(h('div', {class: 'panel-msg'}, 'No data'));
  return {nodata: true};
}

// Grafana's legend: a list, or a table with the configured calcs.
function legend(panel, list, colors) {
  const l = panel.options?.legend || {};
  if (l.showLegend === false || l.displayMode === 'hidden') return null;
  const calcs = l.calcs || [];
  const opts = (s) => fieldOptions(panel, s.name);
  if (l.displayMode === 'table' || calcs.length) {
    return h('div', {class: 'legend'}, h('table', {class: 'legend-table'},
      h('tr', null, h('th'), calcs.map((c) => h('th', null, CALC_NAMES[c] || c))),
      list.map((s, i) => h('tr', null,
        h('td', {class: 'name'}, h('i', {style: {background: colors[i]}}), s.name),
        calcs.map((c) => h('td', null, formatUnit(reduce(s.values, c), opts(s).unit, opts(s).decimals)))))));
  }
  return h('div', {class: 'legend list'}, list.map((s, i) => h('span', null, h('i', {style: {background: colors[i]}}), s.name)));
}

function timeseries(body, panel, frames, ctx) {
  const list = series(frames);
  if (!list.length) return noData(body);
  const d = panel.fieldConfig?.defaults || {};
  const custom = d.custom || {};
  const colors = list.map((s, i) => seriesColor(fieldOptions(panel, s.name), i));
  const box = h('div', {class: 'chart'});
  body.append(box);
  const leg = legend(panel, list, colors);
  if (leg) body.append(leg);
  body.classList.toggle('legend-right', panel.options?.legend?.placement === 'right');
  const u = chart(box, list.map((s, i) => ({name: s.name, values: s.values, color: colors[i]})), {
    unit: d.unit, decimals: d.decimals, min: d.min, max: d.max, legend: false,
    fillOpacity: custom.fillOpacity, lineWidth: custom.lineWidth,
    bars: custom.drawStyle === 'bars', stack: custom.stacking?.mode === 'normal',
    smooth: custom.lineInterpolation === 'smooth', spanGaps: custom.spanNulls === true,
    xRange: [ctx.fromMs / 1000, ctx.toMs / 1000],
    onZoom: ctx.onZoom,
  });
  return {nodata: false, chart: u};
}

// One big number per series (reduced), colored by thresholds, with a sparkline.
function stat(body, panel, frames) {
  const list = series(frames);
  if (!list.length) return noData(body);
  const calc = panel.options?.reduceOptions?.calcs?.[0] || 'lastNotNull';
  const colorMode = panel.options?.colorMode || 'value';
  const spark = (panel.options?.graphMode || 'area') === 'area';
  const wrap = h('div', {class: 'stats'});
  body.append(wrap);
  list.forEach((s, i) => {
    const opts = fieldOptions(panel, s.name);
    const v = reduce(s.values, calc);
    const shown = display(v, opts);
    const c = shown.color || (v === null ? null : thresholdColor(v, opts.thresholds, opts.min ?? 0, opts.max ?? 100)) || seriesColor(opts, i, v);
    const el = h('div', {class: 'stat'},
      spark && s.values.length > 1 ? sparkline(s.values, colorMode === 'background' ? 'rgba(255,255,255,0.5)' : c) : null,
      h('div', {class: 'v', style: {color: colorMode === 'value' ? c : undefined}}, shown.text),
      list.length > 1 ? h('div', {class: 'n'}, opts.displayName || s.name) : null);
    if (colorMode === 'background') el.style.background = c;
    wrap.append(el);
  });
  fitText(wrap);
  return {nodata: false};
}

function sparkline(values, stroke) {
  const pts = values.filter(([, v]) => Number.isFinite(v));
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', '0 0 100 100');
  svg.setAttribute('preserveAspectRatio', 'none');
  if (pts.length < 2) return svg;
  const [t0, t1] = [pts[0][0], pts[pts.length - 1][0]];
  const ys = pts.map((p) => p[1]);
  const [lo, hi] = [Math.min(...ys), Math.max(...ys)];
  const y = (v) => (hi === lo ? 50 : 100 - ((v - lo) / (hi - lo)) * 90);
  const line = pts.map(([t, v]) => `${((t - t0) / (t1 - t0 || 1)) * 100},${y(v)}`).join(' ');
  const path = document.createElementNS(ns, 'polygon');
  path.setAttribute('points', `0,100 ${line} 100,100`);
  path.setAttribute('fill', stroke);
  path.setAttribute('fill-opacity', '0.2');
  path.setAttribute('stroke', stroke);
  path.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(path);
  return svg;
}

// A 240° arc per series, the threshold bands outside it.
function gauge(body, panel, frames) {
  const list = series(frames);
  if (!list.length) return noData(body);
  const calc = panel.options?.reduceOptions?.calcs?.[0] || 'lastNotNull';
  const wrap = h('div', {class: 'stats'});
  body.append(wrap);
  list.forEach((s, i) => {
    const opts = fieldOptions(panel, s.name);
    const v = reduce(s.values, calc);
    const steps = opts.thresholds?.steps || [];
    const top = steps.length ? Math.max(...steps.map((x) => x.value ?? 0)) : 0;
    const min = opts.min ?? 0;
    const max = opts.max ?? (opts.unit === 'percent' ? 100 : opts.unit === 'percentunit' ? 1 : Math.max(v ?? 0, top, min + 1));
    const shown = display(v, opts);
    const c = shown.color || thresholdColor(v ?? min, opts.thresholds, min, max) || seriesColor(opts, i);
    wrap.append(h('div', {class: 'stat gauge'},
      arcs(v, min, max, c, steps, opts.thresholds, panel.options?.showThresholdMarkers !== false),
      h('div', {class: 'v', style: {color: c}}, shown.text),
      list.length > 1 ? h('div', {class: 'n'}, opts.displayName || s.name) : null));
  });
  fitText(wrap);
  return {nodata: false};
}

// Sizes each big value to its box, as Grafana scales stat and gauge text: a gauge's value fits
// inside its arc (the SVG's 100 × 80 view box drawn at `scale` pixels per unit, 75 % high).
function fitText(wrap) {
  for (const v of wrap.querySelectorAll('.v')) {
    const box = v.parentElement;
    const chars = Math.max(v.textContent.length, 2) * 0.62;
    let size;
    if (box.classList.contains('gauge')) {
      const scale = Math.min(box.clientWidth / 100, (box.clientHeight * 0.75) / 80);
      size = Math.min((48 * scale) / chars, 16 * scale);
    } else {
      size = Math.min(box.clientWidth / chars, box.clientHeight * 0.45);
    }
    v.style.fontSize = `${Math.round(Math.min(Math.max(size, 10), 64))}px`;
  }
}

function arcs(v, min, max, c, steps, thresholds, markers) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 100 80');
  svg.setAttribute('class', 'gauge-arc');
  const frac = (x) => Math.min(Math.max((x - min) / (max - min || 1), 0), 1);
  const point = (f, r) => {
    const a = ((-210 + 240 * f) * Math.PI) / 180;
    return [50 + r * Math.cos(a), 50 + r * Math.sin(a)];
  };
  const arc = (f0, f1, r, stroke, width) => {
    if (f1 <= f0) return;
    const [x0, y0] = point(f0, r);
    const [x1, y1] = point(f1, r);
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', `M${x0},${y0} A${r},${r} 0 ${(f1 - f0) * 240 > 180 ? 1 : 0} 1 ${x1},${y1}`);
    p.setAttribute('stroke', stroke);
    p.setAttribute('stroke-width', width);
    p.setAttribute('fill', 'none');
    svg.append(p);
  };
  arc(0, 1, 36, 'rgba(255,255,255,0.08)', 10);
  if (v !== null) arc(0, frac(v), 36, c, 10);
  if (markers && steps.length) {
    const pct = thresholds.mode === 'percentage';
    const at = (x) => (pct ? x / 100 : frac(x));
    steps.forEach((s, i) => {
      const f0 = i === 0 ? 0 : at(s.value);
      const f1 = i + 1 < steps.length ? at(steps[i + 1].value) : 1;
      arc(f0, f1, 44, color(s.color), 3);
    });
  }
  return svg;
}

// Horizontal bars of each series' reduced value, on one scale.
function barchart(body, panel, frames) {
  const list = series(frames);
  if (!list.length) return noData(body);
  const calc = panel.options?.reduceOptions?.calcs?.[0] || 'lastNotNull';
  const vals = list.map((s) => reduce(s.values, calc));
  const hi = Math.max(...vals.filter(Number.isFinite).map(Math.abs), 0) || 1;
  body.append(h('div', {class: 'bars'}, list.map((s, i) => {
    const opts = fieldOptions(panel, s.name);
    const v = vals[i];
    return h('div', {class: 'bar'},
      h('span', {class: 'name', title: s.name}, s.name),
      h('span', {class: 'track'},
        h('span', {class: 'fill', style: {width: `${(Math.abs(v ?? 0) / hi) * 80}%`, background: seriesColor(opts, i, v)}}),
        h('span', {class: 'val'}, display(v, opts).text)));
  })));
  return {nodata: false};
}

// One lane per series; consecutive equal (mapped) values merge into one colored segment,
// missing samples leave a gap.
function stateTimeline(body, panel, frames, ctx) {
  const list = series(frames);
  if (!list.length) return noData(body);
  const [t0, t1] = [ctx.fromMs / 1000, ctx.toMs / 1000];
  const step = ctx.stepMs / 1000;
  const lanes = h('div', {class: 'timeline'});
  body.append(lanes);
  for (const s of list) {
    const opts = fieldOptions(panel, s.name);
    const track = h('div', {class: 'track'});
    let cursor = t0;
    let run = null;
    const flush = (end) => {
      if (!run) return;
      const pad = (run.start - cursor) / (t1 - t0);
      if (pad > 0) track.append(h('span', {class: 'seg gap', style: {flex: `${pad} 0 0`}}));
      track.append(h('span', {class: 'seg', title: run.text, style: {flex: `${(end - run.start) / (t1 - t0)} 0 0`, background: run.color}}, run.text));
      cursor = end;
      run = null;
    };
    for (const [t, v] of s.values) {
      const shown = display(v, opts);
      const c = shown.color || thresholdColor(v, opts.thresholds, opts.min ?? 0, opts.max ?? 100) || PALETTE[0];
      // A sample more than a step after the previous one starts after a gap.
      if (run && (run.text !== shown.text || t - run.last > step * 1.5)) flush(run.last + step);
      if (!run) run = {start: Math.max(t, t0), text: shown.text, color: c};
      run.last = t;
    }
    if (run) flush(Math.min(run.last + step, t1));
    lanes.append(h('div', {class: 'lane'}, h('span', {class: 'name', title: s.name}, s.name), track));
  }
  return {nodata: false};
}

// Instant queries as rows: frames merged on their common labels ("merge"), columns named
// `Value #<refId>`, then the "organize" transformation (exclude, rename, order).
function table(body, panel, frames) {
  const byFrame = frames.map((f) => ({refId: f.refId, rows: series([f]).map((s) => ({labels: s.metric, value: s.values.length ? s.values[s.values.length - 1] : null}))}));
  const valueCol = (refId) => (frames.length > 1 ? `Value #${refId}` : 'Value');
  const labelSets = byFrame.map((f) => new Set(f.rows.flatMap((r) => Object.keys(r.labels))));
  const common = labelSets.length ? [...labelSets[0]].filter((l) => labelSets.every((s) => s.has(l)) && l !== '__name__') : [];
  const merged = new Map();
  for (const f of byFrame) {
    for (const r of f.rows) {
      const key = JSON.stringify(common.map((l) => r.labels[l]));
      const row = merged.get(key) || {};
      if (r.value) row.Time = r.value[0] * 1000;
      Object.assign(row, r.labels, {[valueCol(f.refId)]: r.value ? r.value[1] : null});
      merged.set(key, row);
    }
  }
  const rows = [...merged.values()];
  if (!rows.length) return noData(body);
  const values = new Set(frames.map((f) => valueCol(f.refId)));
  let columns = ['Time', ...[...new Set(rows.flatMap(Object.keys))].filter((c) => c !== 'Time' && !values.has(c)).sort(), ...values];
  const names = Object.fromEntries(columns.map((c) => [c, c]));
  for (const t of panel.transformations || []) {
    if (t.id !== 'organize' || t.disabled) continue;
    const o = t.options || {};
    columns = columns.filter((c) => !o.excludeByName?.[c]);
    const idx = o.indexByName || {};
    columns.sort((a, b) => (idx[a] ?? 1e9) - (idx[b] ?? 1e9));
    for (const c of columns) if (o.renameByName?.[c]) names[c] = o.renameByName[c];
  }
  const cell = (row, c) => {
    const v = row[c];
    if (v === undefined || v === null) return '';
    if (c === 'Time') return new Date(v).toLocaleString();
    if (!values.has(c)) return v;
    const opts = fieldOptions(panel, names[c]);
    return display(v, opts).text;
  };
  body.append(h('div', {class: 'scroll'}, h('table', {class: 'grid'},
    h('thead', null, h('tr', null, columns.map((c) => h('th', null, names[c])))),
    h('tbody', null, rows.map((r) => h('tr', null, columns.map((c) => h('td', null, cell(r, c)))))))));
  return {nodata: false};
}

export const RENDERERS = {
  timeseries, graph: timeseries, stat, singlestat: stat, gauge, barchart, bargauge: barchart,
  'state-timeline': stateTimeline, table,
};
