// The web UI's views of scans, signatures, the fleet and administration, in Debian's
// Chromium against a real core (and a real edge): an image scanned against an OSV
// database and signed with cosign, tags deleted where allowed, an edge's bandwidth
// charted from its reports and a command sent to it, and the administration pages.
import { test, expect, Page } from '@playwright/test';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { ADVISORY_XSS, Core, builtConfig, debianLayer, waitFor } from './support';

const core = new Core();
let hooks: Server;
const received: string[] = [];
let edgeUrl = '';

async function shot(page: Page, name: string) {
  const dir = process.env.WHARF_UI_SCREENSHOTS;
  if (dir) await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
}

async function signIn(page: Page, user = 'admin', password = 'ui-admin-password') {
  await page.goto(core.url + '/ui/login');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Repositories' })).toBeVisible();
}

// A link of the main navigation, then the page's heading.
async function go(page: Page, link: string, heading: string) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link, exact: true }).click();
  await expect(page.getByRole('heading', { name: heading, exact: true })).toBeVisible();
}

test.beforeAll(async () => {
  await core.start();
  const digest = await core.pushImage('acme/base', 'bookworm', builtConfig(), [debianLayer()]);
  await core.scan('acme/base', 'bookworm');
  const key = await core.cosignSign('acme/base', digest);
  const policy = await core.api('PUT', '/api/v1/policies/acme/base', { trust: { require: 'cosign', cosign_keys: [key] } });
  expect(policy.status).toBe(200);
  await core.pushImage('acme/tmp', 't1', builtConfig(), 1);
  await core.pushImage('acme/tmp', 't2', builtConfig(), 1);
  expect((await core.api('PUT', '/api/v1/policies/acme/tmp', { immutable: ['t1'] })).status).toBe(200);
  expect((await core.api('POST', '/api/v1/users', { name: 'carol', password: 'carol-password' })).status).toBe(201);
  expect((await core.api('PUT', '/api/v1/repositories/acme/tmp/permissions/users/carol', { role: 'read' })).status).toBe(200);
  hooks = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push(body);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
  edgeUrl = await core.startEdge('edge-1', 'berlin');
});

test.afterAll(() => {
  core.stop();
  hooks?.close();
});

test("an image's software, vulnerabilities and signature; the tag list sums them up", async ({ page }) => {
  await signIn(page);
  await page.getByRole('link', { name: 'acme/base' }).click();
  const row = page.getByRole('table', { name: 'Tags' }).getByRole('row').filter({ hasText: 'bookworm' });
  await expect(row).toContainText('linux/amd64');
  await expect(row).toContainText('1 critical, 1 low');
  await expect(row).toContainText('signed: cosign (policy met)');
  await row.getByRole('link', { name: 'bookworm' }).click();
  const vulns = page.getByRole('table', { name: 'Vulnerabilities' });
  await expect(vulns).toContainText('DEBIAN-CVE-2023-45853');
  await expect(vulns).toContainText('CVE-2023-45853');
  await expect(vulns).toContainText('libminizip1');
  await expect(vulns).toContainText('1.1-8+deb12u1');
  await expect(vulns).toContainText('CRITICAL');
  // An advisory's text is shown as the text it is.
  await expect(vulns.getByText(`curl: ${ADVISORY_XSS}`, { exact: true })).toBeVisible();
  expect(await page.locator('img').count()).toBe(0);
  expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  const software = page.getByRole('table', { name: /Software installed \(3 packages\)/ });
  await expect(software).toContainText('libc6');
  await page.getByLabel('Search installed software').fill('curl');
  await expect(software.getByRole('row')).toHaveCount(2);  // the header and curl
  await expect(software).toContainText('7.88.1-10+deb12u5');
  await expect(page.getByText(/cosign \(tag\): verified with sha256:/)).toBeVisible();
  await expect(page.getByText(/Trust policy of acme\/base \(requires cosign\): met/)).toBeVisible();
  await shot(page, 'image-scan');
});

