/** The MQTT 3.1.1 codec behind the Web-MQTT receiver kind. */
import { describe, expect, it } from 'vitest';
import { PacketReader, PacketType, decodePublish, encodeConnect, encodePuback, encodeSubscribe, encodeUnsubscribe, mqttFilter, type RawPacket } from '../src/clients/mqtt.js';

/** A PUBLISH as the broker would send it. */
function publish(topic: string, payload: Buffer, qos: 0 | 1, packetId = 0): Buffer {
  const t = Buffer.from(topic);
  const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, qos ? Buffer.from([packetId >> 8, packetId & 0xff]) : Buffer.alloc(0), payload]);
  const len: number[] = [];
  let n = body.length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    len.push(b);
  } while (n);
  return Buffer.concat([Buffer.from([0x30 | (qos << 1), ...len]), body]);
}

const collect = (reader: PacketReader, chunk: Buffer) => {
  const out: RawPacket[] = [];
  reader.push(chunk, (p) => out.push({ ...p, data: Buffer.from(p.data) }));
  return out;
};

describe('MQTT codec', () => {
  it('CONNECT: protocol MQTT level 4, clean_session=false with credentials, client id then user then password', () => {
    const bytes = encodeConnect({ clientId: 'c1', cleanSession: false, keepAliveSeconds: 0, username: 'guest', password: 'pw' });
    expect(bytes[0]).toBe(0x10);
    expect(bytes[1]).toBe(bytes.length - 2);
    expect([...bytes.subarray(2, 12)]).toEqual([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0xc0, 0, 0]);
    expect(bytes.subarray(12).toString('latin1')).toBe('\x00\x02c1\x00\x05guest\x00\x02pw');
    expect(encodeConnect({ clientId: 'c', cleanSession: true, keepAliveSeconds: 60 })[9]).toBe(0x02);
  });

  it('SUBSCRIBE / UNSUBSCRIBE carry flags 0b0010, the packet id, the filter and (subscribe) the QoS', () => {
    expect([...encodeSubscribe(258, 'a/#', 1)]).toEqual([0x82, 8, 1, 2, 0, 3, 0x61, 0x2f, 0x23, 1]);
    expect([...encodeUnsubscribe(7, 'a/#')]).toEqual([0xa2, 7, 0, 7, 0, 3, 0x61, 0x2f, 0x23]);
    expect([...encodePuback(0x1234)]).toEqual([0x40, 2, 0x12, 0x34]);
  });

  it('cuts packets out of any framing: several per message, one split across messages, long remaining lengths', () => {
    const big = Buffer.alloc(300, 0x78);
    const a = publish('t/x', Buffer.from('{"n":1}'), 1, 9);
    const b = publish('t/x', big, 1, 10);
    const c = publish('t/y', Buffer.from('{}'), 0);
    const stream = Buffer.concat([a, b, c, Buffer.from([0x90, 3, 0, 1, 1])]);
    const reader = new PacketReader();
    const got = [...collect(reader, stream.subarray(0, a.length + 5)), ...collect(reader, stream.subarray(a.length + 5, a.length + 200)), ...collect(reader, stream.subarray(a.length + 200))];
    expect(got.map((p) => p.type)).toEqual([PacketType.Publish, PacketType.Publish, PacketType.Publish, PacketType.Suback]);
    const first = decodePublish(got[0]!);
    expect(first).toMatchObject({ qos: 1, packetId: 9, topic: 't/x', dup: false });
    expect(got[0]!.data.toString('utf8', first.payloadStart, got[0]!.bodyEnd)).toBe('{"n":1}');
    const second = decodePublish(got[1]!);
    expect(got[1]!.bodyEnd - second.payloadStart).toBe(300);
    const third = decodePublish(got[2]!);
    expect(third).toMatchObject({ qos: 0, packetId: 0, topic: 't/y' });
    expect(got[2]!.data.toString('utf8', third.payloadStart, got[2]!.bodyEnd)).toBe('{}');
  });

  it('byte by byte', () => {
    const whole = Buffer.concat([publish('a', Buffer.from('xyz'), 1, 1), publish('b', Buffer.from('uvw'), 1, 2)]);
    const reader = new PacketReader();
    const got: RawPacket[] = [];
    for (let i = 0; i < whole.length; i++) got.push(...collect(reader, whole.subarray(i, i + 1)));
    expect(got.map((p) => decodePublish(p).packetId)).toEqual([1, 2]);
  });

  it('maps AMQP topic patterns to MQTT filters', () => {
    expect(mqttFilter('topicgate-bench.20261201T000000-abc.fanout.#')).toBe('topicgate-bench/20261201T000000-abc/fanout/#');
    expect(mqttFilter('a.*.b')).toBe('a/+/b');
  });
});
