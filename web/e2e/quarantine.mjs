// Drives the quarantine view in Debian's Chromium against a running
// gateway: cmd/mailgate's TestQuarantinePage starts the binary, puts
// messages in its Policy quarantine over SMTP and runs
//
//   node web/e2e/quarantine.mjs <base URL> <token> <release MID> <delete MID> <hostile MID>
//
// then checks what the gateway did (the release delivered, the delete
// logged). The hostile message's Subject and text carry markup and
// terminal escapes: the page must show them as text. Exits 1 on the first
// failed check; screenshots land in web/e2e/out/.

import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [rawBase, token, releaseMID, deleteMID, hostileMID] = process.argv.slice(2);
if (!rawBase || !token || !hostileMID) {
  console.error('usage: node quarantine.mjs <base URL> <token> <release MID> <delete MID> <hostile MID>');
  process.exit(2);
}
const base = rawBase.replace(/\/+$/, '');
const outDir = fileURLToPath(new URL('./out/', import.meta.url));
mkdirSync(outDir, { recursive: true });

let checks = 0;
function ok(cond, what, detail) {
  if (!cond) throw new Error(`${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
  checks++;
  console.log(`ok - ${what}`);
}

function eq(got, want, what) {
  ok(JSON.stringify(got) === JSON.stringify(want), what, { got, want });
}

// A script error, a CSP violation or a dialog (an injected alert()) fails
// the run; the 401 of the token check is expected.
function watch(page, problems) {
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of 401/.test(msg.text())) problems.push(`console error: ${msg.text()}`);
  });
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss();
  });
}

const messageMIDs = (page) => page.locator('[data-testid=q-message]').evaluateAll((trs) => trs.map((tr) => tr.dataset.mid));

async function waitForMIDs(page, mids) {
  await page.waitForFunction((want) => {
    const got = [...document.querySelectorAll('[data-testid=q-message]')].map((tr) => tr.dataset.mid).sort();
    return JSON.stringify(got) === JSON.stringify([...want].sort());
  }, mids);
}

async function main() {
  const userDataDir = mkdtempSync(join(tmpdir(), 'mailgate-e2e-q-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    timezoneId: 'UTC',
    locale: 'en-GB',
  });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  const problems = [];
  watch(page, problems);
  try {
    // The tracking page links to the view.
    await page.goto(base + '/');
    await page.getByTestId('nav-quarantines').click();
    await page.waitForURL(/quarantine\.html/);
    await page.getByTestId('token-form').waitFor({ state: 'visible' });
    ok(true, 'the view asks for the token, as the tracking page does');
    eq(await page.locator('[data-testid=q-row]').count(), 0, 'without the token no quarantine is shown');
    await page.getByTestId('token-input').fill(token);
    await page.getByTestId('token-submit').click();
    await page.locator('[data-testid=q-row][data-name=Policy]').waitFor();
    ok(await page.getByTestId('token-form').isHidden(), 'with the token the quarantines show');
    const names = await page.locator('[data-testid=q-row]').evaluateAll((trs) => trs.map((tr) => tr.dataset.name));
    eq(names, ['Policy', 'Virus', 'Outbreak', 'Spam', 'Short', 'Gone', 'Small'], 'the quarantines in their order');
    eq(await page.locator('[data-testid=q-row][data-name=Policy] [data-testid=q-row-count]').textContent(), '3', 'Policy holds 3 messages');

    await page.locator('[data-testid=q-row][data-name=Policy] [data-testid=q-link]').click();
    await waitForMIDs(page, [releaseMID, deleteMID, hostileMID]);
    ok(true, 'the Policy quarantine lists its messages');
    eq(await page.getByTestId('q-count').textContent(), '3 messages', 'the count says 3 messages');
    await page.screenshot({ path: join(outDir, 'quarantine-list-1280.png'), fullPage: true });

    // The hostile message: read as text, nothing rendered or run.
    const hostile = page.locator(`[data-testid=q-message][data-mid="${hostileMID}"]`);
    const subject = await hostile.getByTestId('q-subject').textContent();
    ok(subject.includes('<img src=x onerror=alert(1)>'), 'a Subject with markup is shown as text', subject);
    ok(subject.includes('\\x1b[31m'), 'a terminal escape in the Subject is shown escaped', subject);
    await hostile.getByTestId('q-read').click();
    await page.getByTestId('q-detail').waitFor({ state: 'visible' });
    eq(await page.getByTestId('q-detail-mid').textContent(), hostileMID, 'Read opens the message');
    const text = await page.getByTestId('q-text').textContent();
    ok(text.includes('<script>alert("body")</script>'), 'the text part with a script is shown as text', text);
    ok(text.includes('<b>bold</b>'), 'markup in the text is shown as typed', text);
    eq(await page.locator('#q-detail img, #q-detail script, #q-detail b').count(), 0, 'no element of the message entered the page');
    const header = await page.getByTestId('q-header').textContent();
    ok(header.includes('X-Token') && header.includes('qhostile'), 'the header fields are listed', header);
    await page.screenshot({ path: join(outDir, 'quarantine-read-1280.png'), fullPage: true });

    // Release one: it leaves the list, the page says what happens.
    await page.locator(`[data-testid=q-message][data-mid="${releaseMID}"] [data-testid=q-release]`).click();
    await waitForMIDs(page, [deleteMID, hostileMID]);
    ok(/released from "Policy"/.test(await page.getByTestId('q-status').textContent()), 'the release is confirmed');

    // Delete asks again on the button, then deletes.
    const del = page.locator(`[data-testid=q-message][data-mid="${deleteMID}"] [data-testid=q-delete]`);
    await del.click();
    eq(await del.textContent(), 'Really delete?', 'delete asks once more');
    eq((await messageMIDs(page)).length, 2, 'one click deletes nothing');
    await del.click();
    await waitForMIDs(page, [hostileMID]);
    ok(/deleted from "Policy"/.test(await page.getByTestId('q-status').textContent()), 'the deletion is confirmed');
    eq(await page.locator('[data-testid=q-row][data-name=Policy] [data-testid=q-row-count]').textContent(), '1', 'Policy holds 1 message');
    await page.screenshot({ path: join(outDir, 'quarantine-after-1280.png'), fullPage: true });

    eq(problems, [], 'no script errors, CSP violations or dialogs');
    console.log(`all ${checks} checks passed; screenshots in ${outDir}`);
  } catch (err) {
    await page.screenshot({ path: join(outDir, 'quarantine-failure.png'), fullPage: true }).catch(() => {});
    console.error(`FAIL: ${err.message}`);
    if (problems.length) console.error(`page problems: ${problems.join('; ')}`);
    process.exitCode = 1;
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

await main();
