/**
 * Exactness under cuts (issue 12's proof): thousands of messages stream to
 * several resumable subscriptions while the client's connection is cut at
 * arbitrary points — between the client and the gateway, with a TCP proxy —
 * and resumed alternately on an in-process gateway and on a second gateway
 * process sharing the broker. Every subscription must end with exactly the
 * published sequence: nothing lost, nothing twice, in order, no resync.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, listQueues, requireBroker, TEST_AMQP_URL } from '../support/broker.js';
import { spawnGateway, type ChildGateway } from '../support/child-gateway.js';
import { startTestGateway, stopTestGateways } from '../support/gateway.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { ResumingClient } from './resume-client.js';

const MESSAGES = 3000;
const CUTS = 12;

let child: ChildGateway | null = null;
const proxies: TcpProxy[] = [];

beforeAll(requireBroker);
afterAll(async () => {
  for (const proxy of proxies) await proxy.close();
  child?.process.kill('SIGTERM');
  await child?.exited;
  await stopTestGateways();
});

it(`${CUTS} cuts, resumed alternately on two gateways: every subscription gets exactly what was published`, { timeout: 180_000 }, async () => {
  const inProcess = await startTestGateway({ resumeWindowSeconds: 60 });
  child = await spawnGateway({ TOPICGATE_EXCHANGE: inProcess.exchange, TOPICGATE_RESUME_WINDOW: '60', TOPICGATE_LOG_LEVEL: 'warn' });
  const viaInProcess = await TcpProxy.start({ host: '127.0.0.1', port: inProcess.port });
  const viaChild = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(child.url).port) });
  proxies.push(viaInProcess, viaChild);
  const urls = [`http://127.0.0.1:${viaInProcess.port}`, `http://127.0.0.1:${viaChild.port}`];

  const client = await ResumingClient.connect(urls[0]!);
  await client.subscribe('a', 'cut.a.*');
  await client.subscribe('b', 'cut.b.*');
  await client.subscribe('all', 'cut.#');
  client.autoConfirm();

  // The publisher: confirmed, in order, alternating keys; never more than a few hundred ahead of the
  // client, so the stream outlasts the cuts however fast the machine is.
  const total = () => [...client.subs.values()].reduce((sum, held) => sum + held.received.length, 0);
  const connection = await amqp.connect(TEST_AMQP_URL);
  const channel = await connection.createConfirmChannel();
  const published = { a: [] as number[], b: [] as number[], all: [] as number[] };
  const publishing = (async () => {
    for (let n = 1; n <= MESSAGES; n++) {
      const sub = n % 3 === 0 ? 'b' : 'a';
      channel.publish(inProcess.exchange, `cut.${sub}.${n}`, Buffer.from(JSON.stringify({ n })), { contentType: 'application/json' });
      published[sub].push(n);
      published.all.push(n);
      if (n % 50 === 0) {
        await channel.waitForConfirms();
        // Each message makes two deliveries (its own subscription and cut.#).
        await eventually(() => total() >= 2 * n - 600, `the client within 300 messages of message ${n}`, 60_000);
      }
    }
    await channel.waitForConfirms();
  })();

  const outcomes: unknown[] = [];
  const spacing = Math.floor((2 * MESSAGES) / (CUTS + 1));
  for (let cut = 1; cut <= CUTS; cut++) {
    // Progress, not time, decides when to cut: somewhere in the stream, with deliveries in flight.
    await eventually(() => total() >= cut * spacing + ((cut * 37) % 100), `deliveries before cut ${cut}`, 60_000).catch((err: Error) => {
      const state = [...client.subs.entries()].map(([name, h]) => `${name}: seq ${h.seq} settled ${h.settled} pending ${h.pending} received ${h.received.length}`);
      throw new Error(`${err.message}; published ${published.all.length}; outcomes ${JSON.stringify(outcomes)}; resyncs ${JSON.stringify(client.resyncs)}; ${state.join('; ')}`);
    });
    (cut % 2 === 1 ? viaInProcess : viaChild).cut();
    (cut % 2 === 1 ? viaInProcess : viaChild).restore();
    const acks = await client.reconnect(urls[cut % 2]!);
    for (const ack of acks.values()) outcomes.push(ack.ok && ack.resumed ? true : ack);
  }
  await publishing;
  await connection.close();

  const received = (name: 'a' | 'b' | 'all') => client.subs.get(name)!.received.map((d) => (d.body as { n: number }).n);
  await eventually(() => (['a', 'b', 'all'] as const).every((name) => received(name).length >= published[name].length), 'every published message delivered', 60_000);
  expect(outcomes).toEqual(Array(CUTS * 3).fill(true));
  expect(client.resyncs).toEqual([]);
  for (const name of ['a', 'b', 'all'] as const) expect(received(name)).toEqual(published[name]);

  // Nothing left behind once the client closes: every queue it held is deleted.
  const claims = [...client.subs.values()].map((held) => held.grant.claim);
  client.close();
  await eventually(async () => {
    const queues = await listQueues('topicgate.r.');
    return claims.every((claim) => !queues.some((q) => q.name === claim));
  }, 'the resumable queues deleted after close');
});
