/**
 * Resume through the client (docs/protocol.md §15): what it asks for, what it
 * presents after an unexpected disconnect, and what subscriptions and views
 * see for each answer. A scripted socket stands in for the gateway so that
 * each test writes the gateway's answers itself, packet by packet.
 */
import { deliveryFingerprint, type Delivery, type ResumeGrant } from '@topicgate/shared';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient, type Client, type SocketLike, type SubscriptionResyncReason } from '../src/index.js';
import { RECEIPT_DELAY_MS } from '../src/resume-tracker.js';

type Listener = (...args: any[]) => void;
interface Emitted {
  event: string;
  payload: any;
  ack?: (result: unknown) => void;
}

/** A socket.io-client socket as the client sees it, driven by the test: `open`, `drop`, `serve`. */
class ScriptedSocket implements SocketLike {
  connected = false;
  active = false;
  readonly emitted: Emitted[] = [];
  readonly #listeners = new Map<string, Listener[]>();

  connect(): this {
    this.active = true;
    return this;
  }
  disconnect(): this {
    this.active = false;
    if (this.connected) {
      this.connected = false;
      this.#fire('disconnect', 'io client disconnect');
    }
    return this;
  }
  on(event: string, listener: Listener): this {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener]);
    return this;
  }
  emit(event: string, ...args: unknown[]): this {
    const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (result: unknown) => void) : undefined;
    // What the client sends while disconnected is not the gateway's business (the client never does).
    if (this.connected) this.emitted.push({ event, payload: structuredClone(args[0]), ...(ack && { ack }) });
    return this;
  }
  #fire(event: string, ...args: unknown[]): void {
    for (const listener of this.#listeners.get(event) ?? []) listener(...args);
  }

  /** The handshake succeeded. */
  open(): void {
    this.connected = true;
    this.#fire('connect');
  }
  /** The transport died: socket.io reconnects by itself (`active` stays true). */
  drop(): void {
    this.connected = false;
    this.#fire('disconnect', 'transport close');
  }
  /** A server → client event. */
  serve(event: string, payload: unknown): void {
    this.#fire(event, payload);
  }
  deliver(id: string, from: number, to: number, key = 'logs.1'): void {
    const batch: Delivery[] = [];
    for (let seq = from; seq <= to; seq++) batch.push({ id, key, body: { n: seq }, seq });
    this.serve('messages', batch);
  }
  /** Requests of one event not answered yet, oldest first. */
  unanswered(event: string): Emitted[] {
    return this.emitted.filter((e) => e.event === event && !answered.has(e));
  }
  /** Answers the oldest unanswered request of `event`. */
  answer(event: string, result: unknown): Emitted {
    const request = this.unanswered(event)[0];
    if (request === undefined) throw new Error(`no ${event} request to answer`);
    answered.add(request);
    request.ack?.(result);
    return request;
  }
}
const answered = new WeakSet<Emitted>();

const GRANT: ResumeGrant = { claim: 'topicgate.r.0.0.first', window: 30 };
const GRANT2: ResumeGrant = { claim: 'topicgate.r.0.0.second', window: 30 };
interface Item {
  id: number;
  version: number;
}
/** Untyped clients must be told that each body is a whole item. */
const asItem = (_previous: Item | undefined, message: { body: unknown }): Item => message.body as Item;
const fingerprints = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => deliveryFingerprint('logs.1', { n: from + i }));

let socket: ScriptedSocket;
const clients: Client[] = [];
function client(options: { resume?: boolean } = {}): Client {
  socket = new ScriptedSocket();
  const c = createClient({ url: 'http://gateway.test', io: () => socket, ...options });
  clients.push(c);
  socket.open();
  return c;
}

/** Delivers `from`–`to` on `id` and lets the client confirm them (the gateway acks the receipt). */
async function deliverAndConfirm(id: string, from: number, to: number): Promise<void> {
  socket.deliver(id, from, to);
  await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS);
  expect(socket.answer('received', { ok: true }).payload).toEqual({ seqs: { [id]: to } });
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('the client asks for resumable subscriptions', () => {
  it('by default, and not with `resume: false`', () => {
    client().subscribe('logs.#');
    expect(socket.unanswered('subscribe')[0]!.payload).toEqual({ pattern: 'logs.#', resumable: true });
    client({ resume: false }).subscribe('logs.#');
    expect(socket.unanswered('subscribe')[0]!.payload).toEqual({ pattern: 'logs.#' });
  });

  it('and sends no receipts when the gateway grants no resume', async () => {
    client().subscribe('logs.#');
    socket.answer('subscribe', { ok: true, id: 'a1' });
    socket.deliver('a1', 1, 5);
    await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS * 10);
    expect(socket.unanswered('received')).toEqual([]);
  });
});

