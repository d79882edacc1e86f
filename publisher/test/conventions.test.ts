/**
 * The convention helpers publish what the SDK's live views rely on
 * (docs/protocol.md §11): their messages, fed to the SDK's own LiveResource
 * and LogTail, keep those views equal to the source of truth without a single
 * reload; and a body that would break the conventions is refused before it
 * is sent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LiveResource, LogTail, type Message, type MessageSource, type SourceSink } from '@topicgate/client';
import { createPublisher, PublishError, PublishErrorCode, type Publisher, type TransportLink } from '../src/index.js';
import { MemoryTransport } from './memory-transport.js';

interface Build {
  id: number;
  version: number;
  state: 'pending' | 'running' | 'success';
}
interface BuildDeleted {
  id: number;
  version: number;
  deleted: true;
}
interface LogChunk {
  build: number;
  first: number;
  lines: string[];
}
interface Topics {
  'builds.{id}.new': Build;
  'builds.{id}.finished': Build;
  'builds.{id}.deleted': BuildDeleted;
  'logs.{id}.append': LogChunk;
}

/** Messages the publisher confirmed, handed to an SDK view as a gateway subscription would. */
class PublishedSource implements MessageSource<Message> {
  #sink: SourceSink<Message> | undefined;
  #seq = 0;

  constructor(transport: MemoryTransport, private readonly pattern: RegExp) {
    transport.onSend = (m) => {
      if (this.pattern.test(m.key)) this.#sink?.message({ key: m.key, body: JSON.parse(m.content) as Message['body'], seq: ++this.#seq });
    };
  }

