/**
 * A load-generator process (forked by the orchestrator). It plays many
 * "browsers" of one kind — socket.io clients of the gateway, raw amqplib
 * consumers, or Web-STOMP clients — and counts what they receive. It exits
 * when its parent goes away, so a crashed run leaves no generator behind.
 */
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { io, type Socket } from 'socket.io-client';
import { loadConfig, resumableQueueOptions } from 'topicgate';
import { ClientEvent, ServerEvent, type Delivery, type ReceivedAck, type ResyncNotice, type SubscribeAck, type UnsubscribeAck } from '@topicgate/shared';
import { nowUs } from './clock.js';
import { MqttClient, mqttFilter } from './clients/mqtt.js';
import { RECEIPT_BATCH, RECEIPT_DELAY_MS, ReceiptScheduler, type ReceivedSeqs } from './clients/receipts.js';
import { StompClient } from './clients/stomp.js';
import type { BenchBody, ChurnResult, ClientPlan, ConnectResult, WorkerCommand, WorkerEvent, WorkerStats } from './messages.js';
import { Histogram, RateSeries, StreamTracker } from './stats.js';

interface Client {
  tracker: StreamTracker;
  streams: Set<number>;
  /** Gateway: last protocol `seq` per subscription id. */
  lastSeq: Map<string, number>;
  subscribe(pattern: string): Promise<string>;
  unsubscribe(id: string): Promise<void>;
  close(): Promise<void>;
}

class Counters {
  deliveries = 0;
  series = new RateSeries();
  latency = new Histogram();
  seqErrors = 0;
  resyncs: Record<string, number> = {};
  unsubscribed = 0;
  disconnects = 0;
  receipts = 0;
  receiptErrors = 0;
  /** Gateway: `messages` events received (deliveries / batches = the mean batch). */
  batches = 0;
}

let counters = new Counters();
let clients: Client[] = [];
let subscriptions = 0;
const subscribersPerStream: Record<string, number> = {};
let amqpConnection: Promise<ChannelModel> | null = null;
/**
 * `amqp-held` consumers hold deliveries the way the gateway holds a resumable
 * subscription's: its queue declaration and default prefetch and backlog, the
 * bench's resume window, and a cumulative acknowledgement per receipt's worth
 * (the SDK's RECEIPT_BATCH), made at once rather than a browser round trip later.
 */
const GATEWAY_DEFAULTS = loadConfig({ 'insecure-no-auth': '1' });
/** BENCH_RAW_CHANNELS=shared: every raw consumer of this process on one channel. */
let sharedChannel: Promise<Channel> | null = null;
let progressTimer: NodeJS.Timeout | null = null;
let closing = false;

function send(event: WorkerEvent): void {
  process.send?.(event);
}

function deliver(client: Client, body: BenchBody, recvUs: number): void {
  counters.deliveries++;
  if (body.m === 1) counters.latency.record(recvUs - body.t);
  client.tracker.record(body.s, body.n);
}

/** Streams are named in patterns by their last-but-one word for log tails (`logs.<build>.append`); 0 otherwise. */
function streamOf(pattern: string): number {
  const m = /^logs\.(\d+)\.append$/.exec(pattern);
  return m ? Number(m[1]) : 0;
}

function newClientState(): Pick<Client, 'tracker' | 'streams' | 'lastSeq'> {
  return { tracker: new StreamTracker(), streams: new Set(), lastSeq: new Map() };
}

/**
 * A socket.io client of the gateway. `resumable`: subscribes with
 * `resumable: true` (the gateway must answer with a `resume` grant) and
 * confirms deliveries with `received`, one request in flight per socket
 * (ReceiptScheduler), as a resumable client must or the broker stops after
 * ~100 unconfirmed deliveries per subscription.
 */
