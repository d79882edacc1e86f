/**
 * The cluster scenario (issue 13): the cluster's broker memory is read from
 * one `rabbitmqctl eval` over three nodes and turned into KiB per
 * subscription; the report shows the two arms side by side and marks their
 * ratios as an indication only.
 */
import { describe, expect, it } from 'vitest';
import { memoryPerSubscription, parseClusterMemory, type ClusterMemory } from '../src/cluster-rig.js';
import { clusterTargets, renderReport } from '../src/report.js';

const MiB = 1024 * 1024;
const read = (a: number, b: number, c: number, queues: number): ClusterMemory => ({
  perNode: { 'tgc1@localhost': a, 'tgc2@localhost': b, 'tgc3@localhost': c },
  total: a + b + c,
  queues,
});

describe('the cluster\'s broker memory', () => {
  it('is read from rabbitmqctl eval, also when the printed term wraps over lines', () => {
    const text = '{[{tgc1@localhost,104857600},\n  {tgc2@localhost,99614720},\n  {tgc3@localhost,94371840}],\n 7}\n';
    expect(parseClusterMemory(text)).toEqual({ perNode: { 'tgc1@localhost': 104857600, 'tgc2@localhost': 99614720, 'tgc3@localhost': 94371840 }, total: 298844160, queues: 7 });
  });

  it('is refused when a node answers {badrpc, …} (down) rather than summing two nodes', () => {
    const text = '{[{tgc1@localhost,104857600},{tgc2@localhost,{badrpc,nodedown}},{tgc3@localhost,94371840}],4}';
    expect(() => parseClusterMemory(text)).toThrow(/tgc2@localhost/);
  });

  it('per subscription is the mean of what subscribing added and closing released, summed over the nodes', () => {
    // 1,000 subscriptions: +10 MiB on node 1, +10 MiB on node 2, +0 on node 3; closing releases 18 MiB.
    const m = memoryPerSubscription(read(100 * MiB, 100 * MiB, 100 * MiB, 6), read(110 * MiB, 110 * MiB, 100 * MiB, 1006), read(101 * MiB, 101 * MiB, 100 * MiB, 6), 1000);
    expect(m.addedKiB).toBe(20.5);
    expect(m.releasedKiB).toBe(18.4);
    expect(m.perSubscriptionKiB).toBe(19.5);
    expect(m.noisy).toBe(false);
    expect(m.perNodeAddedKiB).toEqual({ 'tgc1@localhost': 10.2, 'tgc2@localhost': 10.2, 'tgc3@localhost': 0 });
  });

  it('is flagged noisy when adding and releasing disagree by more than 30 %', () => {
    const m = memoryPerSubscription(read(100 * MiB, 100 * MiB, 100 * MiB, 6), read(110 * MiB, 100 * MiB, 100 * MiB, 1006), read(105 * MiB, 100 * MiB, 100 * MiB, 6), 1000);
    expect(m.noisy).toBe(true);
  });

  it('is not computed from no subscriptions', () => {
    expect(memoryPerSubscription(read(1, 1, 1, 0), read(1, 1, 1, 0), read(1, 1, 1, 0), 0).perSubscriptionKiB).toBeNull();
  });
});

describe('the cluster section of the report', () => {
  const run = (arm: string, mode: string, deliveriesPerSec: number, p99Ms: number) => ({
    scenario: 'cluster', arm, mode, n: 100, kind: 'gateway', deliveriesPerSec, p50Ms: 1, p99Ms, maxMs: 9, received: 10, expected: 10, problems: [],
    cpu: { gateway: 80, broker: 90, haproxy: 12, generators: 50, publisher: 5, others: 3, machine: 190 }, cpuUsPerDelivery: { gateway: 20, broker: 30 },
  });
  const rows = [
    { scenario: 'cluster-rig', startMs: 52_000, dir: '/tmp/topicgate-cluster-bench', publishNode: 1 },
    run('single', 'flat', 20_000, 100),
    run('cluster', 'flat', 10_000, 200),
    run('single', 'paced', 10_000, 40),
    run('cluster', 'paced', 10_000, 60),
    { scenario: 'cluster-memory', arm: 'single', kind: 'gateway', n: 1000, subscriptions: 1000, brokerPerSubscriptionKiB: 30, brokerAddedKiB: 29, brokerReleasedKiB: 31, brokerKiBPerSubscriptionByCategory: { queue_procs: 20, mgmt_db: 5, metrics: 3 } },
    { scenario: 'cluster-memory', arm: 'cluster', kind: 'gateway', n: 1000, subscriptions: 1000, queuesAdded: 1000, brokerPerSubscriptionKiB: 33, brokerAddedKiB: 32, brokerReleasedKiB: 34, brokerPerNodeAddedKiB: { 'tgc1@localhost': 11, 'tgc2@localhost': 10, 'tgc3@localhost': 11 } },
  ];

  it('states the ratios cluster / single as an indication only', () => {
    const targets = clusterTargets(rows);
    expect(targets.map((t) => [t.detail, t.note])).toEqual([
      ['10,000 vs 20,000 deliveries/s = 0.50×', 'indication only (2 cores)'],
      ['60.00 vs 40.00 ms = 1.50×', 'indication only (2 cores)'],
      ['33.0 vs 30.0 KiB = 1.10× (one node without its management plugin\'s share: 22.0 KiB = 1.50×)', 'indication only (2 cores)'],
    ]);
  });

  it('shows both arms, the HAProxy CPU and the memory per node', () => {
    const report = renderReport(rows, { date: '2026-12-01T00:00:00.000Z' }, []);
    expect(report).toContain('| cluster, fan-out 100: HAProxy + 3 gateways on 3 nodes / 1 gateway on 1 node | 10,000 vs 20,000 deliveries/s = 0.50× | indication only (2 cores) |');
    expect(report).toContain('| 100 | 20,000 | 10,000 | 0.50 | 20.0, 20.0 | 30.0, 30.0 |');
    expect(report).toContain('gateway 80 · broker 90 · haproxy 12 · gen 50 · pub 5 · others 3 · machine 190');
    expect(report).toContain('| HAProxy, 3 gateways, 3 nodes | 1,000 of 1,000 | 33.0 (32.0, 34.0) | tgc1 11.0, tgc2 10.0, tgc3 11.0 | — | 1,000 |');
    expect(report).toContain('Rig started in 52 s');
  });

  it('is absent when the scenario did not run', () => {
    expect(renderReport([], { date: 'x' }, [])).not.toContain('## Cluster');
  });
});
