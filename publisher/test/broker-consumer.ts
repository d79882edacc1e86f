/**
 * What a publisher test reads back from RabbitMQ: every message on its
 * exchange, with the AMQP properties the gateway never relays (message_id,
 * timestamp, content_type), consumed from an exclusive queue bound with `#`.
 */
import amqp, { type ChannelModel } from 'amqplib';
import { Inbox } from '../../server/test/support/inbox.js';
import { TEST_AMQP_URL } from '../../server/test/support/broker.js';

export interface Received {
  key: string;
  body: unknown;
  messageId: unknown;
  timestamp: unknown;
  contentType: unknown;
  contentEncoding: unknown;
  deliveryMode: unknown;
}

export class BrokerConsumer {
  readonly inbox = new Inbox<Received>();

  private constructor(private readonly connection: ChannelModel) {}

  /** Declares the exchange as the gateway does and consumes everything published to it from now on. */
  static async start(exchange: string): Promise<BrokerConsumer> {
    const connection = await amqp.connect(TEST_AMQP_URL);
    const consumer = new BrokerConsumer(connection);
    const channel = await connection.createChannel();
    await channel.assertExchange(exchange, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, exchange, '#');
    await channel.consume(
      queue,
      (msg) => {
        if (!msg) return;
        const { properties } = msg;
        consumer.inbox.push({
          key: msg.fields.routingKey,
          body: JSON.parse(msg.content.toString('utf8')),
          messageId: properties.messageId,
          timestamp: properties.timestamp,
          contentType: properties.contentType,
          contentEncoding: properties.contentEncoding,
          deliveryMode: properties.deliveryMode,
        });
      },
      { noAck: true },
    );
    return consumer;
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}
