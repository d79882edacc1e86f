/**
 * The socket.io transport: handshake authentication, then one ClientSession
 * per connection. Incoming events are untyped on purpose (clients are
 * untrusted and every payload is validated); outgoing events are typed by the
 * protocol.
 */
import type { Server as HttpServer } from 'node:http';
import { ErrorCode, ServerEvent, type ConnectErrorData, type ServerToClientEvents } from '@topicgate/shared';
import { Server, type DefaultEventsMap, type Socket } from 'socket.io';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { MqConnector } from '../mq/connector.js';
import type { Access, Principal } from './access.js';
import { ClientSession, type ResumeSettings, type SessionLimits } from './client-session.js';
import { PerSubjectLimit, RefusalLog, truncate } from './handshake.js';

export interface SocketServerOptions {
  mq: MqConnector;
  access: Access;
  limits: SessionLimits;
  metrics: Metrics;
  log: Logger;
  gatewayId: string;
  /** Largest client event in bytes; larger ones close the socket (engine.io's maxHttpBufferSize). */
  maxPayloadBytes: number;
  /** Allowed browser origins; `true`: any. */
  corsOrigins: string[] | true;
  /** Stopping: new connections are refused (existing ones are ended by `shutdown`). */
  isDraining: () => boolean;
  /** Connections per token `sub`; 0: no limit. */
  maxConnectionsPerSubject: number;
  /** Subscriptions per token `sub`, over all of its connections; 0: no limit. */
  maxSubscriptionsPerSubject: number;
  /** Null: no resume window. */
  resume: ResumeSettings | null;
}

export type GatewaySocketServer = Server<DefaultEventsMap, ServerToClientEvents, DefaultEventsMap, { principal: Principal }>;
type GatewaySocket = Socket<DefaultEventsMap, ServerToClientEvents, DefaultEventsMap, { principal: Principal }>;

/** Handshakes one connection may make in all (a client rejoining after its socket.io socket was disconnected); past that it is closed. */
export const MAX_JOINS_PER_CONNECTION = 10;

/** Handshakes one connection may fail before it is closed. */
export const MAX_FAILED_HANDSHAKES = 3;

/**
 * How long a connection may stay without completing the socket.io handshake
 * (socket.io's default is 45 s): a client that connects and never sends its
 * CONNECT packet holds a socket and memory meanwhile.
 */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export function createSocketServer(http: HttpServer, options: SocketServerOptions) {
  const { mq, access, limits, metrics, log } = options;
  const refusals = new RefusalLog(log);
  const io: GatewaySocketServer = new Server(http, {
    maxHttpBufferSize: options.maxPayloadBytes,
    cors: { origin: options.corsOrigins },
    // CORS headers only guard HTTP requests; a page may open a WebSocket to
    // any origin. Refuse browsers (the only senders of Origin) from elsewhere.
    allowRequest: (req, callback) => {
      // Stopping: a new connection would be cut at once. Refused, the client retries, and the balancer picks another gateway.
      if (options.isDraining()) return callback('the gateway is shutting down; reconnect', false);
      const origin = req.headers.origin;
      const allowed = options.corsOrigins === true || origin === undefined || options.corsOrigins.includes(origin);
      if (!allowed) refusals.refused({ address: req.socket.remoteAddress ?? '', code: 'origin_not_allowed', reason: `origin ${truncate(String(origin))} is not in TOPICGATE_CORS_ORIGINS` });
      callback(allowed ? null : 'origin not allowed', allowed);
    },
    serveClient: false,
    connectTimeout: HANDSHAKE_TIMEOUT_MS,
  });
  const sessions = new Set<ClientSession>();
  const sessionOf = new WeakMap<object, ClientSession>();
  let counter = 0;
  const nextSubscriptionId = () => `s${(++counter).toString(36)}`;

  const connectionsPerSubject = new PerSubjectLimit(options.maxConnectionsPerSubject);
  const subscriptionsPerSubject = new PerSubjectLimit(options.maxSubscriptionsPerSubject);
  /** Namespace joins per underlying connection, successful or not. */
  const joinsPerConnection = new WeakMap<object, number>();
  /** Failed handshakes per underlying connection: a client retrying on one connection is cut off. */
  const failures = new WeakMap<object, number>();
  const refuse = (socket: GatewaySocket, next: (err?: Error) => void, data: ConnectErrorData) => {
    const message = truncate(data.message);
    refusals.refused({ address: socket.handshake.address, code: data.code, reason: message });
    next(Object.assign(new Error(message), { data: { ...data, message } }));
    const failed = (failures.get(socket.conn) ?? 0) + 1;
    failures.set(socket.conn, failed);
    // After the connect_error has gone out: the client learns why, then loses the connection.
    if (failed >= MAX_FAILED_HANDSHAKES) setImmediate(() => socket.conn.close());
  };

  io.use(async (socket, next) => {
    // socket.io lets one connection join the namespace again and again (CONNECT, DISCONNECT, …): each costs a token check and a session.
    const joins = (joinsPerConnection.get(socket.conn) ?? 0) + 1;
    joinsPerConnection.set(socket.conn, joins);
    if (joins > MAX_JOINS_PER_CONNECTION) {
      socket.conn.close();
      return next(new Error('too many handshakes on one connection'));
    }
    let principal: Principal;
    try {
      principal = await access.verify((socket.handshake.auth as { token?: unknown } | undefined)?.token);
    } catch (err) {
      return refuse(socket, next, { code: ErrorCode.Unauthorized, message: (err as Error).message });
    }
    // The connection may have gone while the key was being fetched: then neither 'close' nor 'disconnect' would come to release a slot.
    if (socket.conn.readyState !== 'open') return next(new Error('the connection closed during the handshake'));
    const release = connectionsPerSubject.reserve(principal.sub);
    if (!release) {
      const message = `at most ${options.maxConnectionsPerSubject} connections per token subject; close another tab or connection first`;
      return refuse(socket, next, { code: ErrorCode.LimitExceeded, message });
    }
    // Released exactly once: when the socket disconnects, or when its connection closes before it ever connected.
    const conn = socket.conn;
    conn.once('close', release);
    socket.once('disconnect', () => {
      conn.off('close', release);
      release();
    });
    socket.data.principal = principal;
    next();
  });

  io.on('connection', (socket) => {
    const session = new ClientSession(socket, socket.data.principal, { mq, access, limits, metrics, log, nextSubscriptionId, subscriptionsPerSubject, resume: options.resume });
    sessions.add(session);
    sessionOf.set(socket, session);
    socket.on('disconnect', () => sessions.delete(session));
  });

  return {
    io,
    /**
     * An operator revoked `sub` (docs/protocol.md §10.5): each of its sockets
     * gets `revoked`, then is disconnected, which ends its subscriptions and
     * deletes their queues. Returns how many sockets there were.
     */
    revokeSubject(sub: string, message: string): number {
      let count = 0;
      for (const socket of io.of('/').sockets.values()) {
        if (socket.data.principal?.sub !== sub) continue;
        count++;
        socket.emit(ServerEvent.Revoked, { code: ErrorCode.Revoked, message });
        // Its queues go, resumable ones too: the subject's access is gone. engine.io writes the notice before it closes.
        sessionOf.get(socket)?.disconnect('ended');
      }
      return count;
    },
    /** Ends every subscription with `shutdown`, deletes their queues and disconnects every client. */
    async shutdown(): Promise<void> {
      await Promise.all([...sessions].map((session) => session.shutdown()));
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}
