/**
 * JWT verification for the socket.io handshake and `refresh` (docs/protocol.md
 * §2.1, §4.3, §10), and minting for `topicgate token` and the demo.
 *
 * Rules that keep it safe:
 * - `none` is never accepted, not even when a configuration lists it (that
 *   configuration is refused when the verifier is created).
 * - jsonwebtoken always gets an explicit algorithm allow-list, and a key of one
 *   kind: a shared secret for HS*, or a public key for RS*, PS*, ES*. Mixing the
 *   families is refused, which rules out the classic confusion attack (a token
 *   "signed" with HS256 using the RSA public key as the HMAC secret).
 * - `exp` is required; `iss` and `aud` are checked when configured.
 * - Error messages say what is wrong with the token, never anything about the
 *   key material.
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import jwt, { type Algorithm, type JwtPayload } from 'jsonwebtoken';
import { ErrorCode, patternError } from '@topicgate/shared';

/** A token longer than this is refused before it is parsed. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

export interface TokenVerifierConfig {
  /** Shared secret, for HS256/HS384/HS512 (`TOPICGATE_JWT_SECRET`). */
  secret?: string;
  /** PEM public key, or the path of a file holding one, for RS*, PS*, ES* (`TOPICGATE_JWT_PUBLIC_KEY`). Read when the verifier is created. */
  publicKey?: string;
  /** The `alg` values accepted; `none` is never accepted. Default: `['HS256']`. */
  algorithms?: readonly string[];
  /** Required `iss` claim, when set. */
  issuer?: string;
  /** Required `aud` claim (or one of the token's audiences), when set. */
  audience?: string;
}

/** What the gateway needs from a verified token. */
export interface VerifiedToken {
  /** Who holds the token (the `sub` claim), for logs. */
  sub: string | undefined;
  /** The patterns the holder may subscribe within; `[]` when the token has no `topics` claim. */
  topics: string[];
  /** Expiry, in seconds since the UNIX epoch. */
  exp: number;
}

export interface TokenVerifier {
  /** Verifies a token from a handshake or a `refresh`. Throws `AuthError` when it is not acceptable. */
  verify(token: unknown): VerifiedToken;
}

/** A token was refused. `message` is safe to send to the client. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly code = ErrorCode.Unauthorized;
}

/** The verifier's configuration cannot work (thrown by `createTokenVerifier` and `mintToken`). */
export class AuthConfigError extends Error {
  override readonly name = 'AuthConfigError';
}

const HMAC_ALGORITHMS: readonly string[] = ['HS256', 'HS384', 'HS512'];
/** Public-key algorithms, with the key type each needs (`KeyObject#asymmetricKeyType`). */
const PUBLIC_KEY_ALGORITHMS: ReadonlyMap<string, readonly string[]> = new Map<string, readonly string[]>([
  ['RS256', ['rsa']],
  ['RS384', ['rsa']],
  ['RS512', ['rsa']],
  ['PS256', ['rsa', 'rsa-pss']],
  ['PS384', ['rsa', 'rsa-pss']],
  ['PS512', ['rsa', 'rsa-pss']],
  ['ES256', ['ec']],
  ['ES384', ['ec']],
  ['ES512', ['ec']],
]);
const SUPPORTED = [...HMAC_ALGORITHMS, ...PUBLIC_KEY_ALGORITHMS.keys()].join(', ');

/**
 * Checks the configuration and loads the key once; throws `AuthConfigError`
 * with a message an operator can act on.
 *
 * @example
 * const verifier = createTokenVerifier({ secret: process.env.TOPICGATE_JWT_SECRET, algorithms: ['HS256'] });
 * const { sub, topics, exp } = verifier.verify(socket.handshake.auth.token);
 */
export function createTokenVerifier(config: TokenVerifierConfig): TokenVerifier {
  const algorithms = checkAlgorithms(config.algorithms ?? ['HS256']);
  const key = loadKey(config, algorithms);
  const issuer = config.issuer || undefined; // an empty variable means "not configured"
  const audience = config.audience || undefined;

  return {
    verify(token: unknown): VerifiedToken {
      if (token === undefined || token === null || token === '') throw new AuthError('token is missing');
      if (typeof token !== 'string') throw new AuthError('token is not a string');
      if (token.length > MAX_TOKEN_LENGTH) {
        throw new AuthError(`token is too large (${token.length} characters; at most ${MAX_TOKEN_LENGTH})`);
      }

      // Look at the header first, to refuse `none` and foreign algorithms with a
      // message that says so (jsonwebtoken would only say "invalid algorithm").
      const alg = headerAlgorithm(token);
      if (alg.toLowerCase() === 'none') throw new AuthError('algorithm none is not allowed');
      if (!algorithms.includes(alg as Algorithm)) {
        throw new AuthError(`token algorithm ${alg} is not allowed (allowed: ${algorithms.join(', ')})`);
      }

      let payload: string | JwtPayload;
      try {
        payload = jwt.verify(token, key, {
          algorithms,
          ...(issuer !== undefined && { issuer }),
          ...(audience !== undefined && { audience }),
        });
      } catch (err) {
        throw new AuthError(describeVerifyError(err, issuer, audience));
      }
      return readClaims(payload);
    },
  };
}

