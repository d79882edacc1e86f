/**
 * The soak's verdict: PASS/FAIL judgements from what the workers counted,
 * what the samples show and what the gateway logged; each loss cross-checked
 * against the publisher (was it confirmed?), the broker (was the
 * subscription's queue there?) and the gateway log (a channel closed
 * around then?). Printed, and written as JSON.
 */
import type { LossRecord, Problem } from './checker.js';
import type { LogEvent, LogSummary } from './gateway-log.js';
import type { InitResult, PublisherFinal, Ranges, WorkerCounters } from './messages.js';
import type { SoakOptions } from './options.js';
import type { Sample } from './sampler.js';
import { total } from './totals.js';
import type { ChaosEvent } from './chaos.js';

export type Verdict = 'PASS' | 'FAIL' | 'WARN' | 'SKIP';

export interface Judgement {
  verdict: Verdict;
  name: string;
  detail: string;
}

export interface QueueCheck {
  /** Subscriptions the clients held at the end, and the gateway's queues the broker had then. */
  live: number;
  onBroker: number;
  /** Live subscriptions without a queue, and queues without a live subscription. */
  missing: string[];
  orphans: string[];
  /** The gateway's queues left once it had stopped (null: not checked). */
  afterStop: string[] | null;
}

export interface Outcome {
  runId: string;
  startedAt: string;
  /** Seconds of publishing and churn, and of the whole run (start-up, drain and checks included). */
  churnS: number;
  totalS: number;
  options: SoakOptions;
  gatewayId: string;
  exchange: string;
  files: { report: string; gatewayLog: string };
  expectedFanout: number;
  init: InitResult | null;
  publisher: PublisherFinal | null;
  counters: WorkerCounters | null;
  losses: LossRecord[];
  lossesOmitted: number;
  problems: Problem[];
  samples: Sample[];
  /** The last sample, taken after the publisher stopped and the clients drained. */
  endSample: Sample | null;
  queues: QueueCheck | null;
  log: LogSummary;
  latency: { p50Ms: number | null; p99Ms: number | null; maxMs: number | null };
  slowLatency: { p50Ms: number | null; p99Ms: number | null; maxMs: number | null };
  brokerOutages: number;
  chaos: { events: ChaosEvent[]; errors: number };
  warnings: string[];
  /** Why the run stopped early, if it did. */
  fatal: string | null;
}

export interface LossCheck {
  loss: LossRecord;
  /** Messages of the run the broker confirmed (not in an unconfirmed or nacked range). */
  confirmed: number;
  /** When the first and last lost message were published (wall clock, ISO). */
  publishedAt: [string, string] | null;
  /** Samples (s since start) in which the broker had this subscription's queue. */
  queueSeen: { first: number; last: number } | null;
  /**
   * The channel closes and error lines of the gateway log nearest the loss:
   * the last one before it was published and the first one after (within 2
   * minutes; a lost message may sit in a queue for a while before the
   * channel carrying it dies).
   */
  nearby: Array<LogEvent & { secondsFromPublish: number }>;
}

export interface LossContext {
  gatewayId: string;
  publisher: PublisherFinal | null;
  /** [g, t] from the publisher: messages below g were sent at or before t. */
  checkpoints: Array<[number, number]>;
  /** Add to a shared-clock µs to get wall-clock µs. */
  clockOffsetUs: number;
  queueSightings: Map<string, { first: number; last: number }>;
  log: LogSummary;
  keySpaceSize: number;
}

const NEARBY_MS = 120_000;

/** The publish time window of message g, in wall-clock ms. */
function publishWindow(ctx: LossContext, g: number): [number, number] | null {
  const cps = ctx.checkpoints;
  if (cps.length === 0) return null;
  // Last checkpoint with G <= g (sent after its t), first with G > g (sent at or before its t).
  let lo = 0;
  let hi = cps.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cps[mid]![0] <= g) lo = mid + 1;
    else hi = mid;
  }
  const after = lo > 0 ? cps[lo - 1]![1] : cps[0]![1];
  const before = lo < cps.length ? cps[lo]![1] : cps[cps.length - 1]![1];
  return [(after + ctx.clockOffsetUs) / 1000, (before + ctx.clockOffsetUs) / 1000];
}

