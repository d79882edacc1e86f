/**
 * docker-compose.cluster.yml stays a valid way to run topicgate past one box —
 * three clustered RabbitMQ nodes, gateways behind HAProxy, the demo — checked
 * without a Docker engine, like docker-compose.yml (docker-compose.test.ts,
 * which also builds and runs the image both files use):
 *
 * - docker-compose itself resolves the file (Debian's docker-compose 1.29);
 * - the settings that make it a cluster are there: the nodes share a cookie and
 *   name each other in the classic-config peer list; every gateway has the same
 *   JWT secret, exchange and resume window, a distinct id, and a URL list that
 *   names every node (each starting elsewhere); the gateway settings pass the
 *   gateway's own validation;
 * - HAProxy's file names exactly the gateway services, checks /readyz, is
 *   sticky, and Debian's HAProxy accepts it (`haproxy -c`: the compose service
 *   names do not resolve here, which `init-addr none` allows); run in front of
 *   two real gateways, it keeps a client on the gateway its cookie names, and
 *   sends it elsewhere once that gateway is in MAINT — the drain before a
 *   deploy that docs/deployment.md §7 describes.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SETTINGS, envName, loadConfig, readSettings, type SettingName } from '../server/src/config.js';
import { requireBroker } from '../server/test/support/broker.js';
import { freePort } from '../server/test/support/child-gateway.js';
import { startTestGateway, stopTestGateways, type TestGateway } from '../server/test/support/gateway.js';
import { composeFile, requireDockerCompose } from './support/compose.js';
import { REPO_ROOT } from './support/worktree.js';

const run = promisify(execFile);
const COMPOSE_FILE = fileURLToPath(new URL('../docker-compose.cluster.yml', import.meta.url));
const HAPROXY_CFG = fileURLToPath(new URL('../ops/cluster/compose/haproxy.cfg', import.meta.url));
const RABBITMQ_CONF = fileURLToPath(new URL('../ops/cluster/compose/rabbitmq-cluster.conf', import.meta.url));
/** Shaped like `openssl rand -hex 32`'s output: the gateway refuses HMAC secrets under 32 bytes. */
const SECRETS = { TOPICGATE_JWT_SECRET: 'e2e0cluster0not0a0real0secret0'.padEnd(64, '0'), RABBITMQ_ERLANG_COOKIE: 'e2e0cluster0cookie'.padEnd(64, '0') };
const ENV = { ...process.env, ...SECRETS };
/** socket.io's pingInterval + pingTimeout (ms): how long a long-poll request may be held open. */
const LONG_POLL_MS = 25_000 + 20_000;

interface ComposeService {
  image?: string;
  hostname?: string;
  build?: { context?: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: ({ target: number; published?: number } | string)[];
  volumes?: (string | { source?: string; target?: string })[];
  healthcheck?: { test?: string[] | string };
  depends_on?: Record<string, { condition?: string }>;
  stop_grace_period?: string;
}

const { run: compose, services: resolvedServices } = composeFile<ComposeService>(COMPOSE_FILE, ENV);

/** Published ports of a service, whichever form docker-compose resolved them to (`{ published, target }` or `ip:host:container/proto`). */
function publishedPorts(service: ComposeService): { published: number; target: number }[] {
  return (service.ports ?? []).map((port) => {
    if (typeof port !== 'string') return { published: port.published ?? port.target, target: port.target };
    const [target, published] = port.replace(/\/\w+$/, '').split(':').reverse();
    return { published: Number(published ?? target), target: Number(target) };
  });
}

function volumeTargets(service: ComposeService): Map<string, string> {
  return new Map(
    (service.volumes ?? []).map((volume) => {
      if (typeof volume !== 'string') return [volume.target ?? '', volume.source ?? ''];
      const [source, target] = volume.split(':');
      return [target ?? '', source ?? ''];
    }),
  );
}

/** The port the image's gateway listens on unless TOPICGATE_PORT says otherwise (the Dockerfile's ENV). */
function imagePort(): string {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const port = /^ENV .*\bTOPICGATE_PORT=(\d+)/m.exec(dockerfile)?.[1];
  expect(port, 'the Dockerfile sets TOPICGATE_PORT').toBeDefined();
  return port!;
}

/** A duration in HAProxy's syntax (`60s`, `1h`, `500ms`, bare = ms) in milliseconds. */
function haproxyMs(value: string): number {
  const m = /^(\d+)(us|ms|s|m|h|d)?$/.exec(value);
  if (!m) throw new Error(`not an HAProxy duration: ${value}`);
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
}

/** HAProxy's file as sections of directive lines, comments and blank lines dropped. */
function haproxySections(text: string): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    if (/^\S/.test(raw)) sections.set(line, (current = []));
    else current?.push(line);
  }
  return sections;
}

