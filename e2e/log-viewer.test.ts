/**
 * The log viewer (log.html?build=ID): a log tail over `logs.ID.append`, gaps
 * filled from GET /api/logs/ID/lines, and the build's header kept live.
 */
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  expectLogEquals,
  expectNoPageErrors,
  launchBrowser,
  openPage,
  SOON,
  readChrome,
  readLog,
  readLogHeader,
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

describe('the log viewer', () => {
  it('with chaos on, shows every line of a build in order, none missing and none twice', async () => {
    demo = await startDemo({ chaos: true });
    expect(await demo.chaos()).toBe(true);
    // Open it while the build runs: most lines arrive as (late, duplicated) messages.
    const running = await waitForBuild(demo, 'running', (b) => b.state === 'running');
    tab = await openPage(browser, `${demo.url}/log.html?build=${running.id}`);
    const { page } = tab;
    await expect.poll(async () => (await readChrome(page)).connection, SOON).toBe('connected');
    await expect.poll(async () => (await readLog(page)).length, SOON).toBeGreaterThan(0);

    const finished = await waitForBuild(demo, `#${running.id} finished`, (b) => b.id === running.id && isFinished(b));
    await expect.poll(async () => (await readLogHeader(page)).state, SOON).toBe(finished.state);
    const rest = await demo.logLines(running.id);
    // A build that fails at its first step has only a handful of lines; any more is a long log.
    expect(rest.length).toBeGreaterThan(5);
    await expectLogEquals(page, rest);

    const header = await readLogHeader(page);
    expect(header).toMatchObject({ state: finished.state, version: (await demo.build(running.id)).version, title: `Build #${finished.id} · ${finished.project}` });
    expect((await readChrome(page)).problem).toBeNull();
    await screenshot(page, 'log-viewer');
    expectNoPageErrors(tab);
  });

  it('shows a build that has not started yet from its first line, once it does', async () => {
    demo = await startDemo();
    // A few builds ahead: new builds start every 0.3–0.9 s.
    const next = Math.max(0, ...(await demo.builds()).map((b) => b.id)) + 5;
    tab = await openPage(browser, `${demo.url}/log.html?build=${next}`);
    const { page } = tab;
    await expect.poll(() => page.locator('#build-meta').textContent(), SOON).toContain('does not exist (yet)');

    const finished = await waitForBuild(demo, `#${next} finished`, (b) => b.id === next && isFinished(b));
    await expect.poll(async () => (await readLogHeader(page)).state, SOON).toBe(finished.state);
    await expectLogEquals(page, await demo.logLines(next));
    expectNoPageErrors(tab);
  });
});