function inRanges(ranges: Ranges, g: number): boolean {
  return ranges.some(([a, b]) => g >= a && g <= b);
}

export function crossCheck(loss: LossRecord, ctx: LossContext): LossCheck {
  const unsure = [...(ctx.publisher?.unconfirmedRanges ?? []), ...(ctx.publisher?.nackedRanges ?? [])];
  let confirmed = 0;
  for (let g = loss.gFrom; g <= loss.gTo; g += ctx.keySpaceSize) if (!inRanges(unsure, g)) confirmed++;
  const first = publishWindow(ctx, loss.gFrom);
  const last = publishWindow(ctx, loss.gTo);
  const from = first ? first[0] : null;
  const to = last ? last[1] : null;
  const nearby: LossCheck['nearby'] = [];
  if (from !== null && to !== null) {
    const before = ctx.log.events.filter((e) => e.time < from && e.time >= from - NEARBY_MS).pop();
    const after = ctx.log.events.find((e) => e.time >= from && e.time <= to + NEARBY_MS);
    for (const e of [before, after]) if (e) nearby.push({ ...e, secondsFromPublish: Math.round((e.time - from) / 100) / 10 });
  }
  return {
    loss,
    confirmed,
    publishedAt: from === null || to === null ? null : [new Date(from).toISOString(), new Date(to).toISOString()],
    queueSeen: ctx.queueSightings.get(`topicgate.${ctx.gatewayId}.${loss.id}`) ?? null,
    nearby,
  };
}

