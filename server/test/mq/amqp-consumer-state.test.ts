/**
 * The consumer's state table: the transitions the connector relies on are
 * allowed, and the ones that would mean a bookkeeping bug are refused loudly.
 */
import { describe, expect, it } from 'vitest';
import { checkTransition, IllegalTransitionError, owedResync } from '../../src/mq/amqp-consumer-state.js';

describe('AMQP consumer states', () => {
  it('allows the paths a consumer takes through faults and stops', () => {
    const paths = [
      ['starting', 'consuming', 'moving', 'consuming', 'restarting', 'restarting', 'consuming', 'ending', 'ended'],
      ['starting', 'ended'], // a refused first declare
      ['starting', 'ending', 'ended'], // the queue deleted from outside before start() resolved
      ['starting', 'consuming', 'restarting', 'moving', 'restarting', 'consuming'],
    ] as const;
    for (const path of paths) {
      for (let i = 1; i < path.length; i++) expect(() => checkTransition('q', path[i - 1]!, path[i]!)).not.toThrow();
    }
  });

  it('refuses to come back from a stop, or to skip the first start', () => {
    expect(() => checkTransition('q', 'ending', 'consuming')).toThrow(IllegalTransitionError);
    expect(() => checkTransition('q', 'ended', 'ending')).toThrow(/q: no transition from ended to ending/);
    expect(() => checkTransition('q', 'consuming', 'starting')).toThrow(IllegalTransitionError);
    expect(() => checkTransition('q', 'consuming', 'ended')).toThrow(IllegalTransitionError);
  });

  it('owes a resync only while recovering', () => {
    expect(owedResync('moving')).toBe('interrupted');
    expect(owedResync('restarting')).toBe('reconnected');
    for (const state of ['starting', 'consuming', 'ending', 'ended'] as const) expect(owedResync(state)).toBeNull();
  });
});
