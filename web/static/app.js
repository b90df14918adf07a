// The tracking page: a search form over GET /api/messages with a chart of
// GET /api/histogram, and a message page (#/message/{host}/{mid}) over
// GET /api/messages/{host}/{mid}. Routes live in the fragment so that the
// browser's back button returns to the same search.

import { getJSON, takeTokenFromFragment, Unauthorized, ApiError } from './api.js';
import { installTokenForm, showTokenForm } from './token.js';
import { el, clear, byId, formatTime, formatBytes, localToISO, zoneLabel, formatDate, formatClock } from './dom.js';
import { drawCharts, STATUS_ORDER, ABORT_ORDER, label } from './chart.js';

const ASK_TOKEN = 'This gateway\'s tracking API needs an access token. Enter it here, or open the page at …/#token=<token>.';

const SEARCH_PREFIX = '#/search?';
const MESSAGE_ROUTE = /^#\/message\/([^/]+)\/(\d+)$/;

let lastSearchHash = '#/';
let lastBuckets = null;
let requestSeq = 0; // answers to an older request than the newest are dropped

function init() {
  takeTokenFromFragment();
  byId('zone').textContent = zoneLabel();
  byId('search-form').addEventListener('submit', onSearchSubmit);
  byId('search-clear').addEventListener('click', onClear);
  for (const b of document.querySelectorAll('[data-since]')) b.addEventListener('click', () => onRange(b.dataset.since));
  installTokenForm(route);
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', debounce(redrawChart, 150));
  route();
}

function route() {
  const hash = window.location.hash;
  const m = MESSAGE_ROUTE.exec(hash);
  if (m) {
    showMessage(decodeURIComponent(m[1]), m[2]);
    return;
  }
  const params = new URLSearchParams(hash.startsWith(SEARCH_PREFIX) ? hash.slice(SEARCH_PREFIX.length) : '');
  showSearch(params);
}

// ---- the search page ----

function showSearch(params) {
  lastSearchHash = window.location.hash || '#/';
  document.title = 'Message Tracking · mailgate';
  byId('message-view').hidden = true;
  byId('search-view').hidden = false;
  fillForm(params);
  const seq = ++requestSeq;
  loadResults(params, seq);
  loadChart(params, seq);
}

function onSearchSubmit(event) {
  event.preventDefault();
  const hash = SEARCH_PREFIX + formParams().toString();
  if (window.location.hash === hash) route(); // same search again: no hashchange
  else window.location.hash = hash;
}

function onClear() {
  byId('search-form').reset();
  window.location.hash = '#/';
}

function onRange(since) {
  byId('f-since').value = since;
  byId('f-until').value = '';
  byId('search-form').requestSubmit();
}

// onPick narrows the search to one interval of the chart.
function onPick(start, end) {
  byId('f-since').value = `${formatDate(start)} ${formatClock(start)}`;
  byId('f-until').value = `${formatDate(end)} ${formatClock(end)}`;
  byId('search-form').requestSubmit();
}

// formParams are the form's filled fields, as typed.
function formParams() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(byId('search-form'))) {
    if (String(value).trim() !== '') params.set(key, String(value).trim());
  }
  return params;
}

function fillForm(params) {
  const form = byId('search-form');
  for (const field of form.elements) {
    if (field.name) field.value = params.get(field.name) || '';
  }
}

// apiParams turns typed local times into RFC 3339 for the gateway.
function apiParams(params) {
  const out = new URLSearchParams(params);
  for (const key of ['since', 'until']) {
    if (out.has(key)) out.set(key, localToISO(out.get(key)));
  }
  return out;
}

async function loadResults(params, seq) {
  const tbody = byId('results').tBodies[0];
  setSearchError('');
  clear(tbody).append(messageRow('Searching…'));
  byId('result-count').textContent = '';
  try {
    const messages = await getJSON('api/messages', apiParams(params));
    if (seq !== requestSeq) return;
    renderResults(messages, Number(params.get('limit')) || 100);
    loadGaps(params, seq);
  } catch (err) {
    if (seq !== requestSeq) return;
    clear(tbody);
    showError(err, setSearchError);
  }
}