describe('after an unexpected disconnect', () => {
  it('presents its position and, resumed, continues seq without a resync', async () => {
    const c = client();
    const seqs: number[] = [];
    const resyncs: SubscriptionResyncReason[] = [];
    const subscribed: unknown[] = [];
    const sub = c.subscribe('logs.#', (m) => seqs.push(m.seq));
    sub.on('resync', ({ reason }) => resyncs.push(reason));
    sub.on('subscribed', (context) => subscribed.push(context));
    socket.answer('subscribe', { ok: true, id: 'a1', resume: GRANT });
    await deliverAndConfirm('a1', 1, 3);
    socket.deliver('a1', 4, 5);
    socket.drop();
    socket.open();

    const resume = socket.unanswered('subscribe')[0]!.payload;
    expect(resume).toEqual({ pattern: 'logs.#', resumable: true, resume: { claim: GRANT.claim, seq: 5, settled: 3, fingerprints: fingerprints(3, 5) } });
    socket.answer('subscribe', { ok: true, id: 'a2', resume: GRANT2, resumed: true, settled: 3 });
    socket.deliver('a2', 6, 7);

    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(resyncs).toEqual([]);
    expect(subscribed).toEqual([{ id: 'a1', resubscribed: false, resumed: false }, { id: 'a2', resubscribed: true, resumed: true }]);
    // Receipts go on, under the new id, through everything since the resumed `settled`.
    await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS);
    expect(socket.answer('received', { ok: true }).payload).toEqual({ seqs: { a2: 7 } });
  });

  it('presents a receipt that was in flight at the cut as pending', async () => {
    const c = client();
    c.subscribe('logs.#');
    socket.answer('subscribe', { ok: true, id: 'a1', resume: GRANT });
    socket.deliver('a1', 1, 4);
    await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS);
    expect(socket.unanswered('received')).toHaveLength(1); // never answered: the cut comes first
    socket.drop();
    socket.open();
    expect(socket.unanswered('subscribe')[0]!.payload.resume).toEqual({ claim: GRANT.claim, seq: 4, settled: 0, pending: 4, fingerprints: fingerprints(1, 4) });
  });

  it('keeps a live collection without reloading when resumed', async () => {
    const c = client();
    const load = vi.fn(async () => [{ id: 1, version: 1 }]);
    const reloads: string[] = [];
    const items = c.liveCollection<'items.#', Item>({ pattern: 'items.#', load, apply: asItem });
    items.on('reload', (reason) => reloads.push(reason));
    socket.answer('subscribe', { ok: true, id: 'a1', resume: GRANT });
    await vi.advanceTimersByTimeAsync(0);
    expect(items.loaded).toBe(true);
    socket.drop();
    socket.open();
    socket.answer('subscribe', { ok: true, id: 'a2', resume: GRANT, resumed: true, settled: 0 });
    socket.serve('messages', [{ id: 'a2', key: 'items.1', body: { id: 1, version: 2 }, seq: 1 }]);
    await vi.advanceTimersByTimeAsync(100);
    expect(items.items).toEqual([{ id: 1, version: 2 }]);
    expect(load).toHaveBeenCalledTimes(1);
    expect(reloads).toEqual([]);
  });

  it('reloads with the gateway\'s reason when the resume is refused, and seq starts again', async () => {
    const c = client();
    const load = vi.fn(async (): Promise<Item[]> => []);
    const reloads: string[] = [];
    const items = c.liveCollection<'items.#', Item>({ pattern: 'items.#', load, apply: asItem });
    items.on('reload', (reason) => reloads.push(reason));
    socket.answer('subscribe', { ok: true, id: 'a1', resume: GRANT });
    await vi.advanceTimersByTimeAsync(0);
    socket.serve('messages', [{ id: 'a1', key: 'items.1', body: { id: 1, version: 1 }, seq: 1 }]);
    socket.drop();
    socket.open();
    expect(socket.unanswered('subscribe')[0]!.payload.resume).toMatchObject({ seq: 1 });
    socket.answer('subscribe', { ok: true, id: 'a2', resume: GRANT2, resumed: false, reason: 'overflow' });
    await vi.advanceTimersByTimeAsync(100);
    expect(reloads).toEqual(['overflow']);
    expect(load).toHaveBeenCalledTimes(2);
    // A fresh subscription: its seq 1 is new, and the next resume starts from it.
    socket.serve('messages', [{ id: 'a2', key: 'items.2', body: { id: 2, version: 1 }, seq: 1 }]);
    await vi.advanceTimersByTimeAsync(100);
    expect(items.items).toEqual([{ id: 2, version: 1 }]);
    socket.drop();
    socket.open();
    expect(socket.unanswered('subscribe')[0]!.payload.resume).toMatchObject({ claim: GRANT2.claim, seq: 1, settled: 0 });
  });

  it('past the window subscribes afresh without resume and reports expired', async () => {
    const c = client();
    const resyncs: SubscriptionResyncReason[] = [];
    c.subscribe('logs.#').on('resync', ({ reason }) => resyncs.push(reason));
    socket.answer('subscribe', { ok: true, id: 'a1', resume: GRANT });
    socket.deliver('a1', 1, 2);
    socket.drop();
    await vi.advanceTimersByTimeAsync(GRANT.window * 1000);
    socket.open();
    expect(socket.unanswered('subscribe')[0]!.payload).toEqual({ pattern: 'logs.#', resumable: true });
    socket.answer('subscribe', { ok: true, id: 'a2', resume: GRANT2 });
    expect(resyncs).toEqual(['expired']);
  });

  it('after a resync with a new claim presents that claim, with everything before it settled (the new queue holds no anchor: settled is one past)', async () => {
    const c = client();
    const resyncs: SubscriptionResyncReason[] = [];
    c.subscribe('logs.#').on('resync', ({ reason }) => resyncs.push(reason));
    socket.answer('subscribe', { ok: true, id: 'a1', resume: GRANT });
    socket.deliver('a1', 1, 4);
    socket.serve('resync', { id: 'a1', reason: 'interrupted', resume: GRANT2 });
    expect(resyncs).toEqual(['interrupted']);
    socket.deliver('a1', 5, 5);
    socket.drop();
    socket.open();
    expect(socket.unanswered('subscribe')[0]!.payload.resume).toEqual({ claim: GRANT2.claim, seq: 5, settled: 5, fingerprints: fingerprints(5, 5) });
  });

  it('a resume refused as forbidden ends the subscription, as any forbidden resubscribe does', () => {
    const c = client();
    const ends: string[] = [];
    c.subscribe('logs.#').on('unsubscribed', ({ reason }) => ends.push(reason));
    socket.answer('subscribe', { ok: true, id: 'a1', resume: GRANT });
    socket.drop();
    socket.open();
    expect(socket.unanswered('subscribe')[0]!.payload.resume).toBeDefined();
    socket.answer('subscribe', { ok: false, error: { code: 'forbidden', message: 'no longer allowed' } });
    expect(ends).toEqual(['rejected']);
  });
});

