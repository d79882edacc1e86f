/**
 * The end of a log, kept in line order from append messages of the shape
 * `{ first, lines }` (see `LogLines`).
 *
 * The window is a run of consecutive lines `[first, first + lines.length)`.
 * A message that overlaps its end extends it (the overlap, a duplicate, is
 * skipped); one that starts past the end waits in `pending` while the gap is
 * fetched over REST. After a resync the last lines are fetched again: if they
 * still connect, they extend the window, otherwise the window jumps to them.
 * One request for the tail or a gap is in flight at a time, retried with
 * backoff; `loadEarlier` runs its own alongside, and is not retried.
 */
import { ClientErrorCode, LogFetchReason } from './codes.js';
import { DEFAULTS, withDefaults } from './defaults.js';
import { Emitter } from './emitter.js';
import { describeError, TopicgateError } from './errors.js';
import { RetryingLoader } from './retrying-loader.js';
import type {
  LiveStatus,
  LogLines,
  LogLinesRequest,
  LogTailChange,
  LogTailEvents,
  LogTailInit,
  LogWindow,
  Message,
} from './types.js';
import { isObject } from './utils.js';

/** Whether `value` is a `LogLines`: a non-negative integer `first` and an array of strings. */
export function isLogLines(value: unknown): value is LogLines {
  if (!isObject(value)) return false;
  const { first, lines } = value;
  return (
    typeof first === 'number' &&
    Number.isSafeInteger(first) &&
    first >= 0 &&
    Array.isArray(lines) &&
    lines.every((line) => typeof line === 'string')
  );
}

type Fetch = 'tail' | 'fill';

/**
 * @example
 * const tail = new LogTail({
 *   source: client.source('logs.7.append'),
 *   load: async ({ from, limit }, signal) => (await fetch(linesUrl(7, from, limit), { signal })).json(),
 * });
 * tail.on('change', ({ kind, lines }) => paint(kind, lines));
 */
export class LogTail<M extends Message<string, unknown> = Message> extends Emitter<LogTailEvents> {
  readonly #load: (request: LogLinesRequest, signal: AbortSignal) => Promise<LogLines>;
  readonly #maxLines: number;
  readonly #tailLines: number;
  readonly #extract: (message: M) => LogLines | undefined;
  readonly #loader: RetryingLoader;

  #first = 0;
  #lines: string[] = [];
  /** `maxLines` plus whatever `loadEarlier` brought in. */
  #capacity: number;
  #loaded = false;
  /** Chunks that start past the end of the window, by `first`. */
  #pending: LogLines[] = [];
  #pendingLines = 0;
  #want: Fetch | undefined;
  /** Bumped when the window is replaced, so that an older `loadEarlier` answer is not prepended. */
  #generation = 0;
  #earlier: Promise<number> | undefined;
  /** Where the last gap fill started, so that its retries are not announced as new gaps. */
  #lastFillFrom: number | undefined;
  #earlierAbort: AbortController | undefined;
  #status: LiveStatus = 'subscribing';
  #snapshot: LogWindow | undefined;
  #closed = false;
  readonly #stop: () => void;

