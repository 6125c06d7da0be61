// Number, unit, duration and time formatting in Grafana's style, and Grafana's colors.

// Up to `sig` significant digits, trailing zeros dropped; `decimals` fixes the count instead.
export function num(v, decimals) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (decimals !== undefined && decimals !== null) return v.toFixed(decimals);
  const a = Math.abs(v);
  if (a === 0) return '0';
  const d = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : Math.min(6, 2 - Math.floor(Math.log10(a)));
  return String(Number(v.toFixed(d)));
}

// Scales by `factor` through `suffixes` (e.g. 1000 and ['', ' K', ' Mil']), starting at `start`.
function scaled(v, decimals, factor, suffixes, start = 0) {
  let i = start;
  let x = v;
  while (Math.abs(x) >= factor && i < suffixes.length - 1) {
    x /= factor;
    i++;
  }
  // Small values of SI units go down a prefix (0.5 W → 500 mW) only from the base unit.
  return num(x, decimals) + suffixes[i];
}

const SI = (unit) => ['n', 'µ', 'm', '', 'k', 'M', 'G', 'T', 'P', 'E'].map((p) => ` ${p}${unit}`);
const IEC = (unit) => ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'].map((p) => ` ${p}${unit}`);

function si(v, decimals, unit, start = 3) {
  const s = SI(unit);
  let i = start;
  let x = v;
  // Below 1 descend (m, µ, n) for the base unit only, as Grafana does for SI units.
  while (x !== 0 && Math.abs(x) < 1 && i > 0 && start === 3) {
    x *= 1000;
    i--;
  }
  return scaled(x, decimals, 1000, s, i);
}

// Grafana's duration units: seconds start at ms below 1 and go up to min, hour, day, week, year.
function duration(v, decimals, unitMs) {
  const ms = v * unitMs;
  const a = Math.abs(ms);
  const steps = [
    [1, ' ms'], [1000, ' s'], [60000, ' min'], [3600000, ' hour'],
    [86400000, ' day'], [604800000, ' week'], [31536000000, ' year'],
  ];
  // Zero keeps the field's own unit (an axis in seconds starts at "0 s").
  if (a === 0) return num(0, decimals) + (steps.find((s) => s[0] === unitMs)?.[1] ?? ' ms');
  if (a < 1 && unitMs >= 1) return num(ms, decimals) + ' ms';
  let pick = steps[0];
  for (const s of steps) if (a >= s[0]) pick = s;
  return num(ms / pick[0], decimals) + pick[1];
}

const SHORT = ['', ' K', ' Mil', ' Bil', ' Tri', ' Quadr', ' Quint'];

// A value in Grafana unit `unit` (fieldConfig.defaults.unit); unknown units become a suffix.
export function formatUnit(v, unit, decimals) {
  if (v === null || v === undefined) return '–';
  if (!Number.isFinite(v)) return num(v);
  switch (unit || 'none') {
    case 'none': return num(v, decimals);
    case 'short': return scaled(v, decimals, 1000, SHORT);
    case 'percent': return num(v, decimals) + '%';
    case 'percentunit': return num(v * 100, decimals) + '%';
    case 'bytes': return scaled(v, decimals, 1024, IEC('B'));
    case 'decbytes': return scaled(v, decimals, 1000, [' B', ' kB', ' MB', ' GB', ' TB', ' PB']);
    case 'kbytes': return scaled(v, decimals, 1024, [' KiB', ' MiB', ' GiB', ' TiB', ' PiB']);
    case 'mbytes': return scaled(v, decimals, 1024, [' MiB', ' GiB', ' TiB', ' PiB']);
    case 'gbytes': return scaled(v, decimals, 1000, [' GB', ' TB', ' PB', ' EB']);
    case 'binBps': return scaled(v, decimals, 1024, IEC('B/s'));
    case 'Bps': return scaled(v, decimals, 1000, [' B/s', ' kB/s', ' MB/s', ' GB/s', ' TB/s']);
    case 'GBs': return scaled(v, decimals, 1000, [' GB/s', ' TB/s', ' PB/s']);
    case 'bps': return scaled(v, decimals, 1000, [' b/s', ' kb/s', ' Mb/s', ' Gb/s', ' Tb/s']);
    case 'reqps': return scaled(v, decimals, 1000, SHORT.map((s) => `${s} req/s`));
    case 'ops': return scaled(v, decimals, 1000, SHORT.map((s) => `${s} ops/s`));
    case 'rps': return scaled(v, decimals, 1000, SHORT.map((s) => `${s} rd/s`));
    case 'wps': return scaled(v, decimals, 1000, SHORT.map((s) => `${s} wr/s`));
    case 'celsius': return num(v, decimals) + '°C';
    case 'fahrenheit': return num(v, decimals) + '°F';
    case 'watt': return si(v, decimals, 'W');
    case 'kwatt': return si(v, decimals, 'W', 4);
    case 'hertz': return si(v, decimals, 'Hz');
    case 'volt': return si(v, decimals, 'V');
    case 'amp': return si(v, decimals, 'A');
    case 'ns': return duration(v, decimals, 1e-6);
    case 'µs': return duration(v, decimals, 1e-3);
    case 'ms': return duration(v, decimals, 1);
    case 's': return duration(v, decimals, 1000);
    case 'm': return duration(v, decimals, 60000);
    case 'h': return duration(v, decimals, 3600000);
    case 'd': return duration(v, decimals, 86400000);
    case 'dateTimeAsIso': return new Date(v).toISOString();
    default: return `${num(v, decimals)} ${unit}`;
  }
}

