/**
 * Fleet-wide control over the broker (docs/protocol.md §10.5, §12.7):
 * `topicgate revoke --sub NAME` publishes to the control exchange
 * `<TOPICGATE_EXCHANGE>.control` (a durable topic exchange, declared by
 * whoever uses it first), and every gateway sharing the broker consumes it
 * through an exclusive queue of its own, `<control exchange>.<gateway id>`,
 * bound with `#`. Nothing else is shared between gateways.
 *
 * Each gateway reaches the control exchange over a second, small AMQP
 * connection (`topicgate <gateway-id> control`), kept apart from the one that
 * carries subscriptions: its consumer sits on no channel a client's
 * subscription can break, and the MQ connector reconnects it after a broker
 * restart or a cut connection and declares its queue again. What is published
 * while a gateway is disconnected, or before it starts, does not reach it (a
 * warning is logged when that can have happened).
 */
import type { ReadonlyJsonObject } from '@topicgate/shared';
import type { Logger } from './log.js';
import { AmqpConnector } from './mq/amqp.js';
import { UnavailableError, type Consumer, type MqMessage } from './mq/connector.js';

/** The control exchange of a gateway whose topic exchange is `exchange`. */
export function controlExchange(exchange: string): string {
  return `${exchange}.control`;
}

/** Routing key of a revocation on the control exchange. */
export const REVOKE_KEY = 'revoke';

/** Routing key of a takeover: a resume asks whichever gateway consumes the queue to let go (docs/protocol.md §15.3). */
export const TAKEOVER_KEY = 'takeover';

export interface ControlHandlers {
  onRevoke: (revocation: RevokeMessage) => void;
  /** A resume elsewhere wants this queue: detach it if this gateway holds it. */
  onTakeover: (queue: string) => void;
}

/** The longest subject a revocation may name (a token's `sub` is a short id in practice). */
const MAX_SUBJECT_LENGTH = 1024;

/** A revocation as it travels: `{ "sub": "alice", "at": <epoch ms> }`. */
export interface RevokeMessage {
  /** The token subject whose connections end and whose earlier tokens are refused. */
  sub: string;
  /** When it was revoked, epoch milliseconds (the publisher's clock). */
  at: number;
}

/** Reads a revocation from a control message body; a string says why it is not one. */
export function parseRevokeMessage(body: ReadonlyJsonObject): RevokeMessage | string {
  const { sub, at } = body as { sub?: unknown; at?: unknown };
  if (typeof sub !== 'string' || sub === '' || sub.length > MAX_SUBJECT_LENGTH) return `"sub" must be a string of 1 to ${MAX_SUBJECT_LENGTH} characters`;
  if (typeof at !== 'number' || !Number.isFinite(at) || at <= 0) return '"at" must be a time in epoch milliseconds';
  return { sub, at };
}

export interface ControlSettings {
  amqpUrls: readonly string[];
  /** TOPICGATE_EXCHANGE; the control exchange is derived from it. */
  exchange: string;
  gatewayId: string;
  heartbeatSeconds: number;
  log: Logger;
}

/** Connects to the control exchange as a publisher or a consumer: one connection with few channels. */
function connectControl(settings: ControlSettings, connectionName: string, keepTrying: boolean): Promise<AmqpConnector> {
  const exchange = controlExchange(settings.exchange);
  return AmqpConnector.connect(
    {
      urls: settings.amqpUrls,
      exchange,
      queuePrefix: `${exchange}.`,
      connectionName,
      heartbeatSeconds: settings.heartbeatSeconds,
      warmOperationChannels: 1,
      maxOperationChannels: 4,
      consumersPerChannel: 1,
      log: settings.log,
    },
    { keepTrying },
  );
}

/**
 * A gateway's end of the control exchange: hands every valid revocation to
 * `onRevoke`, from start to `close()`, across reconnects.
 */
export class ControlListener {
  private consumer: Consumer | null = null;
  private starting: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(
    private readonly mq: AmqpConnector,
    private readonly settings: ControlSettings,
    private readonly handlers: ControlHandlers,
  ) {}

  /**
   * Resolves once the control queue is consuming, or — when the broker cannot
   * be reached now — at once, consuming as soon as it can.
   */
  static async start(settings: ControlSettings, handlers: ControlHandlers): Promise<ControlListener> {
    const log = settings.log.child({ broker: 'control' });
    const mq = await connectControl({ ...settings, log }, `topicgate ${settings.gatewayId} control`, true);
    const listener = new ControlListener(mq, { ...settings, log }, handlers);
    mq.on('reconnected', () => void listener.consume());
    await listener.consume();
    return listener;
  }

  /**
   * Asks every gateway to let go of a resumable queue. Best effort: if the
   * control connection is down, the resume waits for the holder's consumer to
   * go with its connection instead (bounded, docs/protocol.md §15.3).
   */
  async announceTakeover(queue: string): Promise<void> {
    try {
      await this.mq.produce(TAKEOVER_KEY, { queue });
    } catch (err) {
      this.settings.log.warn({ queue, err: (err as Error).message }, 'could not announce a takeover; the resume waits for the previous consumer to go');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.mq.close();
  }

  private consume(): Promise<void> {
    if (this.closed || this.consumer || !this.mq.isUp) return Promise.resolve();
    this.starting ??= this.startConsuming().finally(() => (this.starting = null));
    return this.starting;
  }

  private async startConsuming(): Promise<void> {
    const { log, gatewayId } = this.settings;
    try {
      this.consumer = await this.mq.startConsuming('#', (message) => this.onMessage(message), {
        name: gatewayId,
        onResync: () => log.warn('the control connection to the broker was re-established: revocations published while it was down did not reach this gateway'),
        onEnd: (reason, detail) => {
          this.consumer = null;
          if (this.closed) return;
          log.error({ reason, detail }, 'the control consumer ended; revocations do not reach this gateway until it is back');
          this.retry();
        },
      });
      log.info({ queue: this.consumer.queue }, 'listening for revocations on the control exchange');
    } catch (err) {
      if (err instanceof UnavailableError) return; // consumed again on 'reconnected'
      log.error({ err: (err as Error).message }, 'could not consume from the control exchange; retrying');
      this.retry();
    }
  }

  private retry(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.consume();
    }, 5_000);
    this.retryTimer.unref();
  }

  private onMessage(message: MqMessage): void {
    const { log } = this.settings;
    if (message.key === TAKEOVER_KEY) {
      const { queue } = message.body as { queue?: unknown };
      if (typeof queue === 'string') this.handlers.onTakeover(queue);
      else log.warn('ignored a malformed takeover');
      return;
    }
    if (message.key !== REVOKE_KEY) {
      log.warn({ key: message.key.slice(0, 100) }, 'ignored a control message of an unknown kind');
      return;
    }
    const revocation = parseRevokeMessage(message.body);
    if (typeof revocation === 'string') {
      log.warn({ why: revocation }, 'ignored a malformed revocation');
      return;
    }
    this.handlers.onRevoke(revocation);
  }
}

/** `topicgate revoke`: publishes one revocation, with publisher confirms, then disconnects. */
export async function publishRevocation(settings: ControlSettings, sub: string, at = Date.now()): Promise<void> {
  const mq = await connectControl(settings, 'topicgate revoke', false);
  try {
    await mq.produce(REVOKE_KEY, { sub, at } satisfies RevokeMessage);
  } finally {
    await mq.close();
  }
}
