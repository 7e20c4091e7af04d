// dirsync in a real browser (headless Chromium driven by playwright-core; no browser download).
//
// 1. Sign in with Google: open /oidc/login on dirsync, pick a user on the emulator's account
//    chooser, land back on `return_to` with the session cookie, and use the cookie.
// 2. Swagger UI: authorize with an API key in the Authorize dialog, "Try it out" → Execute on
//    GET /api/v1/api-keys, and see a 200.
//
// Started by run.sh, which starts the processes and passes:
//   DIRSYNC_URL   e.g. http://localhost:8462 (dirsync, configured for Sign in with Google)
//   ADMIN_KEY     an admin API key
//   SIGNIN_EMAIL  the Google user to pick (holds `login` and `admin` in dirsync)
//   CHROMIUM      path of the browser (default /usr/bin/chromium)
//   ARTIFACTS     directory for screenshots of failures (optional)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.DIRSYNC_URL;
const adminKey = process.env.ADMIN_KEY;
const email = process.env.SIGNIN_EMAIL ?? 'ada@example.com';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const artifacts = process.env.ARTIFACTS;
if (!base || !adminKey) {
  console.error('DIRSYNC_URL and ADMIN_KEY are required');
  process.exit(2);
}

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function withBrowser(name, body) {
  // A fresh profile (--user-data-dir) per test.
  const profile = mkdtempSync(join(tmpdir(), 'dirsync-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: FLAGS,
    timeout: 60_000,
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`  [${name}] browser console: ${m.text()}`);
  });
  try {
    await body(page, context);
    console.log(`ok   ${name}`);
    return true;
  } catch (e) {
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
    console.log(`  at ${page.url()}`);
    if (artifacts) {
      const shot = join(artifacts, `${name}.png`);
      await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
      console.log(`  screenshot: ${shot}`);
    }
    return false;
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

async function signInWithGoogle(page, context) {
  // Start at dirsync; it redirects to the emulator's authorization endpoint (no login_hint:
  // the emulator shows its account chooser).
  await page.goto(`${base}/oidc/login?return_to=${encodeURIComponent('/api/v1/api-keys?limit=5')}`);
  await page.waitForSelector('#accounts');
  check(page.url().includes('/o/oauth2/v2/auth?'), `not at the authorization endpoint: ${page.url()}`);
  // Pick the user; the emulator redirects to /oidc/signin, dirsync sets the cookie and 303s.
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(`${base}/api/v1/api-keys`)),
    page.click(`a.account[data-email="${email}"]`),
  ]);
  const landed = new URL(page.url());
  check(landed.pathname === '/api/v1/api-keys' && landed.search === '?limit=5', `landed on ${page.url()}`);
  // The landing page itself was fetched with the cookie: an admin-only list, as JSON.
  const body = JSON.parse(await page.locator('body').innerText());
  check(Array.isArray(body.items), `not the API key list: ${JSON.stringify(body)}`);

  const cookies = await context.cookies(base);
  const session = cookies.find((c) => c.name === 'dirsync_session');
  check(session, `no session cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
  check(session.value.startsWith('dss_'), 'the cookie holds no session token');
  check(session.httpOnly && session.secure && session.sameSite === 'Lax', `cookie attributes: ${JSON.stringify(session)}`);
  check(session.path === '/', `cookie path ${session.path}`);
  // HttpOnly: scripts cannot read it.
  check(!(await page.evaluate(() => document.cookie)).includes('dirsync_session'), 'the cookie is readable by scripts');

  // The cookie is the credential of the page's own requests.
  const call = (method, path) =>
    page.evaluate(
      async ({ method, path }) => {
        const r = await fetch(path, { method, headers: { accept: 'application/json' } });
        return { status: r.status, body: await r.text() };
      },
      { method, path },
    );
  const me = await call('GET', '/api/v1/me');
  check(
    me.status === 200 && JSON.parse(me.body).user?.user_name === email,
    `GET /api/v1/me: ${me.status} ${me.body}`,
  );
  const keys = await call('GET', '/api/v1/api-keys');
  check(keys.status === 200, `GET /api/v1/api-keys with the cookie: ${keys.status} ${keys.body}`);
  const oidc = await call('GET', '/api/v1/auth/oidc');
  check(oidc.status === 200 && !oidc.body.includes('client_secret"'), `GET /api/v1/auth/oidc: ${oidc.status} ${oidc.body}`);

  // Logout ends the session and clears the cookie.
  const out = await call('POST', '/api/v1/auth/logout');
  check(out.status === 204, `logout: ${out.status} ${out.body}`);
  const after = await call('GET', '/api/v1/api-keys');
  check(after.status === 401, `after logout: ${after.status}`);
  const left = (await context.cookies(base)).find((c) => c.name === 'dirsync_session');
  check(!left, 'the cookie survived logout');
}

async function swaggerUiTryItOut(page) {
  await page.goto(`${base}/swagger-ui/`);
  await page.waitForSelector('.swagger-ui .information-container .title');
  const title = await page.locator('.information-container .title').innerText();
  check(title.includes('dirsync'), `title ${title}`);

  // Authorize with the API key (the "bearer" scheme).
  await page.click('.auth-wrapper button.authorize');
  const dialog = page.locator('.modal-ux');
  await dialog.waitFor();
  await dialog.locator('input').first().fill(adminKey);
  await dialog.locator('button.authorize').click();
  await dialog.locator('button.btn-done').click();
  await dialog.waitFor({ state: 'detached' });

  // GET /api/v1/api-keys: Try it out → Execute.
  const op = page.locator('#operations-api-keys-list_api_keys');
  await op.locator('.opblock-summary').click();
  await op.locator('button.try-out__btn').click();
  await op.locator('button.execute').click();
  const status = op.locator('.live-responses-table tbody .response-col_status').first();
  await status.waitFor();
  const code = (await status.innerText()).trim();
  check(code.startsWith('200'), `Swagger UI got ${code}`);
  const response = await op.locator('.live-responses-table .response-col_description pre').first().innerText();
  check(response.includes('"items"'), `response body: ${response}`);
}

const results = [
  await withBrowser('sign-in-with-google', signInWithGoogle),
  await withBrowser('swagger-ui-try-it-out', swaggerUiTryItOut),
];
const failed = results.filter((ok) => !ok).length;
console.log(failed ? `${failed} browser test(s) failed` : 'all browser tests passed');
process.exit(failed ? 1 : 0);
