/**
 * Consumers share channels, so one gateway holds more subscriptions than the
 * broker allows channels on a connection (channel_max, 2047 by default), with
 * a channel count that grows by one per hundred subscriptions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelCount, eventually, listQueues, requireBroker } from '../support/broker.js';
import { connectClient, startTestGateway, stopTestGateways, type TestClient, type TestGateway } from '../support/gateway.js';

const SUBSCRIPTIONS = 2500;
const SOCKETS = 25;

let gateway: TestGateway;

beforeAll(async () => {
  await requireBroker();
  gateway = await startTestGateway();
});
afterAll(stopTestGateways);

describe('many subscriptions', () => {
  it(`${SUBSCRIPTIONS} subscriptions on one gateway: all live, few channels, all gone after disconnect`, async () => {
    const baseline = await channelCount(gateway.connectionName);
    const sockets: TestClient[] = await Promise.all(Array.from({ length: SOCKETS }, () => connectClient(gateway.url)));
    const ids = await Promise.all(
      sockets.map(async (socket, s) => {
        const mine: string[] = [];
        for (let i = 0; i < SUBSCRIPTIONS / SOCKETS; i++) mine.push(await socket.mustSubscribe(`scale.${s}.#`));
        return mine;
      }),
    );
    expect((await listQueues(gateway.queuePrefix)).length).toBe(SUBSCRIPTIONS);
    const channels = await channelCount(gateway.connectionName);
    expect(channels - baseline).toBeLessThanOrEqual(SUBSCRIPTIONS / 100 + 1);

    await gateway.mq.produce('scale.3.x', {});
    await sockets[3]!.messages.waitForCount(ids[3]!.length);
    expect(new Set(sockets[3]!.messages.items.map((m) => m.id))).toEqual(new Set(ids[3]));

    for (const socket of sockets) socket.close();
    await eventually(async () => (await listQueues(gateway.queuePrefix)).length === 0, 'every queue deleted', 60_000);
    await eventually(async () => (await channelCount(gateway.connectionName)) === baseline, 'channel count back at the baseline');
  }, 120_000);
});
