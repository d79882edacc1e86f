// @vitest-environment node
/**
 * Server rendering: importing the package where there is no `window` must
 * work, and rendering to HTML must subscribe to nothing and open no socket
 * (effects do not run on a server). The HTML is each hook's first state,
 * which hydration starts from.
 */
import { describe, expect, it } from 'vitest';
import { FakeGateway } from '../../client/test/fake-gateway.js';

describe('on the server', () => {
  it('imports without a window, and renders the first state without connecting or subscribing', async () => {
    expect(typeof window).toBe('undefined');
    expect(typeof document).toBe('undefined');
    const { renderToString } = await import('react-dom/server');
    const { createElement } = await import('react');
    const { TopicgateProvider } = await import('../src/index.js');
    const { BuildPage, ConnectionProbe, newClient } = await import('./support.js');

    const gateway = new FakeGateway();
    // A client made without connecting (autoConnect: false), as a server would hold one.
    const client = newClient(gateway, { autoConnect: false });
    const page = createElement(BuildPage, { id: 1 });
    const html = renderToString(createElement(TopicgateProvider, { client }, page, createElement(ConnectionProbe)));
    const withoutClient = renderToString(createElement(TopicgateProvider, { client: null }, page));

    // Effects never ran: nothing was asked of the client, and no handshake was attempted.
    await gateway.settle();
    expect(gateway.sockets.map((s) => s.attempts)).toEqual([0]);
    expect(gateway.received).toEqual([]);
    expect(html).toContain('&quot;status&quot;:&quot;subscribing&quot;');
    expect(html).toContain('&quot;state&quot;:&quot;disconnected&quot;');
    // The same first state with or without a client: hydration finds what the server rendered.
    expect(html.startsWith(withoutClient)).toBe(true);
    client.close();
  });
});