async function gatewayClient(url: string, resumable = false): Promise<Client> {
  const socket: Socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 30_000 });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
  const client: Client = {
    ...newClientState(),
    async subscribe(pattern) {
      const ack: SubscribeAck = await socket.timeout(60_000).emitWithAck(ClientEvent.Subscribe, resumable ? { pattern, resumable: true } : { pattern });
      if (!ack.ok) throw new Error(`subscribe refused: ${ack.error.code}: ${ack.error.message}`);
      if (resumable && !ack.resume) throw new Error('subscribe { resumable: true } was answered without a resume grant: the gateway has no TOPICGATE_RESUME_WINDOW (or is too old)');
      // Deliveries may precede the ack: `seq` is checked from the first one seen after it.
      if (!client.lastSeq.has(ack.id)) client.lastSeq.set(ack.id, 0);
      return ack.id;
    },
    async unsubscribe(id) {
      const ack: UnsubscribeAck = await socket.timeout(60_000).emitWithAck(ClientEvent.Unsubscribe, { id });
      if (!ack.ok) throw new Error(`unsubscribe refused: ${ack.error.code}`);
      client.lastSeq.delete(id);
      receipts?.forget(id);
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (!socket.connected) return resolve();
        socket.once('disconnect', () => resolve());
        socket.disconnect();
      }),
  };
  const receipts = resumable ? new ReceiptScheduler() : null;
  let receiptTimer: NodeJS.Timeout | null = null;
  const armReceiptTimer = (): void => {
    if (receiptTimer || !receipts?.hasUnsent || receipts.pending) return;
    receiptTimer = setTimeout(() => {
      receiptTimer = null;
      if (socket.connected && receipts) sendReceipts(receipts.flush(true));
    }, RECEIPT_DELAY_MS);
    receiptTimer.unref();
  };
  const sendReceipts = (seqs: ReceivedSeqs | null): void => {
    if (!receipts) return;
    if (!seqs) return armReceiptTimer();
    counters.receipts++;
    socket.timeout(60_000).emit(ClientEvent.Received, { seqs }, (err: Error | null, ack?: ReceivedAck) => {
      if (err || !ack?.ok) counters.receiptErrors++;
      if (socket.connected) sendReceipts(receipts.acknowledged());
    });
  };
  socket.on(ServerEvent.Messages, (batch: Delivery[]) => {
    const recv = nowUs();
    counters.series.add(recv, batch.length);
    counters.batches++;
    for (const d of batch) {
      const last = client.lastSeq.get(d.id);
      if (last !== undefined) {
        if (d.seq !== last + 1) counters.seqErrors++;
        client.lastSeq.set(d.id, d.seq);
      } else if (resumable && d.seq === 1) client.lastSeq.set(d.id, 1); // ahead of its subscribe ack
      receipts?.noteDelivery(d.id, d.seq);
      deliver(client, d.body as unknown as BenchBody, recv);
    }
    if (receipts) sendReceipts(receipts.flush());
  });
  socket.on(ServerEvent.Resync, (notice: ResyncNotice) => {
    counters.resyncs[notice.reason] = (counters.resyncs[notice.reason] ?? 0) + 1;
  });
  socket.on(ServerEvent.Unsubscribed, () => counters.unsubscribed++);
  socket.on('disconnect', (reason) => {
    if (reason !== 'io client disconnect') counters.disconnects++;
  });
  return client;
}

let queueCounter = 0;

/**
 * A raw amqplib consumer: an exclusive queue consumed without acknowledgement
 * (`amqp`, the ceiling of the default path), or (`held`, the ceiling of a
 * resumable subscription) a durable queue with the gateway's resumable
 * arguments on a channel of its own, every delivery held until acknowledged.
 */
async function amqpClient(cmd: Extract<WorkerCommand, { op: 'connect' }>, held = false): Promise<Client> {
  // One connection per generator process, shared by its clients (each has its own channel), like the gateway's layout.
  amqpConnection ??= amqp.connect(cmd.amqpUrl, { clientProperties: { connection_name: `${cmd.queuePrefix}worker-${process.pid}` } }).then((c) => {
    c.on('error', () => undefined);
    return c;
  });
  let channel: Channel;
  if (cmd.rawSharedChannel && !held) {
    sharedChannel ??= (await amqpConnection).createChannel().then((ch) => (ch.on('error', () => undefined), ch));
    channel = await sharedChannel;
  } else {
    channel = await (await amqpConnection).createChannel();
    channel.on('error', () => undefined);
    if (held) await channel.prefetch(GATEWAY_DEFAULTS.resumePrefetch);
  }
  const consumers = new Map<string, string>();
  const client: Client = {
    ...newClientState(),
    async subscribe(pattern) {
      const queue = `${cmd.queuePrefix}${process.pid}.${++queueCounter}`;
      await channel.assertQueue(queue, held ? resumableQueueOptions(cmd.resumeWindowMs, GATEWAY_DEFAULTS.resumeBacklog) : { exclusive: true, durable: false });
      await channel.bindQueue(queue, cmd.exchange, pattern);
      let unacked = 0;
      const { consumerTag } = await channel.consume(
        queue,
        (msg) => {
          if (!msg) return;
          // Cumulative: it covers the channel's earlier deliveries, all this subscription's (a held client has one).
          if (held && ++unacked === RECEIPT_BATCH) {
            channel.ack(msg, true);
            unacked = 0;
          }
          const recv = nowUs();
          counters.series.add(recv);
          deliver(client, JSON.parse(msg.content.toString('utf8')) as BenchBody, recv);
        },
        { noAck: !held },
      );
      consumers.set(consumerTag, queue);
      return consumerTag;
    },
    async unsubscribe(tag) {
      await channel.cancel(tag);
      await channel.deleteQueue(consumers.get(tag)!);
      consumers.delete(tag);
    },
    async close() {
      // Held queues are durable: they would outlive the channel until their x-expires.
      if (held) for (const queue of consumers.values()) await channel.deleteQueue(queue).catch(() => undefined);
      if (held || !cmd.rawSharedChannel) await channel.close().catch(() => undefined);
    },
  };
  return client;
}

