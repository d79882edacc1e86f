/**
 * The README's way in, taken on a fresh clone exactly as it is written there:
 * `npm ci && npm run build`, then the `topicgate` command through npx — `help`,
 * `token`, `publish` (to the real RabbitMQ) and `serve` (until /healthz and
 * /readyz answer, then SIGTERM). Each command is the README's own line, run
 * with sh, so the README cannot drift from what works.
 *
 * The clone is of the repository's HEAD (`git clone`), as CI's checkout is:
 * uncommitted changes are not in it, so commit before relying on this test.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteGatewayExchanges, requireBroker, uniqueName } from '../server/test/support/broker.js';
import { freePort } from '../server/test/support/child-gateway.js';
import { shellEnv } from './support/env.js';
import { REPO_ROOT } from './support/worktree.js';

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

/** The README's shell commands: each ```sh block's lines, continuation lines joined, comments dropped. */
function readmeCommands(): string[] {
  const commands: string[] = [];
  for (const [, block] of README.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)) {
    for (const line of block!.replace(/\\\n/g, ' ').split('\n')) {
      const command = line.replace(/\s+#.*$/, '').replace(/\s+/g, ' ').trim();
      if (command !== '' && !command.startsWith('#')) commands.push(command);
    }
  }
  return commands;
}

/** The README's `export` lines: set once in the reader's shell, in force for every command after them. */
function readmeExports(): string {
  return readmeCommands().filter((command) => command.startsWith('export ')).join('\n');
}

/** A README command as the reader's shell runs it: after the README's exports. */
function inReadersShell(command: string): string {
  return `${readmeExports()}\n${command}`;
}

/** The README's command for `what`; the test fails, saying so, when the README has none. */
function readmeCommand(what: RegExp, description: string): string {
  const found = readmeCommands().find((command) => what.test(command));
  if (found === undefined) throw new Error(`README.md has no shell command that ${description} (looked for ${what})`);
  return found;
}

let clone: string;
const exchange = uniqueName('topicgate-readme');
/** What every README command gets besides its own variables: where to listen and publish, so that runs do not collide. */
let env: Record<string, string>;

/** Runs a README line with sh in the clone, to completion. */
function sh(command: string, timeoutMs = 60_000): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', command], { cwd: clone, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && err.code === undefined && !err.killed) return reject(err);
      resolve({ code: err ? (err.killed ? `killed after ${timeoutMs} ms` : (err.code as number | string)) : 0, stdout, stderr });
    });
  });
}

async function mustRun(command: string, timeoutMs?: number): Promise<string> {
  const result = await sh(command, timeoutMs);
  expect(result.code, `\`${command}\` in a fresh clone failed:\n${result.stdout.slice(-5000)}\n${result.stderr.slice(-5000)}`).toBe(0);
  return result.stdout;
}

beforeAll(async () => {
  await requireBroker();
  clone = join(mkdtempSync(join(tmpdir(), 'topicgate-clone-')), 'topicgate');
  env = { ...shellEnv(), TOPICGATE_HOST: '127.0.0.1', TOPICGATE_PORT: String(await freePort()), TOPICGATE_EXCHANGE: exchange, TOPICGATE_METRICS_PORT: '0' };
  await new Promise<void>((resolve, reject) =>
    execFile('git', ['-c', 'advice.detachedHead=false', 'clone', '--quiet', REPO_ROOT, clone], (err, _stdout, stderr) =>
      err ? reject(new Error(`git clone ${REPO_ROOT} failed: ${stderr || err.message}`)) : resolve(),
    ),
  );
});

afterAll(async () => {
  await deleteGatewayExchanges(exchange).catch(() => {});
  if (clone) rmSync(join(clone, '..'), { recursive: true, force: true });
});

