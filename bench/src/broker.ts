/**
 * The local RabbitMQ as the bench sees it: the management API (memory,
 * queues, connections), the preflight checks (reachable, Web-STOMP on, file
 * descriptors) and cleanup of what a run declared.
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { sleep } from './clock.js';

const run = promisify(execFile);

export interface BrokerSettings {
  amqpUrl: string;
  managementUrl: string;
  stompUrl: string;
  user: string;
  password: string;
}

export class Broker {
  private nodeName: string | null = null;

  constructor(readonly settings: BrokerSettings) {}

  async api<T>(path: string, init: RequestInit = {}): Promise<T> {
    const auth = Buffer.from(`${this.settings.user}:${this.settings.password}`).toString('base64');
    const res = await fetch(`${this.settings.managementUrl}/api${path}`, { ...init, headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' } });
    if (!res.ok) throw new Error(`management API ${path}: HTTP ${res.status} ${await res.text()}`);
    return (res.status === 204 ? undefined : await res.json()) as T;
  }

  async node(): Promise<string> {
    this.nodeName ??= (await this.api<{ node: string }>('/overview')).node;
    return this.nodeName;
  }

  async nodeInfo(): Promise<{ os_pid: string; sockets_total: number; sockets_used: number; fd_total: number; fd_used: number; mem_used: number }> {
    return this.api(`/nodes/${encodeURIComponent(await this.node())}`);
  }

  async pid(): Promise<number> {
    return Number((await this.nodeInfo()).os_pid);
  }

  /**
   * Memory the Erlang VM has allocated (erlang:memory(total)), computed on
   * request, plus the per-category breakdown. Unlike the RSS figure the broker
   * uses for its alarm, it falls when processes go away.
   */
  async memory(): Promise<{ erlang: number; breakdown: Record<string, number> }> {
    const { memory } = await this.api<{ memory: Record<string, number> & { total: { erlang: number } } }>(`/nodes/${encodeURIComponent(await this.node())}/memory`);
    const breakdown: Record<string, number> = {};
    for (const [k, v] of Object.entries(memory)) if (typeof v === 'number') breakdown[k] = v;
    return { erlang: memory.total.erlang, breakdown };
  }

  async queueNames(prefix: string): Promise<string[]> {
    const queues = await this.api<Array<{ name: string }>>(`/queues?columns=name`);
    return queues.map((q) => q.name).filter((n) => n.startsWith(prefix));
  }

  /** Connections whose client-provided name starts with one of the prefixes. */
  async connectionNames(prefixes: string[]): Promise<string[]> {
    const conns = await this.api<Array<{ client_properties?: { connection_name?: string } }>>(`/connections?columns=client_properties`);
    return conns.map((c) => c.client_properties?.connection_name ?? '').filter((n) => prefixes.some((p) => n.startsWith(p)));
  }

  async stompConnectionCount(): Promise<number> {
    const conns = await this.api<Array<{ protocol: string }>>(`/connections?columns=protocol`);
    return conns.filter((c) => /stomp/i.test(c.protocol)).length;
  }

  async declareExchange(name: string): Promise<void> {
    await this.withChannel((ch) => ch.assertExchange(name, 'topic', { durable: true }).then(() => undefined));
  }

  async deleteExchange(name: string): Promise<void> {
    await this.withChannel((ch) => ch.deleteExchange(name).then(() => undefined));
  }

  async deleteQueue(name: string): Promise<void> {
    await this.withChannel((ch) => ch.deleteQueue(name).then(() => undefined));
  }

  /** Deletes several queues over one channel. */
  async deleteQueues(names: string[]): Promise<void> {
    if (names.length === 0) return;
    await this.withChannel(async (ch) => {
      for (const name of names) await ch.deleteQueue(name);
    });
  }

  /**
   * Exchanges left behind by earlier runs that died before cleaning up: name
   * prefix, a run id dated more than `olderThanMs` ago (another bench may be
   * running right now), and no bindings.
   */
  async staleExchanges(prefix: string, olderThanMs = 6 * 3600_000): Promise<string[]> {
    const exchanges = await this.api<Array<{ name: string }>>(`/exchanges?columns=name`);
    const runDate = (name: string) => {
      const m = /\.(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})-/.exec(name);
      return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
    };
    const names = exchanges.map((e) => e.name).filter((n) => n.startsWith(prefix) && Date.now() - runDate(n) > olderThanMs);
    const stale: string[] = [];
    for (const name of names) {
      const bindings = await this.api<unknown[]>(`/exchanges/%2F/${encodeURIComponent(name)}/bindings/source`);
      if (bindings.length === 0) stale.push(name);
    }
    return stale;
  }

  private async withChannel<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
    const conn = await amqp.connect(this.settings.amqpUrl, { clientProperties: { connection_name: 'bench admin' } });
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      return await fn(ch);
    } finally {
      await conn.close().catch(() => undefined);
    }
  }

  /** Fails with a clear message when the broker or its management API is not there. */
  async requireReachable(log: (line: string) => void): Promise<void> {
    // A shared broker may be in the middle of someone else's restart: wait up to a minute.
    const deadline = Date.now() + 60_000;
    for (let said = false; ; ) {
      try {
        const conn = await amqp.connect(this.settings.amqpUrl);
        await conn.close();
        break;
      } catch (err) {
        if (Date.now() > deadline) {
          throw new Error(`RabbitMQ is not reachable at ${redact(this.settings.amqpUrl)} (${(err as Error).message}); start it (rabbitmq-server -detached) or set BENCH_AMQP_URL`);
        }
        if (!said) log(`RabbitMQ is not reachable at ${redact(this.settings.amqpUrl)} (${(err as Error).message}); waiting up to 60 s`);
        said = true;
        await sleep(1000);
      }
    }
    // A fresh RabbitMQ has no plugins on: enable management, which the bench reads broker memory and checks cleanup through.
    if (!(await this.node().then(() => true, () => false))) {
      log('the RabbitMQ management API is not reachable; enabling it on the running node (rabbitmq-plugins enable rabbitmq_management)');
      await enablePlugin('rabbitmq_management', 'or set BENCH_MANAGEMENT_URL to where its API is');
      for (let i = 0; i < 60 && !(await this.node().then(() => true, () => false)); i++) await sleep(500);
      await this.node().catch((err: Error) => {
        throw new Error(`rabbitmq_management was enabled but its API at ${this.settings.managementUrl} did not answer (${err.message})`);
      });
    }
  }

  /**
   * Starts rabbitmq_web_mqtt (and rabbitmq_mqtt) on the running node when it
   * is off, and waits for its listener (15675). Not `rabbitmq-plugins enable`:
   * that also starts MQTT's TCP listener on 1883, which fails the plugin when
   * another MQTT broker (a mosquitto) holds the port, and it writes
   * enabled_plugins, so that the node would then fail to boot after a restart.
   * Instead the two applications are started on the running node, without a
   * TCP listener and without writing anything: a restart of RabbitMQ drops them,
   * and so does any \`rabbitmq-plugins enable\` (the bench's own for Web-STOMP, or
   * someone else's), which stops running plugins missing from enabled_plugins:
   * hence called again before each Web-MQTT run.
   */
  async ensureWebMqtt(mqttUrl: string, log: (line: string) => void): Promise<void> {
    // A real connection, not the management API's listener list: that one still lists a listener
    // for a while after \`rabbitmq-plugins enable <anything>\` has stopped plugins missing from enabled_plugins.
    const { hostname, port } = new URL(mqttUrl);
    const listening = () => portOpen(hostname, Number(port) || 80);
    if (await listening()) return;
    log('rabbitmq_web_mqtt is not running; starting it on the running node for this run (rabbitmqctl eval: no MQTT TCP listener, enabled_plugins untouched)');
    const expr =
      'application:load(rabbitmq_mqtt), application:load(rabbitmq_web_mqtt), ' +
      'application:set_env(rabbitmq_mqtt, tcp_listeners, []), application:set_env(rabbitmq_mqtt, ssl_listeners, []), ' +
      'rabbit:start_apps([rabbitmq_mqtt, rabbitmq_web_mqtt]).';
    try {
      await run('rabbitmqctl', ['eval', expr], { timeout: 120_000 });
    } catch (err) {
      throw new Error(`could not start rabbitmq_web_mqtt (${(err as Error).message}); start it yourself or skip the Web-MQTT runs with BENCH_KINDS=gateway,resumable,amqp,stomp`);
    }
    for (let i = 0; i < 60 && !(await listening()); i++) await sleep(500);
    if (!(await listening())) throw new Error('rabbitmq_web_mqtt was started but its listener (15675) did not come up');
  }

  /** Enables rabbitmq_web_stomp on the running node when it is off, and waits for its listener. */
  async ensureWebStomp(log: (line: string) => void): Promise<void> {
    const listening = async () => {
      const { listeners } = await this.api<{ listeners: Array<{ protocol: string }> }>('/overview');
      return listeners.some((l) => l.protocol === 'http/web-stomp');
    };
    if (await listening()) return;
    log('rabbitmq_web_stomp is not enabled; enabling it on the running node (rabbitmq-plugins enable rabbitmq_web_stomp)');
    await enablePlugin('rabbitmq_web_stomp', 'or skip the Web-STOMP runs with BENCH_KINDS=gateway,amqp');
    for (let i = 0; i < 60 && !(await listening()); i++) await sleep(500);
    if (!(await listening())) throw new Error('rabbitmq_web_stomp was enabled but its listener (15674) did not come up');
  }
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2000 });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

async function enablePlugin(name: string, alternative: string): Promise<void> {
  try {
    await run('rabbitmq-plugins', ['enable', name], { timeout: 120_000 });
  } catch (err) {
    throw new Error(`could not enable ${name} (${(err as Error).message}); run \`rabbitmq-plugins enable ${name}\` as root, ${alternative}`);
  }
}

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
