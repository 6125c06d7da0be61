// /dashboards: the list of Grafana dashboards (?d= absent) and one dashboard rendered
// (?d=<id>): rows and the 24-column grid from gridPos, template variables as dropdowns, the
// time range and refresh pickers. The state is in the URL as Grafana spells it
// (from, to, refresh, var-<name>), so a link reproduces the view; `expand=1` opens collapsed
// rows. When every panel has drawn, the body carries data-ready="1", data-panels,
// data-panels-error, data-panels-nodata, data-panels-unsupported, data-render-ms
// (performance.now(): since navigation start), data-rounds (query rounds so far: auto-refresh
// adds one each time) and data-height (the page's full height).

import * as api from './api.js';
import {h} from './dom.js';
import * as g from './grafana.js';
import {RENDERERS} from './panels.js';

const RANGES = ['now-5m', 'now-15m', 'now-30m', 'now-1h', 'now-3h', 'now-6h', 'now-12h', 'now-24h', 'now-2d', 'now-7d'];
const REFRESHES = ['off', '5s', '10s', '30s', '1m', '5m', '15m'];

export async function render(main) {
  const params = new URLSearchParams(location.search);
  const id = params.get('d');
  if (!id) return list(main);
  const dash = await api.getJSON(`ui/dashboards/${encodeURIComponent(id)}`);
  return new Dashboard(main, dash, params).start();
}

async function list(main) {
  const items = await api.getJSON('ui/dashboards');
  main.append(h('h1', null, 'Dashboards'), h('table', {class: 'grid dash-list'},
    h('thead', null, h('tr', null, ['Title', 'Panels', 'Tags', 'Source'].map((t) => h('th', null, t)))),
    h('tbody', null, items.map((d) => h('tr', {dataset: {id: d.id}},
      h('td', null, d.error ? d.title : h('a', {href: `dashboards?d=${encodeURIComponent(d.id)}`}, d.title)),
      h('td', null, d.error ? h('span', {class: 'error'}, d.error) : d.panels),
      h('td', null, (d.tags || []).join(', ')),
      h('td', null, h('small', null, d.source)))))));
  document.body.dataset.dashboards = items.length;
  document.body.dataset.ready = '1';
}

class Dashboard {
  constructor(main, dash, params) {
    this.main = main;
    this.dash = dash;
    this.from = params.get('from') || dash.time?.from || 'now-1h';
    this.to = params.get('to') || dash.time?.to || 'now';
    this.refresh = params.get('refresh') || dash.refresh || 'off';
    this.expand = params.get('expand') === '1';
    this.selection = {};
    for (const [k, v] of params) {
      if (k.startsWith('var-')) (this.selection[k.slice(4)] ||= []).push(v);
    }
    this.defs = dash.templating?.list || [];
    this.vars = [];
    this.panels = []; // {panel, el, body, chart?} of the panels on screen
    this.generation = 0;
  }

  range() {
    const now = Date.now();
    return {fromMs: g.parseTime(this.from, now), toMs: g.parseTime(this.to, now)};
  }

  async start() {
    document.title = `${this.dash.title} – edgeprom`;
    this.varBox = h('div', {class: 'vars'});
    this.timeSel = h('select', {title: 'Time range (drag across a chart to zoom in)',
      onchange: (e) => this.setRange(...e.target.value.split('|'))});
    this.drawTimePicker();
    const refreshSel = h('select', {title: 'Auto-refresh', onchange: (e) => {
      this.refresh = e.target.value;
      this.schedule();
      this.saveURL();
    }}, [...new Set([this.refresh, ...REFRESHES])].map((r) => h('option', {value: r, selected: r === this.refresh}, r === 'off' ? 'Refresh off' : `Every ${r}`)));
    this.main.append(h('div', {class: 'dash-head'},
      h('h1', null, this.dash.title || 'Dashboard'), this.varBox,
      h('span', {class: 'spacer'}), this.timeSel,
      h('button', {title: 'Refresh now', onclick: () => this.reload(false)}, '↻'), refreshSel));
    this.grid = h('div', {class: 'dash-body'});
    this.main.append(this.grid);
    await this.resolveVariables(0);
    this.layout();
    this.schedule();
    await this.runPanels();
  }

  // The presets, and the current range when it is not one (absolute after a zoom).
  drawTimePicker() {
    const label = (from, to) => (to === 'now' && from.startsWith('now-') ? `Last ${from.slice(4)}`
      : `${isoMinute(g.parseTime(from, Date.now()))} to ${to === 'now' ? 'now' : isoMinute(g.parseTime(to, Date.now()))}`);
    const current = this.to === 'now' && RANGES.includes(this.from) ? [] : [[this.from, this.to]];
    this.timeSel.replaceChildren(...current.concat(RANGES.map((r) => [r, 'now'])).map(([from, to]) =>
      h('option', {value: `${from}|${to}`, selected: from === this.from && to === this.to}, label(from, to))));
  }

