/**
 * The README states the script-tag bundle's size; integrators budget with it,
 * so it must match what `npm run build` produces (the suite builds first).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

const file = (p: string) => fileURLToPath(new URL(p, import.meta.url));

describe('the README', () => {
  it('states the bundle size the build produces (gzip -9, within 0.2 KiB)', () => {
    const readme = readFileSync(file('../../README.md'), 'utf8');
    const stated = /([\d.]+) KiB minified \+ gzipped/.exec(readme)?.[1];
    expect(stated, 'README.md no longer states "<n> KiB minified + gzipped"').toBeDefined();
    const bundle = readFileSync(file('../../client/dist/topicgate.min.js'));
    const actual = gzipSync(bundle, { level: 9 }).length / 1024;
    expect(Math.abs(actual - Number(stated)), `README says ${stated} KiB, the build gives ${actual.toFixed(1)} KiB`).toBeLessThanOrEqual(0.2);
  });
});
