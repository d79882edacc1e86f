/**
 * The resume aligner's decisions (docs/protocol.md §15.4), case by case: what
 * the broker redelivers after a cut, against what the client says it has.
 */
import { describe, expect, it } from 'vitest';
import { ResumeAligner, type ResumePosition } from '../../src/gateway/resume/alignment.js';

/** Messages are their fingerprints here; `r` marks redelivered ones. */
function run(position: ResumePosition, backlog: number, arrivals: Array<{ f: number; r?: boolean }>) {
  const aligner = new ResumeAligner(position, backlog);
  let decision = aligner.decision();
  for (const { f, r = true } of arrivals) {
    if (decision) break;
    decision = aligner.push({ redelivered: r, fingerprint: () => f });
  }
  return decision;
}

describe('resume alignment', () => {
  it('nothing received, nothing waiting: resumes at once', () => {
    expect(run({ seq: 0, settled: 0, fingerprints: [] }, 0, [])).toEqual({ ok: true, skip: 0, brokerSettled: 0 });
  });

  it('skips the redelivered deliveries the client already has, from the one its last receipt kept', () => {
    // Client has 1-7, receipt for 4 settled (the broker took 1-3); the broker redelivers 4-8 (8 never reached it).
    const decision = run({ seq: 7, settled: 4, fingerprints: [14, 15, 16, 17] }, 5, [{ f: 14 }, { f: 15 }, { f: 16 }, { f: 17 }, { f: 18 }]);
    expect(decision).toEqual({ ok: true, skip: 4, brokerSettled: 3 });
  });

  it('a receipt in flight that reached the broker: the queue starts at the delivery it named', () => {
    // Settled 4, receipt for 7 pending and applied (the broker took 1-6): it redelivers 7, 8, 9.
    const decision = run({ seq: 7, settled: 4, pending: 7, fingerprints: [14, 15, 16, 17] }, 3, [{ f: 17 }, { f: 18 }, { f: 19 }]);
    expect(decision).toEqual({ ok: true, skip: 1, brokerSettled: 6 });
  });

  it('a receipt in flight that did not reach the broker: the queue starts at the settled one', () => {
    const decision = run({ seq: 7, settled: 4, pending: 7, fingerprints: [14, 15, 16, 17] }, 6, [{ f: 14 }, { f: 15 }, { f: 16 }, { f: 17 }, { f: 18 }, { f: 19 }]);
    expect(decision).toEqual({ ok: true, skip: 4, brokerSettled: 3 });
  });

  it('identical deliveries on both sides of a pending receipt: refused, not guessed', () => {
    // Every message is the same: both "the receipt applied" and "it did not" fit.
    const decision = run({ seq: 3, settled: 1, pending: 3, fingerprints: [9, 9, 9] }, 5, [{ f: 9 }, { f: 9 }, { f: 9 }, { f: 9 }, { f: 9 }]);
    expect(decision).toMatchObject({ ok: false, why: expect.stringContaining('identical') });
  });

  it('a queue that does not hold what the client says it had: refused', () => {
    const decision = run({ seq: 3, settled: 0, fingerprints: [1, 2, 3] }, 3, [{ f: 1 }, { f: 7 }, { f: 3 }]);
    expect(decision).toMatchObject({ ok: false, why: expect.stringContaining('does not hold') });
  });

  it('fewer redelivered than the client claims to have: refused', () => {
    // The run ends (a new message) before the client's three.
    const decision = run({ seq: 3, settled: 0, fingerprints: [1, 2, 3] }, 5, [{ f: 1 }, { f: 2 }, { f: 40, r: false }]);
    expect(decision).toMatchObject({ ok: false });
  });

  it('decides without waiting for more than the backlog held', () => {
    const aligner = new ResumeAligner({ seq: 3, settled: 0, fingerprints: [1, 2, 3] }, 1);
    expect(aligner.decision()).toBeNull();
    expect(aligner.push({ redelivered: true, fingerprint: () => 1 })).toMatchObject({ ok: false });
  });
});
