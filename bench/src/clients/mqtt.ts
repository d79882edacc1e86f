/**
 * The smallest MQTT 3.1.1 client that can hold a persistent session over
 * RabbitMQ's Web-MQTT (MQTT packets in WebSocket binary messages, subprotocol
 * `mqtt`): CONNECT (clean_session=false, a fixed client id), SUBSCRIBE and
 * UNSUBSCRIBE at QoS 1 waiting for their acks, PUBLISH bodies handed over as
 * raw bytes and PUBACKed at once (one WebSocket message per incoming
 * WebSocket message), DISCONNECT. The codec is pure (exported for tests).
 */
import WebSocket from 'ws';

export const PacketType = {
  Connect: 1,
  Connack: 2,
  Publish: 3,
  Puback: 4,
  Subscribe: 8,
  Suback: 9,
  Unsubscribe: 10,
  Unsuback: 11,
  Pingreq: 12,
  Pingresp: 13,
  Disconnect: 14,
} as const;

/** One packet as cut out of the stream: `flags` the low nibble of the first byte, `body` the bytes after the remaining length. */
export interface RawPacket {
  type: number;
  flags: number;
  data: Buffer;
  bodyStart: number;
  bodyEnd: number;
}

function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function utf8(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte, ...remainingLength(body.length)]), body]);
}

export function encodeConnect(o: { clientId: string; cleanSession: boolean; keepAliveSeconds: number; username?: string; password?: string }): Buffer {
  let flags = o.cleanSession ? 0x02 : 0;
  if (o.username !== undefined) flags |= 0x80;
  if (o.password !== undefined) flags |= 0x40;
  const head = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, flags, o.keepAliveSeconds >> 8, o.keepAliveSeconds & 0xff]);
  const parts = [head, utf8(o.clientId)];
  if (o.username !== undefined) parts.push(utf8(o.username));
  if (o.password !== undefined) parts.push(utf8(o.password));
  return packet(PacketType.Connect << 4, Buffer.concat(parts));
}

export function encodeSubscribe(packetId: number, filter: string, qos: 0 | 1): Buffer {
  return packet((PacketType.Subscribe << 4) | 0x02, Buffer.concat([Buffer.from([packetId >> 8, packetId & 0xff]), utf8(filter), Buffer.from([qos])]));
}

export function encodeUnsubscribe(packetId: number, filter: string): Buffer {
  return packet((PacketType.Unsubscribe << 4) | 0x02, Buffer.concat([Buffer.from([packetId >> 8, packetId & 0xff]), utf8(filter)]));
}

export function encodePuback(packetId: number): Buffer {
  return Buffer.from([PacketType.Puback << 4, 2, packetId >> 8, packetId & 0xff]);
}

export const DISCONNECT = Buffer.from([PacketType.Disconnect << 4, 0]);

/** What a PUBLISH carries: its QoS, packet id (QoS > 0), topic and where the payload is. */
export function decodePublish(p: RawPacket): { qos: number; dup: boolean; packetId: number; topic: string; payloadStart: number } {
  const qos = (p.flags >> 1) & 3;
  const topicLength = p.data.readUInt16BE(p.bodyStart);
  const topicEnd = p.bodyStart + 2 + topicLength;
  const topic = p.data.toString('utf8', p.bodyStart + 2, topicEnd);
  const packetId = qos > 0 ? p.data.readUInt16BE(topicEnd) : 0;
  return { qos, dup: (p.flags & 0x08) !== 0, packetId, topic, payloadStart: qos > 0 ? topicEnd + 2 : topicEnd };
}

/**
 * Cuts a byte stream into packets, whatever the WebSocket framing: a message
 * may hold several packets, or part of one (kept for the next `push`).
 */
export class PacketReader {
  private rest: Buffer | null = null;

