/**
 * The SDK's install story, as client/README.md tells it: `npm pack -w client`
 * in the repository, then `npm install <tarball>` in an application outside
 * it. The tarball must install there (it bundles `@topicgate/shared`, which
 * exists only in this repository), carry types that a strict TypeScript
 * project compiles the READMEs' examples against, load in Node, and the
 * README's complete example, compiled from the installed package, must work
 * against the demo as it runs (`topicgate demo` on RabbitMQ): its views end
 * equal to the demo's REST API.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../server/src/demo/run-demo.js';
import type { Build, LogChunk } from '../server/src/demo/model.js';
import type { RunningGateway } from '../server/src/server.js';
import { deleteGatewayExchanges, requireBroker, TEST_AMQP_URL, uniqueName } from '../server/test/support/broker.js';
import { shellEnv } from './support/env.js';
import { completeExample, installPacked, run, strictProject, typeErrorsIn, type OutsideApp } from './support/packages.js';
import { REPO_ROOT } from './support/worktree.js';

let outside: OutsideApp<'client'>;
let app: string;
let tarball: string;

/** The ```ts blocks of a markdown file that import the SDK. */
function sdkExamples(markdown: string): string[] {
  const text = readFileSync(join(REPO_ROOT, markdown), 'utf8');
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((code) => code.includes("from '@topicgate/client'"));
}

beforeAll(async () => {
  // What the README says to run: `npm pack -w client` in a checkout, `npm install <tarball>` in an application.
  outside = await installPacked(['client'], { appName: 'sdk-consumer', dependencies: ['typescript'] });
  app = outside.app;
  tarball = outside.tarballs.client;
}, 300_000);

afterAll(() => outside?.remove());

describe('the SDK package (npm pack -w client)', () => {
  it('carries the ES module build, its declarations, the script-tag bundle, and @topicgate/shared inside', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball], outside.scratch);
    const files = stdout.split('\n').filter(Boolean);
    for (const file of [
      'package/package.json',
      'package/README.md',
      'package/dist/index.js',
      'package/dist/index.d.ts',
      'package/dist/topicgate.min.js',
      'package/node_modules/@topicgate/shared/package.json',
      'package/node_modules/@topicgate/shared/dist/index.js',
      'package/node_modules/@topicgate/shared/dist/index.d.ts',
    ]) {
      expect(files, `the tarball has ${file}`).toContain(file);
    }
    expect(files.filter((file) => file.endsWith('.tsbuildinfo'))).toEqual([]);
    // postpack took away the link prepack made for npm to bundle shared.
    expect(existsSync(join(REPO_ROOT, 'client/node_modules/@topicgate/shared'))).toBe(false);
  });

  it('installs outside the repository, and Node loads it with its bundled @topicgate/shared', async () => {
    const probe = `
      import { createRequire } from 'node:module';
      import { fileURLToPath } from 'node:url';
      const sdk = await import('@topicgate/client');
      const entry = fileURLToPath(import.meta.resolve('@topicgate/client'));
      const shared = createRequire(entry).resolve('@topicgate/shared');
      const bundle = fileURLToPath(import.meta.resolve('@topicgate/client/dist/topicgate.min.js'));
      console.log(JSON.stringify({ createClient: typeof sdk.createClient, forbidden: sdk.ErrorCode.Forbidden, entry, shared, bundle }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], app);
    const found = JSON.parse(stdout) as Record<string, string>;
    expect(found.createClient).toBe('function');
    expect(found.forbidden).toBe('forbidden'); // a value from @topicgate/shared, re-exported
    expect(found.entry).toBe(join(app, 'node_modules/@topicgate/client/dist/index.js'));
    expect(found.shared).toBe(join(app, 'node_modules/@topicgate/client/node_modules/@topicgate/shared/dist/index.js'));
    expect(existsSync(found.bundle!)).toBe(true);
  });

  for (const [module, moduleResolution] of [
    ['ESNext', 'Bundler'],
    ['NodeNext', 'NodeNext'],
  ] as const) {
    it(`types the READMEs' examples in a strict project (module ${module}, moduleResolution ${moduleResolution}, lib checked)`, async () => {
      const examples = [...sdkExamples('client/README.md'), ...sdkExamples('README.md')];
      expect(examples.length).toBeGreaterThanOrEqual(2);
      expect(examples).toContain(completeExample('client/README.md'));
      const files = examples.map((code, i) => ({ name: `example-${i}.ts`, code }));
      // And the types are the SDK's, not `any`: these must not compile.
      const wrong = [
        "import { createClient } from '@topicgate/client';",
        "const client = createClient<{ 'a.{id}': { n: number } }>({ url: 'http://localhost:8080', token: 't' });",
        'client.subscribe(\'a.*\', (m) => { const s: string = m.body.n; void s; });',
        "client.subscribe('b.*');",
        '',
      ].join('\n');
      expect(await typeErrors(files, module, moduleResolution)).toEqual([]);
      const errors = await typeErrors([{ name: 'wrong.ts', code: wrong }], module, moduleResolution);
      expect(errors.some((line) => line.includes('wrong.ts(3,'))).toBe(true);
      expect(errors.some((line) => line.includes('wrong.ts(4,'))).toBe(true);
    });
  }
});

/** tsc's errors for `files` in a fresh strict project of the application, as a browser app would build them. */
function typeErrors(files: { name: string; code: string }[], module: string, moduleResolution: string): Promise<string[]> {
  const project = strictProject(app, Object.fromEntries(files.map((f) => [f.name, f.code])), { noEmit: true, lib: ['ES2022', 'DOM', 'DOM.Iterable'], module, moduleResolution, types: [] });
  return typeErrorsIn(app, project);
}

