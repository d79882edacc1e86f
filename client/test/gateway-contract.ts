/**
 * The gateway protocol contract (docs/protocol.md), as a client sees it on
 * the wire, written once and run unchanged against every implementation:
 * the SDK's FakeGateway (gateway-contract.fake.test.ts) and a real gateway
 * on RabbitMQ (server/test/gateway/gateway-contract.real.test.ts). The SDK's
 * own tests trust the fake; this suite is what keeps the fake honest.
 *
 * A case belongs here when it is something the SDK relies on and the two
 * could disagree about: the order of acks, batches and notices; the codes
 * and shapes of refusals; what ends a subscription and what is said then.
 * Where the protocol leaves a choice (deliveries before or after the
 * subscribe ack, §8.6), the case pins what the real gateway does, and the
 * target's adapter maps the case onto the fake's hook that produces it.
 *
 * Nothing here waits a fixed time: "nothing more arrives" is proven with a
 * fence (a later message on a live subscription of the same socket, which is
 * ordered behind anything the gateway relayed before it).
 */
import type { JsonObject, ResyncNotice, UnsubscribedNotice } from '@topicgate/shared';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** What a socket.io-client socket (or the fake's) offers that a contract client needs. */
export interface WireSocket {
  on(event: string, listener: (...args: any[]) => void): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  disconnect(): unknown;
}

/** One thing the client saw, in arrival order. */
export type Seen =
  | { kind: 'ack'; request: string; result: any }
  | { kind: 'messages'; batch: Array<{ id: string; key: string; body: JsonObject; seq: number }> }
  | { kind: 'resync'; notice: ResyncNotice }
  | { kind: 'unsubscribed'; notice: UnsubscribedNotice }
  | { kind: 'disconnect'; reason: string };

/** A connected client that writes down everything it receives, acks included, where it receives it. */
export class ContractClient {
  readonly seen: Seen[] = [];
  /** Where in `seen` the ack of the latest completed request is. */
  lastAckAt = -1;
  #requests = 0;

  constructor(readonly socket: WireSocket) {
    socket.on('messages', (batch) => this.seen.push({ kind: 'messages', batch }));
    socket.on('resync', (notice) => this.seen.push({ kind: 'resync', notice }));
    socket.on('unsubscribed', (notice) => this.seen.push({ kind: 'unsubscribed', notice }));
    socket.on('disconnect', (reason) => this.seen.push({ kind: 'disconnect', reason }));
  }

  /** Emits with an ack; the ack is logged in its callback, so its place among events is where the client saw it. */
  request(event: string, payload: unknown): Promise<any> {
    const request = `${event}#${++this.#requests}`;
    this.socket.emit(event, payload, (result: unknown) => this.seen.push({ kind: 'ack', request, result }));
    return this.waitFor((s) => s.kind === 'ack' && s.request === request, `the ack of ${event} ${JSON.stringify(payload)}`).then((s) => {
      this.lastAckAt = this.seen.indexOf(s);
      return (s as { result: unknown }).result;
    });
  }

  subscribe(pattern: unknown): Promise<any> {
    return this.request('subscribe', { pattern });
  }

  async mustSubscribe(pattern: string): Promise<string> {
    const ack = await this.subscribe(pattern);
    expect(ack, `subscribe ${pattern}`).toEqual({ ok: true, id: expect.any(String) });
    return ack.id as string;
  }

  unsubscribe(id: unknown): Promise<any> {
    return this.request('unsubscribe', { id });
  }

  refresh(payload: unknown): Promise<any> {
    return this.request('refresh', payload);
  }

  deliveries(id?: string) {
    return this.seen.flatMap((s) => (s.kind === 'messages' ? s.batch : [])).filter((d) => id === undefined || d.id === id);
  }

  /** Everything about subscription `id`, in order: its deliveries and notices. */
  about(id: string): Seen[] {
    return this.seen.filter(
      (s) => (s.kind === 'messages' && s.batch.some((d) => d.id === id)) || ((s.kind === 'unsubscribed' || s.kind === 'resync') && s.notice.id === id),
    );
  }

  async waitFor(predicate: (seen: Seen) => boolean, what: string, timeoutMs = 10_000): Promise<Seen> {
    await vi.waitFor(
      () => {
        if (!this.seen.some(predicate)) throw new Error(`waiting for ${what}; seen: ${JSON.stringify(this.seen).slice(0, 1500)}`);
      },
      { timeout: timeoutMs, interval: 5 },
    );
    return this.seen.find(predicate)!;
  }

  /** Publishes a fence on a live subscription of this client and waits for it: whatever the gateway sent before it has arrived. */
  async fence(target: GatewayTarget, fenceId: string, key: string): Promise<void> {
    const marker = `fence-${Math.random().toString(36).slice(2)}`;
    await target.publish(key, { fence: marker });
    await this.waitFor((s) => s.kind === 'messages' && s.batch.some((d) => d.id === fenceId && d.body['fence'] === marker), `the fence on ${key}`);
  }

  close(): void {
    this.socket.disconnect();
  }
}

export interface TargetClaims {
  sub: string;
  /** Patterns the token allows, as in a real token's `topics` claim. */
  topics: string[];
}

/** One gateway implementation, seen from outside, as the contract drives it. */
export interface GatewayTarget {
  /** `TOPICGATE_MAX_SUBSCRIPTIONS` of this gateway. */
  readonly maxSubscriptions: number;
  /** A token this gateway accepts. */
  token(claims: TargetClaims): string;
  /** A client connected with `token`, past its handshake. */
  connect(token: string): Promise<ContractClient>;
  /** Publishes a message to the exchange as an application would; resolves once the gateway can route it. */
  publish(key: string, body: JsonObject): Promise<void>;
  /** Deletes the queue of subscription `id` behind the gateway's back, as an operator does. */
  deleteQueue(id: string): Promise<void>;
  /**
   * Makes these messages reach the next subscription while it is being
   * declared: after its queue is bound and consuming, before its ack is sent.
   */
  publishWhileNextSubscribes(messages: ReadonlyArray<{ key: string; body: JsonObject }>): void;
  /** Shuts the gateway down as SIGTERM does. */
  shutdown(): Promise<void>;
  /** Frees what the target holds (after each case). */
  close(): Promise<void>;
}

let unique = 0;
/** A word no other case uses, so cases cannot see each other's messages. */
const word = (name: string) => `${name}${++unique}x${Math.random().toString(36).slice(2, 8)}`;

export function describeGatewayContract(name: string, makeTarget: () => Promise<GatewayTarget>): void {
  describe(`gateway protocol contract: ${name}`, () => {
    let target: GatewayTarget;
    const clients: ContractClient[] = [];
    const connect = async (claims: TargetClaims) => {
      const c = await target.connect(target.token(claims));
      clients.push(c);
      return c;
    };

    beforeEach(async () => {
      target = await makeTarget();
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) c.close();
      await target.close();
    });

    describe('deliveries and the subscribe ack (§4.1, §6.1, §7, §8.6)', () => {
      it('acks with an id; a message published after the ack arrives as one delivery with that id, its key, its body and seq 1, then 2', async () => {
        const w = word('d');
        const c = await connect({ sub: 'u', topics: [`${w}.#`] });
        const id = await c.mustSubscribe(`${w}.*`);
        await target.publish(`${w}.1`, { n: 1 });
        await target.publish(`${w}.2`, { n: 2 });
        await c.waitFor(() => c.deliveries(id).length === 2, 'two deliveries');
        expect(c.deliveries(id)).toEqual([
          { id, key: `${w}.1`, body: { n: 1 }, seq: 1 },
          { id, key: `${w}.2`, body: { n: 2 }, seq: 2 },
        ]);
      });

      it('messages routed to the queue while it is being declared are delivered right behind the ack, seq from 1: none lost, none before the ack', async () => {
        const w = word('early');
        const c = await connect({ sub: 'u', topics: [`${w}.#`] });
        target.publishWhileNextSubscribes([
          { key: `${w}.a`, body: { n: 1 } },
          { key: `${w}.b`, body: { n: 2 } },
        ]);
        const id = await c.mustSubscribe(`${w}.*`);
        await c.waitFor(() => c.deliveries(id).length === 2, 'the two held deliveries');
        const ack = c.seen.findIndex((s) => s.kind === 'ack' && s.result.id === id);
        const batches = c.about(id).map((s) => c.seen.indexOf(s));
        // The SDK must register the id in the ack callback itself (§14.1): the deliveries come next, possibly in the same read.
        expect(batches, 'the held deliveries follow the ack at once').toEqual(batches.map((_, i) => ack + 1 + i));
        expect(c.deliveries(id)).toEqual([
          { id, key: `${w}.a`, body: { n: 1 }, seq: 1 },
          { id, key: `${w}.b`, body: { n: 2 }, seq: 2 },
        ]);
      });

      it('one message matching two subscriptions of a socket arrives once for each, in one batch', async () => {
        const w = word('two');
        const c = await connect({ sub: 'u', topics: [`${w}.#`] });
        const a = await c.mustSubscribe(`${w}.#`);
        const b = await c.mustSubscribe(`${w}.x`);
        await target.publish(`${w}.x`, { both: true });
        await c.waitFor(() => c.deliveries().length === 2, 'two deliveries');
        const batches = c.seen.filter((s) => s.kind === 'messages');
        expect(batches).toHaveLength(1);
        expect(c.deliveries().map((d) => d.id).sort()).toEqual([a, b].sort());
        expect(c.deliveries().every((d) => d.seq === 1)).toBe(true);
      });
    });

    describe('unsubscribe (§4.2, §8.3)', () => {
      it('acks ok; nothing about the id follows the ack; a second unsubscribe is unknown_subscription', async () => {
        const w = word('u');
        const c = await connect({ sub: 'u', topics: [`${w}.#`] });
        const gone = await c.mustSubscribe(`${w}.gone`);
        const kept = await c.mustSubscribe(`${w}.kept`);
        await target.publish(`${w}.gone`, { n: 1 });
        await c.waitFor(() => c.deliveries(gone).length === 1, 'a delivery before the unsubscribe');
        expect(await c.unsubscribe(gone)).toEqual({ ok: true });
        const ackAt = c.lastAckAt;
        await target.publish(`${w}.gone`, { n: 2 });
        await c.fence(target, kept, `${w}.kept`);
        expect(c.about(gone).filter((s) => c.seen.indexOf(s) > ackAt)).toEqual([]);
        expect(await c.unsubscribe(gone)).toEqual({ ok: false, error: { code: 'unknown_subscription', message: expect.any(String) } });
      });
    });

    describe('unsubscribed: the gateway ends a subscription (§6.3)', () => {
      it('queue_deleted: when an operator deletes its queue; nothing about the id follows, and unsubscribe answers unknown_subscription', async () => {
        const w = word('q');
        const c = await connect({ sub: 'u', topics: [`${w}.#`] });
        const victim = await c.mustSubscribe(`${w}.victim`);
        const other = await c.mustSubscribe(`${w}.other`);
        await target.deleteQueue(victim);
        const notice = await c.waitFor((s) => s.kind === 'unsubscribed' && s.notice.id === victim, 'the unsubscribed notice');
        expect(notice).toEqual({ kind: 'unsubscribed', notice: { id: victim, reason: 'queue_deleted' } });
        await target.publish(`${w}.victim`, { late: true });
        await c.fence(target, other, `${w}.other`);
        expect(c.about(victim)).toEqual([notice]);
        expect(await c.unsubscribe(victim)).toMatchObject({ ok: false, error: { code: 'unknown_subscription' } });
      });

      it('forbidden: a refresh whose token no longer allows the pattern ends it, and the notice precedes the refresh ack (§4.3, §8.5)', async () => {
        const w = word('r');
        const c = await connect({ sub: 'narrowed', topics: [`${w}.a.#`, `${w}.b.#`] });
        const kept = await c.mustSubscribe(`${w}.a.x`);
        const revoked = await c.mustSubscribe(`${w}.b.x`);
        expect(await c.refresh({ token: target.token({ sub: 'narrowed', topics: [`${w}.a.#`] }) })).toEqual({ ok: true });
        const ackAt = c.lastAckAt;
        const noticeAt = c.seen.findIndex((s) => s.kind === 'unsubscribed' && s.notice.id === revoked);
        expect(c.seen[noticeAt]).toEqual({ kind: 'unsubscribed', notice: { id: revoked, reason: 'forbidden' } });
        expect(noticeAt, 'the notice precedes the refresh ack').toBeLessThan(ackAt);
        expect(c.seen.filter((s) => s.kind === 'unsubscribed'), 'the allowed subscription is untouched').toHaveLength(1);
        await target.publish(`${w}.b.x`, { late: true });
        await c.fence(target, kept, `${w}.a.x`);
        expect(c.about(revoked)).toEqual([c.seen[noticeAt]]);
        expect(await c.subscribe(`${w}.b.x`)).toMatchObject({ ok: false, error: { code: 'forbidden' } });
      });

      it('shutdown: each subscription is told, then the socket is disconnected by the server', async () => {
        const w = word('s');
        const c = await connect({ sub: 'u', topics: [`${w}.#`] });
        const a = await c.mustSubscribe(`${w}.a`);
        const b = await c.mustSubscribe(`${w}.b`);
        await target.shutdown();
        await c.waitFor((s) => s.kind === 'disconnect', 'the disconnect');
        const tail = c.seen.filter((s) => s.kind !== 'ack');
        expect(tail.slice(0, 2)).toEqual(
          expect.arrayContaining([
            { kind: 'unsubscribed', notice: { id: a, reason: 'shutdown' } },
            { kind: 'unsubscribed', notice: { id: b, reason: 'shutdown' } },
          ]),
        );
        expect(tail.slice(2)).toEqual([{ kind: 'disconnect', reason: 'io server disconnect' }]);
      });
    });

    describe('subscribe refusals (§4.1, §5)', () => {
      it('invalid_pattern for a string that is not a pattern, or one with more than two # once canonical', async () => {
        const c = await connect({ sub: 'u', topics: ['#'] });
        for (const pattern of ['a..b', 'a.b*', '', 'x.#.y.#.z.#']) {
          expect(await c.subscribe(pattern), JSON.stringify(pattern)).toEqual({ ok: false, error: { code: 'invalid_pattern', message: expect.stringMatching(/./) } });
        }
        expect(await c.subscribe('#.#.#'), 'canonical form is #').toMatchObject({ ok: true });
      });

      it('bad_request for a payload that is not { pattern: string }', async () => {
        const c = await connect({ sub: 'u', topics: ['#'] });
        for (const payload of [{}, { pattern: 7 }, { pattern: null }, 'a.b', null]) {
          expect(await c.request('subscribe', payload), JSON.stringify(payload)).toEqual({ ok: false, error: { code: 'bad_request', message: expect.stringMatching(/./) } });
        }
      });

      it('forbidden for a pattern the token does not contain, naming the pattern', async () => {
        const w = word('f');
        const c = await connect({ sub: 'u', topics: [`${w}.mine.#`] });
        expect(await c.subscribe(`${w}.mine.1`)).toMatchObject({ ok: true });
        expect(await c.subscribe(`${w}.theirs.1`)).toEqual({ ok: false, error: { code: 'forbidden', message: expect.stringContaining(`${w}.theirs.1`) } });
        expect(await c.subscribe(`${w}.#`)).toMatchObject({ ok: false, error: { code: 'forbidden' } });
      });

      it('limit_exceeded past the subscriptions per socket; an unsubscribe frees a slot', async () => {
        const w = word('l');
        const c = await connect({ sub: 'u', topics: [`${w}.#`] });
        const ids: string[] = [];
        for (let i = 0; i < target.maxSubscriptions; i++) ids.push(await c.mustSubscribe(`${w}.${i}`));
        expect(await c.subscribe(`${w}.over`)).toEqual({ ok: false, error: { code: 'limit_exceeded', message: expect.stringMatching(/./) } });
        expect(await c.unsubscribe(ids[0])).toEqual({ ok: true });
        expect(await c.subscribe(`${w}.over`)).toMatchObject({ ok: true });
      });

      it('nothing is ever sent about a refused subscribe', async () => {
        const w = word('n');
        const c = await connect({ sub: 'u', topics: [`${w}.ok.#`] });
        const ok = await c.mustSubscribe(`${w}.ok.1`);
        await c.subscribe(`${w}.no.1`);
        await c.subscribe(`${w}..bad`);
        await target.publish(`${w}.no.1`, { refused: true });
        await c.fence(target, ok, `${w}.ok.1`);
        expect(c.seen.filter((s) => s.kind !== 'ack' && !c.about(ok).includes(s))).toEqual([]);
      });
    });

    describe('refresh (§4.3)', () => {
      it('accepts a token for the same sub, and subscriptions it still allows keep receiving', async () => {
        const w = word('ok');
        const c = await connect({ sub: 'same', topics: [`${w}.#`] });
        const id = await c.mustSubscribe(`${w}.x`);
        expect(await c.refresh({ token: target.token({ sub: 'same', topics: [`${w}.#`] }) })).toEqual({ ok: true });
        await target.publish(`${w}.x`, { after: true });
        await c.waitFor(() => c.deliveries(id).length === 1, 'a delivery after the refresh');
        expect(c.seen.filter((s) => s.kind === 'unsubscribed')).toEqual([]);
      });

      it('refuses a token for another sub, or one that is not a token, with unauthorized; a malformed payload with bad_request; and keeps the old token', async () => {
        const w = word('bad');
        const c = await connect({ sub: 'alice', topics: [`${w}.#`] });
        const id = await c.mustSubscribe(`${w}.x`);
        expect(await c.refresh({ token: target.token({ sub: 'mallory', topics: [] }) })).toEqual({
          ok: false,
          error: { code: 'unauthorized', message: expect.stringContaining('same sub') },
        });
        expect(await c.refresh({ token: 'garbage' })).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
        expect(await c.refresh({ nope: 1 })).toMatchObject({ ok: false, error: { code: 'bad_request' } });
        await target.publish(`${w}.x`, { still: true });
        await c.waitFor(() => c.deliveries(id).length === 1, 'a delivery under the old token');
        expect(c.seen.filter((s) => s.kind === 'unsubscribed')).toEqual([]);
      });
    });
  });
}
