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
 * - A shared secret shorter than its hash (32 bytes for HS256) is refused:
 *   HS* tokens live in browsers, and anyone holding one can guess a short
 *   secret offline.
 * - A JWKS (keys chosen by `kid`) serves public-key algorithms only; fetching
 *   it is bounded in rate whatever `kid`s clients make up (see `JwksKeys`).
 * - `exp` is required and at most `maxTtlSeconds` away; `iat`, when present,
 *   is not in the future (beyond `CLOCK_SKEW_SECONDS`) nor further than
 *   `maxTtlSeconds` from `exp`. So a token accepted now was issued, and dies,
 *   within one maximum lifetime — what makes revocation by `iat` sound.
 * - `iss` and `aud` are checked when configured.
 * - Error messages say what is wrong with the token, never anything about the
 *   key material.
 */
import { createPublicKey, createSecretKey, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, customFetch, errors as joseErrors, type FetchImplementation } from 'jose';
import jwt, { type Algorithm, type JwtPayload } from 'jsonwebtoken';
import { ErrorCode, patternError } from '@topicgate/shared';

/** A token longer than this is refused before it is parsed. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

/** Default longest token lifetime (`TOPICGATE_JWT_MAX_TTL`): 24 hours. */
export const DEFAULT_MAX_TTL_SECONDS = 24 * 3600;

/** How far an issuer's clock may run ahead of the gateway's: for `iat`, and for `exp` against the maximum lifetime. */
export const CLOCK_SKEW_SECONDS = 60;

/** JWKS fetching. The defaults suit production; tests shorten them. */
export interface JwksOptions {
  /**
   * No request to the endpoint within this long of the previous one,
   * successful or not: a token with an unknown `kid` makes the gateway fetch
   * the key set again only once this has passed. Default: 30 s.
   */
  cooldownMs?: number;
  /** A fetched key set is used for at most this long, then fetched again (keys removed from it stop working). Default: 10 min. */
  maxAgeMs?: number;
  /** A fetch that takes longer fails. Default: 5 s. */
  timeoutMs?: number;
}

export const JWKS_DEFAULTS: Required<JwksOptions> = { cooldownMs: 30_000, maxAgeMs: 10 * 60_000, timeoutMs: 5_000 };

/** Where the verifier reports what operators need to know (JWKS fetches and their failures). */
export interface VerifierLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface TokenVerifierConfig {
  /** Shared secret, for HS256/HS384/HS512 (`TOPICGATE_JWT_SECRET`); at least as many bytes as the hash (32 for HS256). */
  secret?: string;
  /** PEM public key, or the path of a file holding one, for RS*, PS*, ES* (`TOPICGATE_JWT_PUBLIC_KEY`). Read when the verifier is created. */
  publicKey?: string;
  /** URL of a JSON Web Key Set whose public keys verify tokens, chosen by `kid` (`TOPICGATE_JWT_JWKS_URL`); https, or http on this machine only. */
  jwksUrl?: string;
  /** JWKS fetching limits; only with `jwksUrl`. */
  jwks?: JwksOptions;
  /** The `alg` values accepted; `none` is never accepted. Default: `['HS256']`. */
  algorithms?: readonly string[];
  /** Required `iss` claim, when set. */
  issuer?: string;
  /** Required `aud` claim (or one of the token's audiences), when set. */
  audience?: string;
  /** Longest token lifetime accepted, in seconds (`TOPICGATE_JWT_MAX_TTL`). Default: `DEFAULT_MAX_TTL_SECONDS`. */
  maxTtlSeconds?: number;
  /** Default: nowhere. */
  log?: VerifierLog;
}

/** What the gateway needs from a verified token. */
export interface VerifiedToken {
  /** Who holds the token (the `sub` claim), for logs. */
  sub: string | undefined;
  /** The patterns the holder may subscribe within; `[]` when the token has no `topics` claim. */
  topics: string[];
  /** Expiry, in seconds since the UNIX epoch. */
  exp: number;
  /** When the token was issued (seconds since the epoch), if it says; revocations compare it. */
  iat: number | undefined;
}

