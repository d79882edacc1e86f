/**
 * The test kit for suites that talk to a real gateway: vitest fixtures for a
 * gateway, a connected client and a token, so a test names what it needs
 * and the kit closes it afterwards; plus the helpers those fixtures are made
 * of, for suites that need them directly (the hostile harness, gateways
 * started per test).
 *
 *   import { describe, expect, test } from '../support/kit.js';
 *   test.override({ gatewayConfig: withAuth({ maxSubscriptions: 5 }) });
 *   test('…', async ({ gateway, client, token, connect }) => { … });
 *
 * `gateway` is started once per file (with `gatewayConfig`), and only by
 * files whose tests ask for it; `client` and every `connect`ed client are
 * closed after each test.
 */
import { test as base } from 'vitest';
import type { GatewayConfig } from '../../src/config.js';
import { requireBroker } from './broker.js';
import { connectClient, startTestGateway, stopTestGateway, type TestClient, type TestGateway } from './gateway.js';
import { mintTestToken, TEST_SECRET, type TestClaims } from './tokens.js';

export { describe, expect } from 'vitest';
export { eventually } from './eventually.js';
export { connectClient, TestClient, type TestGateway } from './gateway.js';
export { publishJson, publishRaw, uniqueName } from './broker.js';
export { mintTestToken, TEST_SECRET, type TestClaims } from './tokens.js';

/** Gateway settings with token checking on (secret TEST_SECRET), for `gatewayConfig`. */
export function withAuth(overrides: Partial<GatewayConfig> = {}): Partial<GatewayConfig> {
  return { jwt: { secret: TEST_SECRET, algorithms: ['HS256'] }, ...overrides };
}

function secretOf(config: Partial<GatewayConfig>): string {
  const secret = config.jwt?.secret;
  if (secret === undefined) throw new Error('the `token` fixture needs a gateway that checks tokens: test.override({ gatewayConfig: withAuth(…) })');
  return secret;
}

export const test = base
  .extend('gatewayConfig', { scope: 'file' }, {} as Partial<GatewayConfig>)
  /** Claims every `token()` of the file starts from. */
  .extend('tokenDefaults', { scope: 'file' }, {} as TestClaims)
  .extend('gateway', { scope: 'file' }, async ({ gatewayConfig }, { onCleanup }): Promise<TestGateway> => {
    await requireBroker();
    const gateway = await startTestGateway(gatewayConfig);
    onCleanup(() => stopTestGateway(gateway));
    return gateway;
  })
  /** Mints a token the file's gateway accepts (given claims over `tokenDefaults`). */
  .extend('token', { scope: 'file' }, ({ gatewayConfig, tokenDefaults }) => (claims: TestClaims = {}): string =>
    mintTestToken(secretOf(gatewayConfig), { ...tokenDefaults, ...claims }),
  )
  /** Connects a client to any gateway; every one is closed after the test. */
  .extend('connect', async ({}, { onCleanup }) => {
    const clients: TestClient[] = [];
    onCleanup(() => {
      for (const c of clients) c.close();
    });
    return async (url: string, token?: string): Promise<TestClient> => {
      const c = await connectClient(url, token);
      clients.push(c);
      return c;
    };
  })
  /** A client connected to the file's gateway (with a fresh `token()` when it checks tokens), closed after the test. */
  .extend('client', async ({ gateway, gatewayConfig, token, connect }) => connect(gateway.url, gatewayConfig.jwt ? token() : undefined));
