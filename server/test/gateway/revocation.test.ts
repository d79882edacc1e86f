/**
 * Fleet-wide revocation (issue 11): `topicgate revoke --sub alice` ends every
 * connection of alice on every gateway sharing the broker — here two
 * `topicgate serve` processes on one exchange — tells each socket why
 * (`revoked`), deletes its queues, and refuses alice's tokens issued before
 * the revocation; bob is untouched, and a token minted afterwards works.
 * Carried by the control exchange `<exchange>.control`; the control consumer
 * comes back after its broker connection is cut.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { ClientEvent, type ConnectErrorData } from '@topicgate/shared';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token-verifier.js';
import { closeConnections, deleteGatewayExchanges, eventually, listQueues, publishRaw, requireBroker, TEST_AMQP_URL, uniqueName } from '../support/broker.js';
import { CLI_PATH, spawnGateway, type ChildGateway } from '../support/child-gateway.js';
import { connectClient, type TestClient } from '../support/gateway.js';
import { Inbox } from '../support/inbox.js';

const SECRET = randomBytes(32).toString('hex');
const exchange = uniqueName('topicgate-revoke-test');
let g1: ChildGateway;
let g2: ChildGateway;
const clients: TestClient[] = [];

const token = (sub: string) => mintToken({ secret: SECRET, sub, topics: ['#'], ttlSeconds: 600 });

interface Watched {
  client: TestClient;
  revoked: Inbox<unknown>;
  disconnects: Inbox<string>;
}
async function connect(gateway: ChildGateway, jwt: string): Promise<Watched> {
  const client = await connectClient(gateway.url, jwt);
  clients.push(client);
  const revoked = new Inbox<unknown>();
  const disconnects = new Inbox<string>();
  client.socket.on('revoked' as never, revoked.push);
  client.socket.on('disconnect', disconnects.push);
  return { client, revoked, disconnects };
}

async function refusal(gateway: ChildGateway, jwt: string): Promise<ConnectErrorData> {
  const socket = io(gateway.url, { auth: { token: jwt }, transports: ['websocket'], reconnection: false, forceNew: true });
  try {
    return await new Promise((resolve, reject) => {
      socket.once('connect', () => reject(new Error(`${gateway.url} accepted the token`)));
      socket.once('connect_error', (err: Error & { data?: ConnectErrorData }) => resolve(err.data!));
    });
  } finally {
    socket.close();
  }
}

async function revoke(sub: string): Promise<string> {
  const { stderr } = await promisify(execFile)(process.execPath, [CLI_PATH, 'revoke', '--sub', sub], {
    env: { ...process.env, TOPICGATE_AMQP_URL: TEST_AMQP_URL, TOPICGATE_EXCHANGE: exchange },
  });
  return stderr;
}

/** Until the clock is in a later whole second than now: `iat` has whole seconds, and a revocation refuses its own second. */
async function nextSecond(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 20));
}

beforeAll(async () => {
  await requireBroker();
  const env = { TOPICGATE_EXCHANGE: exchange, TOPICGATE_JWT_SECRET: SECRET, TOPICGATE_INSECURE_NO_AUTH: '' };
  [g1, g2] = await Promise.all([spawnGateway(env), spawnGateway(env)]);
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.close();
  for (const g of [g1, g2]) g?.process.kill('SIGKILL');
  await deleteGatewayExchanges(exchange);
});

describe('topicgate revoke --sub alice, with two gateways on one broker', () => {
  let oldAliceToken: string;

  it('disconnects alice on both gateways with the reason and deletes her queues; bob keeps receiving', async () => {
    oldAliceToken = token('alice');
    const alice1 = await connect(g1, oldAliceToken);
    const alice2 = await connect(g2, oldAliceToken);
    const bob = await connect(g1, token('bob'));
    const a1 = await alice1.client.mustSubscribe('alice.#');
    const a2 = await alice2.client.mustSubscribe('alice.#');
    const b1 = await bob.client.mustSubscribe('bob.#');
    expect(await listQueues(`${g1.queuePrefix}${a1}`)).toHaveLength(1);
    expect(await listQueues(`${g2.queuePrefix}${a2}`)).toHaveLength(1);

    const printed = await revoke('alice');
    expect(printed).toContain('alice');

    for (const alice of [alice1, alice2]) {
      const [notice] = await alice.revoked.waitForCount(1);
      expect(notice).toEqual({ code: 'revoked', message: expect.stringMatching(/revoked/) });
      expect(await alice.disconnects.waitForCount(1)).toEqual(['io server disconnect']);
    }
    await eventually(async () => (await listQueues(`${g1.queuePrefix}${a1}`)).length === 0, 'alice\'s queue on gateway 1 deleted');
    await eventually(async () => (await listQueues(`${g2.queuePrefix}${a2}`)).length === 0, 'alice\'s queue on gateway 2 deleted');

    expect(bob.client.socket.connected).toBe(true);
    expect(bob.revoked.items).toEqual([]);
    expect(await listQueues(`${g1.queuePrefix}${b1}`)).toHaveLength(1);
    await publishRaw(exchange, 'bob.1', '{"n":1}', { contentType: 'application/json' });
    expect((await bob.client.messages.waitFor((m) => m.id === b1)).body).toEqual({ n: 1 });
  });

  it('refuses alice\'s reconnect with her old token on both gateways', async () => {
    for (const g of [g1, g2]) {
      const refused = await refusal(g, oldAliceToken);
      expect(refused.code).toBe('unauthorized');
      expect(refused.message).toMatch(/revoked/);
    }
  });

  it('accepts a token minted after the revocation, and refuses a refresh back to an old one', async () => {
    await nextSecond();
    const fresh = token('alice');
    for (const g of [g1, g2]) {
      const alice = await connect(g, fresh);
      expect(await alice.client.subscribe('alice.1')).toMatchObject({ ok: true });
      const refresh = await alice.client.emitWithAck(ClientEvent.Refresh, { token: oldAliceToken });
      expect(refresh).toMatchObject({ ok: false, error: { code: 'unauthorized', message: expect.stringMatching(/revoked/) } });
      expect(alice.client.socket.connected).toBe(true);
    }
  });

  it('still reaches a gateway whose control connection was cut and came back', async () => {
    const controlConnection = `topicgate ${g1.gatewayId} control`;
    const restored = () => g1.stderr().split('\n').filter((line) => line.includes('"control"') && line.includes('broker connection re-established')).length;
    const before = restored();
    await closeConnections(controlConnection, 'cut by the revocation test');
    await eventually(async () => restored() > before, 'the control consumer to come back', 20_000);

    const carol = await connect(g1, token('carol'));
    await revoke('carol');
    await carol.revoked.waitForCount(1);
    expect(await carol.disconnects.waitForCount(1)).toEqual(['io server disconnect']);
  });
});
