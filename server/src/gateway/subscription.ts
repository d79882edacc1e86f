/**
 * One subscription's life on the gateway, as one state and one transition
 * function:
 *
 *   declaring ──commit──▶ live ──▶ ending ──▶ ended
 *       └──────────────────────────▲
 *
 * - declaring: its queue is being declared, bound and consumed. Deliveries
 *   that arrive meanwhile are held, and relayed when it commits: a
 *   subscription refused after its declare (a narrower token, the broker)
 *   must not have sent the client deliveries for an id it is never told.
 * - live: acknowledged to the client.
 * - ending: nothing is relayed any more; its consumer is being stopped and
 *   its queue deleted. A subscription that starts ending while it is still
 *   declaring is finished by the subscribe that declared it, once the
 *   declare has settled: only it can hold the consumer.
 * - ended: the queue is gone — or, for a resumable subscription whose
 *   client went away unexpectedly (cause `away`), detached and left to the
 *   broker for a resume (docs/protocol.md §15) — and its unit of the
 *   subject's limit given back. The gateway keeps nothing of it.
 *
 * A resumed subscription is a new one on whichever gateway the client
 * reaches: it declares by taking up the old queue instead of making one.
 */
import type { Logger } from '../log.js';
import type { Consumer, HeldDelivery, ResumableConsumer } from '../mq/connector.js';
import type { Stream } from './outbox.js';

export type SubscriptionState = 'declaring' | 'live' | 'ending' | 'ended';

/** Why a subscription started ending. */
export type EndCause = 'unsubscribed' | 'forbidden' | 'shutdown' | 'closed' | 'broker' | 'away';

/** A delivery that arrived while declaring. */
export interface EarlyDelivery {
  key: string;
  json: string;
  /** Resumable: to settle once the client confirms it. */
  held?: HeldDelivery;
}

const TRANSITIONS: Record<SubscriptionState, readonly SubscriptionState[]> = {
  declaring: ['live', 'ending'],
  live: ['ending'],
  ending: ['ended'],
  ended: [],
};

export class Subscription implements Stream {
  private current: SubscriptionState = 'declaring';
  private consumer: Consumer | null = null;
  /** Set when it starts ending. */
  endCause: EndCause | null = null;
  seq = 0;
  /** Resumable: deliveries relayed and not yet confirmed by the client (`received`), oldest first. */
  private readonly unconfirmed: Array<{ seq: number; held: HeldDelivery }> = [];

  constructor(
    readonly id: string,
    readonly pattern: string,
    readonly log: Logger,
    /** Gives back its unit of the subject's subscription limit. */
    private readonly release: () => void,
    /** Its queue survives an unexpected disconnect (docs/protocol.md §15). */
    readonly resumable = false,
  ) {}

  /** Resumable deliveries are bounded by the broker's prefetch, never dropped by the outbox. */
  get bounded(): boolean {
    return this.resumable;
  }

  /** The resumable consumer, while live. */
  get resumableConsumer(): ResumableConsumer | null {
    return this.resumable && this.current === 'live' ? (this.consumer as ResumableConsumer) : null;
  }

  /** Resumable: `held` was relayed as `seq`; it is settled once the client confirms that seq. */
  relayed(seq: number, held: HeldDelivery): void {
    this.unconfirmed.push({ seq, held });
  }

  /** Settles every delivery up to `seq`; true if any was. */
  confirmThrough(seq: number): boolean {
    let settled = false;
    while (this.unconfirmed.length > 0 && this.unconfirmed[0]!.seq <= seq) {
      this.unconfirmed.shift()!.held.settle();
      settled = true;
    }
    return settled;
  }

  /** Its queue was replaced (renewed): what was unconfirmed belonged to the old one. */
  forgetUnconfirmed(): void {
    this.unconfirmed.length = 0;
  }

  get state(): SubscriptionState {
    return this.current;
  }

  /** Deliveries that arrived while declaring, oldest first. */
  private early: EarlyDelivery[] = [];

  /** Whether notices for it still go to the client (deliveries: see `hold`). */
  get relaying(): boolean {
    return this.current === 'declaring' || this.current === 'live';
  }

  /** A delivery is to be held rather than relayed: it is still declaring. */
  get holding(): boolean {
    return this.current === 'declaring';
  }

  /** Keeps a delivery that arrived while declaring (see `holding`), to be relayed on commit. */
  hold(early: EarlyDelivery): void {
    this.early.push(early);
  }

  /**
   * Messages may have been lost while it was still declaring. Nothing to tell
   * the client: it loads after the ack, which covers whatever came before.
   * What was held came before the loss, so it goes too. True if it was declaring.
   */
  interruptedWhileDeclaring(): boolean {
    if (this.current !== 'declaring') return false;
    this.early = [];
    return true;
  }

  /** The declare succeeded and the client is told so; returns what arrived meanwhile, to be relayed now. */
  commit(consumer: Consumer): EarlyDelivery[] {
    this.to('live');
    this.consumer = consumer;
    const early = this.early;
    this.early = [];
    return early;
  }

  /**
   * Starts ending. Returns the state it ended from — `live`: the caller
   * finishes it; `declaring`: its subscribe will — or null when it was
   * already ending or ended.
   */
  beginEnd(cause: EndCause): 'declaring' | 'live' | null {
    const from = this.current;
    if (from !== 'declaring' && from !== 'live') return null;
    this.to('ending');
    this.early = [];
    this.endCause = cause;
    return from;
  }

  /**
   * Stops its consumer (deleting the queue), then gives back its unit of the
   * limit — in that order: the limit bounds queues on the broker. `consumer`
   * is the one a declare produced after the subscription started ending.
   */
  async finish(consumer: Consumer | null = this.consumer): Promise<void> {
    this.consumer = null;
    this.unconfirmed.length = 0; // detached, they go back to the queue unsettled; deleted, they go with it
    try {
      if (this.resumable && this.endCause === 'away') await (consumer as ResumableConsumer | null)?.detach();
      else await consumer?.stopConsuming();
    } catch (err) {
      const goes = this.resumable ? 'the broker deletes it once unused for the resume window' : 'it is exclusive and goes with the broker connection';
      this.log.error({ err: (err as Error).message }, `could not delete or detach the subscription queue; ${goes}`);
    } finally {
      this.to('ended');
      this.release();
    }
  }

  private to(next: SubscriptionState): void {
    if (!TRANSITIONS[this.current].includes(next)) {
      throw new Error(`subscription ${this.id}: ${this.current} → ${next} is not a transition of its lifecycle`);
    }
    this.current = next;
  }
}
