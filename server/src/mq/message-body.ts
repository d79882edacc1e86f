/**
 * Turning an AMQP message's bytes into the JSON text the gateway relays
 * (docs/protocol.md §11). Publishers the gateway does not control declare the
 * text's encoding in `content_encoding` (kombu: `utf-8`; others: `latin1`,
 * `us-ascii`, `utf-16le`…), or use it for compression (`gzip`). Text is decoded
 * as declared — UTF-8 when nothing is declared — and strictly: bytes that are
 * not valid in that encoding drop the message with a reason, they never turn
 * into U+FFFD. Nothing here quotes the body: reasons are safe to log.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { isJsonObject, type JsonObject } from '@topicgate/shared';

/** Why a message was dropped instead of relayed; the label of `topicgate_dropped_messages_total`. */
export const BodyDropReason = {
  /** The text is not JSON (empty, truncated, not JSON at all). */
  NotJson: 'not_json',
  /** JSON, but not an object (an array, a string, a number, `null`). */
  NotAnObject: 'not_an_object',
  /** The bytes are not valid text in the declared encoding, or in UTF-8 when none is declared. */
  InvalidText: 'invalid_text',
  /** `content_encoding` is a compression, or an encoding the gateway does not know. */
  UnsupportedEncoding: 'unsupported_encoding',
} as const;
export type BodyDropReason = (typeof BodyDropReason)[keyof typeof BodyDropReason];

export interface RelayableBody {
  ok: true;
  /** The body's JSON text, decoded from its encoding and otherwise as published. */
  json: string;
  body: JsonObject;
}

export interface DroppedBody {
  ok: false;
  reason: BodyDropReason;
  /** Why, for the log: names encodings and positions, never the body's content. */
  detail: string;
}

/** The AMQP properties that decide how a body is read. */
export interface BodyProperties {
  contentEncoding?: unknown;
  headers?: { [name: string]: unknown; compression?: unknown } | null;
}

/** Encodings topicgate decodes, under the names publishers use (lower case, `_` as `-`). */
type Decoder = (content: Buffer) => string | null;
const utf8: Decoder = (content) => {
  if (!isUtf8(content)) return null;
  // A byte order mark is no part of JSON text (RFC 8259 §8.1 lets parsers ignore it).
  if (content[0] === 0xef && content[1] === 0xbb && content[2] === 0xbf) return content.toString('utf8', 3);
  return content.toString('utf8');
};
const latin1: Decoder = (content) => content.toString('latin1'); // every byte is a character (ISO-8859-1, not windows-1252)
const ascii: Decoder = (content) => (isAscii(content) ? content.toString('latin1') : null);
const textDecoder = (label: string): Decoder => {
  const decoder = new TextDecoder(label, { fatal: true });
  return (content) => {
    try {
      return decoder.decode(content);
    } catch {
      return null;
    }
  };
};
/**
 * windows-1252 is Latin-1 but for 0x80–0x9F (€, curly quotes, …). Written
 * out because Node's TextDecoder decodes that label as Latin-1. The five
 * bytes it leaves undefined are invalid, as in Python's cp1252 codec.
 */
const CP1252_80_9F = '\u20ac\u0000\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u0000\u017d\u0000\u0000\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u0000\u017e\u0178';
const cp1252: Decoder = (content) => {
  const text = content.toString('latin1');
  if (!/[\x80-\x9f]/.test(text)) return text;
  let bad = false;
  const mapped = text.replace(/[\x80-\x9f]/g, (c) => {
    const m = CP1252_80_9F[c.charCodeAt(0) - 0x80]!;
    if (m === '\u0000') bad = true;
    return m;
  });
  return bad ? null : mapped;
};
const utf16le = textDecoder('utf-16le');
const utf16be = textDecoder('utf-16be');
/** `utf-16` says nothing of byte order: the BOM does, else big-endian (RFC 2781 §4.3). */
const utf16: Decoder = (content) => (content[0] === 0xff && content[1] === 0xfe ? utf16le(content) : utf16be(content));

const DECODERS = new Map<string, { name: string; decode: Decoder }>();
function known(name: string, decode: Decoder, ...aliases: string[]): void {
  for (const alias of [name, ...aliases]) DECODERS.set(alias, { name, decode });
}
// `binary` is what kombu declares for bytes it did not encode itself; `identity` is "not transformed". JSON text is UTF-8 (RFC 8259 §8.1).
known('utf-8', utf8, 'utf8', 'binary', 'identity');
known('iso-8859-1', latin1, 'latin1', 'latin-1', 'iso8859-1', 'l1');
known('us-ascii', ascii, 'ascii');
known('utf-16le', utf16le, 'utf16le', 'utf-16-le');
known('utf-16be', utf16be, 'utf16be', 'utf-16-be');
known('utf-16', utf16, 'utf16');
known('windows-1252', cp1252, 'cp1252');

/** Names that mean a compressed body, not a text encoding. */
const COMPRESSIONS = new Set(['gzip', 'x-gzip', 'deflate', 'zlib', 'br', 'compress', 'x-compress', 'zstd', 'bzip2', 'x-bzip2', 'lzma', 'xz', 'snappy', 'lz4']);

/** The encodings accepted, for messages. */
export const KNOWN_ENCODINGS = 'utf-8 (the default), iso-8859-1/latin1, us-ascii, windows-1252, utf-16le, utf-16be, utf-16';

const DEFAULT = DECODERS.get('utf-8')!;

