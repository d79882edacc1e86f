/**
 * The demo application's data: a simulated CI's builds and their logs. These
 * are the shapes its REST API serves and its messages carry (Buildbot-style:
 * every message body is the changed resource itself, with its `version`).
 */
export type BuildState = 'pending' | 'running' | 'success' | 'failure';
export type StepState = 'pending' | 'running' | 'success' | 'failure';

export interface Step {
  name: string;
  state: StepState;
}

export interface Build {
  id: number;
  /** The project being built. */
  project: string;
  state: BuildState;
  steps: Step[];
  /** Grows by one with every change of this build (docs/protocol.md §11). */
  version: number;
  /** Epoch seconds. */
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Log lines written so far. */
  lines: number;
}

/** Body of `logs.<build>.append`, and of `GET /api/logs/:id/lines`: `lines[i]` is line `first + i`. */
export interface LogChunk {
  build: number;
  first: number;
  lines: string[];
}

/** What happened to a build; the last word of its routing keys. */
export type BuildEvent = 'new' | 'started' | 'step' | 'finished' | 'deleted';

/** Body of `builds.<id>.deleted`: the build is gone from the REST API as of `version`. */
export interface BuildDeleted {
  id: number;
  version: number;
  deleted: true;
}

/**
 * The demo's topic map: the keys it publishes and the body each carries. The
 * simulated CI publishes through `createPublisher<DemoTopics>()`, so a body
 * that does not match its key does not compile; a page in TypeScript would
 * give the same interface to `createClient<DemoTopics>()`.
 */
export interface DemoTopics {
  'builds.{id}.new': Build;
  'builds.{id}.started': Build;
  'builds.{id}.step': Build;
  'builds.{id}.finished': Build;
  'builds.{id}.deleted': BuildDeleted;
  'logs.{id}.append': LogChunk;
}

/** The topics a demo page's token allows. */
export const DEMO_TOPICS = ['builds.#', 'logs.#'];