/** Least-squares slope of y over x. */
export function slope(points: Array<[number, number]>): number | null {
  if (points.length < 3) return null;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? null : num / den;
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const fmt = (x: number | null | undefined, digits = 0) =>
  x === null || x === undefined || Number.isNaN(x) ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const byKey = (record: Record<string, number> | undefined) =>
  Object.keys(record ?? {}).length === 0 ? 'none' : Object.entries(record!).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k || '?'} ${fmt(v)}`).join(', ');

/** The value after warm-up (median of the first minute after it) and at the end, for one sampled series. */
function levels(outcome: Outcome, pick: (s: Sample) => number | null): { warm: number | null; end: number | null; max: number | null } {
  const { samples, endSample, options } = outcome;
  const after = samples.filter((s) => s.atS >= options.warmupSeconds && s !== endSample);
  const window = after.filter((s) => s.atS < options.warmupSeconds + 60);
  const values = (list: Sample[]) => list.map(pick).filter((v): v is number => v !== null);
  const warm = median(values(window.length ? window : after.slice(0, 1)));
  const all = values(samples);
  return { warm, end: endSample ? pick(endSample) : null, max: all.length ? Math.max(...all) : null };
}

export interface Growth {
  mibPerHour: number | null;
  fittedMinutes: number;
}

/** MiB per hour from a linear fit of a memory series after warm-up. */
export function growth(outcome: Outcome, pick: (s: Sample) => number | null): Growth {
  const points = outcome.samples
    .filter((s) => s.atS >= outcome.options.warmupSeconds)
    .map((s): [number, number | null] => [s.atS / 3600, pick(s)])
    .filter((p): p is [number, number] => p[1] !== null);
  const fitted = points.length > 1 ? (points[points.length - 1]![0] - points[0]![0]) * 60 : 0;
  const perHour = slope(points);
  return { mibPerHour: perHour === null ? null : Math.round(perHour * 10) / 10, fittedMinutes: Math.round(fitted * 10) / 10 };
}

export function judge(outcome: Outcome, checks: LossCheck[]): Judgement[] {
  const j: Judgement[] = [];
  const add = (verdict: Verdict, name: string, detail: string) => j.push({ verdict, name, detail });
  const pass = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
  const { counters: c, options: o, log } = outcome;

  if (outcome.fatal) add('FAIL', 'the soak ran to the end', outcome.fatal);
  if (!c) {
    add('FAIL', 'the clients reported their counts', 'no worker reported');
    return j;
  }
  const k = c.check;
  // Loss records cover every loss unless some were omitted; those count as confirmed (the strict reading).
  const silent = checks.filter((x) => !x.loss.announced);
  const silentConfirmed = silent.reduce((s, x) => s + x.confirmed, 0) + (outcome.lossesOmitted > 0 ? k.lost - silent.reduce((s, x) => s + x.loss.count, 0) : 0);
  const subs = new Set(silent.map((x) => `${x.loss.client}/${x.loss.id}`)).size;
  add(
    pass(silentConfirmed === 0),
    'no message lost without a resync',
    `${fmt(k.judged)} expected deliveries judged; ${fmt(k.lost)} missing without a resync (${fmt(silentConfirmed)} of them confirmed by the broker) in ${fmt(subs)} subscriptions; ${fmt(k.lostAnnounced)} missing before a resync (tolerated)`,
  );
  add(pass(k.duplicates === 0), 'no duplicate delivery', `${fmt(k.duplicates)} duplicates in ${fmt(k.deliveries)} deliveries checked`);
  add(pass(k.outOfOrder === 0), 'per-key order', `${fmt(k.outOfOrder)} out of order (${fmt(k.crossKeyReorders)} across keys, not required)`);
  add(pass(k.seqGaps === 0), 'protocol seq grows by exactly 1 between resyncs', `${fmt(k.seqGaps)} gaps`);
  const stray = c.afterEnd + c.unknownSubscription + k.corrupt;
  add(pass(stray === 0), 'nothing delivered after its subscription ended, for an unknown id, or altered', `${fmt(c.afterEnd)} after the end, ${fmt(c.unknownSubscription)} for unknown ids, ${fmt(k.corrupt)} altered bodies`);
  const closes = log.channelClosed + log.consumerChannelClosed;
  add(pass(closes === 0), 'no channel closed (gateway log)', `"${'the broker closed a channel'}" ×${log.channelClosed}, "the broker closed a consumer channel" ×${log.consumerChannelClosed}`);
  add(pass(log.errors === 0), 'no error-level line in the gateway log', `${log.errors} lines at level ≥ 50`);

  const q = outcome.queues;
  if (!q) add('FAIL', 'queues == live subscriptions at the end', 'not checked (the run stopped early)');
  else {
    add(
      pass(q.missing.length === 0 && q.orphans.length === 0),
      'queues == live subscriptions at the end',
      `${q.onBroker} queues, ${q.live} live subscriptions; ${q.missing.length} subscriptions without a queue, ${q.orphans.length} queues without a subscription${q.orphans.length ? ` (${q.orphans.slice(0, 3).join(', ')})` : ''}`,
    );
    if (q.afterStop === null) add('FAIL', 'no queue left after the gateway stopped', 'not checked');
    else add(pass(q.afterStop.length === 0), 'no queue left after the gateway stopped', `${q.afterStop.length} left${q.afterStop.length ? ` (${q.afterStop.slice(0, 3).join(', ')})` : ''}`);
  }

  const ch = levels(outcome, (s) => s.channels);
  if (ch.warm === null || ch.end === null) add('FAIL', 'channels flat', 'the management API gave no channel count');
  else add(pass(ch.end <= ch.warm + o.channelSlack), 'channels flat', `${ch.warm} after warm-up, ${ch.end} at the end (max ${ch.max}; bound +${o.channelSlack})`);

  const fd = levels(outcome, (s) => s.fds);
  if (fd.warm === null || fd.end === null) add('FAIL', 'file descriptors flat', 'not sampled');
  else add(pass(fd.end <= fd.warm + o.fdSlack), 'file descriptors flat', `${fd.warm} after warm-up, ${fd.end} at the end (max ${fd.max}; bound +${o.fdSlack})`);

  const rss = growth(outcome, (s) => s.rssMiB);
  const rssText = `${fmt(rss.mibPerHour, 1)} MiB/h over ${rss.fittedMinutes} min after warm-up (bound ${o.maxRssMiBPerHour} MiB/h)`;
  if (rss.mibPerHour === null) add('FAIL', 'RSS growth', 'too few samples');
  else if (rss.fittedMinutes < o.minFitMinutes) add('SKIP', 'RSS growth', `${rssText}: under ${o.minFitMinutes} min fitted, too short to judge`);
  else add(pass(rss.mibPerHour <= o.maxRssMiBPerHour), 'RSS growth', rssText);

  const p99 = outcome.latency.p99Ms;
  // Latency is the one judgement other load on the box moves: say how busy it was.
  const others = median(outcome.samples.map((s) => s.cpu.others ?? 0));
  const machine = median(outcome.samples.map((s) => s.cpu.machine ?? 0));
  add(
    p99 === null ? 'FAIL' : pass(p99 <= o.maxP99Ms),
    'latency',
    `p50 ${fmt(outcome.latency.p50Ms, 1)} ms, p99 ${fmt(p99, 1)} ms (bound ${o.maxP99Ms} ms), max ${fmt(outcome.latency.maxMs, 0)} ms, slow client apart; ` +
      `machine ${machine ?? '?'} % busy of 200, ${others ?? '?'} % by processes not the soak's (medians)`,
  );

  // Not failures, but the run did not exercise what it meant to, or something else interfered.
  if (c.pauses > 0 && (c.slowResyncs.overflow ?? 0) === 0) {
    add('WARN', 'the slow client overflowed', `${c.pauses} pauses and no overflow resync: raise --slow-pause or lower --client-buffer-bytes`);
  }
  if (outcome.brokerOutages > 0) add('WARN', 'the broker stayed up', `${outcome.brokerOutages} outages (not caused by the soak): resyncs "reconnected" and refused subscribes are expected around them`);
  const unplanned = total(c.unplannedDisconnects) - c.slowDisconnects;
  if (unplanned > 0) add('WARN', 'no unplanned disconnect', `${unplanned} clients disconnected without being cut: ${byKey(c.unplannedDisconnects)}`);
  if (c.slowDisconnects > 0) add('WARN', 'the slow client stayed connected', `${c.slowDisconnects} disconnects (a pause longer than the ping timeout?)`);
  return j;
}