/** Decodes and validates one message body. Never throws. */
export function decodeMessageBody(content: Buffer, properties: BodyProperties): RelayableBody | DroppedBody {
  const compression = properties.headers?.compression;
  if (compression !== undefined && compression !== null) {
    // kombu's `compression=` keeps content_encoding (utf-8) and names the compression in this header.
    return drop(BodyDropReason.UnsupportedEncoding, `the body is compressed (header "compression": ${short(compression)}); topicgate relays uncompressed JSON only`);
  }
  const declared = properties.contentEncoding;
  let encoding = DEFAULT;
  if (declared !== undefined && declared !== null && declared !== '') {
    const label = String(declared).trim().toLowerCase().replace(/_/g, '-');
    const found = DECODERS.get(label);
    if (!found) {
      if (COMPRESSIONS.has(label)) {
        return drop(BodyDropReason.UnsupportedEncoding, `content_encoding ${short(declared)} is a compression; topicgate relays uncompressed JSON only`);
      }
      return drop(BodyDropReason.UnsupportedEncoding, `content_encoding ${short(declared)} is not an encoding topicgate decodes (${KNOWN_ENCODINGS})`);
    }
    encoding = found;
  }
  const json = encoding.decode(content);
  if (json === null) {
    const what = declared === undefined || declared === null || declared === '' ? 'UTF-8 (no content_encoding: UTF-8 is assumed)' : `${encoding.name}, as its content_encoding ${short(declared)} declares`;
    return drop(BodyDropReason.InvalidText, `the body is not valid ${what}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    // V8's message quotes the text ("Unexpected token 'h', "hello" is not…"): keep only the position.
    const position = /at position (\d+)/.exec((err as Error).message)?.[1];
    return drop(BodyDropReason.NotJson, json.trim() === '' ? 'the body is empty' : `the body is not valid JSON${position === undefined ? '' : ` (error at character ${position})`}`);
  }
  if (!isJsonObject(value)) return drop(BodyDropReason.NotAnObject, `the body is JSON but ${kindOf(value)}, not an object`);
  return { ok: true, json, body: value };
}

function drop(reason: BodyDropReason, detail: string): DroppedBody {
  return { ok: false, reason, detail };
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'number' ? 'a number' : typeof value === 'boolean' ? 'a boolean' : 'a string';
}

/** A publisher-chosen property value, quoted and bounded (AMQP short strings run to 255 bytes). */
function short(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/**
 * Which dropped messages were already reported, so that one message reaching
 * N subscriptions is logged and counted once, not N times.
 *
 * AMQP gives the copies of one message no common id. Copies carry the same
 * routing key, properties and bytes (the fingerprint), but so do repeats of
 * one message by its publisher. What tells them apart: each queue receives
 * every message routed to it once, in order, so the k-th delivery of a
 * fingerprint to a queue is the k-th message with it that the queue got; and
 * the copies of one message arrive within moments of each other. So, per
 * fingerprint: the times at which messages 1, 2, … were first seen, and how
 * many each queue has had. A delivery is a copy of message k if that message
 * was first seen less than `copyWindowMs` ago; otherwise it is a new message.
 * A queue new to the fingerprint starts at the oldest message still within
 * the window. This holds however the copies for different queues interleave,
 * and across subscriptions coming and going.
 */
export class DropReports {
  private readonly entries = new Map<string, { reported: number; times: number[]; seen: Map<string, number> }>();

  constructor(
    private readonly maxEntries = 256,
    private readonly copyWindowMs = 10_000,
    /** First-seen times kept per fingerprint: bursts of identical messages longer than this count as new ones. */
    private readonly maxTimes = 1024,
  ) {}

  /** Records one dropped delivery to `queue`; true if it is the first copy seen of a message. */
  firstCopy(fingerprint: string, queue: string, now = Date.now()): boolean {
    const entry = this.entries.get(fingerprint) ?? { reported: 0, times: [], seen: new Map<string, number>() };
    // Most recently used last, so that pruning meets the stalest first.
    this.entries.delete(fingerprint);
    this.prune(now);
    this.entries.set(fingerprint, entry);
    const { times } = entry;
    const first = entry.reported - times.length + 1; // the message times[0] is about
    let had = entry.seen.get(queue);
    if (had === undefined) {
      const oldest = times.findIndex((t) => now - t <= this.copyWindowMs);
      had = oldest < 0 ? entry.reported : first + oldest - 1;
    }
    const k = had + 1;
    const at = k >= first && k <= entry.reported ? times[k - first] : undefined;
    if (at !== undefined && now - at <= this.copyWindowMs) {
      entry.seen.set(queue, k);
      return false;
    }
    entry.reported++;
    times.push(now);
    if (times.length > this.maxTimes) times.shift();
    entry.seen.set(queue, entry.reported);
    return true;
  }

  /**
   * An entry whose last message is older than the window decides nothing any
   * more (a fresh one would decide the same); past `maxEntries - 1`, the
   * least recently used go.
   */
  private prune(now: number): void {
    for (const [key, entry] of this.entries) {
      const last = entry.times[entry.times.length - 1] ?? -Infinity;
      if (this.entries.size < this.maxEntries && now - last <= this.copyWindowMs) break; // the rest were used more recently
      this.entries.delete(key);
    }
  }
}

/** What identifies the copies of one message: routing key, the properties that decide decoding, and the bytes. */
export function fingerprint(key: string, content: Buffer, properties: BodyProperties & { contentType?: unknown }): string {
  return createHash('sha256')
    .update(JSON.stringify([key, properties.contentType ?? null, properties.contentEncoding ?? null, properties.headers?.compression ?? null]))
    .update(content)
    .digest('base64');
}