  open(sink: SourceSink<Message>): () => void {
    this.#sink = sink;
    sink.ready();
    return () => (this.#sink = undefined);
  }
}

let publisher: Publisher<Topics>;
let transport: MemoryTransport;
const closing: Array<{ close(): void }> = [];

function start(): void {
  transport = new MemoryTransport();
  publisher = createPublisher<Topics>({ transport });
}

afterEach(async () => {
  for (const view of closing.splice(0)) view.close();
  await publisher.close();
});

/** Resolves once the view has loaded (its first change). */
function loaded(view: { on(event: 'change', listener: () => void): () => void; status: string }): Promise<void> {
  return new Promise((resolve) => {
    const stop = view.on('change', () => (stop(), resolve()));
  });
}

describe('publisher.resource', () => {
  it('numbers changes one by one and announces the deletion with the next version: an SDK LiveResource follows without reloading', async () => {
    start();
    // The REST API's answer: nothing yet.
    let rest: Build | null = null;
    const reloads: string[] = [];
    const view = new LiveResource<Build, Message>({
      source: new PublishedSource(transport, /^builds\.42\./),
      load: () => Promise.resolve(rest),
      apply: (_prev, m) => (m.key.endsWith('.deleted') ? null : (m.body as unknown as Build)),
    });
    closing.push(view);
    view.on('reload', (reason) => reloads.push(reason));
    await loaded(view);
    expect(view.value).toBeNull();

    const build = publisher.resource({ id: 42 });
    rest = { id: 42, version: 1, state: 'running' };
    await build.update('builds.{id}.new', { id: 42, state: 'running' }); // version left out: the helper sets it
    expect(view.value).toEqual(rest);
    rest = { id: 42, version: 2, state: 'success' };
    await build.update('builds.{id}.finished', { id: 42, version: 2, state: 'success' }); // given: checked
    expect(view.value).toEqual(rest);
    rest = null;
    await build.delete('builds.{id}.deleted', { id: 42, deleted: true });
    expect(view.value).toBeNull();

    expect(transport.sent.map((m) => [m.key, JSON.parse(m.content)])).toEqual([
      ['builds.42.new', { id: 42, state: 'running', version: 1 }],
      ['builds.42.finished', { id: 42, version: 2, state: 'success' }],
      ['builds.42.deleted', { id: 42, deleted: true, version: 3 }],
    ]);
    expect(build.version).toBe(3);
    expect(reloads, 'no version gap or regression made the view reload').toEqual([]);
  });

  it('continues from the version your database already published', async () => {
    start();
    const build = publisher.resource({ id: 7 }, { version: 4 });
    await build.update('builds.{id}.finished', { id: 7, state: 'success' });
    expect(JSON.parse(transport.sent[0]!.content)).toMatchObject({ version: 5 });
  });

  it('refuses a version that is not the next one, and any change after the deletion, before sending anything', async () => {
    start();
    const build = publisher.resource({ id: 1 });
    await build.update('builds.{id}.new', { id: 1, state: 'pending' });
    const skipped = await build.update('builds.{id}.finished', { id: 1, version: 3, state: 'success' }).catch((err: unknown) => err);
    expect(skipped).toBeInstanceOf(PublishError);
    expect(skipped).toMatchObject({ code: PublishErrorCode.OutOfSequence });
    expect((skipped as Error).message).toContain('carries version 3, but the last one published was 1, so it must be 2');
    await expect(build.update('builds.{id}.finished', { id: 1, version: 1, state: 'success' })).rejects.toThrow(/must be 2/);

    await build.delete('builds.{id}.deleted', { id: 1, deleted: true });
    await expect(build.update('builds.{id}.finished', { id: 1, state: 'success' })).rejects.toThrow(/was deleted at version 2/);
    expect(transport.sent.map((m) => m.key)).toEqual(['builds.1.new', 'builds.1.deleted']);
  });

  it('refuses parameter values that are not one routing-key word', async () => {
    start();
    await expect(publisher.resource({ id: '4.2' }).update('builds.{id}.new', { id: 42, state: 'pending' })).rejects.toThrow(
      /\{id\} of topic "builds.\{id\}.new" must be one routing-key word/,
    );
    expect(transport.sent).toEqual([]);
  });
});

describe('a change the publisher refused', () => {
  it('does not spend its number: retried once there is room, it carries the same version (and an append the same first line)', async () => {
    transport = new MemoryTransport();
    let connect!: () => void;
    // No link until the test says so: the first message fills the buffer of one.
    const gated = { description: 'gated', open: () => new Promise<TransportLink>((resolve) => (connect = () => void transport.open().then(resolve))) };
    publisher = createPublisher<Topics>({ transport: gated, maxBuffered: 1 });
    const build = publisher.resource({ id: 1 });
    const log = publisher.logAppender('logs.{id}.append', { id: 1 }, { fields: { build: 1 } });
    const first = build.update('builds.{id}.new', { id: 1, state: 'pending' });
    await expect(build.update('builds.{id}.finished', { id: 1, state: 'success' })).rejects.toMatchObject({ code: PublishErrorCode.BufferFull });
    await expect(build.delete('builds.{id}.deleted', { id: 1, deleted: true })).rejects.toMatchObject({ code: PublishErrorCode.BufferFull });
    await expect(log.append(['compiling'])).rejects.toMatchObject({ code: PublishErrorCode.BufferFull });
    connect();
    await first;
    await build.update('builds.{id}.finished', { id: 1, state: 'success' });
    await log.append(['compiling']);
    expect(transport.sent.map((m) => [m.key, m.body])).toEqual([
      ['builds.1.new', { id: 1, state: 'pending', version: 1 }],
      ['builds.1.finished', { id: 1, state: 'success', version: 2 }],
      ['logs.1.append', { build: 1, first: 0, lines: ['compiling'] }],
    ]);
  });
});

describe('publisher.logAppender', () => {
  it('announces { first, lines } continuing from append to append: an SDK LogTail ends equal to the log without fetching a gap', async () => {
    start();
    const log: string[] = []; // the log store, as the REST API serves it
    const loads: Array<{ from?: number; limit: number }> = [];
    const tail = new LogTail<Message>({
      source: new PublishedSource(transport, /^logs\.9\.append$/),
      load: (request) => {
        loads.push(request);
        const from = request.from ?? Math.max(0, log.length - request.limit);
        return Promise.resolve({ first: from, lines: log.slice(from, from + request.limit) });
      },
    });
    closing.push(tail);
    await loaded(tail);

    const appender = publisher.logAppender('logs.{id}.append', { id: 9 }, { fields: { build: 9 } });
    for (const batch of [['checkout'], ['compile a', 'compile b', 'compile c'], [], ['done']]) {
      const first = log.length;
      log.push(...batch);
      await appender.append(batch, first);
    }
    expect(tail.lines).toEqual(log);
    expect(tail.first).toBe(0);
    expect(loads, 'only the initial tail was loaded: no gap to fill').toHaveLength(1);
    expect(transport.sent.map((m) => JSON.parse(m.content))).toEqual([
      { build: 9, first: 0, lines: ['checkout'] },
      { build: 9, first: 1, lines: ['compile a', 'compile b', 'compile c'] },
      { build: 9, first: 4, lines: ['done'] },
    ]);
    expect(appender.next).toBe(5);
  });

  it('starts where the log already is, and refuses lines that do not continue it', async () => {
    start();
    const appender = publisher.logAppender('logs.{id}.append', { id: 3 }, { first: 100, fields: { build: 3 } });
    await appender.append(['a']);
    const gap = await appender.append(['c'], 102).catch((err: unknown) => err);
    expect(gap).toMatchObject({ code: PublishErrorCode.OutOfSequence });
    expect((gap as Error).message).toContain('these lines start at 102, but the lines announced so far end before 101');
    expect(transport.sent.map((m) => JSON.parse(m.content))).toEqual([{ build: 3, first: 100, lines: ['a'] }]);
  });
});
