import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Tests import workspace packages from source, so a test run never sees a stale build.
export default defineConfig({
  resolve: {
    alias: {
      '@topicgate/shared': here('./shared/src/index.ts'),
      '@topicgate/client': here('./client/src/index.ts'),
      '@topicgate/publisher': here('./publisher/src/index.ts'),
    },
  },
  test: {
    include: ['{shared,publisher,server,client,react,bench}/test/**/*.test.{ts,tsx}', 'e2e/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration suites share one RabbitMQ; each uses its own exchange, but
    // broker-wide checks (rabbitmqctl) are clearer when files do not overlap.
    fileParallelism: false,
    // Type tests: vitest runs tsc on this project, which includes the *.test-d.ts files.
    typecheck: { enabled: true, include: ['client/test/**/*.test-d.ts'], tsconfig: 'client/test/tsconfig.json' },
  },
});
