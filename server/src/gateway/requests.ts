/**
 * Parsing of client event payloads. Clients are untrusted: everything arrives
 * as `unknown` and leaves as a typed request or a protocol error.
 */
import { ErrorCode, MAX_RESUME_FINGERPRINTS, patternError, type ProtocolError, type ReceivedRequest, type ResumeRequest, type SubscribeRequest } from '@topicgate/shared';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

/** A plain object as JSON makes it: not an array, a Buffer (socket.io binary) or any other class instance. */
function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function fail(code: ProtocolError['code'], message: string): { ok: false; error: ProtocolError } {
  return { ok: false, error: { code, message } };
}

/**
 * A payload without a string `pattern` is malformed (`bad_request`); only a
 * string that is not a valid pattern is `invalid_pattern` (docs/protocol.md §4.1).
 */
export function parseSubscribe(payload: unknown): Parsed<SubscribeRequest> {
  const expected = 'subscribe expects an object { pattern: string }';
  if (!isRecord(payload)) return fail(ErrorCode.BadRequest, expected);
  const { pattern, resumable, resume } = payload;
  if (pattern === undefined) return fail(ErrorCode.BadRequest, `${expected}; "pattern" is missing`);
  if (typeof pattern !== 'string') return fail(ErrorCode.BadRequest, `${expected}; "pattern" must be a string, got ${kindOf(pattern)}`);
  const why = patternError(pattern);
  if (why) return fail(ErrorCode.InvalidPattern, why);
  if (resumable !== undefined && typeof resumable !== 'boolean') return fail(ErrorCode.BadRequest, `"resumable" must be a boolean, got ${kindOf(resumable)}`);
  if (resume === undefined) return { ok: true, value: { pattern, ...(resumable !== undefined && { resumable }) } };
  const parsed = parseResume(resume);
  if (typeof parsed === 'string') return fail(ErrorCode.BadRequest, `"resume" must be { claim, seq, settled, pending?, fingerprints } (docs/protocol.md §15.2): ${parsed}`);
  return { ok: true, value: { pattern, resume: parsed, ...(resumable !== undefined && { resumable }) } };
}


/**
 * The largest `subscribe` with a resume of `fingerprints` deliveries: each is
 * at most 16 digits and a comma (53 bits); the rest — the event name, the
 * pattern, the claim, counts — fits in 1 KiB.
 */
export function largestResumeBytes(fingerprints: number): number {
  return 1024 + 17 * fingerprints;
}
const MAX_CLAIM_LENGTH = 255;

function parseResume(resume: unknown): ResumeRequest | string {
  if (!isRecord(resume)) return `got ${kindOf(resume)}`;
  const { claim, seq, settled, pending, fingerprints } = resume;
  if (typeof claim !== 'string' || claim.length > MAX_CLAIM_LENGTH) return `"claim" must be a string of at most ${MAX_CLAIM_LENGTH} characters`;
  if (!isCount(seq)) return '"seq" must be a whole number ≥ 0';
  // seq + 1: nothing received since a renewal (docs/protocol.md §15.3).
  if (!isCount(settled) || settled > seq + 1) return '"settled" must be a whole number from 0 to "seq" + 1';
  if (pending !== undefined && (!isCount(pending) || pending < settled || pending > seq)) return '"pending", when present, must be a whole number from "settled" to "seq"';
  // The delivery a receipt names stays unsettled (docs/protocol.md §15.4): fingerprints start with it.
  if (!Array.isArray(fingerprints) || fingerprints.length !== seq - Math.max(settled - 1, 0) || fingerprints.length > MAX_RESUME_FINGERPRINTS) {
    return `"fingerprints" must hold one number per delivery from "settled" (or 1) up to "seq" (at most ${MAX_RESUME_FINGERPRINTS})`;
  }
  if (!fingerprints.every((f) => typeof f === 'number' && Number.isFinite(f))) return '"fingerprints" must hold numbers';
  return { claim, seq, settled, ...(pending !== undefined && { pending }), fingerprints: fingerprints as number[] };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** `received { seqs: { [id]: seq } }`: at most one entry per subscription a socket may hold. */
export function parseReceived(payload: unknown, maxEntries: number): Parsed<ReceivedRequest> {
  const expected = 'received expects an object { seqs: { [subscription id]: seq } }';
  if (!isRecord(payload) || !isRecord(payload.seqs)) return fail(ErrorCode.BadRequest, expected);
  const entries = Object.entries(payload.seqs);
  if (entries.length > maxEntries) return fail(ErrorCode.BadRequest, `${expected}; at most ${maxEntries} entries`);
  const seqs: Record<string, number> = Object.create(null) as Record<string, number>; // ids are the client's: "__proto__" is just a key
  for (const [id, seq] of entries) {
    if (!isCount(seq)) return fail(ErrorCode.BadRequest, `${expected}; each seq must be a whole number ≥ 0`);
    seqs[id] = seq;
  }
  return { ok: true, value: { seqs } };
}

/** What a JSON value is, without quoting it. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return typeof value === 'number' ? 'a number' : typeof value === 'boolean' ? 'a boolean' : typeof value;
}

export function parseUnsubscribe(payload: unknown): Parsed<{ id: string }> {
  if (!isRecord(payload) || typeof payload.id !== 'string') {
    return fail(ErrorCode.BadRequest, 'unsubscribe expects an object { id: string } with the id from the subscribe ack');
  }
  return { ok: true, value: { id: payload.id } };
}

export function parseRefresh(payload: unknown): Parsed<{ token: string }> {
  if (!isRecord(payload) || typeof payload.token !== 'string') {
    return fail(ErrorCode.BadRequest, 'refresh expects an object { token: string }');
  }
  return { ok: true, value: { token: payload.token } };
}
