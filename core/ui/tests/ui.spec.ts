// The web UI in Debian's Chromium against a real core: sign in, browse to an image and
// read its Dockerfile lines, strings from the registry rendered as text only (an XSS
// payload in labels, environment and history stays inert), what a user may not pull is
// not shown, the security headers, the page weight, and axe-core's accessibility checks.
import { test, expect, Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Core, builtConfig } from './support';

const XSS = '<img src=x onerror="window.__xss=1">';
const core = new Core();

// WHARF_UI_SCREENSHOTS=DIR: the main pages are saved there (the README shows them).
async function shot(page: Page, name: string) {
  const dir = process.env.WHARF_UI_SCREENSHOTS;
  if (dir) await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
}

test.beforeAll(async () => {
  await core.start();
  const cfg = builtConfig({ 'com.example.note': XSS });
  (cfg.config.Env as string[]).push(`NOTE=${XSS}`);
  cfg.history.push({ created: '2026-11-01T10:00:04Z', created_by: `RUN /bin/sh -c echo '${XSS}' # buildkit` });
  await core.pushImage('acme/app', 'v1', cfg, 4);
  await core.pushImage('acme/app', 'v2', builtConfig(), 2);
  await core.pushImage('secret/vault', 'v1', builtConfig(), 2);
  expect((await core.api('POST', '/api/v1/users', { name: 'bob', password: 'bob-password' })).status).toBe(201);
  expect((await core.api('PUT', '/api/v1/repositories/acme/app/permissions/users/bob', { role: 'read' })).status).toBe(200);
  expect((await core.api('POST', '/api/v1/orgs', { name: 'acme' })).status).toBe(201);
  expect((await core.api('POST', '/api/v1/orgs/acme/teams', { name: 'devs' })).status).toBe(201);
  expect((await core.api('PUT', '/api/v1/repositories/acme/app/permissions/teams/devs', { role: 'write' })).status).toBe(200);
});

test.afterAll(() => core.stop());

async function signIn(page: Page, user: string, password: string) {
  await page.goto(core.url + '/');
  await page.getByRole('banner').getByRole('link', { name: 'Sign in', exact: true }).click();
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Repositories' })).toBeVisible();
}

test('sign in, browse to an image, read its Dockerfile lines; registry strings stay text', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await signIn(page, 'admin', 'ui-admin-password');
  await expect(page.getByRole('link', { name: 'secret/vault' })).toBeVisible();
  // The namespace's organization and the teams with a role, from the core.
  await expect(page.getByRole('row').filter({ hasText: 'acme/app' })).toContainText('acmeacme/devs (write)');
  await shot(page, 'repositories');
  await page.getByRole('link', { name: 'acme/app' }).click();
  await expect(page.getByRole('heading', { name: 'acme/app' })).toBeVisible();
  const tags = page.getByRole('table', { name: 'Tags' });
  await expect(tags.getByRole('link', { name: 'v1' })).toBeVisible();
  await expect(tags.getByRole('link', { name: 'v2' })).toBeVisible();
  await shot(page, 'repository');
  await tags.getByRole('link', { name: 'v1' }).click();
  await expect(page.getByRole('heading', { name: 'acme/app:v1' })).toBeVisible();

  const history = page.getByRole('table', { name: /Dockerfile/ });
  await expect(history).toContainText('ADD file:1b2c3d in /');
  await expect(history).toContainText('CMD ["bash"]');
  await expect(history).toContainText('RUN apt-get update && apt-get install -y curl');
  await expect(history).toContainText('COPY app /usr/local/bin/app');
  await expect(history).toContainText('WORKDIR /srv');
  await expect(history.locator('tr.empty')).toHaveCount(3);  // CMD, WORKDIR, ENTRYPOINT made no layer
  await expect(page.getByText('APP_MODE=production')).toBeVisible();
  await expect(page.getByLabel('Pull command')).toHaveValue(/docker pull 127\.0\.0\.1:\d+\/acme\/app:v1/);
  await shot(page, 'image');

  // The payload is shown as the text it is, in the label, the environment and history.
  await expect(page.getByText(XSS, { exact: true })).toBeVisible();
  await expect(page.getByText(`NOTE=${XSS}`)).toBeVisible();
  await expect(history).toContainText(`echo '${XSS}'`);
  expect(await page.locator('img').count()).toBe(0);
  expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  expect(errors).toEqual([]);

  // No token in the URL or in storage.
  expect(page.url()).not.toMatch(/token/i);
  expect(await page.evaluate(() => localStorage.length + sessionStorage.length)).toBe(0);
});

test('the event feed follows a push as it happens', async ({ page }) => {
  await signIn(page, 'admin', 'ui-admin-password');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Events', exact: true }).click();
  const table = page.getByRole('table', { name: 'Events, newest first' });
  await expect(table).toContainText('acme/app');  // the recent past
  await expect(page.getByText('Following new events.')).toBeVisible();
  await core.pushImage('acme/live', 'v9', builtConfig(), 1);
  await expect(table.getByRole('row').filter({ hasText: 'acme/live' }).filter({ hasText: 'tag.push' })).toBeVisible();
  await expect(table.getByRole('row').nth(1)).toContainText('acme/live');  // newest first
  await shot(page, 'events');
  // Filtered by the API: another repository's events go.
  await page.getByLabel('Repository').fill('acme/live');
  await expect(table.getByRole('row').filter({ hasText: 'acme/app' })).toHaveCount(0);
  await expect(table).toContainText('acme/live');
});

