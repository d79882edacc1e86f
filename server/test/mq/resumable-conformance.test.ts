/**
 * The resumable-queue contract (docs/protocol.md §15.5), run unchanged on
 * the embedded connector and on RabbitMQ: deliveries stay until settled, a
 * detach gives the unsettled ones back first and marked redelivered, a
 * resume judges the queue (missing, overflow), and a consumer whose queue
 * can no longer be trusted renews it under a new name.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AmqpConnector } from '../../src/mq/amqp.js';
import type { HeldDelivery, MqConnector, MqMessage, RenewReason, ResumableOptions } from '../../src/mq/connector.js';
import { EmbeddedConnector } from '../../src/mq/embedded.js';
import { closeConnections, deleteExchange, deleteQueues, eventually, listQueues, quietLog, requireBroker, TEST_AMQP_URL, uniqueName } from '../support/broker.js';
import { Inbox } from '../support/inbox.js';

interface Received {
  message: MqMessage;
  held: HeldDelivery;
}

const exchanges: string[] = [];
const queues: string[] = [];

/** A small window, so that a client that never settles stalls after a few messages. */
const PREFETCH = 40;

const backends = [
  { name: 'embedded', amqp: false, connect: async (): Promise<MqConnector> => new EmbeddedConnector({ queuePrefix: `${uniqueName('topicgate.test')}.`, resumablePrefetch: PREFETCH }) },
  {
    name: 'amqp (RabbitMQ)',
    amqp: true,
    connect: (): Promise<MqConnector> => {
      const exchange = uniqueName('topicgate-test');
      exchanges.push(exchange);
      return AmqpConnector.connect({ urls: [TEST_AMQP_URL], exchange, queuePrefix: `${uniqueName('topicgate.test')}.`, connectionName: uniqueName('topicgate-resumable'), resumablePrefetch: PREFETCH, log: quietLog });
    },
  },
];

function queueName(): string {
  const name = uniqueName('topicgate.r.test');
  queues.push(name);
  return name;
}

function options(overrides: Partial<ResumableOptions> = {}): ResumableOptions & { renewals: Inbox<RenewReason> } {
  const renewals = new Inbox<RenewReason>();
  return { queue: queueName(), nextQueue: queueName, expiresMs: 60_000, maxBacklog: 1000, onRenew: renewals.push, renewals, ...overrides };
}

const numbers = (inbox: Inbox<Received>) => inbox.items.map((r) => (r.message.body as { n: number }).n);

