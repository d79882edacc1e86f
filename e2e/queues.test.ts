/**
 * Each open tab costs one queue per subscription on the broker, and closing
 * the tab gives them back at once — the demo's subscriptions are resumable,
 * whose queues outlive a cut, but a closed tab is no cut: the SDK says goodbye
 * on `pagehide`. Checked on RabbitMQ itself (rabbitmqctl).
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, openPage, readChrome, readDashboard, readLog, SOON } from './support/browser.js';
import { startDemo, waitForBuild, type Demo } from './support/demo.js';

let browser: Browser;
let demo: Demo;

beforeAll(async () => {
  browser = await launchBrowser();
  demo = await startDemo();
});
afterAll(async () => {
  await browser?.close();
  await demo?.close();
});

/** The demo gateway's queues: resumable (the demo turns resume on), one consumer each. */
async function queues(): Promise<string[]> {
  const found = await demo.queues();
  for (const q of found) expect(q, q.name).toMatchObject({ exclusive: false, consumers: 1, name: expect.stringMatching(/^topicgate\.r\./) });
  return found.map((q) => q.name).sort();
}

describe('queues on the broker', () => {
  it('are deleted when the tab closes', async () => {
    expect(await queues()).toEqual([]);

    const dashboard = await openPage(browser, `${demo.url}/`);
    await expect.poll(async () => (await readDashboard(dashboard.page)).length, SOON).toBeGreaterThan(0);
    // builds.#
    await expect.poll(queues, SOON).toHaveLength(1);
    const dashboardQueues = await queues();

    const build = await waitForBuild(demo, 'running', (b) => b.state === 'running');
    const log = await openPage(browser, `${demo.url}/log.html?build=${build.id}`);
    await expect.poll(async () => (await readLog(log.page)).length, SOON).toBeGreaterThan(0);
    expect((await readChrome(log.page)).connection).toBe('connected');
    // builds.<id>.* and logs.<id>.append
    await expect.poll(queues, SOON).toHaveLength(3);

    await log.close();
    await expect.poll(queues, SOON).toEqual(dashboardQueues);

    await dashboard.close();
    await expect.poll(queues, SOON).toEqual([]);
  });
});
