/**
 * Resume in a real browser (issue 12): the demo (resume window on) behind a
 * TCP proxy, so a test can cut the network between the page and the gateway —
 * Playwright's offline mode leaves WebSockets open, so the proxy cuts them
 * while offline mode fails the page's HTTP. After a cut of a few seconds, and
 * after the page's gateway is replaced by another one behind the same URL,
 * the pages catch up without one REST request and without a reload, and
 * equal the REST API afterwards.
 */
import type { Browser, Request } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, stopTestGateways } from '../server/test/support/gateway.js';
import { TcpProxy } from '../server/test/support/tcp-proxy.js';
import {
  expectDashboardCaughtUp,
  expectLogEquals,
  expectNoPageErrors,
  launchBrowser,
  openPage,
  readChrome,
  readDashboard,
  readLog,
  SOON,
  type DemoPage,
} from './support/browser.js';
import { isFinished, SLOW_CI, startDemo, waitForBuild, type Demo } from './support/demo.js';

let browser: Browser;
let demo: Demo | undefined;
let proxy: TcpProxy | undefined;
const tabs: DemoPage[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const tab of tabs.splice(0)) await tab.close();
  await proxy?.close();
  proxy = undefined;
  await demo?.close();
  demo = undefined;
  await stopTestGateways();
});

/** REST requests a page makes for state (the token endpoint is not state). */
function countStateRequests(tab: DemoPage): Request[] {
  const seen: Request[] = [];
  tab.page.on('request', (request) => {
    const path = new URL(request.url()).pathname;
    if (path.startsWith('/api/') && !path.startsWith('/api/demo-token')) seen.push(request);
  });
  return seen;
}

/** The dashboard and a running build's log, through the proxy, live and loaded once. */
async function openThroughProxy(d: Demo, p: TcpProxy) {
  const base = `http://127.0.0.1:${p.port}`;
  const dashboard = await openPage(browser, `${base}/`);
  tabs.push(dashboard);
  await expect.poll(async () => (await readDashboard(dashboard.page)).length, SOON).toBeGreaterThan(0);
  const build = await waitForBuild(d, 'running', (b) => b.state === 'running');
  const log = await openPage(browser, `${base}/log.html?build=${build.id}`);
  tabs.push(log);
  await expect.poll(async () => (await readLog(log.page)).length, SOON).toBeGreaterThan(0);
  await expect.poll(async () => (await d.queues()).filter((q) => q.consumers === 1).length, SOON).toBe(3);
  return { dashboard, log, buildId: build.id, requests: [countStateRequests(dashboard), countStateRequests(log)] };
}

/** Every page caught up, equal to REST, with no REST request and no reload since `requests` started counting. */
async function expectCaughtUpWithoutReload(d: Demo, pages: Awaited<ReturnType<typeof openThroughProxy>>) {
  const { dashboard, log, buildId, requests } = pages;
  for (const { page } of [dashboard, log]) await expect.poll(async () => (await readChrome(page)).connection, { timeout: 30_000, interval: 100 }).toBe('connected');
  await expectDashboardCaughtUp(dashboard.page, d);
  const finished = await waitForBuild(d, `#${buildId} finished`, (b) => b.id === buildId && isFinished(b), 40_000);
  await expectLogEquals(log.page, await d.logLines(buildId));
  expect(finished.id).toBe(buildId);
  for (const { page } of [dashboard, log]) expect(await readChrome(page)).toMatchObject({ reloads: 0, reloadReasons: [], problem: null });
  expect(requests.flat().map((r) => r.url())).toEqual([]);
  expectNoPageErrors(dashboard, log);
}

describe('resume in the browser', () => {
  it('a network cut of a few seconds: the pages catch up without calling the REST API', async () => {
    demo = await startDemo({ simulator: SLOW_CI });
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: demo.gateway.port });
    const pages = await openThroughProxy(demo, proxy);

    for (const tab of tabs) await tab.context.setOffline(true);
    proxy.cut();
    for (const { page } of [pages.dashboard, pages.log]) await expect.poll(async () => (await readChrome(page)).connection, SOON).not.toBe('connected');
    // Away while the CI moves on: build changes are missed.
    const before = JSON.stringify(await demo.builds());
    await expect.poll(async () => JSON.stringify(await demo!.builds()) !== before, SOON).toBe(true);
    proxy.restore();
    for (const tab of tabs) await tab.context.setOffline(false);

    await expectCaughtUpWithoutReload(demo, pages);
  }, 120_000);

  it('the gateway the pages are on is replaced by another behind the same URL: they resume there', async () => {
    demo = await startDemo({ simulator: SLOW_CI });
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: demo.gateway.port });
    const pages = await openThroughProxy(demo, proxy);
    // A second gateway on the same broker and exchange, with the same window and the demo's token secret.
    const second = await startTestGateway({ exchange: demo.exchange, resumeWindowSeconds: 60, jwt: { secret: demo.jwtSecret, algorithms: ['HS256'] } });
    proxy.retarget(second.port);
    proxy.cut();
    proxy.restore();
    // The pages' REST calls would now reach the second gateway, which has no demo API: none may be made.
    await expect.poll(async () => (await demo!.queues()).filter((q) => q.consumers === 1).length, { timeout: 30_000, interval: 200 }).toBe(3);
    await expectCaughtUpWithoutReload(demo, pages);
  }, 120_000);
});
