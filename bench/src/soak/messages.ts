/**
 * What the soak's orchestrator, its load workers and its publisher say to
 * each other over Node's IPC channel.
 */
import type { HistogramData } from '../stats.js';
import type { CheckCounters, LossRecord, Problem } from './checker.js';
import type { Scope } from './keys.js';

/** How a client is cut: socket.io `disconnect()`, engine.io transport close, TCP close (FIN) or TCP reset (RST). */
export const CUT_METHODS = ['disconnect', 'transport-close', 'destroy', 'reset'] as const;
export type CutMethod = (typeof CUT_METHODS)[number];

export interface WorkerConfig {
  gatewayUrl: string;
  gatewayId: string;
  jwtSecret: string;
  /** Token lifetime; longer than the run, expiry is not what the soak exercises. */
  tokenTtlSeconds: number;
  streams: number;
  events: number;
  /** Global ids of this worker's clients, and their subscription targets. */
  clients: Array<{ id: number; subscriptions: number; slow: boolean }>;
  /** Unsubscribe+subscribe pairs per second this worker does. */
  churnPerSecond: number;
  seed: number;
}

export type WorkerCommand =
  | { op: 'init'; config: WorkerConfig }
  | { op: 'start' }
  | { op: 'cut'; client: number; method: CutMethod }
  | { op: 'refresh'; client: number; scope: Scope }
  | { op: 'pause'; client: number; ms: number }
  | { op: 'sample' }
  | { op: 'quiesce' }
  | { op: 'drain'; gEnd: number }
  | { op: 'collect'; gEnd: number }
  | { op: 'close' };

/** Counters of everything a worker did and saw, cumulative. */
export interface WorkerCounters {
  check: CheckCounters;
  resyncs: Record<string, number>;
  /** `unsubscribed` notices from the gateway, by reason. */
  unsubscribed: Record<string, number>;
  subscribeErrors: Record<string, number>;
  unsubscribeErrors: Record<string, number>;
  refreshErrors: Record<string, number>;
  subscribes: number;
  churnPairs: number;
  cuts: Record<string, number>;
  refreshes: Record<string, number>;
  reconnects: number;
  connectFailures: Record<string, number>;
  /** Disconnects the soak did not cause, by socket.io reason. */
  unplannedDisconnects: Record<string, number>;
  pauses: number;
  /** The slow client's resyncs and disconnects, also counted in the totals. */
  slowResyncs: Record<string, number>;
  slowDisconnects: number;
  /** Deliveries for a subscription after its unsubscribe ack or its `unsubscribed` notice. */
  afterEnd: number;
  /** Deliveries for an id no subscribe ack ever named (held, then given up on). */
  unknownSubscription: number;
}

export interface WorkerSample {
  connectedClients: number;
  liveSubscriptions: number;
  pendingRequests: number;
  /** Publish → receive latency since the previous sample, the slow client apart. */
  latency: HistogramData;
  slowLatency: HistogramData;
  counters: WorkerCounters;
}

export interface WorkerResult {
  counters: WorkerCounters;
  losses: LossRecord[];
  /** Loss records left out of `losses` to keep the reply small (their counts are in `counters`). */
  lossesOmitted: number;
  problems: Problem[];
  /** Queue names of the subscriptions clients hold now. */
  liveQueues: string[];
}

export interface InitResult {
  connected: number;
  subscribed: number;
  failures: string[];
}

export interface DrainStatus {
  /** Live subscriptions still missing messages up to gEnd. */
  behind: number;
  /** Deliveries so far (to tell progress from a stall). */
  deliveries: number;
}

export interface PublisherPlan {
  amqpUrl: string;
  exchange: string;
  streams: number;
  events: number;
  rate: number;
  bodyBytes: number;
  connectionName: string;
}

export type PublisherCommand = { op: 'start'; plan: PublisherPlan } | { op: 'stop' };

/** [from, to] inclusive ranges of global sequence numbers. */
export type Ranges = Array<[number, number]>;

export interface PublisherProgress {
  /** Messages handed to the channel so far (the next g). */
  published: number;
  confirmed: number;
  nacked: number;
  /** In flight when the connection was lost: may or may not have been routed. */
  unconfirmed: number;
  reconnects: number;
  /** Ticks on which the publisher was more than 5 ms behind its schedule. */
  lateTicks: number;
  /** [g, t]: messages below g were sent at or before t (µs, shared clock). */
  checkpoints: Array<[number, number]>;
}

export interface PublisherFinal extends PublisherProgress {
  /** The last g published (-1: none). */
  lastG: number;
  nackedRanges: Ranges;
  unconfirmedRanges: Ranges;
}

/** Replies and unsolicited events from a child (worker or publisher). */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: string }
  | { type: 'event'; event: unknown };
