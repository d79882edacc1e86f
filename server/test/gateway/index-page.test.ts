/**
 * Someone who opens a gateway's URL in a browser learns what it is and what it
 * serves, instead of express's "Cannot GET /"; the demo keeps its own page there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/run-demo.js';
import { deleteGatewayExchanges, requireBroker, TEST_AMQP_URL, uniqueName } from '../support/broker.js';
import { startTestGateway, stopTestGateways } from '../support/gateway.js';

beforeAll(requireBroker);
afterAll(stopTestGateways);

describe('GET /', () => {
  it('on a gateway: a short page naming its endpoints', async () => {
    const gateway = await startTestGateway();
    const res = await fetch(`${gateway.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await res.text();
    for (const endpoint of ['/socket.io/', '/healthz', '/readyz', 'TOPICGATE_METRICS_PORT', '/topicgate.min.js', 'topicgate demo']) expect(page).toContain(endpoint);
  });

  it('on the demo: the demo\'s own page', async () => {
    const exchange = uniqueName('topicgate-test');
    const demo = await runDemo({ port: '0', host: '127.0.0.1', 'amqp-url': TEST_AMQP_URL, exchange, 'log-level': 'silent' });
    try {
      const page = await (await fetch(`${demo.url}/`)).text();
      expect(page).not.toContain('It has no web pages of its own');
      expect(page).toMatch(/<html/i);
    } finally {
      await demo.close();
      await deleteGatewayExchanges(exchange);
    }
  });
});
