/**
 * The JSON codec for message bodies. A body is always a JSON object; a `Date`
 * is written as seconds since the UNIX epoch (a number), never as a string.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** JSON that must not be changed, e.g. one decoding shared by every consumer of a message. */
export type ReadonlyJsonValue = string | number | boolean | null | readonly ReadonlyJsonValue[] | ReadonlyJsonObject;
export interface ReadonlyJsonObject {
  readonly [key: string]: ReadonlyJsonValue;
}

/** A body that a publisher may hand to `encodeBody`: JSON plus `Date`s anywhere. */
export type PublishableBody = { [key: string]: unknown };

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `JSON.stringify` calls `Date#toJSON` before a replacer sees the value, so look at the holder. */
function datesAsEpochSeconds(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (!(raw instanceof Date)) return value;
  const ms = raw.getTime();
  // Without this, an invalid Date would silently become `null`.
  if (Number.isNaN(ms)) throw new TypeError(`a message body cannot hold an invalid Date (at "${key}")`);
  return ms / 1000;
}

/**
 * Serialises a message body. Throws a `TypeError` unless `body` is a plain
 * object that serialises to a JSON object, or when it holds an invalid `Date`.
 */
export function encodeBody(body: PublishableBody): string {
  if (!isJsonObject(body) || body instanceof Date) {
    throw new TypeError(`a message body must be a JSON object, got ${describe(body)}`);
  }
  const text: string | undefined = JSON.stringify(body, datesAsEpochSeconds);
  // A top-level `toJSON()` can turn the object into anything (or nothing).
  if (text === undefined || !text.startsWith('{')) {
    throw new TypeError(`a message body must serialise to a JSON object; its toJSON() gave ${text === undefined ? 'undefined' : text.slice(0, 40)}`);
  }
  return text;
}

export class BodyError extends Error {
  override readonly name = 'BodyError';
}

/** Parses a message body, throwing `BodyError` when it is not JSON or not an object. */
export function decodeBody(text: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BodyError(`body is not valid JSON (${(err as Error).message})`);
  }
  if (!isJsonObject(value)) throw new BodyError(`body must be a JSON object, got ${describe(value)}`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a Date';
  return typeof value;
}
