/**
 * `topicgate demo` hands a token for builds.# and logs.# to anyone who asks
 * and publishes made-up builds (issue 11 finding 4). It must not be possible
 * to run it against production data by accident: its own exchange, this
 * machine only, a same-origin API, a refusal where a JWT key is configured,
 * and no stack trace in an error answer.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { DEMO_EXCHANGE, runDemo } from '../../src/demo/run-demo.js';
import type { RunningGateway } from '../../src/server.js';
import { deleteGatewayExchanges, requireBroker, TEST_AMQP_URL, uniqueName } from '../support/broker.js';

let demo: RunningGateway | null = null;
let exchange: string | null = null;

beforeAll(requireBroker);
afterEach(async () => {
  await demo?.close();
  demo = null;
  if (exchange) await deleteGatewayExchanges(exchange);
  exchange = null;
});

describe('topicgate demo, fenced off from production', () => {
  it('uses its own exchange and listens on 127.0.0.1 unless told otherwise', async () => {
    demo = await runDemo({ port: '0', 'amqp-url': TEST_AMQP_URL, 'log-level': 'silent' });
    exchange = DEMO_EXCHANGE;
    expect(new URL(demo.url).hostname).toBe('127.0.0.1');
    expect(DEMO_EXCHANGE).not.toBe('topicgate');
    const res = await fetch(`${demo.url}/readyz`);
    expect(res.status).toBe(200);
  });

  it('refuses to start where a JWT key is configured', async () => {
    await expect(runDemo({ port: '0', 'jwt-secret': 'x'.repeat(64), 'log-level': 'silent' })).rejects.toThrow(ConfigError);
    await expect(runDemo({ port: '0', 'jwt-secret': 'x'.repeat(64), 'log-level': 'silent' })).rejects.toThrow(/TOPICGATE_JWT_SECRET.*looks like a production environment/);
  });

  it('does not hand its tokens to another origin, and answers errors without a stack trace', async () => {
    exchange = uniqueName('topicgate-test');
    demo = await runDemo({ port: '0', host: '127.0.0.1', 'amqp-url': TEST_AMQP_URL, exchange, 'log-level': 'silent' });
    const token = await fetch(`${demo.url}/api/demo-token`, { headers: { origin: 'https://evil.example' } });
    expect(token.status).toBe(200);
    expect(token.headers.get('access-control-allow-origin')).toBeNull();
    // The gateway's own endpoints still follow TOPICGATE_CORS_ORIGINS (any, by default).
    expect((await fetch(`${demo.url}/healthz`, { headers: { origin: 'https://evil.example' } })).headers.get('access-control-allow-origin')).toBe('https://evil.example');

    const bad = await fetch(`${demo.url}/api/chaos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
    expect(bad.status).toBe(400);
    const text = await bad.text();
    expect(text).not.toMatch(/\bat .*\(|node_modules|\.js:\d+/);
    expect(JSON.parse(text)).toEqual({ error: expect.any(String) });
  });
});
