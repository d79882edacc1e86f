import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LiveCollection, type Message, type TopicgateError } from '../src/index.js';
import { FakeRest, FakeSource, Network, quiesce } from './fake-source.js';
import { ticks } from './helpers.js';
import { opArbitrary, runCommon, value, type Op } from './schedules.js';

// ---------------------------------------------------------------------------
// The application: rows in a database, each change announced by a message.

interface Row {
  id: number;
  version: number;
  value: number;
}

/** Message bodies: whole rows, patches, deletions. */
interface Body {
  id: number;
  version: number;
  value?: number;
  created?: boolean;
  patch?: { value: number };
  deleted?: boolean;
}
type Msg = Message<string, Body>;

type Mode = 'whole' | 'whole+deletes' | 'patches';

class Database {
  readonly rows = new Map<number, Row>();
  #nextId = 1;

  constructor(readonly mode: Mode) {}

  create(value: number): Msg {
    const row = { id: this.#nextId++, version: 1, value };
    this.rows.set(row.id, row);
    const body = this.mode === 'patches' ? { ...row, created: true } : { ...row };
    return { key: `rows.${row.id}.created`, body, seq: 0 };
  }

  update(pick: number, value: number): Msg | undefined {
    const row = this.#pick(pick);
    if (row === undefined) return undefined;
    row.version++;
    row.value = value;
    const body = this.mode === 'patches' ? { id: row.id, version: row.version, patch: { value } } : { ...row };
    return { key: `rows.${row.id}.updated`, body, seq: 0 };
  }

  remove(pick: number): Msg | undefined {
    if (this.mode === 'whole') return undefined;
    const row = this.#pick(pick);
    if (row === undefined) return undefined;
    this.rows.delete(row.id);
    return { key: `rows.${row.id}.deleted`, body: { id: row.id, version: row.version + 1, deleted: true }, seq: 0 };
  }

  snapshot(): Row[] {
    return [...this.rows.values()].map((row) => ({ ...row }));
  }

  #pick(pick: number): Row | undefined {
    const rows = [...this.rows.values()];
    return rows.length === 0 ? undefined : rows[pick % rows.length];
  }
}

function applyFor(mode: Mode): ((prev: Row | undefined, message: Msg) => Row | null | undefined) | undefined {
  switch (mode) {
    case 'whole':
      return undefined;
    case 'whole+deletes':
      return (_prev, { body }) => (body.deleted ? null : { id: body.id, version: body.version, value: body.value! });
    case 'patches':
      return (prev, { body }) => {
        if (body.deleted) return null;
        if (body.created) return { id: body.id, version: body.version, value: body.value! };
        return prev === undefined ? undefined : { ...prev, version: body.version, value: body.patch!.value };
      };
  }
}

const byId = (a: { id: number }, b: { id: number }) => a.id - b.id;

/** `_brokenInvariants` is @internal: stripped from the declarations the tests compile against. */
function brokenInvariants(collection: LiveCollection<any, any>): string[] {
  return (collection as unknown as { _brokenInvariants(): string[] })._brokenInvariants();
}