export function render(outcome: Outcome, checks: LossCheck[], judgements: Judgement[], growthHeap: Growth): string {
  const o = outcome.options;
  const c = outcome.counters;
  const lines: string[] = [];
  const add = (line = '') => lines.push(line);
  add(`== topicgate soak ${outcome.runId}: ${fmt(outcome.churnS / 60, 1)} min of churn (${fmt(outcome.totalS / 60, 1)} min in all), ${o.clients} clients, ${o.subscriptions} subscriptions, ${fmt(o.rate)} messages/s ==`);
  add(`gateway ${outcome.gatewayId} (exchange ${outcome.exchange}); keys ${o.streams}×${o.events}; expected fan-out ${fmt(outcome.expectedFanout, 1)} deliveries per message`);
  if (outcome.init) add(`start: ${outcome.init.connected} clients connected, ${outcome.init.subscribed} subscriptions acked${outcome.init.failures.length ? ` (${outcome.init.failures.join('; ')})` : ''}`);
  const p = outcome.publisher;
  if (p) add(`published ${fmt(p.published)} (confirmed ${fmt(p.confirmed)}, unconfirmed ${fmt(p.unconfirmed)}, nacked ${fmt(p.nacked)}; publisher reconnects ${p.reconnects}, late ticks ${p.lateTicks})`);
  if (c) {
    const k = c.check;
    add(`deliveries checked ${fmt(k.deliveries)}; ${fmt(k.judged)} expected deliveries judged in ${fmt(k.segments - k.unjudgedSegments)} segments (${fmt(k.unjudgedSegments)} too short to judge)`);
    add(`subscribes ${fmt(c.subscribes)}; churn pairs ${fmt(c.churnPairs)}; cuts ${byKey(c.cuts)}; reconnects ${fmt(c.reconnects)}`);
    add(`refreshes ${byKey(c.refreshes)}; unsubscribed by the gateway: ${byKey(c.unsubscribed)}`);
    add(`resyncs ${byKey(c.resyncs)} (slow client: ${byKey(c.slowResyncs)}, ${c.pauses} pauses)`);
    add(`refused: subscribe ${byKey(c.subscribeErrors)}; unsubscribe ${byKey(c.unsubscribeErrors)}; refresh ${byKey(c.refreshErrors)}; connect ${byKey(c.connectFailures)}`);
    add(`unplanned disconnects ${byKey(c.unplannedDisconnects)}`);
  }
  const l = outcome.latency;
  const sl = outcome.slowLatency;
  add(`latency publish → client: p50 ${fmt(l.p50Ms, 1)} ms, p99 ${fmt(l.p99Ms, 1)} ms, max ${fmt(l.maxMs)} ms; slow client p50 ${fmt(sl.p50Ms, 1)} ms, p99 ${fmt(sl.p99Ms)} ms`);
  const first = outcome.samples[0];
  const end = outcome.endSample;
  if (first && end) {
    const rss = growth(outcome, (s) => s.rssMiB);
    add(
      `gateway: RSS ${first.rssMiB} → ${end.rssMiB} MiB (${fmt(rss.mibPerHour, 1)} MiB/h after warm-up), heap after GC ${fmt(growthHeap.mibPerHour, 1)} MiB/h, ` +
        `fds ${first.fds} → ${end.fds}, channels ${first.channels ?? '?'} → ${end.channels ?? '?'} (gateway's count ${end.channelsMetric ?? '?'})`,
    );
    const cpu = (key: string) => median(outcome.samples.map((s) => s.cpu[key] ?? 0));
    add(`CPU (median % of one core): gateway ${cpu('gateway')}, broker ${cpu('broker')}, workers ${cpu('workers')}, publisher ${cpu('publisher')}, soak ${cpu('soak')}, others ${cpu('others')} (not the soak's), machine ${cpu('machine')} of 200`);
  }
  const q = outcome.queues;
  if (q) add(`broker: ${q.onBroker} queues for ${q.live} live subscriptions at the end; ${q.afterStop?.length ?? '?'} after the gateway stopped`);
  const log = outcome.log;
  add(`gateway log: ${fmt(log.lines)} lines; channel closes ${log.channelClosed}, consumer channel closes ${log.consumerChannelClosed}, error lines ${log.errors} (${outcome.files.gatewayLog})`);
  const warnByMsg = Object.entries(log.byMessage).sort((a, b) => b[1] - a[1]).slice(0, 8);
  for (const [msg, n] of warnByMsg) add(`  ${String(n).padStart(6)} × ${msg}`);
  for (const e of log.events.slice(0, 5)) add(`  ${new Date(e.time).toISOString()} [${e.level}] ${e.msg} ${e.detail}`);

  const silent = checks.filter((x) => !x.loss.announced);
  if (silent.length) {
    add();
    add(`Losses without a resync (${silent.length} runs${outcome.lossesOmitted ? `, ${outcome.lossesOmitted} more not listed` : ''}; first 10):`);
    for (const x of silent.slice(0, 10)) {
      const r = x.loss;
      add(
        `  client ${r.client}#${r.connection} sub ${r.id} "${r.pattern}" key ${r.key} n ${r.nFrom}${r.nTo > r.nFrom ? `..${r.nTo}` : ''} (${r.count}): ` +
          `${x.confirmed === r.count ? 'all confirmed by the broker' : `${x.confirmed}/${r.count} confirmed`}; ` +
          `queue ${x.queueSeen ? `on the broker from ${x.queueSeen.first} s to ${x.queueSeen.last} s` : 'never seen in a sample'}; ` +
          `${r.inside ? 'later messages of the subscription arrived' : 'nothing later arrived'}; segment ended by ${r.segmentEnd}; published ${x.publishedAt?.[0] ?? '?'}`,
      );
      for (const e of x.nearby) add(`      log ${e.secondsFromPublish >= 0 ? '+' : ''}${e.secondsFromPublish} s: ${e.msg} ${e.detail}`);
    }
  }
  const problems = outcome.problems;
  if (problems.length) {
    add();
    add(`Other problems (first 10 of ${problems.length} listed):`);
    for (const pr of problems.slice(0, 10)) add(`  ${pr.kind}: client ${pr.client}#${pr.connection} sub ${pr.id} "${pr.pattern}" key ${pr.key}: ${pr.detail}`);
  }
  if (outcome.warnings.length) {
    add();
    for (const w of outcome.warnings) add(`warning: ${w}`);
  }
  add();
  add('Judgements:');
  for (const x of judgements) add(`  ${x.verdict.padEnd(4)}  ${x.name}: ${x.detail}`);
  add();
  add(`report: ${outcome.files.report}`);
  return lines.join('\n') + '\n';
}
