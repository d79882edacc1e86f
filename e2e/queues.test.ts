/**
 * Each open tab costs one exclusive queue per subscription on the broker, and
 * closing the tab gives them back: checked on RabbitMQ itself (rabbitmqctl).
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listQueues } from '../server/test/support/broker.js';
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

/** The demo gateway's queues: exclusive, one consumer each. */
async function queues(): Promise<string[]> {
  const found = await listQueues(demo.queuePrefix);
  for (const q of found) expect(q, q.name).toMatchObject({ exclusive: true, consumers: 1 });
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