function checkAlgorithms(configured: readonly string[]): Algorithm[] {
  const algorithms = [...new Set(configured.map((alg) => alg.trim()))];
  if (algorithms.length === 0) throw new AuthConfigError(`no JWT algorithm is configured; use one of ${SUPPORTED}`);
  for (const alg of algorithms) {
    if (alg.toLowerCase() === 'none') {
      throw new AuthConfigError('JWT algorithm "none" is never allowed: it accepts unsigned tokens');
    }
    if (!HMAC_ALGORITHMS.includes(alg) && !PUBLIC_KEY_ALGORITHMS.has(alg)) {
      throw new AuthConfigError(`unknown JWT algorithm "${alg}"; supported: ${SUPPORTED}`);
    }
  }
  const hmac = algorithms.filter((alg) => HMAC_ALGORITHMS.includes(alg));
  const publicKey = algorithms.filter((alg) => PUBLIC_KEY_ALGORITHMS.has(alg));
  if (hmac.length > 0 && publicKey.length > 0) {
    throw new AuthConfigError(
      `JWT algorithms mix shared-secret (${hmac.join(', ')}) and public-key (${publicKey.join(', ')}) algorithms; ` +
        'a gateway verifies with one kind of key: configure one family only',
    );
  }
  return algorithms as Algorithm[];
}

function loadKey(config: TokenVerifierConfig, algorithms: readonly string[]): KeyObject {
  const secret = config.secret || undefined;
  const publicKey = config.publicKey || undefined;
  if (secret !== undefined && publicKey !== undefined) {
    throw new AuthConfigError('both a JWT secret and a JWT public key are configured; set only the one your token issuer uses');
  }
  const listed = algorithms.join(', ');

  if (algorithms.every((alg) => HMAC_ALGORITHMS.includes(alg))) {
    if (publicKey !== undefined) {
      throw new AuthConfigError(
        `a JWT public key is configured but the JWT algorithms (${listed}) use a shared secret; ` +
          'set the algorithms to the public-key algorithm your issuer signs with (e.g. RS256), or configure a secret instead',
      );
    }
    if (secret === undefined) throw new AuthConfigError(`the JWT algorithms (${listed}) need a shared secret (TOPICGATE_JWT_SECRET)`);
    // A KeyObject, so that jsonwebtoken cannot reinterpret the string as a PEM key.
    return createSecretKey(Buffer.from(secret, 'utf8'));
  }

  if (secret !== undefined) {
    throw new AuthConfigError(
      `a JWT secret is configured but the JWT algorithms (${listed}) need a public key (TOPICGATE_JWT_PUBLIC_KEY)`,
    );
  }
  if (publicKey === undefined) {
    throw new AuthConfigError(`the JWT algorithms (${listed}) need a public key (TOPICGATE_JWT_PUBLIC_KEY: PEM text or a file path)`);
  }
  const key = loadPublicKey(publicKey);
  for (const alg of algorithms) {
    const fits = PUBLIC_KEY_ALGORITHMS.get(alg) ?? [];
    if (!fits.includes(key.asymmetricKeyType ?? '')) {
      throw new AuthConfigError(`JWT algorithm ${alg} needs an ${fits[0]?.toUpperCase()} key, but the JWT public key is ${key.asymmetricKeyType}`);
    }
  }
  return key;
}

/** Accepts PEM text (also with `\n` escapes, as pasted into an env variable) or a file path. */
function loadPublicKey(value: string): KeyObject {
  let pem = value.trim();
  let source = 'the JWT public key';
  if (!pem.startsWith('-----BEGIN')) {
    const shown = value.length > 200 ? `${value.slice(0, 200)}…` : value;
    try {
      pem = readFileSync(value, 'utf8');
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new AuthConfigError(`the JWT public key is neither PEM text nor a readable file: cannot read "${shown}" (${why})`);
    }
    source = `the JWT public key file "${shown}"`;
  }
  if (!pem.includes('\n')) pem = pem.replace(/\\n/g, '\n');
  if (pem.includes('PRIVATE KEY-----')) {
    throw new AuthConfigError(`${source} holds a private key; give the gateway the public key only`);
  }
  try {
    return createPublicKey(pem);
  } catch {
    throw new AuthConfigError(`${source} is not a PEM public key`);
  }
}

/** The `alg` of a token's header, or an `AuthError` when it is not a JWT at all. */
function headerAlgorithm(token: string): string {
  let decoded: jwt.Jwt | null;
  try {
    decoded = jwt.decode(token, { complete: true });
  } catch {
    decoded = null;
  }
  const alg: unknown = decoded?.header.alg;
  if (typeof alg !== 'string') throw new AuthError('token is malformed: not a JSON Web Token');
  return alg;
}

