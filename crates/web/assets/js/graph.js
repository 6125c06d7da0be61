// /graph: an expression with completion from the API, its instant result as a table and its
// range result as a chart. The state lives in the URL (?expr=&tab=&range=&end=&step=), so a
// link reproduces the view.

import * as api from './api.js';
import {chart} from './chart.js';
import {h, seriesText, table} from './dom.js';
import {num} from './format.js';

const MAX_ROWS = 10000;
const RANGES = ['5m', '15m', '30m', '1h', '3h', '6h', '12h', '1d', '2d', '7d'];
const SECONDS = {s: 1, m: 60, h: 3600, d: 86400, w: 604800};

function seconds(d) {
  const m = /^(\d+)([smhdw])$/.exec(d || '');
  return m ? Number(m[1]) * SECONDS[m[2]] : null;
}

// PromQL functions and keywords offered next to metric names.
const FUNCTIONS = ('abs absent absent_over_time avg avg_over_time bottomk ceil changes clamp clamp_max ' +
  'clamp_min count count_over_time count_values day_of_month day_of_week days_in_month delta deriv ' +
  'exp floor group histogram_quantile holt_winters hour idelta increase irate label_join ' +
  'label_replace last_over_time ln log10 log2 max max_over_time min min_over_time minute month ' +
  'predict_linear present_over_time quantile quantile_over_time rate resets round scalar sgn sort ' +
  'sort_desc sqrt stddev stddev_over_time stdvar sum sum_over_time time timestamp topk vector year ' +
  'by without on ignoring group_left group_right offset bool and or unless').split(' ');

export async function render(main) {
  const params = new URLSearchParams(location.search);
  const state = {
    expr: params.get('expr') || '',
    tab: params.get('tab') || 'graph',
    range: params.get('range') || '1h',
    end: params.get('end') || '',
    step: params.get('step') || '',
  };
  const input = h('textarea', {class: 'expr', rows: 2, spellcheck: false, placeholder: 'Expression (press Enter to run, Shift+Enter for a new line)'});
  input.value = state.expr;
  const suggest = h('ul', {class: 'suggest', hidden: true});
  const range = h('select', null, RANGES.map((r) => h('option', {value: r, selected: r === state.range}, r)));
  const end = h('input', {type: 'datetime-local', step: 1, value: state.end, title: 'End time (UTC); empty: now'});
  const step = h('input', {type: 'text', size: 6, placeholder: 'auto', value: state.step, title: 'Resolution step, e.g. 15s; empty: range/250'});
  const tabs = h('div', {class: 'tabs'});
  const out = h('div', {class: 'result'});
  const status = h('div', {class: 'status-line'});
  const run = h('button', {class: 'primary', onclick: () => execute()}, 'Execute');
  main.append(
    h('div', {class: 'expr-box'}, input, suggest),
    h('div', {class: 'controls'}, run,
      h('label', null, 'Range ', range), h('label', null, 'End (UTC) ', end), h('label', null, 'Step ', step),
      tabs),
    status, out);

  for (const t of ['graph', 'table']) {
    tabs.append(h('button', {class: t === state.tab ? 'tab active' : 'tab', dataset: {tab: t}, onclick: () => {
      state.tab = t;
      for (const b of tabs.children) b.classList.toggle('active', b.dataset.tab === t);
      execute();
    }}, t === 'graph' ? 'Graph' : 'Table'));
  }
  for (const c of [range, end]) c.addEventListener('change', () => execute());
  step.addEventListener('change', () => execute());
  input.addEventListener('keydown', (e) => {
    if (!suggest.hidden && completionKey(e, input, suggest)) return;
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      execute();
    }
  });
  const complete = completer(input, suggest);
  input.addEventListener('input', complete);
  input.addEventListener('blur', () => setTimeout(() => (suggest.hidden = true), 150));

  async function execute() {
    suggest.hidden = true;
    Object.assign(state, {expr: input.value.trim(), range: range.value, end: end.value, step: step.value.trim()});
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(state)) if (v) p.set(k, v);
    history.replaceState(null, '', `?${p}`);
    out.replaceChildren();
    status.textContent = '';
    delete document.body.dataset.error;
    if (!state.expr) {
      document.body.dataset.ready = '1';
      return;
    }
    const endMs = state.end ? Date.parse(`${state.end}Z`) : Date.now();
    const rangeS = seconds(state.range) || 3600;
    const stepS = seconds(state.step) ?? (Number(state.step) || Math.max(Math.floor(rangeS / 250), 1));
    const started = performance.now();
    document.body.dataset.ready = '0';
    try {
      let n;
      if (state.tab === 'graph') {
        const data = await api.queryRange(state.expr, endMs - rangeS * 1000, endMs, stepS * 1000);
        n = showGraph(out, data, [endMs / 1000 - rangeS, endMs / 1000]);
      } else {
        const data = await api.query(state.expr, endMs);
        n = showTable(out, data);
      }
      status.textContent = `${n} series · ${Math.round(performance.now() - started)} ms`;
      document.body.dataset.series = n;
    } catch (e) {
      out.replaceChildren(h('pre', {class: 'error'}, e.message));
      document.body.dataset.error = e.message;
      document.body.dataset.series = '0';
    }
    document.body.dataset.ready = '1';
  }
  execute();
}

