// Measures the dashboard page in headless Chromium over the DevTools protocol:
//   node --experimental-websocket bench/web/render.mjs <chromium> <page URL> [runs]
// Prints JSON: the compressed (gzip, as served) size of every static asset the page loaded and
// their sum, and per run the page's own data-render-ms (performance.now() when the last panel
// was drawn, i.e. since navigation start) with its panel counts. Run 1 starts with an empty
// cache; later runs reuse the browser's cache as a returning visitor would.

import {spawn} from 'node:child_process';
import {mkdtempSync, rmSync} from 'node:fs';
import http from 'node:http';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

const [chromiumBin, pageUrl, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 5);
const profile = mkdtempSync(join(tmpdir(), 'edgeprom-bench-web-'));
const chrome = spawn(chromiumBin, [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--hide-scrollbars',
  '--remote-debugging-port=0', `--user-data-dir=${profile}`, '--window-size=1600,1200', 'about:blank',
], {stdio: ['ignore', 'ignore', 'pipe']});

const endpoint = await new Promise((resolve, reject) => {
  let err = '';
  chrome.stderr.on('data', (d) => {
    err += d;
    const m = /DevTools listening on (ws:\S+)/.exec(err);
    if (m) resolve(m[1]);
  });
  chrome.on('exit', () => reject(new Error(`chromium exited: ${err}`)));
  setTimeout(() => reject(new Error('chromium did not start within 20 s')), 20000);
});

const ws = new WebSocket(endpoint);
await new Promise((r) => ws.addEventListener('open', r));
let nextId = 1;
const pending = new Map();
const listeners = [];
ws.addEventListener('message', (e) => {
  const msg = JSON.parse(e.data);
  if (msg.id && pending.has(msg.id)) {
    const {resolve, reject} = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) reject(new Error(JSON.stringify(msg.error)));
    else resolve(msg.result);
  } else if (msg.method) {
    for (const l of listeners) l(msg);
  }
});
const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
  const id = nextId++;
  pending.set(id, {resolve, reject});
  ws.send(JSON.stringify({id, method, params, sessionId}));
});

const {targetId} = await send('Target.createTarget', {url: 'about:blank'});
const {sessionId} = await send('Target.attachToTarget', {targetId, flatten: true});
const s = (method, params) => send(method, params, sessionId);
await s('Page.enable');
await s('Network.enable');
const assets = new Set();
listeners.push((m) => {
  if (m.method === 'Network.requestWillBeSent' && m.params.request.url.includes('/static/')) {
    assets.add(m.params.request.url);
  }
});

const evaluate = async (expr) => (await s('Runtime.evaluate', {expression: expr, returnByValue: true})).result.value;
const results = [];
for (let i = 0; i < runs; i++) {
  // Marks the previous document, so its data-ready is not mistaken for the new page's.
  await evaluate(`document.body && (document.body.dataset.ready = 'old')`);
  await s('Page.navigate', {url: pageUrl});
  const deadline = Date.now() + 60000;
  let state = null;
  while (Date.now() < deadline) {
    state = await evaluate(`document.body && document.body.dataset.ready === '1' && location.href !== 'about:blank' ? {...document.body.dataset} : null`).catch(() => null);
    if (state) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  if (!state) throw new Error(`run ${i + 1}: the page never became ready`);
  results.push({
    run: i + 1, cache: i === 0 ? 'cold' : 'warm', renderMs: Number(state.renderMs),
    panels: Number(state.panels), errors: Number(state.panelsError), nodata: Number(state.panelsNodata),
  });
}

// Sizes as served to a browser: gzip-encoded bodies.
const size = (url) => new Promise((resolve, reject) => {
  http.get(url, {headers: {'Accept-Encoding': 'gzip'}}, (res) => {
    let n = 0;
    res.on('data', (d) => (n += d.length));
    res.on('end', () => resolve({url: new URL(url).pathname.replace(/.*\/static\/[0-9a-f]+\//, ''), bytes: n, encoding: res.headers['content-encoding'] || 'identity'}));
  }).on('error', reject);
});
const html = await size(pageUrl);
html.url = new URL(pageUrl).pathname;
const files = [html, ...(await Promise.all([...assets].map(size)))];
const total = files.reduce((a, f) => a + f.bytes, 0);
const warm = results.filter((r) => r.cache === 'warm').map((r) => r.renderMs).sort((a, b) => a - b);
console.log(JSON.stringify({
  page: pageUrl,
  assets: files,
  assetsGzipBytes: total,
  runs: results,
  coldMs: results[0].renderMs,
  warmMedianMs: warm.length ? warm[Math.floor(warm.length / 2)] : null,
}, null, 1));
ws.close();
// The profile goes only once Chromium has exited, or it may still be writing there.
const exited = new Promise((resolve) => chrome.on('exit', resolve));
chrome.kill();
if (chrome.exitCode === null && chrome.signalCode === null) await exited;
rmSync(profile, {recursive: true, force: true});
