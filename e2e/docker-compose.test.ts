/**
 * docker-compose.yml stays a valid way to run RabbitMQ, the gateway and the
 * demo: validated by docker-compose itself (Debian's docker-compose 1.29, no
 * Docker daemon needed), with every service health-checked.
 *
 * And the image it builds works: the Dockerfile's stages are built without a
 * Docker engine (e2e/support/dockerfile.ts: each COPY from a clean checkout's
 * files minus .dockerignore, each RUN with sh in a directory standing for
 * WORKDIR), and the result runs docker-compose.yml's gateway and demo services
 * on the real RabbitMQ until their own healthchecks pass.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../server/test/support/child-gateway.js';
import { deleteGatewayExchanges, requireBroker, TEST_AMQP_URL, uniqueName } from '../server/test/support/broker.js';
import { composeFile, requireDockerCompose } from './support/compose.js';
import { buildImage, type Image } from './support/dockerfile.js';
import { shellEnv } from './support/env.js';
import { REPO_ROOT } from './support/worktree.js';

const run = promisify(execFile);
const COMPOSE_FILE = fileURLToPath(new URL('../docker-compose.yml', import.meta.url));
/**
 * The gateway refuses to start without a secret, and the file says so with `${TOPICGATE_JWT_SECRET:?…}`;
 * and with one shorter than 32 bytes: this one is shaped like `openssl rand -hex 32`'s.
 */
const ENV = { ...process.env, TOPICGATE_JWT_SECRET: 'e2e0not0a0real0secret0'.padEnd(64, '0') };

interface ComposeService {
  image?: string;
  build?: { context?: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: { target: number; published?: number }[];
  healthcheck?: { test?: string[] | string; interval?: string; retries?: number };
  depends_on?: Record<string, { condition?: string }>;
  stop_grace_period?: string;
}

const { run: compose, services: resolvedServices } = composeFile<ComposeService>(COMPOSE_FILE, ENV);

beforeAll(() => requireDockerCompose(COMPOSE_FILE));

describe('docker-compose.yml', () => {
  it('is valid (docker-compose config -q)', async () => {
    const { stdout, stderr } = await compose(['config', '-q']);
    expect(stdout).toBe('');
    expect(stderr).toBe('');
  });

  it('refuses to resolve without TOPICGATE_JWT_SECRET, saying what to set', async () => {
    const { TOPICGATE_JWT_SECRET: _, ...withoutSecret } = ENV;
    const failure = await compose(['config', '-q'], withoutSecret).then(
      () => null,
      (err: Error & { stderr?: string }) => err.stderr ?? err.message,
    );
    expect(failure).toContain('TOPICGATE_JWT_SECRET');
  });

  it('resolves with the secret in .env, as the README sets it, so `down` and the rest work without exporting it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'topicgate-compose-'));
    try {
      copyFileSync(COMPOSE_FILE, join(dir, 'docker-compose.yml'));
      const readme = readFileSync(join(dirname(COMPOSE_FILE), 'README.md'), 'utf8');
      const line = /^(echo "TOPICGATE_JWT_SECRET=.*" > \.env)/m.exec(readme)?.[1];
      expect(line, 'the README writes the secret to .env').toBeDefined();
      await run('sh', ['-c', line!], { cwd: dir });
      const { TOPICGATE_JWT_SECRET: _, ...withoutSecret } = ENV;
      await run('docker-compose', ['--project-directory', dir, '--file', join(dir, 'docker-compose.yml'), 'config', '-q'], { env: withoutSecret, cwd: dir });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('publishes RabbitMQ on host ports that do not collide with a local broker (5672, 15672)', async () => {
    const published = ((await resolvedServices()).rabbitmq!.ports ?? []).map((p) => p.published);
    expect(published).not.toContain(5672);
    expect(published).not.toContain(15672);
  });

  it('runs RabbitMQ with its management UI, the gateway and the demo, each with a healthcheck', async () => {
    const services = await resolvedServices();
    expect(Object.keys(services).sort()).toEqual(['demo', 'gateway', 'rabbitmq']);
    expect(services.rabbitmq!.image).toMatch(/^rabbitmq:[^ ]*management/);
    for (const [name, service] of Object.entries(services)) {
      expect(service.healthcheck?.test, `${name} has a healthcheck`).toBeDefined();
      expect(service.healthcheck!.test!.length, `${name}'s healthcheck runs something`).toBeGreaterThan(0);
    }
    // The gateway and the demo wait for a healthy broker, and are healthy only once ready (/readyz).
    for (const name of ['gateway', 'demo']) {
      expect(services[name]!.depends_on?.rabbitmq?.condition, `${name} waits for RabbitMQ`).toBe('service_healthy');
      expect(JSON.stringify(services[name]!.healthcheck!.test), `${name}'s healthcheck`).toContain('/readyz');
    }
  });
});

describe('the Dockerfile, built without a Docker engine', () => {
  let scratch: string;
  let image: Image;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'topicgate-image-'));
    image = await buildImage({ scratch });
  }, 300_000);
  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('holds the server, its demo pages, the SDK bundle the demo serves, and production dependencies only', () => {
    const at = (path: string) => join(image.cwd, path);
    for (const needed of ['server/dist/cli.js', 'server/demo-pages/index.html', 'server/demo-pages/common.js', 'client/dist/topicgate.min.js', 'shared/dist/index.js']) {
      expect(existsSync(at(needed)), `the image has ${needed}`).toBe(true);
    }
    for (const notNeeded of ['server/src', 'client/src', 'shared/src', 'bench', 'e2e', 'node_modules/typescript', 'node_modules/vitest', 'node_modules/esbuild', 'node_modules/playwright-core']) {
      expect(existsSync(at(notNeeded)), `the image has no ${notNeeded}`).toBe(false);
    }
    expect(readdirSync(at('client/dist'))).toEqual(['topicgate.min.js']);
  });

