export { createPublisher, Publisher, type PublishBody } from './publisher.js';
export { ResourcePublisher } from './resource.js';
export { LogAppender } from './log-appender.js';
export { topicKey } from './topic-key.js';
export { amqpTransport, type AmqpTransportOptions } from './amqp-transport.js';
export { PublishError, BufferFullError } from './errors.js';
export { PublishErrorCode } from './codes.js';
export type {
  BodyOf,
  LogAppenderOptions,
  LogFields,
  LogTemplate,
  ResourceBody,
  ResourceOptions,
  ResourceParams,
  ResourceTemplate,
} from './conventions.js';
export type { CloseOptions, OutgoingMessage, PublisherEvents, PublisherOptions, PublisherTransport, TransportLink } from './types.js';
// The topic map's types, so that a back end needs no second import.
export type { AnyTopics, KeyBody, KeyTopics, TopicKey, TopicKeys, TopicParams, TopicTemplate } from '@topicgate/shared';