// loadGaps says above the results when the range searched spans records
// the store misses for good (GET /api/gaps): the answer is incomplete.
async function loadGaps(params, seq) {
  const box = byId('gaps');
  const stamp = (iso) => { const d = new Date(iso); return `${formatDate(d)} ${formatClock(d)}`; };
  try {
    const gaps = await getJSON('api/gaps', apiParams(params));
    if (seq !== requestSeq) return;
    box.textContent = gaps.map((g) => `Records of ${g.host} between ${stamp(g.from)} and ${stamp(g.to)} ` +
      'may be missing or incomplete: the mail log rolled away before they were stored.').join('\n');
    box.hidden = gaps.length === 0;
  } catch {
    box.hidden = true; // the search itself reports a failing store
  }
}

async function loadChart(params, seq) {
  const box = byId('chart');
  const chartParams = apiParams(params);
  chartParams.delete('limit');
  try {
    const buckets = await getJSON('api/histogram', chartParams);
    if (seq !== requestSeq) return;
    lastBuckets = buckets;
    byId('chart-range').textContent = rangeText(buckets, params);
    redrawChart();
  } catch (err) {
    if (seq !== requestSeq) return;
    lastBuckets = null;
    clear(box);
    byId('chart-range').textContent = '';
    if (err instanceof Unauthorized) showTokenForm(err.message, ASK_TOKEN);
  }
}

function redrawChart() {
  if (lastBuckets && !byId('search-view').hidden) drawCharts(byId('chart'), lastBuckets, onPick);
}

function rangeText(buckets, params) {
  if (!buckets.length) return '';
  const first = new Date(buckets[0].start);
  const last = new Date(buckets[buckets.length - 1].start);
  const width = buckets.length > 1 ? last - new Date(buckets[buckets.length - 2].start) : 0;
  const defaulted = !params.get('since') && !params.get('until') ? ' (the last 24 hours; set Since for more)' : '';
  return `${formatDate(first)} ${formatClock(first)} – ${formatDate(last)} ${formatClock(new Date(last.getTime() + width))}, ` +
    `${buckets.length} × ${durationText(width)}${defaulted}`;
}

function durationText(ms) {
  const min = Math.round(ms / 60000);
  if (min % 1440 === 0) return `${min / 1440} d`;
  if (min % 60 === 0) return `${min / 60} h`;
  return `${min} min`;
}

function renderResults(messages, limit) {
  const tbody = clear(byId('results').tBodies[0]);
  const n = messages.length;
  byId('result-count').textContent = n >= limit
    ? `the newest ${n} messages (the limit): narrow the search or raise “At most”`
    : `${n} message${n === 1 ? '' : 's'}`;
  if (!n) {
    tbody.append(messageRow('No message matches.'));
    return;
  }
  for (const m of messages) tbody.append(resultRow(m));
}

function resultRow(m) {
  const href = messageHash(m.host, m.mid);
  const row = el('tr', { class: 'result', 'data-testid': 'result-row', 'data-host': m.host, 'data-mid': m.mid, 'data-status': m.status },
    el('td', { class: 'c-time' }, timeCell(m.started)),
    el('td', { class: 'c-host', title: m.host }, m.host),
    el('td', { class: 'c-mid' }, el('a', { href, 'data-testid': 'result-link' }, String(m.mid)),
      el('span', { class: 'mid-host', title: m.host }, m.host)),
    el('td', { class: 'c-sender', title: m.sender }, m.sender || '<>'),
    recipientsCell(m.recipients || []),
    el('td', { class: 'c-subject', title: m.subject }, m.subject),
    el('td', { class: 'c-status' }, statusBadge(m.status, m.abort)));
  row.addEventListener('click', (event) => {
    if (!event.target.closest('a')) window.location.hash = href;
  });
  return row;
}