describe('the README on a fresh clone', () => {
  it('npm ci links the topicgate command, which asks for a build until there is one; npm run build makes it work', async () => {
    const install = readmeCommand(/^npm ci && npm run build$/, 'installs and builds (`npm ci && npm run build`)');
    const [ci, build] = install.split(' && ') as [string, string];

    await mustRun(ci, 180_000);
    const bin = join(clone, 'node_modules/.bin/topicgate');
    let target: string;
    try {
      target = realpathSync(bin);
    } catch (err) {
      throw new Error(`\`npm ci\` did not link node_modules/.bin/topicgate (${(err as Error).message}): the server's bin must exist before the build`);
    }
    expect(target).toBe(realpathSync(join(clone, 'server/bin/topicgate.js')));

    const unbuilt = await sh('npx --no-install topicgate help');
    expect(unbuilt.code).not.toBe(0);
    expect(unbuilt.stderr).toContain('run `npm run build` first');

    await mustRun(build, 180_000);
  }, 400_000);

  it('topicgate help', async () => {
    const help = /`(npx [^`]*topicgate help)`/.exec(README)?.[1];
    expect(help, 'README.md mentions `npx … topicgate help`').toBeDefined();
    expect(await mustRun(help!)).toContain('Usage:');
  });

  it('topicgate token mints a token the secret verifies, for the subject and topics asked', async () => {
    const command = readmeCommand(/\btopicgate token\b/, 'mints a token');
    expect(readmeExports(), 'the README exports TOPICGATE_JWT_SECRET before minting').toMatch(/^export TOPICGATE_JWT_SECRET=/m);
    // The secret the reader's shell holds, then the token minted with it.
    const [secret, token] = (await mustRun(inReadersShell(`printf '%s\\n' "$TOPICGATE_JWT_SECRET"\n${command}`))).trim().split('\n');
    const claims = jwt.verify(token!, secret!, { algorithms: ['HS256'] }) as jwt.JwtPayload;
    expect(claims.sub).toBe(/--sub (\S+)/.exec(command)?.[1]);
    expect(claims.topics).toEqual(/--topics '([^']*)'/.exec(command)?.[1]?.split(','));
    expect(claims.exp).toBeGreaterThan(Date.now() / 1000);
  });

  it('topicgate publish delivers the message to the exchange, confirmed', async () => {
    const command = readmeCommand(/\btopicgate publish\b/, 'publishes a message');
    const [, key, body] = /publish (\S+) '([^']*)'/.exec(command) ?? [];
    expect(key, 'the publish line has KEY and a quoted JSON body').toBeDefined();

    const connection = await amqp.connect(/TOPICGATE_AMQP_URL=(\S+)/.exec(command)?.[1] ?? 'amqp://guest:guest@127.0.0.1:5672');
    try {
      const channel = await connection.createChannel();
      // Declared as the gateway declares it, so that the queue can be bound before the publish.
      await channel.assertExchange(exchange, 'topic', { durable: true, autoDelete: false });
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.bindQueue(queue, exchange, '#');
      const received = new Promise<amqp.ConsumeMessage>((resolve) => void channel.consume(queue, (m) => m && resolve(m), { noAck: true }));

      const result = await sh(command);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain('confirmed');
      const message = await Promise.race([
        received,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('nothing arrived within 10 s')), 10_000)),
      ]);
      expect(message.fields.routingKey).toBe(key);
      expect(JSON.parse(message.content.toString())).toEqual(JSON.parse(body!));
    } finally {
      await connection.close();
    }
  });

  it('topicgate serve answers /healthz and /readyz, and stops on SIGTERM', async () => {
    const command = readmeCommand(/\btopicgate serve\b/, 'starts the gateway');
    // Its own process group, so that SIGTERM reaches the gateway under sh and npx.
    const child = spawn('sh', ['-c', inReadersShell(command)], { cwd: clone, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const base = `http://127.0.0.1:${env.TOPICGATE_PORT}`;
    try {
      for (const path of ['/healthz', '/readyz']) {
        const status = await pollStatus(`${base}${path}`, child, 30_000);
        expect(status, `GET ${path}; the gateway's output:\n${output}`).toBe(200);
      }
      process.kill(-child.pid!, 'SIGTERM');
      const gone = await groupGone(child.pid!, 15_000);
      expect(gone, `the gateway stopped within 15 s of SIGTERM; its output:\n${output}`).toBe(true);
      await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }, 60_000);
});

/** Polls `url` until it answers 200; the last status (or 0) when `child` exits or time runs out. */
async function pollStatus(url: string, child: ChildProcess, timeoutMs: number): Promise<number> {
  let status = 0;
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline && child.exitCode === null; ) {
    status = await fetch(url).then((r) => r.status, () => 0);
    if (status === 200) return status;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return status;
}

/** Whether every process of the group led by `pgid` has exited within `timeoutMs`. */
async function groupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
