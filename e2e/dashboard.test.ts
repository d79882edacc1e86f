/**
 * The dashboard (index.html): a live collection over `builds.#`, loaded from
 * GET /api/builds, in a real browser against the demo on RabbitMQ.
 */
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  expectDashboardCaughtUp,
  expectNoPageErrors,
  launchBrowser,
  openPage,
  SOON,
  readChrome,
  readDashboard,
  screenshot,
  type DemoPage,
} from './support/browser.js';
import { isFinished, startDemo, waitForBuild, type Demo } from './support/demo.js';

let browser: Browser;
let demo: Demo | undefined;
let tab: DemoPage | undefined;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  await tab?.close();
  tab = undefined;
  await demo?.close();
  demo = undefined;
});

describe('the dashboard', () => {
  it('follows builds live, without reloading, and ends up equal to the REST API', async () => {
    demo = await startDemo();
    tab = await openPage(browser, `${demo.url}/`);
    const { page } = tab;
    await expect.poll(async () => (await readChrome(page)).connection, SOON).toBe('connected');

    // A build the page shows running turns finished on the page, by messages alone.
    await expect.poll(async () => (await readDashboard(page)).some((b) => b.state === 'running'), SOON).toBe(true);
    const running = (await readDashboard(page)).find((b) => b.state === 'running')!;
    await expect
      .poll(async () => (await readDashboard(page)).find((b) => b.id === running.id)?.state, { timeout: 15_000 })
      .toMatch(/^(success|failure)$/);

    const before = await expectDashboardCaughtUp(page, demo);
    expect(before.some(isFinished)).toBe(true);
    const chrome = await readChrome(page);
    // Without chaos, messages arrive in order: the snapshot is loaded once and never again.
    expect(chrome).toMatchObject({ connection: 'connected', reloads: 0, reloadMarkVisible: false, problem: null });
    await screenshot(page, 'dashboard');
    expectNoPageErrors(tab);
  });

  it('switches chaos on from its toggle, and still converges with messages late and twice', async () => {
    demo = await startDemo();
    tab = await openPage(browser, `${demo.url}/`);
    const { page } = tab;
    await expect.poll(async () => (await readChrome(page)).connection, SOON).toBe('connected');
    const chaos = page.locator('#chaos');
    await expect.poll(() => chaos.isEnabled(), SOON).toBe(true);
    expect(await chaos.isChecked()).toBe(false);

    await chaos.click();
    // The switch shows what the demo answered.
    await expect.poll(() => chaos.getAttribute('data-enabled'), SOON).toBe('true');
    expect(await demo.chaos()).toBe(true);

    // A build created after chaos was switched on, seen whole under chaos.
    const newest = Math.max(0, ...(await demo.builds()).map((b) => b.id));
    await waitForBuild(demo, `#${newest + 1} finished`, (b) => b.id === newest + 1 && isFinished(b));
    await expectDashboardCaughtUp(page, demo);
    expect((await readChrome(page)).problem).toBeNull();
    await screenshot(page, 'dashboard-chaos');

    await chaos.click();
    await expect.poll(() => chaos.getAttribute('data-enabled'), SOON).toBe('false');
    expect(await demo.chaos()).toBe(false);
    expectNoPageErrors(tab);
  });
});
