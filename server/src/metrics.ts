/**
 * Prometheus metrics (prom-client). One registry per gateway, so several
 * gateways in one process (tests, the demo) do not collide.
 */
import { ErrorCode, ResyncReason } from '@topicgate/shared';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BodyDropReason } from './mq/message-body.js';

/** The codes a subscribe can be refused with (docs/protocol.md §5). */
const SUBSCRIBE_ERROR_CODES = [ErrorCode.InvalidPattern, ErrorCode.Forbidden, ErrorCode.LimitExceeded, ErrorCode.Unavailable, ErrorCode.BadRequest, ErrorCode.Refused];

/**
 * A labelled counter has no sample for a label value until it first counts
 * one, and `rate()` or an alert over a missing series sees nothing rather
 * than 0. Every known value starts at 0.
 */
function startAtZero<L extends string>(counter: Counter<L>, label: L, values: readonly string[]): Counter<L> {
  for (const value of values) counter.inc({ [label]: value } as Partial<Record<L, string>>, 0);
  return counter;
}

export function createMetrics(channels: () => number) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'topicgate_' });
  const registers = [registry];
  return {
    registry,
    connections: new Gauge({ name: 'topicgate_connections', help: 'Open socket.io connections', registers }),
    subscriptions: new Gauge({ name: 'topicgate_subscriptions', help: 'Live subscriptions (one queue each)', registers }),
    deliveries: new Counter({ name: 'topicgate_deliveries_total', help: 'Messages relayed to clients', registers }),
    deliveredBytes: new Counter({ name: 'topicgate_delivered_bytes_total', help: 'Approximate bytes of deliveries relayed to clients (bodies, keys, envelope)', registers }),
    drops: new Counter({ name: 'topicgate_dropped_deliveries_total', help: 'Deliveries dropped because a client could not keep up', registers }),
    resyncs: startAtZero(
      new Counter({ name: 'topicgate_resyncs_total', help: 'resync notices sent, by reason', labelNames: ['reason'] as const, registers }),
      'reason',
      Object.values(ResyncReason),
    ),
    droppedMessages: startAtZero(
      new Counter({
        name: 'topicgate_dropped_messages_total',
        help: 'Messages dropped because their body cannot be relayed (not a JSON object, undecodable text, compressed), by reason; once per message however many subscriptions it reached',
        labelNames: ['reason'] as const,
        registers,
      }),
      'reason',
      Object.values(BodyDropReason),
    ),
    resumes: startAtZero(
      new Counter({
        name: 'topicgate_resumes_total',
        help: 'subscribe requests that presented a resume claim, by outcome: resumed, or the resync reason of the fresh subscription made instead',
        labelNames: ['outcome'] as const,
        registers,
      }),
      'outcome',
      ['resumed', ResyncReason.Expired, ResyncReason.Overflow, ResyncReason.Lost, ResyncReason.Interrupted],
    ),
    brokerReconnects: new Counter({ name: 'topicgate_broker_reconnects_total', help: 'Broker connections re-established after a loss', registers }),
    rejectedSubscribes: startAtZero(
      new Counter({ name: 'topicgate_subscribe_errors_total', help: 'subscribe requests refused, by error code', labelNames: ['code'] as const, registers }),
      'code',
      SUBSCRIBE_ERROR_CODES,
    ),
    subscribeLatency: new Histogram({
      name: 'topicgate_subscribe_seconds',
      help: 'Time from a subscribe request to its ack (queue declared, bound and consuming)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    channels: new Gauge({
      name: 'topicgate_broker_channels',
      help: 'AMQP channels this gateway holds open',
      registers,
      collect() {
        this.set(channels());
      },
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
