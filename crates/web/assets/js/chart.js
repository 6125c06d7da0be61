// Time-series charts on uPlot (vendored, global `uPlot`), styled for the dark theme.

import {formatUnit, PALETTE} from './format.js';

// Aligns Prometheus matrix series on one time axis: [xs (seconds), ys per series]. Points
// missing from a series, NaN and ±Inf become null, drawn as gaps.
export function align(series) {
  const times = new Set();
  for (const s of series) for (const [t] of s.values) times.add(t);
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const ys = series.map((s) => {
    const y = new Array(xs.length).fill(null);
    for (const [t, v] of s.values) {
      const x = parseFloat(v);
      y[index.get(t)] = Number.isFinite(x) ? x : null;
    }
    return y;
  });
  return [xs, ...ys];
}

// Tick labels with as many decimals as it takes to tell them apart (at most 4 more).
function ticks(splits, opts) {
  let labels = splits.map((v) => formatUnit(v, opts.unit, opts.decimals));
  for (let d = 1; d <= 4 && opts.decimals === undefined && new Set(labels).size < labels.length; d++) {
    labels = splits.map((v) => formatUnit(v, opts.unit, d));
  }
  return labels;
}

// Without uPlot's legend (dashboard panels draw their own), hovering shows the time and the
// values under the cursor, largest first, as Grafana's "all series" tooltip does.
function tooltip(u, series, fmt) {
  let tip = u.root.querySelector('.tip');
  if (!tip) {
    tip = document.createElement('div');
    tip.className = 'tip';
    u.over.append(tip);
  }
  const i = u.cursor.idx;
  if (i === null || i === undefined) {
    tip.hidden = true;
    return;
  }
  const rows = series.map((s, k) => [s, u.data[k + 1][i]]).filter(([, v]) => v !== null)
    .sort((a, b) => b[1] - a[1]).slice(0, 12);
  tip.replaceChildren(new Date(u.data[0][i] * 1000).toLocaleString(), ...rows.map(([s, v]) => {
    const row = document.createElement('div');
    row.textContent = `${s.name}: ${fmt(v)}`;
    row.style.borderLeft = `3px solid ${s.color || PALETTE[0]}`;
    return row;
  }));
  tip.hidden = false;
  const left = u.cursor.left;
  tip.style.left = `${left > u.over.clientWidth / 2 ? left - tip.offsetWidth - 12 : left + 12}px`;
  tip.style.top = `${Math.max(0, u.cursor.top - tip.offsetHeight / 2)}px`;
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

// Draws `series` ([{name, values: [[t, "v"]…], color?}]) into `el`, sized to `el` (legend
// included) and following its size.
// opts: unit, decimals, min, max, legend (bool), fillOpacity (0–100), lineWidth, bars, smooth,
// spanGaps, stack,
// height (a fixed plot height; the legend then adds to it), xRange ([from, to] in seconds),
// onZoom(fromMs, toMs) (called for a drag-selected range instead of zooming the chart).
export function chart(el, series, opts = {}) {
  const data = align(series);
  if (opts.stack) {
    // Grafana's "normal" stacking: each series drawn on top of the sum of those before it.
    for (let i = 2; i < data.length; i++) {
      data[i] = data[i].map((v, j) => (v === null ? null : v + (data[i - 1][j] ?? 0)));
    }
  }
  const fmt = (v) => (v === null || v === undefined ? '–' : formatUnit(v, opts.unit, opts.decimals));
  const width = Math.max(el.clientWidth, 100);
  const axisColor = '#9fa7b3';
  const grid = {stroke: 'rgba(255,255,255,0.08)', width: 1};
  const u = new uPlot({
    width,
    height: opts.height || Math.max(el.clientHeight, 80),
    series: [
      {value: (self, t) => (t === null ? '' : new Date(t * 1000).toLocaleString())},
      ...series.map((s, i) => {
        const c = s.color || PALETTE[i % PALETTE.length];
        return {
          label: s.name,
          stroke: c,
          width: opts.lineWidth ?? 1,
          fill: opts.fillOpacity ? alpha(c, opts.fillOpacity / 100) : undefined,
          paths: opts.bars ? uPlot.paths.bars({size: [0.8, 50]}) : opts.smooth ? uPlot.paths.spline() : undefined,
          spanGaps: !!opts.spanGaps,
          points: {show: false},
          value: (self, v) => fmt(v),
        };
      }),
    ],
    axes: [
      {stroke: axisColor, grid, ticks: grid},
      {
        stroke: axisColor,
        grid,
        ticks: grid,
        values: (self, splits) => ticks(splits, opts),
        // Wide enough for the longest tick label.
        size: (self, values) => 18 + 8 * Math.max(4, ...(values || []).map((v) => v.length)),
      },
    ],
    scales: {
      // A dashboard shows its whole time range, data or not.
      x: opts.xRange ? {time: true, range: () => opts.xRange} : {time: true},
      y: {
        range: (self, lo, hi) => {
          const [a, b] = uPlot.rangeNum(lo ?? 0, hi ?? 1, 0.1, true);
          return [opts.min ?? a, opts.max ?? b];
        },
      },
    },
    legend: {show: opts.legend !== false, live: true},
    // With `onZoom` the drag goes to the caller instead of zooming this chart alone.
    cursor: {points: {size: 5}, drag: {setScale: !opts.onZoom}},
    hooks: {
      ...(opts.legend === false ? {setCursor: [(self) => tooltip(self, series, fmt)]} : {}),
      // A drag selects a time range: handed to `onZoom` (the dashboard's time range) when set.
      ...(opts.onZoom ? {setSelect: [(self) => {
        if (self.select.width < 5) return;
        const from = self.posToVal(self.select.left, 'x');
        const to = self.posToVal(self.select.left + self.select.width, 'x');
        self.setSelect({left: 0, width: 0, top: 0, height: 0}, false);
        opts.onZoom(Math.round(from * 1000), Math.round(to * 1000));
      }]} : {}),
    },
  }, data, el);
  // With a fixed plot height the legend just follows; otherwise the box holds both, the
  // legend scrolling within at most 40 % of it. Then follow the box's width (and height).
  const fit = () => {
    const w = Math.max(el.clientWidth, 100);
    if (opts.height) return u.setSize({width: w, height: opts.height});
    const legend = u.root.querySelector('.u-legend');
    if (legend) legend.style.maxHeight = `${Math.floor(el.clientHeight * 0.4)}px`;
    const lh = legend ? legend.offsetHeight : 0;
    u.setSize({width: w, height: Math.max(el.clientHeight - lh - 4, 60)});
  };
  fit();
  let seen = [el.clientWidth, el.clientHeight];
  const observer = new ResizeObserver(() => {
    const now = [el.clientWidth, el.clientHeight];
    if (Math.abs(now[0] - seen[0]) > 2 || (!opts.height && Math.abs(now[1] - seen[1]) > 2)) {
      seen = now;
      fit();
    }
  });
  observer.observe(el);
  // Destroying the chart (a panel redrawn on refresh) stops following the box too.
  const destroy = u.destroy.bind(u);
  u.destroy = () => {
    observer.disconnect();
    destroy();
  };
  return u;
}