  it('runs the topicgate command (docker run <image> help)', async () => {
    const { code, stdout } = await runInImage(image, ['help']);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage:');
  });

  for (const name of ['gateway', 'demo']) {
    it(`is what docker-compose.yml builds for ${name}, which runs on RabbitMQ until its healthcheck passes`, async () => {
      await requireBroker();
      const service = (await resolvedServices())[name]!;
      expect(service.build?.context?.replace(/\/$/, ''), `${name} is built from the repository root`).toBe(REPO_ROOT.replace(/\/$/, ''));
      expect(service.build?.dockerfile ?? 'Dockerfile').toBe('Dockerfile');

      // The service's settings, on this machine: the test broker instead of the `rabbitmq` service,
      // a free port instead of the container's, and an exchange of its own.
      const environment = { ...service.environment };
      expect(environment.TOPICGATE_AMQP_URL, `${name} talks to the rabbitmq service`).toBe('amqp://guest:guest@rabbitmq:5672');
      const containerPort = service.ports?.[0]?.target;
      expect(containerPort, `${name} publishes its port`).toBeDefined();
      expect(String(environment.TOPICGATE_PORT ?? image.env.TOPICGATE_PORT), `${name} listens on the port it publishes`).toBe(String(containerPort));
      const port = await freePort();
      const exchange = uniqueName(`topicgate-image-${name}`);
      Object.assign(environment, { TOPICGATE_AMQP_URL: TEST_AMQP_URL, TOPICGATE_PORT: String(port), TOPICGATE_EXCHANGE: exchange, TOPICGATE_HOST: '127.0.0.1', TOPICGATE_METRICS_PORT: '0' });
      const healthcheck = service.healthcheck!.test as string[];
      expect(healthcheck[0]).toBe('CMD');
      expect(healthcheck.join(' '), `${name}'s healthcheck asks the container's port`).toContain(`127.0.0.1:${containerPort}/`);
      const probe = healthcheck.slice(1).map((arg) => arg.replaceAll(`127.0.0.1:${containerPort}/`, `127.0.0.1:${port}/`));

      const container = startInImage(image, service.command ?? image.cmd, environment);
      try {
        let healthy = false;
        for (const deadline = Date.now() + 30_000; !healthy && Date.now() < deadline && container.exitCode === null; ) {
          healthy = (await execInImage(image, probe, environment)).code === 0;
          if (!healthy) await new Promise((resolve) => setTimeout(resolve, 250));
        }
        expect(healthy, `${name} became healthy; its output:\n${container.output()}`).toBe(true);

        const base = `http://127.0.0.1:${port}`;
        const bundle = await fetch(`${base}/topicgate.min.js`);
        expect(bundle.status, `${name} serves the SDK bundle`).toBe(200);
        expect(await bundle.text()).toContain('topicgate');
        if (name === 'demo') {
          const page = await fetch(`${base}/`);
          expect(page.status).toBe(200);
          expect(await page.text()).toContain('/topicgate.min.js');
          const token = (await (await fetch(`${base}/api/demo-token`)).json()) as { token?: unknown };
          expect(typeof token.token).toBe('string');
        }

        // `docker stop`: SIGTERM, then the container must be gone within its grace period.
        container.child.kill('SIGTERM');
        const graceMs = parseSeconds(service.stop_grace_period ?? '10s') * 1000;
        const exit = await Promise.race([
          once(container.child, 'exit').then(([code]) => code as number | null),
          new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs)),
        ]);
        expect(exit, `${name} exits 0 on SIGTERM within ${graceMs} ms; its output:\n${container.output()}`).toBe(0);
      } finally {
        if (container.child.exitCode === null) container.child.kill('SIGKILL');
        await deleteGatewayExchanges(exchange).catch(() => {});
      }
    }, 90_000);
  }
});

