/**
 * The publisher's install story, as publisher/README.md tells it: `npm pack
 * -w publisher` in the repository, then `npm install <tarball>` in a back end
 * outside it. The tarball must install there (it bundles `@topicgate/shared`,
 * which exists only in this repository), its types must make the README's
 * example compile in a strict project and a wrong body fail to, and the
 * example, compiled from the installed package, must publish to RabbitMQ
 * what it says, each message confirmed and labelled.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteExchange, requireBroker, TEST_AMQP_URL, uniqueName } from '../server/test/support/broker.js';
import { BrokerConsumer } from '../publisher/test/broker-consumer.js';
import { completeExample, installPacked, run, strictProject, typeErrorsIn, type OutsideApp } from './support/packages.js';
import { REPO_ROOT } from './support/worktree.js';

let outside: OutsideApp<'publisher'>;
let app: string;
let tarball: string;

/** A strict Node project in the application holding `files`; `tsc` compiles it to `out/`. */
function project(files: Record<string, string>): string {
  return strictProject(app, files, { lib: ['ES2022'], module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'], outDir: 'out' });
}

/** tsc's error lines for a project (none: it compiled). */
async function typeErrors(dir: string): Promise<string[]> {
  return typeErrorsIn(app, dir);
}

beforeAll(async () => {
  // What the README says to run: `npm pack -w publisher` in a checkout, `npm install <tarball>` in a back end.
  outside = await installPacked(['publisher'], { appName: 'publisher-consumer', dependencies: ['typescript', '@types/node'] });
  app = outside.app;
  tarball = outside.tarballs.publisher;
}, 300_000);

afterAll(() => outside?.remove());

describe('the publisher package (npm pack -w publisher)', () => {
  it('carries the ES module build, its declarations, its README, and @topicgate/shared inside', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball], outside.scratch);
    const files = stdout.split('\n').filter(Boolean);
    for (const file of [
      'package/package.json',
      'package/README.md',
      'package/dist/index.js',
      'package/dist/index.d.ts',
      'package/node_modules/@topicgate/shared/package.json',
      'package/node_modules/@topicgate/shared/dist/index.js',
      'package/node_modules/@topicgate/shared/dist/typed-topics.d.ts',
    ]) {
      expect(files, `the tarball has ${file}`).toContain(file);
    }
    expect(files.filter((file) => file.endsWith('.tsbuildinfo'))).toEqual([]);
    // postpack took away the link prepack made for npm to bundle shared.
    expect(existsSync(join(REPO_ROOT, 'publisher/node_modules/@topicgate/shared'))).toBe(false);
  });

  it("types the README's example in a strict project, and refuses a body of the wrong type", async () => {
    const example = completeExample('publisher/README.md');
    expect(await typeErrors(project({ 'example.ts': example }))).toEqual([]);
    const wrong = [
      "import { createPublisher } from '@topicgate/publisher';",
      "const publisher = createPublisher<{ 'builds.{id}.finished': { id: number; result: 'success' | 'failure' } }>({ urls: 'amqp://localhost' });",
      "await publisher.publish('builds.1.finished', { id: 1, result: 1 });",
      "await publisher.publish('builds.1.finished', { id: 1, outcome: 'success' });",
      "await publisher.publish('builds.1.done', { id: 1, result: 'success' });",
      '',
    ].join('\n');
    const errors = await typeErrors(project({ 'wrong.ts': wrong }));
    for (const line of [3, 4, 5]) expect(errors.some((error) => error.includes(`wrong.ts(${line},`)), `line ${line} does not compile:\n${errors.join('\n')}`).toBe(true);
  });
});

describe("publisher/README.md's example, from the installed package", () => {
  const exchange = uniqueName('topicgate-publisher-example');
  let consumer: BrokerConsumer;

  beforeAll(async () => {
    await requireBroker();
    consumer = await BrokerConsumer.start(exchange);
  });
  afterAll(async () => {
    await consumer?.close();
    await deleteExchange(exchange).catch(() => undefined);
  });

  it('publishes to RabbitMQ what it says, each message confirmed, with message_id, timestamp and content_type', async () => {
    const dir = project({ 'example.ts': completeExample('publisher/README.md') });
    await run(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', dir], app);
    // It exits by itself: close() ends the connection.
    const { stdout, stderr } = await run(process.execPath, ['out/example.js'], dir, { env: { TOPICGATE_AMQP_URL: TEST_AMQP_URL, TOPICGATE_EXCHANGE: exchange }, timeoutMs: 60_000 });

    const received = await consumer.inbox.waitForCount(6);
    const context = `\n--- its stdout:\n${stdout}\n--- its stderr:\n${stderr}`;
    expect(
      received.map((m) => [m.key, m.body]),
      context,
    ).toEqual([
      ['builds.42.started', { id: 42, version: 1, project: 'web-frontend', state: 'running' }],
      ['builds.42.finished', { id: 42, version: 2, project: 'web-frontend', state: 'success' }],
      ['logs.42.append', { build: 42, first: 0, lines: ['compiling…', 'linking…'] }],
      ['logs.42.append', { build: 42, first: 2, lines: ['done'] }],
      ['builds.42.deleted', { id: 42, version: 3, deleted: true }],
      ['builds.43.started', { id: 43, version: 1, project: 'web-frontend', state: 'running' }],
    ]);
    for (const m of received) {
      expect(m).toMatchObject({ contentType: 'application/json', deliveryMode: 2 });
      expect(typeof m.messageId).toBe('string');
      expect(typeof m.timestamp).toBe('number');
    }
    expect(new Set(received.map((m) => m.messageId)).size).toBe(6);
    expect(stderr, 'nothing went wrong on the way').toBe('');
  }, 120_000);
});