// timeCell splits date and time so that a narrow table can stack them.
function timeCell(iso) {
  const [date, clock] = formatTime(iso).split(' ');
  return clock ? [el('span', { class: 'date' }, date), ' ', el('span', { class: 'clock' }, clock)] : date;
}

function recipientsCell(recipients) {
  const all = recipients.map((r) => r.address).filter(Boolean);
  const shown = all.length ? all[0] + (all.length > 1 ? ` +${all.length - 1}` : '') : '—';
  return el('td', { class: 'c-recipients', title: all.join('\n') }, shown);
}

function messageRow(text) {
  return el('tr', { class: 'placeholder' }, el('td', { colspan: 7 }, text));
}

function setSearchError(text) {
  const p = byId('search-error');
  p.textContent = text;
  p.hidden = !text;
}

// ---- the message page ----

async function showMessage(host, mid) {
  byId('search-view').hidden = true;
  byId('message-view').hidden = false;
  byId('back').setAttribute('href', lastSearchHash);
  setMessageError('');
  byId('message-body').hidden = true;
  document.title = `MID ${mid} · Message Tracking · mailgate`;
  const seq = ++requestSeq;
  try {
    const detail = await getJSON(`api/messages/${encodeURIComponent(host)}/${mid}`);
    if (seq !== requestSeq) return;
    renderMessage(detail);
    byId('message-body').hidden = false;
  } catch (err) {
    if (seq !== requestSeq) return;
    showError(err, setMessageError);
  }
}

function setMessageError(text) {
  const box = byId('message-error');
  box.textContent = text;
  box.hidden = !text;
}

function renderMessage(d) {
  const m = d.message;
  const conns = d.connections || [];
  const inbound = conns.find((c) => c.kind === 'ICID' && c.id === m.icid);
  clear(byId('message-title')).append(`MID ${m.mid} `, el('span', { class: 'muted' }, `on ${m.host}`), ' ', statusBadge(m.status, m.abort));
  renderExplanation(d.explanation || {});
  renderFacts(byId('envelope'), envelopeFacts(m, d.links || []));
  renderFacts(byId('sending-host'), hostFacts(m, inbound));
  renderAuth(m);
  renderRecipients(m.recipients || [], m.host);
  renderConnections(conns);
  renderTimeline(d.timeline || []);
}

function renderExplanation(x) {
  byId('explanation-summary').textContent = x.summary || '';
  fillList('explanation-why', x.why);
  fillList('explanation-next', x.next);
}

function fillList(id, items) {
  const list = clear(byId(id));
  for (const item of items || []) list.append(el('li', {}, item));
  byId(id + '-block').hidden = !list.children.length;
}

function envelopeFacts(m, links) {
  const facts = [
    ['Received', formatTime(m.started)],
    ['Finished', m.finished ? formatTime(m.finished) : 'not yet: the message is in the gateway'],
    ['MID', `${m.mid} on ${m.host}`],
    ['Envelope sender', m.sender || '<> (null sender: a bounce or notification)'],
    ['Recipients', (m.recipients || []).map((r) => r.address).join(', ') || '—'],
    ['Subject', m.subject || '—'],
    ['Message-ID', m.message_id || '—'],
    ['Size', formatBytes(m.size)],
    ['Status', statusBadge(m.status, m.abort)],
  ];
  if (m.status === 'aborted' || m.abort_reason) facts.push(['Abort', abortText(m)]);
  // The messages it was made from or made (a bounce, a split, a rewrite,
  // a generated copy, a reinjection), each a link to its page.
  if (links.length) {
    facts.push(['Related', el('span', { 'data-testid': 'related' }, links.flatMap((l, i) => [
      i ? ', ' : '', el('a', { href: messageHash(m.host, l.mid), title: l.line || '' }, `MID ${l.mid}`), ` (${l.relation})`]))]);
  }
  if ((m.dcids || []).length) facts.push(['Deliveries', m.dcids.map((id) => `DCID ${id}`).join(', ')]);
  // The scanning engines' final verdicts, one per kind.
  if ((m.verdicts || []).length) {
    facts.push(['Verdicts', el('span', { 'data-testid': 'verdicts' }, m.verdicts.map(verdictText).join(' · '))]);
  }
  return facts;
}