async function stompClient(cmd: Extract<WorkerCommand, { op: 'connect' }>): Promise<Client> {
  const state = newClientState();
  const stomp = new StompClient({
    url: cmd.stompUrl,
    login: 'guest',
    passcode: 'guest',
    onMessage: (data, start, end) => {
      const recv = nowUs();
      counters.series.add(recv);
      deliver(client, JSON.parse(data.toString('utf8', start, end)) as BenchBody, recv);
    },
    onClose: () => counters.disconnects++,
  });
  await stomp.connect();
  const client: Client = {
    ...state,
    subscribe: (pattern) => stomp.subscribe(`/exchange/${cmd.exchange}/${pattern}`),
    unsubscribe: (id) => stomp.unsubscribe(id),
    close: () => stomp.close(),
  };
  return client;
}

let mqttCounter = 0;

/** Web-MQTT with a persistent session (clean_session=false, a fixed client id) and QoS 1 subscriptions, each PUBLISH PUBACKed. */
async function mqttClient(cmd: Extract<WorkerCommand, { op: 'connect' }>): Promise<Client> {
  const state = newClientState();
  const mqtt = new MqttClient({
    url: cmd.mqttUrl,
    clientId: `${cmd.mqttClientPrefix}${process.pid}.${++mqttCounter}`,
    username: 'guest',
    password: 'guest',
    cleanSession: false,
    onMessage: (data, start, end) => {
      const recv = nowUs();
      counters.series.add(recv);
      deliver(client, JSON.parse(data.toString('utf8', start, end)) as BenchBody, recv);
    },
    onClose: () => counters.disconnects++,
  });
  await mqtt.connect();
  const client: Client = {
    ...state,
    subscribe: (pattern) => mqtt.subscribe(mqttFilter(pattern), 1),
    unsubscribe: (filter) => mqtt.unsubscribe(filter),
    close: () => mqtt.close(),
  };
  return client;
}

async function connectOne(cmd: Extract<WorkerCommand, { op: 'connect' }>, plan: ClientPlan, result: ConnectResult): Promise<void> {
  let client: Client;
  try {
    client =
      cmd.kind === 'gateway' || cmd.kind === 'resumable'
        ? await gatewayClient(cmd.gatewayUrl, cmd.kind === 'resumable')
        : cmd.kind === 'amqp' || cmd.kind === 'amqp-held'
          ? await amqpClient(cmd, cmd.kind === 'amqp-held')
          : cmd.kind === 'mqtt'
            ? await mqttClient(cmd)
            : await stompClient(cmd);
  } catch (err) {
    result.failures.push(`connect: ${(err as Error).message}`);
    return;
  }
  clients.push(client);
  result.connected++;
  for (const pattern of plan.patterns) {
    try {
      await client.subscribe(pattern);
      const stream = streamOf(pattern);
      client.streams.add(stream);
      subscribersPerStream[stream] = (subscribersPerStream[stream] ?? 0) + 1;
      subscriptions++;
      result.subscribed++;
    } catch (err) {
      result.failures.push(`subscribe ${pattern}: ${(err as Error).message}`);
    }
  }
}

