/**
 * Bodies from publishers topicgate does not control (docs/protocol.md §11),
 * published to RabbitMQ with amqplib and their own AMQP properties: text in an
 * encoding they declare arrives as the same text, never corrupted; a body that
 * cannot be relayed is dropped with one warning per message — not one per
 * subscription it reached — that does not quote it, and is counted.
 */
import { gzipSync } from 'node:zlib';
import type { Options } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { publishRaw, publishRawMany, requireBroker } from '../support/broker.js';
import { connectClient, startTestGateway, stopTestGateways, type TestClient, type TestGateway } from '../support/gateway.js';
import { recordingLog, WARN, type LogRecord } from '../support/recording-log.js';

let gateway: TestGateway;
let records: LogRecord[];
const clients: TestClient[] = [];

beforeAll(async () => {
  await requireBroker();
  const recording = recordingLog();
  records = recording.records;
  gateway = await startTestGateway({}, { log: recording.log });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(stopTestGateways);

interface Sub {
  client: TestClient;
  id: string;
}

/** `sockets` clients with `perSocket` subscriptions to `pattern` each. */
async function subscribers(sockets: number, perSocket: number, pattern: string): Promise<Sub[]> {
  const subs: Sub[] = [];
  for (let s = 0; s < sockets; s++) {
    const client = await connectClient(gateway.url);
    clients.push(client);
    for (let i = 0; i < perSocket; i++) subs.push({ client, id: await client.mustSubscribe(pattern) });
  }
  return subs;
}

/**
 * Publishes a good message after whatever was published before and waits
 * until every subscription has it: each queue delivers in order, so by then
 * every copy of the earlier messages has been through the gateway.
 */
async function sentinel(subs: readonly Sub[], key: string): Promise<void> {
  const marker = `${key}#${Math.random()}`;
  await gateway.mq.produce(key, { sentinel: marker });
  await Promise.all(subs.map(({ client, id }) => client.messages.waitFor((m) => m.id === id && m.body.sentinel === marker)));
}

function drops(key?: string): LogRecord[] {
  return records.filter((r) => r.level === WARN && r.msg.startsWith('dropped a message') && (key === undefined || r.key === key));
}

async function droppedMetric(): Promise<Record<string, number>> {
  const text = await (await fetch(gateway.metricsUrl!)).text();
  return Object.fromEntries([...text.matchAll(/^topicgate_dropped_messages_total\{reason="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).filter(([reason, n]) => n !== (before[reason] ?? 0)).map(([reason, n]) => [reason, n - (before[reason] ?? 0)]));
}

describe('a body that cannot be relayed', () => {
  it('reaching 12 subscriptions on 3 sockets is logged once per message, with size, content type and key but not its content, and counted once', async () => {
    const subs = await subscribers(3, 4, 'bad1.#');
    const before = await droppedMetric();
    const notJson = 'SECRET-PAYLOAD this is not json';
    const array = '[1, "SECRET-PAYLOAD"]';
    await publishRaw(gateway.exchange, 'bad1.text', notJson, { contentType: 'text/plain' });
    await publishRaw(gateway.exchange, 'bad1.array', array, { contentType: 'application/json' });
    await sentinel(subs, 'bad1.sentinel');

    // Dropped bodies take no seq: the sentinel is every subscription's first delivery.
    for (const { client, id } of subs) expect(client.deliveriesFor(id).map((m) => [m.key, m.seq])).toEqual([['bad1.sentinel', 1]]);
    expect(drops('bad1.text')).toEqual([
      expect.objectContaining({ level: WARN, key: 'bad1.text', bytes: Buffer.byteLength(notJson), contentType: 'text/plain', reason: 'not_json' }),
    ]);
    expect(drops('bad1.array')).toEqual([
      expect.objectContaining({ level: WARN, key: 'bad1.array', bytes: Buffer.byteLength(array), contentType: 'application/json', reason: 'not_an_object' }),
    ]);
    for (const record of drops()) {
      // What the publisher must do is in the line itself.
      expect(record.msg).toMatch(/its publisher must send a JSON object/);
    }
    expect(JSON.stringify(records)).not.toContain('SECRET-PAYLOAD');
    expect(delta(before, await droppedMetric())).toEqual({ not_json: 1, not_an_object: 1 });
  });

  it('a burst of identical bad messages between good ones, to 30 subscriptions: exactly one line and one count per message', async () => {
    const subs = await subscribers(3, 10, 'burst.#');
    const before = await droppedMetric();
    const burst = Array.from({ length: 20 }, (_, n) => [
      { key: 'burst.bad', content: 'nope' },
      { key: 'burst.good', content: JSON.stringify({ n }) },
    ]).flat();
    await publishRawMany(gateway.exchange, burst);
    await sentinel(subs, 'burst.sentinel');

    for (const { client, id } of subs) {
      expect(client.deliveriesFor(id).filter((m) => m.key === 'burst.good').map((m) => [m.body.n, m.seq])).toEqual(Array.from({ length: 20 }, (_, n) => [n, n + 1]));
    }
    expect(drops('burst.bad')).toHaveLength(20);
    expect(delta(before, await droppedMetric())).toEqual({ not_json: 20 });
  });
});

const JSON_TEXT = '{"name":"café","emoji":"🎉","euro":"€"}';
const LATIN1 = Buffer.from('{"name":"café"}', 'latin1');
const utf16be = (text: string) => Buffer.from(text, 'utf16le').swap16();

type Expectation = { body: Record<string, string> } | { dropped: string };
const encodingCases: Array<[string, Buffer, Options.Publish, Expectation]> = [
  ['UTF-8 without content_encoding', Buffer.from(JSON_TEXT), {}, { body: JSON.parse(JSON_TEXT) }],
  ['UTF-8 declared utf-8', Buffer.from(JSON_TEXT), { contentEncoding: 'utf-8' }, { body: JSON.parse(JSON_TEXT) }],
  ['UTF-8 declared UTF8', Buffer.from(JSON_TEXT), { contentEncoding: 'UTF8' }, { body: JSON.parse(JSON_TEXT) }],
  ['UTF-8 with a byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON_TEXT)]), {}, { body: JSON.parse(JSON_TEXT) }],
  ['UTF-8 declared binary (kombu, for bytes)', Buffer.from(JSON_TEXT), { contentEncoding: 'binary' }, { body: JSON.parse(JSON_TEXT) }],
  ['Latin-1 declared iso-8859-1', LATIN1, { contentEncoding: 'iso-8859-1' }, { body: { name: 'café' } }],
  ['Latin-1 declared latin1', LATIN1, { contentEncoding: 'latin1' }, { body: { name: 'café' } }],
  ['Latin-1 declared ISO_8859-1', LATIN1, { contentEncoding: 'ISO_8859-1' }, { body: { name: 'café' } }],
  ['windows-1252 (€ is 0x80)', Buffer.from([...Buffer.from('{"euro":"'), 0x80, ...Buffer.from('"}')]), { contentEncoding: 'windows-1252' }, { body: { euro: '€' } }],
  ['ASCII declared us-ascii', Buffer.from('{"name":"cafe"}'), { contentEncoding: 'us-ascii' }, { body: { name: 'cafe' } }],
  ['UTF-16LE declared utf-16le', Buffer.from(JSON_TEXT, 'utf16le'), { contentEncoding: 'utf-16le' }, { body: JSON.parse(JSON_TEXT) }],
  ['UTF-16BE declared utf-16be', utf16be(JSON_TEXT), { contentEncoding: 'utf-16be' }, { body: JSON.parse(JSON_TEXT) }],
  ['UTF-16 with a little-endian BOM (Python\'s "utf-16")', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(JSON_TEXT, 'utf16le')]), { contentEncoding: 'utf-16' }, { body: JSON.parse(JSON_TEXT) }],
  ['Latin-1 bytes without content_encoding (invalid UTF-8)', LATIN1, {}, { dropped: 'invalid_text' }],
  ['Latin-1 bytes declared utf-8', LATIN1, { contentEncoding: 'utf-8' }, { dropped: 'invalid_text' }],
  ['a lone UTF-8 continuation byte', Buffer.from([...Buffer.from('{"a":"'), 0x80, ...Buffer.from('"}')]), {}, { dropped: 'invalid_text' }],
  ['non-ASCII declared us-ascii', LATIN1, { contentEncoding: 'us-ascii' }, { dropped: 'invalid_text' }],
  ['a byte windows-1252 leaves undefined (0x81)', Buffer.from([...Buffer.from('{"a":"'), 0x81, ...Buffer.from('"}')]), { contentEncoding: 'windows-1252' }, { dropped: 'invalid_text' }],
  ['an odd number of bytes declared utf-16le', Buffer.concat([Buffer.from('{}', 'utf16le'), Buffer.from([0x20])]), { contentEncoding: 'utf-16le' }, { dropped: 'invalid_text' }],
  ['gzip', gzipSync(JSON_TEXT), { contentEncoding: 'gzip' }, { dropped: 'unsupported_encoding' }],
  ['deflate', gzipSync(JSON_TEXT), { contentEncoding: 'deflate' }, { dropped: 'unsupported_encoding' }],
  ['kombu compression (utf-8 declared, compression header)', gzipSync(JSON_TEXT), { contentEncoding: 'utf-8', headers: { compression: 'application/x-gzip' } }, { dropped: 'unsupported_encoding' }],
  ['an unknown encoding', Buffer.from(JSON_TEXT), { contentEncoding: 'klingon' }, { dropped: 'unsupported_encoding' }],
];

describe('content_encoding: decoded when topicgate knows it, dropped with a reason otherwise, never silently corrupted', () => {
  let subs: Sub[];
  let n = 0;
  beforeAll(async () => {
    const client = await connectClient(gateway.url);
    subs = [{ client, id: await client.mustSubscribe('enc.#') }];
  });
  afterAll(() => subs[0]!.client.close());

  it.each(encodingCases)('%s', async (_, content, properties, expected) => {
    const key = `enc.${++n}`;
    const before = await droppedMetric();
    await publishRaw(gateway.exchange, key, content, properties);
    await sentinel(subs, `enc.${n}.sentinel`);
    const { client, id } = subs[0]!;
    const delivered = client.deliveriesFor(id).filter((m) => m.key === key);
    if ('body' in expected) {
      expect(delivered.map((m) => m.body)).toEqual([expected.body]);
      expect(drops(key)).toEqual([]);
    } else {
      expect(delivered.map((m) => m.body), 'nothing is relayed, least of all a corrupted text').toEqual([]);
      expect(drops(key)).toEqual([
        expect.objectContaining({ key, reason: expected.dropped, bytes: content.length, ...(properties.contentEncoding && { contentEncoding: properties.contentEncoding }) }),
      ]);
      expect(delta(before, await droppedMetric())).toEqual({ [expected.dropped]: 1 });
    }
  });

  it('the same bytes under two encodings, one after the other, to 3 subscriptions: each decoded as declared (the decode cache keys on the encoding too)', async () => {
    const client = await connectClient(gateway.url);
    clients.push(client);
    const ids = [await client.mustSubscribe('same.#'), await client.mustSubscribe('same.#'), await client.mustSubscribe('same.#')];
    const bytes = Buffer.from('{"s":"é"}'); // C3 A9: "é" in UTF-8, "Ã©" in Latin-1
    await publishRawMany(gateway.exchange, [
      { key: 'same.1', content: bytes, properties: { contentEncoding: 'utf-8' } },
      { key: 'same.2', content: bytes, properties: { contentEncoding: 'iso-8859-1' } },
      { key: 'same.3', content: bytes, properties: { contentEncoding: 'utf-8' } },
    ]);
    await client.messages.waitForCount(9);
    for (const id of ids) {
      expect(client.deliveriesFor(id).map((m) => [m.key, m.body.s])).toEqual([
        ['same.1', 'é'],
        ['same.2', 'Ã©'],
        ['same.3', 'é'],
      ]);
    }
  });
});