const verdictKinds = { antispam: 'anti-spam', antivirus: 'anti-virus', graymail: 'graymail', outbreak: 'outbreak filters', amp: 'AMP' };

function verdictText(v) {
  let s = `${verdictKinds[v.kind] || v.kind}: ${v.engine ? v.engine + ' ' : ''}${v.verdict}`;
  if (v.detail) s += v.kind === 'antivirus' ? ` '${v.detail}'` : ` (${v.detail})`;
  return s;
}

function abortText(m) {
  const parts = [];
  if (m.status === 'aborted' && m.abort) parts.push(label(m.abort));
  if (m.abort_reason) parts.push(`“${m.abort_reason}”`);
  if (m.abort_state) parts.push(`in SMTP state ${m.abort_state}`);
  if (m.abort_bytes) parts.push(`after ${m.abort_bytes} bytes of DATA`);
  return el('span', { 'data-testid': 'abort-detail' }, parts.join(' · '));
}

function hostFacts(m, c) {
  const facts = [
    ['Reverse DNS hostname', m.remote_host || '—'],
    ['IP address', m.remote_ip || '—'],
    ['Sender group', m.sender_group || '—'],
    ['Incoming connection', m.icid ? `ICID ${m.icid}` : '—'],
  ];
  if (c) {
    facts.push(['Connected', formatTime(c.started)], ['Closed', formatTime(c.finished)], ['How it ended', connEnd(c)]);
  }
  return facts;
}

function connEnd(c) {
  const parts = [];
  if (c.lost) parts.push('lost: the connection broke without QUIT');
  if (c.cause) parts.push(`cause ${c.cause}`);
  if (c.state) parts.push(`in state ${c.state}`);
  if (c.last_command) parts.push(`last command ${c.last_command}`);
  if (c.data_bytes) parts.push(`${c.data_bytes} bytes of DATA`);
  if (!parts.length) return c.finished ? 'closed' : 'open';
  return parts.join(' · ');
}

function renderFacts(table, facts) {
  const tbody = clear(table.tBodies[0]);
  for (const [name, value] of facts) tbody.append(el('tr', {}, el('th', { scope: 'row' }, name), el('td', {}, value)));
}

// renderAuth shows what the message's SPF, DKIM and DMARC lines and its
// HAT's DNS list said; the block is hidden when its log has none.
function renderAuth(m) {
  const rows = [];
  for (const s of m.spf || []) rows.push(['SPF', s.result, `${s.identity} ${s.address}`, '']);
  for (const d of m.dkim || []) {
    rows.push(['DKIM', d.result, d.domain ? `d=${d.domain} s=${d.selector}` : '—', d.reason || '']);
  }
  if (m.dmarc) {
    const aligned = m.dmarc.domain
      ? `SPF aligned ${m.dmarc.spf_aligned ? 'yes' : 'no'}, DKIM aligned ${m.dmarc.dkim_aligned ? 'yes' : 'no'}` : '';
    rows.push(['DMARC', m.dmarc.result, m.dmarc.domain ? `From: ${m.dmarc.domain}` : '—', aligned]);
  }
  if (m.dnslist) rows.push(['DNS list', 'listed', m.remote_ip || '—', `placed in sender group ${m.sender_group || '—'} by ${m.dnslist}`]);
  const tbody = clear(byId('auth-results').tBodies[0]);
  for (const [check, result, identity, detail] of rows) {
    tbody.append(el('tr', { 'data-testid': 'auth-row', 'data-check': check, 'data-result': result },
      el('th', { scope: 'row' }, check),
      el('td', {}, el('span', { class: `badge auth-${AUTH_GOOD.includes(result) ? 'good' : 'bad'}` }, result)),
      el('td', {}, identity), el('td', {}, detail)));
  }
  byId('auth').hidden = !rows.length;
}

