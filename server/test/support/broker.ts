/**
 * The real RabbitMQ that integration tests run against, and ways to look at
 * it from outside the gateway (rabbitmqctl is authoritative; the management
 * API's channel stats lag by seconds, so channels are counted with rabbitmqctl).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import pino from 'pino';
import { controlExchange } from '../../src/control.js';

export { eventually } from './eventually.js';

const run = promisify(execFile);

export const TEST_AMQP_URL = process.env.TOPICGATE_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export const quietLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** A name no other test run uses, for exchanges, gateway ids and persistent queues. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Fails the suite loudly (never skips) when RabbitMQ is not there. */
export async function requireBroker(): Promise<void> {
  try {
    const connection = await amqp.connect(TEST_AMQP_URL);
    await connection.close();
  } catch (err) {
    throw new Error(
      `RabbitMQ is not reachable at ${TEST_AMQP_URL} (${(err as Error).message}). ` +
        'Integration tests need a real broker: start it with `rabbitmq-server -detached`.',
    );
  }
}

async function rabbitmqctl(...args: string[]): Promise<string[][]> {
  const { stdout } = await run('rabbitmqctl', ['-q', '--no-table-headers', ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.split('\t'));
}

export interface QueueInfo {
  name: string;
  exclusive: boolean;
  consumers: number;
  messages: number;
}

/** Queues whose names start with `prefix`, as the broker sees them right now. */
export async function listQueues(prefix: string): Promise<QueueInfo[]> {
  const rows = await rabbitmqctl('list_queues', 'name', 'exclusive', 'consumers', 'messages');
  return rows
    .filter(([name]) => name!.startsWith(prefix))
    .map(([name, exclusive, consumers, messages]) => ({
      name: name!,
      exclusive: exclusive === 'true',
      consumers: Number(consumers),
      messages: Number(messages),
    }));
}

/**
 * The queues of one gateway (or several sharing an exchange): its transient
 * ones by their name prefix, and the resumable ones (`topicgate.r.…`, named
 * for no gateway: any gateway may take them up) by their binding to the exchange.
 */
export async function gatewayQueues(queuePrefix: string, exchange: string): Promise<QueueInfo[]> {
  const bindings = await rabbitmqctl('list_bindings', 'source_name', 'destination_name', 'destination_kind');
  const bound = new Set(bindings.filter(([source, , kind]) => source === exchange && kind === 'queue').map(([, destination]) => destination!));
  return (await listQueues('topicgate.')).filter((q) => q.name.startsWith(queuePrefix) || bound.has(q.name));
}

interface ConnectionInfo {
  pid: string;
  name: string | undefined;
  channels: number;
}

/** Live AMQP connections with their client-provided `connection_name` (rabbitmqctl 3.x prints it inside client_properties). */
async function listConnections(): Promise<ConnectionInfo[]> {
  const rows = await rabbitmqctl('list_connections', 'pid', 'channels', 'client_properties');
  return rows.map(([pid, channels, properties]) => ({
    pid: pid!,
    channels: Number(channels),
    name: /\{"connection_name","([^"]*)"\}/.exec(properties ?? '')?.[1],
  }));
}

/** Open channels on the connections with this client-provided name. */
export async function channelCount(connectionName: string): Promise<number> {
  return (await listConnections()).filter((c) => c.name === connectionName).reduce((sum, c) => sum + c.channels, 0);
}

export async function connectionCount(connectionName: string): Promise<number> {
  return (await listConnections()).filter((c) => c.name === connectionName).length;
}

/** Forcibly closes the named connections, as an operator would. */
export async function closeConnections(connectionName: string, reason = 'closed by test'): Promise<void> {
  for (const c of await listConnections()) {
    if (c.name === connectionName) await run('rabbitmqctl', ['close_connection', c.pid, reason]);
  }
}

/** A plain amqplib connection for arranging broker state from outside the connector. */
export async function withAdminChannel<T>(fn: (channel: amqp.Channel) => Promise<T>): Promise<T> {
  const connection = await amqp.connect(TEST_AMQP_URL);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    return await fn(channel);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/**
 * Deletes a queue the way an operator does (rabbitmqctl), which works even on
 * another connection's exclusive queue; AMQP clients get RESOURCE_LOCKED.
 */
export async function deleteQueueAsOperator(name: string): Promise<void> {
  await run('rabbitmqctl', ['-q', 'delete_queue', name]);
}

export async function deleteQueues(names: readonly string[]): Promise<void> {
  await withAdminChannel(async (channel) => {
    for (const name of names) await channel.deleteQueue(name);
  });
}

export async function deleteExchange(name: string): Promise<void> {
  await withAdminChannel((channel) => channel.deleteExchange(name).then(() => undefined));
}

/**
 * Deletes a gateway's exchange and the control exchange every gateway
 * declares beside it (`<exchange>.control`, server/src/control.ts): durable,
 * it would otherwise outlive the test on the shared broker.
 */
export async function deleteGatewayExchanges(exchange: string): Promise<void> {
  await deleteExchange(exchange);
  await deleteExchange(controlExchange(exchange));
}

/** Publishes raw bytes, as a buggy (or foreign) publisher would, with the AMQP properties given (content encoding, type, headers). */
export async function publishRaw(exchange: string, key: string, content: Buffer | string, properties: amqp.Options.Publish = {}): Promise<void> {
  await publishRawMany(exchange, [{ key, content, properties }]);
}

/** Publishes a JSON body as an application would, declaring the exchange first (a child gateway's may not exist yet), and waits for the broker's confirm. */
export async function publishJson(exchange: string, key: string, body: Record<string, unknown>): Promise<void> {
  const connection = await amqp.connect(TEST_AMQP_URL);
  try {
    const channel = await connection.createConfirmChannel();
    await channel.assertExchange(exchange, 'topic', { durable: true });
    await new Promise<void>((resolve, reject) =>
      channel.publish(exchange, key, Buffer.from(JSON.stringify(body)), { contentType: 'application/json' }, (err) => (err ? reject(err) : resolve())),
    );
  } finally {
    await connection.close();
  }
}

/** Publishes several raw messages back to back on one confirm channel (no waiting between them), in order. */
export async function publishRawMany(
  exchange: string,
  messages: ReadonlyArray<{ key: string; content: Buffer | string; properties?: amqp.Options.Publish }>,
): Promise<void> {
  const connection = await amqp.connect(TEST_AMQP_URL);
  try {
    const channel = await connection.createConfirmChannel();
    for (const { key, content, properties = {} } of messages) channel.publish(exchange, key, Buffer.from(content), properties);
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/** Permission regexes of a broker user on the default vhost, in rabbitmqctl's order. */
export interface BrokerPermissions {
  configure: string;
  write: string;
  read: string;
}

/** Creates a broker user with these permissions, as an operator would; remove it with `deleteBrokerUser`. */
export async function addBrokerUser(name: string, password: string, permissions: BrokerPermissions): Promise<void> {
  await run('rabbitmqctl', ['-q', 'add_user', name, password]);
  await run('rabbitmqctl', ['-q', 'set_permissions', '-p', '/', name, permissions.configure, permissions.write, permissions.read]);
}

export async function deleteBrokerUser(name: string): Promise<void> {
  await run('rabbitmqctl', ['-q', 'delete_user', name]);
}

/** TEST_AMQP_URL, logging in as another user. */
export function testAmqpUrlAs(user: string, password: string): string {
  const url = new URL(TEST_AMQP_URL);
  url.username = user;
  url.password = password;
  return url.toString();
}
