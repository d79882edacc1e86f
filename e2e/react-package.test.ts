/**
 * The hooks' install story, as react/README.md tells it: `npm pack -w client`
 * and `npm pack -w react` in the repository, then `npm install` of both
 * tarballs (with React) in an application outside it. The README's complete
 * example must then type-check against the installed packages in a strict
 * project (and a wrong body type must not), bundle with esbuild, and — served
 * through a proxy to the demo, as the README says — render in Chromium what
 * the demo's REST API holds.
 */
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build as esbuild } from 'esbuild';
import type { Browser } from 'playwright-core';
import { preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, openPage, SOON, type DemoPage } from './support/browser.js';
import { isFinished, startDemo, waitForBuild, type Demo } from './support/demo.js';
import { completeExample, installPacked, run, strictProject, typeErrorsIn, type OutsideApp } from './support/packages.js';

let outside: OutsideApp<'client' | 'react'>;
let app: string;

beforeAll(async () => {
  // What the README says to run: `npm pack -w client -w react` in a checkout, `npm install` of both (with React) in an application.
  outside = await installPacked(['client', 'react'], {
    appName: 'react-consumer',
    dependencies: ['react', 'react-dom', '@types/react', '@types/react-dom', 'typescript'],
    timeoutMs: 240_000,
  });
  app = outside.app;
}, 400_000);

afterAll(() => outside?.remove());

describe('the hooks package (npm pack -w react)', () => {
  it('carries the ES module build and its declarations, and neither the example nor the tests', async () => {
    const { stdout } = await run('tar', ['-tzf', outside.tarballs.react], outside.scratch);
    const files = stdout.split('\n').filter(Boolean);
    for (const file of ['package/package.json', 'package/README.md', 'package/dist/index.js', 'package/dist/index.d.ts']) {
      expect(files, `the tarball has ${file}`).toContain(file);
    }
    expect(files.filter((file) => /^package\/(example|test)\/|\.tsbuildinfo$/.test(file))).toEqual([]);
  });

  it('installs outside the repository, and Node imports it (no window there) with the application\'s React', async () => {
    const probe = `
      import { fileURLToPath } from 'node:url';
      const hooks = await import('@topicgate/react');
      console.log(JSON.stringify({
        exports: Object.keys(hooks).sort(),
        entry: fileURLToPath(import.meta.resolve('@topicgate/react')),
        window: typeof window,
      }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], app);
    const found = JSON.parse(stdout) as { exports: string[]; entry: string; window: string };
    expect(found.exports).toEqual([
      'TopicgateProvider',
      'createTopicgateHooks',
      'useClient',
      'useConnectionState',
      'useLiveCollection',
      'useLiveResource',
      'useLogTail',
      'useSubscription',
    ]);
    expect(found.entry).toBe(join(app, 'node_modules/@topicgate/react/dist/index.js'));
    expect(found.window).toBe('undefined');
    // One React: the package's peer dependency is the application's.
    expect(readdirSync(join(app, 'node_modules/@topicgate/react')).includes('node_modules')).toBe(false);
  });

  for (const [module, moduleResolution] of [
    ['ESNext', 'Bundler'],
    ['NodeNext', 'NodeNext'],
  ] as const) {
    it(`types the README's example in a strict project (module ${module}, moduleResolution ${moduleResolution}), and refuses a wrong body type`, async () => {
      expect(await typeErrors([{ name: 'example.tsx', code: completeExample('react/README.md', 'tsx') }], module, moduleResolution)).toEqual([]);
      const wrong = [
        "import { createTopicgateHooks } from '@topicgate/react';",
        "const { useSubscription, useLiveCollection } = createTopicgateHooks<{ 'a.{id}': { n: number } }>();",
        "export function A() { useSubscription('a.*', (m) => { const s: string = m.body.n; void s; }); return null; }",
        "export function B() { useLiveCollection({ pattern: 'a.*', load: async () => [{ n: 'x' }] }); return null; }",
        "export function C() { useSubscription('b.*'); return null; }",
        '',
      ].join('\n');
      const errors = await typeErrors([{ name: 'wrong.tsx', code: wrong }], module, moduleResolution);
      for (const line of [3, 4, 5]) expect(errors.some((error) => error.includes(`wrong.tsx(${line},`)), `line ${line} of:\n${wrong}\n${errors.join('\n')}`).toBe(true);
    });
  }
});

/** tsc's errors for `files` in a fresh strict project of the application, as a React app would build them. */
function typeErrors(files: { name: string; code: string }[], module: string, moduleResolution: string): Promise<string[]> {
  const project = strictProject(app, Object.fromEntries(files.map((f) => [f.name, f.code])), { noEmit: true, lib: ['ES2022', 'DOM', 'DOM.Iterable'], jsx: 'react-jsx', module, moduleResolution, types: [] });
  return typeErrorsIn(app, project);
}

describe("react/README.md's complete example, bundled from the installed packages", () => {
  let demo: Demo | undefined;
  let site: PreviewServer | undefined;
  let browser: Browser | undefined;
  let tab: DemoPage | undefined;

  afterAll(async () => {
    await tab?.close();
    await browser?.close();
    await site?.close();
    await demo?.close();
  });

  it('renders in Chromium what the demo\'s REST API holds', async () => {
    const dir = mkdtempSync(join(app, 'page-'));
    writeFileSync(join(dir, 'example.tsx'), completeExample('react/README.md', 'tsx'));
    // The application's bundler resolves everything from its own node_modules.
    await esbuild({
      entryPoints: [join(dir, 'example.tsx')],
      absWorkingDir: app,
      outfile: join(dir, 'dist/example.js'),
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      target: ['es2022'],
      jsx: 'automatic',
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'warning',
    });
    writeFileSync(join(dir, 'dist/index.html'), '<!doctype html><meta charset="utf-8"><div id="root"></div><script type="module" src="/example.js"></script>');

    demo = await startDemo();
    // As the README says: the page's origin passes /api and /socket.io on to the demo.
    site = await preview({
      configFile: false,
      root: dir,
      logLevel: 'warn',
      build: { outDir: join(dir, 'dist') },
      preview: { host: '127.0.0.1', port: 0, strictPort: true, proxy: { '/api': demo.url, '/socket.io': { target: demo.url, ws: true } } },
    });
    browser = await launchBrowser();
    tab = await openPage(browser, site.resolvedUrls!.local[0]!);
    const { page } = tab;
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), SOON).toBe('connected');

    // The example follows build 3: once it has finished, the list, the header and the log equal REST.
    const target = demo;
    await waitForBuild(target, '#3 finished', (b) => b.id === 3 && isFinished(b));
    const rest = await target.build(3);
    const lines = await target.logLines(3);
    await expect
      .poll(
        () =>
          page.evaluate(() => {
            const item = document.querySelector<HTMLElement>('#builds li[data-id="3"]');
            const log = document.getElementById('log')!;
            return {
              listed: item && { state: item.dataset.state, version: Number(item.dataset.version) },
              header: { state: log.dataset.state, version: Number(log.dataset.version) },
              lines: [...log.querySelectorAll<HTMLElement>('[data-n]')].map((line) => line.textContent),
            };
          }),
        { timeout: 15_000, interval: 200 },
      )
      .toEqual({ listed: { state: rest.state, version: rest.version }, header: { state: rest.state, version: rest.version }, lines });
    expect(tab.errors).toEqual([]);
  }, 120_000);
});