describe('an intentional end resumes nothing', () => {
  it('disconnect() then connect() subscribes afresh', () => {
    const c = client();
    c.subscribe('logs.#');
    socket.answer('subscribe', { ok: true, id: 'a1', resume: GRANT });
    socket.deliver('a1', 1, 2);
    c.disconnect();
    c.connect();
    socket.open();
    expect(socket.unanswered('subscribe')[0]!.payload).toEqual({ pattern: 'logs.#', resumable: true });
  });

  it('pagehide of a page being unloaded closes the client; one going into the back/forward cache does not', () => {
    const page = new EventTarget();
    vi.stubGlobal('addEventListener', page.addEventListener.bind(page));
    vi.stubGlobal('removeEventListener', page.removeEventListener.bind(page));
    const pagehide = (persisted: boolean) => page.dispatchEvent(Object.assign(new Event('pagehide'), { persisted }));

    const c = client();
    const ends: string[] = [];
    c.subscribe('logs.#').on('unsubscribed', ({ reason }) => ends.push(reason));
    socket.answer('subscribe', { ok: true, id: 'a1', resume: GRANT });
    pagehide(true);
    expect(c.state).toBe('connected');
    pagehide(false);
    expect(c.state).toBe('disconnected');
    expect(socket.connected).toBe(false);
    expect(ends).toEqual(['closed']);
  });
});
