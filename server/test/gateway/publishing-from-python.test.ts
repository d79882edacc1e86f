/**
 * The README's "Publishing from other languages" examples, run as they stand
 * there: each Python block is taken out of README.md (so the README cannot
 * drift from what works) and run with python3 against RabbitMQ, while a
 * gateway relays to a socket.io client subscribed to the key. Also from pika:
 * text declared Latin-1 arrives as the same text; a gzip body is dropped and
 * logged once.
 *
 * Needs python3 with pika and kombu (Debian: apt-get install -y python3-pika
 * python3-kombu); fails, never skips, without them. TOPICGATE_TEST_PYTHON
 * names another interpreter.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker, TEST_AMQP_URL } from '../support/broker.js';
import { connectClient, startTestGateway, stopTestGateways, type TestClient, type TestGateway } from '../support/gateway.js';
import { recordingLog, WARN, type LogRecord } from '../support/recording-log.js';

const run = promisify(execFile);
const README = new URL('../../../README.md', import.meta.url);
const SECTION = '## Publishing from other languages';

/** The ```python blocks of the README's section, in order. */
function readmePythonBlocks(): string[] {
  const readme = readFileSync(README, 'utf8');
  const start = readme.indexOf(`\n${SECTION}\n`);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" section`);
  const end = readme.indexOf('\n## ', start + SECTION.length + 2);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^```python\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/**
 * The first interpreter that has pika and kombu. Debian installs them for
 * /usr/bin/python3, which another python3 earlier on PATH (pyenv) cannot import.
 */
async function findPython(): Promise<string> {
  const candidates = process.env.TOPICGATE_TEST_PYTHON ? [process.env.TOPICGATE_TEST_PYTHON] : ['python3', '/usr/bin/python3'];
  const failures: string[] = [];
  for (const python of candidates) {
    try {
      await run(python, ['-c', 'import pika, kombu']);
      return python;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      failures.push(`${python}: ${(e.stderr?.trim().split('\n').pop() ?? e.message).slice(0, 200)}`);
    }
  }
  throw new Error(
    `The README's Python publishing examples need python3 with pika and kombu (${failures.join('; ')}). ` +
      'Install them: apt-get install -y python3-pika python3-kombu (or pip install pika kombu), ' +
      'or point TOPICGATE_TEST_PYTHON at an interpreter that has them.',
  );
}

let python: string;
let gateway: TestGateway;
let records: LogRecord[];
const clients: TestClient[] = [];

beforeAll(async () => {
  await requireBroker();
  python = await findPython();
  const recording = recordingLog();
  records = recording.records;
  gateway = await startTestGateway({}, { log: recording.log });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(stopTestGateways);

/** Runs a Python program with the gateway's broker URL and exchange in its environment, as the README says. */
async function runPython(source: string): Promise<void> {
  try {
    await run(python, ['-c', source], {
      env: { ...process.env, TOPICGATE_AMQP_URL: TEST_AMQP_URL, TOPICGATE_EXCHANGE: gateway.exchange },
      timeout: 30_000,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`the Python program failed: ${e.stderr || e.message}\n--- program:\n${source}`);
  }
}

async function subscribed(pattern: string): Promise<{ client: TestClient; id: string }> {
  const client = await connectClient(gateway.url);
  clients.push(client);
  return { client, id: await client.mustSubscribe(pattern) };
}

/** A message published after `published` is relayed last: once it is in, nothing else from before is on its way. */
async function settle(client: TestClient, id: string, key: string): Promise<void> {
  await gateway.mq.produce(key, { sentinel: true });
  await client.messages.waitFor((m) => m.id === id && m.key === key);
}

describe('README: publishing from Python', () => {
  const blocks = readmePythonBlocks();

  it('has one pika and one kombu example that read the exchange and the broker URL from the environment', () => {
    expect(blocks.map((b) => (b.includes('import pika') ? 'pika' : b.includes('from kombu') ? 'kombu' : 'other'))).toEqual(['pika', 'kombu']);
    for (const block of blocks) {
      expect(block).toContain("os.environ.get('TOPICGATE_EXCHANGE', 'topicgate')");
      expect(block).toContain("os.environ.get('TOPICGATE_AMQP_URL'");
    }
  });

  it.each([
    ['pika', 0],
    ['kombu', 1],
  ])('the %s example publishes a JSON object a subscribed client receives exactly', async (_, index) => {
    const { client, id } = await subscribed('builds.*.finished');
    await runPython(blocks[index]!);
    await settle(client, id, 'builds.sentinel.finished');
    expect(client.deliveriesFor(id)).toEqual([
      { id, key: 'builds.42.finished', body: { id: 42, version: 3, result: 'success', by: 'José' }, seq: 1 },
      { id, key: 'builds.sentinel.finished', body: { sentinel: true }, seq: 2 },
    ]);
  });
});

describe('content encodings from pika', () => {
  it('Latin-1 declared as iso-8859-1 arrives as the same text; gzip is dropped and logged once', async () => {
    const a = await subscribed('py.#');
    const b = await subscribed('py.#');
    await runPython(`
import gzip, json, os
import pika

exchange = os.environ['TOPICGATE_EXCHANGE']
connection = pika.BlockingConnection(pika.URLParameters(os.environ['TOPICGATE_AMQP_URL']))
channel = connection.channel()
channel.confirm_delivery()
text = json.dumps({'name': 'café', 'city': 'Zürich'}, ensure_ascii=False)
channel.basic_publish(exchange, 'py.latin1', text.encode('latin-1'),
                      pika.BasicProperties(content_type='application/json', content_encoding='iso-8859-1'))
channel.basic_publish(exchange, 'py.gzip', gzip.compress(text.encode('utf-8')),
                      pika.BasicProperties(content_type='application/json', content_encoding='gzip'))
connection.close()
`);
    await gateway.mq.produce('py.sentinel', { sentinel: true });
    for (const { client, id } of [a, b]) {
      await client.messages.waitFor((m) => m.id === id && m.key === 'py.sentinel');
      expect(client.deliveriesFor(id).map((m) => [m.key, m.body])).toEqual([
        ['py.latin1', { name: 'café', city: 'Zürich' }],
        ['py.sentinel', { sentinel: true }],
      ]);
    }
    const drops = records.filter((r) => r.level === WARN && r.msg.startsWith('dropped a message'));
    expect(drops).toEqual([expect.objectContaining({ key: 'py.gzip', contentEncoding: 'gzip', reason: 'unsupported_encoding' })]);
  });
});
