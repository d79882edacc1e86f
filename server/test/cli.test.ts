/**
 * What an operator sees when they get a setting or an argument wrong: one line
 * that says what is wrong and what to change, a non-zero exit, and no stack
 * trace. Runs the built `topicgate` command (server/dist/cli.js) as a process;
 * rebuild with `npx tsc -b server` first.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deleteGatewayExchanges, requireBroker, TEST_AMQP_URL, uniqueName } from './support/broker.js';
import { CLI_PATH } from './support/child-gateway.js';

interface Run {
  code: number | string;
  stderr: string;
}

/**
 * Runs `topicgate ...args` to completion. A process that should have refused
 * to start but did not is killed after `limitMs`, so the test fails with what
 * it printed rather than hanging.
 */
async function runCli(args: string[], env: Record<string, string> = {}, limitMs = 15_000): Promise<Run> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    env: {
      // Only what the case sets: no TOPICGATE_* leaking in from the shell running the tests.
      ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TOPICGATE_'))),
      TOPICGATE_HOST: '127.0.0.1',
      TOPICGATE_INSECURE_NO_AUTH: '1',
      TOPICGATE_METRICS_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const limit = setTimeout(() => {
    stderr += `\n[test] still running after ${limitMs} ms; killed\n`;
    child.kill('SIGKILL');
  }, limitMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(limit);
  return { code: code ?? signal ?? 'unknown', stderr };
}

/** The CLI's one-line error: `topicgate: <message>`, with no stack frame anywhere. */
function expectOneLineError(run: Run, ...fragments: string[]): void {
  expect(run.stderr).not.toMatch(/^\s+at /m);
  const line = run.stderr.split('\n').find((l) => l.startsWith('topicgate: '));
  expect(line, `no "topicgate: ..." line in:\n${run.stderr}`).toBeDefined();
  for (const fragment of fragments) expect(line).toContain(fragment);
  expect(run.code).toBe(1);
}

/** A TCP server that records whether anything connected to it (a stand-in broker that must stay untouched). */
async function listenOnFreePort(): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections };
}

