/**
 * ops/cluster/nginx.conf, the nginx example of docs/deployment.md, does what
 * the guide says, checked with Debian's nginx:
 *
 * - `nginx -t` accepts the file as it stands;
 * - run (a private nginx, foreground, its own prefix and port) in front of two
 *   real gateways on the real RabbitMQ, it keeps long-polling sessions on one
 *   gateway (by its tg_gw cookie), sends none to a gateway marked `down` (the
 *   drain before a deploy), and passes WebSocket upgrades; and the same file
 *   without its `hash` line (round robin) breaks long-polling sessions, so the
 *   stickiness test can fail.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ClientEvent, ServerEvent, type Delivery, type SubscribeAck } from '@topicgate/shared';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../server/test/support/child-gateway.js';
import { publishJson, requireBroker, uniqueName } from '../server/test/support/broker.js';
import { startTestGateway, stopTestGateways, type TestGateway } from '../server/test/support/gateway.js';

const run = promisify(execFile);
const NGINX_CONF = fileURLToPath(new URL('../ops/cluster/nginx.conf', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'topicgate-nginx-'));

beforeAll(async () => {
  try {
    await run('nginx', ['-v']);
  } catch (err) {
    throw new Error(
      `nginx is not installed (${(err as Error).message.split('\n')[0]}). ` +
        "This test checks ops/cluster/nginx.conf with it: install Debian's nginx (`apt-get install nginx-light`); scripts/test-prerequisites.sh installs it.",
    );
  }
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** `nginx -t` on a file, with a prefix of its own and the error log on stderr (nothing of the system's nginx is touched). */
async function nginxTest(file: string): Promise<{ ok: boolean; output: string }> {
  const prefix = mkdtempSync(join(scratch, 'prefix-'));
  mkdirSync(join(prefix, 'logs'));
  return run('nginx', ['-t', '-p', prefix, '-e', 'stderr', '-c', file]).then(
    ({ stdout, stderr }) => ({ ok: true, output: stdout + stderr }),
    (err: Error & { stdout?: string; stderr?: string }) => ({ ok: false, output: `${err.stdout ?? ''}${err.stderr ?? err.message}` }),
  );
}

describe('ops/cluster/nginx.conf', () => {
  it('is accepted by nginx -t as it stands', async () => {
    const { ok, output } = await nginxTest(NGINX_CONF);
    expect(ok, output).toBe(true);
    expect(output).toContain('test is successful');
    expect(output).not.toMatch(/\[(warn|emerg|alert|crit)\]/);
  });

  it('keeps its socket.io timeouts above the ping interval plus ping timeout (25 s + 20 s)', () => {
    const conf = readFileSync(NGINX_CONF, 'utf8');
    for (const directive of ['proxy_read_timeout', 'proxy_send_timeout']) {
      const seconds = Number(new RegExp(`^\\s*${directive} (\\d+)s;`, 'm').exec(conf)?.[1]);
      expect(seconds, directive).toBeGreaterThan(45);
    }
  });
});

