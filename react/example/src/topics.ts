/**
 * The demo's topics and bodies, declared as an application declares its own
 * (server/demo-pages/README.md lists them), and the hooks typed by them.
 */
import { createTopicgateHooks } from '@topicgate/react';

export type BuildState = 'pending' | 'running' | 'success' | 'failure';
export interface Build {
  id: number;
  version: number;
  project: string;
  state: BuildState;
  steps: { name: string; state: BuildState }[];
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  lines: number;
}
export interface BuildDeleted {
  id: number;
  version: number;
  deleted: true;
}
export interface LogChunk {
  build: number;
  first: number;
  lines: string[];
}
export interface Topics {
  'builds.{id}.new': Build;
  'builds.{id}.started': Build;
  'builds.{id}.step': Build;
  'builds.{id}.finished': Build;
  'builds.{id}.deleted': BuildDeleted;
  'logs.{id}.append': LogChunk;
}

export const { useLiveCollection, useLiveResource, useLogTail, useSubscription } = createTopicgateHooks<Topics>();

/** What a build message does to the view: a deletion removes it, anything else is the whole build. */
export function applyBuild(_prev: Build | undefined, message: { key: string; body: Build | BuildDeleted }): Build | null {
  return 'deleted' in message.body ? null : message.body;
}
