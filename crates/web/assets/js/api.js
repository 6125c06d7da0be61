// The HTTP API, addressed relative to the page so every route prefix works. Credentials in the
// page's URL (http://user:pass@host/) are dropped from request URLs: fetch() refuses them, and
// the browser resends the Basic credentials it already holds for the origin.

const base = new URL('.', location.href);
base.username = '';
base.password = '';

export function url(path, params) {
  const u = new URL(path, base);
  for (const [k, v] of Object.entries(params || {})) {
    for (const one of Array.isArray(v) ? v : [v]) {
      if (one !== undefined && one !== null) u.searchParams.append(k, one);
    }
  }
  return u.toString();
}

// Errors read as the API reports them: "<errorType>: <error>", else the HTTP status and body.
async function answer(r) {
  const text = await r.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`HTTP ${r.status}: ${text.trim() || r.statusText}`);
  }
  if (body.status === 'error') throw new Error(`${body.errorType}: ${body.error}`);
  if (!r.ok) throw new Error(`HTTP ${r.status}: ${text.trim()}`);
  return body;
}

// GET, resolving to the whole envelope's `data`.
export async function get(path, params) {
  const r = await fetch(url(path, params), {credentials: 'same-origin'});
  return (await answer(r)).data;
}

// A raw JSON document outside the Prometheus envelope (the dashboards).
export async function getJSON(path) {
  const r = await fetch(url(path), {credentials: 'same-origin'});
  const text = await r.text();
  if (!r.ok) throw new Error(`HTTP ${r.status}: ${text.trim()}`);
  return JSON.parse(text);
}

// POST form, as Grafana sends queries (long expressions stay out of the URL).
export async function post(path, params) {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) form.append(k, v);
  const r = await fetch(url(path), {method: 'POST', body: form, credentials: 'same-origin'});
  return (await answer(r)).data;
}

export const query = (expr, time) => post('api/v1/query', {query: expr, time: time / 1000});

export const queryRange = (expr, startMs, endMs, stepMs) =>
  post('api/v1/query_range', {query: expr, start: startMs / 1000, end: endMs / 1000, step: stepMs / 1000});
