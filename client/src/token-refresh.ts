/**
 * The client's token: which one to offer, fetching a new one through
 * `getToken` (one call at a time), and renewing it on the open socket with
 * `refresh` shortly before it expires, retrying with backoff when that fails.
 * The socket itself stays with the client; this module sees it through `TokenLink`.
 */
import { ErrorCode, type RefreshAck } from '@topicgate/shared';
import { ClientErrorCode } from './codes.js';
import { DEFAULTS } from './defaults.js';
import { describeError, TopicgateError } from './errors.js';
import { Backoff, isObject, MAX_TIMER_DELAY, readTokenTimes, refreshDelay } from './utils.js';

/** Longest wait for `getToken()`; past it the attempt fails as if it had rejected, and is retried with backoff. */
const GET_TOKEN_TIMEOUT_MS = 30_000;

/** What token refresh needs from the client and its socket. */
export interface TokenLink {
  /** Changes whenever the socket goes away: an answer for an older socket is ignored. */
  epoch(): number;
  connected(): boolean;
  /** Sends `refresh` with `token` on the current socket. */
  sendRefresh(token: string, ack: (ack: RefreshAck) => void): void;
  error(error: TopicgateError): void;
}

export interface TokenRefreshOptions {
  token?: string | undefined;
  getToken?: (() => Promise<string>) | undefined;
  refreshBefore: number;
}

export class TokenRefresh {
  readonly #getToken: (() => Promise<string>) | undefined;
  readonly #refreshBefore: number;
  readonly #link: TokenLink;
  readonly #backoff = new Backoff(DEFAULTS.tokenRefreshRetry.retryDelay, DEFAULTS.tokenRefreshRetry.retryDelayMax);
  #token: string | undefined;
  #obtainedAt: number;
  #fetch: Promise<string> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: TokenRefreshOptions, link: TokenLink) {
    this.#getToken = options.getToken;
    this.#refreshBefore = options.refreshBefore;
    this.#link = link;
    this.#token = options.token;
    // A token handed over at creation may have been minted long before (embedded in the page):
    // count its lifetime from `iat` when that is earlier, or the gateway's `exp` comes first.
    const given = options.token === undefined ? undefined : readTokenTimes(options.token);
    this.#obtainedAt = Math.min(Date.now(), given?.iat !== undefined ? given.iat * 1000 : Infinity);
  }

  /** The token in hand, if any. */
  get token(): string | undefined {
    return this.#token;
  }

  /** Whether a new token can be fetched at all. */
  get renewable(): boolean {
    return this.#getToken !== undefined;
  }

  /** The gateway will not take the token in hand: the next handshake or refresh fetches another. */
  drop(): void {
    this.#token = undefined;
  }

  /** Due for renewal by the refresh schedule: no point handshaking with a token about to be replaced. */
  expiresSoon(token: string): boolean {
    const times = readTokenTimes(token);
    if (times === undefined) return false;
    const obtainedAt = this.#obtainedAt;
    return Date.now() >= obtainedAt + refreshDelay(times, obtainedAt, obtainedAt, this.#refreshBefore);
  }

  /** One `getToken()` call at a time: a refresh and a reconnect may both want one. */
  fetch(): Promise<string> {
    const getToken = this.#getToken;
    if (getToken === undefined) return Promise.reject(new Error('no getToken'));
    this.#fetch ??= (async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        // A getToken() that never settles would hold every handshake and refresh hostage.
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`it did not settle within ${GET_TOKEN_TIMEOUT_MS / 1000} s`)), GET_TOKEN_TIMEOUT_MS);
        });
        const token = await Promise.race([getToken(), timeout]);
        if (typeof token !== 'string' || token === '') throw new TypeError('getToken() must resolve to a non-empty string');
        this.#token = token;
        this.#obtainedAt = Date.now();
        return token;
      } catch (error) {
        this.#link.error(
          new TopicgateError(ClientErrorCode.TokenUnavailable, `getToken() failed: ${describeError(error)}`, { cause: error }),
        );
        throw error;
      } finally {
        clearTimeout(timer);
        this.#fetch = undefined;
      }
    })();
    return this.#fetch;
  }

  /** Plans the next refresh: after `delay`, or when the token in hand falls due. */
  schedule(delay?: number): void {
    this.stop();
    if (this.#getToken === undefined) return;
    if (delay === undefined) {
      const token = this.#token;
      if (token === undefined) return;
      const times = readTokenTimes(token);
      if (times === undefined) return;
      delay = refreshDelay(times, this.#obtainedAt, Date.now(), this.#refreshBefore);
    }
    this.#timer = setTimeout(() => void this.#refresh(), Math.min(delay, MAX_TIMER_DELAY));
  }

  /** Cancels the planned refresh (the socket went away; the next handshake carries a token). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #dueNow(): boolean {
    const times = this.#token === undefined ? undefined : readTokenTimes(this.#token);
    return times !== undefined && refreshDelay(times, this.#obtainedAt, Date.now(), this.#refreshBefore) === 0;
  }

  async #refresh(): Promise<void> {
    this.#timer = undefined;
    const link = this.#link;
    const epoch = link.epoch();
    let token: string;
    try {
      token = await this.fetch();
    } catch {
      if (epoch === link.epoch() && link.connected()) this.schedule(this.#backoff.next());
      return;
    }
    // Not connected: the next handshake carries the new token.
    if (epoch !== link.epoch() || !link.connected()) return;
    link.sendRefresh(token, (ack) => {
      if (epoch !== link.epoch()) return;
      if (isObject(ack) && ack.ok === true) {
        // A fresh token already due (no `iat`, and this browser's clock runs ahead of its exp)
        // would be refreshed again at once, forever: back off instead.
        if (this.#dueNow()) return this.schedule(this.#backoff.next());
        this.#backoff.reset();
        this.schedule();
        return;
      }
      const error = isObject(ack) && ack.ok === false && isObject(ack.error) ? ack.error : undefined;
      link.error(new TopicgateError(error?.code ?? ErrorCode.Unauthorized, error?.message ?? 'token refresh refused'));
      // Until the old token expires the gateway keeps the socket; try a fresh token before then.
      this.#token = undefined;
      this.schedule(this.#backoff.next());
    });
  }
}
