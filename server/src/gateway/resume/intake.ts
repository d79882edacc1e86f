/**
 * The first deliveries of a resumed queue, held until the aligner has
 * decided which of them the client already has (alignment.ts); then the
 * skipped ones are handed over as already relayed (to be settled when the
 * client confirms them) and the rest in order.
 */
import { deliveryFingerprint } from '@topicgate/shared';
import type { HeldDelivery, MqMessage } from '../../mq/connector.js';
import { ResumeAligner, type Alignment, type ResumePosition } from './alignment.js';

/** The aligner needs the redelivered run, which the broker sends at once; past this the resume is given up. */
const DECISION_TIMEOUT_MS = 5_000;

export interface Arrived {
  message: MqMessage;
  held: HeldDelivery;
}

export class ResumeIntake {
  private readonly arrived: Arrived[] = [];
  private aligner: ResumeAligner | null = null;
  private settle: ((alignment: Alignment) => void) | null = null;
  private decided: Alignment | null = null;

  constructor(private readonly position: ResumePosition) {}

  push(arrival: Arrived): void {
    this.arrived.push(arrival);
    if (this.aligner && !this.decided) this.offer(arrival);
  }

  /** Consuming has begun with `backlog` deliveries waiting, at most `window` unsettled at a time: decide once enough of them are here. */
  decide(backlog: number, window: number): Promise<Alignment> {
    this.aligner = new ResumeAligner(this.position, backlog, window);
    return new Promise<Alignment>((resolve) => {
      const timer = setTimeout(() => this.conclude({ ok: false, why: `the queue did not deliver what it held in time (${this.aligner!.describe()})` }), DECISION_TIMEOUT_MS);
      this.settle = (alignment) => (clearTimeout(timer), resolve(alignment));
      const early = this.aligner!.decision();
      if (early) return this.conclude(early);
      for (const arrival of this.arrived) {
        if (this.decided) break;
        this.offer(arrival);
      }
    });
  }

  /** Everything that arrived, in order; the intake takes no more. */
  drain(): Arrived[] {
    return this.arrived.splice(0);
  }

  private offer(arrival: Arrived): void {
    const decision = this.aligner!.push({
      redelivered: arrival.held.redelivered,
      fingerprint: () => deliveryFingerprint(arrival.message.key, arrival.message.body),
    });
    if (decision) this.conclude(decision);
  }

  private conclude(alignment: Alignment): void {
    if (this.decided) return;
    this.decided = alignment;
    this.settle?.(alignment);
  }
}
