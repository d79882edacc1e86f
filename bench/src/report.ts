/**
 * The markdown report: one table per scenario, the ratios the issue's
 * targets are stated in, and which targets hold in this run.
 */
import type { Row } from './harness.js';
import { withRepoRelativePaths } from './paths.js';

const KIND_NAME: Record<string, string> = { gateway: 'gateway', resumable: 'gateway, resumable', amqp: 'raw amqplib', 'amqp-held': 'raw amqplib, held', stomp: 'Web-STOMP', mqtt: 'Web-MQTT QoS 1' };

type R = Row & Record<string, any>;

/** Kinds whose runs bring in the issue-12 columns and targets. */
const RESUMABLE_KINDS: readonly string[] = ['resumable', 'amqp-held', 'mqtt'];

const fmt = (x: unknown, digits = 0): string => {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (typeof x === 'number') return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return String(x);
};
const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : null);
const cpuText = (cpu: Record<string, number> | undefined) =>
  cpu ? ['gateway', 'broker', 'haproxy', 'generators', 'publisher', 'others', 'machine'].filter((k) => k in cpu).map((k) => `${k === 'generators' ? 'gen' : k === 'publisher' ? 'pub' : k} ${cpu[k]}`).join(' · ') : '—';
const perDeliveryText = (x: Record<string, number> | undefined) =>
  x && Object.keys(x).length ? Object.entries(x).map(([k, v]) => `${k === 'generators' ? 'gen' : k} ${v}`).join(' · ') : '—';
/** Deliveries/s, with the range over its rounds when it ran more than once. */
const rateText = (r: R | undefined) => (r ? `${fmt(r.deliveriesPerSec)}${r.range ? ` (${fmt(r.range[0])}–${fmt(r.range[1])})` : ''}` : '—');
const integrity = (r: R) => (r.error ? `**error:** ${r.error}` : (r.problems as string[] | undefined)?.length ? `**${(r.problems as string[]).join(', ')}**` : 'ok');

export interface Target {
  name: string;
  detail: string;
  holds: boolean | null;
  /** Shown for the record: the issue states no figure to hold. */
  informational?: boolean;
  /** Shown instead of a judgement (e.g. "indication only (2 cores)"). */
  note?: string;
}

function find(rows: R[], scenario: string, where: Record<string, unknown>): R | undefined {
  return rows.find((r) => r.scenario === scenario && !r.error && Object.entries(where).every(([k, v]) => r[k] === v));
}

/**
 * With BENCH_ROUNDS > 1 a fan-out (mode, clients, kind) ran several times:
 * it is stood for by its median run — by deliveries/s flat out, by p99 paced;
 * of an even number, the worse of the middle two — carrying the range over
 * its rounds (`range`) and how many there were (`rounds`). Failed runs, and
 * runs without the figure, are left out; single runs pass through unchanged.
 */
