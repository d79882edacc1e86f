import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  LogTail,
  type LogLines,
  type LogLinesRequest,
  type LogTailChange,
  type Message,
  type TopicgateError,
} from '../src/index.js';
import { FakeRest, FakeSource, Network, quiesce } from './fake-source.js';
import { ticks } from './helpers.js';

type Msg = Message<string, LogLines>;

/** The source of truth: a log that grows in chunks, each announced by one append message. */
class Log {
  readonly lines: string[] = [];

  append(count: number): Msg {
    const first = this.lines.length;
    for (let i = 0; i < count; i++) this.lines.push(`line ${first + i}`);
    return { key: 'logs.7.append', body: { first, lines: this.lines.slice(first) }, seq: 0 };
  }

  /** The REST endpoint: `limit` lines from `from`, or the last `limit`. */
  read(request: LogLinesRequest): LogLines {
    const first = request.from ?? Math.max(0, this.lines.length - request.limit);
    return { first, lines: this.lines.slice(first, first + request.limit) };
  }
}

/** Rebuilds the window from `change` events alone, as a view patching the DOM would. */
class Mirror {
  first = 0;
  lines: string[] = [];

  apply(change: LogTailChange): void {
    if (change.kind === 'reset') {
      this.first = change.first;
      this.lines = [...change.lines];
      return;
    }
    if (change.kind === 'prepend') {
      this.lines = [...change.lines, ...this.lines];
      this.first = change.first;
      return;
    }
    expect(change.first).toBe(this.first + this.lines.length);
    this.lines.push(...change.lines);
    this.lines.splice(0, change.dropped);
    this.first += change.dropped;
  }
}

const open: LogTail<Msg>[] = [];
afterEach(() => {
  for (const tail of open.splice(0)) tail.close();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function setup(options: { maxLines?: number; tailLines?: number; initial?: number } = {}) {
  const log = new Log();
  if (options.initial) log.append(options.initial);
  const source = new FakeSource<Msg>();
  const network = new Network(source);
  const rest = new FakeRest<LogLinesRequest, LogLines>((request) => log.read(request));
  const tail = new LogTail<Msg>({
    source,
    load: rest.handler,
    maxLines: options.maxLines ?? 100,
    tailLines: options.tailLines ?? 10,
    retryDelay: 1,
    retryDelayMax: 2,
  });
  const errors: TopicgateError[] = [];
  tail.on('error', (e) => errors.push(e));
  const mirror = new Mirror();
  tail.on('change', (change) => mirror.apply(change));
  const reloads: string[] = [];
  tail.on('reload', (reason) => reloads.push(reason));
  open.push(tail);
  return { log, source, network, rest, tail, errors, mirror, reloads };
}

type Op =
  | { t: 'append'; count: number }
  | { t: 'deliver'; pick: number }
  | { t: 'duplicate'; pick: number }
  | { t: 'drop'; pick: number }
  | { t: 'resync' }
  | { t: 'read'; pick: number }
  | { t: 'respond'; pick: number }
  | { t: 'fail'; pick: number }
  | { t: 'earlier'; count: number }
  | { t: 'tick' };

const pick = fc.nat(1000);
const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    { arbitrary: fc.record({ t: fc.constant('append' as const), count: fc.integer({ min: 1, max: 6 }) }), weight: 6 },
    { arbitrary: fc.record({ t: fc.constant('deliver' as const), pick }), weight: 8 },
    { arbitrary: fc.record({ t: fc.constant('duplicate' as const), pick }), weight: 2 },
    { arbitrary: fc.record({ t: fc.constant('drop' as const), pick }), weight: 1 },
    { arbitrary: fc.constant({ t: 'resync' as const }), weight: 1 },
    { arbitrary: fc.record({ t: fc.constant('read' as const), pick }), weight: 2 },
    { arbitrary: fc.record({ t: fc.constant('respond' as const), pick }), weight: 3 },
    { arbitrary: fc.record({ t: fc.constant('fail' as const), pick }), weight: 1 },
    { arbitrary: fc.record({ t: fc.constant('earlier' as const), count: fc.integer({ min: 1, max: 15 }) }), weight: 1 },
    { arbitrary: fc.constant({ t: 'tick' as const }), weight: 2 },
  ),
  { maxLength: 120 },
);