test('tags are deleted by whoever may; immutable tags are not offered; readers see no delete', async ({ page, browser }) => {
  await signIn(page);
  await page.getByRole('link', { name: 'acme/tmp' }).click();
  const tags = page.getByRole('table', { name: 'Tags' });
  await expect(tags.getByRole('row').filter({ hasText: 't1' })).toContainText('yes ("t1" (policy acme/tmp))immutable');
  await expect(tags.getByRole('button', { name: 'Delete t1' })).toHaveCount(0);
  page.once('dialog', (d) => d.accept());
  await tags.getByRole('button', { name: 'Delete t2' }).click();
  await expect(tags.getByRole('link', { name: 't2', exact: true })).toHaveCount(0);
  const gone = await fetch(`${core.url}/v2/acme/tmp/manifests/t2`, { headers: { Authorization: `Bearer ${await core.token('repository:acme/tmp:pull')}` } });
  expect(gone.status).toBe(404);
  await expect(page.getByRole('list', { name: 'Events' })).toContainText('tag.delete t2 by admin');
  const other = await browser.newPage();
  await signIn(other, 'carol', 'carol-password');
  await other.getByRole('link', { name: 'acme/tmp' }).click();
  await expect(other.getByRole('table', { name: 'Tags' }).getByRole('link', { name: 't1', exact: true })).toBeVisible();
  await expect(other.getByRole('columnheader', { name: 'Delete' })).toHaveCount(0);
  await other.close();
});

test("the fleet: an edge's state and bandwidth chart, per site and repository, and a command's outcome", async ({ page }) => {
  // Pulls through the edge, which reports them to the core.
  const token = await core.token('repository:acme/base:pull');
  const auth = { Authorization: `Bearer ${token}`, Accept: 'application/vnd.oci.image.manifest.v1+json' };
  for (let pull = 0; pull < 3; pull++) {  // the first from the core, the others from the edge's cache
    const manifest = await (await fetch(`${edgeUrl}/v2/acme/base/manifests/bookworm`, { headers: auth })).json();
    for (const l of manifest.layers) {
      const r = await fetch(`${edgeUrl}/v2/acme/base/blobs/${l.digest}`, { headers: auth });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    }
  }
  await waitFor(async () => {
    const e = await (await core.api('GET', '/api/v1/edges/edge-1')).json();
    return (e.status?.last_24h?.saved_bytes ?? 0) > 0;
  }, 'the edge to report the WAN bytes it saved');

  await signIn(page);
  await go(page, 'Fleet', 'Fleet');
  const edges = page.getByRole('table', { name: 'Edges' });
  const row = edges.getByRole('row').filter({ hasText: 'edge-1' });
  await expect(row).toContainText('berlin');
  await expect(row).toContainText('online');
  const chart = page.getByTestId('usage-chart');
  await expect(chart.locator('canvas')).toBeVisible();
  await expect(page.locator('figcaption')).toContainText(/Bandwidth of the whole fleet: served [1-9][\d.]* (B|KiB), .* from the WAN, [1-9][\d.]* (B|KiB) of WAN traffic saved/);
  await expect(row.getByRole('cell').nth(7)).toHaveText(/^[1-9][\d.]* (B|KiB)$/);  // WAN saved in 24 h
  await expect(page.getByRole('table', { name: 'By repository' })).toContainText('acme/base');
  await expect(page.getByRole('table', { name: 'By site' })).toContainText('berlin');
  await page.getByLabel('Of', { exact: true }).selectOption({ label: 'site berlin' });
  await expect(page.locator('figcaption')).toContainText(/Bandwidth of site berlin: served [1-9]/);
  await page.getByLabel('Of', { exact: true }).selectOption({ label: 'repository acme/base' });
  await expect(page.locator('figcaption')).toContainText(/Bandwidth of repository acme\/base: served [1-9]/);
  await shot(page, 'fleet');

  await row.getByRole('link', { name: 'edge-1' }).click();
  await expect(page.getByRole('heading', { name: 'Edge edge-1' })).toBeVisible();
  await expect(page.getByTestId('usage-chart').locator('canvas')).toBeVisible();
  await page.getByLabel('Command', { exact: true }).selectOption('inventory');
  await page.getByRole('button', { name: 'Send' }).click();
  const commands = page.getByRole('table', { name: 'Commands, newest first' });
  await expect(commands.getByTestId('command-state').first()).toHaveText('succeeded', { timeout: 20_000 });
  await expect(commands).toContainText('acme/base');  // the inventory's top repositories
  await shot(page, 'edge');
});

