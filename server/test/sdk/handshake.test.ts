/**
 * The SDK's handshake against a real socket.io server: however attempts
 * overlap (a slow getToken, disconnect() and connect() meanwhile), one client
 * is one connection on the server.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient, type Client } from '@topicgate/client';
import { Server } from 'socket.io';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

let http: HttpServer;
let io: Server;
let url: string;
let transports: number;
let sockets: number;
const clients: Client[] = [];

beforeEach(async () => {
  http = createServer();
  io = new Server(http);
  transports = 0;
  sockets = 0;
  io.engine.on('connection', () => transports++);
  io.on('connection', (socket) => {
    sockets++;
    socket.on('subscribe', (_request: unknown, ack: (result: unknown) => void) => ack({ ok: true, id: `s${sockets}` }));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await new Promise<void>((resolve) => io.close(() => resolve()));
});

describe('the SDK handshake', () => {
  it('opens one connection when a slow getToken outlives the attempt that asked for it', async () => {
    let release: (token: string) => void = () => undefined;
    const c = createClient({ url, transports: ['websocket'], getToken: () => new Promise<string>((resolve) => (release = resolve)) });
    clients.push(c);
    c.on('error', () => undefined);
    await vi.waitFor(() => expect(transports).toBe(1)); // the first attempt waits for its token
    c.disconnect();
    c.connect();
    await vi.waitFor(() => expect(transports).toBe(2)); // so does the second, on a new transport
    release('a-token');

    const acked = new Promise<void>((resolve) => c.subscribe('builds.#', () => undefined).on('subscribed', () => resolve()));
    await acked; // a round trip behind any second CONNECT on the same transport
    expect(sockets).toBe(1);
    expect(io.of('/').sockets.size).toBe(1);
  });
});