describe.each(backends)('resumable queues: $name', (backend) => {
  let mq: MqConnector;

  beforeAll(async () => {
    if (backend.amqp) await requireBroker();
  });
  afterEach(async () => {
    await mq?.close();
  });
  afterAll(async () => {
    await deleteQueues(queues.splice(0));
    for (const exchange of exchanges.splice(0)) await deleteExchange(exchange);
  });

  it('gives unsettled deliveries back, first and marked redelivered, then what waited', async () => {
    mq = await backend.connect();
    const first = new Inbox<Received>();
    const opts = options();
    const consumer = await mq.startResumable('jobs.#', (message, held) => first.push({ message, held }), opts);
    for (let n = 1; n <= 3; n++) await mq.produce('jobs.a', { n });
    await first.waitForCount(3);
    expect(first.items.map((r) => r.held.redelivered)).toEqual([false, false, false]);
    first.items[0]!.held.settle();
    await consumer.fence();
    await consumer.detach();
    for (let n = 4; n <= 5; n++) await mq.produce('jobs.a', { n });

    const second = new Inbox<Received>();
    const outcome = await mq.resumeConsuming('jobs.#', (message, held) => second.push({ message, held }), opts);
    expect(outcome).toMatchObject({ kind: 'resumed', backlog: 4 });
    await second.waitForCount(4);
    expect(numbers(second)).toEqual([2, 3, 4, 5]);
    expect(second.items.map((r) => r.held.redelivered)).toEqual([true, true, false, false]);
  });

  it('settles written cumulatively never take the marker with them: a resume after many settles finds the queue intact', async () => {
    mq = await backend.connect();
    const first = new Inbox<Received>();
    const opts = options();
    const consumer = await mq.startResumable('jobs.#', (message, held) => first.push({ message, held }), opts);
    for (let n = 1; n <= 30; n++) await mq.produce('jobs.a', { n });
    await first.waitForCount(30);
    // Two flushes of many settles each (cumulative), then a few (one by one).
    for (const [from, to] of [[0, 10], [10, 20], [20, 22]] as const) {
      for (const r of first.items.slice(from, to)) r.held.settle();
      await consumer.fence();
    }
    await consumer.detach();
    const second = new Inbox<Received>();
    const outcome = await mq.resumeConsuming('jobs.#', (message, held) => second.push({ message, held }), opts);
    expect(outcome).toMatchObject({ kind: 'resumed', backlog: 8 });
    await second.waitForCount(8);
    expect(numbers(second)).toEqual([23, 24, 25, 26, 27, 28, 29, 30]);
  });

  it('a stopped consumer deletes its queue: a resume finds it missing', async () => {
    mq = await backend.connect();
    const opts = options();
    const consumer = await mq.startResumable('jobs.#', () => undefined, opts);
    await consumer.stopConsuming();
    expect(await mq.resumeConsuming('jobs.#', () => undefined, opts)).toEqual({ kind: 'missing' });
  });

  it('an abandoned queue is deleted when detached, and left to its holder while consumed', async () => {
    mq = await backend.connect();
    const holder = new Inbox<Received>();
    const held = options();
    await mq.startResumable('jobs.#', (message, h) => holder.push({ message, held: h }), held);
    await mq.abandonResumable(held.queue);
    await mq.produce('jobs.a', { n: 1 });
    await holder.waitForCount(1); // still there, still consumed

    const detached = options();
    const consumer = await mq.startResumable('jobs.#', () => undefined, detached);
    await consumer.detach();
    await mq.abandonResumable(detached.queue);
    expect(await mq.resumeConsuming('jobs.#', () => undefined, detached)).toEqual({ kind: 'missing' });
    await mq.abandonResumable(detached.queue); // already gone: nothing to do, no error
  });

  it('a queue that filled while detached is judged overflow, and deleted', async () => {
    mq = await backend.connect();
    const opts = options({ maxBacklog: 3 });
    const consumer = await mq.startResumable('jobs.#', () => undefined, opts);
    await consumer.detach();
    for (let n = 1; n <= 6; n++) await mq.produce('jobs.a', { n }).catch(() => undefined); // a full queue refuses (nacks) some
    expect(await mq.resumeConsuming('jobs.#', () => undefined, opts)).toEqual({ kind: 'overflow' });
    expect(await mq.resumeConsuming('jobs.#', () => undefined, opts)).toEqual({ kind: 'missing' });
  });

  it('a client that never settles: once the backlog is full the queue is renewed under a new name, and delivery goes on', async () => {
    mq = await backend.connect();
    const inbox = new Inbox<Received>();
    const opts = options({ maxBacklog: 5 });
    const consumer = await mq.startResumable('jobs.#', (message, held) => inbox.push({ message, held }), opts);
    const old = consumer.queue;
    for (let n = 1; n <= PREFETCH + 20; n++) await mq.produce('jobs.a', { n }).catch(() => undefined);
    expect(await opts.renewals.waitForCount(1, 15_000)).toEqual(['overflow']);
    expect(consumer.queue).not.toBe(old);
    await mq.produce('jobs.a', { n: 1000 });
    await inbox.waitFor((r) => (r.message.body as { n: number }).n === 1000);
    if (backend.amqp) await eventually(async () => !(await listQueues(old)).some((q) => q.name === old), 'the old queue deleted');
  });

  it.runIf(backend.amqp)('after a broker reconnect the queue is renewed under a new name (what it held can no longer be trusted)', async () => {
    mq = await backend.connect();
    const inbox = new Inbox<Received>();
    const opts = options();
    const consumer = await mq.startResumable('jobs.#', (message, held) => inbox.push({ message, held }), opts);
    const old = consumer.queue;
    await mq.produce('jobs.a', { n: 1 });
    await inbox.waitForCount(1);
    await closeConnections((mq as AmqpConnector).options.connectionName, 'test: force a reconnect');
    expect(await opts.renewals.waitForCount(1, 20_000)).toEqual(['reconnected']);
    expect(consumer.queue).not.toBe(old);
    await mq.produce('jobs.a', { n: 2 });
    await inbox.waitFor((r) => (r.message.body as { n: number }).n === 2);
    expect((await listQueues(old)).some((q) => q.name === old)).toBe(false);
  });
});
