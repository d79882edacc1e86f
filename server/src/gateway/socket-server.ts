/**
 * The socket.io transport: handshake authentication, then one ClientSession
 * per connection. Incoming events are untyped on purpose (clients are
 * untrusted and every payload is validated); outgoing events are typed by the
 * protocol.
 */
import type { Server as HttpServer } from 'node:http';
import { ErrorCode, type ConnectErrorData, type ServerToClientEvents } from '@topicgate/shared';
import { Server, type DefaultEventsMap } from 'socket.io';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { MqConnector } from '../mq/connector.js';
import type { Access, Principal } from './access.js';
import { ClientSession, type SessionLimits } from './client-session.js';

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
  /** Connections per token `sub`; 0: no limit. */
  maxConnectionsPerSubject: number;
}

export type GatewaySocketServer = Server<DefaultEventsMap, ServerToClientEvents, DefaultEventsMap, { principal: Principal }>;

export function createSocketServer(http: HttpServer, options: SocketServerOptions) {
  const { mq, access, limits, metrics, log } = options;
  const io: GatewaySocketServer = new Server(http, {
    maxHttpBufferSize: options.maxPayloadBytes,
    cors: { origin: options.corsOrigins },
    // CORS headers only guard HTTP requests; a page may open a WebSocket to
    // any origin. Refuse browsers (the only senders of Origin) from elsewhere.
    allowRequest: (req, callback) => {
      const origin = req.headers.origin;
      const allowed = options.corsOrigins === true || origin === undefined || options.corsOrigins.includes(origin);
      if (!allowed) log.info({ address: req.socket.remoteAddress, origin }, 'refused a connection from an origin not in TOPICGATE_CORS_ORIGINS');
      callback(allowed ? null : 'origin not allowed', allowed);
    },
    serveClient: false,
  });
  const sessions = new Set<ClientSession>();
  let counter = 0;
  const nextSubscriptionId = () => `s${(++counter).toString(36)}`;

  const connectionsPerSubject = new Map<string, number>();
  const refuse = (next: (err?: Error) => void, data: ConnectErrorData, address: string) => {
    log.info({ address, code: data.code, reason: data.message }, 'refused a handshake');
    next(Object.assign(new Error(data.message), { data }));
  };

  io.use((socket, next) => {
    const address = socket.handshake.address;
    let principal: Principal;
    try {
      principal = access.verify((socket.handshake.auth as { token?: unknown } | undefined)?.token);
    } catch (err) {
      return refuse(next, { code: ErrorCode.Unauthorized, message: (err as Error).message }, address);
    }
    const { maxConnectionsPerSubject } = options;
    const subject = principal.sub ?? '';
    if (maxConnectionsPerSubject > 0 && (connectionsPerSubject.get(subject) ?? 0) >= maxConnectionsPerSubject) {
      const message = `at most ${maxConnectionsPerSubject} connections per token subject; close another tab or connection first`;
      return refuse(next, { code: ErrorCode.LimitExceeded, message }, address);
    }
    socket.data.principal = principal;
    next();
  });

  io.on('connection', (socket) => {
    const subject = socket.data.principal.sub ?? '';
    connectionsPerSubject.set(subject, (connectionsPerSubject.get(subject) ?? 0) + 1);
    const session = new ClientSession(socket, socket.data.principal, { mq, access, limits, metrics, log, nextSubscriptionId });
    sessions.add(session);
    socket.on('disconnect', () => {
      sessions.delete(session);
      const left = (connectionsPerSubject.get(subject) ?? 1) - 1;
      if (left > 0) connectionsPerSubject.set(subject, left);
      else connectionsPerSubject.delete(subject);
    });
  });

  return {
    io,
    /** Ends every subscription with `shutdown`, deletes their queues and disconnects every client. */
    async shutdown(): Promise<void> {
      await Promise.all([...sessions].map((session) => session.shutdown()));
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}
