/**
 * What the orchestrator, the load generators and the publisher say to each
 * other over Node's IPC channel, and the message body every publisher sends.
 */
import type { HistogramData } from './stats.js';

/**
 * The ways a "browser" can receive the same messages: the gateway (default
 * subscriptions, or `resumable` ones on a gateway with a resume window,
 * confirmed with `received`), raw amqplib, Web-STOMP, and Web-MQTT with a
 * persistent session and QoS 1 (the broker's own resumable peer).
 */
export type ClientKind = 'gateway' | 'resumable' | 'amqp' | 'amqp-held' | 'stomp' | 'mqtt';

/** Kinds that go through a topicgate gateway process. */
export const isGatewayKind = (kind: ClientKind): kind is 'gateway' | 'resumable' => kind === 'gateway' || kind === 'resumable';

/**
 * A published body (~200 bytes of JSON): `s` stream, `n` sequence number in
 * that stream (from 1), `t` send time on the shared monotonic clock (µs),
 * `m` 1 once the measurement window has started, `pad` filler.
 */
export interface BenchBody {
  s: number;
  n: number;
  t: number;
  m: 0 | 1;
  pad?: string;
  line?: string;
}

export interface ClientPlan {
  /** One subscription per pattern. */
  patterns: string[];
}

export type WorkerCommand =
  | {
      op: 'connect';
      kind: ClientKind;
      clients: ClientPlan[];
      gatewayUrl: string;
      amqpUrl: string;
      stompUrl: string;
      mqttUrl: string;
      /** MQTT client ids start with this (their session queues are `mqtt-subscription-<client id>qos1`). */
      mqttClientPrefix: string;
      exchange: string;
      queuePrefix: string;
      concurrency: number;
      rawSharedChannel: boolean;
      /** The resumable gateways' window: `amqp-held` queues expire after it, as theirs do. */
      resumeWindowMs: number;
    }
  | { op: 'reset' }
  | { op: 'progress'; stream: number; everyMs: number }
  | { op: 'stats' }
  | { op: 'churn'; durationMs: number; loops: number; pattern: string }
  | { op: 'close' };

export interface ConnectResult {
  connected: number;
  subscribed: number;
  failures: string[];
  ms: number;
}

export interface WorkerStats {
  clients: number;
  subscriptions: number;
  deliveries: number;
  /** Deliveries per 100 ms slot of the shared clock. */
  series: Array<[number, number]>;
  latency: HistogramData;
  distinct: number;
  duplicates: number;
  outOfOrder: number;
  /** Gateway only: a delivery whose protocol `seq` was not the previous one + 1. */
  seqErrors: number;
  resyncs: Record<string, number>;
  unsubscribed: number;
  disconnects: number;
  /** Resumable: `received` requests sent, and those answered other than `{ ok: true }` (or not at all). */
  receipts: number;
  receiptErrors: number;
  /** Gateway kinds: `messages` events (batches of deliveries) received. */
  batches: number;
  /** Per stream: distinct sequence numbers received, summed over clients (to compute losses). */
  perStream: Record<string, number>;
  /** Per stream: how many subscriptions expect it. */
  subscribersPerStream: Record<string, number>;
}

export interface ChurnResult {
  pairs: number;
  errors: number;
  firstError?: string;
  latency: HistogramData;
}

export type WorkerReply = { type: 'reply'; id: number; ok: true; value: unknown } | { type: 'reply'; id: number; ok: false; error: string };
export type WorkerEvent = WorkerReply | { type: 'progress'; min: number } | { type: 'ready' };

export interface PublishPlan {
  amqpUrl: string;
  exchange: string;
  /** One stream per key; the stream number is the index + `firstStream`. */
  keys: string[];
  firstStream: number;
  /** `flat`: as fast as the consumers allow (closed loop on `credit`); `paced`: `rate` messages/s in total. */
  mode: 'flat' | 'paced';
  rate: number;
  warmupMs: number;
  measureMs: number;
  bodyBytes: number;
  /** Log-tail bodies carry a text line instead of padding. */
  logLines?: boolean;
}

export type PublisherCommand = { op: 'start'; plan: PublishPlan } | { op: 'credit'; upTo: number } | { op: 'stop' };

export interface PublishResult {
  /** Messages published per stream. */
  published: Record<string, number>;
  /** Shared-clock µs at which the measurement window began and ended. */
  measureFromUs: number;
  measureToUs: number;
  /** Publish calls that were paced late by more than 5 ms (publisher could not keep up). */
  lateTicks: number;
}

export type PublisherEvent = { type: 'ready' } | { type: 'started' } | { type: 'done'; result: PublishResult } | { type: 'error'; error: string };
