#!/usr/bin/env node
/**
 * Builds the script-tag bundle: dist/topicgate.min.js, an IIFE that defines
 * the global `topicgate` (topicgate.createClient, topicgate.LiveCollection, …)
 * with socket.io-client inside. The gateway serves this file.
 *
 * `@topicgate/shared` is bundled from its sources, so the bundle never picks
 * up a stale shared/dist. Prints the minified and gzipped sizes.
 */
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const outfile = here('../dist/topicgate.min.js');

await build({
  entryPoints: [here('../src/index.ts')],
  outfile,
  bundle: true,
  minify: true,
  format: 'iife',
  globalName: 'topicgate',
  platform: 'browser',
  // Class private fields and `??=` ship as is: every evergreen browser since 2021 runs them.
  target: ['es2022'],
  sourcemap: true,
  legalComments: 'eof',
  alias: { '@topicgate/shared': here('../../shared/src/index.ts') },
  logLevel: 'warning',
});

const code = readFileSync(outfile);
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`dist/topicgate.min.js: ${kib(code.length)} minified, ${kib(gzipSync(code, { level: 9 }).length)} gzipped`);