  setRange(from, to) {
    this.from = from;
    this.to = to;
    this.drawTimePicker();
    this.reload(true);
  }

  // Resolves variables from index `from` on (those after a changed one may depend on it).
  async resolveVariables(from) {
    const {fromMs, toMs} = this.range();
    this.vars.length = from;
    for (const def of this.defs.slice(from)) {
      const prev = this.selection[def.name];
      this.vars.push(await g.resolveVariable(def, this.defs, this.vars, fromMs, toMs, prev));
    }
    this.drawVariables();
  }

  drawVariables() {
    this.varBox.replaceChildren(...this.vars.flatMap((v, i) => {
      if (v.hide) return [];
      const choose = (values) => {
        v.current = values;
        this.selection[v.name] = values;
        this.resolveVariables(i + 1).then(() => this.reload(false));
      };
      const control = v.multi ? multiSelect(v, choose) : h('select', {onchange: (e) => choose([e.target.value])},
        v.includeAll ? h('option', {value: '$__all', selected: v.current.includes('$__all')}, 'All') : null,
        v.options.map((o) => h('option', {value: o, selected: v.current.includes(o)}, o)));
      if (v.kind === 'textbox') {
        return h('label', {class: 'var'}, h('span', null, v.label),
          h('input', {value: v.current[0] || '', onchange: (e) => choose([e.target.value])}));
      }
      // A span, not a label: a label would forward clicks in the multi-select menu to its button.
      return h('span', {class: 'var', title: v.error || ''}, h('span', null, v.label),
        v.error ? h('span', {class: 'error'}, v.error) : control);
    }));
  }

  // Rows become headers; each row's panels (and the panels before the first row) form a
  // 24-column grid of their own, placed by gridPos relative to the section's top.
  layout() {
    const sections = [];
    let current = {row: null, panels: []};
    sections.push(current);
    for (const p of this.dash.panels || []) {
      if (p.type === 'row') {
        current = {row: p, panels: p.collapsed ? p.panels || [] : []};
        sections.push(current);
      } else {
        current.panels.push(p);
      }
    }
    // Old-style dashboards keep panels in `rows[]`, sized by `span` (of 12).
    for (const r of this.dash.rows || []) {
      sections.push({row: {title: r.title, collapsed: r.collapse}, panels: (r.panels || []).map((p) => ({...p, gridPos: {w: (p.span || 12) * 2, h: Math.round((parseInt(r.height, 10) || 250) / 38)}}))});
    }
    for (const p of this.panels) p.chart?.destroy();
    this.grid.replaceChildren();
    this.panels = [];
    for (const s of sections) {
      if (!s.row && !s.panels.length) continue;
      const grid = h('div', {class: 'grid24'});
      const open = !s.row || !s.row.collapsed || this.expand;
      if (s.row) {
        const head = h('div', {class: 'row-head', onclick: () => {
          const show = grid.hidden;
          grid.hidden = !show;
          head.textContent = `${show ? '▾' : '▸'} ${g.interpolate(s.row.title || '', this.vars)}`;
          if (show && !grid.childElementCount) this.addPanels(grid, s.panels, true);
        }}, `${open ? '▾' : '▸'} ${g.interpolate(s.row.title || '', this.vars)}`);
        this.grid.append(head);
      }
      grid.hidden = !open;
      this.grid.append(grid);
      if (open) this.addPanels(grid, s.panels, false);
    }
  }

  addPanels(grid, panels, run) {
    const top = Math.min(...panels.map((p) => p.gridPos?.y ?? 0));
    const added = [];
    for (const p of panels) {
      const gp = p.gridPos || {};
      const body = h('div', {class: 'panel-body'});
      const el = h('div', {class: 'panel', dataset: {type: p.type, title: p.title || '', state: 'loading'},
        style: {
          gridColumn: gp.x !== undefined ? `${gp.x + 1} / span ${gp.w || 12}` : `span ${gp.w || 12}`,
          gridRow: gp.y !== undefined ? `${gp.y - top + 1} / span ${gp.h || 8}` : `span ${gp.h || 8}`,
        }},
      h('div', {class: 'panel-title', title: p.description || ''}, g.interpolate(p.title || '', this.vars)), body);
      grid.append(el);
      added.push({panel: p, el, body});
    }
    this.panels.push(...added);
    if (run) this.runPanels(added);
  }

  // Queries and draws panels (all on screen by default); when this round is the latest,
  // publishes the counts on the body.
  async runPanels(list = this.panels) {
    const generation = ++this.generation;
    const {fromMs, toMs} = this.range();
    await Promise.all(list.map((p) => this.runPanel(p, fromMs, toMs)));
    if (generation !== this.generation) return;
    const count = (s) => this.panels.filter((p) => p.el.dataset.state === s).length;
    Object.assign(document.body.dataset, {
      panels: this.panels.length,
      panelsError: count('error'),
      panelsNodata: count('nodata'),
      panelsUnsupported: count('unsupported'),
      renderMs: Math.round(performance.now()),
      rounds: generation,
      // The page's full height, for screenshots of the whole dashboard.
      height: document.documentElement.scrollHeight,
      ready: '1',
    });
  }

