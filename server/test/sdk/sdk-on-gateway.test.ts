/**
 * The browser SDK against a real gateway and RabbitMQ (socket.io-client runs
 * in Node): live state converges to the source of truth however the messages
 * arrive, with a bounded number of REST reloads.
 */
import { createClient, type Client } from '@topicgate/client';
import { startTestGateway, stopTestGateways } from '../support/gateway.js';
import { describe, expect, test } from '../support/kit.js';
import { TcpProxy } from '../support/tcp-proxy.js';

interface Item {
  id: number;
  version: number;
  value: string;
}

/** The bodies published here are whole items: the collection keeps each message's body (an untyped client needs to be told). */
const asItem = (_previous: Item | undefined, message: { body: unknown }): Item => message.body as Item;

/** The application's database and its REST endpoint, in memory; loads take a few ms like a real one. */
class Truth {
  readonly items = new Map<number, Item>();
  loads = 0;

  change(id: number): Item {
    const prev = this.items.get(id);
    const next = { id, version: (prev?.version ?? 0) + 1, value: Math.random().toString(36).slice(2) };
    this.items.set(id, next);
    return next;
  }

  readonly load = async (): Promise<Item[]> => {
    this.loads++;
    await new Promise((resolve) => setTimeout(resolve, 5));
    return [...this.items.values()].map((item) => ({ ...item }));
  };

  sorted(): Item[] {
    return [...this.items.values()].sort((a, b) => a.id - b.id);
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Resolves once `check` holds after some change event (or right away); fails with `describe()` after a timeout. */
function until(emitter: { on(event: 'change', fn: () => void): () => void }, check: () => boolean, describe: () => string, timeoutMs = 20_000) {
  return new Promise<void>((resolve, reject) => {
    if (check()) return resolve();
    const timer = setTimeout(() => (off(), reject(new Error(`did not converge in ${timeoutMs} ms: ${describe()}`))), timeoutMs);
    const off = emitter.on('change', () => {
      if (check()) (clearTimeout(timer), off(), resolve());
    });
  });
}

/** `sdk(url)`: an SDK client of a gateway, closed after the test. */
const it = test.extend('sdk', async ({}, { onCleanup }) => {
  const clients: Client[] = [];
  onCleanup(() => {
    for (const c of clients) c.close();
  });
  return (url: string): Client => {
    const c = createClient({ url, token: 'unused: the test gateway runs without auth', transports: ['websocket'] });
    clients.push(c);
    return c;
  };
});
// The gateway started behind a proxy by one test; the file's own is the kit's.
it.afterAll(stopTestGateways);

describe('a live collection on a real gateway', () => {
  it('converges after 1,000 changes to 20 resources published shuffled and with duplicates, with a bounded number of reloads', async ({ gateway, sdk }) => {
    const truth = new Truth();
    for (let id = 1; id <= 20; id++) truth.change(id);
    const items = sdk(gateway.url).liveCollection<'items.#', Item>({ pattern: 'items.#', load: truth.load, sort: (a, b) => a.id - b.id, apply: asItem });
    await until(items, () => items.loaded, () => 'initial load');

    const announcements: Item[] = [];
    for (let n = 0; n < 1000; n++) announcements.push(truth.change(1 + Math.floor(Math.random() * 20)));
    const duplicated = announcements.flatMap((item) => (Math.random() < 0.1 ? [item, item] : [item]));
    await Promise.all(shuffle(duplicated).map((item) => gateway.mq.produce(`items.${item.id}.changed`, { ...item })));

    await until(items, () => JSON.stringify(items.items) === JSON.stringify(truth.sorted()), () => JSON.stringify({ got: items.items.length, loads: truth.loads }));
    expect(items.items).toEqual(truth.sorted());
    // Reloads coalesce (one in flight, one queued): far fewer than the ~1,100
    // out-of-order deliveries. How many exactly depends on how the deliveries
    // spread over time (4 on a quiet machine, ~120 on a loaded one).
    expect(truth.loads).toBeGreaterThan(1);
    expect(truth.loads).toBeLessThan(duplicated.length / 4);
  });

  it('applies in-order changes without reloading', async ({ gateway, sdk }) => {
    const truth = new Truth();
    for (let id = 1; id <= 5; id++) truth.change(id);
    const items = sdk(gateway.url).liveCollection<'ordered.#', Item>({ pattern: 'ordered.#', load: truth.load, sort: (a, b) => a.id - b.id, apply: asItem });
    await until(items, () => items.loaded, () => 'initial load');
    for (let n = 0; n < 200; n++) {
      const item = truth.change(1 + (n % 7)); // ids 6 and 7 are new
      await gateway.mq.produce(`ordered.${item.id}.changed`, { ...item });
    }
    await until(items, () => JSON.stringify(items.items) === JSON.stringify(truth.sorted()), () => JSON.stringify(items.items));
    expect(truth.loads).toBe(1);
  });

  it('reloads and converges after the gateway loses its broker connection', async ({ sdk }) => {
    const proxy = await TcpProxy.start();
    try {
      const behindProxy = await startTestGateway({ amqpUrls: [proxy.amqpUrl()] });
      const truth = new Truth();
      truth.change(1);
      const items = sdk(behindProxy.url).liveCollection<'outage.#', Item>({ pattern: 'outage.#', load: truth.load, apply: asItem });
      await until(items, () => items.loaded, () => 'initial load');
      proxy.cut();
      // Changes made while the gateway is cut off are never announced to it.
      for (let n = 0; n < 10; n++) truth.change(1 + (n % 3));
      proxy.restore();
      await until(items, () => JSON.stringify([...items.items].sort((a, b) => a.id - b.id)) === JSON.stringify(truth.sorted()), () => JSON.stringify(items.items));
      expect(truth.loads).toBeGreaterThanOrEqual(2);
    } finally {
      await proxy.close();
    }
  });
});

describe('a log tail on a real gateway', () => {
  it('shows every line in order, none missing, from chunks published shuffled and with duplicates', async ({ gateway, sdk }) => {
    const log: string[] = [];
    let loads = 0;
    const tail = sdk(gateway.url).logTail({
      pattern: 'logs.7.append',
      load: async ({ from, limit }) => {
        loads++;
        const first = from ?? Math.max(0, log.length - limit);
        return { first, lines: log.slice(first, first + limit) };
      },
    });
    await until(tail, () => tail.lines.length === 0 && loads > 0, () => 'initial load');
    const chunks: Array<{ first: number; lines: string[] }> = [];
    for (let n = 0; n < 300; n++) {
      const lines = Array.from({ length: 1 + (n % 4) }, (_, i) => `line ${log.length + i}`);
      chunks.push({ first: log.length, lines });
      log.push(...lines);
    }
    const duplicated = chunks.flatMap((chunk) => (Math.random() < 0.1 ? [chunk, chunk] : [chunk]));
    await Promise.all(shuffle(duplicated).map((chunk) => gateway.mq.produce('logs.7.append', chunk)));
    await until(tail, () => tail.lines.length === log.length, () => `${tail.lines.length} of ${log.length} lines`);
    expect(tail.first).toBe(0);
    expect(tail.lines).toEqual(log);
  });
});
