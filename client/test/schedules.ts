/**
 * Adversarial schedules shared by the property tests of the live views:
 * database changes, a network that reorders, duplicates and drops, REST
 * calls answered or failed in any order, and ticks between them.
 */
import fc from 'fast-check';
import type { FakeRest, Network } from './fake-source.js';
import { ticks } from './helpers.js';

export type Op =
  | { t: 'create'; value: number }
  | { t: 'update'; pick: number; value: number }
  | { t: 'delete'; pick: number }
  | { t: 'deliver'; pick: number }
  | { t: 'duplicate'; pick: number }
  | { t: 'drop'; pick: number }
  | { t: 'resync' }
  | { t: 'read'; pick: number }
  | { t: 'respond'; pick: number }
  | { t: 'fail'; pick: number }
  | { t: 'tick' };

export const pick = fc.nat(1000);
export const value = fc.nat(99);
export const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('create' as const), value }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('update' as const), pick, value }), weight: 6 },
  { arbitrary: fc.record({ t: fc.constant('delete' as const), pick }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('deliver' as const), pick }), weight: 10 },
  { arbitrary: fc.record({ t: fc.constant('duplicate' as const), pick }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('drop' as const), pick }), weight: 1 },
  { arbitrary: fc.constant({ t: 'resync' as const }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('read' as const), pick }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('respond' as const), pick }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('fail' as const), pick }), weight: 1 },
  { arbitrary: fc.constant({ t: 'tick' as const }), weight: 2 },
);

/** Runs the network and REST parts of a schedule; returns a message to publish for database ops. */
export async function runCommon<M>(op: Op, network: Network<M>, rest: FakeRest<unknown, unknown>): Promise<void> {
  switch (op.t) {
    case 'deliver':
      return network.deliver(op.pick);
    case 'duplicate':
      return network.duplicate(op.pick);
    case 'drop':
      return network.drop(op.pick);
    case 'resync':
      return network.resync();
    case 'read':
      return rest.readNow(op.pick);
    case 'respond':
      return rest.respond(op.pick);
    case 'fail':
      return rest.fail(op.pick);
    case 'tick':
      await ticks(1);
      return;
  }
}

