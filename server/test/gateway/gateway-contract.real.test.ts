/**
 * The gateway protocol contract (client/test/gateway-contract.ts) run on a
 * real gateway and RabbitMQ, through socket.io-client: the truth the SDK's
 * FakeGateway is held to (the same contract runs on it in
 * client/test/gateway-contract.fake.test.ts).
 */
import type { JsonObject } from '@topicgate/shared';
import { io } from 'socket.io-client';
import { ContractClient, describeGatewayContract, type GatewayTarget } from '../../../client/test/gateway-contract.js';
import type { MqConnector } from '../../src/mq/connector.js';
import { deleteQueueAsOperator, requireBroker } from '../support/broker.js';
import { eventually } from '../support/eventually.js';
import { startTestGateway, stopTestGateway, type TestGateway } from '../support/gateway.js';
import { mintTestToken, TEST_SECRET } from '../support/tokens.js';

const MAX_SUBSCRIPTIONS = 3;

/**
 * Arms the gateway's connector so that the next consumer it starts gets
 * `messages` published once its queue is bound and consuming, and is handed
 * back to the gateway only after it has received them: deterministically,
 * messages that arrive while a subscribe is being declared.
 */
function publishDuringNextDeclare(mq: MqConnector, messages: ReadonlyArray<{ key: string; body: JsonObject }>): void {
  const original = mq.startConsuming;
  mq.startConsuming = async (pattern, handler, options) => {
    mq.startConsuming = original;
    let received = 0;
    const consumer = await original.call(mq, pattern, (message) => (received++, handler(message)), options);
    for (const { key, body } of messages) await mq.produce(key, body);
    await eventually(() => received >= messages.length, `the consumer to receive the ${messages.length} messages published while declaring`, { intervalMs: 5 });
    return consumer;
  };
}

async function realTarget(): Promise<GatewayTarget> {
  await requireBroker();
  const gateway: TestGateway = await startTestGateway({ jwt: { secret: TEST_SECRET, algorithms: ['HS256'] }, maxSubscriptions: MAX_SUBSCRIPTIONS });
  return {
    maxSubscriptions: MAX_SUBSCRIPTIONS,
    token: ({ sub, topics }) => mintTestToken(TEST_SECRET, { sub, topics }),
    async connect(token) {
      const socket = io(gateway.url, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true, autoConnect: false });
      const client = new ContractClient(socket);
      const connected = new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      });
      socket.connect();
      await connected;
      return client;
    },
    publish: (key, body) => gateway.mq.produce(key, body),
    deleteQueue: (id) => deleteQueueAsOperator(`${gateway.queuePrefix}${id}`),
    publishWhileNextSubscribes: (messages) => publishDuringNextDeclare(gateway.mq, messages),
    shutdown: () => stopTestGateway(gateway),
    close: () => stopTestGateway(gateway),
  };
}

describeGatewayContract('a real gateway on RabbitMQ', realTarget);