export function medianRuns(rows: R[]): R[] {
  const groups = new Map<string, R[]>();
  const out: R[] = [];
  for (const r of rows) {
    const figure = r.mode === 'flat' ? r.deliveriesPerSec : r.p99Ms;
    if (r.scenario !== 'fanout' || r.round === undefined || r.error || typeof figure !== 'number') {
      if (!(r.scenario === 'fanout' && r.round !== undefined)) out.push(r);
      continue;
    }
    const key = `${r.mode} ${r.n} ${r.kind}`;
    if (!groups.has(key)) out.push({ scenario: 'fanout', placeholder: key });
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return out.map((r) => {
    if (r.placeholder === undefined) return r;
    const runs = groups.get(r.placeholder as string)!;
    const flat = runs[0]!.mode === 'flat';
    const by = flat ? 'deliveriesPerSec' : 'p99Ms';
    const sorted = [...runs].sort((a, b) => (a[by] as number) - (b[by] as number));
    // Worse of the middle two: fewer deliveries/s, a higher p99.
    const median = sorted[flat ? Math.floor((sorted.length - 1) / 2) : Math.floor(sorted.length / 2)]!;
    return { ...median, rounds: runs.length, range: [sorted[0]![by], sorted.at(-1)![by]] };
  });
}

export function evaluateTargets(allRows: R[]): Target[] {
  const rows = medianRuns(allRows);
  const targets: Target[] = [];
  for (const n of [100, 500]) {
    const gw = find(rows, 'fanout', { mode: 'flat', n, kind: 'gateway' });
    const raw = find(rows, 'fanout', { mode: 'flat', n, kind: 'amqp' });
    const stomp = find(rows, 'fanout', { mode: 'flat', n, kind: 'stomp' });
    const r1 = ratio(gw?.deliveriesPerSec, raw?.deliveriesPerSec);
    targets.push({ name: `fan-out ${n}: gateway ≥ 0.8× raw amqplib`, detail: `${fmt(gw?.deliveriesPerSec)} vs ${fmt(raw?.deliveriesPerSec)} deliveries/s = ${fmt(r1, 2)}×`, holds: r1 === null ? null : r1 >= 0.8 });
    const r2 = ratio(gw?.deliveriesPerSec, stomp?.deliveriesPerSec);
    targets.push({ name: `fan-out ${n}: gateway ≥ 1.5× Web-STOMP`, detail: `${fmt(gw?.deliveriesPerSec)} vs ${fmt(stomp?.deliveriesPerSec)} deliveries/s = ${fmt(r2, 2)}×`, holds: r2 === null ? null : r2 >= 1.5 });
    const pg = find(rows, 'fanout', { mode: 'paced', n, kind: 'gateway' });
    const ps = find(rows, 'fanout', { mode: 'paced', n, kind: 'stomp' });
    const r3 = ratio(pg?.p99Ms, ps?.p99Ms);
    targets.push({ name: `paced ${n}: gateway p99 ≤ 0.75× Web-STOMP`, detail: `${fmt(pg?.p99Ms, 2)} vs ${fmt(ps?.p99Ms, 2)} ms = ${fmt(r3, 2)}×`, holds: r3 === null ? null : r3 <= 0.75 });
  }
  // Issue 12: resumable subscriptions cost at most 20 % of the default path and beat the broker's own resumable peer (every client count measured).
  const resumableNs = [...new Set(rows.filter((r) => r.scenario === 'fanout' && r.mode === 'flat' && RESUMABLE_KINDS.includes(r.kind)).map((r) => r.n as number))].sort((a, b) => a - b);
  for (const n of resumableNs) {
    const gw = find(rows, 'fanout', { mode: 'flat', n, kind: 'gateway' });
    const res = find(rows, 'fanout', { mode: 'flat', n, kind: 'resumable' });
    const mqtt = find(rows, 'fanout', { mode: 'flat', n, kind: 'mqtt' });
    const r6 = ratio(res?.deliveriesPerSec, gw?.deliveriesPerSec);
    targets.push({ name: `fan-out ${n}: resumable ≥ 0.8× gateway default`, detail: `${fmt(res?.deliveriesPerSec)} vs ${fmt(gw?.deliveriesPerSec)} deliveries/s = ${fmt(r6, 2)}×`, holds: r6 === null ? null : r6 >= 0.8 });
    const r7 = ratio(res?.deliveriesPerSec, mqtt?.deliveriesPerSec);
    targets.push({ name: `fan-out ${n}: resumable ahead of Web-MQTT QoS 1 (> 1×)`, detail: `${fmt(res?.deliveriesPerSec)} vs ${fmt(mqtt?.deliveriesPerSec)} deliveries/s = ${fmt(r7, 2)}×`, holds: r7 === null ? null : r7 > 1 });
    // What the broker allows: the same fan-out consumed raw, held as a resumable queue is, against raw without acknowledgements.
    const raw = find(rows, 'fanout', { mode: 'flat', n, kind: 'amqp' });
    const held = find(rows, 'fanout', { mode: 'flat', n, kind: 'amqp-held' });
    if (held) {
      const r9 = ratio(held.deliveriesPerSec, raw?.deliveriesPerSec);
      targets.push({ name: `fan-out ${n}: the broker's ceiling for resumable / default (raw amqplib held / raw amqplib)`, detail: `${fmt(held.deliveriesPerSec)} vs ${fmt(raw?.deliveriesPerSec)} deliveries/s = ${fmt(r9, 2)}×`, holds: null, informational: true });
    }
  }
  const cg = find(rows, 'churn', { kind: 'gateway' });
  const ca = find(rows, 'churn', { kind: 'amqp' });
  const r4 = ratio(cg?.pairsPerSec, ca?.pairsPerSec);
  targets.push({ name: 'churn: gateway ≥ 0.5× raw AMQP', detail: `${fmt(cg?.pairsPerSec)} vs ${fmt(ca?.pairsPerSec)} pairs/s = ${fmt(r4, 2)}×`, holds: r4 === null ? null : r4 >= 0.5 });
  const cr = find(rows, 'churn', { kind: 'resumable' });
  if (cr) {
    // The issue states no figure for churn: shown for the record, not judged.
    const r8 = ratio(cr.pairsPerSec, cg?.pairsPerSec);
    targets.push({ name: 'churn: resumable / gateway default', detail: `${fmt(cr.pairsPerSec)} vs ${fmt(cg?.pairsPerSec)} pairs/s = ${fmt(r8, 2)}×`, holds: null, informational: true });
  }
  const idleNs = [...new Set(rows.filter((r) => r.scenario === 'idle').map((r) => r.n as number))].sort((a, b) => b - a);
  const big = idleNs[0];
  const ig = big === undefined ? undefined : find(rows, 'idle', { kind: 'gateway', n: big });
  const is = big === undefined ? undefined : find(rows, 'idle', { kind: 'stomp', n: big });
  const fullyIdle = ig && ig.subscriptions === big;
  targets.push({
    name: `idle ${fmt(big)}: gateway RSS ≤ 50 KiB per connection`,
    detail: ig ? `${fmt(ig.gatewayRssPerConnKiB, 1)} KiB${fullyIdle ? '' : ` (only ${fmt(ig.subscriptions)} of ${fmt(big)} subscriptions succeeded)`}` : 'not measured',
    holds: ig && ig.gatewayRssPerConnKiB !== null ? ig.gatewayRssPerConnKiB <= 50 && !!fullyIdle : null,
  });
  const r5 = ratio(ig?.brokerPerSubscriptionKiB, is?.brokerPerSubscriptionKiB);
  targets.push({
    name: `idle ${fmt(big)}: broker memory per subscription ≤ 0.3× Web-STOMP's per client`,
    detail: `${fmt(ig?.brokerPerSubscriptionKiB, 1)} vs ${fmt(is?.brokerPerSubscriptionKiB, 1)} KiB = ${fmt(r5, 2)}×${ig && !fullyIdle ? ` (gateway: ${fmt(ig.subscriptions)} of ${fmt(big)} subscriptions)` : ''}`,
    holds: r5 === null ? null : r5 <= 0.3 && !!fullyIdle,
  });
  targets.push(...clusterTargets(rows));
  const broken = allRows.filter((r) => (r.problems as string[] | undefined)?.length);
  targets.push({
    name: 'no losses, duplicates or out-of-order deliveries (without an overflow resync)',
    detail: broken.length ? broken.map((r) => `${r.scenario}${r.arm ? ` ${r.arm}` : ''} ${r.mode ?? ''} ${KIND_NAME[r.kind] ?? r.kind} × ${r.n ?? r.clients}${r.round !== undefined ? ` round ${r.round}` : ''}: ${(r.problems as string[]).join(', ')}`).join('; ') : 'all runs clean',
    holds: allRows.some((r) => 'problems' in r) ? broken.length === 0 : null,
  });
  return targets;
}

/** The markdown report. Paths in it are relative to the repository (paths.ts), wherever they came from. */
export function renderReport(allRows: R[], allMeta: Record<string, string>, allWarnings: string[]): string {
  const { rows, meta, warnings } = withRepoRelativePaths({ rows: allRows, meta: allMeta, warnings: allWarnings });
  const out: string[] = [];
  out.push(`# topicgate bench — ${meta.date}`, '');
  out.push(Object.entries(meta).filter(([k]) => k !== 'date').map(([k, v]) => `- **${k}:** ${v}`).join('\n'), '');
  out.push('CPU figures are % of one core over the measurement window (the box has 2 cores: 200 % is everything). "gen" is all load-generator processes together, "pub" the publisher, "others" whatever else ran on the machine meanwhile (machine − the named processes).', '');

  const targets = evaluateTargets(rows);
  out.push('## Targets', '', '| target | this run | holds |', '|---|---|:---:|');
  for (const t of targets) out.push(`| ${t.name} | ${t.detail} | ${t.note ? t.note : t.informational ? 'no target stated' : t.holds === null ? 'not measured' : t.holds ? 'yes' : '**no**'} |`);
  out.push('');

  const allFan = rows.filter((r) => r.scenario === 'fanout');
  const fan = medianRuns(allFan);
  if (fan.length) {
    const ns = [...new Set(fan.map((r) => r.n as number))];
    const rounds = Math.max(1, ...fan.map((r) => (r.rounds as number | undefined) ?? 1));
    out.push('## Fan-out, flat out', '', 'Deliveries/s summed over all clients while the publisher keeps every client at most a window behind.' + (rounds > 1 ? ` Each kind ran ${rounds} times in turn: its median run, (lowest–highest) after it; ratios are of medians.` : ''), '');
    const resumableRun = fan.some((r) => RESUMABLE_KINDS.includes(r.kind));
    if (resumableRun) {
      if (fan.some((r) => r.kind === 'amqp-held')) {
        out.push(
          '"held": raw amqplib consumers that hold every delivery as a resumable subscription\'s queue does (durable, a channel each, prefetch 500, acknowledged cumulatively every 32): held / raw is what the broker leaves for resumable / gateway; resumable / held is the gateway\'s own share, to read beside gateway / raw.',
          '',
        );
      }
      out.push(
        '| clients | gateway | gateway, resumable | raw amqplib | raw amqplib, held | Web-STOMP | Web-MQTT QoS 1 | gateway / raw | gateway / Web-STOMP | resumable / gateway | held / raw | resumable / held | resumable / Web-MQTT | gateway CPU µs per delivery (default, resumable) |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      );
    } else {
      out.push('| clients | gateway | raw amqplib | Web-STOMP | gateway / raw | gateway / Web-STOMP | gateway CPU µs per delivery |', '|---:|---:|---:|---:|---:|---:|---:|');
    }
    for (const n of ns) {
      const g = find(fan, 'fanout', { mode: 'flat', n, kind: 'gateway' });
      const a = find(fan, 'fanout', { mode: 'flat', n, kind: 'amqp' });
      const s = find(fan, 'fanout', { mode: 'flat', n, kind: 'stomp' });
      if (resumableRun) {
        const res = find(fan, 'fanout', { mode: 'flat', n, kind: 'resumable' });
        const h = find(fan, 'fanout', { mode: 'flat', n, kind: 'amqp-held' });
        const m = find(fan, 'fanout', { mode: 'flat', n, kind: 'mqtt' });
        const rate = (r: R | undefined) => r?.deliveriesPerSec as number | undefined;
        const cells = [
          fmt(n),
          ...[g, res, a, h, s, m].map(rateText),
          ...[[g, a], [g, s], [res, g], [h, a], [res, h], [res, m]].map(([x, y]) => fmt(ratio(rate(x), rate(y)), 2)),
          `${fmt(g?.cpuUsPerDelivery?.gateway, 1)}, ${fmt(res?.cpuUsPerDelivery?.gateway, 1)}`,
        ];
        out.push(`| ${cells.join(' | ')} |`);
      } else out.push(`| ${fmt(n)} | ${rateText(g)} | ${rateText(a)} | ${rateText(s)} | ${fmt(ratio(g?.deliveriesPerSec, a?.deliveriesPerSec), 2)} | ${fmt(ratio(g?.deliveriesPerSec, s?.deliveriesPerSec), 2)} | ${fmt(g?.cpuUsPerDelivery?.gateway, 1)} |`);
    }
    out.push('', `## Fan-out, paced at ${fmt(fan.find((r) => r.targetDeliveriesPerSec)?.targetDeliveriesPerSec ?? 10000)} deliveries/s`, '', 'Publish → client latency (ms), measured on one monotonic clock shared by the publisher and generator processes.' + (rounds > 1 ? ' Each kind\'s median run by p99, the p99s of all its rounds (lowest–highest) after it.' : ''), '');
    if (resumableRun) {
      out.push('| clients | gateway p50 / p99 / max | gateway, resumable p50 / p99 / max | raw amqplib p50 / p99 / max | raw amqplib, held p50 / p99 / max | Web-STOMP p50 / p99 / max | Web-MQTT QoS 1 p50 / p99 / max | gateway p99 / Web-STOMP p99 | resumable p99 / gateway p99 | resumable p99 / Web-MQTT p99 |', '|---:|---|---|---|---|---|---|---:|---:|---:|');
    } else {
      out.push('| clients | gateway p50 / p99 / max | raw amqplib p50 / p99 / max | Web-STOMP p50 / p99 / max | gateway p99 / Web-STOMP p99 |', '|---:|---|---|---|---:|');
    }
    const lat = (r: R | undefined) => (r ? `${fmt(r.p50Ms, 2)} / ${fmt(r.p99Ms, 2)}${r.range ? ` (${fmt(r.range[0], 2)}–${fmt(r.range[1], 2)})` : ''} / ${fmt(r.maxMs, 1)}` : '—');
    for (const n of ns) {
      const g = find(fan, 'fanout', { mode: 'paced', n, kind: 'gateway' });
      const a = find(fan, 'fanout', { mode: 'paced', n, kind: 'amqp' });
      const s = find(fan, 'fanout', { mode: 'paced', n, kind: 'stomp' });
      if (resumableRun) {
        const res = find(fan, 'fanout', { mode: 'paced', n, kind: 'resumable' });
        const h = find(fan, 'fanout', { mode: 'paced', n, kind: 'amqp-held' });
        const m = find(fan, 'fanout', { mode: 'paced', n, kind: 'mqtt' });
        out.push(`| ${fmt(n)} | ${lat(g)} | ${lat(res)} | ${lat(a)} | ${lat(h)} | ${lat(s)} | ${lat(m)} | ${fmt(ratio(g?.p99Ms, s?.p99Ms), 2)} | ${fmt(ratio(res?.p99Ms, g?.p99Ms), 2)} | ${fmt(ratio(res?.p99Ms, m?.p99Ms), 2)} |`);
      } else out.push(`| ${fmt(n)} | ${lat(g)} | ${lat(a)} | ${lat(s)} | ${fmt(ratio(g?.p99Ms, s?.p99Ms), 2)} |`);
    }
    out.push('', '### Every fan-out run', '');
    out.push('"batch" (gateway kinds): mean deliveries per `messages` event over the whole run.' + (resumableRun ? ' "receipts" (resumable only): `received` requests the clients sent, per 100 deliveries — one in flight per socket, so fewer when deliveries come faster than receipts are answered.' : ''), '');
    out.push('| mode | clients | receiver | deliveries/s | p50 / p99 / max ms | CPU % | CPU µs per delivery | received / expected | integrity |', '|---|---:|---|---:|---|---|---|---|---|');
    for (const r of allFan) {
      const notes = [
        ...(r.round !== undefined ? [`round ${r.round}`] : []),
        ...(typeof r.meanBatch === 'number' ? [`batch ${fmt(r.meanBatch, 1)}`] : []),
        ...(r.kind === 'resumable' && r.received ? [`receipts ${fmt((100 * (r.receipts ?? 0)) / r.received, 1)} per 100`] : []),
      ];
      const receipts = notes.length ? ` (${notes.join(', ')})` : '';
      out.push(
        `| ${r.mode} | ${fmt(r.n)} | ${KIND_NAME[r.kind] ?? r.kind} | ${fmt(r.deliveriesPerSec)} | ${fmt(r.p50Ms, 2)} / ${fmt(r.p99Ms, 2)} / ${fmt(r.maxMs, 1)} | ${cpuText(r.cpu)} | ${perDeliveryText(r.cpuUsPerDelivery)} | ${fmt(r.received)} / ${fmt(r.expected)}${receipts} | ${integrity(r)} |`,
      );
    }
    out.push('');
  }

  const churn = rows.filter((r) => r.scenario === 'churn');
  if (churn.length) {
    out.push('## Churn', '', 'Subscribe + unsubscribe pairs per second, each waiting for both acknowledgements, with the same number of concurrent loops on both sides.', '');
    out.push('| path | loops | pairs/s | pair p50 / p99 ms | CPU % | errors |', '|---|---:|---:|---|---|---|');
    for (const r of churn) {
      const path = r.kind === 'amqp' ? 'raw AMQP declare/bind/consume/cancel/delete' : r.kind === 'resumable' ? 'gateway subscribe { resumable: true }/unsubscribe' : 'gateway subscribe/unsubscribe';
      out.push(`| ${path} | ${fmt(r.concurrency)} | ${fmt(r.pairsPerSec)} | ${fmt(r.p50Ms, 2)} / ${fmt(r.p99Ms, 2)} | ${cpuText(r.cpu)} | ${r.error ? `**${r.error}**` : r.errors ? `${r.errors} (${r.firstError})` : 0} |`);
    }
    const cg = find(churn, 'churn', { kind: 'gateway' });
    const cr = find(churn, 'churn', { kind: 'resumable' });
    if (cg && cr) out.push('', `Resumable / default: ${fmt(ratio(cr.pairsPerSec, cg.pairsPerSec), 2)}× the pairs/s.`);
    out.push('');
  }

  const idle = rows.filter((r) => r.scenario === 'idle');
  if (idle.length) {
    out.push('## Idle connections, one subscription each', '', 'Gateway figures are after a full GC in the gateway; broker figures are the change of erlang:memory(total) divided by subscriptions that succeeded: the mean of what connecting added and what disconnecting released (both shown; they disagree when other traffic on the shared broker moved its memory meanwhile).', '');
    out.push('| connections | receiver | connected / subscribed | gateway RSS KiB/conn (heap, external) | gateway RSS total MiB | broker KiB/subscription (added, released) | of which, by broker category (KiB/subscription) | failures |', '|---:|---|---|---|---:|---|---|---|');
    for (const r of idle) {
      if (r.error) {
        out.push(`| ${fmt(r.n)} | ${KIND_NAME[r.kind] ?? r.kind} | — | — | — | — | — | **${r.error}** |`);
        continue;
      }
      const gw = r.kind === 'gateway' ? `${fmt(r.gatewayRssPerConnKiB, 1)} (${fmt(r.gatewayHeapPerConnKiB, 1)}, ${fmt(r.gatewayExternalPerConnKiB, 1)})` : '—';
      const cats = Object.entries((r.brokerKiBPerSubscriptionByCategory ?? {}) as Record<string, number>).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
      out.push(`| ${fmt(r.n)} | ${KIND_NAME[r.kind] ?? r.kind} | ${fmt(r.clients)} / ${fmt(r.subscriptions)} | ${gw} | ${r.kind === 'gateway' ? fmt(r.gatewayRssMiB) : '—'} | ${fmt(r.brokerPerSubscriptionKiB, 1)} (${fmt(r.brokerAddedKiB, 1)}, ${fmt(r.brokerReleasedKiB, 1)})${r.brokerNoisy ? ' **noisy**' : ''} | ${cats} | ${(r.failures as string[] | undefined)?.join('; ') ?? ''} |`);
    }
    out.push('');
  }

  const tail = rows.filter((r) => r.scenario === 'logtail');
  if (tail.length) {
    out.push('## Log tail', '', '100 builds × 20 lines/s, 500 clients following 2 logs each (20,000 deliveries/s).', '');
    out.push('| receiver | deliveries/s | p50 / p99 / max ms | CPU % | received / expected | integrity |', '|---|---:|---|---|---|---|');
    for (const r of tail) out.push(`| ${KIND_NAME[r.kind] ?? r.kind} | ${fmt(r.deliveriesPerSec)} | ${fmt(r.p50Ms, 2)} / ${fmt(r.p99Ms, 2)} / ${fmt(r.maxMs, 1)} | ${cpuText(r.cpu)} | ${fmt(r.received)} / ${fmt(r.expected)} | ${integrity(r)} |`);
    out.push('');
  }

  out.push(...clusterSection(rows));

  const profiles = rows.filter((r) => r.scenario === 'profile');
  if (profiles.length) {
    out.push('## Gateway CPU profiles', '');
    for (const r of profiles) out.push(r.error ? `Profile × ${r.n}: **${r.error}**\n` : `${r.markdown}\nFull profile: \`${r.profile}\` (open in Chrome DevTools → Performance, or speedscope).\n`);
  }

  if (warnings.length) out.push('## Warnings', '', ...warnings.map((w) => `- ${w}`), '');
  return out.join('\n');
}

const CLUSTER_NOTE = 'indication only (2 cores)';
const clusterRun = (rows: R[], mode: string, n: number, arm: string) => find(rows, 'cluster', { mode, n, arm });
const clusterNs = (rows: R[]) => [...new Set(rows.filter((r) => r.scenario === 'cluster').map((r) => r.n as number))].sort((a, b) => a - b);

/**
 * The single-node figure without what the cluster's nodes do not run: the
 * management plugin's database and its statistics (the rig has no plugins).
 */
function withoutManagement(r: R | undefined): number | null {
  if (!r || typeof r.brokerPerSubscriptionKiB !== 'number') return null;
  const cats = (r.brokerKiBPerSubscriptionByCategory ?? {}) as Record<string, number>;
  return Math.round((r.brokerPerSubscriptionKiB - (cats.mgmt_db ?? 0) - (cats.metrics ?? 0)) * 10) / 10;
}

/** Issue 13: the cluster against one gateway on one node, ratios shown but not judged (one 2-core box). */
export function clusterTargets(rows: R[]): Target[] {
  const targets: Target[] = [];
  for (const n of clusterNs(rows)) {
    const s = clusterRun(rows, 'flat', n, 'single');
    const c = clusterRun(rows, 'flat', n, 'cluster');
    if (s || c) targets.push({ name: `cluster, fan-out ${n}: HAProxy + 3 gateways on 3 nodes / 1 gateway on 1 node`, detail: `${fmt(c?.deliveriesPerSec)} vs ${fmt(s?.deliveriesPerSec)} deliveries/s = ${fmt(ratio(c?.deliveriesPerSec, s?.deliveriesPerSec), 2)}×`, holds: null, note: CLUSTER_NOTE });
    const ps = clusterRun(rows, 'paced', n, 'single');
    const pc = clusterRun(rows, 'paced', n, 'cluster');
    if (ps || pc) targets.push({ name: `cluster, paced ${n}: p99 cluster / single`, detail: `${fmt(pc?.p99Ms, 2)} vs ${fmt(ps?.p99Ms, 2)} ms = ${fmt(ratio(pc?.p99Ms, ps?.p99Ms), 2)}×`, holds: null, note: CLUSTER_NOTE });
  }
  const mc = find(rows, 'cluster-memory', { arm: 'cluster' });
  const ms = find(rows, 'cluster-memory', { arm: 'single' });
  if (mc || ms) {
    targets.push({
      name: `cluster: broker memory per subscription, 3 nodes summed / 1 node (${fmt(mc?.n ?? ms?.n)} idle)`,
      detail: `${fmt(mc?.brokerPerSubscriptionKiB, 1)} vs ${fmt(ms?.brokerPerSubscriptionKiB, 1)} KiB = ${fmt(ratio(mc?.brokerPerSubscriptionKiB, ms?.brokerPerSubscriptionKiB), 2)}× (one node without its management plugin's share: ${fmt(withoutManagement(ms), 1)} KiB = ${fmt(ratio(mc?.brokerPerSubscriptionKiB, withoutManagement(ms)), 2)}×)`,
      holds: null,
      note: CLUSTER_NOTE,
    });
  }
  return targets;
}

/** The cluster scenario's section of the report (empty when it did not run). */
export function clusterSection(rows: R[]): string[] {
  const runs = rows.filter((r) => r.scenario === 'cluster');
  const memory = rows.filter((r) => r.scenario === 'cluster-memory');
  const rig = rows.find((r) => r.scenario === 'cluster-rig');
  if (!runs.length && !memory.length && !rig) return [];
  const out: string[] = [];
  out.push(
    '## Cluster: HAProxy → 3 gateways → 3-node RabbitMQ cluster, beside 1 gateway on 1 node (issue 13) — indication only (2 cores)',
    '',
    '*cluster*: clients through HAProxy (127.0.0.1:8180) to the three gateways of `scripts/cluster.sh`\'s rig, each connected to its own node of a three-node cluster (docs/cluster.md); ' +
      `the publisher on node tgc${rig?.publishNode ?? 1}, so a third of the deliveries are routed to queues on its own node and two thirds cross to the other nodes. ` +
      '*single*: one gateway on the bench\'s own broker (one node), exactly fan-out\'s `gateway` kind. Same run, same client counts, same publisher and the same checks on every delivery. ' +
      'The load generators\' socket.io clients are websocket-only: one TCP connection each, balanced round robin by HAProxy when it opens, so no stickiness is needed (HAProxy\'s `tg_gw` cookie matters to long-polling only).',
    '',
    '**Indication only.** Everything shares one 2-core box: the cluster arm runs three Erlang VMs, three gateways and HAProxy on the same two cores as the load generators, the publisher and the single node. ' +
      'The ratio says what the cluster\'s extra hops and inter-node traffic cost on one machine; it says nothing about what three hosts would scale to. CPU: "gateway" is the three gateways summed, "broker" the three nodes summed.',
    '',
  );
  if (rig) out.push(`Rig started in ${fmt((rig.startMs as number) / 1000, 0)} s (${rig.dir}).`, '');
  const ns = clusterNs(rows);
  if (ns.length) {
    out.push('### Flat out', '', '| clients | 1 gateway, 1 node | HAProxy, 3 gateways, 3 nodes | cluster / single | gateway CPU µs per delivery (single, cluster) | broker CPU µs per delivery (single, cluster) |', '|---:|---:|---:|---:|---|---|');
    for (const n of ns) {
      const s = clusterRun(rows, 'flat', n, 'single');
      const c = clusterRun(rows, 'flat', n, 'cluster');
      out.push(`| ${fmt(n)} | ${fmt(s?.deliveriesPerSec)} | ${fmt(c?.deliveriesPerSec)} | ${fmt(ratio(c?.deliveriesPerSec, s?.deliveriesPerSec), 2)} | ${fmt(s?.cpuUsPerDelivery?.gateway, 1)}, ${fmt(c?.cpuUsPerDelivery?.gateway, 1)} | ${fmt(s?.cpuUsPerDelivery?.broker, 1)}, ${fmt(c?.cpuUsPerDelivery?.broker, 1)} |`);
    }
    const target = runs.find((r) => r.targetDeliveriesPerSec)?.targetDeliveriesPerSec ?? 10000;
    out.push('', `### Paced at ${fmt(target)} deliveries/s`, '', '| clients | 1 gateway, 1 node: deliveries/s, p50 / p99 / max ms | HAProxy, 3 gateways, 3 nodes: deliveries/s, p50 / p99 / max ms | cluster p99 / single p99 |', '|---:|---|---|---:|');
    const lat = (r: R | undefined) => (r ? `${fmt(r.deliveriesPerSec)}: ${fmt(r.p50Ms, 2)} / ${fmt(r.p99Ms, 2)} / ${fmt(r.maxMs, 1)}` : '—');
    for (const n of ns) {
      const s = clusterRun(rows, 'paced', n, 'single');
      const c = clusterRun(rows, 'paced', n, 'cluster');
      out.push(`| ${fmt(n)} | ${lat(s)} | ${lat(c)} | ${fmt(ratio(c?.p99Ms, s?.p99Ms), 2)} |`);
    }
    out.push('', '### Every cluster-scenario run', '', '| mode | clients | arm | deliveries/s | p50 / p99 / max ms | CPU % | CPU µs per delivery | received / expected | integrity |', '|---|---:|---|---:|---|---|---|---|---|');
    for (const r of runs) {
      out.push(`| ${r.mode} | ${fmt(r.n)} | ${r.arm} | ${fmt(r.deliveriesPerSec)} | ${fmt(r.p50Ms, 2)} / ${fmt(r.p99Ms, 2)} / ${fmt(r.maxMs, 1)} | ${cpuText(r.cpu)} | ${perDeliveryText(r.cpuUsPerDelivery)} | ${fmt(r.received)} / ${fmt(r.expected)} | ${integrity(r)} |`);
    }
    out.push('');
  }
  if (memory.length) {
    out.push(
      '### Broker memory per idle subscription',
      '',
      'erlang:memory(total) before subscribing, with the subscriptions and after closing them, divided by the subscriptions: the mean of what subscribing added and what closing released (both shown). ' +
        'Cluster: the sum over its three nodes (`rabbitmqctl -n tgc1@localhost eval`, one `rpc:call` per node); per node, what each one\'s memory grew by, per subscription of the whole run. ' +
        'One node: the bench\'s broker through its management API, as the idle scenario measures it; that node runs the management plugin (its database and statistics cost memory per queue and channel) and the rig\'s nodes run no plugin, so the single-node figure is also shown without the `mgmt_db` and `metrics` categories.',
      '',
      '| arm | subscribed | broker KiB per subscription (added, released) | per node (KiB per subscription) | one node without mgmt_db, metrics | queues added | failures |',
      '|---|---|---|---|---:|---:|---|',
    );
    for (const r of memory) {
      if (r.error) {
        out.push(`| ${r.arm} | — | — | — | — | — | **${r.error}** |`);
        continue;
      }
      const perNode = r.brokerPerNodeAddedKiB ? Object.entries(r.brokerPerNodeAddedKiB as Record<string, number>).map(([k, v]) => `${k.replace(/@.*/, '')} ${fmt(v, 1)}`).join(', ') : (Object.entries((r.brokerKiBPerSubscriptionByCategory ?? {}) as Record<string, number>).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || '—');
      out.push(
        `| ${r.arm === 'cluster' ? 'HAProxy, 3 gateways, 3 nodes' : '1 gateway, 1 node'} | ${fmt(r.subscriptions)} of ${fmt(r.n)} | ${fmt(r.brokerPerSubscriptionKiB, 1)} (${fmt(r.brokerAddedKiB, 1)}, ${fmt(r.brokerReleasedKiB, 1)})${r.brokerNoisy ? ' **noisy**' : ''} | ${r.arm === 'single' ? `by category: ${perNode}` : perNode} | ${r.arm === 'single' ? fmt(withoutManagement(r), 1) : '—'} | ${fmt(r.queuesAdded)} | ${(r.failures as string[] | undefined)?.join('; ') ?? ''} |`,
      );
    }
    const idleGw = rows.filter((r) => r.scenario === 'idle' && r.kind === 'gateway' && !r.error);
    if (idleGw.length) out.push('', `The idle scenario of this run measured ${idleGw.map((r) => `${fmt(r.brokerPerSubscriptionKiB, 1)} KiB per subscription at ${fmt(r.n)}`).join(', ')} on the one node.`);
    out.push('');
  }
  return out;
}

/** The raw results file (`<run id>.raw.json`), with paths relative to the repository like the report's. */
export function rawResults(rows: R[], meta: Record<string, string>, warnings: string[]): string {
  return JSON.stringify(withRepoRelativePaths({ meta, rows, warnings }), null, 2);
}