test("a job's page: its state, live log and result; jobs are for administrators", async ({ page, browser }) => {
  await signIn(page, 'admin', 'ui-admin-password');
  const r = await core.api('POST', '/api/v1/jobs', { kind: 'gc', params: { dry_run: true } });
  expect(r.status).toBe(202);
  const id: string = (await r.json()).id;
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs', exact: true }).click();
  await expect(page.getByRole('table', { name: 'Jobs, newest first' })).toContainText('gc');
  await page.getByRole('link', { name: id, exact: true }).click();
  await expect(page.getByTestId('job-state')).toHaveText('succeeded');
  await expect(page.locator('pre.log').last()).toContainText('would be freed');
  await expect(page.getByRole('button', { name: 'Retry' })).toHaveCount(0);  // nothing to retry
  await shot(page, 'job');
  const other = await browser.newPage();
  await signIn(other, 'bob', 'bob-password');
  // No links to the administrators' pages; and the core refuses them all the same.
  await expect(other.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs', exact: true })).toHaveCount(0);
  await expect(other.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Fleet', exact: true })).toHaveCount(0);
  await other.evaluate(() => { history.pushState(null, '', '/ui/jobs'); dispatchEvent(new PopStateEvent('popstate')); });
  await expect(other.getByRole('alert')).toContainText('administrators');
  await other.close();
});

test('the audit log, filtered by the core; administrators only', async ({ page }) => {
  // A failed sign-in to find.
  const failed = await fetch(`${core.url}/auth/token?service=wharf`, { headers: { Authorization: core.basic('bob', 'wrong-password') } });
  expect(failed.status).toBe(401);
  await signIn(page, 'admin', 'ui-admin-password');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit', exact: true }).click();
  const table = page.getByRole('table', { name: 'Audit log, oldest first' });
  await expect(table).toContainText('login');
  await page.getByLabel('Outcome').fill('failure');
  await expect(table.getByRole('row').filter({ hasText: 'bob' }).first()).toBeVisible();
  await expect(table.getByRole('row').filter({ hasText: 'success' })).toHaveCount(0);
  await shot(page, 'audit');
});

test('personal access tokens: create one, use it, revoke it', async ({ page }) => {
  await signIn(page, 'bob', 'bob-password');
  await page.getByRole('banner').getByRole('link', { name: 'bob', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Access tokens' })).toBeVisible();
  await page.getByLabel('Name').fill('ci');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = await page.getByLabel(/New token/).inputValue();
  expect(secret.length).toBeGreaterThan(20);
  const table = page.getByRole('table', { name: 'Your access tokens' });
  await expect(table).toContainText('ci');
  const use = () => fetch(`${core.url}/auth/token?service=wharf&scope=repository:acme/app:pull`, { headers: { Authorization: core.basic('bob', secret) } });
  expect((await use()).status).toBe(200);
  await page.getByRole('button', { name: 'Revoke ci' }).click();
  await expect(table.getByRole('row')).toHaveCount(1);  // the header only
  expect((await use()).status).toBe(401);
  await shot(page, 'tokens');
});

test('a user sees only what they may pull', async ({ page }) => {
  await signIn(page, 'bob', 'bob-password');
  await expect(page.getByRole('link', { name: 'acme/app' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'secret/vault' })).toHaveCount(0);
  await page.goto(core.url + '/ui/repositories/secret/vault');  // a reload: signed out
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(page.getByRole('table', { name: 'Tags' })).toHaveCount(0);
});

test('security headers, page weight, and no inline script', async ({ request }) => {
  const r = await request.get(core.url + '/ui/');
  const csp = r.headers()['content-security-policy'];
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toContain('unsafe-inline');
  expect(csp).not.toContain('unsafe-eval');
  expect(r.headers()['x-content-type-options']).toBe('nosniff');
  const html = await r.text();
  expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  // First load: every script and style, gzip-compressed, under 200 KB.
  const assets = [...html.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1]);
  expect(assets.length).toBeGreaterThan(0);
  let total = 0;
  for (const a of assets) {
    const res = await fetch(core.url + a, { headers: { 'Accept-Encoding': 'gzip' } });
    expect(res.headers.get('content-encoding')).toBe('gzip');
    const sent = Number(res.headers.get('content-length'));  // the compressed size (fetch decodes the body)
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan((await res.arrayBuffer()).byteLength);
    total += sent;
  }
  expect(total).toBeLessThan(200 * 1024);
  expect((await request.get(core.url + '/', { maxRedirects: 0 })).headers()['location']).toBe('/ui/');
});

test('axe-core finds no accessibility violations; usable at 360 px', async ({ browser }) => {
  // axe is injected as a script, which the core's CSP forbids: this context bypasses it.
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  await signIn(page, 'admin', 'ui-admin-password');
  const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  const check = async (what: string) => {
    await page.addScriptTag({ content: axe });
    const result = await page.evaluate(async () => (window as any).axe.run(document, { resultTypes: ['violations'] }));
    const violations = result.violations.map((v: any) => `${v.id}: ${v.nodes.map((n: any) => n.target.join(' ')).join(', ')}`);
    expect(violations, what).toEqual([]);
  };
  await check('repositories');
  await page.getByRole('link', { name: 'acme/app' }).click();
  await expect(page.getByRole('table', { name: 'Tags' })).toBeVisible();
  await check('repository');
  await page.getByRole('link', { name: 'v1' }).click();
  await expect(page.getByRole('table', { name: /Dockerfile/ })).toBeVisible();
  await check('image');
  // Nothing wider than the screen but the tables' own scroll areas.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
  await context.close();
});
