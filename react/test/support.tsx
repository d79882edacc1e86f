/**
 * What the hook tests share: a topic map, an application whose REST API and
 * publisher the test drives (over the SDK's in-process fake gateway), and
 * components that render each hook's state as the page would.
 */
import { StrictMode, useEffect, type ReactNode } from 'react';
import { render, screen } from '@testing-library/react';
import { createClient, type Client, type LogLines } from '@topicgate/client';
import { FakeGateway, freshToken } from '../../client/test/fake-gateway.js';
import { createTopicgateHooks, TopicgateProvider, useConnectionState } from '../src/index.js';

export interface Build {
  id: number;
  version: number;
  state: 'running' | 'finished';
}
export interface Alert {
  text: string;
}
export interface Topics {
  'builds.{id}.updated': Build;
  'logs.{id}.append': LogLines;
  'alerts.{kind}': Alert;
}

export const { useLiveCollection, useLiveResource, useLogTail, useSubscription } = createTopicgateHooks<Topics>();

/** The application's side: rows and logs as its REST API serves them, and what it publishes on each change. */
export class App {
  readonly rows = new Map<number, Build>();
  readonly logs = new Map<number, string[]>();
  loads = 0;
  /** Set to make the next loads fail, as a REST API that is down. */
  failing = false;

  constructor(readonly gateway: FakeGateway) {}

  change(id: number, state: Build['state']): void {
    const row = { id, version: (this.rows.get(id)?.version ?? 0) + 1, state };
    this.rows.set(id, row);
    this.gateway.publish(`builds.${id}.updated`, { ...row });
  }

  append(id: number, ...lines: string[]): void {
    const log = this.logs.get(id) ?? [];
    this.logs.set(id, log);
    const first = log.length;
    log.push(...lines);
    this.gateway.publish(`logs.${id}.append`, { first, lines });
  }

  readonly loadBuilds = async (): Promise<Build[]> => {
    this.loads++;
    await Promise.resolve();
    if (this.failing) throw new Error('HTTP 503');
    return [...this.rows.values()].map((row) => ({ ...row }));
  };

  readonly loadBuild = async (id: number): Promise<Build | null> => {
    await Promise.resolve();
    if (this.failing) throw new Error('HTTP 503');
    const row = this.rows.get(id);
    return row === undefined ? null : { ...row };
  };

  readonly loadLines = async (id: number, { from, limit }: { from?: number; limit: number }): Promise<LogLines> => {
    await Promise.resolve();
    const log = this.logs.get(id) ?? [];
    const start = from ?? Math.max(0, log.length - limit);
    return { first: start, lines: log.slice(start, start + limit) };
  };
}

/** A client on the fake gateway; the test closes it. */
export function newClient(gateway: FakeGateway, options: { autoConnect?: boolean } = {}): Client<Topics> {
  return createClient<Topics>({
    url: 'http://gateway.test',
    token: freshToken(),
    io: gateway.io,
    reconnectDelay: 5,
    reconnectDelayMax: 10,
    ...options,
  });
}

/** Renders under StrictMode (double effects and renders in development) with the client provided. */
export function renderStrict(client: Client<Topics> | null, ui: ReactNode) {
  const wrap = (node: ReactNode) => (
    <StrictMode>
      <TopicgateProvider client={client}>{node}</TopicgateProvider>
    </StrictMode>
  );
  const result = render(wrap(ui));
  return { ...result, rerender: (next: ReactNode) => result.rerender(wrap(next)) };
}

/** What a probe rendered, parsed back. */
export function read<T = Record<string, unknown>>(testId: string): T {
  return JSON.parse(screen.getByTestId(testId).textContent ?? 'null') as T;
}

function Probe({ id, state }: { id: string; state: object }) {
  const shown = Object.fromEntries(
    Object.entries(state)
      .filter(([, value]) => typeof value !== 'function')
      .map(([name, value]) => [name, value instanceof Error ? (value as Error & { code: string }).code : value]),
  );
  return <pre data-testid={id}>{JSON.stringify(shown)}</pre>;
}

/** Counts effect runs, to show that StrictMode did run every effect twice. */
export const effectRuns = { count: 0 };

/** Each hook once, on one build: what the StrictMode and lifecycle tests count subscriptions of. */
export function BuildPage({ id, onAlert }: { id: number; onAlert?: (alert: Alert) => void }) {
  useEffect(() => {
    effectRuns.count++;
  }, []);
  const builds = useLiveCollection({
    pattern: 'builds.*.updated',
    // Inline functions: new every render, which must not resubscribe.
    load: () => app().loadBuilds(),
    sort: (a, b) => a.id - b.id,
  });
  const build = useLiveResource({ pattern: `builds.${id}.updated`, load: () => app().loadBuild(id) });
  const log = useLogTail({ pattern: `logs.${id}.append`, load: (request) => app().loadLines(id, request) });
  const alerts = useSubscription('alerts.*', (m) => onAlert?.(m.body));
  return (
    <>
      <Probe id="builds" state={builds} />
      <Probe id="build" state={build} />
      <Probe id="log" state={log} />
      <Probe id="alerts" state={alerts} />
    </>
  );
}

export function ConnectionProbe() {
  return <Probe id="connection" state={useConnectionState()} />;
}

/** The application the components load from; set by each test. */
let current: App | undefined;
export function setApp(next: App): App {
  current = next;
  return next;
}
function app(): App {
  if (current === undefined) throw new Error('no App: call setApp(new App(gateway)) first');
  return current;
}
