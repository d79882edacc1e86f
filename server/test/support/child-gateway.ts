/**
 * `topicgate serve` as a separate process, for what only a real process can
 * show: SIGKILL, signals, exit codes.
 */
import { queuePrefixFor } from '../../src/mq/queue-names.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { TEST_AMQP_URL, uniqueName } from './broker.js';
import { eventually } from './eventually.js';

export const CLI_PATH = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface ChildGateway {
  process: ChildProcess;
  url: string;
  gatewayId: string;
  exchange: string;
  queuePrefix: string;
  connectionName: string;
  /** Everything the process wrote to stderr (its JSON logs). */
  stderr: () => string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
}

/** A TCP port nothing listens on right now, on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function spawnGateway(env: Record<string, string> = {}): Promise<ChildGateway> {
  const port = await freePort();
  const gatewayId = uniqueName('child');
  const exchange = uniqueName('topicgate-test');
  const child = spawn(process.execPath, [CLI_PATH, 'serve'], {
    env: {
      ...process.env,
      TOPICGATE_AMQP_URL: TEST_AMQP_URL,
      TOPICGATE_PORT: String(port),
      TOPICGATE_HOST: '127.0.0.1',
      TOPICGATE_GATEWAY_ID: gatewayId,
      TOPICGATE_EXCHANGE: exchange,
      TOPICGATE_INSECURE_NO_AUTH: '1',
      TOPICGATE_METRICS_PORT: '0',
      TOPICGATE_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let failed: string | null = null;
  void exited.then((code) => (failed = `topicgate serve exited (${code}) before it was ready:\n${stderr}`));
  const url = `http://127.0.0.1:${port}`;
  const ready = async (): Promise<boolean> => {
    if (failed) throw new Error(failed);
    return fetch(`${url}/readyz`).then((r) => r.ok, () => false);
  };
  await eventually(ready, 'topicgate serve to become ready', { timeoutMs: 20_000, intervalMs: 50 }).catch((err: Error) => {
    throw failed === null ? new Error(`${err.message}:\n${stderr}`) : err;
  });
  return {
    process: child,
    url,
    gatewayId,
    exchange,
    queuePrefix: queuePrefixFor(gatewayId),
    connectionName: `topicgate ${gatewayId}`,
    stderr: () => stderr,
    exited,
  };
}
