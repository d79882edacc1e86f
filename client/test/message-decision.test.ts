/**
 * The rules a live collection applies to each message, one row each: what the
 * versions alone settle (`screen`), then what the item `apply` made of the
 * message settles (`decide`).
 */
import { describe, expect, it } from 'vitest';
import { decide, screen, type Knowledge } from '../src/message-decision.js';

interface Item {
  step: number;
}

const item = (step: number): Item => ({ step });
const forward = (prev: Item, next: Item) => next.step >= prev.step;

/** A live item at version 3, messages with whole bodies, not a replay. */
function knowing(overrides: Partial<Knowledge<Item>>): Knowledge<Item> {
  return { prev: item(3), known: 3, goneAt: undefined, version: 4, replay: false, partial: false, ...overrides };
}

describe('before apply: what the versions settle', () => {
  it.each([
    ['the next version is read', {}, { do: 'read' }],
    ['a duplicate is ignored', { version: 3 }, { do: 'ignore' }],
    ['an older version of a live item reloads: what is shown may be stale', { version: 2 }, { do: 'reload', reason: 'version_regression' }],
    ['an older version replayed after a load is just older than the snapshot', { version: 2, replay: true }, { do: 'ignore' }],
    ['an older version of a deleted item (its tombstone) is ignored', { version: 2, prev: undefined }, { do: 'ignore' }],
    ['a skipped version with a whole body reloads and is still read', { version: 6 }, { do: 'read', reload: 'version_gap' }],
    ['a skipped version of a partial update reloads and is not applied', { version: 6, partial: true }, { do: 'reload', reason: 'version_gap' }],
    ['a skipped version held during a load still reloads', { version: 6, partial: true, replay: true }, { do: 'reload', reason: 'version_gap' }],
    ['a message without a version is read', { version: undefined }, { do: 'read' }],
    ['a message about an item never seen is read', { prev: undefined, known: undefined, version: 9 }, { do: 'read' }],
    ['about an item a snapshot dropped: not newer than when it went, ignored', { prev: undefined, goneAt: 5, version: 5 }, { do: 'ignore' }],
    ['about an item a snapshot dropped: newer, read (a deletion or a comeback)', { prev: undefined, goneAt: 5, version: 6 }, { do: 'read' }],
    ['about an item a snapshot dropped, without a version: read', { prev: undefined, goneAt: 5, version: undefined }, { do: 'read' }],
  ] as const)('%s', (_, overrides, expected) => {
    expect(screen(knowing(overrides))).toEqual(expected);
  });
});

describe('after apply: what the next item settles', () => {
  it.each([
    ['a new item is applied', {}, item(4), { do: 'apply', next: item(4) }],
    ['a removal is applied', {}, null, { do: 'apply', next: null }],
    ['a message apply ignores is ignored', {}, undefined, { do: 'ignore' }],
    ['a partial update about an item not in hand waits for its creation', { prev: undefined, known: undefined, partial: true }, undefined, { do: 'orphan' }],
    ['an ignored whole body about an item not in hand is not kept', { prev: undefined, known: undefined }, undefined, { do: 'ignore' }],
    ['an ignored partial update without a version is not kept', { prev: undefined, known: undefined, version: undefined, partial: true }, undefined, { do: 'ignore' }],
    ['a transition the application refuses reloads', { version: undefined, known: undefined }, item(1), { do: 'reload', reason: 'invalid_transition' }],
    ['a refused transition replayed after a load is older than the snapshot', { version: undefined, known: undefined, replay: true }, item(1), { do: 'ignore' }],
    ['a valid transition is applied', { version: undefined, known: undefined }, item(5), { do: 'apply', next: item(5) }],
    ['a removal is never a refused transition', { version: undefined, known: undefined }, null, { do: 'apply', next: null }],
    ['a dropped item deleted: its tombstone gets a version', { prev: undefined, goneAt: 5, version: 6 }, null, { do: 'tombstone' }],
    ['a dropped item back with a newer version reloads: only a snapshot can say', { prev: undefined, goneAt: 5, version: 6 }, item(6), { do: 'reload', reason: 'reappeared' }],
    ['a dropped item with a message apply ignores is ignored', { prev: undefined, goneAt: 5, version: 6 }, undefined, { do: 'ignore' }],
  ] as const)('%s', (_, overrides, next, expected) => {
    expect(decide(knowing(overrides), next, forward)).toEqual(expected);
  });

  it('without isValidTransition every transition is applied', () => {
    expect(decide(knowing({ version: undefined, known: undefined }), item(1))).toEqual({ do: 'apply', next: item(1) });
  });
});
