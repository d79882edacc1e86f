export { startGateway, type RunningGateway, type StartOptions } from './server.js';
export { loadConfig, readSettings, ConfigError, type GatewayConfig, type Settings } from './config.js';
export type { MqConnector, Consumer, ConsumeOptions, MqMessage, MessageHandler } from './mq/connector.js';
export { AmqpConnector, type AmqpConnectorOptions } from './mq/amqp.js';
export { resumableQueueOptions } from './mq/amqp-consumer.js';
export { EmbeddedConnector } from './mq/embedded.js';
export type { Access, Principal } from './gateway/access.js';
