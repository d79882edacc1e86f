/**
 * Debian's Chromium driven through playwright-core, and what the specs read
 * off the demo pages. The pages expose what a reader sees plus a few data-*
 * attributes (ids, versions, line numbers) so that comparisons are exact.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import type { Build, Demo } from './demo.js';

export const CHROMIUM = process.env.TOPICGATE_E2E_CHROMIUM ?? '/usr/bin/chromium';

/** Screenshots land here (gitignored); CI keeps the folder as a test artifact. */
export const ARTIFACTS_DIR = fileURLToPath(new URL('../artifacts/', import.meta.url));

export async function launchBrowser(): Promise<Browser> {
  try {
    return await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  } catch (err) {
    throw new Error(`cannot start Chromium at ${CHROMIUM} (install Debian's chromium package): ${(err as Error).message}`);
  }
}

/** A page whose uncaught errors fail the test that opened it (see `expectNoPageErrors`). */
export interface DemoPage {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Uncaught exceptions thrown by the page's scripts. */
  readonly errors: string[];
  close(): Promise<void>;
}

export async function openPage(browser: Browser, url: string): Promise<DemoPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  // Closing the page first is what closing a tab does; the context goes with it.
  return { page, context, errors, close: () => page.close().then(() => context.close()) };
}

/** Options for `expect.poll` on things that take a moment: a page connecting, a broker updating its queues. */
export const SOON = { timeout: 10_000, interval: 100 };

export function expectNoPageErrors(...pages: DemoPage[]): void {
  expect(pages.flatMap((p) => p.errors)).toEqual([]);
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = `${ARTIFACTS_DIR}${name}.png`;
  // Finished animations (a new row's flash) jump to their end, endless ones (pulsing dots) to their start.
  await page.screenshot({ path, animations: 'disabled' });
  return path;
}

// ---------------------------------------------------------------------------
// Reading the pages

/** The chrome both pages share. */
export interface PageChrome {
  /** 'connecting' | 'connected' | 'disconnected', as the badge shows it. */
  connection: string | undefined;
  connectionText: string;
  /** Times a view was reloaded from REST after its first load; the mark is hidden while 0 (and no gap was filled). */
  reloads: number;
  /** Why the last reload happened: the SDK's `reload` reason (`reconnected`, `resubscribed`, `version_gap`, …). */
  reloadReason: string;
  /** Every such reason seen so far. */
  reloadReasons: string[];
  reloadMarkVisible: boolean;
  /** The problem banner's code (`token_expired`, `token_invalid`, …) and text, or null when hidden. */
  problem: { code: string; text: string } | null;
}

export function readChrome(page: Page): Promise<PageChrome> {
  return page.evaluate(() => {
    const connection = document.getElementById('connection')!;
    const mark = document.getElementById('resync-mark')!;
    const problem = document.getElementById('problem')!;
    return {
      connection: connection.dataset.state,
      connectionText: connection.textContent ?? '',
      reloads: Number(mark.dataset.count ?? 0),
      reloadReason: mark.dataset.reason ?? '',
      reloadReasons: (mark.dataset.reasons ?? '').split(' ').filter(Boolean),
      reloadMarkVisible: !mark.hidden,
      problem: problem.hidden ? null : { code: problem.dataset.code ?? '', text: problem.innerText },
    };
  });
}

/** One row of the dashboard, as rendered. */
export interface RenderedBuild {
  id: number;
  project: string;
  state: string;
  /** What the status badge says ('queued', 'running', 'passed', 'failed'). */
  label: string;
  version: number;
  steps: { name: string; state: string }[];
}

export function readDashboard(page: Page): Promise<RenderedBuild[]> {
  return page.$$eval('#builds tbody tr[data-id]', (rows) =>
    rows.map((row) => {
      const tr = row as HTMLElement;
      return {
        id: Number(tr.dataset.id),
        project: tr.querySelector('.project')!.textContent ?? '',
        state: tr.dataset.state ?? '',
        label: tr.querySelector('.badge')?.textContent ?? '',
        version: Number(tr.dataset.version),
        steps: [...tr.querySelectorAll<HTMLElement>('.step')].map((s) => ({ name: s.dataset.name ?? '', state: s.dataset.state ?? '' })),
      };
    }),
  );
}

/** The log viewer's lines: number (0-based, as the API counts) and text. */
export function readLog(page: Page): Promise<{ n: number; text: string }[]> {
  return page.$$eval('#log .line', (lines) =>
    lines.map((line) => ({ n: Number((line as HTMLElement).dataset.n), text: line.querySelector('.t')!.textContent ?? '' })),
  );
}

