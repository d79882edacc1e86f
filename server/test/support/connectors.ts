/**
 * AMQP connectors for connector-level tests: each on a fresh exchange and
 * queue prefix, remembered so the file's hooks can close and delete them.
 */
import { AmqpConnector, type AmqpConnectorOptions } from '../../src/mq/amqp.js';
import { quietLog, TEST_AMQP_URL, uniqueName } from './broker.js';

export function connectorFixture(connectionName: string, defaults: Partial<AmqpConnectorOptions> = {}) {
  const exchanges: string[] = [];
  const connectors: AmqpConnector[] = [];
  const options = (overrides: Partial<AmqpConnectorOptions> = {}): AmqpConnectorOptions => {
    const exchange = uniqueName('topicgate-test');
    exchanges.push(exchange);
    return {
      urls: [TEST_AMQP_URL],
      exchange,
      queuePrefix: `${uniqueName('topicgate.test')}.`,
      connectionName: uniqueName(connectionName),
      log: quietLog,
      ...defaults,
      ...overrides,
    };
  };
  const connector = async (overrides: Partial<AmqpConnectorOptions> = {}): Promise<AmqpConnector> => {
    const mq = await AmqpConnector.connect(options(overrides));
    connectors.push(mq);
    return mq;
  };
  return { exchanges, connectors, options, connector };
}