function describeVerifyError(err: unknown, issuer: string | undefined, audience: string | undefined): string {
  // Subclasses first: both extend JsonWebTokenError.
  if (err instanceof jwt.TokenExpiredError) return `token expired at ${err.expiredAt.toISOString()}`;
  if (err instanceof jwt.NotBeforeError) return `token is not yet valid (not before ${err.date.toISOString()})`;
  if (!(err instanceof jwt.JsonWebTokenError)) return 'token could not be verified';
  const message = err.message;
  if (message === 'invalid signature') return 'token signature is invalid';
  if (message === 'jwt signature is required') return 'token has no signature';
  if (message === 'jwt malformed') return 'token is malformed';
  if (message === 'invalid exp value') return 'token exp claim is not a number';
  if (message === 'invalid nbf value') return 'token nbf claim is not a number';
  if (message.startsWith('jwt audience invalid')) return `token audience is not "${audience}"`;
  if (message.startsWith('jwt issuer invalid')) return `token issuer is not "${issuer}"`;
  if (message.startsWith('secretOrPublicKey must be')) return 'token algorithm does not fit the configured key';
  return `token is invalid (${message})`;
}

function readClaims(payload: string | JwtPayload): VerifiedToken {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new AuthError('token payload is not a JSON object');
  }
  // jsonwebtoken checks `exp` only when present; tokens that never expire are refused.
  if (payload.exp === undefined) throw new AuthError('token has no exp claim');
  if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) throw new AuthError('token exp claim is not a number');
  if (payload.sub !== undefined && typeof payload.sub !== 'string') throw new AuthError('token sub claim is not a string');
  return { sub: payload.sub, topics: readTopics(payload['topics']), exp: payload.exp };
}

function readTopics(claim: unknown): string[] {
  if (claim === undefined) return [];
  const refuse = (why: string) => new AuthError(`topics claim must be an array of valid patterns: ${why}`);
  if (!Array.isArray(claim)) throw refuse(`got ${claim === null ? 'null' : typeof claim}`);
  claim.forEach((topic: unknown, i) => {
    const why = patternError(topic);
    if (why !== null) throw refuse(`topics[${i}]: ${why}`);
  });
  return [...new Set(claim as string[])];
}

export interface MintOptions {
  /** The shared secret to sign with. */
  secret: string;
  /** Who the token is for (the `sub` claim). */
  sub?: string;
  /** The patterns the holder may subscribe within. */
  topics: readonly string[];
  /** Lifetime in seconds, from now (see `parseDuration`). */
  ttlSeconds: number;
  /** An HMAC algorithm. Default: `'HS256'`. */
  algorithm?: string;
  issuer?: string;
  audience?: string;
}

/**
 * Mints a token the gateway accepts, for `topicgate token` and the demo.
 * Throws `AuthConfigError` on a bad secret or algorithm and `RangeError` on
 * invalid topics or lifetime.
 *
 * @example
 * mintToken({ secret, sub: 'alice', topics: ['builds.#', 'logs.#'], ttlSeconds: parseDuration('1h') });
 */
export function mintToken(options: MintOptions): string {
  const algorithm = options.algorithm ?? 'HS256';
  if (!HMAC_ALGORITHMS.includes(algorithm)) {
    throw new AuthConfigError(`tokens are minted with a shared secret: the algorithm must be one of ${HMAC_ALGORITHMS.join(', ')}, got "${algorithm}"`);
  }
  if (!options.secret) throw new AuthConfigError('cannot mint a token without a secret (TOPICGATE_JWT_SECRET)');
  options.topics.forEach((topic, i) => {
    const why = patternError(topic);
    if (why !== null) throw new RangeError(`topic ${i + 1} is not a valid pattern: ${why}`);
  });
  if (!Number.isSafeInteger(options.ttlSeconds) || options.ttlSeconds <= 0) {
    throw new RangeError(`a token lifetime must be a whole number of seconds greater than 0, got ${options.ttlSeconds}`);
  }
  return jwt.sign({ topics: [...options.topics] }, options.secret, {
    algorithm: algorithm as Algorithm,
    expiresIn: options.ttlSeconds,
    ...(options.sub !== undefined && { subject: options.sub }),
    ...(options.issuer && { issuer: options.issuer }),
    ...(options.audience && { audience: options.audience }),
  });
}

const DURATION = /^(\d+)\s*([smhd]?)$/i;
const SECONDS_PER_UNIT: Readonly<Record<string, number>> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * Parses a duration into seconds: a whole number of seconds (`3600`) or a
 * whole number with a unit (`90s`, `30m`, `1h`, `2d`). Throws a `RangeError`
 * that says what is accepted.
 *
 * @example
 * parseDuration('1h'); // 3600
 */
export function parseDuration(text: string): number {
  const match = DURATION.exec(String(text).trim());
  const seconds = match ? Number(match[1]) * SECONDS_PER_UNIT[match[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(seconds)) {
    throw new RangeError(`invalid duration "${text}": use whole seconds (3600) or a whole number with a unit: 90s, 30m, 1h, 2d`);
  }
  return seconds;
}
