/**
 * Bench reports (bench/results/*.md and *.raw.json) are committed: they must
 * not record where the repository sat on the machine that ran them.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { repoRelative } from '../src/paths.js';
import { evaluateTargets, medianRuns, rawResults, renderReport } from '../src/report.js';

const root = fileURLToPath(new URL('../../', import.meta.url)); // this checkout, with a trailing slash

/** What a run records: the gateway build, a profile, a log path inside an error, profile frames, a warning. */
function run() {
  const meta = { date: '2026-12-01T00:00:00.000Z', 'run id': 'r1', 'gateway build': `${root}server/dist/cli.js (git abc123)` };
  const rows = [
    {
      scenario: 'profile',
      n: 100,
      profile: `${root}bench/results/profiles/r1-100/CPU.cpuprofile`,
      markdown: `### Gateway profile\n\n| 1.5 | 3 | \`onReady file://${root}bench/dist/gateway-preload.js:12\` |\n`,
    },
    { scenario: 'fanout', mode: 'flat', n: 1, kind: 'gateway', error: `the gateway exited (1); see ${root}bench/results/logs/gateway-r1.log` },
  ];
  const warnings = [`no gateway build at ${root}server/dist/cli.js; run \`npx tsc -b server\``, `cwd was ${root.slice(0, -1)}`];
  return { meta, rows, warnings };
}

describe('bench reports record paths relative to the repository', () => {
  it('the markdown report', () => {
    const { meta, rows, warnings } = run();
    const report = renderReport(rows, meta, warnings);
    expect(report).not.toContain(root.slice(0, -1));
    expect(report).toContain('**gateway build:** server/dist/cli.js (git abc123)');
    expect(report).toContain('Full profile: `bench/results/profiles/r1-100/CPU.cpuprofile`');
    expect(report).toContain('onReady bench/dist/gateway-preload.js:12');
    expect(report).toContain('see bench/results/logs/gateway-r1.log');
    expect(report).toContain('- no gateway build at server/dist/cli.js;');
    expect(report).toContain('- cwd was .');
  });

  it('the raw JSON results, without changing anything else', () => {
    const { meta, rows, warnings } = run();
    const raw = JSON.parse(rawResults(rows, meta, warnings));
    expect(JSON.stringify(raw)).not.toContain(root.slice(0, -1));
    expect(raw.meta['gateway build']).toBe('server/dist/cli.js (git abc123)');
    expect(raw.rows[0]).toEqual({ ...rows[0], profile: 'bench/results/profiles/r1-100/CPU.cpuprofile', markdown: expect.any(String) });
    expect(raw.rows[1].error).toBe('the gateway exited (1); see bench/results/logs/gateway-r1.log');
    expect(rows[0]!.profile!.startsWith(root)).toBe(true); // the caller's data is not modified
  });

  it('a gateway build outside the repository is named relative to it too', () => {
    expect(repoRelative(`${root}server/dist/cli.js`)).toBe('server/dist/cli.js');
    expect(repoRelative('/elsewhere/topicgate-head/server/dist/cli.js', '/work/main/')).toBe('../../elsewhere/topicgate-head/server/dist/cli.js');
  });
});

describe('issue 12: the resumable path beside what the broker allows it', () => {
  const flat = (kind: string, deliveriesPerSec: number) => ({ scenario: 'fanout', mode: 'flat', n: 100, kind, deliveriesPerSec, problems: [] });
  const rows = [flat('gateway', 40_000), flat('resumable', 24_000), flat('amqp', 50_000), flat('amqp-held', 36_000), flat('mqtt', 12_000)];

  it('states the ceiling (held / raw) for the record, without judging it', () => {
    const ceiling = evaluateTargets(rows).find((t) => t.name.startsWith("fan-out 100: the broker's ceiling"));
    expect(ceiling).toMatchObject({ detail: '36,000 vs 50,000 deliveries/s = 0.72×', holds: null, informational: true });
    expect(evaluateTargets(rows).find((t) => t.name === 'fan-out 100: resumable ≥ 0.8× gateway default')?.holds).toBe(false);
  });

  it('puts held / raw and resumable / held in the flat table, beside gateway / raw', () => {
    const report = renderReport(rows, { date: '2026-12-01T00:00:00.000Z' }, []);
    expect(report).toContain('| gateway / raw | gateway / Web-STOMP | resumable / gateway | held / raw | resumable / held | resumable / Web-MQTT |');
    expect(report).toContain('| 100 | 40,000 | 24,000 | 50,000 | 36,000 | — | 12,000 | 0.80 | — | 0.60 | 0.72 | 0.67 | 2.00 |');
  });
});

describe('BENCH_ROUNDS: each kind ran several times in turn', () => {
  const flat = (kind: string, round: number, deliveriesPerSec: number) => ({ scenario: 'fanout', mode: 'flat', n: 100, kind, round, deliveriesPerSec, problems: [] });
  const rows = [
    flat('gateway', 1, 40_000),
    flat('resumable', 1, 25_000),
    flat('gateway', 2, 30_000),
    flat('resumable', 2, 20_000),
    flat('gateway', 3, 44_000),
    flat('resumable', 3, 22_000),
    { scenario: 'fanout', mode: 'flat', n: 100, kind: 'resumable', round: 4, error: 'the gateway exited (1)' },
  ];

  it('stands each kind by its median run, with the range over its rounds; a failed round counts for nothing', () => {
    expect(medianRuns(rows).map((r) => [r.kind, r.deliveriesPerSec, r.rounds, r.range])).toEqual([
      ['gateway', 40_000, 3, [30_000, 44_000]],
      ['resumable', 22_000, 3, [20_000, 25_000]],
    ]);
  });

  it('of an even number of rounds takes the worse middle run: fewer deliveries/s flat out, a higher p99 paced', () => {
    const paced = (round: number, p99Ms: number | null) => ({ scenario: 'fanout', mode: 'paced', n: 100, kind: 'gateway', round, p99Ms, problems: [] });
    const picked = medianRuns([flat('gateway', 1, 40_000), flat('gateway', 2, 30_000), paced(1, 12), paced(2, 9), paced(3, null)]);
    expect(picked.map((r) => [r.mode, r.deliveriesPerSec ?? r.p99Ms, r.rounds])).toEqual([
      ['flat', 30_000, 2],
      ['paced', 12, 2],
    ]);
  });

  it('judges the targets on the medians, and lists every round', () => {
    expect(evaluateTargets(rows).find((t) => t.name === 'fan-out 100: resumable ≥ 0.8× gateway default')?.detail).toBe('22,000 vs 40,000 deliveries/s = 0.55×');
    const report = renderReport(rows, { date: '2026-12-01T00:00:00.000Z' }, []);
    expect(report).toContain('| 100 | 40,000 (30,000–44,000) | 22,000 (20,000–25,000) |');
    const resumableRounds = report.match(/^\| flat \| 100 \| gateway, resumable \|.*round \d.*$/gm) ?? [];
    expect(resumableRounds).toHaveLength(4);
    expect(resumableRounds[3]).toContain('**error:** the gateway exited (1)');
  });
});
