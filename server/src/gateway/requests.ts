/**
 * Parsing of client event payloads. Clients are untrusted: everything arrives
 * as `unknown` and leaves as a typed request or a protocol error.
 */
import { ErrorCode, patternError, type ProtocolError } from '@topicgate/shared';

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
export function parseSubscribe(payload: unknown): Parsed<{ pattern: string }> {
  const expected = 'subscribe expects an object { pattern: string }';
  if (!isRecord(payload)) return fail(ErrorCode.BadRequest, expected);
  const { pattern } = payload;
  if (pattern === undefined) return fail(ErrorCode.BadRequest, `${expected}; "pattern" is missing`);
  if (typeof pattern !== 'string') return fail(ErrorCode.BadRequest, `${expected}; "pattern" must be a string, got ${kindOf(pattern)}`);
  const why = patternError(pattern);
  if (why) return fail(ErrorCode.InvalidPattern, why);
  return { ok: true, value: { pattern } };
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
