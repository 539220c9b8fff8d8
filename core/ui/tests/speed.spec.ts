// How fast the UI renders against a core with 10,000 repositories, in this machine's
// headless Chromium (the bound: the repository list and an image page each in
// under 1 s). Timed from the click that opens the page to the page showing its data.
import { test, expect } from '@playwright/test';
import { Core, builtConfig, debianLayer } from './support';

const core = new Core();
const REPOSITORIES = 10_000;

test.beforeAll(async () => {
  test.setTimeout(240_000);
  await core.start();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < REPOSITORIES - 1; i = next++) {
      const r = await core.api('POST', '/api/v1/repositories', { name: `team-${String(i % 100).padStart(2, '0')}/app-${i}` });
      if (r.status !== 201) throw new Error(`repository ${i}: ${r.status} ${await r.text()}`);
    }
  };
  await Promise.all([...Array(16)].map(worker));
  // The 10,000th: an image with a long history, scanned.
  const cfg = builtConfig();
  for (let i = 0; i < 60; i++) cfg.history.push({ created: '2026-11-01T10:00:05Z', created_by: `RUN /bin/sh -c step-${i} # buildkit`, empty_layer: true } as any);
  await core.pushImage('team-00/big', 'v1', cfg, [debianLayer()]);
  await core.scan('team-00/big', 'v1');
});

test.afterAll(() => core.stop());

test('10,000 repositories: the list, a search and an image page each render in under 1 s', async ({ page }) => {
  await page.goto(core.url + '/ui/login');
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill('ui-admin-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const nav = page.getByRole('navigation', { name: 'Main' });
  const rows = page.getByRole('table', { name: 'Repositories you may pull' }).getByRole('row');
  await expect(rows).toHaveCount(51);  // the header and the first page
  const timed = async (what: string, act: () => Promise<void>, done: () => Promise<void>) => {
    const start = Date.now();
    await act();
    await done();
    const ms = Date.now() - start;
    console.log(`${what}: ${ms} ms`);
    expect(ms, what).toBeLessThan(1000);
  };

  await nav.getByRole('link', { name: 'Events', exact: true }).click();
  await timed('repository list', () => nav.getByRole('link', { name: 'Repositories', exact: true }).click(),
    () => expect(rows).toHaveCount(51));
  await expect(rows.nth(1)).toContainText('team-00/app-0');
  await timed('next page', () => page.getByRole('button', { name: 'More' }).click(), () => expect(rows).toHaveCount(101));
  await timed('sorted the other way', () => page.getByLabel('Sort').selectOption('-name'),
    () => expect(rows.nth(1).getByRole('link', { name: 'team-99/app-999', exact: true })).toBeVisible());
  await expect(rows).toHaveCount(51);
  await timed('search', () => page.getByLabel('Search repositories').fill('app-9876'),
    () => expect(rows.filter({ hasText: 'team-76/app-9876' })).toHaveCount(1));
  await expect(rows).toHaveCount(2);

  await page.getByLabel('Search repositories').fill('team-00/big');
  await page.getByRole('link', { name: 'team-00/big' }).click();
  await page.getByRole('table', { name: 'Tags' }).getByRole('link', { name: 'v1' }).waitFor();
  await timed('image page', () => page.getByRole('table', { name: 'Tags' }).getByRole('link', { name: 'v1' }).click(), async () => {
    await expect(page.getByRole('table', { name: /Dockerfile/ }).getByRole('row')).toHaveCount(67);
    await expect(page.getByRole('table', { name: 'Vulnerabilities' })).toContainText('libminizip1');
    await expect(page.getByRole('table', { name: /Software installed/ })).toContainText('curl');
  });
});