const servers: Server[] = [];
async function occupiedPort() {
  const occupied = await listenOnFreePort();
  servers.push(occupied.server);
  return occupied;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

const exchanges: string[] = [];
function freshExchange(): string {
  const name = uniqueName('topicgate-cli-test');
  exchanges.push(name);
  return name;
}

beforeAll(requireBroker);
afterAll(async () => {
  for (const name of exchanges) await deleteGatewayExchanges(name);
});

describe('an invalid log level', () => {
  it.each([['serve'], ['demo']])('%s refuses it, listing the levels pino knows', async (command) => {
    const run = await runCli([command, '--port', '0'], { TOPICGATE_LOG_LEVEL: 'verbose' });
    expectOneLineError(run, 'TOPICGATE_LOG_LEVEL', '"verbose"', 'fatal, error, warn, info, debug, trace, silent');
  });

  it('publish refuses it too, before connecting', async () => {
    const broker = await occupiedPort();
    const run = await runCli(['publish', 'builds.1', '{}', '--log-level', 'LOUD'], { TOPICGATE_AMQP_URL: `amqp://127.0.0.1:${broker.port}` });
    expectOneLineError(run, 'TOPICGATE_LOG_LEVEL', '"LOUD"');
    expect(broker.connections()).toBe(0);
  });
});

describe('topicgate publish with bad arguments', () => {
  it('an invalid routing key is refused in one line, against the real broker', async () => {
    const run = await runCli(['publish', 'bad..key', '{"id":1}'], { TOPICGATE_AMQP_URL: TEST_AMQP_URL, TOPICGATE_EXCHANGE: freshExchange() });
    expectOneLineError(run, 'routing key "bad..key"', 'empty word');
  });

  it.each([
    ['bad..key', '{"id":1}', 'routing key "bad..key"'],
    ['builds.*', '{"id":1}', 'wildcards are allowed in patterns, not in routing keys'],
    ['builds.1', '{not json', 'JSON argument'],
  ])('%s %s is refused before anything connects to the broker', async (key, json, message) => {
    const broker = await occupiedPort();
    const run = await runCli(['publish', key, json], { TOPICGATE_AMQP_URL: `amqp://127.0.0.1:${broker.port}` });
    expectOneLineError(run, message);
    expect(broker.connections()).toBe(0);
  });

  it('a valid key and body are still published and confirmed', async () => {
    const run = await runCli(['publish', 'builds.42.finished', '{"id":42,"version":3}'], {
      TOPICGATE_AMQP_URL: TEST_AMQP_URL,
      TOPICGATE_EXCHANGE: freshExchange(),
    });
    expect(run.stderr).toContain('published builds.42.finished');
    expect(run.code).toBe(0);
  });
});

describe('a port that is already in use', () => {
  it('serve (on RabbitMQ) names the port and how to choose another', async () => {
    const { port } = await occupiedPort();
    const run = await runCli(['serve'], {
      TOPICGATE_PORT: String(port),
      TOPICGATE_AMQP_URL: TEST_AMQP_URL,
      TOPICGATE_EXCHANGE: freshExchange(),
      TOPICGATE_GATEWAY_ID: uniqueName('cli'),
    });
    expectOneLineError(run, `port ${port} is already in use`, 'TOPICGATE_PORT', '--port');
  });

  it('demo (embedded broker) names the port and how to choose another', async () => {
    const { port } = await occupiedPort();
    const run = await runCli(['demo', '--port', String(port)]);
    expectOneLineError(run, `port ${port} is already in use`, 'TOPICGATE_PORT', '--port');
  });
});

describe('the AMQP heartbeat', () => {
  it('0 (heartbeats off) is refused with the reason', async () => {
    const run = await runCli(['serve', '--port', '0'], {
      TOPICGATE_AMQP_URL: TEST_AMQP_URL,
      TOPICGATE_EXCHANGE: freshExchange(),
      TOPICGATE_AMQP_HEARTBEAT: '0',
    });
    expectOneLineError(run, 'TOPICGATE_AMQP_HEARTBEAT', 'from 1 to 3600', '"0"', 'heartbeats off');
  });

  it.each(['-5', '1.5', 'often'])('%s is refused', async (value) => {
    const run = await runCli(['serve', '--port', '0', `--amqp-heartbeat=${value}`], { TOPICGATE_AMQP_URL: TEST_AMQP_URL, TOPICGATE_EXCHANGE: freshExchange() });
    expectOneLineError(run, 'TOPICGATE_AMQP_HEARTBEAT', `"${value}"`);
  });
});

describe('the resume prefetch', () => {
  it('is refused when a resume naming that many deliveries would not fit a client event, saying which two settings to change', async () => {
    const run = await runCli(['serve', '--port', '0', '--resume-window', '60', '--resume-prefetch', '2000'], { TOPICGATE_AMQP_URL: TEST_AMQP_URL, TOPICGATE_EXCHANGE: freshExchange() });
    expectOneLineError(run, 'TOPICGATE_RESUME_PREFETCH', '2000', 'TOPICGATE_MAX_PAYLOAD_BYTES (16384)', 'lower the prefetch or raise the payload limit');
  });
});

describe('topicgate token with bad arguments', () => {
  it.each([
    [['--topics', 'builds.#', '--ttl', '5y'], 'invalid duration "5y"'],
    [[], 'needs --topics'],
    [['--topics', 'builds..x'], 'topic 1 is not a valid pattern'],
    [['--topics', 'builds.#', '--ttl', '2d'], '--ttl 2d is longer than TOPICGATE_JWT_MAX_TTL (24h)'],
  ])('%j is refused in one line', async (flags, message) => {
    const run = await runCli(['token', '--jwt-secret', 'a-secret-for-tests-long-enough-for-hs256', '--sub', 'alice', ...flags]);
    expectOneLineError(run, message);
  });
});

describe('a mistyped flag', () => {
  it.each([
    ['--prot', 'did you mean --port?'],
    ['--amqp', 'did you mean --amqp-url or --amqp-heartbeat?'],
    ['--amqp-ulr=amqp://x', 'did you mean --amqp-url?'],
  ])('%s names the flag it probably meant', async (flag, hint) => {
    const run = await runCli(['serve', flag, '1']);
    expectOneLineError(run, `unknown flag ${flag.split('=')[0]}`, hint, 'topicgate help');
  });
});

describe('token settings that cannot be safe (issue 11)', () => {
  it('serve refuses a short secret before touching the broker, saying how to make a good one', async () => {
    const broker = await occupiedPort();
    const run = await runCli(['serve', '--port', '0'], { TOPICGATE_JWT_SECRET: 'changeme', TOPICGATE_AMQP_URL: `amqp://127.0.0.1:${broker.port}` });
    expectOneLineError(run, 'TOPICGATE_JWT_SECRET', '8 bytes', 'at least 32 bytes', 'openssl rand -hex 32');
    expect(run.stderr).not.toContain('changeme');
    expect(broker.connections()).toBe(0);
  });

  it('token refuses to mint with a short secret', async () => {
    const run = await runCli(['token', '--jwt-secret', 'changeme', '--sub', 'alice', '--topics', 'builds.#']);
    expectOneLineError(run, 'at least 32 bytes', 'openssl rand -hex 32');
  });

  it.each([
    [{ TOPICGATE_JWT_JWKS_URL: 'https://idp.example/.well-known/jwks.json', TOPICGATE_JWT_SECRET: 'x'.repeat(64) }, ['TOPICGATE_JWT_JWKS_URL', 'TOPICGATE_JWT_SECRET']],
    [{ TOPICGATE_JWT_JWKS_URL: 'https://idp.example/.well-known/jwks.json' }, ['TOPICGATE_JWT_ALGORITHMS', 'RS256']],
    [{ TOPICGATE_JWT_JWKS_URL: 'http://idp.example/jwks.json', TOPICGATE_JWT_ALGORITHMS: 'RS256' }, ['TOPICGATE_JWT_JWKS_URL', 'https://']],
    [{ TOPICGATE_JWT_JWKS_URL: 'not a url', TOPICGATE_JWT_ALGORITHMS: 'RS256' }, ['TOPICGATE_JWT_JWKS_URL', 'not a URL']],
    [{ TOPICGATE_JWT_SECRET: 'x'.repeat(64), TOPICGATE_JWT_MAX_TTL: 'forever' }, ['TOPICGATE_JWT_MAX_TTL', '"forever"']],
    [{ TOPICGATE_JWT_SECRET: 'x'.repeat(64), TOPICGATE_JWT_MAX_TTL: '0' }, ['TOPICGATE_JWT_MAX_TTL', 'greater than 0']],
  ])('serve refuses %j in one line', async (env, fragments) => {
    const broker = await occupiedPort();
    const run = await runCli(['serve', '--port', '0'], { ...env, TOPICGATE_AMQP_URL: `amqp://127.0.0.1:${broker.port}` });
    expectOneLineError(run, ...fragments);
    expect(broker.connections()).toBe(0);
  });

  it('revoke needs --sub and the broker URL', async () => {
    expectOneLineError(await runCli(['revoke'], { TOPICGATE_AMQP_URL: TEST_AMQP_URL }), 'needs --sub');
    expectOneLineError(await runCli(['revoke', '--sub', 'alice']), 'TOPICGATE_AMQP_URL');
  });
});

describe('a broker that refuses the gateway', () => {
  it.each([['serve'], ['publish']])('%s exits at once naming the user when the password is wrong', async (command) => {
    const args = command === 'publish' ? ['publish', 'builds.1', '{}'] : ['serve', '--port', '0'];
    const run = await runCli(args, { TOPICGATE_AMQP_URL: TEST_AMQP_URL.replace(/:[^:@/]+@/, ':not-the-password@'), TOPICGATE_EXCHANGE: freshExchange() });
    expectOneLineError(run, 'refused the login of user "guest"', 'TOPICGATE_AMQP_URL');
    expect(run.stderr).not.toContain('not-the-password');
  });

  it('serve exits at once naming a vhost that does not exist', async () => {
    const run = await runCli(['serve', '--port', '0'], { TOPICGATE_AMQP_URL: `${TEST_AMQP_URL}/no-such-vhost`, TOPICGATE_EXCHANGE: freshExchange() });
    expectOneLineError(run, 'virtual host "no-such-vhost"', 'rabbitmqctl add_vhost no-such-vhost');
  });
});

describe('serve on SIGTERM', () => {
  it('logs its shutdown as JSON like every other line, and exits 0', async () => {
    const child = spawn(process.execPath, [CLI_PATH, 'serve', '--port', '0', '--host', '127.0.0.1'], {
      env: {
        ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TOPICGATE_'))),
        TOPICGATE_INSECURE_NO_AUTH: '1',
        TOPICGATE_AMQP_URL: TEST_AMQP_URL,
        TOPICGATE_EXCHANGE: freshExchange(),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const listening = new Promise<void>((resolve) =>
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('topicgate listening')) resolve();
      }),
    );
    await listening;
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    const lines = stderr.split('\n').filter((line) => line.trim() !== '');
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(lines.map((line) => (JSON.parse(line) as { msg: string }).msg)).toContain('shutting down: unsubscribing clients and deleting their queues');
    expect(code).toBe(0);
  });
});
