/**
 * The React example (react/example: the demo's dashboard and log viewer
 * rebuilt with @topicgate/react), built with Vite and served by `vite
 * preview`, which passes `/api` and `/socket.io` on to the demo, in Chromium
 * against the demo on RabbitMQ. Read through the same DOM hooks as the
 * vanilla pages, so the comparisons with the REST API are the same exact ones.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { build, preview, type InlineConfig, type PreviewServer } from 'vite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exampleConfig } from '../react/example/vite.config.js';
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
import { isFinished, startDemo, waitForBuild, type Demo } from './support/demo.js';

let browser: Browser;
let scratch: string;
/** The production build, and a development build: React's StrictMode runs every effect twice only there. */
const builds = { production: '', development: '' };
let demo: Demo | undefined;
let site: PreviewServer | undefined;
const tabs: DemoPage[] = [];

function config(mode: keyof typeof builds, demoUrl: string): InlineConfig {
  const base = exampleConfig(demoUrl);
  return {
    ...base,
    configFile: false,
    mode,
    build: { ...base.build, outDir: builds[mode], minify: mode === 'production' },
  };
}

/**
 * Builds the example as `NODE_ENV=<mode> vite build` would. Vite and the React
 * plugin read NODE_ENV (vitest sets it to 'test') to choose between React's
 * production and development code, and the JSX transform with it.
 */
async function buildIn(mode: keyof typeof builds): Promise<void> {
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = mode;
  try {
    await build(config(mode, 'http://127.0.0.1:9'));
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
}

/** Serves a build of the example in front of the demo, on a free port of this machine. */
async function serve(mode: keyof typeof builds, target: Demo): Promise<string> {
  site = await preview({ ...config(mode, target.url), preview: { ...config(mode, target.url).preview, host: '127.0.0.1', port: 0, strictPort: true } });
  const url = site.resolvedUrls?.local[0];
  if (url === undefined) throw new Error('vite preview did not say where it listens');
  return url.replace(/\/$/, '');
}

async function open(url: string): Promise<DemoPage> {
  const tab = await openPage(browser, url);
  tabs.push(tab);
  return tab;
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'topicgate-react-example-'));
  builds.production = join(scratch, 'production');
  builds.development = join(scratch, 'development');
  // The proxy target is only read when serving.
  for (const mode of ['production', 'development'] as const) await buildIn(mode);
  browser = await launchBrowser();
}, 120_000);
afterAll(async () => {
  await browser?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});
afterEach(async () => {
  for (const tab of tabs.splice(0)) await tab.close();
  await site?.close();
  site = undefined;
  await demo?.close();
  demo = undefined;
});

describe('the React dashboard', () => {
  it('follows builds live, without reloading, and ends up equal to the REST API', async () => {
    demo = await startDemo();
    const { page } = await open(`${await serve('production', demo)}/`);
    await expect.poll(async () => (await readChrome(page)).connection, SOON).toBe('connected');

    // A build the page shows running turns finished on the page, by messages alone.
    await expect.poll(async () => (await readDashboard(page)).some((b) => b.state === 'running'), SOON).toBe(true);
    const running = (await readDashboard(page)).find((b) => b.state === 'running')!;
    await expect.poll(async () => (await readDashboard(page)).find((b) => b.id === running.id)?.state, { timeout: 15_000 }).toMatch(/^(success|failure)$/);

    const before = await expectDashboardCaughtUp(page, demo);
    expect(before.some(isFinished)).toBe(true);
    // Without chaos, messages arrive in order: the snapshot is loaded once and never again.
    const chrome = await readChrome(page);
    expect(chrome, `the page's chrome: ${JSON.stringify(chrome)}`).toMatchObject({ connection: 'connected', reloads: 0, reloadMarkVisible: false, problem: null });
    await screenshot(page, 'react-dashboard');
    expectNoPageErrors(...tabs);
  });

  it('switches chaos on from its toggle, and still converges with messages late and twice', async () => {
    demo = await startDemo();
    const { page } = await open(`${await serve('production', demo)}/`);
    await expect.poll(async () => (await readChrome(page)).connection, SOON).toBe('connected');
    const chaos = page.locator('#chaos');
    await expect.poll(() => chaos.isEnabled(), SOON).toBe(true);
    await chaos.click();
    await expect.poll(() => chaos.getAttribute('data-enabled'), SOON).toBe('true');
    expect(await demo.chaos()).toBe(true);

    const newest = Math.max(0, ...(await demo.builds()).map((b) => b.id));
    await waitForBuild(demo, `#${newest + 1} finished`, (b) => b.id === newest + 1 && isFinished(b));
    await expectDashboardCaughtUp(page, demo);
    expect((await readChrome(page)).problem).toBeNull();
    expectNoPageErrors(...tabs);
  });
});

