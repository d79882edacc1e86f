/**
 * docker-compose.yml stays a valid way to run RabbitMQ, the gateway and the
 * demo: validated by docker-compose itself (Debian's docker-compose 1.29, no
 * Docker daemon needed), with every service health-checked.
 */
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const COMPOSE_FILE = fileURLToPath(new URL('../docker-compose.yml', import.meta.url));
/** The gateway refuses to start without a secret, and the file says so with `${TOPICGATE_JWT_SECRET:?…}`. */
const ENV = { ...process.env, TOPICGATE_JWT_SECRET: 'e2e-not-a-real-secret' };

async function compose(args: string[], env: NodeJS.ProcessEnv = ENV) {
  return run('docker-compose', ['--file', COMPOSE_FILE, ...args], { env, maxBuffer: 16 * 1024 * 1024 });
}

interface ComposeService {
  image?: string;
  build?: unknown;
  healthcheck?: { test?: string[] | string; interval?: string; retries?: number };
  depends_on?: Record<string, { condition?: string }>;
}

/**
 * `docker-compose config` prints the resolved file as YAML. docker-compose 1.x
 * is a Python program built on PyYAML: its own interpreter turns that into JSON.
 */
async function resolvedServices(): Promise<Record<string, ComposeService>> {
  const { stdout: yaml } = await compose(['config']);
  const toJson = run(await composePython(), ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)']);
  toJson.child.stdin!.end(yaml);
  return (JSON.parse((await toJson).stdout) as { services: Record<string, ComposeService> }).services;
}

/** The interpreter on docker-compose's #! line (Debian: /usr/bin/python3, which has PyYAML), else python3. */
async function composePython(): Promise<string> {
  const { stdout } = await run('sh', ['-c', 'command -v docker-compose']);
  const file = await open(stdout.trim());
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(200), 0, 200, 0);
    return /^#!\s*(\S*python\S*)/.exec(buffer.toString('latin1', 0, bytesRead))?.[1] ?? 'python3';
  } finally {
    await file.close();
  }
}

beforeAll(async () => {
  try {
    await run('docker-compose', ['version']);
  } catch (err) {
    throw new Error(
      `docker-compose is not installed (${(err as Error).message.split('\n')[0]}). ` +
        "This test validates docker-compose.yml with it: install Debian's docker-compose (`apt-get install docker-compose`); CI installs it.",
    );
  }
});

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
