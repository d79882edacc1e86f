/**
 * message-body.ts on its own: what a dropped body's reason says (never its
 * content), and how copies of one message are told from repeats of it.
 * The same rules on RabbitMQ, end to end: server/test/gateway/message-bodies.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { decodeMessageBody, DropReports, fingerprint } from '../../src/mq/message-body.js';

describe('decodeMessageBody', () => {
  it('relays the decoded text and its parse', () => {
    expect(decodeMessageBody(Buffer.from('{"a": "é"}'), {})).toEqual({ ok: true, json: '{"a": "é"}', body: { a: 'é' } });
    expect(decodeMessageBody(Buffer.from('{"a":"é"}', 'latin1'), { contentEncoding: ' Latin-1 ' })).toMatchObject({ ok: true, body: { a: 'é' } });
  });

  it.each([
    ['SECRET not json', 'not_json', /^the body is not valid JSON$/],
    ['{"SECRET": tru}', 'not_json', /^the body is not valid JSON$/], // V8 names the token, not its position
    ['{"SECRET": 1', 'not_json', /^the body is not valid JSON \(error at character 12\)$/],
    ['{"SECRET": 1} trailing', 'not_json', /^the body is not valid JSON \(error at character \d+\)$/],
    ['   ', 'not_json', /^the body is empty$/],
    ['["SECRET"]', 'not_an_object', /^the body is JSON but an array, not an object$/],
    ['"SECRET"', 'not_an_object', /^the body is JSON but a string, not an object$/],
    ['null', 'not_an_object', /^the body is JSON but null, not an object$/],
  ])('%j is dropped as %s with a reason that does not quote it', (text, reason, detail) => {
    const result = decodeMessageBody(Buffer.from(text), {});
    expect(result).toEqual({ ok: false, reason, detail: expect.stringMatching(detail) });
  });

  it('names the declared encoding, bounded, and the accepted ones', () => {
    expect(decodeMessageBody(Buffer.from('{}'), { contentEncoding: 'x'.repeat(200) })).toEqual({
      ok: false,
      reason: 'unsupported_encoding',
      detail: expect.stringMatching(/^content_encoding "x{40}…" is not an encoding topicgate decodes \(utf-8 .*\)$/),
    });
    expect(decodeMessageBody(Buffer.from([0xe9]), { contentEncoding: 'utf-8' })).toEqual({
      ok: false,
      reason: 'invalid_text',
      detail: 'the body is not valid utf-8, as its content_encoding "utf-8" declares',
    });
  });
});

describe('DropReports: once per message, however the copies interleave', () => {
  const f = fingerprint('k', Buffer.from('nope'), {});

  it('two identical messages, each to three queues, copies interleaved: two reports', () => {
    const reports = new DropReports();
    const order = ['q1', 'q1', 'q2', 'q3', 'q2', 'q3'];
    expect(order.map((q) => reports.firstCopy(f, q, 0))).toEqual([true, true, false, false, false, false]);
  });

  it('a copy reaching a new queue first is not a new message; a third repeat is', () => {
    const reports = new DropReports();
    expect(['q1', 'q1', 'q2', 'q2', 'q2'].map((q) => reports.firstCopy(f, q, 0))).toEqual([true, true, false, false, true]);
  });

  it("subscriptions coming and going: a repeat reaching only a new queue is a new message; a new queue's copy of a recent one is not", () => {
    const reports = new DropReports();
    expect(reports.firstCopy(f, 'q1', 0)).toBe(true); // message 1
    expect(reports.firstCopy(f, 'q2', 20_000)).toBe(true); // message 2, long after: q1 is gone
    expect(reports.firstCopy(f, 'q2', 40_000)).toBe(true); // message 3
    expect(reports.firstCopy(f, 'q3', 40_010)).toBe(false); // q3, new, gets its copy of message 3
    expect(reports.firstCopy(f, 'q3', 60_000)).toBe(true); // message 4 reaches q3 first
    expect(reports.firstCopy(f, 'q2', 60_005)).toBe(false);
  });

  it('fingerprints differ by key, encoding, type and bytes; at most maxEntries are kept', () => {
    const content = Buffer.from('x');
    const prints = new Set([
      fingerprint('a', content, {}),
      fingerprint('b', content, {}),
      fingerprint('a', content, { contentEncoding: 'utf-8' }),
      fingerprint('a', content, { contentType: 'text/plain' }),
      fingerprint('a', content, { headers: { compression: 'application/x-gzip' } }),
      fingerprint('a', Buffer.from('y'), {}),
    ]);
    expect(prints.size).toBe(6);
    const reports = new DropReports(2);
    expect(reports.firstCopy(f, 'q1', 0)).toBe(true);
    reports.firstCopy('other-1', 'q', 1);
    reports.firstCopy('other-2', 'q', 2); // pushes f out
    expect(reports.firstCopy(f, 'q2', 3)).toBe(true); // forgotten: counted again (once more, never less)
  });
});
