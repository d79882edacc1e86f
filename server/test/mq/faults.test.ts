/**
 * The AMQP connector when the broker says no, or says it at a bad moment:
 * refused binds, an unsubscribe racing a re-declare, close() during a
 * reconnect, an exchange of the wrong type, a publish to a deleted exchange.
 * Every case runs against the real RabbitMQ; where a race has to be won on
 * purpose, the test holds one step of the connector until the other has run.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import amqp, { type Channel } from 'amqplib';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ChannelSet } from '../../src/mq/amqp-channels.js';
import type { AmqpConsumer } from '../../src/mq/amqp-consumer.js';
import { AmqpConnector } from '../../src/mq/amqp.js';
import { BrokerOperationError, BrokerRefusedOperationError } from '../../src/mq/connector.js';
import {
  addBrokerUser,
  closeConnections,
  connectionCount,
  deleteBrokerUser,
  deleteExchange,
  eventually,
  listQueues,
  requireBroker,
  testAmqpUrlAs,
  uniqueName,
  withAdminChannel,
} from '../support/broker.js';
import { connectorFixture } from '../support/connectors.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { ERROR, recordingLog, WARN } from '../support/recording-log.js';

const { exchanges, connectors, options, connector } = connectorFixture('topicgate-faults', { reconnectDelayMs: { initial: 20, max: 200 } });
const users: string[] = [];
const proxies: TcpProxy[] = [];


beforeAll(requireBroker);
afterEach(async () => {
  vi.restoreAllMocks();
  for (const mq of connectors.splice(0)) await mq.close();
  for (const proxy of proxies.splice(0)) await proxy.close();
});
afterAll(async () => {
  for (const exchange of exchanges.splice(0)) await deleteExchange(exchange);
  for (const user of users.splice(0)) await deleteBrokerUser(user);
});

describe('a subscription the broker refuses', () => {
  it('leaves no queue behind when the bind is refused (a user without read permission on the exchange)', async () => {
    const user = uniqueName('topicgate-test-noread');
    const password = randomBytes(8).toString('hex');
    await addBrokerUser(user, password, { configure: '.*', write: '.*', read: '^$' });
    users.push(user);
    const { log, records } = recordingLog();
    const mq = await connector({ urls: [testAmqpUrlAs(user, password)], log });

    const refused = mq.startConsuming('builds.#', () => undefined);
    await expect(refused).rejects.toThrow(BrokerRefusedOperationError);
    await expect(refused).rejects.toThrow(/ACCESS_REFUSED/);
    expect(await listQueues(mq.options.queuePrefix)).toEqual([]);
    // The broker's reason for closing the operation channel reaches the log, code and text.
    expect(records).toContainEqual(expect.objectContaining({ level: WARN, code: 403, err: expect.stringMatching(/ACCESS_REFUSED/) }));
    expect(mq.isUp).toBe(true);
  });

  it('reports a queue deleted between its declare and its bind as such, not as a missing exchange', async () => {
    const { log, records } = recordingLog();
    const mq = await connector({ log });
    // The queue vanishes just before each bind, as when an unsubscribe races a re-declare.
    const channels = mq.channels!;
    const lease = channels.withOperationChannel.bind(channels);
    channels.withOperationChannel = <T>(operation: (channel: Channel) => Promise<T>) =>
      lease(async (ch) => {
        const bindQueue = ch.bindQueue;
        ch.bindQueue = async (queue, source, pattern, args) => {
          await ch.deleteQueue(queue);
          return bindQueue.call(ch, queue, source, pattern, args);
        };
        try {
          return await operation(ch);
        } finally {
          ch.bindQueue = bindQueue;
        }
      });

    const failed = mq.startConsuming('builds.#', () => undefined);
    await expect(failed).rejects.toThrow(/no queue/);
    // Declaring again can succeed: the client is told to retry, not that an operator must act.
    await expect(failed).rejects.toThrow(BrokerOperationError);
    await expect(failed).rejects.not.toThrow(BrokerRefusedOperationError);
    expect(records.filter((r) => /exchange is missing/.test(r.msg))).toEqual([]);
  });

  it('refuses for good when the user may not declare the queue (403 stays until an operator grants it)', async () => {
    const user = uniqueName('topicgate-test-noconfigure');
    const password = randomBytes(8).toString('hex');
    // May declare the exchange (at connect), not the gateway's queues.
    await addBrokerUser(user, password, { configure: '^topicgate-test-', write: '.*', read: '.*' });
    users.push(user);
    const mq = await connector({ urls: [testAmqpUrlAs(user, password)] });

    const refused = mq.startConsuming('builds.#', () => undefined);
    await expect(refused).rejects.toThrow(BrokerRefusedOperationError);
    await expect(refused).rejects.toThrow(/declare.*ACCESS_REFUSED/);
    await expect(refused).rejects.toMatchObject({ replyCode: 403 });
    expect(await listQueues(mq.options.queuePrefix)).toEqual([]);
    expect(mq.isUp).toBe(true);
  });

  it('refuses for good when a persistent queue exists with other arguments (406 PRECONDITION_FAILED)', async () => {
    const mq = await connector();
    const name = uniqueName('topicgate.test.conflict');
    await withAdminChannel(async (ch) => {
      await ch.assertQueue(name, { durable: false, autoDelete: true }); // not the durable queue topicgate declares
    });
    try {
      const refused = mq.startConsuming('builds.#', () => undefined, { persistentName: name });
      await expect(refused).rejects.toThrow(BrokerRefusedOperationError);
      await expect(refused).rejects.toMatchObject({ replyCode: 406 });
    } finally {
      await withAdminChannel(async (ch) => {
        await ch.deleteQueue(name);
      });
    }
  });

});

describe('after a reconnect', () => {
  it('an unsubscribe that lands while the queue is being declared again leaves no queue behind', async () => {
    const mq = await connector();
    const consumer = (await mq.startConsuming('builds.#', () => undefined)) as AmqpConsumer;
    // The unsubscribe lands once the re-declare has begun (after it checked the
    // consumer was live), and its queue.delete reaches the broker first.
    const start = consumer.start.bind(consumer);
    let unsubscribed: Promise<void> | undefined;
    consumer.start = async (channels: ChannelSet) => {
      consumer.start = start;
      const operations = vi.spyOn(channels, 'withOperationChannel');
      unsubscribed = consumer.stopConsuming();
      await operations.mock.results[0]!.value; // the unsubscribe's queue.delete
      operations.mockRestore();
      await start(channels);
    };

    const up = once(mq, 'reconnected');
    await closeConnections(mq.options.connectionName, 'test: force a reconnect');
    await up;
    expect(unsubscribed).toBeDefined(); // the re-declare did run
    await unsubscribed;
    expect(await listQueues(mq.options.queuePrefix)).toEqual([]);
  });

  it('close() while the reconnect is still connecting closes that new connection and never reports reconnected', async () => {
    const proxy = await TcpProxy.start();
    proxies.push(proxy);
    const mq = await connector({ urls: [proxy.amqpUrl()] });
    let ups = 0;
    mq.on('reconnected', () => ups++);
    // Hold the reconnect's freshly opened connection until close() has run.
    const realConnect = amqp.connect;
    let connected!: () => void;
    const reconnecting = new Promise<void>((resolve) => (connected = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    vi.spyOn(amqp, 'connect').mockImplementation(async (...args) => {
      const connection = await realConnect(...args);
      connected();
      await held;
      return connection;
    });

    proxy.cut();
    await eventually(async () => !mq.isUp, 'the connector notices the lost connection');
    proxy.restore();
    await reconnecting;
    await mq.close();
    release();

    await eventually(async () => (await connectionCount(mq.options.connectionName)) === 0, 'no connection left open after close()');
    expect(mq.isUp).toBe(false);
    expect(ups).toBe(0);
  });
});

describe('a connection lost again while consumers are being recovered', () => {
  it('leaves them to the next reconnect: none ends, each resyncs, all consume again', async () => {
    const proxy = await TcpProxy.start();
    proxies.push(proxy);
    let opened = 0;
    // Cut again the moment the reconnect has its new connection: the re-declares then run into a dead one.
    const log = pino({ level: 'info' }, {
      write: (line: string) => {
        if ((JSON.parse(line) as { msg: string }).msg === 'connected to the broker' && ++opened === 2) proxy.cut();
      },
    });
    const mq = await connector({ urls: [proxy.amqpUrl()], log });
    const ended: string[] = [];
    const resynced = new Set<string>();
    const received = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const c = await mq.startConsuming('again.#', () => void received.add(c.queue), {
        onResync: () => resynced.add(c.queue),
        onEnd: (reason) => ended.push(reason),
      });
    }
    proxy.cut();
    await eventually(async () => !mq.isUp, 'the connector notices the lost connection');
    proxy.restore();
    await eventually(async () => opened === 2 && !mq.isUp, 'the reconnect opened a connection and lost it again');
    proxy.restore();
    await eventually(async () => mq.isUp, 'the next reconnect recovers');
    await mq.produce('again.1', {});
    await eventually(async () => received.size === 20, 'every consumer receives again');
    expect(ended).toEqual([]);
    expect(resynced.size).toBe(20);
    expect(await listQueues(mq.options.queuePrefix)).toHaveLength(20);
  });
});

describe('an exchange that exists with another type', () => {
  it('is named in the error, with TOPICGATE_EXCHANGE and what to do, not blamed on the URL', async () => {
    const opts = options();
    await withAdminChannel((ch) => ch.assertExchange(opts.exchange, 'fanout', { durable: true }));

    const failed = AmqpConnector.connect(opts);
    await expect(failed).rejects.toThrow(/fanout/);
    await expect(failed).rejects.toThrow(opts.exchange);
    await expect(failed).rejects.toThrow(/TOPICGATE_EXCHANGE/);
    await expect(failed).rejects.not.toThrow(/TOPICGATE_AMQP_URL/);
  });

  it('is logged at error on every attempt by a gateway that keeps trying', async () => {
    const { log, records } = recordingLog();
    const opts = options({ log });
    await withAdminChannel((ch) => ch.assertExchange(opts.exchange, 'fanout', { durable: true }));

    const mq = await AmqpConnector.connect(opts, { keepTrying: true });
    connectors.push(mq);
    expect(mq.isUp).toBe(false);
    const aboutTheExchange = () => records.filter((r) => r.level === ERROR && JSON.stringify(r).includes(opts.exchange));
    await eventually(async () => aboutTheExchange().length >= 2, 'the first attempt and a retry logged at error');
    for (const record of aboutTheExchange()) {
      expect(JSON.stringify(record)).toMatch(/TOPICGATE_EXCHANGE/);
      expect(JSON.stringify(record)).not.toMatch(/TOPICGATE_AMQP_URL|unreachable/);
    }
  });
});

describe('a produce the broker refuses', () => {
  it('says why (the exchange was deleted) and logs the channel close at warn with its reply code', async () => {
    const { log, records } = recordingLog();
    const mq = await connector({ log });
    await deleteExchange(mq.options.exchange);

    const refused = mq.produce('builds.1.finished', { n: 1 });
    await expect(refused).rejects.toThrow(BrokerOperationError);
    await expect(refused).rejects.toThrow(/404.*no exchange/);
    expect(records).toContainEqual(expect.objectContaining({ level: WARN, code: 404, err: expect.stringMatching(/no exchange/) }));
  });
});
