// The histogram: messages per interval stacked by status, and aborted
// messages by kind, as inline SVG. The API returns every interval of the
// range (empty ones too), so the buckets alone give the time axis.

import { el, svg, clear, formatDate, formatClock } from './dom.js';

// Stacking order, bottom up: the good news at the base, the trouble on top
// where the eye lands.
export const STATUS_ORDER = ['delivered', 'split', 'queued', 'receiving', 'quarantined', 'delayed', 'bounced', 'aborted', 'rejected', 'dropped'];
// Every abort kind of the tracking model (tracking.Aborts; web's
// TestPageLists holds them equal): the broken connections first, then the
// timeouts and limits, the sender's own, and the ESA's undecided ones.
export const ABORT_ORDER = ['peer_reset', 'peer_closed', 'io_error', 'lost', 'tls_failed', 'timeout', 'time_limit',
  'idle_timeout', 'bad_commands', 'junk_commands', 'error_limit', 'pipelining', 'policy', 'protocol', 'shutdown',
  'sender_quit', 'sender_reset', 'sender', 'injection', 'unknown'];

const MARGIN = { left: 40, right: 8, top: 10, bottom: 22 };
const MIN_LABEL_SPACING = 56; // px between time labels

// drawCharts replaces container's content with both charts and their
// legends. onPick(start, end) is called when a bar is clicked.
export function drawCharts(container, buckets, onPick) {
  clear(container);
  if (!buckets.length) {
    container.append(el('p', { class: 'muted' }, 'No intervals in this range.'));
    return;
  }
  const width = Math.max(320, Math.floor(container.clientWidth || 800));
  const step = stepOf(buckets);
  const common = { buckets, width, step, onPick };
  container.append(
    chartBlock({ ...common, title: 'Messages by status', field: 'status', order: STATUS_ORDER, prefix: 's-', height: 150, testid: 'chart-status' }),
    chartBlock({ ...common, title: 'Aborted by kind', field: 'abort', order: ABORT_ORDER, prefix: 'a-', height: 84, testid: 'chart-aborts' }),
  );
}

function chartBlock(o) {
  const totals = totalsOf(o.buckets, o.field, o.order);
  return el('figure', { class: 'chart' },
    el('figcaption', {}, o.title),
    drawChart(o),
    legend(o.order, o.prefix, totals, o.testid + '-legend'));
}

function drawChart({ buckets, field, order, prefix, width, height, step, onPick, testid, title }) {
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const max = Math.max(1, ...buckets.map((b) => sum(b[field], order)));
  const barW = plotW / buckets.length;
  const root = svg('svg', {
    width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': title, 'data-testid': testid, class: 'chart-svg',
  });
  root.append(yAxis(max, plotH, width), xAxis(buckets, barW, step, plotH));
  buckets.forEach((b, i) => root.append(bucketBars(b, i, { field, order, prefix, barW, plotH, max, step, onPick })));
  return root;
}

function yAxis(max, plotH, width) {
  const g = svg('g', { class: 'axis' });
  const x = MARGIN.left - 6;
  for (const [value, y] of [[max, MARGIN.top], [0, MARGIN.top + plotH]]) {
    g.append(svg('line', { x1: MARGIN.left, x2: width - MARGIN.right, y1: y, y2: y, class: value ? 'grid' : 'baseline' }));
    g.append(svg('text', { x, y: y + 4, 'text-anchor': 'end' }, String(value)));
  }
  return g;
}

// xAxis labels the intervals that start on round local times (every 3
// hours, at midnight...), as far apart as the labels need.
function xAxis(buckets, barW, step, plotH) {
  const g = svg('g', { class: 'axis' });
  const y = MARGIN.top + plotH + 15;
  const period = labelPeriod(step, barW);
  buckets.forEach((b, i) => {
    const d = new Date(b.start);
    if (!onPeriod(d, period)) return;
    const x = MARGIN.left + i * barW;
    const midnight = d.getHours() === 0 && d.getMinutes() === 0;
    const text = midnight ? formatDate(d).slice(5) : formatClock(d);
    g.append(svg('line', { x1: x, x2: x, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 4, class: 'tick' }));
    g.append(svg('text', { x: x + 2, y, class: midnight ? 'day' : '' }, text));
  });
  return g;
}

const MINUTE = 60000;
const LABEL_PERIODS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * MINUTE);

function labelPeriod(step, barW) {
  const least = step * Math.ceil(MIN_LABEL_SPACING / barW);
  return LABEL_PERIODS.find((p) => p >= least && p % step === 0) || least;
}

// onPeriod: d starts a period counted from local midnight (weeks from a
// local midnight too, which is as good as any).
function onPeriod(d, period) {
  const local = d.getTime() - d.getTimezoneOffset() * MINUTE;
  return local % period === 0;
}

// bucketBars is one interval's column: a stack of bars and a transparent
// target over the whole height that carries the tooltip and the click.
function bucketBars(b, i, o) {
  const start = new Date(b.start);
  const end = new Date(start.getTime() + o.step);
  const x = MARGIN.left + i * o.barW;
  const w = Math.max(1, o.barW - (o.barW > 4 ? 1 : 0));
  const counts = b[o.field] || {};
  const g = svg('g', { class: 'bucket', 'data-start': b.start });
  g.append(svg('title', {}, tooltip(start, end, counts, o.order)));
  let y = MARGIN.top + o.plotH;
  for (const key of o.order) {
    const n = counts[key] || 0;
    if (!n) continue;
    const h = (n / o.max) * o.plotH;
    y -= h;
    g.append(svg('rect', {
      x: x.toFixed(2), y: y.toFixed(2), width: w.toFixed(2), height: h.toFixed(2),
      class: `bar ${o.prefix}${key}`, 'data-key': key, 'data-count': n,
    }));
  }
  const hit = svg('rect', { x: x.toFixed(2), y: MARGIN.top, width: w.toFixed(2), height: o.plotH, class: 'hit' });
  if (o.onPick) hit.addEventListener('click', () => o.onPick(start, end));
  g.append(hit);
  return g;
}

function tooltip(start, end, counts, order) {
  const lines = [`${formatDate(start)} ${formatClock(start)} – ${formatDate(end) === formatDate(start) ? '' : formatDate(end) + ' '}${formatClock(end)}`];
  const parts = order.filter((k) => counts[k]).map((k) => `${label(k)}: ${counts[k]}`);
  lines.push(...(parts.length ? parts : ['none']));
  lines.push('Click to search this interval');
  return lines.join('\n');
}

function legend(order, prefix, totals, testid) {
  return el('ul', { class: 'legend', 'data-testid': testid },
    order.map((key) => el('li', { class: totals[key] ? '' : 'zero' },
      el('span', { class: `swatch ${prefix}${key}`, 'aria-hidden': 'true' }),
      `${label(key)} `, el('span', { class: 'count' }, String(totals[key] || 0)))));
}

// label is how a status or abort kind reads in the legend.
export function label(key) {
  return key.replaceAll('_', ' ');
}

function totalsOf(buckets, field, order) {
  const out = {};
  for (const key of order) out[key] = buckets.reduce((n, b) => n + ((b[field] || {})[key] || 0), 0);
  return out;
}

function sum(counts, order) {
  return order.reduce((n, k) => n + ((counts || {})[k] || 0), 0);
}

function stepOf(buckets) {
  if (buckets.length < 2) return 3600000;
  return new Date(buckets[1].start).getTime() - new Date(buckets[0].start).getTime();
}
