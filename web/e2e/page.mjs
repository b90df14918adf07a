// Drives the tracking page in Debian's Chromium and checks what an
// administrator sees. web/page_test.go starts a gateway page over the
// fixture logs (web/testdata) and runs:
//
//   node web/e2e/page.mjs <base URL> [token]
//
// With a token, the server is expected to require it. Screenshots land in
// web/e2e/out/ for a human to look at. Exits 1 on the first failed check.

import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [base, token] = process.argv.slice(2).map((s) => s && s.replace(/\/+$/, ''));
if (!base) {
  console.error('usage: node page.mjs <base URL> [token]');
  process.exit(2);
}
const outDir = fileURLToPath(new URL('./out/', import.meta.url));
mkdirSync(outDir, { recursive: true });

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let checks = 0;
function ok(cond, what, detail) {
  if (!cond) throw new Error(`${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
  checks++;
  console.log(`ok - ${what}`);
}

function eq(got, want, what) {
  ok(JSON.stringify(got) === JSON.stringify(want), what, { got, want });
}

async function api(path) {
  const res = await fetch(base + path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
  return res.json();
}

// watch fails the run on a script error, a CSP violation (a console
// error) or a dialog (an injected alert()); the 401s and 400s the token
// and bad-filter checks provoke are expected.
function watch(page, problems) {
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of 40[01]/.test(msg.text())) problems.push(`console error: ${msg.text()}`);
  });
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss();
  });
}

// Every fixture message (esa1's nine, esa2's one, esa3's split two): the
// results without filters.
const ALL = 12;

const rows = (page) => page.locator('[data-testid=result-row]');

async function rowKeys(page) {
  return rows(page).evaluateAll((trs) => trs.map((tr) => `${tr.dataset.host.split('.')[0]}/${tr.dataset.mid}`));
}

// keysAfterSearch returns the rows' keys once they are want, or as they are
// after five seconds: a search whose result has as many rows as the one
// before it cannot be waited for by counting.
async function keysAfterSearch(page, want) {
  await page.waitForFunction((want) => {
    const got = [...document.querySelectorAll('[data-testid=result-row]')]
      .map((tr) => `${tr.dataset.host.split('.')[0]}/${tr.dataset.mid}`);
    return JSON.stringify(got) === JSON.stringify(want);
  }, want, { timeout: 5000 }).catch(() => {});
  return rowKeys(page);
}

async function waitForRows(page, n) {
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=result-row]').length === n, n);
}

// search fills the form afresh and submits it. (Not with the Clear button:
// its navigation would refill the form under our feet.)
async function search(page, fields) {
  await page.getByTestId('search-form').evaluate((form) => form.reset());
  for (const [id, value] of Object.entries(fields)) {
    const field = page.getByTestId(id);
    if (await field.evaluate((e) => e.tagName === 'SELECT')) await field.selectOption(value);
    else await field.fill(value);
  }
  await page.getByTestId('search-submit').click();
}

async function openRow(page, host, mid) {
  await page.locator(`[data-testid=result-row][data-host="${host}"][data-mid="${mid}"] td:first-child`).click();
  await page.waitForFunction((mid) => {
    const body = document.getElementById('message-body');
    return body && !body.hidden && document.getElementById('message-title').textContent.startsWith(`MID ${mid} `);
  }, mid);
}

async function checkTokenPrompt(context) {
  const page = await context.newPage();
  const problems = [];
  watch(page, problems);
  await page.goto(base + '/');
  await page.getByTestId('token-form').waitFor({ state: 'visible' });
  ok(true, 'without the token the page asks for it');
  eq(await rows(page).count(), 0, 'without the token no message is shown');
  await page.screenshot({ path: join(outDir, 'token-prompt-1280.png') });
  await page.getByTestId('token-input').fill('not-the-token');
  await page.getByTestId('token-submit').click();
  await page.waitForFunction(() => /not accepted/.test(document.getElementById('token-message').textContent));
  ok(await page.getByTestId('token-form').isVisible(), 'a wrong token is refused and the prompt stays');
  await page.getByTestId('token-input').fill(token);
  await page.getByTestId('token-submit').click();
  await waitForRows(page, ALL);
  ok(await page.getByTestId('token-form').isHidden(), 'with the token the prompt goes and the messages show');
  eq(problems, [], 'no script errors around the token prompt');
  await page.close();
}

async function checkFragmentToken(context) {
  const page = await context.newPage();
  await page.goto(`${base}/#token=${encodeURIComponent(token)}`);
  await waitForRows(page, ALL);
  ok(await page.getByTestId('token-form').isHidden(), 'a token in the URL fragment is used without a prompt');
  ok(!page.url().includes(token), 'the token is taken out of the address bar', page.url());
  await page.reload();
  await waitForRows(page, ALL);
  ok(await page.getByTestId('token-form').isHidden(), 'the token survives a reload (sessionStorage)');
  return page;
}

async function checkSearch(page) {
  await search(page, { 'f-sender': 'alice@partner.example' });
  await waitForRows(page, 3);
  eq(await keysAfterSearch(page, ['esa2/1001', 'esa1/1009', 'esa1/1001']), ['esa2/1001', 'esa1/1009', 'esa1/1001'], 'searching by sender shows that sender\'s messages, newest first');
  const senders = await rows(page).locator('td.c-sender').allTextContents();
  eq([...new Set(senders)], ['alice@partner.example'], 'every row shows the sender searched for');
  ok(page.url().includes('sender=alice%40partner.example'), 'the search is in the URL', page.url());
  eq(await page.getByTestId('result-count').textContent(), '3 messages', 'the count says 3 messages');

  await search(page, { 'f-status': 'aborted' });
  await waitForRows(page, 3);
  eq(await keysAfterSearch(page, ['esa1/1006', 'esa1/1005', 'esa1/1004']), ['esa1/1006', 'esa1/1005', 'esa1/1004'], 'searching by status shows the aborted messages');

  await search(page, { 'f-since': 'yesterday' });
  await page.getByTestId('search-error').waitFor({ state: 'visible' });
  ok(/since: /.test(await page.getByTestId('search-error').textContent()), 'a bad filter shows the API\'s error naming it');

  await search(page, {});
  await waitForRows(page, ALL);
}

async function checkBadges(page) {
  const badges = await rows(page).evaluateAll((trs) => trs.map((tr) => {
    const b = tr.querySelector('[data-testid=status-badge]');
    const a = tr.querySelector('[data-testid=abort-kind]');
    return { mid: tr.dataset.mid, status: tr.dataset.status, text: b.textContent, cls: b.className, abort: a ? a.textContent : '' };
  }));
  for (const b of badges) {
    ok(b.text === b.status && b.cls.includes(`status-${b.status}`), `MID ${b.mid}: badge says ${b.status} with its class`, b);
  }
  const byMid = Object.fromEntries(badges.filter((b) => b.mid !== '1001').map((b) => [b.mid, b]));
  eq(Object.fromEntries(Object.entries(byMid).map(([mid, b]) => [mid, b.status])), {
    1002: 'bounced', 1003: 'delayed', 1004: 'aborted', 1005: 'aborted', 1006: 'aborted',
    1007: 'rejected', 1008: 'dropped', 1009: 'delivered', 3001: 'delivered', 3002: 'delivered',
  }, 'each fixture message has its status');
  eq([byMid[1004].abort, byMid[1005].abort, byMid[1006].abort], ['lost', 'sender', 'timeout'], 'aborted messages show their abort kind');
  eq(badges.filter((b) => b.status !== 'aborted' && b.abort).length, 0, 'only aborted messages show an abort kind');

  const colours = await page.evaluate(() => Object.fromEntries(['delivered', 'bounced', 'delayed', 'aborted', 'queued', 'rejected'].map((s) => {
    const b = document.querySelector(`[data-testid=result-row] .badge.status-${s}`);
    return [s, b ? getComputedStyle(b).color : ''];
  })));
  ok(new Set(Object.values(colours)).size >= 5 && !Object.values(colours).includes(''), 'the statuses have their own colours', colours);
  const [r, g] = colours.delivered.match(/\d+/g).map(Number);
  ok(g > r, 'delivered is green', colours.delivered);

  const subject = page.locator('[data-testid=result-row][data-host="esa2.example.com"] td.c-subject');
  eq(await subject.textContent(), '<img src=x onerror=alert(1)>', 'markup in a subject is shown as text');
  eq(await page.locator('#results img').count(), 0, 'markup in a subject makes no element');
}

async function checkChart(page) {
  await page.locator('[data-testid=chart-status] rect.bar').first().waitFor();
  const counts = await page.locator('[data-testid=chart-status] rect.bar').evaluateAll((rs) => rs.map((r) => ({
    key: r.dataset.key, n: Number(r.dataset.count), h: Number(r.getAttribute('height')),
  })));
  ok(counts.length > 0 && counts.every((c) => c.h > 0), 'the chart has bars', counts.length);
  eq(counts.reduce((n, c) => n + c.n, 0), 10, 'the bars add up to the messages of the range');
  const aborts = await page.locator('[data-testid=chart-aborts] rect.bar').evaluateAll((rs) => rs.map((r) => r.dataset.key));
  ok(['lost', 'timeout', 'sender'].every((k) => aborts.includes(k)), 'the abort chart shows each kind', aborts);
  const legend = await page.getByTestId('chart-status-legend').textContent();
  ok(/aborted\s*3/.test(legend) && /delivered\s*2/.test(legend), 'the legend counts by status', legend);

  await page.locator('[data-testid=chart-status] g.bucket[data-start="2026-03-10T07:30:00Z"] rect.hit').click();
  await waitForRows(page, 2);
  eq(await keysAfterSearch(page, ['esa1/1005', 'esa1/1004']), ['esa1/1005', 'esa1/1004'], 'clicking a bar searches its interval');
  eq(await page.getByTestId('f-since').inputValue(), '2026-03-10 07:30', 'the interval is put in the form');
}

async function checkAborted(page) {
  await openRow(page, 'esa1.example.com', '1004');
  ok(page.url().endsWith('#/message/esa1.example.com/1004'), 'clicking a row opens its message page', page.url());
  const detail = await api('/api/messages/esa1.example.com/1004');
  eq(await page.locator('#message-title [data-testid=abort-kind]').textContent(), 'lost', 'the aborted message shows its abort kind');
  ok(/Receiving aborted/.test(await page.getByTestId('abort-detail').textContent()), 'the envelope shows the abort reason');
  const summary = await page.getByTestId('explanation-summary').textContent();
  ok(summary.length > 0 && summary === detail.explanation.summary, 'the explanation summary is shown', summary);
  eq(await page.locator('[data-testid=explanation-why] li').allTextContents(), detail.explanation.why || [], 'the explanation\'s reasons are shown');
  eq(await page.locator('[data-testid=explanation-next] li').allTextContents(), detail.explanation.next || [], 'the explanation\'s next steps are shown');
  const lines = await page.locator('[data-testid=timeline-row] td:last-child').allTextContents();
  const lost = lines.indexOf('ICID 104 lost');
  const aborted = lines.indexOf('Message aborted MID 1004 Receiving aborted');
  ok(lost >= 0 && aborted > lost, 'the timeline shows "ICID 104 lost" then "Receiving aborted"', lines);
  eq(lines.length, detail.timeline.length, 'the timeline has every line');
  const font = await page.locator('[data-testid=timeline-row] td:last-child').first().evaluate((e) => getComputedStyle(e).fontFamily);
  ok(/mono/i.test(font), 'timeline lines are monospace', font);
  ok((await page.getByTestId('sending-host').textContent()).includes('198.51.100.77'), 'the sending host summary shows the client address');
  await page.screenshot({ path: join(outDir, 'message-aborted-1280.png'), fullPage: true });

  await page.getByTestId('back').click();
  await waitForRows(page, ALL);
  ok(true, 'the back link returns to the results');
}

async function checkQuit(page) {
  await openRow(page, 'esa1.example.com', '1005');
  eq(await page.locator('#message-title [data-testid=abort-kind]').textContent(), 'sender', 'an ESA\'s "Receiving aborted by sender" (QUIT, RSET or EHLO) is "sender"');
  const lines = await page.locator('[data-testid=timeline-row] td:last-child').allTextContents();
  ok(lines.includes('Message aborted MID 1005 Receiving aborted by sender'), 'its timeline has "Receiving aborted by sender"', lines);
  await page.goBack();
  await waitForRows(page, ALL);
}

async function checkBounced(page) {
  await openRow(page, 'esa1.example.com', '1002');
  const reply = await page.getByTestId('recipient-reply').first().textContent();
  ok(reply.includes("550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table"),
    'the bounced message shows the remote server\'s reply', reply);
  eq(await page.locator('[data-testid=recipient-row] [data-testid=status-badge]').first().textContent(), 'bounced', 'its recipient is bounced');
  eq(await page.getByTestId('verdicts').textContent(), 'anti-spam: CASE negative · anti-virus: Sophos negative', 'the envelope shows the scanning verdicts');
  eq(await page.locator('[data-testid=connection-row] td:first-child').allTextContents(), ['ICID 102', 'DCID 502'], 'its connections are listed');
  await page.screenshot({ path: join(outDir, 'message-bounced-1280.png'), fullPage: true });
}

// A split (esa3's MID 3001, three days back: opened by its address): the
// recipient that went on shows "split" and links to the child, whose page
// links back to its parent.
async function checkSplit(page) {
  await page.goto(`${base}/#/message/esa3.example.com/3001`);
  await page.waitForFunction(() => document.getElementById('message-title').textContent.startsWith('MID 3001 '));
  const rcpts = await page.locator('[data-testid=recipient-row]').evaluateAll((trs) => trs.map((tr) => `${tr.children[1].textContent} ${tr.dataset.status}`));
  eq(rcpts, ['ceo@example.com split', 'x@example.com delivered'], 'the parent shows the recipient that went on as split, the other delivered');
  eq(await page.getByTestId('recipient-reply').first().textContent(), 'split off to MID 3002 (per-recipient policy executives)', 'the split recipient says where it went');
  const colour = await page.locator('[data-testid=recipient-row] .badge.status-split').evaluate((b) => getComputedStyle(b).backgroundColor);
  ok(colour !== 'rgba(0, 0, 0, 0)', 'the split badge has its colour', colour);
  eq(await page.getByTestId('related').textContent(), 'MID 3002 (split off)', 'the parent names its child as related');
  ok((await page.getByTestId('explanation-why').textContent()).includes('<ceo@example.com> went on as MID 3002'), 'the explanation says where the recipient went');
  await page.screenshot({ path: join(outDir, 'message-split-1280.png'), fullPage: true });
  await page.getByTestId('split-link').click();
  await page.waitForFunction(() => document.getElementById('message-title').textContent.startsWith('MID 3002 '));
  ok(page.url().endsWith('#/message/esa3.example.com/3002'), 'the split recipient links to the child', page.url());
  eq(await page.getByTestId('related').textContent(), 'MID 3001 (split from)', 'the child names its parent');
  const facts = await page.getByTestId('sending-host').textContent();
  ok(facts.includes('192.0.2.30') && facts.includes('ICID 301'), 'the child shows its parent\'s client and connection', facts);
  await page.goto(base + '/');
  await waitForRows(page, ALL);
}

async function checkNarrow(page) {
  await page.setViewportSize({ width: 800, height: 900 });
  await page.goto(`${base}/#/message/esa1.example.com/1003`);
  await page.getByTestId('timeline').waitFor();
  ok(await noOverflow(page), 'the message page fits 800px');
  ok((await page.getByTestId('recipients').textContent()).includes('2026-03-10 07:35:23'), 'the delayed message shows its next retry');
  await page.screenshot({ path: join(outDir, 'message-delayed-800.png'), fullPage: true });
  await page.goto(`${base}/#/`);
  await waitForRows(page, ALL);
  ok(await noOverflow(page), 'the search page fits 800px');
  const right = await page.locator('[data-testid=result-row] [data-testid=status-badge]').evaluateAll(
    (bs) => Math.max(...bs.map((b) => b.getBoundingClientRect().right)));
  ok(right <= 800, 'at 800px the status badges are in view', right);
  await page.screenshot({ path: join(outDir, 'search-800.png'), fullPage: true });
}

// checkAuth: the authentication filters find messages by their SPF,
// DKIM and DMARC results, and a message's page shows them in a block of
// their own (hidden for a message whose log has none).
async function checkAuth(page) {
  await page.goto(`${base}/#/`);
  await waitForRows(page, ALL);
  await search(page, { 'f-dmarc': 'fail' });
  await waitForRows(page, 1);
  eq(await keysAfterSearch(page, ['esa1/1009']), ['esa1/1009'], 'searching by DMARC fail shows the message that failed');
  ok(page.url().includes('dmarc=fail'), 'the DMARC filter is in the URL', page.url());
  await search(page, { 'f-spf': 'pass', 'f-dkim': 'pass' });
  await waitForRows(page, 1);
  eq(await keysAfterSearch(page, ['esa1/1001']), ['esa1/1001'], 'searching by SPF and DKIM pass shows the message that passed');
  await search(page, { 'f-dkim': 'permfail', 'f-sender': 'alice@partner.example' });
  await waitForRows(page, 1);
  eq(await keysAfterSearch(page, ['esa1/1009']), ['esa1/1009'], 'the DKIM filter combines with the others');
  await search(page, { 'f-dnslist': 'zen.spamhaus.org' });
  await page.waitForFunction(() => document.getElementById('result-count').textContent === '0 messages');
  eq(await rows(page).count(), 0, 'no fixture client was placed by a DNS list');
  await search(page, { 'f-dnslist': 'not a zone' });
  await page.getByTestId('search-error').waitFor({ state: 'visible' });
  ok(/dnslist: /.test(await page.getByTestId('search-error').textContent()), 'a bad DNS list zone shows the API\'s error');

  await search(page, { 'f-dmarc': 'fail' });
  await waitForRows(page, 1);
  await openRow(page, 'esa1.example.com', '1009');
  await page.getByTestId('auth').waitFor({ state: 'visible' });
  const auth = await page.locator('[data-testid=auth-row]').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  eq(auth, [
    ['SPF', 'softfail', 'mailfrom alice@partner.example', ''],
    ['DKIM', 'permfail', 'd=partner.example s=sel1', 'body hash did not verify'],
    ['DMARC', 'fail', 'From: partner.example', 'SPF aligned no, DKIM aligned no'],
  ], 'the message page shows its SPF, DKIM and DMARC results');
  const bad = await page.locator('[data-testid=auth-row][data-check=DMARC] .badge').evaluate((b) => getComputedStyle(b).color);
  const [r, g] = bad.match(/\d+/g).map(Number);
  ok(r > g, 'a failed result is red', bad);
  const why = await page.locator('[data-testid=explanation-why] li').allTextContents();
  ok(why.some((w) => w.startsWith('It failed DMARC, and the gateway accepted it')), 'the explanation says DMARC failed and the message was accepted', why);
  ok(await noOverflow(page), 'the authentication block fits');
  await page.screenshot({ path: join(outDir, 'message-auth-1280.png'), fullPage: true });

  await page.goto(`${base}/#/message/esa1.example.com/1002`);
  await page.getByTestId('timeline').waitFor();
  ok(await page.getByTestId('auth').isHidden(), 'a message without authentication lines has no such block');
  await page.goto(`${base}/#/`);
  await waitForRows(page, ALL);
}

function noOverflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
}

async function main() {
  const userDataDir = mkdtempSync(join(tmpdir(), 'mailgate-e2e-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    timezoneId: 'UTC', // the fixture's times, as the page shows them
    locale: 'en-GB',
  });
  context.setDefaultTimeout(15000);
  let page;
  try {
    if (token) await checkTokenPrompt(context);
    page = token ? await checkFragmentToken(context) : await context.newPage();
    const problems = [];
    watch(page, problems);
    if (!token) {
      await page.goto(base + '/');
      await waitForRows(page, ALL);
    }
    await page.screenshot({ path: join(outDir, 'search-1280.png'), fullPage: true });
    await checkBadges(page);
    await checkChart(page);
    await checkSearch(page);
    await checkAborted(page);
    await checkQuit(page);
    await checkBounced(page);
    await checkAuth(page);
    await checkSplit(page);
    await checkNarrow(page);
    eq(problems, [], 'no script errors, CSP violations or dialogs');
    console.log(`all ${checks} checks passed; screenshots in ${outDir}`);
  } catch (err) {
    if (page) await page.screenshot({ path: join(outDir, 'failure.png'), fullPage: true }).catch(() => {});
    console.error(`FAIL: ${err.message}`);
    process.exitCode = 1;
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

await main();
