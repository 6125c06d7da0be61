// /targets: every scrape pool (job) with its targets' health, last scrape, duration and error.

import * as api from './api.js';
import {h, labelChips, table} from './dom.js';
import {ago, humanSeconds} from './format.js';

export async function render(main) {
  const onlyDown = h('input', {type: 'checkbox', checked: new URLSearchParams(location.search).has('unhealthy')});
  const search = h('input', {type: 'search', placeholder: 'Filter by endpoint or labels'});
  const out = h('div');
  main.append(h('h1', null, 'Targets'), h('div', {class: 'controls'},
    h('label', null, onlyDown, ' Unhealthy only'), search), out);
  const data = await api.get('api/v1/targets', {state: 'active'});
  const pools = new Map();
  for (const t of data.activeTargets) {
    if (!pools.has(t.scrapePool)) pools.set(t.scrapePool, []);
    pools.get(t.scrapePool).push(t);
  }
  const draw = () => {
    const q = search.value.toLowerCase();
    out.replaceChildren(...[...pools.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([job, targets]) => {
      const up = targets.filter((t) => t.health === 'up').length;
      const shown = targets.filter((t) => (!onlyDown.checked || t.health !== 'up') &&
        (!q || `${t.scrapeUrl} ${JSON.stringify(t.labels)}`.toLowerCase().includes(q)));
      return h('section', {class: 'pool', dataset: {job, up, total: targets.length}, hidden: shown.length === 0},
        h('h2', null, `${job} `, h('span', {class: up === targets.length ? 'badge ok' : 'badge bad'}, `${up}/${targets.length} up`)),
        table(['Endpoint', 'State', 'Labels', 'Last scrape', 'Duration', 'Error'], shown.map((t) => [
          h('a', {href: t.scrapeUrl}, t.scrapeUrl),
          h('span', {class: `health ${t.health}`}, t.health.toUpperCase()),
          labelChips(t.labels),
          t.lastScrape && !t.lastScrape.startsWith('0001') ? ago(t.lastScrape) : 'never',
          humanSeconds(t.lastScrapeDuration),
          t.lastError ? h('span', {class: 'error'}, t.lastError) : '',
        ])));
    }));
  };
  onlyDown.addEventListener('change', draw);
  search.addEventListener('input', draw);
  draw();
  document.body.dataset.jobs = pools.size;
  document.body.dataset.ready = '1';
}
