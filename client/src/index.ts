export { Client, createClient } from './client.js';
export { Subscription } from './subscription.js';
export { LiveCollection } from './live-collection.js';
export { LiveResource } from './live-resource.js';
export { LogTail, isLogLines } from './log-tail.js';
export { Emitter, type EventMap } from './emitter.js';
export { TopicgateError } from './errors.js';
export {
  ClientErrorCode,
  ClientResyncReason,
  LiveReloadReason,
  LogFetchReason,
  SubscriptionEndReason,
  type SubscriptionResyncReason,
  type TopicgateErrorCode,
} from './codes.js';
// The protocol's codes, so that applications match them without a second import.
export { ErrorCode, ResyncReason, UnsubscribedReason, PROTOCOL_VERSION } from '@topicgate/shared';
export type {
  AnyTopics,
  CheckedPattern,
  MatchingTopics,
  NoTopicMatches,
  TopicBody,
  TopicKey,
  TopicMessage,
  TopicTemplate,
} from './typed-topics.js';
export type {
  ClientEvents,
  ClientOptions,
  ConnectionState,
  DisconnectedContext,
  ItemId,
  LiveCollectionInit,
  LiveCollectionOptions,
  LiveEvents,
  LiveOptionsBase,
  LiveResourceInit,
  LiveResourceOptions,
  LiveStatus,
  LogLines,
  LogLinesRequest,
  LogTailChange,
  LogTailEvents,
  LogTailInit,
  LogTailOptions,
  LogWindow,
  Message,
  MessageSource,
  ResyncContext,
  SocketFactory,
  SocketLike,
  SourceSink,
  SubscribedContext,
  SubscriptionEvents,
  SubscriptionState,
  UnsubscribedContext,
} from './types.js';
