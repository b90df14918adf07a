// The quarantine view: the gateway's quarantines (GET /api/quarantines),
// the messages in one (#/q/{name}), one message to read (#/q/{name}/{mid}:
// its header and text, which the gateway has escaped and the page puts in
// as text only: no HTML of a message is ever rendered), and release and
// delete (POST .../release, .../delete).

import { getJSON, postJSON, takeTokenFromFragment, Unauthorized, ApiError } from './api.js';
import { installTokenForm, showTokenForm } from './token.js';
import { el, clear, byId, formatTime, formatBytes } from './dom.js';

const ASK_TOKEN = 'This gateway\'s API needs an access token. Enter it here, or open the page at …/quarantine.html#token=<token>.';

const ROUTE = /^#\/q\/([^/]+)(?:\/(\d+))?$/;

let seq = 0; // answers to an older request than the newest are dropped

function init() {
  takeTokenFromFragment();
  installTokenForm(route);
  window.addEventListener('hashchange', route);
  route();
}

function route() {
  const m = ROUTE.exec(window.location.hash);
  const name = m ? decodeURIComponent(m[1]) : '';
  const mid = m && m[2] ? m[2] : '';
  show(name, mid);
}

async function show(name, mid) {
  const mine = ++seq;
  byId('q-error').hidden = true;
  try {
    const { quarantines } = await getJSON('/api/quarantines');
    if (mine !== seq) return;
    fillQuarantines(quarantines, name);
    if (!name) {
      byId('q-messages-panel').hidden = true;
      byId('q-detail').hidden = true;
      return;
    }
    const path = `/api/quarantines/${encodeURIComponent(name)}/messages`;
    const msgs = await getJSON(path);
    if (mine !== seq) return;
    fillMessages(name, msgs, mid);
    if (!mid) {
      byId('q-detail').hidden = true;
      return;
    }
    const detail = await getJSON(`${path}/${mid}`);
    if (mine !== seq) return;
    fillDetail(detail);
  } catch (err) {
    if (mine === seq) showError(err);
  }
}

function fillQuarantines(list, current) {
  const body = clear(byId('q-list').tBodies[0]);
  for (const q of list) {
    const link = el('a', { href: `#/q/${encodeURIComponent(q.name)}`, 'data-testid': 'q-link' }, q.name);
    body.append(el('tr', { 'data-testid': 'q-row', 'data-name': q.name, class: q.name === current ? 'q-selected' : undefined },
      el('td', {}, link),
      el('td', { 'data-testid': 'q-row-count' }, String(q.messages)),
      el('td', {}, q.bytes ? formatBytes(q.bytes) : '0'),
      el('td', {}, q.max_size ? formatBytes(q.max_size) : 'none'),
      el('td', {}, q.retention ? duration(q.retention / 1e6) : 'none'),
      el('td', {}, q.on_expiry || '—')));
  }
}

