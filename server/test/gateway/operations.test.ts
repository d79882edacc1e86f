/**
 * What operators rely on: graceful shutdown, several gateways on one broker,
 * metrics that reflect reality.
 */
import { ResyncReason } from '@topicgate/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelCount, deleteGatewayExchanges, eventually, listQueues, publishJson, requireBroker } from '../support/broker.js';
import { spawnGateway } from '../support/child-gateway.js';
import { connectClient, startTestGateway, stopTestGateways } from '../support/gateway.js';

beforeAll(requireBroker);
afterAll(stopTestGateways);

describe('graceful shutdown', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('on %s: unsubscribed "shutdown" to every subscription, queues deleted, exit 0', async (signal) => {
    const child = await spawnGateway();
    try {
      const c = await connectClient(child.url);
      const ids = [await c.mustSubscribe('builds.#'), await c.mustSubscribe('logs.#')];
      expect(await listQueues(child.queuePrefix)).toHaveLength(2);
      child.process.kill(signal);
      const notices = await c.unsubscribed.waitForCount(2);
      expect(notices.map((n) => n.id).sort()).toEqual([...ids].sort());
      expect(notices.every((n) => n.reason === 'shutdown')).toBe(true);
      expect(await child.exited).toBe(0);
      expect(await listQueues(child.queuePrefix)).toEqual([]);
      c.close();
    } finally {
      child.process.kill('SIGKILL');
      await deleteGatewayExchanges(child.exchange);
    }
  });
});

describe('draining before a stop', () => {
  it('drain(): /readyz answers 503 and new connections are refused (WebSocket and long-polling), while connected clients are still served', async () => {
    const gateway = await startTestGateway();
    const c = await connectClient(gateway.url);
    const id = await c.mustSubscribe('builds.#');
    expect((await fetch(`${gateway.url}/readyz`)).status).toBe(200);

    gateway.drain();
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'draining', reason: expect.stringContaining('shutting down') });
    await expect(connectClient(gateway.url)).rejects.toThrow();
    // A long-polling handshake, as a browser's first request: refused, while the server still answers HTTP.
    const handshake = await fetch(`${gateway.url}/socket.io/?EIO=4&transport=polling`);
    expect(handshake.status).toBe(403);

    await publishJson(gateway.exchange, 'builds.1.finished', { n: 1 });
    await c.messages.waitFor((m) => m.id === id);
    c.close();
  });
});

describe('several gateways on one broker', () => {
  it('clients on either get the same messages; SIGKILL of one leaves none of its queues while the other keeps serving', async () => {
    const survivor = await startTestGateway();
    const doomed = await spawnGateway({ TOPICGATE_EXCHANGE: survivor.exchange });
    const a = await connectClient(survivor.url);
    const b = await connectClient(doomed.url);
    const aId = await a.mustSubscribe('builds.*.finished');
    const bId = await b.mustSubscribe('builds.*.finished');
    await survivor.mq.produce('builds.1.finished', { id: 1 });
    expect((await a.messages.waitFor((m) => m.id === aId)).body).toEqual({ id: 1 });
    expect((await b.messages.waitFor((m) => m.id === bId)).body).toEqual({ id: 1 });

    doomed.process.kill('SIGKILL');
    await doomed.exited;
    await eventually(async () => (await listQueues(doomed.queuePrefix)).length === 0, 'the killed gateway\'s queues are gone');
    await survivor.mq.produce('builds.2.finished', { id: 2 });
    expect((await a.messages.waitFor((m) => m.body.id === 2)).seq).toBe(2);
    expect(await listQueues(survivor.queuePrefix)).toHaveLength(1);
    a.close();
    b.close();
  });
});

describe('/metrics', () => {
  it('is served on a listener of its own, not on the public port, and never with CORS headers', async () => {
    const gateway = await startTestGateway({ corsOrigins: true });
    expect((await fetch(`${gateway.url}/metrics`)).status).toBe(404);
    const res = await fetch(gateway.metricsUrl!, { headers: { origin: 'https://evil.example' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^topicgate_subscriptions /m);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(new URL(gateway.metricsUrl!).port).not.toBe(new URL(gateway.url).port);
  });

  it('reports connections, subscriptions, deliveries, refusals and broker channels in Prometheus text', async () => {
    const gateway = await startTestGateway();
    const c = await connectClient(gateway.url);
    const id = await c.mustSubscribe('m.#');
    await c.mustSubscribe('n.#');
    await c.subscribe('bad..pattern');
    for (let n = 0; n < 3; n++) await gateway.mq.produce('m.x', { n });
    await c.messages.waitForCount(3);
    await c.unsubscribe(id);
    const text = await (await fetch(gateway.metricsUrl!)).text();
    const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('topicgate_connections')).toBe(1);
    expect(value('topicgate_subscriptions')).toBe(1);
    expect(value('topicgate_deliveries_total')).toBe(3);
    expect(value('topicgate_subscribe_errors_total{code="invalid_pattern"}')).toBe(1);
    expect(value('topicgate_broker_channels')).toBe(await channelCount(gateway.connectionName));
    expect(value('topicgate_subscribe_seconds_count')).toBe(2);
    expect(text).toContain('topicgate_process_resident_memory_bytes');
    c.close();
  });

  it('a fresh gateway already reports every known label value at 0, so rate() and alerts work from the start', async () => {
    const gateway = await startTestGateway();
    const text = await (await fetch(gateway.metricsUrl!)).text();
    const samples = (name: string) =>
      Object.fromEntries([...text.matchAll(new RegExp(`^${name}\\{(\\w+)="([^"]*)"\\} (\\S+)$`, 'gm'))].map((m) => [m[2]!, Number(m[3])]));
    const zeros = (labels: readonly string[]) => Object.fromEntries(labels.map((l) => [l, 0]));
    // Every resync reason of the protocol, present and future (shared/src/protocol.ts).
    expect(samples('topicgate_resyncs_total')).toEqual(zeros(Object.values(ResyncReason)));
    // Every code a subscribe can be refused with (docs/protocol.md §5).
    expect(samples('topicgate_subscribe_errors_total')).toEqual(zeros(['invalid_pattern', 'forbidden', 'limit_exceeded', 'unavailable', 'bad_request', 'refused']));
    // Every reason a message body is dropped for (docs/protocol.md §11).
    expect(samples('topicgate_dropped_messages_total')).toEqual(zeros(['not_json', 'not_an_object', 'invalid_text', 'unsupported_encoding']));
    for (const name of ['topicgate_deliveries_total', 'topicgate_dropped_deliveries_total', 'topicgate_broker_reconnects_total', 'topicgate_subscribe_seconds_count']) {
      expect(text, name).toMatch(new RegExp(`^${name} 0$`, 'm'));
    }
  });
});