test('administration: users, organizations and teams, policies, webhooks and their deliveries, LDAP', async ({ page }) => {
  await signIn(page);
  await go(page, 'Admin', 'Users');
  await page.getByLabel('User name').fill('dave');
  await page.getByLabel(/^Password/).fill('dave-password');
  await page.getByRole('button', { name: 'Create user' }).click();
  const users = page.getByRole('table', { name: 'Users' });
  await expect(users.getByRole('row').filter({ hasText: 'dave' })).toContainText('active');
  await page.getByRole('button', { name: 'Disable dave' }).click();
  await expect(users.getByRole('row').filter({ hasText: 'dave' })).toContainText('disabled');
  const login = await fetch(`${core.url}/auth/token?service=wharf`, { headers: { Authorization: core.basic('dave', 'dave-password') } });
  expect(login.status).toBe(401);  // the core refuses a disabled account
  await shot(page, 'users');

  await page.getByRole('navigation', { name: 'Administration' }).getByRole('link', { name: 'Organizations' }).click();
  await page.getByLabel('New organization').fill('webteam');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await page.getByRole('link', { name: 'webteam' }).click();
  await expect(page.getByRole('heading', { name: 'Organization webteam' })).toBeVisible();
  await page.getByLabel('New team').fill('frontend');
  await page.getByRole('button', { name: 'Create team' }).click();
  await page.getByLabel('Add a user to frontend').fill('carol');
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await expect(page.getByRole('list', { name: 'frontend' })).toContainText('carol');
  const team = await (await core.api('GET', '/api/v1/orgs/webteam/teams/frontend/members')).json();
  expect(team.items).toEqual(['carol']);

  await page.getByRole('navigation', { name: 'Administration' }).getByRole('link', { name: 'Policies' }).click();
  const policies = page.getByRole('table', { name: /Policies by scope/ });
  await expect(policies.getByRole('row').filter({ hasText: 'acme/base' })).toContainText('signatures required: cosign');
  await page.getByLabel('Scope').fill('webteam/*');
  await page.getByLabel(/^Policy/).fill('{"retention": {"match": "*", "keep_last": "ten"}}');
  await page.getByRole('button', { name: 'Save policy' }).click();
  await expect(page.getByRole('alert')).toContainText('keep_last');  // the core names the bad field
  await page.getByLabel(/^Policy/).fill('{"immutable": ["release-*"], "scan": {"block_severity": "HIGH"}}');
  await page.getByRole('button', { name: 'Save policy' }).click();
  await expect(policies.getByRole('row').filter({ hasText: 'webteam/*' })).toContainText('pulls blocked at HIGH');
  await expect(page.getByRole('alert')).toHaveCount(0);

  await page.getByRole('navigation', { name: 'Administration' }).getByRole('link', { name: 'Webhooks' }).click();
  const target = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook`;
  await page.getByLabel('Scope').fill('acme/*');
  await page.getByLabel('URL').fill(target);
  await page.getByRole('button', { name: 'Create webhook' }).click();
  await page.getByRole('button', { name: `Test ${target}` }).click();
  await waitFor(async () => received.some((b) => b.includes('webhook.test')), 'the test delivery');
  await page.getByRole('button', { name: `Deliveries of ${target}` }).click();
  const deliveries = page.getByRole('table', { name: /Deliveries, newest first/ });
  await expect(async () => {
    await deliveries.getByRole('button', { name: 'Refresh' }).click();
    await expect(deliveries).toContainText('200', { timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await shot(page, 'webhooks');

  await page.getByRole('navigation', { name: 'Administration' }).getByRole('link', { name: 'LDAP' }).click();
  await page.getByLabel('url').fill('ldap://127.0.0.1:1');
  await page.getByLabel('user base').fill('ou=people,dc=example,dc=com');
  await page.getByLabel('bind password (unchanged when empty)').fill('s3cret');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.getByRole('alert')).toHaveCount(0);
  const ldap = await (await core.api('GET', '/api/v1/ldap')).json();
  expect(ldap.url).toBe('ldap://127.0.0.1:1');
  expect(ldap.bind_password).toBeUndefined();  // write-only
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByRole('alert')).toBeVisible();  // nothing listens there: the core says so
});

test('a schedule: added, switched off, run now', async ({ page }) => {
  await signIn(page);
  await go(page, 'Jobs', 'Jobs');
  await page.getByLabel('Schedule name').fill('nightly-gc');
  await page.getByLabel(/^Cron/).fill('0 3 * * *');
  await page.getByLabel('Job kind').fill('gc');
  await page.getByRole('button', { name: 'Add schedule' }).click();
  const row = page.getByRole('row').filter({ hasText: 'nightly-gc' });
  await expect(row).toContainText('0 3 * * *');
  await expect(row).toContainText(/T03:00:00/);  // the next run
  await page.getByRole('button', { name: 'Disable nightly-gc' }).click();
  await expect(row).toContainText('disabled');
  const s = await (await core.api('GET', '/api/v1/schedules/nightly-gc')).json();
  expect(s.enabled).toBe(false);
  await page.getByRole('button', { name: 'Run nightly-gc now' }).click();
  await expect(page.getByRole('heading', { name: /^Job / })).toBeVisible();
  await expect(page.locator('dl.facts')).toContainText('gc');
  const id = (await page.getByRole('heading', { name: /^Job / }).textContent())!.replace('Job ', '');
  // The job's own log, should it not finish (a hang here is the collector's to explain).
  const log = async () => JSON.stringify(await (await core.api('GET', `/api/v1/jobs/${id}/log`)).json());
  await expect(page.getByTestId('job-state')).toHaveText('succeeded', { timeout: 30_000 }).catch(async (e) => {
    throw new Error(`${e.message}\njob ${id}: ${JSON.stringify(await (await core.api('GET', `/api/v1/jobs/${id}`)).json())}\nlog: ${await log()}`);
  });
});

test('axe-core finds no accessibility violations on these pages; usable at 360 px', async ({ browser }) => {
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  await signIn(page);
  const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  // Each page, and what shows it has loaded.
  const pages: Array<[string, string, () => Promise<void>]> = [
    ['/ui/repositories/acme/base', 'acme/base', () => expect(page.getByRole('table', { name: 'Tags' })).toContainText('bookworm')],
    ['/ui/repositories/acme/base/-/bookworm', 'acme/base:bookworm', () => expect(page.getByRole('table', { name: 'Vulnerabilities' })).toBeVisible()],
    ['/ui/fleet', 'Fleet', () => expect(page.getByRole('table', { name: 'By site' })).toContainText('berlin')],
    ['/ui/fleet/edge-1', 'Edge edge-1', () => expect(page.getByTestId('usage-chart').locator('canvas')).toBeVisible()],
    ['/ui/jobs', 'Jobs', () => expect(page.getByRole('table', { name: 'Schedules' })).toContainText('nightly-gc')],
    ['/ui/admin/users', 'Users', () => expect(page.getByRole('table', { name: 'Users' })).toContainText('dave')],
    ['/ui/admin/orgs/webteam', 'Organization webteam', () => expect(page.getByRole('list', { name: 'frontend' })).toContainText('carol')],
    ['/ui/admin/policies', 'Policies', () => expect(page.getByRole('table', { name: /Policies by scope/ })).toContainText('webteam')],
    ['/ui/admin/webhooks', 'Webhooks', () => expect(page.getByRole('table', { name: 'Webhooks' })).toContainText('acme/*')],
    ['/ui/admin/ldap', 'LDAP directory', () => expect(page.getByLabel('url', { exact: true })).toHaveValue('ldap://127.0.0.1:1')],
  ];
  for (const [path, heading, loaded] of pages) {
    // In-app navigation (a reload would sign out): through the history API, as links do.
    await page.evaluate((p) => { history.pushState(null, '', p); dispatchEvent(new PopStateEvent('popstate')); }, path);
    await expect(page.getByRole('heading', { name: heading, exact: true })).toBeVisible();
    await loaded();
    await page.addScriptTag({ content: axe });
    const result = await page.evaluate(async () => (window as any).axe.run(document, { resultTypes: ['violations'] }));
    const violations = result.violations.map((v: any) => `${v.id}: ${v.nodes.map((n: any) => n.target.join(' ')).join(', ')}`);
    expect(violations, path).toEqual([]);
    const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > 361 && (e.tagName === 'TABLE' || !e.closest('table')))
      .map((e) => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`));
    expect(wide, path).toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth), path).toBeLessThanOrEqual(360);
  }
  await context.close();
});
