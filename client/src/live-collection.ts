/**
 * A collection kept equal to the REST API's, from a snapshot plus messages.
 *
 * The order of operations is what makes it correct (docs/protocol.md §14.3):
 * the source is subscribed before the snapshot is requested, so no change can
 * fall between the two; what arrives while the snapshot loads is held and then
 * applied only where it is newer than the snapshot. Whenever the messages can no longer be
 * trusted to describe every change (a version gap or regression, an invalid
 * transition, a resync, a reconnect) the snapshot is loaded again. Loads are
 * coalesced (one in flight, at most one queued) and retried with backoff.
 *
 * It knows nothing of sockets: it consumes a `MessageSource`, which the
 * client makes from patterns and tests fake.
 */
import { ClientErrorCode, LiveReloadReason, type SubscriptionResyncReason } from './codes.js';
import { DEFAULTS, withDefaults } from './defaults.js';
import { Emitter } from './emitter.js';
import { describeError, TopicgateError } from './errors.js';
import { decide, screen, type Knowledge } from './message-decision.js';
import { RetryingLoader } from './retrying-loader.js';
import type { ItemId, LiveCollectionInit, LiveEvents, LiveStatus, Message } from './types.js';
import { isObject } from './utils.js';

const MAX_TOMBSTONES = 10_000;
const MAX_ORPHAN_IDS = 1_000;
const MAX_ORPHANS_PER_ID = 100;
/** The tombstone of an id deleted before any version of it was seen: every version is newer. */
const NO_VERSION_SEEN = -Infinity;

function defaultId(value: unknown): ItemId | undefined {
  if (!isObject(value)) return undefined;
  const id = value['id'];
  return typeof id === 'string' || typeof id === 'number' ? id : undefined;
}

function defaultVersion(value: unknown): number | undefined {
  if (!isObject(value)) return undefined;
  const version = value['version'];
  return typeof version === 'number' && Number.isFinite(version) ? version : undefined;
}

/**
 * @example
 * const builds = new LiveCollection({
 *   source: client.source('builds.*.*'),
 *   load: async (signal) => (await fetch('/api/builds', { signal })).json(),
 * });
 * builds.on('change', (items) => render(items));
 * // React: useSyncExternalStore(builds.watch, builds.getSnapshot)
 */
export class LiveCollection<Item, M extends Message<string, unknown> = Message> extends Emitter<
  LiveEvents<readonly Item[]>
