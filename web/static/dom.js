// Building the document from data. Everything from the API is put in as
// text (textContent, attribute values), never parsed as HTML: subjects,
// addresses and replies are written by whoever connects to the gateway.

const SVG_NS = 'http://www.w3.org/2000/svg';

// el makes an element: attrs are attributes (class, data-*, href...);
// children are nodes or strings (which become text nodes).
export function el(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

// svg is el for SVG elements.
export function svg(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

function fill(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function byId(id) {
  return document.getElementById(id);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// formatTime shows an API time in the browser's time zone, to the second;
// null (not yet, never) is a dash.
export function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return `${formatDate(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function formatDate(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function formatClock(d) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// zoneLabel names the time zone the page shows times in.
export function zoneLabel() {
  const offset = -new Date().getTimezoneOffset();
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || '';
  if (offset === 0) return zone && zone !== 'UTC' && zone !== 'Etc/UTC' ? `UTC (${zone})` : 'UTC';
  const sign = offset < 0 ? '−' : '+';
  const abs = Math.abs(offset);
  return `UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}${zone ? ` (${zone})` : ''}`;
}

// localToISO turns a date, or date and time, typed in the browser's zone
// into RFC 3339, so that the gateway (in its own zone) reads what the
// administrator meant; other values (durations, RFC 3339) pass as typed.
export function localToISO(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(value.trim());
  if (!m) return value.trim();
  const [, y, mo, d, h = '0', mi = '0', s = '0'] = m;
  const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  return Number.isNaN(date.getTime()) ? value.trim() : date.toISOString();
}

export function formatBytes(n) {
  if (!n) return '—';
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB (${n} bytes)`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB (${n} bytes)`;
}
