export { TopicgateProvider, useClient, type TopicgateProviderProps } from './provider.js';
export {
  createTopicgateHooks,
  useLiveCollection,
  useLiveResource,
  useLogTail,
  useSubscription,
  type ApplyRequired,
  type PatternOption,
  type Patterns,
  type TopicgateHooks,
} from './hooks.js';
export { useConnectionState } from './use-connection-state.js';
export type {
  ConnectionHookState,
  LiveCollectionState,
  LiveReload,
  LiveResourceState,
  LogTailState,
  SubscriptionHookState,
  ViewState,
} from './types.js';
