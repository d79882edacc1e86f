/**
 * Handshake and refresh tokens: what the gateway accepts, what it refuses, and
 * that every refusal says why without revealing key material.
 */
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AuthConfigError,
  AuthError,
  createTokenVerifier,
  MAX_TOKEN_LENGTH,
  mintToken,
  parseDuration,
  type TokenVerifier,
} from '../../src/auth/token-verifier.js';

const SECRET = 'test-secret-that-is-long-enough-for-hs256';
const now = () => Math.floor(Date.now() / 1000);
const hs256 = createTokenVerifier({ secret: SECRET, algorithms: ['HS256'] });

const rsa = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});
const ec = generateKeyPairSync('ec', {
  namedCurve: 'P-256',
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});
const dir = mkdtempSync(join(tmpdir(), 'topicgate-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Expects `verify` to refuse with exactly `message` (or a message matching it). */
async function expectRefused(verifier: TokenVerifier, token: unknown, message: string | RegExp) {
  let caught: unknown;
  try {
    await verifier.verify(token);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(AuthError);
  const error = caught as AuthError;
  expect(error.code).toBe('unauthorized');
  if (typeof message === 'string') expect(error.message).toBe(message);
  else expect(error.message).toMatch(message);
  // No refusal reveals key material.
  expect(error.message).not.toContain(SECRET);
  expect(error.message).not.toContain('BEGIN');
}

describe('a shared-secret (HS256) token', () => {
  it('is accepted, and gives the gateway its subject, topics and expiry', async () => {
    const exp = now() + 3600;
    const token = jwt.sign({ sub: 'alice', topics: ['builds.#', 'logs.*.append'], exp }, SECRET);
    expect(await hs256.verify(token)).toEqual({ sub: 'alice', topics: ['builds.#', 'logs.*.append'], exp, iat: expect.any(Number) });
  });

  it('without a topics claim connects but allows no topics', async () => {
    const token = jwt.sign({ sub: 'bob' }, SECRET, { expiresIn: 60 });
    expect((await hs256.verify(token)).topics).toEqual([]);
  });

  it('without a subject is accepted', async () => {
    const token = jwt.sign({ topics: ['a'] }, SECRET, { expiresIn: 60 });
    expect((await hs256.verify(token)).sub).toBeUndefined();
  });

  it('is refused once expired, saying when it expired', async () => {
    const exp = now() - 10;
    const token = jwt.sign({ topics: [], exp }, SECRET);
    await expectRefused(hs256, token, `token expired at ${new Date(exp * 1000).toISOString()}`);
  });

  it('is refused before its nbf time', async () => {
    const nbf = now() + 600;
    const token = jwt.sign({ topics: [], nbf }, SECRET, { expiresIn: 3600 });
    await expectRefused(hs256, token, `token is not yet valid (not before ${new Date(nbf * 1000).toISOString()})`);
  });

  it('is refused when signed with another secret', async () => {
    const token = jwt.sign({ topics: ['#'] }, 'another-secret', { expiresIn: 60 });
    await expectRefused(hs256, token, 'token signature is invalid');
  });

  it('is refused when the payload was altered after signing', async () => {
    const [header, , signature] = jwt.sign({ topics: ['builds.1'] }, SECRET, { expiresIn: 60 }).split('.');
    const forged = `${header}.${b64url({ topics: ['#'], exp: now() + 60 })}.${signature}`;
    await expectRefused(hs256, forged, 'token signature is invalid');
  });

  it('is refused when it never expires', async () => {
    const token = jwt.sign({ topics: ['#'] }, SECRET);
    await expectRefused(hs256, token, 'token has no exp claim');
  });

  it('is refused when signed with an algorithm that is not on the allow-list', async () => {
    const token = jwt.sign({ topics: [] }, SECRET, { algorithm: 'HS512', expiresIn: 60 });
    await expectRefused(hs256, token, 'token algorithm HS512 is not allowed (allowed: HS256)');
  });

  it('is refused when its topics are not valid patterns, saying which', async () => {
    const token = jwt.sign({ topics: ['builds.#', 'a..b'] }, SECRET, { expiresIn: 60 });
    await expectRefused(hs256, token, /^topics claim must be an array of valid patterns: topics\[1\]: pattern "a\.\.b" has an empty word/);
    const notArray = jwt.sign({ topics: 'builds.#' }, SECRET, { expiresIn: 60 });
    await expectRefused(hs256, notArray, 'topics claim must be an array of valid patterns: got string');
    const notString = jwt.sign({ topics: [42] }, SECRET, { expiresIn: 60 });
    await expectRefused(hs256, notString, 'topics claim must be an array of valid patterns: topics[0]: a pattern must be a string, got number');
  });

  it('is refused when its subject is not a string', async () => {
    const token = jwt.sign({ topics: [], sub: 42, exp: now() + 60 }, SECRET);
    await expectRefused(hs256, token, 'token sub claim is not a string');
  });
});

describe('an unsigned token', () => {
  const payload = b64url({ sub: 'mallory', topics: ['#'], exp: now() + 3600 });

  it('with alg none is refused, however "none" is spelled', async () => {
    for (const alg of ['none', 'None', 'NONE']) {
      await expectRefused(hs256, `${b64url({ alg, typ: 'JWT' })}.${payload}.`, 'algorithm none is not allowed');
    }
  });

  it('with alg none and a made-up signature is refused', async () => {
    await expectRefused(hs256, `${b64url({ alg: 'none' })}.${payload}.c2lnbmF0dXJl`, 'algorithm none is not allowed');
  });

  it('claiming HS256 but carrying no signature is refused', async () => {
    await expectRefused(hs256, `${b64url({ alg: 'HS256', typ: 'JWT' })}.${payload}.`, 'token has no signature');
  });
});

describe('a public-key (RS256) token', () => {
  const claims = { sub: 'carol', topics: ['builds.#'] };
  const signed = () => jwt.sign(claims, rsa.privateKey, { algorithm: 'RS256', expiresIn: 60 });

  it('is accepted with the public key given as PEM text', async () => {
    const verifier = createTokenVerifier({ publicKey: rsa.publicKey, algorithms: ['RS256'] });
    expect(await verifier.verify(signed())).toMatchObject(claims);
  });

  it('is accepted with the public key given as a file path', async () => {
    const path = join(dir, 'rs256.pub.pem');
    writeFileSync(path, rsa.publicKey);
    const verifier = createTokenVerifier({ publicKey: path, algorithms: ['RS256'] });
    expect(await verifier.verify(signed())).toMatchObject(claims);
  });

  it('is accepted with PEM text whose newlines were escaped in an environment variable', async () => {
    const verifier = createTokenVerifier({ publicKey: rsa.publicKey.trim().replace(/\n/g, '\\n'), algorithms: ['RS256'] });
    expect(await verifier.verify(signed())).toMatchObject(claims);
  });

  it('is refused when signed by another key', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const verifier = createTokenVerifier({ publicKey: rsa.publicKey, algorithms: ['RS256'] });
    const token = jwt.sign(claims, other.privateKey, { algorithm: 'RS256', expiresIn: 60 });
    await expectRefused(verifier, token, 'token signature is invalid');
  });

  it('cannot be forged by HMAC-signing with the public key as the secret (algorithm confusion)', async () => {
    const verifier = createTokenVerifier({ publicKey: rsa.publicKey, algorithms: ['RS256'] });
    // What an attacker can do with the public key, which is public.
    const forged = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ topics: ['#'], exp: now() + 60 })}`;
    const signature = createHmac('sha256', rsa.publicKey).update(forged).digest('base64url');
    await expectRefused(verifier, `${forged}.${signature}`, 'token algorithm HS256 is not allowed (allowed: RS256)');
    // And a configuration that would accept both families is refused outright.
    expect(() => createTokenVerifier({ publicKey: rsa.publicKey, algorithms: ['RS256', 'HS256'] })).toThrow(AuthConfigError);
  });

  it('an ES256 token is accepted with an EC key', async () => {
    const verifier = createTokenVerifier({ publicKey: ec.publicKey, algorithms: ['ES256'] });
    const token = jwt.sign(claims, ec.privateKey, { algorithm: 'ES256', expiresIn: 60 });
    expect(await verifier.verify(token)).toMatchObject(claims);
  });
});

describe('issuer and audience', () => {
  const verifier = createTokenVerifier({ secret: SECRET, algorithms: ['HS256'], issuer: 'https://auth.example', audience: 'topicgate' });
  const sign = (options: jwt.SignOptions) => jwt.sign({ topics: [] }, SECRET, { expiresIn: 60, ...options });

  it('a token from the configured issuer for the configured audience is accepted', async () => {
    expect((await verifier.verify(sign({ issuer: 'https://auth.example', audience: 'topicgate' }))).topics).toEqual([]);
    expect((await verifier.verify(sign({ issuer: 'https://auth.example', audience: ['other', 'topicgate'] }))).topics).toEqual([]);
  });

  it('a token from another issuer is refused', async () => {
    await expectRefused(verifier, sign({ issuer: 'https://evil.example', audience: 'topicgate' }), 'token issuer is not "https://auth.example"');
    await expectRefused(verifier, sign({ audience: 'topicgate' }), 'token issuer is not "https://auth.example"');
  });

  it('a token for another audience is refused', async () => {
    await expectRefused(verifier, sign({ issuer: 'https://auth.example', audience: 'billing' }), 'token audience is not "topicgate"');
    await expectRefused(verifier, sign({ issuer: 'https://auth.example' }), 'token audience is not "topicgate"');
  });

  it('are not checked when not configured', async () => {
    expect((await hs256.verify(sign({ issuer: 'anyone', audience: 'anything' }))).topics).toEqual([]);
  });
});

describe('something that is not a token', () => {
  it('is refused when missing', async () => {
    for (const missing of [undefined, null, '']) await expectRefused(hs256, missing, 'token is missing');
  });

  it('is refused when not a string', async () => {
    for (const value of [42, {}, ['a.b.c'], true]) await expectRefused(hs256, value, 'token is not a string');
  });

  it('is refused when it is garbage', async () => {
    for (const garbage of ['garbage', 'a.b.c', '...', 'eyJhbGciOiJIUzI1NiJ9', `${b64url({ typ: 'JWT' })}.${b64url({})}.x`]) {
      await expectRefused(hs256, garbage, 'token is malformed: not a JSON Web Token');
    }
  });

  it('is refused unread when huge', async () => {
    const huge = `${b64url({ alg: 'HS256' })}.${'A'.repeat(100 * 1024)}.sig`;
    await expectRefused(hs256, huge, `token is too large (${huge.length} characters; at most ${MAX_TOKEN_LENGTH})`);
  });

  it('is refused when its payload is not a JSON object', async () => {
    const token = jwt.sign('just a string', SECRET);
    await expectRefused(hs256, token, 'token payload is not a JSON object');
  });
});

describe('configuration that cannot be safe is refused at start', () => {
  const refused = (config: Parameters<typeof createTokenVerifier>[0], message: RegExp) =>
    expect(() => createTokenVerifier(config)).toThrow(message);

  it('listing algorithm none', async () => {
    refused({ secret: SECRET, algorithms: ['HS256', 'none'] }, /"none" is never allowed/);
    refused({ secret: SECRET, algorithms: ['NONE'] }, /"none" is never allowed/);
  });

  it('an unknown or empty algorithm list', async () => {
    refused({ secret: SECRET, algorithms: ['HS257'] }, /unknown JWT algorithm "HS257"; supported: HS256/);
    refused({ secret: SECRET, algorithms: [] }, /no JWT algorithm is configured/);
  });

  it('mixing shared-secret and public-key algorithms', async () => {
    refused({ secret: SECRET, algorithms: ['HS256', 'RS256'] }, /mix shared-secret \(HS256\) and public-key \(RS256\)/);
  });

  it('a missing or mismatched key', async () => {
    refused({ algorithms: ['HS256'] }, /need a shared secret/);
    refused({}, /need a shared secret/);
    refused({ algorithms: ['RS256'] }, /need a public key/);
    refused({ secret: SECRET, algorithms: ['RS256'] }, /a JWT secret is configured but the JWT algorithms \(RS256\) need a public key/);
    refused({ publicKey: rsa.publicKey, algorithms: ['HS256'] }, /a JWT public key is configured but the JWT algorithms \(HS256\) use a shared secret/);
    refused({ publicKey: rsa.publicKey }, /a JWT public key is configured/);
    refused({ secret: SECRET, publicKey: rsa.publicKey, algorithms: ['RS256'] }, /both a JWT secret and a JWT public key/);
    refused({ publicKey: rsa.publicKey, algorithms: ['ES256'] }, /ES256 needs an EC key, but the JWT public key is rsa/);
  });

  it('a public key that cannot be read or is not a public key', async () => {
    refused({ publicKey: join(dir, 'missing.pem'), algorithms: ['RS256'] }, /neither PEM text nor a readable file: .*missing\.pem.*ENOENT/);
    refused({ publicKey: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----', algorithms: ['RS256'] }, /is not a PEM public key/);
    refused({ publicKey: rsa.privateKey, algorithms: ['RS256'] }, /holds a private key; give the gateway the public key only/);
    const path = join(dir, 'private.pem');
    writeFileSync(path, rsa.privateKey);
    refused({ publicKey: path, algorithms: ['RS256'] }, /file ".*private\.pem" holds a private key/);
  });

  it('the error is an AuthConfigError, not an AuthError', async () => {
    expect(() => createTokenVerifier({ algorithms: ['none'] })).toThrow(AuthConfigError);
  });
});

describe('minting tokens (topicgate token, the demo)', () => {
  it('a minted token verifies with the same secret and round-trips its claims', async () => {
    const before = now();
    const token = mintToken({ secret: SECRET, sub: 'dave', topics: ['builds.#', 'logs.#'], ttlSeconds: 3600 });
    const verified = await hs256.verify(token);
    expect(verified.sub).toBe('dave');
    expect(verified.topics).toEqual(['builds.#', 'logs.#']);
    expect(verified.exp).toBeGreaterThanOrEqual(before + 3600);
    expect(verified.exp).toBeLessThanOrEqual(now() + 3600);
  });

  it('carries issuer, audience and algorithm when asked', async () => {
    const secret384 = `${SECRET}-and-longer-for-hs384`; // HS384 needs 48 bytes
    const verifier = createTokenVerifier({ secret: secret384, algorithms: ['HS384'], issuer: 'me', audience: 'you' });
    const token = mintToken({ secret: secret384, topics: [], ttlSeconds: 60, algorithm: 'HS384', issuer: 'me', audience: 'you' });
    expect(await verifier.verify(token)).toMatchObject({ sub: undefined, topics: [] });
  });

  it('refuses what would make a useless or unsafe token', async () => {
    expect(() => mintToken({ secret: SECRET, topics: ['a..b'], ttlSeconds: 60 })).toThrow(/topic 1 is not a valid pattern/);
    expect(() => mintToken({ secret: SECRET, topics: [], ttlSeconds: 0 })).toThrow(/greater than 0/);
    expect(() => mintToken({ secret: SECRET, topics: [], ttlSeconds: 1.5 })).toThrow(/whole number of seconds/);
    expect(() => mintToken({ secret: '', topics: [], ttlSeconds: 60 })).toThrow(/without a secret/);
    expect(() => mintToken({ secret: SECRET, topics: [], ttlSeconds: 60, algorithm: 'RS256' })).toThrow(/must be one of HS256, HS384, HS512/);
    expect(() => mintToken({ secret: SECRET, topics: [], ttlSeconds: 60, algorithm: 'none' })).toThrow(AuthConfigError);
  });
});

describe('durations for --ttl', () => {
  it.each([
    ['3600', 3600],
    ['90s', 90],
    ['30m', 1800],
    ['1h', 3600],
    ['2d', 172_800],
    [' 1H ', 3600],
    ['0', 0],
  ])('%j is %i seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(['', 'abc', '1x', '-5', '1.5h', '1h30m', 'h', '1e3', '99999999999999999999'])('%j is refused with what to write instead', async (text) => {
    expect(() => parseDuration(text)).toThrow(`invalid duration "${text}": use whole seconds (3600) or a whole number with a unit: 90s, 30m, 1h, 2d`);
  });
});

describe('a shared secret that could be guessed (issue 11)', () => {
  // HS256 tokens travel to browsers: anyone holding one can try secrets offline, as fast as their GPUs go.
  it.each([
    ['one character', 'Z'],
    ['a word', 'hunter2'],
    ['31 bytes', 'a'.repeat(31)],
    ['31 bytes of UTF-8 counted as bytes, not characters', 'é'.repeat(15) + 'a'],
  ])('is refused at start when it is %s, saying how to make a good one', (_, secret) => {
    let caught: unknown;
    try {
      createTokenVerifier({ secret, algorithms: ['HS256'] });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AuthConfigError);
    const message = (caught as Error).message;
    expect(message).toContain('TOPICGATE_JWT_SECRET');
    expect(message).toContain(`is ${Buffer.byteLength(secret)} byte`);
    expect(message).toContain('at least 32 bytes');
    expect(message).toContain('openssl rand -hex 32');
    expect(message).not.toContain(secret); // never echo key material, not even a bad one
  });

  it('of 32 bytes is accepted for HS256', async () => {
    const secret = 'k'.repeat(32);
    const verifier = createTokenVerifier({ secret, algorithms: ['HS256'] });
    expect((await verifier.verify(jwt.sign({ sub: 'a', topics: [] }, secret, { expiresIn: 60 }))).sub).toBe('a');
  });

  it('must be as long as the hash for HS384 and HS512 (RFC 7518 §3.2)', () => {
    expect(() => createTokenVerifier({ secret: 'k'.repeat(47), algorithms: ['HS384'] })).toThrow(/at least 48 bytes/);
    expect(() => createTokenVerifier({ secret: 'k'.repeat(63), algorithms: ['HS256', 'HS512'] })).toThrow(/at least 64 bytes/);
    expect(() => createTokenVerifier({ secret: 'k'.repeat(64), algorithms: ['HS512'] })).not.toThrow();
  });

  it('is refused for minting too (topicgate token, the demo)', () => {
    expect(() => mintToken({ secret: 'short', topics: [], ttlSeconds: 60 })).toThrow(/at least 32 bytes.*openssl rand -hex 32/);
  });
});

describe('token lifetime (TOPICGATE_JWT_MAX_TTL, default 24h)', () => {
  /** Signed by hand: jsonwebtoken's own sign() would refuse some of these claims. */
  const sign = (claims: object) => {
    const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'a', topics: [], ...claims })}`;
    return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
  };

  it('a token that would live practically forever is refused', async () => {
    await expectRefused(hs256, sign({ exp: 1e300 }), /^token expires too far in the future: .*at most 24h/);
    await expectRefused(hs256, sign({ iat: now(), exp: now() + 10 * 365 * 86_400 }), /^token expires too far in the future/);
  });

  it('exp more than the maximum from now is refused; within it, accepted', async () => {
    await expectRefused(hs256, sign({ exp: now() + 25 * 3600 }), /^token expires too far in the future: .*at most 24h/);
    expect((await hs256.verify(sign({ exp: now() + 23 * 3600 }))).sub).toBe('a');
    expect((await hs256.verify(sign({ iat: now(), exp: now() + 24 * 3600 }))).sub).toBe('a');
  });

  it('the maximum is configurable', async () => {
    const hourly = createTokenVerifier({ secret: SECRET, algorithms: ['HS256'], maxTtlSeconds: 3600 });
    await expectRefused(hourly, sign({ iat: now(), exp: now() + 2 * 3600 }), /at most 1h/);
    expect((await hourly.verify(sign({ iat: now(), exp: now() + 3000 }))).sub).toBe('a');
  });

  it('a token issued for longer than the maximum is refused even once its remaining life is shorter', async () => {
    // Issued 2 h ago for 25 h: it would otherwise become acceptable an hour from now, outliving any revocation.
    await expectRefused(hs256, sign({ iat: now() - 2 * 3600, exp: now() + 23 * 3600 }), /^token lifetime .* exceeds the maximum of 24h/);
  });

  it('a token issued in the future is refused beyond a small clock skew', async () => {
    await expectRefused(hs256, sign({ iat: now() + 600, exp: now() + 3600 }), /^token was issued in the future \(iat /);
    expect((await hs256.verify(sign({ iat: now() + 30, exp: now() + 3600 }))).sub).toBe('a'); // 30 s of clock skew pass
  });

  it('an iat that is not a number is refused', async () => {
    await expectRefused(hs256, sign({ iat: 'yesterday', exp: now() + 60 }), /iat/);
  });

  it('the verified token carries iat for revocation checks', async () => {
    const iat = now() - 5;
    expect(await hs256.verify(sign({ iat, exp: now() + 60 }))).toMatchObject({ iat });
  });

  it('a maximum that is not a positive number of seconds is a configuration error', () => {
    expect(() => createTokenVerifier({ secret: SECRET, algorithms: ['HS256'], maxTtlSeconds: 0 })).toThrow(AuthConfigError);
  });
});

describe('a JWKS configuration that cannot work is refused at start', () => {
  const JWKS = 'https://idp.example/.well-known/jwks.json'; // never fetched: nothing here verifies a token
  const refused = (config: Parameters<typeof createTokenVerifier>[0], message: RegExp) => expect(() => createTokenVerifier(config)).toThrow(message);

  it('with a secret or a public key as well', () => {
    refused({ jwksUrl: JWKS, secret: 'k'.repeat(64), algorithms: ['RS256'] }, /both TOPICGATE_JWT_JWKS_URL and TOPICGATE_JWT_SECRET are set/);
    refused({ jwksUrl: JWKS, publicKey: rsa.publicKey, algorithms: ['RS256'] }, /both TOPICGATE_JWT_JWKS_URL and TOPICGATE_JWT_PUBLIC_KEY are set/);
  });

  it('with HMAC algorithms (a JWKS serves public keys only)', () => {
    refused({ jwksUrl: JWKS }, /TOPICGATE_JWT_JWKS_URL is set but the JWT algorithms \(HS256\) use a shared secret.*e\.g\. RS256/);
    refused({ jwksUrl: JWKS, algorithms: ['RS256', 'HS256'] }, /mix shared-secret/);
  });

  it('over plain http to another machine, or not a URL at all', () => {
    refused({ jwksUrl: 'http://idp.example/jwks.json', algorithms: ['RS256'] }, /must be an https:\/\/ URL \(http:\/\/ only for localhost\)/);
    refused({ jwksUrl: 'ftp://idp.example/jwks.json', algorithms: ['RS256'] }, /must be an https:\/\/ URL/);
    refused({ jwksUrl: 'idp.example/jwks.json', algorithms: ['RS256'] }, /TOPICGATE_JWT_JWKS_URL is not a URL/);
  });

  it('is accepted over https, and over http on this machine only', () => {
    for (const jwksUrl of [JWKS, 'http://127.0.0.1:9/jwks.json', 'http://localhost:9/jwks.json', 'http://[::1]:9/jwks.json']) {
      expect(() => createTokenVerifier({ jwksUrl, algorithms: ['RS256', 'ES256'] })).not.toThrow();
    }
  });
});