describe('log tail under adversarial delivery', () => {
  it('ends with the last lines of the log, in order, each once, and change events that add up to it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(40), ops, async (initial, schedule) => {
        const { log, source, network, rest, tail, mirror } = setup({ maxLines: 20, tailLines: 8, initial });
        source.ready();
        for (const op of schedule) {
          switch (op.t) {
            case 'append':
              network.publish(log.append(op.count));
              break;
            case 'deliver':
              network.deliver(op.pick);
              break;
            case 'duplicate':
              network.duplicate(op.pick);
              break;
            case 'drop':
              network.drop(op.pick);
              break;
            case 'resync':
              network.resync();
              break;
            case 'read':
              rest.readNow(op.pick);
              break;
            case 'respond':
              rest.respond(op.pick);
              break;
            case 'fail':
              rest.fail(op.pick);
              break;
            case 'earlier':
              void tail.loadEarlier(op.count);
              break;
            case 'tick':
              await ticks(1);
              break;
          }
        }
        await quiesce(network as Network<unknown>, [rest], () => tail.status === 'live');
        expect(tail.end).toBe(log.lines.length);
        expect(tail.lines).toEqual(log.lines.slice(tail.first));
        expect(tail.lines.length).toBeGreaterThanOrEqual(Math.min(log.lines.length, 8));
        expect({ first: mirror.first, lines: mirror.lines }).toEqual({ first: tail.first, lines: [...tail.lines] });
      }),
      { numRuns: 300 },
    );
  });
});

