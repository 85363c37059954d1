// The dashboard in a real headless Chromium, driven by Playwright
// (playwright-core, no downloaded browser: Debian's /usr/bin/chromium).
// tests/dashboard.rs runs it against a daemon whose app serves v1 under
// load, and talks with it over stdin/stdout:
//
//   script: READY            logged in, the app shows, stable at 100%,
//                            a flag switched on
//   test:   (starts a canary deploy of v2)
//   script: ABORTED          saw the marker and the split move, pressed
//                            Abort, saw traffic back on stable
//   script: RESULT {json}    what it saw; exit status 0 when all held
//
// Environment: BATON_ADMIN_URL, BATON_ADMIN_TOKEN, BATON_APP,
// BATON_SCREENSHOTS (a directory), BATON_PLAYWRIGHT (a node_modules
// directory holding playwright-core), BATON_CHROMIUM (the browser).

import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const origin = need('BATON_ADMIN_URL').replace(/\/$/, '');
const token = need('BATON_ADMIN_TOKEN');
const app = need('BATON_APP');
const shots = need('BATON_SCREENSHOTS');
const require = createRequire(join(need('BATON_PLAYWRIGHT'), 'noop.js'));
const { chromium } = require('playwright-core');

const STEP_TIMEOUT = 90_000;
mkdirSync(shots, { recursive: true });

const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));

const seen = { outside: [], consoleErrors: [], screenshots: [] };
let page;
let step = 0;

