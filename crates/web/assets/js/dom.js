// Small DOM helpers shared by the pages.

// h('div', {class: 'x', onclick: f, dataset: {a: 1}}, child, 'text', [more children])
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(e.style, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else e.append(c instanceof Node ? c : String(c));
  }
}

// A label set as Prometheus prints it: name{a="b", c="d"}.
export function seriesText(metric) {
  const name = metric.__name__ || '';
  const labels = Object.entries(metric)
    .filter(([k]) => k !== '__name__')
    .map(([k, v]) => `${k}="${v}"`);
  return labels.length || !name ? `${name}{${labels.join(', ')}}` : name;
}

// A small table: headers and rows of cells (nodes or text).
export function table(headers, rows, cls) {
  return h('table', {class: cls || 'grid'},
    h('thead', null, h('tr', null, headers.map((t) => h('th', null, t)))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c))))));
}

export function labelChips(labels) {
  return h('span', {class: 'chips'},
    Object.entries(labels || {}).map(([k, v]) => h('span', {class: 'chip'}, `${k}="${v}"`)));
}
