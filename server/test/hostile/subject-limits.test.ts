/**
 * One user must not be able to pile up broker queues (issue 11 finding 5):
 * subscriptions are limited per token subject over all of its connections,
 * connections per subject too, both on by default. A subscription's unit
 * comes back once its queue is gone.
 */
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { eventually, listQueues, requireBroker } from '../support/broker.js';
import { connectClient, startTestGateway, stopTestGateways, type TestClient } from '../support/gateway.js';
import { SECRET, token } from './harness.js';

const jwtConfig = { secret: SECRET, algorithms: ['HS256'] };
const clients: TestClient[] = [];

beforeAll(requireBroker);
afterAll(async () => {
  for (const c of clients.splice(0)) c.close();
  await stopTestGateways();
});

async function client(url: string, tok: string): Promise<TestClient> {
  const c = await connectClient(url, tok);
  clients.push(c);
  return c;
}

describe('per-subject limits', () => {
  it('are on by default: 20 connections and 500 subscriptions per subject', () => {
    const config = loadConfig({ 'jwt-secret': SECRET });
    expect(config.maxConnectionsPerSubject).toBe(20);
    expect(config.maxSubscriptionsPerSubject).toBe(500);
  });

  it('bound the subscriptions of one subject over all of its connections; units come back after unsubscribe and disconnect', async () => {
    const gateway = await startTestGateway({ jwt: jwtConfig, maxSubscriptionsPerSubject: 5 });
    const a = await client(gateway.url, token({ sub: 'mallory', topics: ['q.#'] }));
    const b = await client(gateway.url, token({ sub: 'mallory', topics: ['q.#'] }));
    const bystander = await client(gateway.url, token({ sub: 'alice', topics: ['q.#'] }));
    const ids = [await a.mustSubscribe('q.1'), await a.mustSubscribe('q.2'), await a.mustSubscribe('q.3'), await b.mustSubscribe('q.4'), await b.mustSubscribe('q.4')];
    // Concurrent subscribes past the limit: none of them gets a queue.
    const over = await Promise.all([a.subscribe('q.5'), b.subscribe('q.6'), b.subscribe('q.7')]);
    for (const ack of over) expect(ack).toEqual({ ok: false, error: { code: 'limit_exceeded', message: expect.stringMatching(/at most 5 subscriptions per token subject/) } });
    expect(await bystander.mustSubscribe('q.1')).toBeDefined();
    expect(await listQueues(gateway.queuePrefix)).toHaveLength(6);

    expect(await a.unsubscribe(ids[0])).toEqual({ ok: true });
    expect((await b.subscribe('q.8')).ok).toBe(true);
    a.close();
    await eventually(async () => (await listQueues(gateway.queuePrefix)).length === 4, "the closed connection's queues are gone");
    for (const pattern of ['q.9', 'q.10']) expect((await b.subscribe(pattern)).ok).toBe(true);
    expect(await b.subscribe('q.11')).toMatchObject({ ok: false, error: { code: 'limit_exceeded' } });
  });

  it('do not count tokens without a sub against each other', async () => {
    const gateway = await startTestGateway({ jwt: jwtConfig, maxSubscriptionsPerSubject: 1, maxConnectionsPerSubject: 1 });
    const anonymous = await Promise.all([0, 1, 2].map(() => client(gateway.url, jwt.sign({ topics: ['q.#'] }, SECRET, { algorithm: 'HS256', expiresIn: 600 }))));
    for (const c of anonymous) {
      expect((await c.subscribe('q.1')).ok).toBe(true);
      expect((await c.subscribe('q.2')).ok).toBe(true);
    }
  });
});
