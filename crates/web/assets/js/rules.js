// /rules (every group and rule with health and last evaluation) and /alerts (alerting rules by
// state, with their active alerts); both read /api/v1/rules, as Prometheus's pages do.

import * as api from './api.js';
import {h, labelChips, table} from './dom.js';
import {ago, humanSeconds, isoTime} from './format.js';

export async function render(main) {
  const alertsPage = document.body.dataset.page === 'alerts';
  const data = await api.get('api/v1/rules', alertsPage ? {type: 'alert'} : {});
  if (alertsPage) alerts(main, data.groups);
  else rules(main, data.groups);
  document.body.dataset.ready = '1';
}

const annotations = (a) => h('dl', {class: 'annotations'},
  Object.entries(a || {}).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));

function rules(main, groups) {
  main.append(h('h1', null, 'Rules'));
  if (!groups.length) main.append(h('p', {class: 'muted'}, 'No rule groups are loaded (rule_files in the configuration).'));
  for (const g of groups) {
    main.append(h('section', {class: 'pool'},
      h('h2', null, g.name, h('small', null, ` ${g.file} · every ${humanSeconds(g.interval)} · last ${g.lastEvaluation ? ago(g.lastEvaluation) : 'never'} took ${humanSeconds(g.evaluationTime)}`)),
      table(['Rule', 'Health', 'Last evaluation', 'Evaluation time'], g.rules.map((r) => [
        h('div', null,
          h('div', null, h('b', null, r.type === 'alerting' ? 'alert: ' : 'record: '), r.name),
          h('code', null, r.query),
          r.duration ? h('div', null, `for: ${humanSeconds(r.duration)}`) : null,
          labelChips(r.labels), annotations(r.annotations)),
        h('span', {class: `health ${r.health}`}, r.health, r.lastError ? h('div', {class: 'error'}, r.lastError) : null),
        r.lastEvaluation ? ago(r.lastEvaluation) : 'never',
        humanSeconds(r.evaluationTime),
      ]))));
  }
}

function alerts(main, groups) {
  const rules = groups.flatMap((g) => g.rules.map((r) => ({...r, group: g.name, file: g.file})));
  const counts = {firing: 0, pending: 0, inactive: 0};
  for (const r of rules) counts[r.state] = (counts[r.state] || 0) + 1;
  main.append(h('h1', null, 'Alerts'), h('div', {class: 'controls'},
    Object.entries(counts).map(([s, n]) => h('span', {class: `badge ${s}`}, `${s} (${n})`))));
  if (!rules.length) main.append(h('p', {class: 'muted'}, 'No alerting rules are loaded.'));
  const order = {firing: 0, pending: 1, inactive: 2};
  rules.sort((a, b) => order[a.state] - order[b.state] || a.name.localeCompare(b.name));
  for (const r of rules) {
    main.append(h('details', {class: `alert ${r.state}`, open: r.state !== 'inactive'},
      h('summary', null, h('span', {class: `badge ${r.state}`}, r.state), ` ${r.name} `,
        h('small', null, `${r.group} (${r.file}) · ${r.alerts.length} active`)),
      h('code', null, r.query),
      r.duration ? h('div', null, `for: ${humanSeconds(r.duration)}`) : null,
      labelChips(r.labels), annotations(r.annotations),
      r.alerts.length ? table(['Labels', 'State', 'Active since', 'Value', 'Annotations'], r.alerts.map((a) => [
        labelChips(a.labels),
        h('span', {class: `badge ${a.state}`}, a.state),
        a.activeAt ? `${isoTime(a.activeAt)} (${ago(a.activeAt)})` : '',
        a.value,
        annotations(a.annotations),
      ])) : null));
  }
}