// "3.2s ago", "2m 5s", for the status pages.
export function ago(date) {
  const s = (Date.now() - new Date(date).getTime()) / 1000;
  return `${humanSeconds(s)} ago`;
}

export function humanSeconds(s) {
  if (s < 0) return '0s';
  if (s < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const parts = [];
  for (const [n, u] of [[86400, 'd'], [3600, 'h'], [60, 'm'], [1, 's']]) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)}${u}`);
      s %= n;
    }
  }
  return parts.slice(0, 2).join(' ');
}

export function isoTime(date) {
  return new Date(date).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// Grafana's classic palette, in its order.
export const PALETTE = [
  '#7EB26D', '#EAB839', '#6ED0E0', '#EF843C', '#E24D42', '#1F78C1', '#BA43A9', '#705DA0',
  '#508642', '#CCA300', '#447EBC', '#C15C17', '#890F02', '#0A437C', '#6D1F62', '#584477',
];

// Grafana's named colors (the base hue and its dark/semi-dark/light/super-light shades).
const HUES = {
  red: ['#C4162A', '#E02F44', '#F2495C', '#FF7383', '#FFA6B0'],
  orange: ['#FA6400', '#FF780A', '#FF9830', '#FFB357', '#FFCB7D'],
  yellow: ['#E0B400', '#F2CC0C', '#FADE2A', '#FFEE52', '#FFF899'],
  green: ['#37872D', '#56A64B', '#73BF69', '#96D98D', '#C8F2C2'],
  blue: ['#1F60C4', '#3274D9', '#5794F2', '#8AB8FF', '#C0D8FF'],
  purple: ['#8F3BB8', '#A352CC', '#B877D9', '#CA95E5', '#DEB6F2'],
};
const SHADES = {'dark-': 0, 'semi-dark-': 1, '': 2, 'light-': 3, 'super-light-': 4};

export function color(name) {
  if (!name) return PALETTE[0];
  if (name === 'text') return '#d8d9da';
  if (name === 'transparent') return 'transparent';
  for (const [prefix, i] of Object.entries(SHADES).sort((a, b) => b[0].length - a[0].length)) {
    if (name.startsWith(prefix) && HUES[name.slice(prefix.length)]) return HUES[name.slice(prefix.length)][i];
  }
  return name; // #hex, rgb(…) or a CSS name
}

// The threshold step a value falls into (fieldConfig.defaults.thresholds), as a color.
export function thresholdColor(v, thresholds, min, max) {
  const steps = thresholds?.steps;
  if (!steps?.length) return null;
  let x = v;
  if (thresholds.mode === 'percentage' && max !== undefined && max !== min) {
    x = ((v - min) / (max - min)) * 100;
  }
  let c = steps[0].color;
  for (const s of steps) if (s.value === null || s.value === undefined || x >= s.value) c = s.color;
  return color(c);
}
