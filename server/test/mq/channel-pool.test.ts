/**
 * The consumer channel pool never keeps an empty channel open: found by the
 * hostile suite under load (a channel count one above the baseline after a
 * subscribe flood), reproduced here deterministically.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { channelCount, deleteExchange, eventually, requireBroker } from '../support/broker.js';
import { connectorFixture } from '../support/connectors.js';

const fixture = connectorFixture('topicgate-pool', { consumersPerChannel: 2, warmOperationChannels: 1 });

beforeAll(requireBroker);
afterAll(async () => {
  for (const mq of fixture.connectors) await mq.close();
  for (const exchange of fixture.exchanges) await deleteExchange(exchange);
});

it('a channel opened for a consume that then found room on an older one is closed, not kept empty', async () => {
  const mq = await fixture.connector();
  const channels = mq.channels!;
  const [a, b] = [await channels.reserveConsumerSlot(), await channels.reserveConsumerSlot()]; // the first pooled channel is full
  const baseline = await channelCount(mq.options.connectionName);
  const waiting = channels.reserveConsumerSlot(); // opens a second one
  a.release(); // ...while room appears on the first
  const slot = await waiting;
  expect(slot.pooled).toBe(b.pooled); // it took the room on the older channel
  await eventually(() => channels.consumerChannels().length === 1, 'the unused channel retired');
  await eventually(async () => (await channelCount(mq.options.connectionName)) === baseline, 'the broker counts no extra channel');
  slot.release();
  b.release();
});
