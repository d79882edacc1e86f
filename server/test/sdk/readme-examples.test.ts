/**
 * The READMEs promise examples a newcomer can copy: each TypeScript example
 * must compile, strictly, against the SDK as it is now.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin/tsc');
const dir = mkdtempSync(join(tmpdir(), 'topicgate-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The ```ts blocks of a markdown file that import the SDK. */
function examples(markdown: string): string[] {
  const blocks = [...readFileSync(join(root, markdown), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.filter((code) => code.includes("from '@topicgate/client'"));
}

/** tsc's complaints about `code`, compiled strictly as a bundler would, with the SDK from source. */
function diagnostics(code: string, name: string): string[] {
  const project = mkdtempSync(join(dir, `${name}-`));
  writeFileSync(join(project, 'example.ts'), code);
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noUncheckedIndexedAccess: true,
        noEmit: true,
        target: 'ES2022',
        lib: ['ES2022', 'DOM'],
        module: 'ESNext',
        moduleResolution: 'Bundler',
        types: [],
        skipLibCheck: true,
        paths: {
          '@topicgate/client': [join(root, 'client/src/index.ts')],
          '@topicgate/shared': [join(root, 'shared/src/index.ts')],
        },
      },
      files: ['example.ts'],
    }),
  );
  // TypeScript 7 (the native compiler) has no in-process API: run its command.
  const result = spawnSync(process.execPath, [tsc, '-p', project, '--pretty', 'false'], { encoding: 'utf8' });
  if (result.error) throw result.error;
  return `${result.stdout}${result.stderr}`.split('\n').filter((line) => /error TS\d+/.test(line));
}

describe('README examples compile', () => {
  for (const markdown of ['README.md', 'client/README.md']) {
    it(`every SDK example in ${markdown}`, () => {
      const found = examples(markdown);
      expect(found.length).toBeGreaterThan(0);
      found.forEach((code, i) => expect(diagnostics(code, `${markdown.replace(/\W/g, '_')}_${i}`)).toEqual([]));
    });
  }

  it('would catch a broken example', () => {
    const broken = "import { createClient } from '@topicgate/client';\ncreateClient({ url: 1 });\n";
    expect(diagnostics(broken, 'broken')).not.toEqual([]);
  });
});
