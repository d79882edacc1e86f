/**
 * The building blocks on top of a real `Client`, against the in-process fake
 * gateway: subscribe-then-load, and recovery from reconnects and lost
 * deliveries, end to end through the socket layer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type Client, type LogLines } from '../src/index.js';
import { FakeGateway, freshToken } from './fake-gateway.js';
import { until } from './helpers.js';

interface Build {
  id: number;
  version: number;
  state: 'running' | 'finished';
}

interface Topics {
  'builds.{id}.updated': Build;
  'logs.{id}.append': LogLines;
}

const closers: { close(): void }[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c.close();
});

function newClient(gateway: FakeGateway): Client<Topics> {
  const client = createClient<Topics>({
    url: 'http://gateway.test',
    token: freshToken(),
    io: gateway.io,
    reconnectDelay: 5,
    reconnectDelayMax: 10,
  });
  closers.push(client);
  return client;
}

class Builds {
  readonly rows = new Map<number, Build>();
  loads = 0;

  constructor(readonly gateway: FakeGateway) {}

  change(id: number, state: Build['state']): void {
    const row = { id, version: (this.rows.get(id)?.version ?? 0) + 1, state };
    this.rows.set(id, row);
    this.gateway.publish(`builds.${id}.updated`, { ...row });
  }

  readonly load = async (): Promise<Build[]> => {
    this.loads++;
    await new Promise((resolve) => setTimeout(resolve, 1));
    return [...this.rows.values()].map((row) => ({ ...row }));
  };

  sorted(): Build[] {
    return [...this.rows.values()].sort((a, b) => a.id - b.id);
  }
}

describe('live collection over the client', () => {
  it('loads only after the subscription is acknowledged, so no change falls between the two', async () => {
    const gateway = new FakeGateway();
    const db = new Builds(gateway);
    db.change(1, 'running');
    let loadedWhileSubscribed: boolean | undefined;
    gateway.hooks.afterAck = () => db.change(1, 'finished');
    const client = newClient(gateway);
    const builds = client.liveCollection({
      pattern: 'builds.*.updated',
      load: async () => {
        loadedWhileSubscribed = gateway.subscriptions().length === 1;
        return db.load();
      },
      sort: (a, b) => a.id - b.id,
    });
    closers.push(builds);
    await until(() => builds.status === 'live', 'the collection');
    expect(loadedWhileSubscribed).toBe(true);
    expect([...builds.items]).toEqual(db.sorted());
  });

  it('reloads after a reconnect and after lost deliveries, and ends equal to the database', async () => {
    const gateway = new FakeGateway();
    const db = new Builds(gateway);
    for (let id = 1; id <= 3; id++) db.change(id, 'running');
    const client = newClient(gateway);
    const builds = client.liveCollection({ pattern: 'builds.*.updated', load: db.load, sort: (a, b) => a.id - b.id });
    closers.push(builds);
    await until(() => builds.status === 'live', 'the collection');
    expect(db.loads).toBe(1);

    // Changes while the socket is down are lost; the resubscription must trigger a reload.
    gateway.online = false;
    gateway.dropConnections();
    await until(() => client.state === 'connecting', 'the disconnect');
    db.change(2, 'finished');
    db.change(4, 'running');
    gateway.online = true;
    await until(() => db.loads === 2 && builds.status === 'live', 'the reload after the reconnect');
    expect([...builds.items]).toEqual(db.sorted());

    // Deliveries lost on the way show as a seq gap on the next one.
    gateway.loseNext(1);
    db.change(1, 'finished');
    db.change(3, 'finished');
    await until(() => db.loads === 3 && builds.status === 'live', 'the reload after the gap');
    expect([...builds.items]).toEqual(db.sorted());

    // And the gateway's own resync notice.
    gateway.resync('overflow');
    await until(() => db.loads === 4 && builds.status === 'live', 'the reload after the notice');
    expect([...builds.items]).toEqual(db.sorted());
  });
});

describe('log tail over the client', () => {
  it('follows appends and fills what a reconnect lost', async () => {
    const gateway = new FakeGateway();
    const log: string[] = [];
    const append = (n: number) => {
      const first = log.length;
      for (let i = 0; i < n; i++) log.push(`l${first + i}`);
      gateway.publish('logs.7.append', { first, lines: log.slice(first) });
    };
    append(5);
    const client = newClient(gateway);
    const tail = client.logTail({
      pattern: 'logs.7.append',
      load: async ({ from, limit }) => {
        const first = from ?? Math.max(0, log.length - limit);
        return { first, lines: log.slice(first, first + limit) };
      },
    });
    closers.push(tail);
    await until(() => tail.status === 'live' && tail.end === 5, 'the first lines');
    append(3);
    await until(() => tail.end === 8, 'the append');
    gateway.online = false;
    gateway.dropConnections();
    await until(() => client.state === 'connecting', 'the disconnect');
    append(4);
    gateway.online = true;
    await until(() => tail.end === 12 && tail.status === 'live', 'the lines missed while away');
    append(1);
    await until(() => tail.end === 13, 'the next append');
    expect(tail.lines).toEqual(log);
  });
});