// The results that are no sign of forgery.
const AUTH_GOOD = ['pass', 'none', 'neutral'];

// splitLink makes "split off to MID n (...)" a link to MID n's page.
function splitLink(r, host) {
  const m = r.status === 'split' && /^split off to MID (\d+)(.*)$/.exec(r.response || '');
  if (!m) return r.response || '';
  return el('span', {}, 'split off to ', el('a', { href: messageHash(host, Number(m[1])), 'data-testid': 'split-link' }, `MID ${m[1]}`), m[2]);
}

function renderRecipients(recipients, host) {
  const tbody = clear(byId('recipients').tBodies[0]);
  if (!recipients.length) tbody.append(el('tr', { class: 'placeholder' }, el('td', { colspan: 8 }, 'No recipient was accepted.')));
  for (const r of recipients) {
    tbody.append(el('tr', { 'data-testid': 'recipient-row', 'data-status': r.status },
      el('td', {}, r.rid >= 0 ? String(r.rid) : '—'),
      el('td', {}, r.address),
      el('td', { class: 'nowrap' }, statusBadge(r.status)),
      el('td', {}, r.code || ''),
      el('td', { class: 'reply', 'data-testid': 'recipient-reply' }, splitLink(r, host)),
      el('td', {}, r.dcid ? String(r.dcid) : ''),
      el('td', { class: 'nowrap' }, r.next_retry ? formatTime(r.next_retry) : ''),
      el('td', { class: 'nowrap' }, formatTime(r.time))));
  }
}

function renderConnections(conns) {
  const tbody = clear(byId('connections').tBodies[0]);
  if (!conns.length) tbody.append(el('tr', { class: 'placeholder' }, el('td', { colspan: 5 }, 'No connection is recorded.')));
  for (const c of conns) {
    tbody.append(el('tr', { 'data-testid': 'connection-row' },
      el('td', { class: 'nowrap' }, `${c.kind} ${c.id}`),
      el('td', {}, [c.remote_ip, c.remote_host].filter(Boolean).join(' ') || '—'),
      el('td', { class: 'nowrap' }, formatTime(c.started)),
      el('td', { class: 'nowrap' }, formatTime(c.finished)),
      el('td', {}, connEnd(c))));
  }
}

function renderTimeline(entries) {
  const tbody = clear(byId('timeline').tBodies[0]);
  for (const e of entries) {
    const kind = (e.source || '').split(' ')[0].toLowerCase();
    tbody.append(el('tr', { class: 'timeline-row', 'data-testid': 'timeline-row' },
      el('td', { class: 'nowrap' }, formatTime(e.time)),
      el('td', { class: `nowrap source src-${kind}` }, e.source),
      el('td', { class: 'log' }, e.text)));
  }
}

// ---- shared ----

function statusBadge(status, abort) {
  const known = STATUS_ORDER.includes(status) ? status : 'unknown';
  const badge = el('span', { class: `badge status-${known}`, 'data-testid': 'status-badge', 'data-status': status }, status || 'unknown');
  if (status !== 'aborted' || !abort) return badge;
  const kind = ABORT_ORDER.includes(abort) ? abort : 'unknown';
  return el('span', { class: 'badges' }, badge, ' ',
    el('span', { class: `abort-kind abort-${kind}`, 'data-testid': 'abort-kind', 'data-abort': abort }, label(abort)));
}

function messageHash(host, mid) {
  return `#/message/${encodeURIComponent(host)}/${mid}`;
}

function showError(err, show) {
  if (err instanceof Unauthorized) {
    showTokenForm(err.message, ASK_TOKEN);
    show('The tracking API needs the access token (above).');
  } else if (err instanceof ApiError) {
    show(err.message);
  } else {
    show(`The gateway did not answer: ${err.message}`);
  }
}

function debounce(fn, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

init();
