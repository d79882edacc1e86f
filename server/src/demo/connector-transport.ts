/**
 * The publisher's transport over the gateway's own MQ connector: how the
 * demo publishes on the embedded broker, which lives inside the gateway
 * process and has no AMQP port, and keeps bodies only: `message_id` and
 * `timestamp` are not carried. (On RabbitMQ the demo's publisher makes its
 * own connection, as any back end would.)
 */
import { PublishError, PublishErrorCode, type OutgoingMessage, type PublisherTransport, type TransportLink } from '@topicgate/publisher';
import type { MqConnector } from '../mq/connector.js';

export function connectorTransport(mq: MqConnector): PublisherTransport {
  const description = `the gateway's ${mq.kind} broker`;
  return {
    description,
    open: async () => {
      if (!mq.isUp) throw new Error(`${description} is not connected`);
      return new ConnectorLink(mq, description);
    },
  };
}

class ConnectorLink implements TransportLink {
  private failure: Error | null = null;
  private readonly listeners: Array<(error: Error) => void> = [];
  private readonly onDown = (error: Error) => this.fail(error);

  constructor(
    private readonly mq: MqConnector,
    readonly where: string,
  ) {
    mq.on('down', this.onDown);
  }

  async send(message: OutgoingMessage): Promise<void> {
    try {
      await this.mq.produce(message.key, message.body);
    } catch (err) {
      // Still connected: the broker refused this message, and sending it again would not help.
      // Otherwise the connection failed, and the publisher sends it again once the connector is back.
      if (this.mq.isUp && !this.failure) {
        throw new PublishError(PublishErrorCode.NotConfirmed, `${this.where} did not take the message to "${message.key}": ${(err as Error).message}`);
      }
      this.fail(err as Error);
      throw err;
    }
  }

  onFailure(listener: (error: Error) => void): void {
    if (this.failure) listener(this.failure);
    else this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.fail(new Error('closed'));
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.mq.off('down', this.onDown);
    for (const listener of this.listeners.splice(0)) listener(error);
  }
}
