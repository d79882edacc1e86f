/**
 * The README states what the hooks add to an application that already has
 * the SDK and React; integrators budget with it, so it must match what a
 * bundler makes of the sources today.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const file = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** @topicgate/react minified and gzipped (-9), with React and the SDK left out as the application's own. */
async function sizeOnTopOfSdk(): Promise<number> {
  const result = await build({
    entryPoints: [file('../src/index.ts')],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    external: ['react', 'react/jsx-runtime', '@topicgate/client'],
    write: false,
    logLevel: 'silent',
  });
  return gzipSync(result.outputFiles[0]!.contents, { level: 9 }).length / 1024;
}

describe('the README', () => {
  it('states the size the hooks add on top of the SDK (minified + gzipped, within 0.1 KiB)', async () => {
    const readme = readFileSync(file('../README.md'), 'utf8');
    const stated = /([\d.]+) KiB minified \+ gzipped/.exec(readme)?.[1];
    expect(stated, 'react/README.md no longer states "<n> KiB minified + gzipped"').toBeDefined();
    const actual = await sizeOnTopOfSdk();
    expect(Math.abs(actual - Number(stated)), `README says ${stated} KiB, esbuild gives ${actual.toFixed(2)} KiB`).toBeLessThanOrEqual(0.1);
  });
});