const open: { close(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

async function collectionMatchesDatabase(mode: Mode, initial: number[], ops: Op[]): Promise<void> {
  const db = new Database(mode);
  for (const v of initial) db.create(v);
  const source = new FakeSource<Msg>();
  const network = new Network(source, (m) => m.body.id);
  const rest = new FakeRest<void, Row[]>(() => db.snapshot());
  const apply = applyFor(mode);
  const collection = new LiveCollection<Row, Msg>({
    source,
    load: () => rest.handler(undefined, new AbortController().signal),
    ...(apply === undefined ? {} : { apply }),
    sort: byId,
    retryDelay: 1,
    retryDelayMax: 2,
  });
  collection.on('error', () => {});
  open.push(collection);
  source.ready();

  for (const [step, op] of ops.entries()) {
    if (op.t === 'create') network.publish(db.create(op.value));
    else if (op.t === 'update') {
      const m = db.update(op.pick, op.value);
      if (m) network.publish(m);
    } else if (op.t === 'delete') {
      const m = db.remove(op.pick);
      if (m) network.publish(m);
    } else await runCommon(op, network, rest as FakeRest<unknown, unknown>);
    // Read through `items` first: a stale snapshot array is one of the broken rules it would show.
    void collection.items;
    expect(brokenInvariants(collection), `after step ${step} (${op.t})`).toEqual([]);
  }
  await quiesce(network as Network<unknown>, [rest], () => collection.status === 'live');
  expect(brokenInvariants(collection)).toEqual([]);
  expect([...collection.items]).toEqual(db.snapshot().sort(byId));
}

describe('live collection under adversarial delivery', () => {
  // Every schedule shuffles, duplicates and drops messages, resyncs at any
  // point (during loads too) and fails REST calls; afterwards the collection
  // must equal the database. (See `Network` for the one loss it cannot repair.)
  const schedules = fc.tuple(fc.array(value, { maxLength: 5 }), fc.array(opArbitrary, { maxLength: 120 }));

  it('ends equal to the database with whole-row messages', async () => {
    await fc.assert(
      fc.asyncProperty(schedules, ([initial, ops]) => collectionMatchesDatabase('whole', initial, ops)),
      { numRuns: 250 },
    );
  });

  it('ends equal to the database with whole rows and deletions', async () => {
    await fc.assert(
      fc.asyncProperty(schedules, ([initial, ops]) => collectionMatchesDatabase('whole+deletes', initial, ops)),
      { numRuns: 250 },
    );
  });

  it('ends equal to the database with partial updates (patches need every version)', async () => {
    await fc.assert(
      fc.asyncProperty(schedules, ([initial, ops]) => collectionMatchesDatabase('patches', initial, ops)),
      { numRuns: 250 },
    );
  });
});

// ---------------------------------------------------------------------------
// The rules one at a time

function setup(mode: Mode = 'whole', initial: number[] = [10, 20], maxHeld?: number) {
  const db = new Database(mode);
  for (const v of initial) db.create(v);
  const source = new FakeSource<Msg>();
  const rest = new FakeRest<void, Row[]>(() => db.snapshot());
  const apply = applyFor(mode);
  const collection = new LiveCollection<Row, Msg>({
    source,
    load: () => rest.handler(undefined, new AbortController().signal),
    ...(apply === undefined ? {} : { apply }),
    sort: byId,
    retryDelay: 5,
    retryDelayMax: 10,
    ...(maxHeld === undefined ? {} : { maxHeld }),
  });
  const errors: TopicgateError[] = [];
  collection.on('error', (e) => errors.push(e));
  const reloads: string[] = [];
  collection.on('reload', (reason) => reloads.push(reason));
  open.push(collection);
  return { db, source, rest, collection, errors, reloads };
}

describe('live collection', () => {
  it('loads nothing before its subscription is live, then loads once', async () => {
    const { source, rest, collection, reloads } = setup();
    await ticks();
    expect(rest.calls).toBe(0);
    expect(collection.status).toBe('subscribing');
    source.ready();
    expect(rest.calls).toBe(1);
    expect(collection.status).toBe('loading');
    rest.respondAll();
    await ticks();
    expect(collection.status).toBe('live');
    expect(collection.items.map((r) => r.value)).toEqual([10, 20]);
    expect(reloads).toEqual([]); // the first load is not a reload
  });

  it('holds messages that arrive during the load and applies only those newer than the snapshot', async () => {
    const { db, source, rest, collection } = setup();
    source.ready();
    const older = db.update(0, 11)!; // row 1 v2, in the snapshot
    rest.readNow(0);
    const newer = db.update(0, 12)!; // row 1 v3, after the snapshot
    const created = db.create(30);
    source.push(newer);
    source.push(older); // overtaken: arrives last
    source.push(created);
    expect(collection.items).toEqual([]);
    rest.respondAll();
    await ticks();
    expect([...collection.items]).toEqual(db.snapshot());
    expect(rest.calls).toBe(1);
  });

  it('ignores duplicates without reloading', async () => {
    const { db, source, rest, collection } = setup();
    source.ready();
    rest.respondAll();
    await ticks();
    const m = db.update(1, 21)!;
    source.push(m);
    source.push(m);
    source.push(m);
    await ticks();
    expect(collection.get(2)).toEqual({ id: 2, version: 2, value: 21 });
    expect(rest.calls).toBe(1);
  });

  it('reloads on a version gap', async () => {
    const { db, source, rest, collection, reloads } = setup('patches');
    source.ready();
    rest.respondAll();
    await ticks();
    db.update(0, 11); // lost
    source.push(db.update(0, 12)!);
    expect(rest.calls).toBe(2);
    expect(reloads).toEqual(['version_gap']);
    // A patch on a stale base is not applied: the row stays as it was until the reload.
    expect(collection.get(1)?.value).toBe(10);
    rest.respondAll();
    await ticks();
    expect(collection.get(1)).toEqual({ id: 1, version: 3, value: 12 });
  });

  it('reloads on a version regression of a live item', async () => {
    const { db, source, rest, reloads } = setup();
    source.ready();
    rest.respondAll();
    await ticks();
    const v2 = db.update(0, 11)!;
    const v3 = db.update(0, 12)!;
    source.push(v2);
    source.push(v3);
    expect(rest.calls).toBe(1);
    source.push({ ...v2, body: { ...v2.body, version: 1 } });
    expect(rest.calls).toBe(2);
    expect(reloads).toEqual(['version_regression']);
  });

  it('coalesces reloads: one in flight, at most one queued', async () => {
    const { db, source, rest, collection, reloads } = setup();
    source.ready();
    for (let i = 0; i < 5; i++) source.resync();
    expect(rest.calls).toBe(1);
    // Every reason is told, even those that share a load.
    expect(reloads).toEqual(['overflow', 'overflow', 'overflow', 'overflow', 'overflow']);
    rest.respond(0);
    await ticks();
    // The queued one starts once the first is in.
    expect(rest.calls).toBe(2);
    db.update(0, 99);
    rest.respondAll();
    await ticks();
    expect(rest.calls).toBe(2);
    expect(collection.get(1)?.value).toBe(99);
  });

  it('reloads after a resync that comes during a load, and ends with the newer state', async () => {
    const { db, source, rest, collection } = setup();
    source.ready();
    rest.readNow(0); // the first snapshot is read...
    db.update(0, 50); // ...then a change whose message is lost
    source.resync('overflow');
    rest.respond(0);
    await ticks();
    expect(rest.calls).toBe(2);
    rest.respondAll();
    await ticks();
    expect(collection.get(1)?.value).toBe(50);
    expect(collection.status).toBe('live');
  });

  it('tells why it reloads: held messages past maxHeld, and reload() itself', async () => {
    const { db, source, rest, collection, reloads } = setup('whole', [10, 20], 3);
    source.ready();
    for (let i = 0; i < 4; i++) source.push(db.update(0, 30 + i)!);
    expect(reloads).toEqual(['held_overflow']);
    rest.respond(0);
    await ticks();
    expect(rest.calls).toBe(2); // the held messages were dropped: a later snapshot replaces them
    rest.respondAll();
    await ticks();
    expect(collection.get(1)?.value).toBe(33);
    collection.reload();
    expect(reloads).toEqual(['held_overflow', 'requested']);
    expect(rest.calls).toBe(3);
  });

  it('says once, as an error, that snapshot items without an id are left out', async () => {
    const source = new FakeSource<Msg>();
    const rows = [{ buildid: 1, version: 1 }, { buildid: 2, version: 1 }];
    const rest = new FakeRest<void, unknown[]>(() => rows);
    const collection = new LiveCollection<unknown, Msg>({ source, load: () => rest.handler(undefined, new AbortController().signal) });
    open.push(collection);
    const errors: TopicgateError[] = [];
    collection.on('error', (e) => errors.push(e));
    source.ready();
    rest.respondAll();
    await ticks();
    collection.reload();
    rest.respondAll();
    await ticks();
    expect(collection.items).toEqual([]);
    expect(errors.map((e) => e.code)).toEqual(['item_without_id']);
    expect(errors[0]!.message).toMatch(/2 of 2 items .* no id .*`id: \(item\) =>/);
  });

  it('backs off when REST fails, reports load_failed, and recovers', async () => {
    vi.useFakeTimers();
    // No jitter: each delay is its cap, 5 ms (retryDelay) then 10 ms (retryDelayMax).
    vi.spyOn(Math, 'random').mockReturnValue(1);
    const { source, rest, collection, errors } = setup();
    source.ready();
    rest.fail(0);
    await ticks(1);
    expect(errors.map((e) => e.code)).toEqual(['load_failed']);
    expect(rest.calls).toBe(1);
    expect(collection.status).toBe('loading');
    // A resync during the backoff does not bypass it.
    source.resync();
    expect(rest.calls).toBe(1);
    await vi.advanceTimersByTimeAsync(4);
    expect(rest.calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(rest.calls).toBe(2);
    rest.fail(0);
    await vi.advanceTimersByTimeAsync(9);
    expect(rest.calls).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(rest.calls).toBe(3);
    rest.respondAll();
    await ticks();
    expect(collection.status).toBe('live');
    expect(collection.items).toHaveLength(2);
  });

  it('forgets what it held during a failed load: the retry reads a snapshot later than all of it', async () => {
    // Found by the property test (seed 1017890687): the update was held, the load
    // failed, the deletion was lost (resync) and the held update then brought
    // the deleted row back over the retry's snapshot.
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(1);
    const { db, source, rest, collection } = setup('whole+deletes', [10]);
    source.ready();
    source.push(db.update(0, 11)!);
    db.remove(0); // its message is lost...
    rest.fail(0);
    await ticks(1);
    source.resync('overflow'); // ...and the loss is told
    await vi.advanceTimersByTimeAsync(5);
    expect(rest.calls).toBe(2);
    rest.respondAll();
    await ticks();
    expect(collection.status).toBe('live');
    expect(collection.items).toEqual([]);
  });

  it('emits one change per batch of messages', async () => {
    const { db, source, rest, collection } = setup();
    source.ready();
    rest.respondAll();
    await ticks();
    const changes: (readonly Row[])[] = [];
    collection.on('change', (items) => changes.push(items));
    source.push(db.update(0, 1)!);
    source.push(db.update(1, 2)!);
    source.push(db.create(3));
    await ticks();
    expect(changes).toHaveLength(1);
    expect(changes[0]).toBe(collection.getSnapshot());
    expect(changes[0]!.map((r) => r.value)).toEqual([1, 2, 3]);
  });

  it('keeps the same snapshot array until something changes', async () => {
    const { source, rest, collection } = setup();
    source.ready();
    rest.respondAll();
    await ticks();
    const first = collection.getSnapshot();
    expect(collection.getSnapshot()).toBe(first);
    let notified = 0;
    const stop = collection.watch(() => notified++);
    source.resync();
    rest.respondAll();
    await ticks();
    expect(notified).toBe(1);
    stop();
  });

  it('applies a patch that overtook the creation of its row once the creation arrives', async () => {
    const { db, source, rest, collection } = setup('patches', []);
    source.ready();
    rest.respondAll();
    await ticks();
    const created = db.create(1);
    const patched = db.update(0, 2)!;
    source.push(patched);
    source.push(created);
    await ticks();
    expect([...collection.items]).toEqual(db.snapshot());
    expect(rest.calls).toBe(1);
  });

  it('does not bring back a deleted row when a reordered older message arrives after a reload', async () => {
    const { db, source, rest, collection } = setup('whole+deletes', []);
    source.ready();
    rest.respondAll();
    await ticks();
    const created = db.create(1);
    const deleted = db.remove(0)!;
    source.push(deleted);
    source.resync();
    rest.respondAll();
    await ticks();
    source.push(created);
    await ticks();
    expect(collection.items).toEqual([]);
  });

  it('reloads when a row that vanished from a snapshot comes back with a newer version', async () => {
    const { db, source, rest, collection, reloads } = setup('whole+deletes', [1]);
    source.ready();
    rest.respondAll();
    await ticks();
    const updated = db.update(0, 2)!; // v2, held back by the network
    db.remove(0); // its message is lost; the resync says so
    source.resync('seq_gap');
    rest.respondAll();
    await ticks();
    expect(collection.items).toEqual([]);
    source.push(updated); // newer than anything seen, about a row the snapshot no longer has
    expect(reloads).toEqual(['seq_gap', 'reappeared']);
    rest.respondAll();
    await ticks();
    expect(collection.items).toEqual([]);
  });

  it('does not bring back a row that vanished from a snapshot when an older update arrives late', async () => {
    const { db, source, rest, collection } = setup('whole+deletes', [1]);
    source.ready();
    rest.respondAll();
    await ticks();
    const updated = db.update(0, 2)!; // v2
    const deleted = db.remove(0)!; // v3: overtakes v2, and is a gap, so a reload starts
    source.push(deleted);
    expect(rest.calls).toBe(2);
    source.push(updated); // held; older than the snapshot, which no longer has the row
    rest.respondAll();
    await ticks();
    rest.respondAll();
    await ticks();
    expect(collection.items).toEqual([]);
  });

  it('stops the source and abandons the load on close', async () => {
    const { source, rest, collection } = setup();
    source.ready();
    collection.close();
    expect(source.closed).toBe(1);
    expect(rest.pending[0]!.signal.aborted).toBe(false); // the test's own signal; the collection's is internal
    rest.respondAll();
    await ticks();
    expect(collection.items).toEqual([]);
    expect(collection.status).toBe('closed');
  });
});
