// /status: build information, runtime, command-line flags and TSDB statistics including the top
// cardinality tables of /api/v1/status/tsdb.

import * as api from './api.js';
import {h, table} from './dom.js';
import {isoTime} from './format.js';

const kv = (obj) => table(['', ''], Object.entries(obj).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]), 'grid kv');

export async function render(main) {
  const [build, runtime, flags, tsdb] = await Promise.all([
    api.get('api/v1/status/buildinfo'),
    api.get('api/v1/status/runtimeinfo'),
    api.get('api/v1/status/flags'),
    api.get('api/v1/status/tsdb'),
  ]);
  const head = tsdb.headStats || {};
  const top = (title, list) => h('section', null, h('h3', null, title),
    table(['Name', 'Count'], (list || []).map((e) => [e.name, e.value.toLocaleString()])));
  main.append(
    h('h1', null, 'Status'),
    h('div', {class: 'cols'},
      h('section', null, h('h2', null, 'Build information'), kv(build)),
      h('section', null, h('h2', null, 'Runtime information'), kv(runtime))),
    h('h2', null, 'TSDB status'),
    kv({
      'Number of series': head.numSeries,
      'Number of chunks': head.chunkCount,
      'Number of label pairs': head.numLabelPairs,
      'Min time': head.minTime ? isoTime(head.minTime) : '',
      'Max time': head.maxTime ? isoTime(head.maxTime) : '',
    }),
    h('div', {class: 'cols'},
      top('Top 10 series count by metric names', tsdb.seriesCountByMetricName),
      top('Top 10 label names with value count', tsdb.labelValueCountByLabelName)),
    h('div', {class: 'cols'},
      top('Top 10 label names with high memory usage (bytes)', tsdb.memoryInBytesByLabelName),
      top('Top 10 series count by label value pairs', tsdb.seriesCountByLabelValuePair)),
    h('h2', null, 'Command-line flags'), kv(flags));
  document.body.dataset.ready = '1';
}
