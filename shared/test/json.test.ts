/**
 * Message bodies: always a JSON object on the wire, with `Date`s written as
 * seconds since the UNIX epoch (docs/protocol.md §11).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BodyError, decodeBody, encodeBody, isJsonObject, type PublishableBody } from '../src/index.js';

const at = new Date('2023-11-14T22:13:20.000Z'); // 1_700_000_000 s

describe('publishing a body', () => {
  it('writes a Date as seconds since the epoch, not as a string', () => {
    expect(encodeBody({ finishedAt: at })).toBe('{"finishedAt":1700000000}');
  });

  it('keeps sub-second precision as a fraction', () => {
    expect(encodeBody({ at: new Date(1_700_000_000_250) })).toBe('{"at":1700000000.25}');
  });

  it('converts Dates at any depth, in objects and arrays', () => {
    const body = {
      build: { id: 42, startedAt: at, steps: [{ at }, { at: null }] },
      times: [at, new Date(0)],
    };
    expect(JSON.parse(encodeBody(body))).toEqual({
      build: { id: 42, startedAt: 1_700_000_000, steps: [{ at: 1_700_000_000 }, { at: null }] },
      times: [1_700_000_000, 0],
    });
  });

  it('leaves everything else as JSON.stringify would', () => {
    const body = { s: '2023-11-14T22:13:20.000Z', n: 1.5, b: false, z: null, a: [1, 'x'], o: {}, gone: undefined };
    expect(encodeBody(body)).toBe(JSON.stringify(body));
  });

  it.each<[unknown, string]>([
    [null, 'a message body must be a JSON object, got null'],
    [[1, 2], 'a message body must be a JSON object, got an array'],
    ['text', 'a message body must be a JSON object, got string'],
    [42, 'a message body must be a JSON object, got number'],
    [undefined, 'a message body must be a JSON object, got undefined'],
    [at, 'a message body must be a JSON object, got a Date'],
  ])('refuses %j with a clear error', (body, message) => {
    expect(() => encodeBody(body as PublishableBody)).toThrow(new TypeError(message));
  });

  it('refuses an invalid Date instead of silently writing null', () => {
    expect(() => encodeBody({ build: { finishedAt: new Date('not a date') } })).toThrow(
      new TypeError('a message body cannot hold an invalid Date (at "finishedAt")'),
    );
  });

  it('refuses an object whose toJSON() makes it something other than an object', () => {
    expect(() => encodeBody({ toJSON: () => 'surprise' })).toThrow(/must serialise to a JSON object; its toJSON\(\) gave "surprise"/);
    expect(() => encodeBody({ toJSON: () => undefined })).toThrow(/gave undefined/);
  });

  it('reports what JSON cannot express', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => encodeBody(cyclic)).toThrow(TypeError);
    expect(() => encodeBody({ big: 1n })).toThrow(TypeError);
  });
});

describe('receiving a body', () => {
  it('parses a JSON object, keeping unknown keys', () => {
    expect(decodeBody('{"id":1,"version":3,"added":{"x":[1]}}')).toEqual({ id: 1, version: 3, added: { x: [1] } });
  });

  it.each([
    ['[]', 'body must be a JSON object, got an array'],
    ['null', 'body must be a JSON object, got null'],
    ['42', 'body must be a JSON object, got number'],
    ['"text"', 'body must be a JSON object, got string'],
    ['true', 'body must be a JSON object, got boolean'],
  ])('refuses %s: %s', (text, message) => {
    expect(() => decodeBody(text)).toThrow(new BodyError(message));
  });

  it.each(['', 'not json', '{"a":', "{'a':1}", '{"a":1}}'])('refuses invalid JSON %j, saying so', (text) => {
    expect(() => decodeBody(text)).toThrow(BodyError);
    expect(() => decodeBody(text)).toThrow(/^body is not valid JSON \(/);
  });

  it('BodyError is an Error named BodyError', () => {
    const error = new BodyError('x');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('BodyError');
  });
});

describe('encode and decode are inverses for JSON objects', () => {
  it('any JSON object survives a round trip', () => {
    const objectText = fc.json().filter((text) => isJsonObject(JSON.parse(text)));
    fc.assert(
      fc.property(objectText, (text) => {
        const body = decodeBody(text);
        expect(body).toEqual(JSON.parse(text));
        expect(decodeBody(encodeBody(body))).toEqual(body);
      }),
    );
  });

  it('a Date comes back as its epoch seconds', () => {
    fc.assert(
      fc.property(fc.date({ noInvalidDate: true }), (date) => {
        expect(decodeBody(encodeBody({ date }))).toEqual({ date: date.getTime() / 1000 });
      }),
    );
  });
});