function fillMessages(name, msgs, selected) {
  byId('q-messages-panel').hidden = false;
  byId('q-name').textContent = `"${name}"`;
  byId('q-count').textContent = `${msgs.length} message${msgs.length === 1 ? '' : 's'}`;
  const body = clear(byId('q-messages').tBodies[0]);
  if (msgs.length === 0) {
    body.append(el('tr', { class: 'placeholder' }, el('td', { colspan: 9 }, 'No message in this quarantine.')));
    return;
  }
  for (const m of msgs) {
    const here = m.in.find((h) => h.quarantine === name) || m.in[0];
    const read = el('a', { href: `#/q/${encodeURIComponent(name)}/${m.mid}`, 'data-testid': 'q-read' }, 'Read');
    const release = el('button', { type: 'button', 'data-testid': 'q-release' }, 'Release');
    const del = el('button', { type: 'button', class: 'danger', 'data-testid': 'q-delete' }, 'Delete');
    release.addEventListener('click', () => act(name, m.mid, 'release', release));
    del.addEventListener('click', () => confirmThen(del, 'Really delete?', () => act(name, m.mid, 'delete', del)));
    const others = m.in.filter((h) => h.quarantine !== name).map((h) => h.quarantine);
    body.append(el('tr', { 'data-testid': 'q-message', 'data-mid': String(m.mid), class: String(m.mid) === selected ? 'q-selected' : undefined },
      el('td', {}, String(m.mid)),
      el('td', {}, formatTime(here.since)),
      el('td', {}, here.expires ? `${formatTime(here.expires)} (${here.on_expiry})` : 'never'),
      el('td', { 'data-testid': 'q-from' }, m.from ? `<${m.from}>` : '<>'),
      el('td', {}, (m.recipients || []).join(', ')),
      el('td', { 'data-testid': 'q-subject' }, m.subject),
      el('td', {}, here.reason, others.length ? el('div', { class: 'muted' }, `also in ${others.join(', ')}`) : undefined,
        m.deleted ? el('div', { class: 'muted' }, 'deleted from another quarantine: will not be delivered') : undefined),
      el('td', {}, formatBytes(m.size)),
      el('td', { class: 'q-actions' }, read, ' ', release, del)));
  }
}

function fillDetail(d) {
  byId('q-detail').hidden = false;
  byId('q-detail-mid').textContent = String(d.mid);
  const facts = clear(byId('q-detail-facts').tBodies[0]);
  const row = (k, v) => facts.append(el('tr', {}, el('th', {}, k), el('td', {}, v)));
  row('Received', formatTime(d.received));
  row('Sender', d.from ? `<${d.from}>` : '<>');
  row('Recipients', (d.recipients || []).join(', '));
  row('Size', formatBytes(d.size));
  for (const h of d.in) row(`In "${h.quarantine}"`, `since ${formatTime(h.since)}: ${h.reason}`);
  const header = clear(byId('q-header').tBodies[0]);
  for (const f of d.header) header.append(el('tr', {}, el('th', {}, f.Name), el('td', {}, f.Value)));
  byId('q-text-type').textContent = d.text_type ? `(${d.text_type}, shown as text${d.truncated ? '; cut' : ''})` : '(no text part)';
  byId('q-text').textContent = d.text;
}

async function act(name, mid, op, button) {
  button.disabled = true;
  try {
    await postJSON(`/api/quarantines/${encodeURIComponent(name)}/messages/${mid}/${op}`);
    const status = byId('q-status');
    status.textContent = op === 'release'
      ? `MID ${mid} released from "${name}": it is scanned again by the stages after the quarantine, then delivered (when it is in no other quarantine).`
      : `MID ${mid} deleted from "${name}": it will not be delivered.`;
    status.hidden = false;
    if (window.location.hash !== `#/q/${encodeURIComponent(name)}`) window.location.hash = `#/q/${encodeURIComponent(name)}`;
    else route();
  } catch (err) {
    button.disabled = false;
    showError(err);
  }
}

// confirmThen asks again on the button itself (no dialog): a second click
// within a few seconds does it.
function confirmThen(button, question, fn) {
  if (button.dataset.armed) {
    delete button.dataset.armed;
    fn();
    return;
  }
  const was = button.textContent;
  button.dataset.armed = '1';
  button.textContent = question;
  setTimeout(() => {
    if (button.dataset.armed) {
      delete button.dataset.armed;
      button.textContent = was;
    }
  }, 5000);
}

function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s % 86400 === 0) return `${s / 86400}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

function showError(err) {
  const box = byId('q-error');
  if (err instanceof Unauthorized) {
    showTokenForm(err.message, ASK_TOKEN);
    box.textContent = 'The API needs the access token (above).';
  } else if (err instanceof ApiError) {
    box.textContent = err.message;
  } else {
    box.textContent = `The gateway did not answer: ${err.message}`;
  }
  box.hidden = false;
}

init();