  push(chunk: Buffer, onPacket: (p: RawPacket) => void): void {
    const data = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = null;
    let at = 0;
    while (at < data.length) {
      if (data.length - at < 2) break;
      let length = 0;
      let multiplier = 1;
      let i = at + 1;
      let complete = false;
      for (; i < data.length && i < at + 5; i++) {
        length += (data[i]! & 0x7f) * multiplier;
        multiplier *= 128;
        if ((data[i]! & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
      }
      if (!complete) {
        if (i >= at + 5) throw new Error('MQTT: malformed remaining length');
        break;
      }
      if (i + length > data.length) break;
      onPacket({ type: data[at]! >> 4, flags: data[at]! & 0x0f, data, bodyStart: i, bodyEnd: i + length });
      at = i + length;
    }
    if (at < data.length) this.rest = Buffer.from(data.subarray(at));
  }
}

/** AMQP topic pattern (`a.*.#`) → MQTT topic filter (`a/+/#`): RabbitMQ maps `/` in MQTT topics to `.` in routing keys. */
export function mqttFilter(amqpPattern: string): string {
  return amqpPattern
    .split('.')
    .map((w) => (w === '*' ? '+' : w))
    .join('/');
}

export interface MqttOptions {
  url: string;
  clientId: string;
  username: string;
  password: string;
  cleanSession: boolean;
  /** Called with the payload bytes of every PUBLISH (start inclusive, end exclusive). */
  onMessage: (data: Buffer, payloadStart: number, payloadEnd: number, dup: boolean) => void;
  onClose: () => void;
}

type Waiter = { resolve: (p: RawPacket) => void; reject: (err: Error) => void };

export class MqttClient {
  private ws!: WebSocket;
  private packetCounter = 0;
  private readonly reader = new PacketReader();
  private readonly waiting = new Map<number, Waiter>();
  private connected: Waiter | null = null;
  private closedByUs = false;
  /** CONNACK's session-present flag. */
  sessionPresent = false;
  /** PUBLISH packets received with QoS 1 (each PUBACKed). */
  acked = 0;

  constructor(private readonly options: MqttOptions) {}

  connect(timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error('MQTT connect timed out'));
        this.ws.terminate();
      }, timeoutMs);
      this.connected = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      this.ws = new WebSocket(this.options.url, ['mqtt'], { perMessageDeflate: false });
      this.ws.on('open', () =>
        this.ws.send(encodeConnect({ clientId: this.options.clientId, cleanSession: this.options.cleanSession, keepAliveSeconds: 0, username: this.options.username, password: this.options.password })),
      );
      this.ws.on('message', (data: Buffer) => this.onData(data));
      this.ws.on('error', (err) => this.failAll(err));
      this.ws.on('close', () => {
        this.failAll(new Error('MQTT connection closed'));
        if (!this.closedByUs) this.options.onClose();
      });
    });
  }

  /** Resolves once the broker has granted the subscription (SUBACK with a QoS, not 0x80). */
  async subscribe(filter: string, qos: 0 | 1 = 1): Promise<string> {
    const id = this.nextPacketId();
    const suback = await this.request(id, encodeSubscribe(id, filter, qos));
    const code = suback.data[suback.bodyStart + 2];
    if (code === undefined || code === 0x80) throw new Error(`MQTT SUBACK refused ${filter} (0x${(code ?? 0).toString(16)})`);
    return filter;
  }

  async unsubscribe(filter: string): Promise<void> {
    const id = this.nextPacketId();
    await this.request(id, encodeUnsubscribe(id, filter));
  }

  close(): Promise<void> {
    this.closedByUs = true;
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => (this.ws.terminate(), resolve()), 3000);
      this.ws.once('close', () => (clearTimeout(timer), resolve()));
      if (this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(DISCONNECT);
        this.ws.close();
      } else this.ws.terminate();
    });
  }

  private nextPacketId(): number {
    this.packetCounter = (this.packetCounter % 65535) + 1;
    return this.packetCounter;
  }

  private request(packetId: number, bytes: Buffer): Promise<RawPacket> {
    return new Promise((resolve, reject) => {
      this.waiting.set(packetId, { resolve, reject });
      this.ws.send(bytes);
    });
  }

  private onData(data: Buffer): void {
    const pubacks: Buffer[] = [];
    try {
      this.reader.push(data, (p) => {
        if (p.type === PacketType.Publish) {
          const pub = decodePublish(p);
          if (pub.qos > 0) {
            pubacks.push(encodePuback(pub.packetId));
            this.acked++;
          }
          this.options.onMessage(p.data, pub.payloadStart, p.bodyEnd, pub.dup);
        } else if (p.type === PacketType.Connack) {
          const code = p.data[p.bodyStart + 1];
          this.sessionPresent = (p.data[p.bodyStart]! & 1) === 1;
          if (code === 0) this.connected?.resolve(p);
          else this.connected?.reject(new Error(`MQTT CONNACK refused (return code ${code})`));
          this.connected = null;
        } else if (p.type === PacketType.Suback || p.type === PacketType.Unsuback) {
          const id = p.data.readUInt16BE(p.bodyStart);
          const waiter = this.waiting.get(id);
          this.waiting.delete(id);
          waiter?.resolve(p);
        }
      });
    } catch (err) {
      this.failAll(err as Error);
      this.ws.terminate();
      return;
    }
    if (pubacks.length && this.ws.readyState === WebSocket.OPEN) this.ws.send(pubacks.length === 1 ? pubacks[0]! : Buffer.concat(pubacks));
  }

  private failAll(err: Error): void {
    this.connected?.reject(err);
    this.connected = null;
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
  }
}
