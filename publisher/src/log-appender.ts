/**
 * One log's appends, as the SDK's log tails read them (docs/protocol.md §11):
 * `{ first, lines }`, `first` the 0-based number of `lines[0]`, every append
 * continuing where the previous one ended: never a gap, never a line twice.
 */
import type { PublishableBody } from '@topicgate/shared';
import { PublishErrorCode } from './codes.js';
import { PublishError } from './errors.js';
import type { Send } from './resource.js';

/**
 * @example
 * const log = publisher.logAppender('logs.{id}.append', { id: 42 }, { fields: { build: 42 } });
 * await log.append(['compiling…', 'linking…']); // { build: 42, first: 0, lines: [...] }
 * await log.append(['done']);                    // { build: 42, first: 2, lines: ['done'] }
 */
export class LogAppender {
  readonly #send: Send;
  readonly #key: string;
  readonly #fields: Readonly<Record<string, unknown>>;
  #next: number;

  constructor(send: Send, key: string, fields: Readonly<Record<string, unknown>>, first = 0) {
    if (!Number.isSafeInteger(first) || first < 0) {
      throw new TypeError(`logAppender(): first must be the number of lines the log already has, an integer ≥ 0, got ${first}`);
    }
    if ('first' in fields || 'lines' in fields) throw new TypeError('logAppender(): `fields` must not hold `first` or `lines`: the appender sets them');
    this.#send = send;
    this.#key = key;
    this.#fields = fields;
    this.#next = first;
  }

  /** The number the next line gets (= the lines announced so far, counting from `first`). */
  get next(): number {
    return this.#next;
  }

  /**
   * Publishes `lines` as the next lines of the log. `first`, when given (your
   * log store's number for `lines[0]`), must be `next`: a mismatch means the
   * store and the announcements disagree, and tails would show it. No lines:
   * nothing is published.
   */
  append(lines: readonly string[], first?: number): Promise<void> {
    if (first !== undefined && first !== this.#next) {
      return Promise.reject(
        new PublishError(
          PublishErrorCode.OutOfSequence,
          `${this.#key}: these lines start at ${first}, but the lines announced so far end before ${this.#next}. ` +
            'Every append must continue the log exactly (a gap makes tails fetch it, an overlap is a bug in the caller): append every line through this appender, in order.',
        ),
      );
    }
    if (!Array.isArray(lines) || lines.some((line) => typeof line !== 'string')) {
      return Promise.reject(new TypeError(`${this.#key}: append() takes an array of strings`));
    }
    if (lines.length === 0) return Promise.resolve();
    const sent = this.#send(this.#key, { ...this.#fields, first: this.#next, lines: [...lines] });
    if (!sent.taken) return Promise.reject(sent.error);
    this.#next += lines.length;
    return sent.confirmed;
  }
}
