/**
 * What an AMQP reply code means for whoever asked: worth retrying, or a
 * refusal that stands until an operator changes the broker. The code is the
 * broker's verdict; its reply text is for people and changes between RabbitMQ
 * versions, so nothing here decides on it (except which resource a 404 names,
 * which only the text says).
 */

export type Persistence = 'transient' | 'permanent';

export interface BrokerErrorClass {
  persistence: Persistence;
  meaning: string;
}

export const ReplyCode = {
  ContentTooLarge: 311,
  ConnectionForced: 320,
  InvalidPath: 402,
  AccessRefused: 403,
  NotFound: 404,
  ResourceLocked: 405,
  PreconditionFailed: 406,
  FrameError: 501,
  SyntaxError: 502,
  CommandInvalid: 503,
  ChannelError: 504,
  UnexpectedFrame: 505,
  ResourceError: 506,
  NotAllowed: 530,
  NotImplemented: 540,
  InternalError: 541,
} as const;

/** AMQP 0-9-1 §1.9 reply codes, as RabbitMQ uses them. */
const TABLE: Readonly<Record<number, BrokerErrorClass>> = {
  [ReplyCode.ContentTooLarge]: { persistence: 'permanent', meaning: 'the message is larger than the broker accepts' },
  [ReplyCode.ConnectionForced]: { persistence: 'transient', meaning: 'an operator or a node shutdown closed the connection; reconnecting helps' },
  [ReplyCode.InvalidPath]: { persistence: 'permanent', meaning: 'the virtual host does not exist' },
  [ReplyCode.AccessRefused]: { persistence: 'permanent', meaning: "the user's permissions do not allow it" },
  // Ours are declared before use: a 404 means deleted meanwhile (from outside, or a racing unsubscribe); declaring again can succeed.
  [ReplyCode.NotFound]: { persistence: 'transient', meaning: 'the queue or exchange does not exist (any more)' },
  // An exclusive queue still held by our previous connection until the broker notices it is dead.
  [ReplyCode.ResourceLocked]: { persistence: 'transient', meaning: 'another connection holds the exclusive queue' },
  [ReplyCode.PreconditionFailed]: { persistence: 'permanent', meaning: 'the queue or exchange exists with other arguments (type, durability, exclusivity, queue type)' },
  [ReplyCode.FrameError]: { persistence: 'permanent', meaning: 'a malformed frame (a client bug)' },
  [ReplyCode.SyntaxError]: { persistence: 'permanent', meaning: 'a malformed method (a client bug)' },
  [ReplyCode.CommandInvalid]: { persistence: 'permanent', meaning: 'a method not allowed in this state (a client bug)' },
  // A channel used while it was closing: the next channel works.
  [ReplyCode.ChannelError]: { persistence: 'transient', meaning: 'the channel was not open' },
  [ReplyCode.UnexpectedFrame]: { persistence: 'permanent', meaning: 'a frame out of order (a client bug)' },
  [ReplyCode.ResourceError]: { persistence: 'transient', meaning: 'the broker lacks resources for it right now' },
  [ReplyCode.NotAllowed]: { persistence: 'permanent', meaning: 'the broker does not allow it (e.g. a queue type refusing an argument)' },
  [ReplyCode.NotImplemented]: { persistence: 'permanent', meaning: 'the broker does not implement it' },
  [ReplyCode.InternalError]: { persistence: 'transient', meaning: 'the broker failed internally' },
};

/** No reply code: a socket error, a channel closed under us, a timeout. The broker did not say no. */
const WITHOUT_CODE: BrokerErrorClass = { persistence: 'transient', meaning: 'no reply code: the connection or channel failed' };
const UNKNOWN_CODE: BrokerErrorClass = { persistence: 'transient', meaning: 'a reply code this table does not know' };

/** The AMQP reply code of a channel or connection error (amqplib puts it on `code`). */
export function replyCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function classify(err: unknown): BrokerErrorClass {
  const code = replyCode(err);
  if (code === undefined) return WITHOUT_CODE;
  return TABLE[code] ?? UNKNOWN_CODE;
}

export function isPermanent(err: unknown): boolean {
  return classify(err).persistence === 'permanent';
}

/**
 * A 404 about this queue or exchange, not a channel closed by somebody
 * else's 404: only RabbitMQ's reply text names the resource ("no queue 'q' in vhost '/'").
 */
export function isNotFound(err: unknown, kind: 'queue' | 'exchange', name: string): boolean {
  return replyCode(err) === ReplyCode.NotFound && err instanceof Error && err.message.includes(`no ${kind} '${name}'`);
}

/**
 * A 404 for a queue that does exist, on a cluster node that is down
 * ("home node … of durable queue … is down or inaccessible"): it comes back
 * with its node.
 */
export function isQueueNodeDown(err: unknown, name: string): boolean {
  return replyCode(err) === ReplyCode.NotFound && !isNotFound(err, 'queue', name);
}