// The range result over the whole requested range ([from, to] in seconds).
function showGraph(out, data, xRange) {
  if (data.resultType !== 'matrix') {
    out.append(h('p', null, `A ${data.resultType} result has no graph; see the table.`));
    return 0;
  }
  if (!data.result.length) {
    out.append(h('p', {class: 'muted'}, 'Empty query result'));
    return 0;
  }
  const box = h('div', {class: 'graph-chart'});
  out.append(box);
  chart(box, data.result.map((s) => ({name: seriesText(s.metric), values: s.values})), {height: 420, xRange});
  return data.result.length;
}

function showTable(out, data) {
  const {resultType: type, result} = data;
  if (type === 'scalar' || type === 'string') {
    out.append(table(['scalar', 'value'], [[type, result[1]]]));
    return 1;
  }
  if (!result.length) {
    out.append(h('p', {class: 'muted'}, 'Empty query result'));
    return 0;
  }
  // Like Prometheus's UI, a huge result is cut for the browser's sake.
  const shown = result.slice(0, MAX_ROWS);
  const rows = shown.map((s) => [
    seriesText(s.metric),
    type === 'vector'
      ? s.value[1]
      : h('span', null, s.values.map(([t, v]) => h('div', null, `${v} @${num(t, 3)}`))),
  ]);
  out.append(table(['Series', 'Value'], rows));
  if (result.length > MAX_ROWS) out.append(h('p', {class: 'muted'}, `Showing ${MAX_ROWS} of ${result.length} series.`));
  return result.length;
}

// Completion from the API: metric names (and functions) for a bare word, label names inside
// `{…}`, label values after `label="`. Names and metadata are fetched once.
function completer(input, list) {
  let names = null;
  let meta = {};
  const load = async () => {
    if (names) return names;
    names = await api.get('api/v1/label/__name__/values').catch(() => []);
    meta = await api.get('api/v1/metadata').catch(() => ({}));
    return names;
  };
  return async () => {
    const pos = input.selectionStart;
    const before = input.value.slice(0, pos);
    const ctx = context(before);
    if (!ctx) {
      list.hidden = true;
      return;
    }
    let options;
    if (ctx.kind === 'metric') {
      const all = await load();
      options = all.concat(FUNCTIONS).filter((n) => n.startsWith(ctx.word) && n !== ctx.word);
    } else if (ctx.kind === 'label') {
      const labels = await api.get('api/v1/labels', ctx.metric ? {'match[]': ctx.metric} : {}).catch(() => []);
      options = labels.filter((n) => n !== '__name__' && n.startsWith(ctx.word));
    } else {
      const values = await api.get(`api/v1/label/${encodeURIComponent(ctx.label)}/values`,
        ctx.metric ? {'match[]': ctx.metric} : {}).catch(() => []);
      options = values.filter((v) => v.startsWith(ctx.word));
    }
    // The input may have moved on while the API answered.
    if (input.selectionStart !== pos) return;
    list.replaceChildren(...options.slice(0, 50).map((o, i) => h('li', {
      class: i === 0 ? 'sel' : '',
      title: meta[o]?.[0] ? `${meta[o][0].type}: ${meta[o][0].help}` : '',
      onmousedown: (e) => {
        e.preventDefault();
        accept(input, list, o);
      },
      dataset: {value: o, start: pos - ctx.word.length, kind: ctx.kind},
    }, o, meta[o]?.[0] ? h('small', null, ` ${meta[o][0].type}`) : null)));
    list.hidden = options.length === 0;
  };
}

// What is being typed at the end of `before`.
function context(before) {
  const open = before.lastIndexOf('{');
  if (open > before.lastIndexOf('}')) {
    const metric = (/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/.exec(before.slice(0, open)) || [])[1];
    const inside = before.slice(open + 1);
    const value = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)$/.exec(inside);
    if (value) return {kind: 'value', metric, label: value[1], word: value[3]};
    const label = /(^|[,{\s])([a-zA-Z_][a-zA-Z0-9_]*)?$/.exec(inside);
    if (label) return {kind: 'label', metric, word: label[2] || ''};
    return null;
  }
  const word = /[a-zA-Z_:][a-zA-Z0-9_:]*$/.exec(before);
  if (!word || /"[^"]*$/.test(before)) return null;
  return {kind: 'metric', word: word[0]};
}

// Puts the chosen suggestion in place of the word typed; a label value gets its closing quote.
function accept(input, list, value) {
  const pos = input.selectionStart;
  const first = list.querySelector('li');
  const start = Number(first?.dataset.start ?? pos);
  const rest = input.value.slice(pos);
  const text = first?.dataset.kind === 'value' && !rest.startsWith('"') ? `${value}"` : value;
  input.value = input.value.slice(0, start) + text + rest;
  input.selectionStart = input.selectionEnd = start + text.length;
  list.hidden = true;
  input.focus();
}

// Arrow keys move the selection, Tab or Enter accept it, Escape closes; true when handled.
function completionKey(e, input, list) {
  const items = [...list.children];
  const i = items.findIndex((li) => li.classList.contains('sel'));
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    const next = (i + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
    items.forEach((li, j) => li.classList.toggle('sel', j === next));
    items[next]?.scrollIntoView({block: 'nearest'});
  } else if ((e.key === 'Tab' || e.key === 'Enter') && i >= 0) {
    accept(input, list, items[i].dataset.value);
  } else if (e.key === 'Escape') {
    list.hidden = true;
  } else {
    return false;
  }
  e.preventDefault();
  return true;
}
