/**
 * One application's topic map, imported by the publisher's type tests and by
 * their SDK-side counterpart: the same interface types both ends.
 */
export interface BuildStarted {
  id: number;
  version: number;
  state: 'running';
}
export interface BuildFinished {
  id: number;
  version: number;
  state: 'finished';
  result: 'success' | 'failure';
}
export interface BuildDeleted {
  id: number;
  version: number;
  deleted: true;
}
export interface StepStarted {
  build: number;
  step: number;
}
export interface LogChunk {
  build: number;
  first: number;
  lines: string[];
}

export interface Topics {
  'builds.{id}.started': BuildStarted;
  'builds.{id}.finished': BuildFinished;
  'builds.{id}.deleted': BuildDeleted;
  'builds.{id}.steps.{step}.started': StepStarted;
  'logs.{id}.append': LogChunk;
}
