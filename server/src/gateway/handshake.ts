/**
 * What the handshake needs to hold against a hostile client: per-subject
 * limits reserved where they are checked, refusals logged at a
 * bounded rate with what the client sent cut short, and a connection closed
 * after it has failed the handshake a few times.
 */
import type { Logger } from '../log.js';
import { RateLimit } from './rate-limit.js';

/**
 * A per-subject count with a ceiling (connections, subscriptions). A unit is
 * taken where it is checked, so requests racing each other (several CONNECT
 * packets in one polling request, handshakes awaiting an asynchronous key
 * lookup, subscribes in flight) cannot all pass a check made before any of
 * them counted. Without a subject (a token without `sub`, or auth off) there
 * is nobody to count against: no limit.
 */
export class PerSubjectLimit {
  private readonly held = new Map<string, number>();

  /** `max` 0: no limit. */
  constructor(readonly max: number) {}

  /** A release function (idempotent), or `null` when the subject is at its limit. */
  reserve(subject: string | undefined): (() => void) | null {
    if (subject === undefined || this.max === 0) return () => undefined;
    const count = this.held.get(subject) ?? 0;
    if (count >= this.max) return null;
    this.held.set(subject, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(subject) ?? 1) - 1;
      if (left > 0) this.held.set(subject, left);
      else this.held.delete(subject);
    };
  }

  count(subject: string): number {
    return this.held.get(subject) ?? 0;
  }
}

/** The longest text a client chose that is copied into a log line or an error message. */
export const MAX_ECHO = 120;

/** Cuts a client-chosen text short, saying so. */
export function truncate(text: string, max = MAX_ECHO): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * Refused handshakes are logged at most `perSecond` a second; the rest are
 * counted and reported in the next line that is written, so a flood of bad
 * tokens costs a few log lines, not one per attempt.
 */
export class RefusalLog {
  private readonly rate: RateLimit;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    perSecond = 5,
  ) {
    this.rate = new RateLimit(perSecond);
  }

  refused(fields: { address: string; code: string; reason: string }): void {
    if (!this.rate.take()) {
      this.suppressed++;
      return;
    }
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.log.info({ ...fields, ...(suppressed > 0 && { suppressed }) }, suppressed > 0 ? `refused a handshake (and ${suppressed} more not logged)` : 'refused a handshake');
  }
}