describe("client/README.md's complete example, from the installed package", () => {
  let demo: RunningGateway;
  const exchange = uniqueName('topicgate-sdk-example');

  beforeAll(async () => {
    await requireBroker();
    demo = await runDemo(
      { port: '0', host: '127.0.0.1', 'amqp-url': TEST_AMQP_URL, exchange, 'log-level': 'silent' },
      // Build 42 (the one the example follows) within seconds, and kept.
      { simulator: { maxRunning: 12, newBuildEveryMs: 50, stepMs: 250, linesPerSecond: 40 }, keepBuilds: 1000 },
    );
  });
  afterAll(async () => {
    await demo?.close();
    await deleteGatewayExchanges(exchange).catch(() => {});
  });

  it('runs against the demo: the views end equal to its REST API, with tokens from its endpoint', async () => {
    const example = completeExample('client/README.md');
    const occurrences = example.split("'http://localhost:8080'").length - 1;
    expect(occurrences, "the example names the demo's URL, 'http://localhost:8080', once").toBe(1);
    const dir = strictProject(app, { 'example.ts': example.replace("'http://localhost:8080'", JSON.stringify(demo.url)) }, { lib: ['ES2022', 'DOM'], module: 'NodeNext', moduleResolution: 'NodeNext', types: [], outDir: 'out' });
    await run(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', dir], app);
    // What the example leaves to the page: a document, and the functions it declares. Each call is reported as a line.
    writeFileSync(
      join(dir, 'page.mjs'),
      `
      const report = (event, data) => process.stdout.write('@@' + JSON.stringify({ event, data }) + '\\n');
      globalThis.document = { body: { dataset: {} }, querySelector: () => null };
      globalThis.renderBuilds = (items) => report('builds', items.map(({ id, version, state }) => ({ id, version, state })));
      globalThis.renderBuild = (value) => report('build', value === undefined ? 'undefined' : value);
      globalThis.paintLog = (change) => report('log', change);
      globalThis.showReloadMark = (reason) => report('reload', reason);
      `,
    );

    const child = spawn(process.execPath, ['--import', './page.mjs', 'out/example.js'], { cwd: dir, env: shellEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const reports = () =>
      stdout
        .split('\n')
        .filter((line) => line.startsWith('@@'))
        .map((line) => JSON.parse(line.slice(2)) as { event: string; data: unknown });
    const last = <T>(event: string) => reports().filter((r) => r.event === event).at(-1)?.data as T | undefined;
    /** The log as painted: line number → text, from every change. */
    const painted = () => {
      const lines = new Map<number, string>();
      for (const r of reports()) {
        if (r.event !== 'log') continue;
        const change = r.data as { first: number; lines: string[] };
        change.lines.forEach((line, i) => lines.set(change.first + i, line));
      }
      return lines;
    };
    const getJson = async <T>(path: string) => (await (await fetch(`${demo.url}${path}`)).json()) as T;

    try {
      let settled = false;
      let mismatch = 'build 42 has not finished';
      for (const deadline = Date.now() + 60_000; !settled && Date.now() < deadline && child.exitCode === null; ) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        // A token the gateway refuses will not get better: say so now rather than at the deadline.
        if (/unauthorized|token_unavailable/.test(stderr)) {
          mismatch = 'the gateway refused the tokens the example got';
          break;
        }
        const response = await fetch(`${demo.url}/api/builds/42`);
        if (response.status !== 200) continue;
        const rest = (await response.json()) as Build;
        if (rest.state !== 'success' && rest.state !== 'failure') continue;
        const inList = last<Pick<Build, 'id' | 'version' | 'state'>[]>('builds')?.find((b) => b.id === 42);
        const resource = last<Build | null | 'undefined'>('build');
        const log = (await getJson<LogChunk>('/api/logs/42/lines?from=0&limit=5000')).lines;
        const lines = painted();
        if (inList?.version !== rest.version || inList.state !== rest.state) mismatch = `live collection: ${JSON.stringify(inList)}, REST: version ${rest.version} ${rest.state}`;
        else if (typeof resource !== 'object' || resource?.version !== rest.version || resource.state !== rest.state)
          mismatch = `live resource: ${JSON.stringify(resource)?.slice(0, 200)}, REST: version ${rest.version} ${rest.state}`;
        else if (lines.size !== log.length || log.some((line, n) => lines.get(n) !== line)) mismatch = `log tail: ${lines.size} lines painted, REST has ${log.length}`;
        else settled = true;
      }
      const context = `\n--- the example's output (last 3000 characters):\n${stdout.slice(-3000)}\n--- its stderr:\n${stderr.slice(-3000)}`;
      expect(settled, `${mismatch}${context}`).toBe(true);

      // Its raw subscription printed finished builds, typed as the demo's: `builds.<id>.finished success|failure`.
      expect(stdout, context).toMatch(/^builds\.\d+\.finished (success|failure)$/m);
      // The demo's every build was announced to 'builds.#' (`<project> <state>`), deletions apart.
      expect(stdout, context).toMatch(/^[a-z-]+ (running|success|failure|pending)$/m);
      // Tokens came from the demo's endpoint and were accepted: no client error about them.
      expect(stderr, context).not.toMatch(/unauthorized|token_unavailable|malformed/);
    } finally {
      child.kill('SIGKILL');
    }
  }, 120_000);
});