export interface TokenVerifier {
  /**
   * Verifies a token from a handshake or a `refresh`. Rejects with `AuthError`
   * when it is not acceptable. Asynchronous: with a JWKS, the key may have to
   * be fetched.
   */
  verify(token: unknown): Promise<VerifiedToken>;
  /** With a JWKS: fetches the key set now (at start), so the first handshakes need not wait; failures are logged. */
  prefetch(): Promise<void>;
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
 * const { sub, topics, exp } = await verifier.verify(socket.handshake.auth.token);
 */
export function createTokenVerifier(config: TokenVerifierConfig): TokenVerifier {
  const algorithms = checkAlgorithms(config.algorithms ?? ['HS256']);
  const source = loadKey(config, algorithms);
  const issuer = config.issuer || undefined; // an empty variable means "not configured"
  const audience = config.audience || undefined;
  const maxTtl = config.maxTtlSeconds ?? DEFAULT_MAX_TTL_SECONDS;
  if (!Number.isSafeInteger(maxTtl) || maxTtl <= 0) {
    throw new AuthConfigError(`the longest token lifetime (TOPICGATE_JWT_MAX_TTL) must be a whole number of seconds greater than 0, got ${maxTtl}`);
  }
  const jwks = source instanceof URL ? new JwksKeys(source, { ...JWKS_DEFAULTS, ...config.jwks }, config.log) : null;

  return {
    async verify(token: unknown): Promise<VerifiedToken> {
      if (token === undefined || token === null || token === '') throw new AuthError('token is missing');
      if (typeof token !== 'string') throw new AuthError('token is not a string');
      if (token.length > MAX_TOKEN_LENGTH) {
        throw new AuthError(`token is too large (${token.length} characters; at most ${MAX_TOKEN_LENGTH})`);
      }

      // Look at the header first, to refuse `none` and foreign algorithms with a
      // message that says so (jsonwebtoken would only say "invalid algorithm"),
      // before any key is looked up.
      const header = readHeader(token);
      const alg = header.alg;
      if (alg.toLowerCase() === 'none') throw new AuthError('algorithm none is not allowed');
      if (!algorithms.includes(alg as Algorithm)) {
        throw new AuthError(`token algorithm ${alg} is not allowed (allowed: ${algorithms.join(', ')})`);
      }
      const key = jwks ? await jwks.keyFor(alg, header.kid) : (source as KeyObject);

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
      return readClaims(payload, maxTtl);
    },
    prefetch: () => jwks?.prefetch() ?? Promise.resolve(),
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

/** The static key, or the URL of the JWKS the keys come from. */
function loadKey(config: TokenVerifierConfig, algorithms: readonly string[]): KeyObject | URL {
  const secret = config.secret || undefined;
  const publicKey = config.publicKey || undefined;
  const jwksUrl = config.jwksUrl || undefined;
  if (secret !== undefined && publicKey !== undefined) {
    throw new AuthConfigError('both a JWT secret and a JWT public key are configured; set only the one your token issuer uses');
  }
  if (jwksUrl !== undefined && (secret !== undefined || publicKey !== undefined)) {
    const other = secret !== undefined ? 'TOPICGATE_JWT_SECRET' : 'TOPICGATE_JWT_PUBLIC_KEY';
    throw new AuthConfigError(
      `both TOPICGATE_JWT_JWKS_URL and ${other} are set; a gateway verifies tokens with one source of keys: ` +
        `keep the JWKS URL (its public keys, chosen by kid) and unset ${other}, or the other way round`,
    );
  }
  const listed = algorithms.join(', ');

  if (algorithms.every((alg) => HMAC_ALGORITHMS.includes(alg))) {
    if (jwksUrl !== undefined) {
      throw new AuthConfigError(
        `TOPICGATE_JWT_JWKS_URL is set but the JWT algorithms (${listed}) use a shared secret, which a JWKS never serves; ` +
          'set TOPICGATE_JWT_ALGORITHMS to the public-key algorithm(s) your issuer signs with, e.g. RS256 or ES256',
      );
    }
    if (publicKey !== undefined) {
      throw new AuthConfigError(
        `a JWT public key is configured but the JWT algorithms (${listed}) use a shared secret; ` +
          'set the algorithms to the public-key algorithm your issuer signs with (e.g. RS256), or configure a secret instead',
      );
    }
    if (secret === undefined) throw new AuthConfigError(`the JWT algorithms (${listed}) need a shared secret (TOPICGATE_JWT_SECRET)`);
    checkSecretLength(secret, algorithms, 'TOPICGATE_JWT_SECRET is');
    // A KeyObject, so that jsonwebtoken cannot reinterpret the string as a PEM key.
    return createSecretKey(Buffer.from(secret, 'utf8'));
  }
  if (jwksUrl !== undefined) return checkJwksUrl(jwksUrl);

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

/** Bytes of key an HMAC algorithm needs: at least its hash's size (RFC 7518 §3.2). */
const HMAC_KEY_BYTES: Readonly<Record<string, number>> = { HS256: 32, HS384: 48, HS512: 64 };

/**
 * A short HMAC secret can be found offline from any one token, and tokens
 * live in browsers. `what` names the secret in the message ("TOPICGATE_JWT_SECRET is").
 */
function checkSecretLength(secret: string, algorithms: readonly string[], what: string): void {
  const bytes = Buffer.byteLength(secret, 'utf8');
  const needed = Math.max(...algorithms.map((alg) => HMAC_KEY_BYTES[alg] ?? 32));
  if (bytes >= needed) return;
  const strictest = algorithms.find((alg) => HMAC_KEY_BYTES[alg] === needed) ?? 'HS256';
  throw new AuthConfigError(
    `${what} ${bytes} byte${bytes === 1 ? '' : 's'}; ${strictest} needs a secret of at least ${needed} bytes of random data ` +
      '(anyone holding a token can try to guess a shorter one offline). Make one with `openssl rand -hex 32`',
  );
}

/** The JWKS URL: parsed, and https unless it points at this machine (keys fetched in the clear could be replaced on the way). */
function checkJwksUrl(value: string): URL {
  const shown = value.length > 200 ? `${value.slice(0, 200)}…` : value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new AuthConfigError(`TOPICGATE_JWT_JWKS_URL is not a URL: "${shown}"`);
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && loopback)) return url;
  throw new AuthConfigError(
    `TOPICGATE_JWT_JWKS_URL must be an https:// URL (http:// only for localhost), got "${shown}": ` +
      'keys fetched without TLS can be replaced on the way, and with them any token forged',
  );
}

/**
 * The keys of a JWKS endpoint, by `kid`. jose's remote key set does the
 * fetching, caching and key selection: it keeps the whole set for
 * `maxAgeMs`, fetches it again when a token names a `kid` it lacks (at most
 * once per `cooldownMs` after a successful fetch), shares one fetch between
 * concurrent lookups, refuses HMAC algorithms and keys whose type or `use`
 * does not fit, and follows no redirects. What it does not bound is retries
 * after a failed fetch; the gate below does: no request to the endpoint
 * within `cooldownMs` of the previous one, whatever the outcome.
 */
class JwksKeys {
  private readonly remote: ReturnType<typeof createRemoteJWKSet>;
  private readonly converted = new WeakMap<object, KeyObject>();
  private lastRequest = -Infinity;
  private lastFailure: string | null = null;

  constructor(
    private readonly url: URL,
    private readonly options: Required<JwksOptions>,
    private readonly log: VerifierLog | undefined,
  ) {
    if (options.maxAgeMs < options.cooldownMs) throw new AuthConfigError('the JWKS cache max age must not be shorter than its cooldown');
    const gated: FetchImplementation = async (input, init) => {
      const now = Date.now();
      if (now - this.lastRequest < options.cooldownMs) throw new JwksCoolingDown();
      this.lastRequest = now;
      try {
        const response = await fetch(input, init);
        if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
        this.lastFailure = null;
        this.log?.info({ jwksUrl: this.url.href }, 'fetched the JWKS');
        return response;
      } catch (err) {
        this.lastFailure = (err as Error).message;
        this.log?.warn({ jwksUrl: this.url.href, err: this.lastFailure }, `could not fetch the JWKS; tokens whose key is not cached are refused until it works (next try in ${options.cooldownMs / 1000} s at the earliest)`);
        throw err;
      }
    };
    this.remote = createRemoteJWKSet(url, {
      cooldownDuration: options.cooldownMs,
      cacheMaxAge: options.maxAgeMs,
      timeoutDuration: options.timeoutMs,
      [customFetch]: gated,
    });
  }

  async prefetch(): Promise<void> {
    await this.remote.reload().catch(() => undefined); // logged by the gate
  }

  /** The public key for a token's `alg` and `kid`; an `AuthError` saying why there is none. */
  async keyFor(alg: string, kid: string | undefined): Promise<KeyObject> {
    const named = kid === undefined ? 'the token names no key (no kid)' : `kid "${kid.length > 64 ? `${kid.slice(0, 64)}…` : kid}"`;
    let key: Awaited<ReturnType<typeof this.remote>>;
    try {
      key = await this.remote({ alg, ...(kid !== undefined && { kid }) });
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey) throw new AuthError(`no key in the JWKS matches the token (${named}, ${alg})`);
      if (err instanceof joseErrors.JWKSMultipleMatchingKeys) throw new AuthError(`several keys in the JWKS fit ${alg} and the token names none (no kid); tokens must carry the kid of their key`);
      if (err instanceof joseErrors.JOSENotSupported) throw new AuthError(`the JWKS has no usable key for ${alg}`);
      if (!(err instanceof JwksCoolingDown) && !this.lastFailure) this.log?.warn({ jwksUrl: this.url.href, err: (err as Error).message }, 'the JWKS cannot be used');
      throw new AuthError(`the token's key (${named}) cannot be looked up: the JWKS endpoint is unavailable; retry later`);
    }
    let converted = this.converted.get(key);
    if (!converted) {
      converted = KeyObject.from(key);
      this.converted.set(key, converted);
    }
    // jose matched the key type to alg already; checked again, since a wrong pairing would be an algorithm confusion.
    if (!(PUBLIC_KEY_ALGORITHMS.get(alg) ?? []).includes(converted.asymmetricKeyType ?? '')) {
      throw new AuthError(`the JWKS key for ${named} does not fit ${alg}`);
    }
    return converted;
  }
}

/** The gate refused a request to the JWKS endpoint: the previous one was too recent. */
class JwksCoolingDown extends Error {
  override readonly name = 'JwksCoolingDown';
  constructor() {
    super('the JWKS was requested moments ago');
  }
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

/** The `alg` and `kid` of a token's header, or an `AuthError` when it is not a JWT at all. */
function readHeader(token: string): { alg: string; kid: string | undefined } {
  let decoded: jwt.Jwt | null;
  try {
    decoded = jwt.decode(token, { complete: true });
  } catch {
    decoded = null;
  }
  const alg: unknown = decoded?.header.alg;
  if (typeof alg !== 'string') throw new AuthError('token is malformed: not a JSON Web Token');
  const kid: unknown = decoded?.header.kid;
  if (kid !== undefined && typeof kid !== 'string') throw new AuthError('token header kid is not a string');
  return { alg, kid };
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

function readClaims(payload: string | JwtPayload, maxTtl: number): VerifiedToken {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new AuthError('token payload is not a JSON object');
  }
  // jsonwebtoken checks `exp` only when present; tokens that never expire are refused.
  if (payload.exp === undefined) throw new AuthError('token has no exp claim');
  if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) throw new AuthError('token exp claim is not a number');
  const { exp, iat } = payload;
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat))) throw new AuthError('token iat claim is not a number');
  const now = Date.now() / 1000;
  if (iat !== undefined && iat > now + CLOCK_SKEW_SECONDS) {
    throw new AuthError(`token was issued in the future (iat ${when(iat)}); check the clock of the token issuer`);
  }
  if (exp > now + maxTtl + CLOCK_SKEW_SECONDS) {
    throw new AuthError(`token expires too far in the future: ${when(exp)}; this gateway accepts tokens that live at most ${formatDuration(maxTtl)}`);
  }
  if (iat !== undefined && exp - iat > maxTtl) {
    throw new AuthError(`token lifetime (exp − iat) of ${formatDuration(exp - iat)} exceeds the maximum of ${formatDuration(maxTtl)}`);
  }
  if (payload.sub !== undefined && typeof payload.sub !== 'string') throw new AuthError('token sub claim is not a string');
  return { sub: payload.sub, topics: readTopics(payload['topics']), exp, iat };
}

/** A claim's time for a message; also for times no Date can hold (exp: 1e300). */
function when(seconds: number): string {
  return Math.abs(seconds) <= 8.64e12 ? new Date(seconds * 1000).toISOString() : `${seconds} seconds after 1970`;
}

/** `86400` → `24h`, `5400` → `90m`, `45` → `45s`. */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
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
  checkSecretLength(options.secret, [algorithm], 'cannot mint a token: the secret (TOPICGATE_JWT_SECRET) is');
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
