/**
 * Configuration: environment variables `TOPICGATE_*`, each overridable by a
 * command-line flag named like the variable without the prefix, in kebab case
 * (`TOPICGATE_AMQP_URL` → `--amqp-url`). See docs/architecture.md §8.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { MAX_RESUME_FINGERPRINTS } from '@topicgate/shared';
import { parseDuration, type JwksOptions } from './auth/token-verifier.js';
import { largestResumeBytes } from './gateway/requests.js';
import { DEFAULT_RESUMABLE_PREFETCH } from './mq/connector.js';

/** pino's levels; anything else makes pino throw when the logger is created. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every setting, with its default and what it means; drives both env and flags. */
export const SETTINGS = {
  port: { help: 'HTTP and socket.io port', default: '8080' },
  host: { help: 'interface to listen on', default: '0.0.0.0' },
  'metrics-port': { help: 'port of the separate Prometheus /metrics listener, on the same interface; off: no metrics listener', default: '9464' },
  'amqp-url': { help: 'RabbitMQ URL, or a comma-separated list of cluster nodes tried in turn; unset: embedded broker' },
  exchange: { help: 'the topic exchange (declared, never deleted)', default: 'topicgate' },
  'gateway-id': { help: 'names this gateway\'s queues topicgate.<id>.<sub>; default: random per process' },
  'jwt-secret': { help: 'HMAC secret for HS* tokens' },
  'jwt-public-key': { help: 'PEM public key (or a path to one) for RS*/ES*/PS* tokens' },
  'jwt-jwks-url': { help: 'JWKS URL (https) whose public keys verify RS*/ES*/PS* tokens, chosen by kid; fetched again for an unknown kid at most every 30 s, and every 10 min' },
  'jwt-algorithms': { help: 'comma-separated allow-list of JWT algorithms', default: 'HS256' },
  'jwt-issuer': { help: 'required iss claim, when set' },
  'jwt-audience': { help: 'required aud claim, when set' },
  'jwt-max-ttl': { help: 'longest token lifetime accepted (exp − now and exp − iat), e.g. 1h, 24h; also how long a revocation is kept', default: '24h' },
  'max-subscriptions': { help: 'subscriptions per socket', default: '100' },
  'max-payload-bytes': { help: 'largest client event accepted; larger ones close the socket', default: '16384' },
  'subscribe-rate': { help: 'subscribes per second per socket (burst: the same number)', default: '50' },
  'max-connections-per-subject': { help: 'connections per token sub (tokens without sub are not counted); 0: no limit', default: '20' },
  'max-subscriptions-per-subject': { help: 'subscriptions (broker queues) per token sub over all of its connections; 0: no limit', default: '500' },
  'client-buffer-bytes': { help: 'deliveries waiting for one slow client before its messages are dropped and it gets resync "overflow"', default: '1048576' },
  'resume-window': { help: 'seconds a resumable subscription outlives an unexpected disconnect, its messages kept by the broker for the client to resume on any gateway; 0: off', default: '0' },
  'resume-backlog': { help: 'messages a resumable subscription\'s queue keeps for its client; past it the client reloads (resync "overflow")', default: '10000' },
  'resume-prefetch': { help: 'deliveries a resumable subscription has in flight to its client, unconfirmed (the broker\'s prefetch): fewer stall the stream on a slow link, more cost gateway memory per slow client', default: String(DEFAULT_RESUMABLE_PREFETCH) },
  'amqp-heartbeat': { help: 'AMQP heartbeat in seconds, 1 to 3600; a silent broker is detected within two intervals', default: '15' },
  'cors-origins': { help: 'comma-separated allowed browser origins, or * for any', default: '*' },
  'log-level': { help: `pino level: ${LOG_LEVELS.join(', ')}`, default: 'info' },
  'demo-chaos': { help: 'topicgate demo only: 1 to delay, reorder and duplicate the demo\'s messages' },
  'insecure-no-auth': { help: 'set to 1 to accept connections without a token (development only)' },
} as const satisfies Record<string, { help: string; default?: string }>;

export type SettingName = keyof typeof SETTINGS;
export type Settings = Partial<Record<SettingName, string>>;

export function envName(setting: SettingName): string {
  return `TOPICGATE_${setting.toUpperCase().replaceAll('-', '_')}`;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Reads settings from the environment, then lets flags override them.
 * Returns the positional arguments too (for `publish KEY JSON`).
 */
export function readSettings(argv: readonly string[], env: NodeJS.ProcessEnv, extraFlags: Record<string, { type: 'string' | 'boolean' }> = {}) {
  const options = Object.fromEntries(Object.keys(SETTINGS).map((name) => [name, { type: 'string' as const }]));
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options, ...extraFlags }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError(explainArgError(err as NodeJS.ErrnoException, [...Object.keys(options), ...Object.keys(extraFlags)]));
  }
  const settings: Settings = {};
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const value = (parsed.values[name] as string | undefined) ?? env[envName(name)];
    if (value !== undefined && value !== '') settings[name] = value;
  }
  return { settings, extra: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
}

