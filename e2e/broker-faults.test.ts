/**
 * Both pages stay correct through broker faults: the gateway's AMQP
 * connection cut by an operator, and RabbitMQ itself restarting. The tabs keep
 * their socket to the gateway; what they missed meanwhile is reloaded from
 * REST (the resync mark shows it) and live updates resume.
 *
 * RabbitMQ is always brought back, whatever happens in between.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeConnections } from '../server/test/support/broker.js';
import {
  expectDashboardCaughtUp,
  expectLogEquals,
  expectNoPageErrors,
  launchBrowser,
  openPage,
  readChrome,
  readDashboard,
  readLog,
  readLogHeader,
  screenshot,
  SOON,
  type DemoPage,
} from './support/browser.js';
import { isFinished, SLOW_CI, startDemo, waitForBuild, type Demo } from './support/demo.js';

const run = promisify(execFile);

let browser: Browser;
let demo: Demo | undefined;
const tabs: DemoPage[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const tab of tabs.splice(0)) await tab.close();
  await demo?.close();
  demo = undefined;
});

/** The dashboard, and the log viewer on a build that is running. */
async function openPages(d: Demo) {
  const dashboard = await openPage(browser, `${d.url}/`);
  tabs.push(dashboard);
  await expect.poll(async () => (await readDashboard(dashboard.page)).length, SOON).toBeGreaterThan(0);
  const build = await waitForBuild(d, 'running', (b) => b.state === 'running');
  const log = await openPage(browser, `${d.url}/log.html?build=${build.id}`);
  tabs.push(log);
  await expect.poll(async () => (await readLog(log.page)).length, SOON).toBeGreaterThan(0);
  for (const { page } of [dashboard, log]) expect(await readChrome(page)).toMatchObject({ connection: 'connected', reloads: 0 });
  await expect.poll(async () => (await d.queues()).length, SOON).toBe(3);
  return { dashboard, log, buildId: build.id };
}

/** After a fault: both views reloaded, queues back, and both pages equal to REST again, with live updates flowing. */
async function expectRecovered(d: Demo, { dashboard, log, buildId }: Awaited<ReturnType<typeof openPages>>, screenshotName: string) {
  for (const { page } of [dashboard, log]) {
    // Messages that follow the gap may arrive before the gateway's resync notice, and a version gap reloads first.
    await expect.poll(async () => (await readChrome(page)).reloadReasons, { timeout: 45_000, interval: 200 }).toContain('reconnected');
    const chrome = await readChrome(page);
    // The tabs' own connection to the gateway never broke; only the gateway's to the broker did.
    expect(chrome).toMatchObject({ connection: 'connected', reloadMarkVisible: true, problem: null });
  }
  await expect.poll(async () => (await d.queues()).filter((q) => q.consumers === 1).length, SOON).toBe(3);

  await expectDashboardCaughtUp(dashboard.page, d);
  // Live again: a build started after the recovery is followed to its end.
  const newest = Math.max(...(await d.builds()).map((b) => b.id));
  await waitForBuild(d, `#${newest + 1} finished`, (b) => b.id === newest + 1 && isFinished(b), 40_000);
  await expectDashboardCaughtUp(dashboard.page, d);
  await screenshot(dashboard.page, `${screenshotName}-dashboard`);

  const finished = await waitForBuild(d, `#${buildId} finished`, (b) => b.id === buildId && isFinished(b), 40_000);
  await expect.poll(async () => (await readLogHeader(log.page)).state, SOON).toBe(finished.state);
  await expectLogEquals(log.page, await d.logLines(buildId));
  await screenshot(log.page, `${screenshotName}-log`);
  expectNoPageErrors(dashboard, log);
}

describe('after a broker fault, the pages', () => {
  it('recover from the gateway’s broker connection being closed by an operator', async () => {
    demo = await startDemo({ simulator: SLOW_CI });
    const pages = await openPages(demo);
    await closeConnections(demo.gateway.connectionName, 'e2e: connection cut');
    await expectRecovered(demo, pages, 'after-connection-cut');
  }, 120_000);

  it('recover from a RabbitMQ restart', async () => {
    demo = await startDemo({ simulator: SLOW_CI });
    const pages = await openPages(demo);
    const readyz = async () => (await fetch(`${demo!.url}/readyz`)).status;
    try {
      await run('rabbitmqctl', ['-q', 'stop_app']);
      await expect.poll(readyz, SOON).toBe(503);
    } finally {
      await run('rabbitmqctl', ['-q', 'start_app']);
      await run('rabbitmqctl', ['-q', 'await_startup']);
    }
    await expectRecovered(demo, pages, 'after-broker-restart');
  }, 150_000);
});