describe('the docker build emulation', () => {
  const scratches: string[] = [];
  const build = (dockerfile: string) => {
    const scratch = mkdtempSync(join(tmpdir(), 'topicgate-emulation-'));
    scratches.push(scratch);
    return buildImage({ scratch, dockerfile });
  };
  afterAll(() => {
    for (const scratch of scratches) rmSync(scratch, { recursive: true, force: true });
  });
  const node = `node:${process.versions.node.split('.')[0]}-bookworm-slim`;

  it('fails a RUN that needs a file no COPY brought, and passes once it is copied', async () => {
    const missing = `FROM ${node} AS build\nWORKDIR /app\nCOPY package.json ./\nRUN test -f package.json && test -f server/package.json\n`;
    await expect(build(missing)).rejects.toThrow(/line 4 \(RUN .*\) failed/);
    const copied = `FROM ${node} AS build\nWORKDIR /app\nCOPY package.json ./\nCOPY server/package.json server/\nRUN test -f package.json && test -f server/package.json\n`;
    await expect(build(copied)).resolves.toBeDefined();
  });

  it('has in its context only what a clean checkout has, minus .dockerignore', async () => {
    // Both exist here after `npm ci && npm run build`: ignored by git and by .dockerignore.
    await expect(build(`FROM ${node}\nCOPY node_modules node_modules\n`)).rejects.toThrow(/"node_modules" not found in the build context/);
    await expect(build(`FROM ${node}\nCOPY server/dist server/dist\n`)).rejects.toThrow(/"server\/dist" not found in the build context/);
  });

  it('copies from an earlier stage only what that stage made', async () => {
    const file = `FROM ${node} AS one\nWORKDIR /app\nRUN echo hi > made.txt\nFROM ${node}\nCOPY --from=one /app/made.txt ./\nCOPY --from=one /app/missing.txt ./\n`;
    await expect(build(file)).rejects.toThrow(/line 6 .*"\/app\/missing.txt" not found in stage one/);
  });
});

/** `docker run` of the image with `args` (after its ENTRYPOINT), to completion. */
function runInImage(image: Image, args: string[]) {
  return execInImage(image, [...image.entrypoint, ...args]);
}

/** `docker exec`: `argv` run in the image's WORKDIR with its ENV (plus `env`), to completion. */
function execInImage(image: Image, argv: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { cwd: image.cwd, env: { ...shellEnv(), ...image.env, ...env }, timeout: 15_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number' && !err.killed) return reject(err);
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

/** `docker run -d`: the image's ENTRYPOINT with `args`, left running. */
function startInImage(image: Image, args: string[], env: Record<string, string>) {
  const child = spawn(image.entrypoint[0]!, [...image.entrypoint.slice(1), ...args], {
    cwd: image.cwd,
    env: { ...shellEnv(), ...image.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => output, get exitCode() { return child.exitCode; } };
}

/** docker-compose durations as resolved: `15s`, `1m30s`. */
function parseSeconds(duration: string): number {
  let seconds = 0;
  for (const [, n, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    seconds += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as 'ms' | 's' | 'm' | 'h'];
  }
  return seconds;
}
