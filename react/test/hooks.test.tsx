// @vitest-environment jsdom
/**
 * The hooks under React's rules, against the SDK's in-process fake gateway,
 * which lists every subscription it holds: StrictMode's double effects leave
 * one per hook, unmounting ends them, re-renders with the same options keep
 * them, a new pattern replaces one; and what each hook returns is what a
 * component renders.
 */
import { act, cleanup, render, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '@topicgate/client';
import { FakeGateway } from '../../client/test/fake-gateway.js';
import { TopicgateProvider, useLiveCollection as useAnyLiveCollection } from '../src/index.js';
import {
  App,
  BuildPage,
  ConnectionProbe,
  effectRuns,
  newClient,
  read,
  renderStrict,
  setApp,
  useLiveCollection,
  type Alert,
  type Topics,
} from './support.js';

const clients: Client<Topics>[] = [];
afterEach(() => {
  cleanup();
  for (const client of clients.splice(0)) client.close();
});

function setUp(): { gateway: FakeGateway; app: App; client: Client<Topics> } {
  const gateway = new FakeGateway();
  const app = setApp(new App(gateway));
  const client = newClient(gateway);
  clients.push(client);
  return { gateway, app, client };
}

const subscribes = (gateway: FakeGateway) => gateway.received.filter(([event]) => event === 'subscribe').map(([, p]) => (p as { pattern: string }).pattern);
const unsubscribes = (gateway: FakeGateway) => gateway.received.filter(([event]) => event === 'unsubscribe').length;
const patterns = (gateway: FakeGateway) => gateway.subscriptions().map((s) => s.pattern).sort();
const statuses = () => ['builds', 'build', 'log', 'alerts'].map((id) => read(id).status);
const allLive = () => expect(statuses()).toEqual(['live', 'live', 'live', 'subscribed']);

describe('subscriptions under React', () => {
  it('StrictMode runs every effect twice, and each hook holds exactly one gateway subscription', async () => {
    const { gateway, app, client } = setUp();
    app.change(7, 'running');
    effectRuns.count = 0;
    renderStrict(client, <BuildPage id={7} />);
    await waitFor(allLive);
    await gateway.settle();

    expect(effectRuns.count, 'StrictMode mounted, unmounted and mounted again').toBe(2);
    expect(patterns(gateway)).toEqual(['alerts.*', 'builds.*.updated', 'builds.7.updated', 'logs.7.append']);
    // Not even a subscription made and ended again: the gateway saw one request per hook.
    expect(subscribes(gateway)).toHaveLength(4);
    expect(unsubscribes(gateway)).toBe(0);
  });

  it('unmounting ends every subscription on the gateway', async () => {
    const { gateway, client } = setUp();
    const { unmount } = renderStrict(client, <BuildPage id={7} />);
    await waitFor(allLive);
    expect(gateway.subscriptions()).toHaveLength(4);

    unmount();
    await gateway.settle();
    expect(gateway.subscriptions()).toEqual([]);
    expect(unsubscribes(gateway)).toBe(4);
  });

  it('unmounting before the subscriptions are acknowledged leaves none behind either', async () => {
    const { gateway, client } = setUp();
    let release!: () => void;
    const acked = new Promise<void>((resolve) => (release = resolve));
    gateway.hooks.delaySubscribeAck = () => acked;
    const { unmount } = renderStrict(client, <BuildPage id={7} />);
    await waitFor(() => expect(subscribes(gateway)).toHaveLength(4));

    unmount();
    release();
    await gateway.settle();
    expect(gateway.subscriptions()).toEqual([]);
  });

  it('re-rendering with the same options (new inline functions included) does not resubscribe, and uses the latest functions', async () => {
    const { gateway, app, client } = setUp();
    const alerts: string[][] = [[], []];
    const { rerender } = renderStrict(client, <BuildPage id={7} onAlert={(a) => alerts[0]!.push(a.text)} />);
    await waitFor(allLive);
    for (let i = 0; i < 3; i++) rerender(<BuildPage id={7} onAlert={(a: Alert) => alerts[1]!.push(a.text)} />);
    await gateway.settle();

    expect(subscribes(gateway)).toHaveLength(4);
    expect(unsubscribes(gateway)).toBe(0);
    // The subscription made by the first render calls the handler of the last one.
    act(() => gateway.publish('alerts.disk', { text: 'disk full' }));
    await waitFor(() => expect(read('alerts')).toMatchObject({ received: 1, last: { body: { text: 'disk full' } } }));
    expect(alerts).toEqual([[], ['disk full']]);
    expect(app.loads).toBe(1);
  });

  it('changing the pattern resubscribes once: the old subscription ends, one new one is made', async () => {
    const { gateway, app, client } = setUp();
    app.change(7, 'running');
    app.change(8, 'finished');
    const { rerender } = renderStrict(client, <BuildPage id={7} />);
    await waitFor(allLive);
    expect(read('build')).toMatchObject({ value: { id: 7, state: 'running' } });
    const before = subscribes(gateway).length;

    rerender(<BuildPage id={8} />);
    await waitFor(() => expect(read('build')).toMatchObject({ status: 'live', value: { id: 8, state: 'finished' } }));
    await gateway.settle();

    expect(subscribes(gateway).slice(before).sort()).toEqual(['builds.8.updated', 'logs.8.append']);
    expect(unsubscribes(gateway)).toBe(2);
    expect(patterns(gateway)).toEqual(['alerts.*', 'builds.*.updated', 'builds.8.updated', 'logs.8.append']);
  });
});

describe('what the hooks return', () => {
  it('the live collection and resource follow messages, and say when and why they reloaded', async () => {
    const { gateway, app, client } = setUp();
    app.change(1, 'running');
    renderStrict(client, <BuildPage id={1} />);
    await waitFor(allLive);
    expect(read('builds')).toMatchObject({ items: [{ id: 1, version: 1 }], loaded: true, reloads: 0 });

    act(() => {
      app.change(2, 'running');
      app.change(1, 'finished');
    });
    await waitFor(() =>
      expect(read('builds').items).toEqual([
        { id: 1, version: 2, state: 'finished' },
        { id: 2, version: 1, state: 'running' },
      ]),
    );
    expect(read('build')).toMatchObject({ value: { id: 1, version: 2, state: 'finished' }, reloads: 0 });

    // The gateway says messages were lost: both views reload from REST, and say why.
    act(() => gateway.resync('overflow'));
    await waitFor(() => expect(read('builds')).toMatchObject({ status: 'live', reloads: 1, reloadReason: 'overflow' }));
    await waitFor(() => expect(read('build')).toMatchObject({ status: 'live', reloads: 1, reloadReason: 'overflow' }));
  });

  it('the log tail holds every line in order, once', async () => {
    const { app, client } = setUp();
    app.append(3, 'a', 'b');
    renderStrict(client, <BuildPage id={3} />);
    await waitFor(() => expect(read('log')).toMatchObject({ status: 'live', first: 0, lines: ['a', 'b'], loaded: true }));
    act(() => {
      app.append(3, 'c');
      app.append(3, 'd', 'e');
    });
    await waitFor(() => expect(read('log').lines).toEqual(['a', 'b', 'c', 'd', 'e']));
  });

  it('a failing REST API shows as an error, cleared once the view is live again', async () => {
    const { app, client } = setUp();
    app.failing = true;
    function Builds() {
      const state = useLiveCollection({ pattern: 'builds.*.updated', load: app.loadBuilds, retryDelay: 5, retryDelayMax: 10 });
      return <pre data-testid="builds">{JSON.stringify({ status: state.status, error: state.error?.code ?? null })}</pre>;
    }
    renderStrict(client, <Builds />);
    await waitFor(() => expect(read('builds')).toEqual({ status: 'loading', error: 'load_failed' }));
    app.failing = false;
    await waitFor(() => expect(read('builds')).toEqual({ status: 'live', error: null }));
  });

  it('reload() loads again, through the latest load function', async () => {
    const { app, client } = setUp();
    let reload: (() => void) | undefined;
    const loads: string[] = [];
    function Builds({ from }: { from: string }) {
      const state = useLiveCollection({
        pattern: 'builds.*.updated',
        load: () => {
          loads.push(from);
          return app.loadBuilds();
        },
      });
      reload = state.reload;
      return <pre data-testid="builds">{JSON.stringify({ status: state.status, reloads: state.reloads, reason: state.reloadReason })}</pre>;
    }
    const { rerender } = renderStrict(client, <Builds from="first" />);
    await waitFor(() => expect(read('builds')).toMatchObject({ status: 'live' }));
    rerender(<Builds from="second" />);
    act(() => reload!());
    await waitFor(() => expect(read('builds')).toEqual({ status: 'live', reloads: 1, reason: 'requested' }));
    expect(loads).toEqual(['first', 'second']);
  });

  it('connection state: connecting, then connected; a refused token is the error to show', async () => {
    const { client } = setUp();
    renderStrict(client, <ConnectionProbe />);
    await waitFor(() => expect(read('connection')).toEqual({ state: 'connected' }));

    const refusing = new FakeGateway({ authorize: () => 'jwt expired' });
    const refused = newClient(refusing);
    clients.push(refused);
    cleanup();
    renderStrict(refused, <ConnectionProbe />);
    await waitFor(() => expect(read('connection')).toEqual({ state: 'disconnected', error: 'unauthorized' }));
  });

  it('without a client (server, before sign-in) the hooks wait in their first state, and subscribe once one is given', async () => {
    const { gateway, client } = setUp();
    const { rerender } = renderStrict(null, <><BuildPage id={1} /><ConnectionProbe /></>);
    await gateway.settle();
    expect(statuses()).toEqual(['subscribing', 'subscribing', 'subscribing', 'subscribing']);
    expect(read('connection')).toEqual({ state: 'disconnected' });
    expect(gateway.subscriptions()).toEqual([]);

    rerender(<TopicgateProvider client={client}><BuildPage id={1} /><ConnectionProbe /></TopicgateProvider>);
    await waitFor(allLive);
    expect(gateway.subscriptions()).toHaveLength(4);
  });

  it('an invalid pattern is an error to render, not a crash', async () => {
    const { gateway, client } = setUp();
    function Bad() {
      const state = useAnyLiveCollection<string>({ pattern: 'builds.x*', load: async () => [] });
      return <pre data-testid="bad">{JSON.stringify({ status: state.status, error: state.error?.code })}</pre>;
    }
    renderStrict(client, <Bad />);
    await waitFor(() => expect(read('bad')).toEqual({ status: 'closed', error: 'invalid_pattern' }));
    expect(gateway.subscriptions()).toEqual([]);
  });

  it('outside a provider, a hook says what is missing', () => {
    function Lost() {
      useLiveCollection<'builds.*.updated'>({ pattern: 'builds.*.updated', load: async () => [] });
      return null;
    }
    // React reports the error it rethrows; keep the test output readable.
    const error = console.error;
    console.error = () => {};
    try {
      expect(() => render(<Lost />)).toThrow(/inside a <TopicgateProvider/);
    } finally {
      console.error = error;
    }
  });
});
