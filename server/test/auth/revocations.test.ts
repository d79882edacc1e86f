/**
 * The revocation list each gateway keeps (docs/protocol.md §10.5): which
 * tokens of a revoked subject are refused, and for how long.
 */
import { describe, expect, it } from 'vitest';
import { Revocations } from '../../src/auth/revocations.js';

const T = 1_800_000_000; // a whole second, in epoch seconds
const clock = (start: number) => {
  let now = start * 1000;
  return { now: () => now, at: (seconds: number) => (now = seconds * 1000) };
};

describe('revocations', () => {
  it('refuse the subject\'s tokens issued before the revocation, its own second included, and those without iat', () => {
    const time = clock(T);
    const list = new Revocations(3600, 100, time.now);
    list.revoke('alice', T * 1000 + 300); // R = T + 1
    expect(list.refusal('alice', T - 100)).toMatch(/revoked at .*tokens issued before then are refused/);
    expect(list.refusal('alice', T)).not.toBeNull(); // issued in the revocation's own second: perhaps before it
    expect(list.refusal('alice', T + 1)).toBeNull();
    expect(list.refusal('alice', undefined)).toMatch(/without iat/);
    expect(list.refusal('bob', T - 100)).toBeNull();
    expect(list.refusal(undefined, T - 100)).toBeNull();
  });

  it('are kept as long as a token issued before them can live, then forgotten', () => {
    const time = clock(T);
    const list = new Revocations(3600, 100, time.now);
    list.revoke('alice', T * 1000);
    time.at(T + 3599);
    expect(list.refusal('alice', T - 1)).not.toBeNull();
    time.at(T + 3600);
    expect(list.refusal('alice', T - 1)).toBeNull();
    expect(list.size).toBe(0);
  });

  it('a later revocation moves the cutoff forward; an earlier one changes nothing', () => {
    const list = new Revocations(3600, 100, clock(T).now);
    list.revoke('alice', T * 1000);
    list.revoke('alice', (T + 10) * 1000);
    expect(list.refusal('alice', T + 5)).not.toBeNull();
    list.revoke('alice', (T + 2) * 1000);
    expect(list.refusal('alice', T + 5)).not.toBeNull();
  });

  it('hold at most maxEntries, dropping the oldest and saying so', () => {
    const list = new Revocations(3600, 2, clock(T).now);
    expect(list.revoke('a', T * 1000).dropped).toBe(0);
    list.revoke('b', T * 1000);
    expect(list.revoke('c', T * 1000).dropped).toBe(1);
    expect(list.refusal('a', T - 1)).toBeNull();
    expect(list.refusal('c', T - 1)).not.toBeNull();
  });
});