> {
  readonly #load: (signal: AbortSignal) => Promise<readonly Item[]>;
  readonly #id: (value: Item | M['body']) => ItemId | undefined;
  readonly #version: (value: Item | M['body']) => number | undefined;
  readonly #isValidTransition: ((prev: Item, next: Item) => boolean) | undefined;
  readonly #apply: ((prev: Item | undefined, message: M) => Item | null | undefined) | undefined;
  readonly #sort: ((a: Item, b: Item) => number) | undefined;
  readonly #maxHeld: number;
  readonly #loader: RetryingLoader;

  readonly #items = new Map<ItemId, Item>();
  /** Last version applied per id, kept after a removal so that late messages cannot resurrect it. */
  readonly #versions = new Map<ItemId, number>();
  /**
   * Partial updates for items not in hand, by id. An update can overtake the
   * message that creates its item; it waits here until that one arrives, or
   * the next snapshot makes it moot.
   */
  readonly #orphans = new Map<ItemId, M[]>();
  /**
   * Ids a snapshot no longer had, with the last version seen: deleted at some
   * later version nobody told us. An update about one is either older than
   * the deletion or the item coming back; only a snapshot can say which.
   */
  readonly #gone = new Map<ItemId, number>();
  /** Messages received since the current load started; null when no load is pending. */
  #held: M[] | null = null;
  /** From the start of a load until its snapshot and held messages are applied, replay included. */
  #loading = false;
  #queued = false;
  #loaded = false;
  #closed = false;
  #status: LiveStatus = 'subscribing';
  #snapshot: readonly Item[] | undefined;
  #dirty = false;
  #toldWithoutId = false;
  #notifyScheduled = false;
  readonly #stop: () => void;

  constructor(options: LiveCollectionInit<Item, M>) {
    super();
    const init = withDefaults(options, DEFAULTS.liveCollection);
    this.#load = init.load;
    this.#id = init.id ?? defaultId;
    this.#version = init.version ?? defaultVersion;
    this.#isValidTransition = init.isValidTransition;
    this.#apply = init.apply;
    this.#sort = init.sort;
    this.#maxHeld = init.maxHeld;
    this.#loader = new RetryingLoader(init.retryDelay, init.retryDelayMax);
    this.#stop = init.source.open({
      ready: () => this.#reload(),
      message: (message) => this.#onMessage(message),
      resync: (reason) => this.#reload(reason),
      error: (error) => this.emit('error', error),
      end: () => this.close(),
    });
  }

  /** 'subscribing', 'loading' (first load, reloads and their retries), 'live' or 'closed'. */
  get status(): LiveStatus {
    return this.#status;
  }

  /** Whether a snapshot has been applied, i.e. `items` means something. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** The items, ordered by `sort`; the same array until the next change. */
  get items(): readonly Item[] {
    return this.getSnapshot();
  }

  /** One item by id. */
  get(id: ItemId): Item | undefined {
    return this.#items.get(id);
  }

  /** The items, as a stable array (for React's `useSyncExternalStore`). */
  readonly getSnapshot = (): readonly Item[] => {
    if (this.#snapshot === undefined) {
      const items = [...this.#items.values()];
      if (this.#sort !== undefined) items.sort(this.#sort);
      this.#snapshot = items;
    }
    return this.#snapshot;
  };

  /** Calls `listener` after each change; returns a function that stops. Shaped for `useSyncExternalStore`. */
  readonly watch = (listener: () => void): (() => void) => this.on('change', () => listener());

  /** Loads the snapshot again (coalesced with any load under way); before the source is ready the first load is still to come. */
  reload(): void {
    if (this.#status === 'subscribing') return;
    this.#reload(LiveReloadReason.Requested);
  }

  /** Stops listening and loading. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#loader.close();
    this.#held = null;
    this.#stop();
    this.#setStatus('closed');
  }

  #onMessage(message: M): void {
    if (this.#closed) return;
    if (this.#held !== null) {
      if (this.#held.length >= this.#maxHeld) {
        // Cheaper to forget them and load a snapshot taken after this point.
        this.#held.length = 0;
        if (this.#loading) {
          this.#queued = true;
          this.emit('reload', LiveReloadReason.HeldOverflow);
        }
      }
      this.#held.push(message);
      return;
    }
    if (!this.#loaded) return;
    this.#applyMessage(message, false);
    this.#notify();
  }

  /** Loads the snapshot, or loads it again for `reason` (none: the first load, once the source is ready). */
  #reload(reason?: SubscriptionResyncReason | LiveReloadReason): void {
    if (this.#closed) return;
    if (reason !== undefined) this.emit('reload', reason);
    if (this.#loading) {
      // The load in flight may have read the state before whatever prompted this.
      this.#queued = true;
      return;
    }
    // A retry is scheduled: it loads after this point, and the backoff protects the REST API.
    if (this.#loader.retryPending) return;
    this.#startLoad();
  }

  #startLoad(): void {
    this.#loading = true;
    this.#queued = false;
    // What arrived before this request is in the snapshot it reads. Keeping it
    // (held through a failed attempt) could replay an update over a snapshot
    // taken after that row's deletion, whose message a resync says was lost.
    this.#held = [];
    this.#setStatus('loading');
    this.#loader.start((signal) => this.#load(signal), {
      loaded: (snapshot) => {
        if (Array.isArray(snapshot)) this.#onSnapshot(snapshot);
        else this.#onLoadFailed(new TypeError('load() must resolve to an array of items'));
      },
      failed: (error) => this.#onLoadFailed(error),
    });
  }

  #onSnapshot(snapshot: readonly Item[]): void {
    this.#loader.succeeded();
    const before = [...this.#items.keys()];
    this.#items.clear();
    this.#orphans.clear();
    let withoutId = 0;
    for (const item of snapshot) {
      const id = this.#id(item);
      if (id === undefined) {
        withoutId++;
        continue;
      }
      this.#items.set(id, item);
      this.#gone.delete(id);
      const version = this.#version(item);
      if (version !== undefined) this.#versions.set(id, version);
    }
    for (const id of before) {
      if (this.#items.has(id)) continue;
      this.#gone.set(id, this.#versions.get(id) ?? NO_VERSION_SEEN);
      this.#versions.delete(id);
    }
    if (withoutId > 0 && !this.#toldWithoutId) {
      // Most likely an API that names its ids otherwise: say so once, not at every reload.
      this.#toldWithoutId = true;
      this.emit(
        'error',
        new TopicgateError(
          ClientErrorCode.ItemWithoutId,
          `${withoutId} of ${snapshot.length} items of the snapshot have no id and are left out; pass \`id: (item) => …\` if your items name it otherwise than \`id\``,
        ),
      );
    }
    // Tombstones (`versions` of deleted ids, `gone`) outlive the snapshot: a late,
    // reordered message about a deleted item must not bring it back.
    this.#forgetOldTombstones();
    const held = this.#held ?? [];
    this.#held = null;
    // Still `loading` while replaying, so that a reload asked for now queues behind this one.
    for (const message of this.#inVersionOrder(held)) this.#applyMessage(message, true);
    this.#loading = false;
    this.#loaded = true;
    this.#dirty = true;
    this.#snapshot = undefined;
    this.#notify();
    if (this.#queued) this.#startLoad();
    else this.#setStatus('live');
  }

  #onLoadFailed(error: unknown): void {
    this.#loading = false;
    this.emit(
      'error',
      new TopicgateError(ClientErrorCode.LoadFailed, `loading the snapshot failed: ${describeError(error)}`, {
        cause: error,
      }),
    );
    if (this.#closed) return;
    this.#loader.retryLater(() => {
      if (!this.#closed) this.#startLoad();
    });
  }

  /** Held messages may have arrived out of order; with versions on all of them, replay them in version order. */
  #inVersionOrder(held: readonly M[]): readonly M[] {
    if (held.length < 2) return held;
    const versions = held.map((m) => this.#version(m.body));
    if (versions.some((v) => v === undefined)) return held;
    const order = held.map((_, i) => i);
    // Stable: equal versions (duplicates, or different items) keep their arrival order.
    order.sort((a, b) => versions[a]! - versions[b]! || a - b);
    return order.map((i) => held[i]!);
  }

  /**
   * Applies one message. `replay` is true for messages held during a load:
   * there, anything not newer than the snapshot is simply old, not a sign
   * that messages went missing.
   */
  #applyMessage(message: M, replay: boolean): void {
    const id = this.#id(message.body);
    if (id === undefined) return;
    const prev = this.#items.get(id);
    const knowledge: Knowledge<Item> = {
      prev,
      known: this.#versions.get(id),
      goneAt: prev === undefined ? this.#gone.get(id) : undefined,
      version: this.#version(message.body),
      replay,
      partial: this.#apply !== undefined,
    };
    const screening = screen(knowledge);
    if (screening.do === 'ignore') return;
    if (screening.do === 'reload') return this.#reload(screening.reason);
    if (screening.reload !== undefined) this.#reload(screening.reload);
    const next = this.#apply !== undefined ? this.#apply(prev, message) : (message.body as unknown as Item);
    const decision = decide(knowledge, next, this.#isValidTransition);
    switch (decision.do) {
      case 'ignore':
        return;
      case 'reload':
        return this.#reload(decision.reason);
      case 'orphan':
        return this.#keepOrphan(id, message);
      case 'tombstone':
        this.#gone.delete(id);
        if (knowledge.version !== undefined) this.#versions.set(id, knowledge.version);
        return;
      case 'apply':
        return this.#put(id, prev, decision.next, knowledge.version, replay);
    }
  }

  /** Replaces (or with null removes) the item `id`, whose version is `version` or else the new item's own. */
  #put(id: ItemId, prev: Item | undefined, next: Item | null, version: number | undefined, replay: boolean): void {
    const nextVersion = version ?? (next === null ? undefined : this.#version(next));
    if (nextVersion !== undefined) this.#versions.set(id, nextVersion);
    if (next === null) {
      if (!this.#items.delete(id)) return;
    } else {
      this.#items.set(id, next);
    }
    this.#dirty = true;
    this.#snapshot = undefined;
    if (prev === undefined && next !== null) this.#adoptOrphans(id, replay);
  }

  /**
   * @internal For tests: the rules the four maps and the load state keep
   * between calls, each broken one described. A property test that checks
   * them after every step says which rule broke, not only that the end
   * result is wrong.
   */
  _brokenInvariants(): string[] {
    const broken: string[] = [];
    for (const id of this.#items.keys()) {
      if (this.#gone.has(id)) broken.push(`item ${id} is both in hand and gone`);
      if (this.#orphans.has(id)) broken.push(`item ${id} is in hand yet has orphans waiting for it`);
    }
    if (this.#orphans.size > MAX_ORPHAN_IDS) broken.push(`${this.#orphans.size} ids have orphans`);
    for (const [id, list] of this.#orphans) {
      if (list.length > MAX_ORPHANS_PER_ID) broken.push(`item ${id} has ${list.length} orphans`);
    }
    if (this.#gone.size > MAX_TOMBSTONES) broken.push(`${this.#gone.size} gone ids are kept`);
    const loadPending = this.#loader.inFlight || this.#loader.retryPending;
    if ((this.#held !== null) !== loadPending) {
      broken.push(`messages are ${this.#held === null ? 'not ' : ''}held while a load is ${loadPending ? '' : 'not '}pending`);
    }
    if (this.#held !== null && this.#held.length > this.#maxHeld) broken.push(`${this.#held.length} messages held`);
    if (this.#loading !== this.#loader.inFlight) broken.push(`loading is ${this.#loading} with ${this.#loader.inFlight ? 'a' : 'no'} request in flight`);
    if (this.#status === 'live' && loadPending) broken.push('live while a load is pending');
    if (this.#snapshot !== undefined) {
      const inHand = new Set(this.#items.values());
      if (this.#snapshot.length !== inHand.size || this.#snapshot.some((item) => !inHand.has(item))) {
        broken.push('the snapshot array is not the items in hand');
      }
    }
    return broken;
  }

  #forgetOldTombstones(): void {
    let excess = this.#versions.size - this.#items.size - MAX_TOMBSTONES;
    // Map order is insertion order: the oldest tombstones go first.
    for (const id of this.#versions.keys()) {
      if (excess <= 0) break;
      if (this.#items.has(id)) continue;
      this.#versions.delete(id);
      excess--;
    }
    for (const id of this.#gone.keys()) {
      if (this.#gone.size <= MAX_TOMBSTONES) break;
      this.#gone.delete(id);
    }
  }

  #keepOrphan(id: ItemId, message: M): void {
    let list = this.#orphans.get(id);
    if (list === undefined) {
      // Bounded: ids that never get created (outside this collection's scope) must not pile up.
      if (this.#orphans.size >= MAX_ORPHAN_IDS) this.#orphans.delete(this.#orphans.keys().next().value!);
      this.#orphans.set(id, (list = []));
    }
    if (list.length < MAX_ORPHANS_PER_ID) list.push(message);
  }

  #adoptOrphans(id: ItemId, replay: boolean): void {
    const list = this.#orphans.get(id);
    if (list === undefined) return;
    this.#orphans.delete(id);
    for (const message of this.#inVersionOrder(list)) this.#applyMessage(message, replay);
  }

  /** One `change` per batch: every message of a delivery batch is applied before listeners run. */
  #notify(): void {
    if (!this.#dirty || this.#notifyScheduled) return;
    this.#notifyScheduled = true;
    queueMicrotask(() => {
      this.#notifyScheduled = false;
      if (!this.#dirty || this.#closed) return;
      this.#dirty = false;
      this.emit('change', this.getSnapshot());
    });
  }

  #setStatus(status: LiveStatus): void {
    const previous = this.#status;
    if (previous === status) return;
    this.#status = status;
    this.emit('status', status, previous);
  }
}