describe('the React log viewer', () => {
  it('with chaos on, shows every line of a build in order, none missing and none twice, under a header that ends final', async () => {
    demo = await startDemo({ chaos: true });
    const running = await waitForBuild(demo, 'running', (b) => b.state === 'running');
    const { page } = await open(`${await serve('production', demo)}/log.html?build=${running.id}`);
    await expect.poll(async () => (await readChrome(page)).connection, SOON).toBe('connected');
    await expect.poll(async () => (await readLog(page)).length, SOON).toBeGreaterThan(0);

    const finished = await waitForBuild(demo, `#${running.id} finished`, (b) => b.id === running.id && isFinished(b));
    await expect.poll(async () => (await readLogHeader(page)).state, SOON).toBe(finished.state);
    const rest = await demo.logLines(running.id);
    expect(rest.length).toBeGreaterThan(5);
    await expectLogEquals(page, rest);
    expect(await readLogHeader(page)).toMatchObject({
      state: finished.state,
      version: (await demo.build(running.id)).version,
      title: `Build #${finished.id} · ${finished.project}`,
    });
    expect((await readChrome(page)).problem).toBeNull();
    await screenshot(page, 'react-log-viewer');
    expectNoPageErrors(...tabs);
  });
});

describe('the React pages on RabbitMQ', () => {
  /** rabbitmqctl takes seconds on a busy machine (two calls per look); 45 s is still short of the demo's 60 s resume window. */
  const BROKER = { timeout: 45_000, interval: 250 };

  it('hold one queue per hook under StrictMode (development build), and closing the tab deletes them', async () => {
    demo = await startDemo();
    const target = demo;
    const queues = async () => (await target.queues()).map((q) => q.name).sort();
    const url = await serve('development', demo);
    expect(await queues()).toEqual([]);

    const dashboard = await open(`${url}/`);
    await expect.poll(async () => (await readDashboard(dashboard.page)).length, SOON).toBeGreaterThan(0);
    // useLiveCollection over builds.#: StrictMode mounted it twice, one queue is left.
    await expect.poll(queues, BROKER).toHaveLength(1);
    const dashboardQueues = await queues();

    const build = await waitForBuild(demo, 'running', (b) => b.state === 'running');
    const log = await open(`${url}/log.html?build=${build.id}`);
    await expect.poll(async () => (await readLog(log.page)).length, SOON).toBeGreaterThan(0);
    expect((await readChrome(log.page)).connection).toBe('connected');
    // useLiveResource over builds.<id>.* and useLogTail over logs.<id>.append.
    await expect.poll(queues, BROKER).toHaveLength(3);
    // Still three once both pages are live: no second subscription trails in.
    await expect.poll(async () => (await readLogHeader(log.page)).state !== undefined, SOON).toBe(true);
    expect(await queues()).toHaveLength(3);

    // A closed tab says goodbye (pagehide), and the gateway deletes its queues at once; one that
    // vanished without it would leave them for the demo's 60 s resume window, which BROKER tells apart.
    await log.close();
    tabs.splice(tabs.indexOf(log), 1);
    await expect.poll(queues, BROKER).toEqual(dashboardQueues);
    await dashboard.close();
    tabs.splice(tabs.indexOf(dashboard), 1);
    await expect.poll(queues, BROKER).toEqual([]);
    expectNoPageErrors(dashboard, log);
  }, 240_000);
});
