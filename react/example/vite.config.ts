/**
 * The example pages, built and served by Vite in front of `topicgate demo`.
 *
 * The demo's REST API (`/api`) answers its own origin only, so the pages
 * never call the demo directly: Vite (dev server and `vite preview` alike)
 * passes `/api` and the gateway's `/socket.io` (WebSocket included) on to it,
 * and the pages use their own origin for both, as the demo's own pages do.
 *
 *   npm run demo                               # the demo, on http://localhost:8080
 *   npm run example -w @topicgate/react        # these pages, with hot reload
 *   TOPICGATE_DEMO_URL=http://127.0.0.1:9000 npm run example -w @topicgate/react   # another demo
 */
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig, type UserConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** The whole configuration for a demo at `demo`; the e2e spec builds and serves with it in-process. */
export function exampleConfig(demo = process.env.TOPICGATE_DEMO_URL ?? 'http://localhost:8080'): UserConfig {
  const proxy = {
    '/api': { target: demo },
    '/socket.io': { target: demo, ws: true },
  };
  return {
    root: here('.'),
    plugins: [react()],
    resolve: {
      // The workspace's sources, so the example never runs a stale build of the SDK or the hooks.
      alias: {
        '@topicgate/react': here('../src/index.ts'),
        '@topicgate/client': here('../../client/src/index.ts'),
        '@topicgate/shared': here('../../shared/src/index.ts'),
      },
    },
    build: {
      outDir: here('dist'),
      emptyOutDir: true,
      rolldownOptions: { input: { index: here('index.html'), log: here('log.html') } },
    },
    server: { proxy },
    preview: { proxy },
    logLevel: 'warn',
  };
}

export default defineConfig(exampleConfig());