const gatewayNames = (services: Record<string, ComposeService>) => Object.keys(services).filter((name) => /^gateway-\d+$/.test(name)).sort();
const nodeNames = (services: Record<string, ComposeService>) => Object.keys(services).filter((name) => /^rabbitmq-\d+$/.test(name)).sort();
const hostsOf = (urls: string) => urls.split(',').map((url) => new URL(url.trim()));

beforeAll(() => requireDockerCompose(COMPOSE_FILE));

describe('docker-compose.cluster.yml', () => {
  it('is valid (docker-compose config -q)', async () => {
    const { stdout, stderr } = await compose(['config', '-q']);
    expect(stdout).toBe('');
    expect(stderr).toBe('');
  });

  for (const name of Object.keys(SECRETS) as (keyof typeof SECRETS)[]) {
    it(`refuses to resolve without ${name}, saying what to set`, async () => {
      const { [name]: _, ...without } = ENV;
      const failure = await compose(['config', '-q'], without).then(
        () => null,
        (err: Error & { stderr?: string }) => err.stderr ?? err.message,
      );
      expect(failure).toContain(name);
    });
  }

  it('resolves with the secrets written to .env by the command at the top of the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'topicgate-compose-cluster-'));
    try {
      copyFileSync(COMPOSE_FILE, join(dir, 'docker-compose.cluster.yml'));
      mkdirSync(join(dir, 'ops/cluster/compose'), { recursive: true });
      const line = /^#\s+(printf .* > \.env)/m.exec(readFileSync(COMPOSE_FILE, 'utf8'))?.[1];
      expect(line, 'the file says how to write .env').toBeDefined();
      await run('sh', ['-c', line!], { cwd: dir });
      const { TOPICGATE_JWT_SECRET: _s, RABBITMQ_ERLANG_COOKIE: _c, ...without } = ENV;
      await run('docker-compose', ['--project-directory', dir, '--file', join(dir, 'docker-compose.cluster.yml'), 'config', '-q'], { env: without, cwd: dir });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('clusters three RabbitMQ nodes: one cookie, each named in the classic-config peer list, joining the first', async () => {
    const services = await resolvedServices();
    const nodes = nodeNames(services);
    expect(nodes).toEqual(['rabbitmq-1', 'rabbitmq-2', 'rabbitmq-3']);
    const conf = readFileSync(RABBITMQ_CONF, 'utf8');
    expect(conf).toMatch(/^cluster_formation\.peer_discovery_backend = classic_config$/m);
    const peers = [...conf.matchAll(/^cluster_formation\.classic_config\.nodes\.\d+ = (\S+)$/gm)].map((m) => m[1]).sort();
    expect(peers).toEqual(nodes.map((node) => `rabbit@${node}`));
    for (const node of nodes) {
      const service = services[node]!;
      expect(service.image, `${node}: the image docker-compose.yml uses`).toBe('rabbitmq:3.13-management');
      expect(service.hostname, `${node}'s hostname makes its node name rabbit@${node}`).toBe(node);
      expect(service.environment?.RABBITMQ_ERLANG_COOKIE, `${node} shares the cookie`).toBe(SECRETS.RABBITMQ_ERLANG_COOKIE);
      expect(volumeTargets(service).get('/etc/rabbitmq/conf.d/20-cluster.conf'), `${node} reads the peer list`).toBe(RABBITMQ_CONF);
      expect(JSON.stringify(service.healthcheck?.test), `${node} is health-checked`).toContain('rabbitmq-diagnostics');
      if (node !== 'rabbitmq-1') expect(service.depends_on?.['rabbitmq-1']?.condition, `${node} starts once rabbitmq-1 runs`).toBe('service_healthy');
    }
    const published = nodes.flatMap((node) => publishedPorts(services[node]!).map((p) => p.published));
    for (const taken of [5672, 15672, 5673, 15673]) expect(published, 'host ports of a local broker and of docker-compose.yml are left alone').not.toContain(taken);
  });

  it('runs two or more gateways that any client can reach interchangeably: same secret, exchange and resume window, distinct ids', async () => {
    const services = await resolvedServices();
    const gateways = gatewayNames(services);
    expect(gateways.length).toBeGreaterThanOrEqual(2);
    const env = (name: string) => services[name]!.environment ?? {};
    for (const setting of ['TOPICGATE_JWT_SECRET', 'TOPICGATE_EXCHANGE', 'TOPICGATE_RESUME_WINDOW', 'TOPICGATE_JWT_PUBLIC_KEY', 'TOPICGATE_JWT_JWKS_URL', 'TOPICGATE_JWT_MAX_TTL']) {
      expect(new Set(gateways.map((name) => env(name)[setting])).size, `every gateway has the same ${setting}`).toBe(1);
    }
    expect(env(gateways[0]!).TOPICGATE_JWT_SECRET).toBe(SECRETS.TOPICGATE_JWT_SECRET);
    expect(Number(env(gateways[0]!).TOPICGATE_RESUME_WINDOW), 'resume across gateways is on').toBeGreaterThan(0);
    const ids = gateways.map((name) => env(name).TOPICGATE_GATEWAY_ID);
    expect(new Set(ids).size, 'distinct gateway ids (queue names would collide)').toBe(gateways.length);
    for (const name of gateways) {
      const service = services[name]!;
      expect(service.build?.context?.replace(/\/$/, ''), `${name} is built from the repository root`).toBe(REPO_ROOT.replace(/\/$/, ''));
      expect(service.command).toEqual(['serve']);
      expect(JSON.stringify(service.healthcheck?.test), `${name} is healthy once ready`).toContain(`127.0.0.1:${env(name).TOPICGATE_PORT ?? imagePort()}/readyz`);
      for (const node of nodeNames(services)) expect(service.depends_on?.[node]?.condition, `${name} waits for ${node}`).toBe('service_healthy');
      const grace = /^(\d+)s$/.exec(service.stop_grace_period ?? '10s');
      expect(Number(grace?.[1]), `${name}'s stop_grace_period outlasts the gateway's own 10 s shutdown bound`).toBeGreaterThan(10);
      expect(publishedPorts(service), `${name} is reached through HAProxy only`).toEqual([]);
    }
  });

  it('gives each gateway and the demo a URL list naming every node, the gateways each starting on another node', async () => {
    const services = await resolvedServices();
    const nodes = nodeNames(services);
    const firsts = new Set<string>();
    for (const name of [...gatewayNames(services), 'demo']) {
      const urls = hostsOf(services[name]!.environment?.TOPICGATE_AMQP_URL ?? '');
      expect(urls.map((url) => url.hostname).sort(), `${name}'s TOPICGATE_AMQP_URL names every node once`).toEqual(nodes);
      for (const url of urls) expect(url.port || '5672', `${name} reaches ${url.hostname} on its AMQP port`).toBe('5672');
      if (name !== 'demo') firsts.add(urls[0]!.hostname);
    }
    expect(firsts.size, 'gateways start on different nodes, spreading their exclusive queues').toBe(Math.min(gatewayNames(services).length, nodes.length));
  });

  it("passes every gateway's and the demo's settings through the gateway's own validation", async () => {
    const services = await resolvedServices();
    const known = new Set((Object.keys(SETTINGS) as SettingName[]).map(envName));
    for (const name of [...gatewayNames(services), 'demo']) {
      const environment = services[name]!.environment ?? {};
      const unknown = Object.keys(environment).filter((key) => key.startsWith('TOPICGATE_') && !known.has(key));
      expect(unknown, `${name} sets no setting that does not exist`).toEqual([]);
      const { settings } = readSettings([], environment);
      // The demo mints its own tokens (it refuses a configured key); the gateways need theirs.
      expect(() => loadConfig(settings, { requireAuth: name !== 'demo' }), `${name}'s settings`).not.toThrow();
    }
  });

  it('puts HAProxy in front of exactly the gateway services, sticky, checking /readyz, with timeouts longer than a long poll', async () => {
    const services = await resolvedServices();
    const haproxy = services.haproxy!;
    expect(haproxy.image).toMatch(/^haproxy:/);
    expect(volumeTargets(haproxy).get('/usr/local/etc/haproxy/haproxy.cfg'), 'HAProxy reads ops/cluster/compose/haproxy.cfg').toBe(HAPROXY_CFG);
    for (const name of gatewayNames(services)) expect(haproxy.depends_on?.[name], `HAProxy starts after ${name}`).toBeDefined();

    const sections = haproxySections(readFileSync(HAPROXY_CFG, 'utf8'));
    const frontend = [...sections].find(([head, lines]) => head.startsWith('frontend') && lines.some((l) => l.startsWith('default_backend')))!;
    expect(frontend, 'a frontend with a default backend').toBeDefined();
    const backendName = frontend[1].find((l) => l.startsWith('default_backend'))!.split(/\s+/)[1];
    const backend = sections.get(`backend ${backendName}`)!;
    const bindPort = Number(/:(\d+)$/.exec(frontend[1].find((l) => l.startsWith('bind'))!.split(/\s+/)[1]!)?.[1]);
    expect(publishedPorts(haproxy).map((p) => p.target), 'HAProxy publishes the port clients connect to').toContain(bindPort);

    const servers = backend.filter((l) => l.startsWith('server ')).map((l) => l.split(/\s+/));
    const port = imagePort();
    expect(servers.map((s) => s[2]).sort(), 'one server per gateway service, at its port').toEqual(
      gatewayNames(services).map((name) => `${name}:${services[name]!.environment?.TOPICGATE_PORT ?? port}`),
    );
    // Stickiness: HAProxy inserts a cookie naming the server, and every server has a distinct value.
    expect(backend.some((l) => /^cookie \S+ insert\b/.test(l)), 'sticky by an inserted cookie').toBe(true);
    const cookies = servers.map((s) => s[s.indexOf('cookie') + 1]);
    expect(new Set(cookies).size, 'each server has its own cookie value').toBe(servers.length);
    expect(backend).toContain('option httpchk GET /readyz');
    expect(backend.some((l) => /^default-server .*\bcheck\b/.test(l)) || servers.every((s) => s.includes('check')), 'servers are health-checked').toBe(true);
    expect(backend.some((l) => /\binit-addr \S*none/.test(l)), 'HAProxy starts while a gateway name does not resolve yet').toBe(true);

    const defaults = sections.get('defaults')!;
    const timeout = (which: string) => haproxyMs(defaults.find((l) => l.startsWith(`timeout ${which} `))!.split(/\s+/)[2]!);
    for (const which of ['client', 'server']) expect(timeout(which), `timeout ${which} outlasts a long-poll request`).toBeGreaterThan(LONG_POLL_MS);
    expect(timeout('tunnel'), 'timeout tunnel outlasts many WebSocket pings').toBeGreaterThanOrEqual(10 * LONG_POLL_MS);
  });
});

describe("HAProxy's file for docker-compose.cluster.yml", () => {
  beforeAll(async () => {
    try {
      await run('haproxy', ['-v']);
    } catch (err) {
      throw new Error(
        `haproxy is not installed (${(err as Error).message.split('\n')[0]}). ` +
          "This test checks ops/cluster/compose/haproxy.cfg with it: install Debian's haproxy (`apt-get install haproxy`); scripts/test-prerequisites.sh installs it.",
      );
    }
  });

  const check = (file: string) =>
    run('haproxy', ['-c', '-f', file]).then(
      ({ stdout, stderr }) => ({ ok: true, output: stdout + stderr }),
      (err: Error & { stdout?: string; stderr?: string }) => ({ ok: false, output: `${err.stdout ?? ''}${err.stderr ?? err.message}` }),
    );

  it('is accepted by haproxy -c, with no warning but the compose service names not resolving here', async () => {
    const { ok, output } = await check(HAPROXY_CFG);
    expect(ok, output).toBe(true);
    const warnings = output.split('\n').filter((line) => /\[(WARNING|ALERT)\]/.test(line));
    const unexpected = warnings.filter((line) => !/could not resolve address 'gateway-\d+'/.test(line));
    expect(unexpected, output).toEqual([]);
  });

  it('would be refused by haproxy -c if it were broken (the check checks)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'topicgate-haproxy-'));
    try {
      const broken = join(dir, 'haproxy.cfg');
      writeFileSync(broken, readFileSync(HAPROXY_CFG, 'utf8').replace(/^(\s*)balance \S+/m, '$1balance no-such-algorithm'));
      expect((await check(broken)).ok).toBe(false);
      // And without compose's resolvers and `init-addr … none`, names that do not resolve (yet) stop HAProxy from starting.
      const strict = join(dir, 'strict.cfg');
      writeFileSync(strict, readFileSync(HAPROXY_CFG, 'utf8').replace(/ resolvers \S+ init-addr \S+/, ''));
      expect((await check(strict)).ok).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("HAProxy's file in front of two real gateways: stickiness and the drain before a deploy", () => {
  let gateways: TestGateway[];
  const scratch = mkdtempSync(join(tmpdir(), 'topicgate-haproxy-run-'));

  beforeAll(async () => {
    await run('haproxy', ['-v']); // the describe above says how to install it
    await requireBroker();
    gateways = [await startTestGateway(), await startTestGateway()];
  });
  afterAll(async () => {
    await stopTestGateways(); // each deletes its exchange and its `.control`
    rmSync(scratch, { recursive: true, force: true });
  });

  /** Sends one runtime API command to HAProxy's admin socket. */
  function admin(socket: string, command: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const client = connect(socket, () => client.end(`${command}\n`));
      let output = '';
      client.on('data', (chunk: Buffer) => (output += chunk.toString()));
      client.on('end', () => resolve(output));
      client.on('error', reject);
    });
  }

  /**
   * HAProxy in the foreground with `cfg`'s policy, its servers pointed at the two gateways
   * (without compose's resolvers), a free local port, and an admin socket.
   */
  async function startHaproxy(cfg: string) {
    const dir = mkdtempSync(join(scratch, 'run-'));
    const port = await freePort();
    const socket = join(dir, 'admin.sock');
    const text = cfg
      .replace(/^resolvers compose\n(?:[ \t]+.*\n)*/m, '')
      .replace(/ resolvers compose init-addr \S+/, '')
      .replace(/^(\s*)maxconn \d+$/m, `$1maxconn 1000\n$1stats socket ${socket} mode 600 level admin`)
      .replace(/^(\s*)bind \*:8080$/m, `$1bind 127.0.0.1:${port}`)
      .replace(/^frontend stats\n(?:[ \t]+.*\n?)*/m, '')
      .replace(/^(\s*)server gateway-(\d+) gateway-\d+:8080 (.*)$/gm, (_line, indent: string, n: string, rest: string) =>
        Number(n) <= gateways.length ? `${indent}server gateway-${n} 127.0.0.1:${gateways[Number(n) - 1]!.port} ${rest}` : '');
    writeFileSync(join(dir, 'haproxy.cfg'), text);
    const child = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const url = `http://127.0.0.1:${port}`;
    // Ready once both gateways pass their /readyz check.
    for (const deadline = Date.now() + 15_000; ; ) {
      if (child.exitCode !== null) throw new Error(`haproxy exited: ${output}`);
      const state = await admin(socket, 'show servers state gateways').catch(() => '');
      if (state.split('\n').filter((line) => / gateway-\d+ 127\.0\.0\.1 2 /.test(line)).length === gateways.length) break;
      if (Date.now() > deadline) throw new Error(`haproxy did not see the gateways up: ${state}${output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const stop = async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    };
    return { url, socket, stop };
  }

  /**
   * Opens a long-polling session through HAProxy with `cookie` and says which gateway holds it
   * (the one that knows its sid; the probe closes the session). Also returns HAProxy's Set-Cookie.
   */
  async function sessionGateway(url: string, cookie?: string): Promise<{ gateway: string; setCookie: string | null }> {
    const response = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: cookie ? { cookie } : {} });
    const sid = /"sid":"([^"]+)"/.exec(await response.text())?.[1];
    expect(sid, 'an engine.io handshake').toBeDefined();
    for (const [i, gateway] of gateways.entries()) {
      const probe = await fetch(`${gateway.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '1' });
      if (probe.status === 200) return { gateway: `gateway-${i + 1}`, setCookie: response.headers.get('set-cookie') };
    }
    return { gateway: 'none', setCookie: response.headers.get('set-cookie') };
  }

  it('keeps a session on the gateway its cookie names; DRAIN still sends it there, MAINT sends it to another gateway', async () => {
    const haproxy = await startHaproxy(readFileSync(HAPROXY_CFG, 'utf8'));
    try {
      const first = await sessionGateway(haproxy.url);
      expect(first.setCookie, 'HAProxy names the gateway in a cookie').toMatch(/^tg_gw=gateway-\d+;/);
      const named = `tg_gw=${/^tg_gw=([^;]+)/.exec(first.setCookie!)![1]}`;
      for (let i = 0; i < 5; i++) expect((await sessionGateway(haproxy.url, named)).gateway, 'sticky').toBe(first.gateway);

      await admin(haproxy.socket, 'set server gateways/gateway-1 state drain');
      expect((await sessionGateway(haproxy.url, 'tg_gw=gateway-1')).gateway, 'DRAIN honours the cookie').toBe('gateway-1');
      await admin(haproxy.socket, 'disable server gateways/gateway-1');
      const moved = await sessionGateway(haproxy.url, 'tg_gw=gateway-1');
      expect(moved.gateway, 'MAINT does not').toBe('gateway-2');
      expect(moved.setCookie, 'and the client gets the new gateway\'s cookie').toMatch(/^tg_gw=gateway-2;/);
    } finally {
      await haproxy.stop();
    }
  });

  it('would send clients back into a gateway in MAINT with `option persist` (why the file has none)', async () => {
    const withPersist = readFileSync(HAPROXY_CFG, 'utf8').replace(/^(\s*)cookie tg_gw (.*)$/m, '$1cookie tg_gw $2\n$1option persist');
    const haproxy = await startHaproxy(withPersist);
    try {
      await admin(haproxy.socket, 'disable server gateways/gateway-1');
      expect((await sessionGateway(haproxy.url, 'tg_gw=gateway-1')).gateway).toBe('gateway-1');
    } finally {
      await haproxy.stop();
    }
  });
});