  constructor(options: LogTailInit<M>) {
    super();
    const init = withDefaults(options, DEFAULTS.logTail);
    this.#load = init.load;
    this.#maxLines = Math.max(1, init.maxLines);
    this.#tailLines = Math.max(1, Math.min(init.tailLines, this.#maxLines));
    this.#capacity = this.#maxLines;
    this.#extract = init.lines ?? ((message) => (isLogLines(message.body) ? message.body : undefined));
    this.#loader = new RetryingLoader(init.retryDelay, init.retryDelayMax);
    this.#stop = init.source.open({
      ready: () => this.#request('tail'),
      resync: (reason) => {
        // Before the first lines are in, the tail asked for is already the reload.
        if (this.#loaded) this.emit('reload', reason);
        this.#request('tail');
      },
      message: (message) => {
        const chunk = this.#extract(message);
        if (chunk !== undefined) this.#accept(chunk);
      },
      error: (error) => this.emit('error', error),
      end: () => this.close(),
    });
  }

  get status(): LiveStatus {
    return this.#status;
  }

  /** Whether the first lines have been loaded. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Number of the first line in the window. */
  get first(): number {
    return this.#first;
  }

  /** Number one past the last line in the window: where the next append goes. */
  get end(): number {
    return this.#first + this.#lines.length;
  }

  /** The lines in the window; `lines[i]` is line `first + i`. */
  get lines(): readonly string[] {
    return this.getSnapshot().lines;
  }

  /** Whether lines before the window exist (`loadEarlier` can fetch them). */
  get hasEarlier(): boolean {
    return this.#loaded && this.#first > 0;
  }

  /** The window, stable between changes (for React's `useSyncExternalStore`). */
  readonly getSnapshot = (): LogWindow => {
    this.#snapshot ??= { first: this.#first, lines: this.#lines.slice() };
    return this.#snapshot;
  };

  /** Calls `listener` after each change; returns a function that stops. Shaped for `useSyncExternalStore`. */
  readonly watch = (listener: () => void): (() => void) => this.on('change', () => listener());

  /**
   * Fetches up to `count` lines before the window and prepends them. The
   * window's size limit grows by as many lines (appends still drop the oldest
   * lines beyond it; a jump after a resync restores `maxLines`). Resolves to
   * the number of lines added: 0 when there is nothing before, or when the
   * window moved meanwhile. Concurrent calls share one request.
   */
  loadEarlier(count: number = this.#tailLines): Promise<number> {
    if (!this.#loaded || this.#first === 0 || this.#closed) return Promise.resolve(0);
    if (this.#earlier !== undefined) return this.#earlier;
    const to = this.#first;
    const from = Math.max(0, to - Math.max(1, Math.floor(count)));
    const generation = this.#generation;
    const abort = new AbortController();
    this.#earlierAbort = abort;
    this.#earlier = (async () => {
      try {
        const chunk = await this.#load({ from, limit: to - from }, abort.signal);
        if (this.#closed || generation !== this.#generation || this.#first !== to) return 0;
        if (!isLogLines(chunk)) throw new TypeError('load() must resolve to { first, lines }');
        if (chunk.first >= to || chunk.first + chunk.lines.length < to) return 0;
        const lines = chunk.lines.slice(0, to - chunk.first);
        this.#lines = lines.concat(this.#lines);
        this.#first = chunk.first;
        this.#capacity += lines.length;
        this.#changed({ kind: 'prepend', first: chunk.first, lines, dropped: 0 });
        return lines.length;
      } catch (error) {
        if (!this.#closed) this.emit('error', loadFailed(error));
        return 0;
      } finally {
        this.#earlier = undefined;
        this.#earlierAbort = undefined;
      }
    })();
    return this.#earlier;
  }

  /** Stops listening and fetching. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#loader.close();
    this.#earlierAbort?.abort();
    this.#pending = [];
    this.#stop();
    this.#setStatus('closed');
  }

  // -------------------------------------------------------------------------

  #accept(chunk: LogLines): void {
    if (this.#closed) return;
    if (!this.#loaded || chunk.first > this.end) {
      this.#addPending(chunk);
      if (this.#loaded) this.#requestGapFetch();
      return;
    }
    this.#append(chunk);
    this.#drainPending();
  }

  /** Extends the window with the part of `chunk` past its end; `chunk` must start at or before the end. */
  #append(chunk: LogLines): void {
    const end = this.end;
    const skip = end - chunk.first;
    if (skip >= chunk.lines.length) return;
    const added = chunk.lines.slice(skip);
    for (const line of added) this.#lines.push(line);
    const dropped = Math.max(0, this.#lines.length - this.#capacity);
    if (dropped > 0) {
      this.#lines.splice(0, dropped);
      this.#first += dropped;
    }
    this.#changed({ kind: 'append', first: end, lines: added, dropped });
  }

  #reset(chunk: LogLines): void {
    const dropped = this.#lines.length;
    this.#capacity = this.#maxLines;
    const lines = chunk.lines.slice(Math.max(0, chunk.lines.length - this.#capacity));
    this.#first = chunk.first + (chunk.lines.length - lines.length);
    this.#lines = lines;
    this.#generation++;
    this.#loaded = true;
    this.#changed({ kind: 'reset', first: this.#first, lines: lines.slice(), dropped });
  }

  #addPending(chunk: LogLines): void {
    const chunkEnd = chunk.first + chunk.lines.length;
    if (chunk.lines.length === 0 || (this.#loaded && chunkEnd <= this.end)) return;
    let i = this.#pending.length;
    while (i > 0 && this.#pending[i - 1]!.first > chunk.first) i--;
    this.#pending.splice(i, 0, chunk);
    this.#pendingLines += chunk.lines.length;
    // Far more than a window ahead, the oldest pending lines would be dropped on arrival anyway.
    while (this.#pendingLines > 2 * this.#capacity && this.#pending.length > 1) {
      this.#pendingLines -= this.#pending.shift()!.lines.length;
    }
  }

  #drainPending(): void {
    while (this.#pending.length > 0 && this.#pending[0]!.first <= this.end) {
      const chunk = this.#pending.shift()!;
      this.#pendingLines -= chunk.lines.length;
      this.#append(chunk);
    }
  }

  #requestGapFetch(): void {
    const next = this.#pending[0];
    if (next === undefined) return;
    const last = this.#pending.reduce((max, c) => Math.max(max, c.first + c.lines.length), 0);
    // A fill that large would be dropped from the window again: jump to the tail instead.
    const kind = last - this.end > this.#capacity ? 'tail' : 'fill';
    if (kind === 'tail' && this.#want !== 'tail') this.emit('reload', LogFetchReason.LineGap);
    this.#request(kind);
  }

  #request(kind: Fetch): void {
    if (this.#closed) return;
    if (this.#want !== 'tail') this.#want = kind;
    if (this.#loader.idle) this.#fetchNext();
  }

  #fetchNext(): void {
    const kind = this.#want;
    this.#want = undefined;
    let request: LogLinesRequest;
    if (kind === 'tail') {
      request = { limit: this.#tailLines };
    } else if (kind === 'fill' && this.#pending[0] !== undefined && this.#pending[0].first > this.end) {
      request = { from: this.end, limit: Math.min(this.#pending[0].first - this.end, this.#maxLines) };
      // Once per gap: a retry after a failed fill asks from the same line.
      if (this.#lastFillFrom !== request.from) this.emit('reload', LogFetchReason.LineGap);
      this.#lastFillFrom = request.from;
    } else {
      if (this.#loaded) this.#setStatus('live');
      return;
    }
    this.#setStatus('loading');
    this.#loader.start((signal) => this.#load(request, signal), {
      loaded: (chunk) => {
        if (isLogLines(chunk)) this.#onFetched(kind, chunk, request);
        else this.#onFetchFailed(kind, new TypeError('load() must resolve to { first, lines }'));
      },
      failed: (error) => this.#onFetchFailed(kind, error),
    });
  }

  #onFetched(kind: Fetch, chunk: LogLines, request: LogLinesRequest): void {
    // Only a fill asks from a given line; a tail asks for the last lines.
    const from = request.from;
    if (from === undefined) {
      if (!this.#loaded || chunk.first > this.end) this.#reset(chunk);
      else this.#append(chunk);
    } else {
      if (chunk.first > from || chunk.first + chunk.lines.length <= from) {
        // The REST API is behind the messages it should already hold: back off instead of asking again at once.
        this.#onFetchFailed(kind, new Error(`the REST API returned no lines from ${from}`));
        return;
      }
      // An answer that late messages made redundant meanwhile is no failure: it did have the lines.
      if (chunk.first <= this.end) this.#append(chunk);
    }
    this.#loader.succeeded();
    this.#dropStalePending();
    this.#drainPending();
    this.#requestGapFetch();
    // requestGapFetch may already have started the next request.
    if (this.#loader.idle) this.#fetchNext();
  }

  #onFetchFailed(kind: Fetch, error: unknown): void {
    if (this.#closed) return;
    this.emit('error', loadFailed(error));
    if (this.#want !== 'tail') this.#want = kind;
    this.#loader.retryLater(() => {
      if (!this.#closed && !this.#loader.inFlight) this.#fetchNext();
    });
  }

  /** After a jump, chunks wholly before the new end are duplicates. */
  #dropStalePending(): void {
    const end = this.end;
    this.#pending = this.#pending.filter((chunk) => {
      if (chunk.first + chunk.lines.length > end) return true;
      this.#pendingLines -= chunk.lines.length;
      return false;
    });
  }

  #changed(change: LogTailChange): void {
    this.#snapshot = undefined;
    this.emit('change', change);
  }

  #setStatus(status: LiveStatus): void {
    const previous = this.#status;
    if (previous === status) return;
    this.#status = status;
    this.emit('status', status, previous);
  }
}

function loadFailed(error: unknown): TopicgateError {
  return new TopicgateError(ClientErrorCode.LoadFailed, `loading log lines failed: ${describeError(error)}`, {
    cause: error,
  });
}