/** The log viewer's header: the build's state and version as its live resource holds them. */
export function readLogHeader(page: Page): Promise<{ state: string | undefined; version: number; title: string }> {
  return page.evaluate(() => {
    const header = document.getElementById('build')!;
    return { state: header.dataset.state, version: Number(header.dataset.version), title: document.getElementById('build-title')!.textContent ?? '' };
  });
}

const LABELS: Record<string, string> = { pending: 'queued', running: 'running', success: 'passed', failure: 'failed' };

/**
 * What keeps the dashboard from being caught up with the REST API.
 *
 * `before` is read once, before the page is read; `after` right after it.
 * The page is caught up when every build in `before` is on it at that version
 * or later, a build already finished in `before` (a final state: it never
 * changes again) is rendered exactly as REST has it, and no rendered build is
 * ahead of `after` or differs from it at the same version. Builds keep running
 * while the specs look, so this is the exact comparison that a live page can
 * pass; polled until it returns no problem.
 */
export function dashboardLag(before: Build[], rendered: RenderedBuild[], after: Build[]): string[] {
  const problems: string[] = [];
  const shown = new Map(rendered.map((b) => [b.id, b]));
  const latest = new Map(after.map((b) => [b.id, b]));
  const same = (row: RenderedBuild, build: Build) =>
    row.project === build.project &&
    row.state === build.state &&
    row.label === LABELS[build.state] &&
    row.version === build.version &&
    JSON.stringify(row.steps) === JSON.stringify(build.steps.map(({ name, state }) => ({ name, state })));

  for (const build of before) {
    const row = shown.get(build.id);
    if (!row) problems.push(`#${build.id} (${build.state}, v${build.version}) is missing`);
    else if (row.version < build.version) problems.push(`#${build.id} shows v${row.version} (${row.state}), REST had v${build.version} (${build.state})`);
    else if (isFinal(build) && !same(row, build)) problems.push(`#${build.id} is final in REST but rendered differently: ${JSON.stringify(row)}`);
  }
  // The demo keeps its last 50 builds and drops older ones without a message: a page
  // keeps those until its next reload. Only ids REST never had are wrong.
  const oldestKept = Math.min(...after.map((b) => b.id));
  for (const row of rendered) {
    const build = latest.get(row.id);
    if (!build && row.id < oldestKept) continue;
    if (!build) problems.push(`#${row.id} is rendered but unknown to REST`);
    else if (row.version > build.version) problems.push(`#${row.id} is rendered at v${row.version}, ahead of REST (v${build.version})`);
    else if (row.version === build.version && !same(row, build)) problems.push(`#${row.id} v${row.version} differs from REST: ${JSON.stringify(row)}`);
  }
  const order = rendered.map((b) => b.id);
  if (order.some((id, i) => i > 0 && id > order[i - 1]!)) problems.push(`rows are not newest first: ${order.join(',')}`);
  return problems;
}

function isFinal(build: Build): boolean {
  return build.state === 'success' || build.state === 'failure';
}

/** Polls the dashboard until it has caught up with the REST API (see `dashboardLag`); returns the REST snapshot used. */
export async function expectDashboardCaughtUp(page: Page, demo: Pick<Demo, 'builds'>, timeout = 15_000): Promise<Build[]> {
  const before = await demo.builds();
  await expect
    .poll(async () => dashboardLag(before, await readDashboard(page), await demo.builds()), { timeout, interval: 100 })
    .toEqual([]);
  return before;
}

/** Where the rendered log first differs from the REST log; null when they are equal. */
export function logDifference(rendered: { n: number; text: string }[], rest: readonly string[]): string | null {
  for (let i = 0; i < Math.max(rendered.length, rest.length); i++) {
    const line = rendered[i];
    if (line === undefined) return `${rest.length - i} of ${rest.length} lines missing from line ${i}`;
    if (i >= rest.length) return `${rendered.length - rest.length} lines more than REST's ${rest.length}`;
    if (line.n !== i) return `line ${i} is rendered with number ${line.n}`;
    if (line.text !== rest[i]) return `line ${i} differs: ${JSON.stringify(line.text)} vs REST ${JSON.stringify(rest[i])}`;
  }
  return null;
}

/** Polls the log viewer until it shows exactly `rest`, every line once and in order. */
export async function expectLogEquals(page: Page, rest: readonly string[], timeout = 15_000): Promise<void> {
  await expect.poll(async () => logDifference(await readLog(page), rest), { timeout, interval: 100 }).toBeNull();
}