describe('ops/cluster/nginx.conf in front of two gateways', () => {
  let gateways: TestGateway[];
  let exchange: string;

  beforeAll(async () => {
    await requireBroker();
    exchange = uniqueName('topicgate-nginx');
    gateways = [await startTestGateway({ exchange }), await startTestGateway({ exchange })];
  });
  afterAll(stopTestGateways); // the last to stop deletes the exchange and its `.control`

  /**
   * A private nginx running `conf` with the example's upstream addresses replaced by the gateways',
   * its `listen 80` by a free local port, in the foreground with its pid and logs in a scratch prefix.
   */
  async function startNginx(conf: string): Promise<{ url: string; child: ChildProcess; stop: () => Promise<void> }> {
    const prefix = mkdtempSync(join(scratch, 'run-'));
    mkdirSync(join(prefix, 'logs'));
    const port = await freePort();
    let servers = 0;
    const text = conf
      .replace(/^(\s*)server 10\.0\.0\.\d+:8080(.*)$/gm, (line, indent: string, rest: string) => (servers < gateways.length ? `${indent}server 127.0.0.1:${gateways[servers++]!.port}${rest}` : ''))
      .replace(/^(\s*)listen 80;/m, `$1listen 127.0.0.1:${port};`)
      .replace(/^worker_processes \S+;/m, 'worker_processes 1;\ndaemon off;\npid logs/nginx.pid;\nerror_log logs/error.log warn;');
    expect(servers, 'the example lists at least two gateways').toBe(gateways.length);
    const file = join(prefix, 'nginx.conf');
    writeFileSync(file, text.replace(/^http \{$/m, `http {\n    access_log off;\n    client_body_temp_path ${prefix}/body;\n    proxy_temp_path ${prefix}/proxy;`));
    const child = spawn('nginx', ['-p', prefix, '-e', 'stderr', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const url = `http://127.0.0.1:${port}`;
    for (const deadline = Date.now() + 10_000; ; ) {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${output}`);
      if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) break;
      if (Date.now() > deadline) throw new Error(`nginx did not answer: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const stop = async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    };
    return { url, child, stop };
  }

  /** topicgate_connections of each gateway, from its /metrics. */
  async function connectionsPerGateway(): Promise<number[]> {
    return Promise.all(
      gateways.map(async (gateway) => Number(/^topicgate_connections (\d+)/m.exec(await (await fetch(gateway.metricsUrl!)).text())?.[1])),
    );
  }

  /**
   * A long-polling client (cookies kept, as a browser keeps them) that connects and subscribes
   * to `count` patterns, one request pair each; resolves with the socket, or rejects on the first error.
   */
  async function pollingClient(url: string, count: number): Promise<Socket> {
    const socket = io(url, { transports: ['polling'], upgrade: false, withCredentials: true, reconnection: false, forceNew: true });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      for (let i = 0; i < count; i++) {
        if (!socket.connected) throw new Error('the session was lost');
        const ack: SubscribeAck = await socket.timeout(5_000).emitWithAck(ClientEvent.Subscribe, { pattern: `nginx.${i}.*` });
        if (!ack.ok) throw new Error(`subscribe refused: ${JSON.stringify(ack.error)}`);
      }
      return socket;
    } catch (err) {
      socket.close();
      throw err;
    }
  }

  it('keeps every long-polling session on one gateway, spreading sessions over both', async () => {
    const nginx = await startNginx(readFileSync(NGINX_CONF, 'utf8'));
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 16; i++) sockets.push(await pollingClient(nginx.url, 5));
      const perGateway = await connectionsPerGateway();
      expect(perGateway.reduce((a, b) => a + b, 0), `sessions per gateway: ${perGateway}`).toBe(16);
      // 16 random keys all hashed to one of two gateways: about 1 in 30,000.
      expect(perGateway.every((n) => n > 0), `sessions per gateway: ${perGateway}`).toBe(true);

      // Messages reach a long-polling client through nginx.
      const deliveries: Delivery[] = [];
      sockets[0]!.on(ServerEvent.Messages, (batch: Delivery[]) => deliveries.push(...batch));
      await publishJson(exchange, 'nginx.0.done', { n: 1 });
      for (const deadline = Date.now() + 10_000; deliveries.length === 0 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(deliveries.map((d) => d.key)).toEqual(['nginx.0.done']);
    } finally {
      for (const socket of sockets) socket.close();
      await nginx.stop();
    }
  });

  it('sends every session to the other gateway once one is marked `down` (the drain before a deploy)', async () => {
    const drained = readFileSync(NGINX_CONF, 'utf8').replace(/^(\s*server 10\.0\.0\.\d+:8080)(.*);$/m, '$1$2 down;');
    const nginx = await startNginx(drained);
    const sockets: Socket[] = [];
    try {
      const before = await connectionsPerGateway();
      for (let i = 0; i < 8; i++) sockets.push(await pollingClient(nginx.url, 2));
      const after = await connectionsPerGateway();
      expect(after.map((n, i) => n - before[i]!), 'new sessions per gateway').toEqual([0, 8]);
    } finally {
      for (const socket of sockets) socket.close();
      await nginx.stop();
    }
  });

  it('loses long-polling sessions without its hash line (so the test above can fail)', async () => {
    const roundRobin = readFileSync(NGINX_CONF, 'utf8').replace(/^\s*hash \$topicgate_affinity consistent;$/m, '');
    const nginx = await startNginx(roundRobin);
    try {
      const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => pollingClient(nginx.url, 5)));
      for (const outcome of outcomes) if (outcome.status === 'fulfilled') outcome.value.close();
      expect(outcomes.filter((o) => o.status === 'rejected').length, 'sessions that broke').toBeGreaterThan(0);
    } finally {
      await nginx.stop();
    }
  });

  it('passes WebSocket upgrades: a websocket-only client, and one that starts on long-polling and upgrades', async () => {
    const nginx = await startNginx(readFileSync(NGINX_CONF, 'utf8'));
    try {
      for (const transports of [['websocket'], ['polling', 'websocket']] as const) {
        const socket = io(nginx.url, { transports: [...transports], withCredentials: true, reconnection: false, forceNew: true });
        try {
          await new Promise<void>((resolve, reject) => {
            socket.once('connect', resolve);
            socket.once('connect_error', reject);
          });
          if (socket.io.engine.transport.name !== 'websocket') await new Promise((resolve) => socket.io.engine.once('upgrade', resolve));
          expect(socket.io.engine.transport.name, `${transports.join(', ')} ends on a WebSocket`).toBe('websocket');
          const pattern = `nginx.ws.${transports.length}`;
          const ack: SubscribeAck = await socket.timeout(5_000).emitWithAck(ClientEvent.Subscribe, { pattern });
          expect(ack.ok).toBe(true);
          const delivery = new Promise<Delivery[]>((resolve) => socket.once(ServerEvent.Messages, resolve));
          await publishJson(exchange, pattern, { n: 2 });
          expect((await delivery).map((d) => d.key)).toEqual([pattern]);
        } finally {
          socket.close();
        }
      }
    } finally {
      await nginx.stop();
    }
  });
});