  async runPanel(entry, fromMs, toMs) {
    const {panel, el, body} = entry;
    const set = (state, ...content) => {
      entry.chart?.destroy();
      entry.chart = null;
      body.replaceChildren(...content);
      el.dataset.state = state;
    };
    const render = RENDERERS[panel.type];
    const targets = (panel.targets || []).filter((t) => !t.hide);
    const foreign = targets.map((t) => g.datasourceType(t.datasource || panel.datasource, this.defs)).find((d) => d !== 'prometheus');
    if (!render || foreign) {
      const why = foreign ? `${titleCase(foreign)} queries are not supported: edgeprom serves Prometheus data only.`
        : `Panel type "${panel.type}" is not supported by the built-in UI.`;
      return set('unsupported', h('div', {class: 'panel-msg'}, why));
    }
    const width = body.clientWidth || 400;
    const queries = targets.filter((t) => (t.expr || '').trim()).map((t) => {
      const timing = g.timing({fromMs, toMs, maxDataPoints: panel.maxDataPoints || width, minInterval: t.interval || panel.interval});
      const expr = g.builtins(g.interpolate(t.expr, this.vars), timing);
      const instant = t.instant && !t.range;
      const q = instant ? api.query(expr, toMs) : api.queryRange(expr, timing.startMs, timing.endMs, timing.stepMs);
      return q.then((data) => ({refId: t.refId || 'A', expr, legendFormat: t.legendFormat, data, timing}),
        (e) => ({refId: t.refId || 'A', expr, error: e.message}));
    });
    const frames = await Promise.all(queries);
    const errors = frames.filter((f) => f.error);
    if (errors.length) {
      return set('error', h('div', {class: 'panel-msg error'}, errors.map((f) => h('div', null, `${f.refId}: ${f.error}`))));
    }
    set('loading');
    try {
      const stepMs = frames[0]?.timing.stepMs || g.SCRAPE_MS;
      const onZoom = (from, to) => this.setRange(String(from), String(to));
      const {nodata, chart} = render(body, panel, frames, {fromMs, toMs, stepMs, onZoom});
      entry.chart = chart;
      el.dataset.state = nodata ? 'nodata' : 'ok';
    } catch (e) {
      set('error', h('div', {class: 'panel-msg error'}, `rendering: ${e.message}`));
    }
  }

  // A new time range resolves the variables again (Grafana's "on time range change").
  async reload(newRange) {
    this.saveURL();
    if (newRange) await this.resolveVariables(0);
    this.layout();
    await this.runPanels();
  }

  schedule() {
    clearInterval(this.timer);
    const ms = g.durationMs(this.refresh);
    if (ms) this.timer = setInterval(() => this.runPanels(), Math.max(ms, 1000));
  }

  saveURL() {
    const p = new URLSearchParams({d: new URLSearchParams(location.search).get('d'), from: this.from, to: this.to, refresh: this.refresh});
    for (const v of this.vars) if (!v.hide && v.kind !== 'constant') for (const c of v.current) p.append(`var-${v.name}`, c);
    if (this.expand) p.set('expand', '1');
    history.replaceState(null, '', `?${p}`);
  }
}

const titleCase = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const isoMinute = (ms) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');

// A dropdown of checkboxes for multi-value variables, "All" first when allowed.
function multiSelect(v, choose) {
  const label = () => (v.current.includes('$__all') ? 'All' : v.current.join(' + ') || 'None');
  const button = h('button', {type: 'button'}, label());
  const menu = h('div', {class: 'multi-menu', hidden: true});
  const options = (v.includeAll ? ['$__all'] : []).concat(v.options);
  for (const o of options) {
    menu.append(h('label', null, h('input', {type: 'checkbox', checked: v.current.includes(o), onchange: (e) => {
      let cur = v.current.filter((c) => c !== '$__all' && c !== o);
      if (e.target.checked) cur = o === '$__all' ? ['$__all'] : [...cur, o];
      if (!cur.length) cur = v.includeAll ? ['$__all'] : v.options.slice(0, 1);
      for (const box of menu.querySelectorAll('input')) box.checked = cur.includes(box.parentElement.dataset.value);
      v.current = cur;
      button.textContent = label();
    }}), o === '$__all' ? 'All' : o));
    menu.lastChild.dataset.value = o;
  }
  const wrap = h('span', {class: 'multi'}, button, menu);
  // Closing the menu (the button again, or a click elsewhere) applies the selection.
  const close = () => {
    menu.hidden = true;
    choose(v.current);
  };
  button.addEventListener('click', () => (menu.hidden ? (menu.hidden = false) : close()));
  document.addEventListener('click', (e) => {
    if (!menu.hidden && wrap.isConnected && !wrap.contains(e.target)) close();
  });
  return wrap;
}
