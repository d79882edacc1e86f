/**
 * The demo application keeps its promise to the SDK: every change is in its
 * REST API and announced with a per-resource version that grows by one, and
 * every log line is announced exactly at its number.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/server.js';
import { runDemo } from '../../src/demo/run-demo.js';
import type { Build, BuildDeleted, LogChunk } from '../../src/demo/model.js';
import { createClient } from '@topicgate/client';
import { deleteGatewayExchanges, eventually, requireBroker, TEST_AMQP_URL, uniqueName } from '../support/broker.js';
import { connectClient, type TestClient } from '../support/gateway.js';

let demo: RunningGateway | null = null;
let exchange = '';
const clients: TestClient[] = [];

async function startDemo(chaos: boolean, keepBuilds?: number): Promise<RunningGateway> {
  exchange = uniqueName('topicgate-test');
  demo = await runDemo(
    { port: '0', host: '127.0.0.1', 'amqp-url': TEST_AMQP_URL, exchange, 'log-level': 'silent', ...(chaos && { 'demo-chaos': '1' }) },
    { simulator: { maxRunning: 3, newBuildEveryMs: 300, stepMs: 300, linesPerSecond: 50 }, ...(keepBuilds !== undefined && { keepBuilds }) },
  );
  return demo;
}

async function pageClient(gateway: RunningGateway): Promise<TestClient> {
  const { token } = (await (await fetch(`${gateway.url}/api/demo-token`)).json()) as { token: string };
  const c = await connectClient(gateway.url, token);
  clients.push(c);
  return c;
}

async function getJson<T>(gateway: RunningGateway, path: string): Promise<T> {
  const res = await fetch(`${gateway.url}${path}`);
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

beforeAll(requireBroker);
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await demo?.close();
  demo = null;
  await deleteGatewayExchanges(exchange);
});

describe('topicgate demo', () => {
  it('announces every build change with versions growing by one, and its REST state matches the last announcement', async () => {
    const gateway = await startDemo(false);
    const c = await pageClient(gateway);
    await c.mustSubscribe('builds.#');
    // Wait for a build seen whole: created after the subscription, and finished.
    const seenWhole = (m: { body: unknown }) => {
      const build = m.body as Build;
      return build.finishedAt !== null && c.messages.items.some((other) => (other.body as unknown as Build).id === build.id && (other.body as unknown as Build).version === 1);
    };
    await c.messages.waitFor(seenWhole, 30_000);
    const seen = new Map<number, Build[]>();
    for (const m of c.messages.items) {
      const build = m.body as unknown as Build;
      seen.set(build.id, [...(seen.get(build.id) ?? []), build]);
      expect(m.key).toMatch(new RegExp(`^builds\\.${build.id}\\.(new|started|step|finished|deleted)$`));
    }
    const finished = [...seen.values()].filter((versions) => versions.at(-1)!.finishedAt !== null && versions[0]!.version === 1);
    expect(finished.length).toBeGreaterThan(0);
    for (const versions of finished) {
      expect(versions.map((b) => b.version)).toEqual(versions.map((_, i) => i + 1));
      const rest = await getJson<Build>(gateway, `/api/builds/${versions[0]!.id}`);
      expect({ ...rest, lines: 0 }).toEqual({ ...versions.at(-1)!, lines: 0 });
    }
  });

  it('announces log lines that, put together, equal the log served over REST', async () => {
    const gateway = await startDemo(false);
    const c = await pageClient(gateway);
    await c.mustSubscribe('logs.#');
    await c.mustSubscribe('builds.*.finished');
    const done = await c.messages.waitFor((m) => m.key.endsWith('.finished'), 30_000);
    const id = (done.body as unknown as Build).id;
    const chunks = c.messages.items.filter((m) => m.key === `logs.${id}.append`).map((m) => m.body as unknown as LogChunk);
    const first = chunks[0]!.first;
    const announced = chunks.flatMap((chunk) => chunk.lines);
    chunks.reduce((next, chunk) => (expect(chunk.first).toBe(next), next + chunk.lines.length), first);
    const rest = await getJson<LogChunk>(gateway, `/api/logs/${id}/lines?from=${first}&to=${first + announced.length}`);
    expect(rest).toEqual({ build: id, first, lines: announced });
    expect((await getJson<LogChunk>(gateway, `/api/logs/${id}/lines?limit=5`)).lines).toHaveLength(5);
  });

  it('announces the builds it deletes, so that a live collection stays equal to the REST API', async () => {
    const gateway = await startDemo(true, 3);
    const { token } = (await (await fetch(`${gateway.url}/api/demo-token`)).json()) as { token: string };
    const client = createClient({ url: gateway.url, token, transports: ['websocket'] });
    const deletions: number[] = [];
    const builds = client.liveCollection<'builds.#', Build>({
      pattern: 'builds.#',
      load: async () => getJson<Build[]>(gateway, '/api/builds'),
      // The deletion convention: `builds.<id>.deleted` with the next version.
      apply: (_prev, m) => (m.key.endsWith('.deleted') ? null : (m.body as unknown as Build)),
    });
    builds.on('change', () => undefined);
    client.subscribe('builds.*.deleted', (m) => deletions.push((m.body as unknown as BuildDeleted).id));
    try {
      const withoutLines = (list: readonly Build[]) => list.map((b) => ({ ...b, lines: 0 })).sort((x, y) => x.id - y.id);
      await eventually(async () => {
        if (deletions.length < 3 || builds.status !== 'live') return false;
        const rest = await getJson<Build[]>(gateway, '/api/builds');
        return JSON.stringify(withoutLines(builds.items)) === JSON.stringify(withoutLines(rest));
      }, 'the collection equals the REST API after several deletions', 30_000);
      const gone = await fetch(`${gateway.url}/api/builds/${deletions[0]}`);
      expect(gone.status).toBe(404);
      expect(builds.get(deletions[0]!)).toBeUndefined();
    } finally {
      builds.close();
      client.close();
    }
  });

  it('with chaos on, still delivers every change (some late, some twice)', async () => {
    const gateway = await startDemo(true);
    expect(await getJson(gateway, '/api/chaos')).toEqual({ enabled: true });
    const c = await pageClient(gateway);
    await c.mustSubscribe('builds.#');
    const done = await c.messages.waitFor((m) => m.key.endsWith('.finished') && (m.body as unknown as Build).id >= 3, 30_000);
    const id = (done.body as unknown as Build).id;
    const final = (done.body as unknown as Build).version;
    await eventually(async () => {
      const versions = new Set(c.messages.items.filter((m) => (m.body as unknown as Build).id === id).map((m) => (m.body as unknown as Build).version));
      return versions.size === final;
    }, 'every version of the build arrives despite the chaos');
  });

  it('refuses page tokens nothing but the demo minted, and serves its pages and the SDK bundle', async () => {
    const gateway = await startDemo(false);
    await expect(connectClient(gateway.url, 'forged')).rejects.toThrow();
    for (const path of ['/', '/log.html', '/topicgate.min.js']) {
      const res = await fetch(`${gateway.url}${path}`);
      expect(res.status, path).toBe(200);
    }
  });
});
