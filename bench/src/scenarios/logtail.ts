/**
 * Log tail: 100 builds each appending 20 lines/s (2,000 messages/s), 500
 * clients each following 2 logs (`logs.<build>.append`), i.e. 20,000
 * deliveries/s; latency percentiles and each side's CPU.
 */
import { drive, integrityProblems, type Bench } from '../harness.js';

export async function logtail(bench: Bench): Promise<void> {
  const { builds, linesPerSecond, clients, logsPerClient, warmupMs, measureMs } = bench.options.logtail;
  const plans = Array.from({ length: clients }, (_, i) => ({
    // Every build is followed by the same number of clients; a client never follows one build twice.
    patterns: Array.from({ length: logsPerClient }, (_, j) => `logs.${((i + j * (1 + Math.floor(i / builds))) % builds) + 1}.append`),
  }));
  const kinds = bench.options.kinds.filter((k) => k === 'gateway' || k === 'stomp');
  for (const kind of kinds) {
    bench.log(`log tail ${kind}`);
    const gateways = kind === 'gateway' ? await bench.startGateways(bench.options.gatewayProcesses) : [];
    try {
      const r = await bench.attempt(`log tail ${kind}`, () => drive(bench, {
        kind,
        gateways,
        plans,
        publish: {
          keys: Array.from({ length: builds }, (_, b) => `logs.${b + 1}.append`),
          firstStream: 1,
          mode: 'paced',
          rate: builds * linesPerSecond,
          warmupMs,
          measureMs,
          bodyBytes: 200,
          logLines: true,
        },
      }));
      bench.record({ scenario: 'logtail', builds, linesPerSecond, ...r, problems: integrityProblems(r) });
    } catch (err) {
      bench.record({ scenario: 'logtail', kind, error: (err as Error).message });
    } finally {
      await Promise.all(gateways.map((g) => g.stop()));
    }
  }
}
