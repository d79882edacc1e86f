/**
 * Tokens as the reader meets them: a refused token is explained on the page
 * (not only in the console), and a page that can renew its tokens keeps going.
 *
 * Expired tokens come from the demo itself: `GET /api/demo-token?ttl=1`
 * mints one that lives a second; the spec waits for it to expire, then hands
 * it to the page with `?token=` (a token given that way is never renewed).
 */
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  expectDashboardCaughtUp,
  expectNoPageErrors,
  launchBrowser,
  openPage,
  readChrome,
  readDashboard,
  screenshot,
  SOON,
  type DemoPage,
} from './support/browser.js';
import { startDemo, waitForBuild, type Demo } from './support/demo.js';

let browser: Browser;
let demo: Demo;
const tabs: DemoPage[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
  demo = await startDemo();
});
afterAll(async () => {
  await browser?.close();
  await demo?.close();
});
afterEach(async () => {
  for (const tab of tabs.splice(0)) await tab.close();
});

async function open(path: string): Promise<DemoPage> {
  const tab = await openPage(browser, `${demo.url}${path}`);
  tabs.push(tab);
  return tab;
}

/** A token the demo minted, once it has expired (the gateway counts whole seconds). */
async function expiredToken(): Promise<string> {
  const { token, expiresAt } = await demo.token(1);
  await expect.poll(() => Date.now() / 1000 > expiresAt + 1, { timeout: 5_000, interval: 100 }).toBe(true);
  return token;
}

describe('a token the gateway refuses', () => {
  it('when invalid, is explained on the page', async () => {
    const { page } = await open('/?token=garbage');
    await expect.poll(async () => (await readChrome(page)).problem?.code, SOON).toBe('token_invalid');
    const chrome = await readChrome(page);
    expect(chrome.connection).toBe('disconnected');
    expect(chrome.connectionText).toBe('disconnected');
    expect(chrome.problem!.text).toContain('The gateway refused the access token');
    expect(chrome.problem!.text).toContain('token is malformed');
    expect(chrome.problem!.text).toContain('Open the page without it');
    expect(await page.locator('#empty').textContent()).toBe('Not connected to the gateway.');
    await screenshot(page, 'token-invalid');
  });

  it('when expired, is explained on the page', async () => {
    const token = await expiredToken();
    const build = await waitForBuild(demo, 'any', () => true);
    const { page } = await open(`/log.html?build=${build.id}&token=${token}`);
    await expect.poll(async () => (await readChrome(page)).problem?.code, SOON).toBe('token_expired');
    const chrome = await readChrome(page);
    expect(chrome.connection).toBe('disconnected');
    expect(chrome.problem!.text).toContain('Your access token has expired');
    expect(chrome.problem!.text).toMatch(/token expired at \d{4}-/);
    await screenshot(page, 'token-expired');
  });

  it('when it expires while the page is open and cannot be renewed, is explained on the page', async () => {
    const { token } = await demo.token(4);
    const { page } = await open(`/?token=${token}`);
    await expect.poll(async () => (await readChrome(page)).connection, SOON).toBe('connected');
    await expect.poll(async () => (await readDashboard(page)).length, SOON).toBeGreaterThan(0);
    // The gateway disconnects the socket at `exp`; the reconnect with the same token is refused.
    await expect.poll(async () => (await readChrome(page)).problem?.code, SOON).toBe('token_expired');
    expect((await readChrome(page)).connection).toBe('disconnected');
    // What was loaded stays on screen.
    expect((await readDashboard(page)).length).toBeGreaterThan(0);
  });
});

describe('short-lived tokens from the demo (?ttl=)', () => {
  it('are renewed before they expire: the page stays connected and live', async () => {
    const tab = await open('/?ttl=3');
    const { page } = tab;
    let tokens = 0;
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/api/demo-token') tokens++;
    });
    await expect.poll(async () => (await readChrome(page)).connection, SOON).toBe('connected');
    // Renewed at half their life: by the fourth token the connection has outlived the first two.
    await expect.poll(() => tokens, { timeout: 15_000, interval: 100 }).toBeGreaterThanOrEqual(4);
    const chrome = await readChrome(page);
    // A dropped connection would have shown: a reconnect resubscribes, and the view reloads.
    expect(chrome).toMatchObject({ connection: 'connected', problem: null, reloads: 0 });
    await expectDashboardCaughtUp(page, demo);
    expectNoPageErrors(tab);
  });
});