async function shot(name) {
  step += 1;
  const path = join(shots, `${String(step).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  seen.screenshots.push(path);
}

function say(line) {
  process.stdout.write(`${line}\n`);
}

const appSection = () => page.locator(`section.app[data-app="${app}"]`);

/// The weights the split shows, by role.
async function split() {
  return appSection().locator('.split .part').evaluateAll((parts) =>
    parts.map((part) => ({
      version: part.dataset.version,
      role: part.dataset.role,
      weight: Number(part.dataset.weight),
    })));
}

async function waitForSplit(what, holds) {
  const deadline = Date.now() + STEP_TIMEOUT;
  let last = [];
  while (Date.now() < deadline) {
    last = await split();
    if (holds(last)) return last;
    await page.waitForTimeout(250);
  }
  throw new Error(`the split never showed ${what}; last: ${JSON.stringify(last)}`);
}

const browser = await chromium.launch({
  executablePath: process.env.BATON_CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
let failed = null;
try {
  // A fresh context: its own empty profile, no cookies.
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  page = await context.newPage();
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(`${origin}/`) && !url.startsWith('data:')) seen.outside.push(url);
  });
  page.on('console', (message) => {
    if (message.type() === 'error') seen.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => seen.consoleErrors.push(String(error)));
  // Promote and Abort ask first; the operator here says yes.
  page.on('dialog', (dialog) => dialog.accept());

  // A wrong token: the form says so, and no session cookie is set.
  await page.goto(`${origin}/`);
  await page.locator('#token').fill('not-the-token');
  await Promise.all([page.waitForNavigation(), page.locator('button[type=submit]').click()]);
  await page.locator('#login-error').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  await shot('wrong-token');
  const afterWrong = await context.cookies();
  if (afterWrong.some((cookie) => cookie.name === 'baton_session')) {
    throw new Error('a wrong token got a session cookie');
  }
  // The 401 of that login is the answer we wanted, not a page error.
  seen.consoleErrors = seen.consoleErrors.filter((text) => !text.includes('401'));

  // The right token: the dashboard, with the app serving v1 only.
  await page.locator('#token').fill(token);
  await Promise.all([page.waitForNavigation(), page.locator('button[type=submit]').click()]);
  await appSection().waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  const cookie = (await context.cookies()).find((c) => c.name === 'baton_session');
  if (!cookie || !cookie.httpOnly || cookie.sameSite !== 'Strict') {
    throw new Error(`the session cookie is not HttpOnly and SameSite=Strict: ${JSON.stringify(cookie)}`);
  }
  if (cookie.value.includes(token)) throw new Error('the cookie carries the token');
  const before = await waitForSplit('stable at 100%', (parts) =>
    parts.length >= 1 && parts.some((p) => p.role === 'stable' && p.weight === 100));
  await page.locator('#live.on').waitFor({ timeout: STEP_TIMEOUT });
  await appSection().locator('.charts polyline').first().waitFor({ timeout: STEP_TIMEOUT });
  // Its error budget ([slo] 99.9% over 1h): nothing failed, all left.
  const budget = (await appSection().locator('.budget-left').textContent()).trim();
  if (!budget.startsWith('100.0% left')) throw new Error(`the budget shows ${budget}`);
  await shot('logged-in');

  // The first deploy's record keeps the traffic report it printed.
  const firstRun = appSection().locator('.history tr.run').first();
  await firstRun.click();
  const reported = appSection().locator('.history ul.traffic-report li').first();
  await reported.waitFor({ timeout: STEP_TIMEOUT });
  const reportText = (await reported.textContent()).trim();
  if (!/ requests \(/.test(reportText)) throw new Error(`the traffic report reads: ${reportText}`);
  await shot('traffic-report');
  await firstRun.click();

  // A request the page did not send (no CSRF header) changes nothing,
  // session cookie or not.
  const forged = await page.evaluate(async (name) => {
    const response = await fetch(`/api/apps/${name}/rollout/abort`, { method: 'POST' });
    return response.status;
  }, app);
  if (forged !== 403) throw new Error(`a POST without the CSRF header answered ${forged}, not 403`);
  // Chromium logs that refusal as a failed load: it is the answer we wanted.
  seen.consoleErrors = seen.consoleErrors.filter((text) => !text.includes('403'));

  // The flag: off, at 25%; the page switches it on.
  const flagRow = page.locator('tr[data-flag="new_checkout"]');
  await flagRow.waitFor({ timeout: STEP_TIMEOUT });
  const rollout = (await flagRow.locator('.rollout-percent').textContent()).trim();
  if (rollout !== '25%') throw new Error(`the flag shows rollout ${rollout}, not 25%`);
  await flagRow.locator('.switch.off').waitFor({ timeout: STEP_TIMEOUT });
  await flagRow.locator('button.flag-toggle').click();
  await flagRow.locator('.switch.on').waitFor({ timeout: STEP_TIMEOUT });
  await shot('flag-on');

  say('READY');
  await nextLine();

  // The canary: its deploy marker on the charts and the split off 100/0.
  await appSection().locator('.charts line.marker[data-kind="deploy"]').first()
    .waitFor({ state: 'attached', timeout: STEP_TIMEOUT });
  const during = await waitForSplit('the canary taking traffic', (parts) =>
    parts.some((p) => p.role === 'candidate' && p.weight > 0)
    && parts.some((p) => p.role === 'stable' && p.weight < 100));
  await page.locator(`section.app[data-app="${app}"][data-rollout="running"]`)
    .waitFor({ timeout: STEP_TIMEOUT });
  const candidate = during.find((p) => p.role === 'candidate').version;
  await appSection().locator(`.charts polyline[data-version="${candidate}"]`).first()
    .waitFor({ state: 'attached', timeout: STEP_TIMEOUT });
  await shot('canary');

  // The running deploy's record: stage timings and the rollout's evidence.
  await appSection().locator('.history tr.run').first().click();
  await appSection().locator('.history .record li.rollout').first()
    .waitFor({ timeout: STEP_TIMEOUT });
  const evidence = await appSection().locator('.history .record li.rollout').allTextContents();
  await shot('deploy-record');

  // Abort: traffic back on stable.
  await appSection().locator('button.abort').click();
  const after = await waitForSplit('traffic back on stable', (parts) =>
    parts.length > 0
    && parts.every((p) => p.role === 'stable' ? p.weight === 100 : p.weight === 0));
  await page.locator(`section.app[data-app="${app}"][data-rollout="none"]`)
    .waitFor({ timeout: STEP_TIMEOUT });
  await appSection().locator('.charts line.marker[data-kind="failed"]').first()
    .waitFor({ state: 'attached', timeout: STEP_TIMEOUT });
  // The candidate's line stays on the live chart, fallen to zero.
  await page.waitForTimeout(6_000);
  const tail = await appSection().locator(`.charts svg[aria-label="Requests per second"] polyline[data-version="${candidate}"]`)
    .getAttribute('points', { timeout: STEP_TIMEOUT });
  const lastY = Number(tail.trim().split(' ').pop().split(',')[1]);
  const bottomY = 180 - 20;
  if (Math.abs(lastY - bottomY) > 0.5) {
    throw new Error(`the aborted candidate's rate did not fall to zero: last point at y=${lastY}`);
  }
  await shot('aborted');
  say('ABORTED');

  // Logging out ends the session: the login form again.
  await Promise.all([page.waitForNavigation(), page.locator('form.logout button').click()]);
  await page.locator('#token').waitFor({ timeout: STEP_TIMEOUT });
  await shot('logged-out');

  if (seen.outside.length > 0) throw new Error(`requests left the admin origin: ${seen.outside.join(', ')}`);
  if (seen.consoleErrors.length > 0) throw new Error(`console errors: ${seen.consoleErrors.join(' | ')}`);
  say(`RESULT ${JSON.stringify({ before, during, after, evidence, ...seen })}`);
} catch (error) {
  failed = error;
  try { if (page) await shot('failure'); } catch (_) { /* the browser may be gone */ }
  say(`RESULT ${JSON.stringify({ error: String(error && error.stack || error), ...seen })}`);
} finally {
  lines.close();
  await browser.close();
}
process.exit(failed ? 1 : 0);