async function connect(cmd: Extract<WorkerCommand, { op: 'connect' }>): Promise<ConnectResult> {
  const started = Date.now();
  const result: ConnectResult = { connected: 0, subscribed: 0, failures: [], ms: 0 };
  let next = 0;
  const lane = async () => {
    while (next < cmd.clients.length) await connectOne(cmd, cmd.clients[next++]!, result);
  };
  await Promise.all(Array.from({ length: Math.max(1, cmd.concurrency) }, lane));
  result.ms = Date.now() - started;
  // Keep the reply small: a few distinct failure messages with counts.
  const grouped = new Map<string, number>();
  for (const f of result.failures) grouped.set(f, (grouped.get(f) ?? 0) + 1);
  result.failures = [...grouped].slice(0, 5).map(([f, n]) => `${n}× ${f}`);
  return result;
}

function stats(): WorkerStats {
  const perStream: Record<string, number> = {};
  let distinct = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  for (const c of clients) {
    distinct += c.tracker.distinct;
    duplicates += c.tracker.duplicates;
    outOfOrder += c.tracker.outOfOrder;
    // Distinct per stream is what losses are computed from.
    for (const s of c.streams) perStream[s] = (perStream[s] ?? 0) + c.tracker.distinctIn(s);
  }
  return {
    clients: clients.length,
    subscriptions,
    deliveries: counters.deliveries,
    series: counters.series.toJSON(),
    latency: counters.latency.toJSON(),
    distinct,
    duplicates,
    outOfOrder,
    seqErrors: counters.seqErrors,
    resyncs: counters.resyncs,
    unsubscribed: counters.unsubscribed,
    disconnects: counters.disconnects,
    receipts: counters.receipts,
    receiptErrors: counters.receiptErrors,
    batches: counters.batches,
    perStream,
    subscribersPerStream,
  };
}

function startProgress(stream: number, everyMs: number): void {
  if (progressTimer) clearInterval(progressTimer);
  progressTimer = setInterval(() => {
    let min = Infinity;
    for (const c of clients) if (c.streams.has(stream)) min = Math.min(min, c.tracker.highest(stream));
    send({ type: 'progress', min: min === Infinity ? -1 : min });
  }, everyMs);
}

async function churn(cmd: Extract<WorkerCommand, { op: 'churn' }>): Promise<ChurnResult> {
  const result: ChurnResult = { pairs: 0, errors: 0, latency: new Histogram().toJSON() };
  const latency = new Histogram();
  const deadline = Date.now() + cmd.durationMs;
  const loop = async (i: number) => {
    const client = clients[i % clients.length]!;
    while (Date.now() < deadline) {
      const t0 = nowUs();
      try {
        const id = await client.subscribe(cmd.pattern);
        await client.unsubscribe(id);
        result.pairs++;
        latency.record(nowUs() - t0);
      } catch (err) {
        result.errors++;
        result.firstError ??= (err as Error).message;
        if (result.errors > 1000) return;
      }
    }
  };
  await Promise.all(Array.from({ length: cmd.loops }, (_, i) => loop(i)));
  result.latency = latency.toJSON();
  return result;
}

async function closeAll(): Promise<void> {
  closing = true;
  if (progressTimer) clearInterval(progressTimer);
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  clients = [];
  if (amqpConnection) await amqpConnection.then((c) => c.close()).catch(() => undefined);
  amqpConnection = null;
  sharedChannel = null;
}

async function handle(cmd: WorkerCommand): Promise<unknown> {
  switch (cmd.op) {
    case 'connect':
      return connect(cmd);
    case 'reset':
      counters = new Counters();
      return null;
    case 'progress':
      startProgress(cmd.stream, cmd.everyMs);
      return null;
    case 'stats':
      return stats();
    case 'churn':
      return churn(cmd);
    case 'close':
      await closeAll();
      return null;
  }
}

process.on('message', (msg: { id: number; cmd: WorkerCommand }) => {
  handle(msg.cmd).then(
    (value) => send({ type: 'reply', id: msg.id, ok: true, value }),
    (err: unknown) => send({ type: 'reply', id: msg.id, ok: false, error: (err as Error).stack ?? String(err) }),
  );
});

// The orchestrator went away (crash, Ctrl-C): close what we hold and leave.
process.on('disconnect', () => {
  if (closing) process.exit(0);
  const force = setTimeout(() => process.exit(0), 3000);
  force.unref();
  void closeAll().finally(() => process.exit(0));
});

send({ type: 'ready' });