/** parseArgs' messages are written for programmers; an unknown flag gets its likely intended name. */
function explainArgError(err: NodeJS.ErrnoException, flags: string[]): string {
  const unknown = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-{1,2}[^']+)'/.exec(err.message)?.[1] : undefined;
  if (!unknown) return `${err.message}. Run \`topicgate help\` for the list of flags.`;
  const name = unknown.replace(/^-+/, '').split('=')[0]!;
  const guesses = likelyMeant(name, flags).map((flag) => `--${flag}`);
  const hint = guesses.length > 0 ? `; did you mean ${guesses.join(' or ')}?` : '.';
  return `unknown flag ${unknown}${hint} Run \`topicgate help\` for the list of flags.`;
}

/** The flags a typo most likely meant: those it is the start of, else the nearest within two edits. */
function likelyMeant(name: string, flags: string[]): string[] {
  const prefixed = flags.filter((flag) => flag.startsWith(name));
  if (prefixed.length > 0) return prefixed;
  let best: { flag: string; distance: number } | undefined;
  for (const flag of flags) {
    const distance = editDistance(name, flag);
    if (distance <= 2 && (!best || distance < best.distance)) best = { flag, distance };
  }
  return best ? [best.flag] : [];
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

export interface TokenVerifierSettings {
  secret?: string;
  publicKey?: string;
  jwksUrl?: string;
  /** JWKS fetch limits (tests shorten them); production uses the defaults. */
  jwks?: JwksOptions;
  algorithms: string[];
  issuer?: string;
  audience?: string;
  /** Longest token lifetime, seconds. Default: 24 h. */
  maxTtlSeconds?: number;
}

export interface GatewayConfig {
  port: number;
  host: string;
  /** `null`: no metrics listener. 0: any free port. */
  metricsPort: number | null;
  /** Empty: the embedded broker. */
  amqpUrls: string[];
  exchange: string;
  gatewayId: string;
  /** `null`: auth is off (TOPICGATE_INSECURE_NO_AUTH=1), every pattern is allowed. */
  jwt: TokenVerifierSettings | null;
  maxSubscriptions: number;
  maxPayloadBytes: number;
  subscribesPerSecond: number;
  clientBufferBytes: number;
  amqpHeartbeatSeconds: number;
  /** 0: no limit. */
  maxConnectionsPerSubject: number;
  /** 0: no limit. */
  maxSubscriptionsPerSubject: number;
  /** Seconds; 0: resume is off. */
  resumeWindowSeconds: number;
  resumeBacklog: number;
  /** Unsettled deliveries per resumable consumer (the broker's prefetch). */
  resumePrefetch: number;
  /** `true`: any origin. */
  corsOrigins: string[] | true;
  logLevel: string;
}

function get(settings: Settings, name: SettingName): string | undefined {
  const spec: { help: string; default?: string } = SETTINGS[name];
  return settings[name] ?? spec.default;
}

/** `why`, when given, explains the range to the operator who hit its edge. */
function integer(settings: Settings, name: SettingName, min: number, max: number, why = ''): number {
  const raw = get(settings, name)!;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${envName(name)} (--${name}) must be an integer from ${min} to ${max}, got "${raw}"${why && `; ${why}`}`);
  }
  return value;
}

function logLevel(settings: Settings): string {
  const level = get(settings, 'log-level')!;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(`TOPICGATE_LOG_LEVEL (--log-level) must be one of ${LOG_LEVELS.join(', ')}; got "${level}"`);
  }
  return level;
}

/** TOPICGATE_JWT_MAX_TTL in seconds. */
function maxTtl(settings: Settings): number {
  const raw = get(settings, 'jwt-max-ttl')!;
  let seconds: number;
  try {
    seconds = parseDuration(raw);
  } catch (err) {
    throw new ConfigError(`TOPICGATE_JWT_MAX_TTL (--jwt-max-ttl): ${(err as Error).message}`);
  }
  if (seconds <= 0) throw new ConfigError(`TOPICGATE_JWT_MAX_TTL (--jwt-max-ttl) must be greater than 0, got "${raw}"`);
  return seconds;
}

function list(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Validates settings into a config, with errors that name the variable to fix. */
export function loadConfig(settings: Settings, { requireAuth = true } = {}): GatewayConfig {
  const gatewayId = get(settings, 'gateway-id') ?? randomBytes(4).toString('hex');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(gatewayId)) {
    throw new ConfigError(`TOPICGATE_GATEWAY_ID must be 1-64 letters, digits, "_" or "-" (it becomes part of queue names), got "${gatewayId}"`);
  }
  const amqpUrls = list(get(settings, 'amqp-url'));
  for (const url of amqpUrls) {
    if (!/^amqps?:\/\//.test(url)) throw new ConfigError(`TOPICGATE_AMQP_URL entries must start with amqp:// or amqps://, got "${url.replace(/\/\/[^@]*@/, '//***@')}"`);
  }
  const insecure = get(settings, 'insecure-no-auth') === '1';
  const secret = get(settings, 'jwt-secret');
  const publicKey = get(settings, 'jwt-public-key');
  const jwksUrl = get(settings, 'jwt-jwks-url');
  let jwt: TokenVerifierSettings | null = null;
  if (secret !== undefined || publicKey !== undefined || jwksUrl !== undefined) {
    jwt = {
      ...(secret !== undefined && { secret }),
      ...(publicKey !== undefined && { publicKey }),
      ...(jwksUrl !== undefined && { jwksUrl }),
      maxTtlSeconds: maxTtl(settings),
      algorithms: list(get(settings, 'jwt-algorithms')),
      ...(get(settings, 'jwt-issuer') !== undefined && { issuer: get(settings, 'jwt-issuer')! }),
      ...(get(settings, 'jwt-audience') !== undefined && { audience: get(settings, 'jwt-audience')! }),
    };
  } else if (!insecure && requireAuth) {
    throw new ConfigError(
      'no JWT key configured: set TOPICGATE_JWT_SECRET (HS256), TOPICGATE_JWT_PUBLIC_KEY or TOPICGATE_JWT_JWKS_URL, ' +
        'or TOPICGATE_INSECURE_NO_AUTH=1 to accept every connection (development only)',
    );
  }
  const cors = get(settings, 'cors-origins')!;
  const maxPayloadBytes = integer(settings, 'max-payload-bytes', 256, 100 * 1024 * 1024);
  const resumeWindowSeconds = integer(settings, 'resume-window', 0, 86_400);
  // At least twice the SDK's receipt batch (32), or a stream waits a second for each window. At most what a
  // resume may name: every delivery its client has not confirmed (a fingerprint each), which a client must be able to send.
  const resumePrefetch = integer(settings, 'resume-prefetch', 64, MAX_RESUME_FINGERPRINTS, 'fewer would stall a stream between the SDK\'s receipts (one at 32 unconfirmed)');
  if (resumeWindowSeconds > 0 && largestResumeBytes(resumePrefetch) > maxPayloadBytes) {
    throw new ConfigError(
      `TOPICGATE_RESUME_PREFETCH (--resume-prefetch) ${resumePrefetch}: a resume after a cut may carry ${largestResumeBytes(resumePrefetch)} bytes (a fingerprint per unconfirmed delivery), more than TOPICGATE_MAX_PAYLOAD_BYTES (${maxPayloadBytes}) lets a client send; lower the prefetch or raise the payload limit`,
    );
  }
  return {
    port: integer(settings, 'port', 0, 65535),
    host: get(settings, 'host')!,
    metricsPort: get(settings, 'metrics-port') === 'off' ? null : integer(settings, 'metrics-port', 0, 65535, 'or "off"'),
    amqpUrls,
    exchange: get(settings, 'exchange')!,
    gatewayId,
    jwt,
    maxSubscriptions: integer(settings, 'max-subscriptions', 1, 100_000),
    maxPayloadBytes,
    subscribesPerSecond: integer(settings, 'subscribe-rate', 1, 1_000_000),
    clientBufferBytes: integer(settings, 'client-buffer-bytes', 1024, 1024 * 1024 * 1024),
    // amqplib reads 0 as "heartbeats off": a broker that goes silent would never be noticed.
    amqpHeartbeatSeconds: integer(settings, 'amqp-heartbeat', 1, 3600, '0 would turn AMQP heartbeats off, so a silent broker would go unnoticed'),
    maxConnectionsPerSubject: integer(settings, 'max-connections-per-subject', 0, 1_000_000),
    maxSubscriptionsPerSubject: integer(settings, 'max-subscriptions-per-subject', 0, 100_000_000),
    // x-expires must be positive and at most 2^32-1 ms; a day is more than a resume needs.
    resumeWindowSeconds,
    resumeBacklog: integer(settings, 'resume-backlog', 1, 10_000_000),
    resumePrefetch,
    corsOrigins: cors.trim() === '*' ? true : list(cors),
    logLevel: logLevel(settings),
  };
}