describe('log tail', () => {
  it('loads the last lines once its subscription is live', async () => {
    const { source, rest, tail } = setup({ initial: 30, tailLines: 10 });
    expect(rest.calls).toBe(0);
    source.ready();
    expect(rest.pending[0]!.request).toEqual({ limit: 10 });
    rest.respondAll();
    await ticks();
    expect(tail.first).toBe(20);
    expect(tail.lines).toEqual(Array.from({ length: 10 }, (_, i) => `line ${20 + i}`));
    expect(tail.status).toBe('live');
  });

  it('orders chunks that arrive out of order and ignores duplicates', async () => {
    const { log, source, rest, tail } = setup();
    source.ready();
    rest.respondAll();
    await ticks();
    const a = log.append(3);
    const b = log.append(2);
    const c = log.append(4);
    source.push(c);
    source.push(a);
    source.push(a);
    source.push(b);
    source.push(c);
    // c arrived before a: a gap fill was asked for, and the messages closed the gap meanwhile.
    rest.respondAll();
    await ticks();
    expect(tail.lines).toEqual(log.lines);
  });

  it('fills a gap over REST when a chunk was lost', async () => {
    const { log, source, rest, tail, reloads } = setup({ initial: 5 });
    source.ready();
    rest.respondAll();
    await ticks();
    expect(reloads).toEqual([]); // the first load is not a reload
    log.append(3); // lost
    source.push(log.append(2));
    source.push(log.append(1)); // still past the gap: the fill under way covers it
    expect(rest.pending.map((c) => c.request)).toEqual([{ from: 5, limit: 3 }]);
    expect(reloads).toEqual(['line_gap']);
    expect(tail.end).toBe(5);
    rest.respondAll();
    await ticks();
    expect(tail.lines).toEqual(log.lines);
    expect(tail.status).toBe('live');
  });

  it('takes a fill that late messages made redundant meanwhile as an answer, not a failure', async () => {
    const { log, source, rest, tail, errors } = setup({ initial: 5 });
    source.ready();
    rest.respondAll();
    await ticks();
    const late = log.append(3); // overtaken...
    source.push(log.append(2)); // ...by this one: a fill is asked for
    expect(rest.pending.map((c) => c.request)).toEqual([{ from: 5, limit: 3 }]);
    source.push(late); // the gap closes before the fill answers
    expect(tail.end).toBe(10);
    rest.respondAll();
    await ticks();
    expect(errors).toEqual([]);
    expect(tail.lines).toEqual(log.lines);
    expect(tail.status).toBe('live');
  });

  it('backs off when the REST API answers a fill without the lines asked for', async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(1); // no jitter: the first retry waits retryDelay, 1 ms
    const { log, source, rest, tail, errors, reloads } = setup({ initial: 5 });
    source.ready();
    rest.respondAll();
    await ticks();
    log.append(3); // lost
    source.push(log.append(2));
    rest.pending[0]!.answer = { first: 5, lines: [] }; // behind its own messages
    rest.respond(0);
    await ticks();
    expect(errors.map((e) => e.code)).toEqual(['load_failed']);
    expect(rest.pending.length).toBe(0); // not asked again at once...
    await vi.advanceTimersByTimeAsync(1);
    expect(rest.pending.length).toBe(1); // ...but after the backoff
    rest.respondAll();
    await ticks();
    expect(tail.lines).toEqual(log.lines);
    expect(reloads).toEqual(['line_gap']); // one gap, however many tries
  });

  it('does not call a resync during the first load a reload', async () => {
    const { source, rest, tail, reloads } = setup({ initial: 5 });
    source.ready();
    source.resync('overflow');
    rest.respondAll();
    await ticks();
    rest.respondAll();
    await ticks();
    expect(tail.status).toBe('live');
    expect(reloads).toEqual([]);
  });

  it('after a resync, extends the window with what was missed', async () => {
    const { log, source, rest, tail, reloads } = setup({ initial: 5 });
    source.ready();
    rest.respondAll();
    await ticks();
    log.append(3); // lost, and nothing comes after it to show the gap
    source.resync('reconnected');
    expect(reloads).toEqual(['reconnected']);
    rest.respondAll();
    await ticks();
    expect(tail.lines).toEqual(log.lines);
  });

  it('jumps to the end after a resync when more was missed than one fetch brings', async () => {
    const { log, source, rest, tail, mirror } = setup({ initial: 5, tailLines: 10 });
    source.ready();
    rest.respondAll();
    await ticks();
    log.append(50);
    source.resync();
    rest.respondAll();
    await ticks();
    expect(tail.first).toBe(45);
    expect(tail.lines).toEqual(log.lines.slice(45));
    expect(mirror.lines).toEqual([...tail.lines]);
  });

  it('keeps at most maxLines, dropping the oldest', async () => {
    const { log, source, rest, tail } = setup({ maxLines: 10, tailLines: 5 });
    source.ready();
    rest.respondAll();
    await ticks();
    for (let i = 0; i < 7; i++) source.push(log.append(3));
    expect(tail.lines).toHaveLength(10);
    expect(tail.first).toBe(11);
    expect(tail.lines).toEqual(log.lines.slice(11));
    expect(tail.hasEarlier).toBe(true);
  });

  it('loads earlier lines on request, growing the window by as many', async () => {
    const { log, source, rest, tail } = setup({ initial: 30, maxLines: 10, tailLines: 10 });
    source.ready();
    rest.respondAll();
    await ticks();
    const added = tail.loadEarlier(15);
    expect(tail.loadEarlier(15)).toBe(added);
    expect(rest.pending.map((c) => c.request)).toEqual([{ from: 5, limit: 15 }]);
    rest.respondAll();
    expect(await added).toBe(15);
    expect(tail.first).toBe(5);
    expect(tail.lines).toEqual(log.lines.slice(5));
    // 25 lines now fit; appends still push out the oldest.
    source.push(log.append(2));
    expect(tail.first).toBe(7);
    expect(tail.lines).toEqual(log.lines.slice(7));
    const rest2 = tail.loadEarlier(100);
    rest.respondAll();
    expect(await rest2).toBe(7);
    expect(tail.first).toBe(0);
    expect(tail.hasEarlier).toBe(false);
    expect(await tail.loadEarlier()).toBe(0);
  });

  it('backs off when REST fails and reports load_failed', async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(1); // no jitter: the first retry waits retryDelay, 1 ms
    const { log, source, rest, tail, errors } = setup({ initial: 3 });
    source.ready();
    rest.fail(0);
    await ticks(1);
    expect(errors.map((e) => e.code)).toEqual(['load_failed']);
    expect(rest.calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(rest.calls).toBe(2);
    rest.respondAll();
    await ticks();
    expect(tail.lines).toEqual(log.lines);
  });

  it('ignores the answer to a request made before close', async () => {
    const { source, rest, tail } = setup({ initial: 3 });
    const changes: LogTailChange[] = [];
    tail.on('change', (change) => changes.push(change));
    source.ready();
    tail.close();
    rest.respondAll();
    await ticks();
    expect(changes).toEqual([]);
    expect(tail.loaded).toBe(false);
    expect(tail.status).toBe('closed');
  });

  it('ignores messages that are not log lines', async () => {
    const { source, rest, tail } = setup({ initial: 2 });
    source.ready();
    rest.respondAll();
    await ticks();
    source.push({ key: 'logs.7.append', body: { first: -1, lines: ['x'] }, seq: 1 });
    source.push({ key: 'logs.7.append', body: { nope: true } as unknown as LogLines, seq: 2 });
    source.push({ key: 'logs.7.append', body: { first: 2, lines: [3 as unknown as string] }, seq: 3 });
    await ticks();
    expect(tail.lines).toEqual(['line 0', 'line 1']);
  });
});
