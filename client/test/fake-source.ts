/**
 * Test doubles for the building blocks above raw subscriptions: a message
 * source the test drives by hand, a network between publisher and source that
 * reorders, duplicates and loses messages, and a REST endpoint whose answers
 * the test releases (or fails) one at a time.
 *
 * Extending them: a new fault is a method on `Network` (keep `owedResync`
 * true whenever a message is lost, because the real gateway's seq numbers
 * or `resync` notices always tell the client eventually); a new REST
 * behaviour is a method on `FakeRest` acting on `pending`.
 */
import type { MessageSource, SourceSink, SubscriptionResyncReason } from '../src/index.js';

export class FakeSource<M> implements MessageSource<M> {
  sink: SourceSink<M> | undefined;
  opened = 0;
  closed = 0;

  open(sink: SourceSink<M>): () => void {
    this.sink = sink;
    this.opened++;
    return () => {
      this.closed++;
      this.sink = undefined;
    };
  }

  ready(): void {
    this.sink?.ready();
  }

  push(message: M): void {
    this.sink?.message(message);
  }

  resync(reason: SubscriptionResyncReason = 'overflow'): void {
    this.sink?.resync(reason);
  }
}

/**
 * Messages between the publisher and the source, in flight until the test
 * delivers, duplicates or drops them.
 *
 * With `resourceOf`, a message is only lost if no older message about the
 * same resource is still in flight behind it. A message that overtook an older
 * one about the same resource and was then lost is the one sequence that
 * per-resource versions cannot repair: when it is the deletion, the older
 * message arriving later looks exactly like the resource being created after
 * the snapshot, which no longer shows the resource at all.
 */
export class Network<M> {
  readonly inflight: M[] = [];
  readonly delivered: M[] = [];
  /** A message was lost and the client has not been told yet. */
  owedResync = false;

  constructor(
    readonly source: FakeSource<M>,
    readonly resourceOf?: (message: M) => unknown,
  ) {}

  publish(message: M): void {
    this.inflight.push(message);
  }

  /** Delivers one in-flight message, any of them: messages overtake each other. */
  deliver(pick: number): void {
    if (this.inflight.length === 0) return;
    // Like a seq gap: the loss shows when the next message comes through.
    if (this.owedResync) this.resync('seq_gap');
    const [message] = this.inflight.splice(pick % this.inflight.length, 1);
    this.delivered.push(message!);
    this.source.push(message!);
  }

  /** Delivers an already delivered message again. */
  duplicate(pick: number): void {
    if (this.delivered.length === 0) return;
    this.source.push(this.delivered[pick % this.delivered.length]!);
  }

  drop(pick: number): void {
    if (this.inflight.length === 0) return;
    const index = pick % this.inflight.length;
    const resourceOf = this.resourceOf;
    if (resourceOf !== undefined) {
      const resource = resourceOf(this.inflight[index]!);
      // In-flight messages are in publish order: an earlier index is an older message.
      if (this.inflight.slice(0, index).some((m) => resourceOf(m) === resource)) return;
    }
    this.inflight.splice(index, 1);
    this.owedResync = true;
  }

  resync(reason: SubscriptionResyncReason = 'overflow'): void {
    this.owedResync = false;
    this.source.resync(reason);
  }

  /** Delivers everything still in flight, in publish order, and owes nothing afterwards. */
  flush(): void {
    if (this.owedResync) this.resync('overflow');
    while (this.inflight.length > 0) this.deliver(0);
  }

  get idle(): boolean {
    return this.inflight.length === 0 && !this.owedResync;
  }
}

interface PendingCall<Req, Res> {
  request: Req;
  signal: AbortSignal;
  answer: Res | undefined;
  resolve(value: Res): void;
  reject(error: Error): void;
}

/** A REST endpoint: `read` computes an answer from the source of truth at the moment the test says it is read. */
export class FakeRest<Req, Res> {
  readonly pending: PendingCall<Req, Res>[] = [];
  calls = 0;
  failures = 0;

  constructor(readonly read: (request: Req) => Res) {}

  readonly handler = (request: Req, signal: AbortSignal): Promise<Res> =>
    new Promise<Res>((resolve, reject) => {
      this.calls++;
      this.pending.push({ request, signal, answer: undefined, resolve, reject });
    });

  /** The request reads the database now (its answer is sent later). */
  readNow(pick: number): void {
    const call = this.#pick(pick);
    if (call !== undefined && call.answer === undefined) call.answer = this.read(call.request);
  }

  /** Sends the answer (read now if it was not read before). */
  respond(pick: number): void {
    const call = this.#take(pick);
    if (call !== undefined) call.resolve(call.answer ?? this.read(call.request));
  }

  fail(pick: number): void {
    const call = this.#take(pick);
    if (call === undefined) return;
    this.failures++;
    call.reject(new Error('HTTP 503'));
  }

  respondAll(): void {
    while (this.pending.length > 0) this.respond(0);
  }

  get idle(): boolean {
    return this.pending.length === 0;
  }

  #pick(pick: number): PendingCall<Req, Res> | undefined {
    return this.pending.length === 0 ? undefined : this.pending[pick % this.pending.length];
  }

  #take(pick: number): PendingCall<Req, Res> | undefined {
    if (this.pending.length === 0) return undefined;
    return this.pending.splice(pick % this.pending.length, 1)[0];
  }
}

/**
 * Lets the system under test finish: delivers what is in flight, answers
 * every REST call, lets retry timers fire, until nothing moves and `settled()`.
 */
export async function quiesce(
  network: Network<unknown>,
  rest: FakeRest<any, any>[],
  settled: () => boolean,
): Promise<void> {
  for (let round = 0; round < 500; round++) {
    network.flush();
    for (const r of rest) r.respondAll();
    await new Promise((resolve) => setTimeout(resolve, 3));
    if (network.idle && rest.every((r) => r.idle) && settled()) return;
  }
  throw new Error('the system did not settle');
}
