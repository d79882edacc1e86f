/**
 * What a live collection does with one message, decided from what it knows
 * about the message's item alone: no state is changed here, so every rule
 * can be read, and tested, as a row of a table.
 *
 * `apply` is the application's, and is asked only when the versions leave
 * the message a chance: hence two steps, `screen` before it and `decide`
 * after it.
 */
import { LiveReloadReason } from './codes.js';

/** What the collection knows about the item one message is about. */
export interface Knowledge<Item> {
  /** The item in hand, if any. */
  prev: Item | undefined;
  /** The last version applied for this id; kept after a deletion, as a tombstone. */
  known: number | undefined;
  /** When `prev` is undefined: the last version seen before a snapshot no longer had the item. */
  goneAt: number | undefined;
  /** The message's version, if it has one. */
  version: number | undefined;
  /** Held during a load: anything not newer than the snapshot is simply old, not a sign of a lost message. */
  replay: boolean;
  /** Messages are partial updates (an `apply` was given): each needs every version before it. */
  partial: boolean;
}

/** Before `apply`: the versions alone may settle the matter. */
export type Screening =
  | { do: 'ignore' }
  | { do: 'reload'; reason: LiveReloadReason }
  /** Ask `apply` for the next item, after reloading for `reload` when given. */
  | { do: 'read'; reload?: LiveReloadReason };

export type Decision<Item> =
  | { do: 'ignore' }
  | { do: 'reload'; reason: LiveReloadReason }
  /** A partial update about an item not in hand: it may have overtaken the message creating it. */
  | { do: 'orphan' }
  /** The deletion of an item a snapshot had already dropped: its tombstone gets a version. */
  | { do: 'tombstone' }
  /** `next` replaces the item; null removes it. */
  | { do: 'apply'; next: Item | null };

const IGNORE = { do: 'ignore' } as const;

export function screen(k: Knowledge<unknown>): Screening {
  if (k.goneAt !== undefined) {
    // Older than the deletion nobody told us about, or the item coming back: only `apply` can say.
    return k.version !== undefined && k.version <= k.goneAt ? IGNORE : { do: 'read' };
  }
  if (k.version === undefined || k.known === undefined) return { do: 'read' };
  if (k.version <= k.known) {
    // Equal: a duplicate. Lower on a live item: a regression, so what we hold is suspect.
    const regression = !k.replay && k.version < k.known && k.prev !== undefined;
    return regression ? { do: 'reload', reason: LiveReloadReason.VersionRegression } : IGNORE;
  }
  if (k.version > k.known + 1) {
    // A partial update needs the versions in between; a whole body does not.
    return k.partial
      ? { do: 'reload', reason: LiveReloadReason.VersionGap }
      : { do: 'read', reload: LiveReloadReason.VersionGap };
  }
  return { do: 'read' };
}

/** After `apply` made `next` of the message (undefined: ignore it, null: remove the item). */
export function decide<Item>(
  k: Knowledge<Item>,
  next: Item | null | undefined,
  isValidTransition?: (prev: Item, next: Item) => boolean,
): Decision<Item> {
  if (k.goneAt !== undefined) {
    if (next === null) return { do: 'tombstone' };
    return next === undefined ? IGNORE : { do: 'reload', reason: LiveReloadReason.Reappeared };
  }
  if (next === undefined) {
    return k.prev === undefined && k.version !== undefined && k.partial ? { do: 'orphan' } : IGNORE;
  }
  if (next !== null && k.prev !== undefined && isValidTransition !== undefined && !isValidTransition(k.prev, next)) {
    // Without versions a held message that does not follow the snapshot is most likely older than it.
    return k.replay ? IGNORE : { do: 'reload', reason: LiveReloadReason.InvalidTransition };
  }
  return { do: 'apply', next };
}
