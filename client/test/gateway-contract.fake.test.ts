/**
 * The gateway protocol contract (gateway-contract.ts) run on the SDK's
 * FakeGateway: what the SDK's tests are told about the gateway is what a
 * real gateway does (the same contract runs on one in
 * server/test/gateway/gateway-contract.real.test.ts).
 */
import { topicMatches, type JsonObject } from '@topicgate/shared';
import { ContractClient, describeGatewayContract, type GatewayTarget } from './gateway-contract.js';
import { FakeGateway, type FakeSocket, makeToken, tokenClaims } from './fake-gateway.js';

const MAX_SUBSCRIPTIONS = 3;

/**
 * Does one of `topics` match every key `pattern` matches? Checked over every
 * key of up to five words drawn from the words both name plus one fresh word:
 * exact for the short patterns the contract uses (the gateway decides this by
 * automaton containment, docs/protocol.md §10.3).
 */
function contained(pattern: string, topics: readonly string[]): boolean {
  const words = [...new Set([pattern, ...topics].flatMap((p) => p.split('.')).filter((w) => w !== '*' && w !== '#')), 'fresh'];
  const key: string[] = [];
  const search = (): boolean => {
    if (key.length > 0 && topicMatches(pattern, key.join('.')) && !topics.some((t) => topicMatches(t, key.join('.')))) return false;
    if (key.length === 5) return true;
    for (const w of words) {
      key.push(w);
      const ok = search();
      key.pop();
      if (!ok) return false;
    }
    return true;
  };
  return search();
}

/** The gateway's authorization, on the fake: tokens carry `topics` like real ones. */
function allows(token: string | undefined, pattern: string): string | null {
  const topics = token === undefined ? [] : (tokenClaims(token)['topics'] as string[] | undefined) ?? [];
  return contained(pattern, topics) ? null : `the token's topics do not allow "${pattern}"`;
}

async function fakeTarget(): Promise<GatewayTarget> {
  const gateway = new FakeGateway({ allows, maxSubscriptions: MAX_SUBSCRIPTIONS, sameSubOnRefresh: true });
  return {
    maxSubscriptions: MAX_SUBSCRIPTIONS,
    token: ({ sub, topics }) => makeToken({ sub, topics, exp: Math.floor(Date.now() / 1000) + 3600 }),
    async connect(token) {
      const socket = gateway.io('http://fake.gateway', { auth: { token } }) as FakeSocket;
      const client = new ContractClient(socket);
      const connected = new Promise<void>((resolve, reject) => {
        socket.on('connect', () => resolve());
        socket.on('connect_error', (err: Error) => reject(err));
      });
      socket.connect();
      await connected;
      return client;
    },
    async publish(key: string, body: JsonObject) {
      gateway.publish(key, body);
    },
    async deleteQueue(id) {
      const sub = gateway.subscriptions().find((s) => s.id === id);
      if (sub === undefined) throw new Error(`no live subscription ${id}`);
      gateway.end(sub, 'queue_deleted');
    },
    publishWhileNextSubscribes(messages) {
      // What the real gateway does with messages routed while the queue is declared: it holds them and
      // writes them right behind the ack. (The fake's beforeAck hook produces what §8.6 also allows.)
      gateway.hooks.afterAck = () => {
        delete gateway.hooks.afterAck;
        for (const { key, body } of messages) gateway.publish(key, body);
      };
    },
    async shutdown() {
      gateway.shutdown();
    },
    async close() {
      gateway.kick();
    },
  };
}

describeGatewayContract('the SDK\'s FakeGateway', fakeTarget);
