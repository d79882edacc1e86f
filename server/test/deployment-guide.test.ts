/**
 * docs/deployment.md names only settings that exist, gives their real
 * defaults, and points only at files and headings that exist: operators
 * configure production from it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SETTINGS, envName, type SettingName } from '../src/config.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const GUIDE = join(REPO, 'docs/deployment.md');
const guide = readFileSync(GUIDE, 'utf8');
const settings = new Map((Object.keys(SETTINGS) as SettingName[]).map((name) => [envName(name), SETTINGS[name] as { default?: string }]));

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[`*_]/g, '')
    .replace(/[^\p{L}\p{N} -]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1]!)));
}

describe('docs/deployment.md', () => {
  it('names only settings the gateway has', () => {
    const named = new Set([...guide.matchAll(/\bTOPICGATE_[A-Z0-9_]+/g)].map((m) => m[0]));
    expect(named.size).toBeGreaterThan(10);
    expect([...named].filter((name) => !settings.has(name)), 'settings in the guide that do not exist').toEqual([]);
  });

  it("gives each setting's real default in its limits table", () => {
    const rows = [...guide.matchAll(/^\| `(TOPICGATE_[A-Z0-9_]+)` \| `([^`]*)` \|/gm)];
    expect(rows.length, 'rows of the limits table').toBeGreaterThan(5);
    for (const [, name, documented] of rows) {
      expect(documented, `default of ${name}`).toBe(settings.get(name!)?.default);
    }
  });

  it('links only to files and headings that exist', () => {
    const links = [...guide.replace(/```[\s\S]*?```/g, '').matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((link) => !/^[a-z]+:/.test(link));
    expect(links.length).toBeGreaterThan(10);
    const broken: string[] = [];
    for (const link of links) {
      const [path, hash] = link.split('#') as [string, string | undefined];
      const file = path === '' ? GUIDE : resolve(dirname(GUIDE), path);
      if (!existsSync(file)) broken.push(`${link}: no such file`);
      else if (hash && file.endsWith('.md') && !anchorsOf(file).has(hash)) broken.push(`${link}: no such heading`);
    }
    expect(broken).toEqual([]);
  });

  it('names only repository files that exist', () => {
    const paths = new Set(
      [...guide.matchAll(/`((?:docs|ops|e2e|server|scripts|bench|client)\/[\w./-]+\.\w+|docker-compose[\w.-]*\.yml)`/g)].map((m) => m[1]!),
    );
    expect(paths.size).toBeGreaterThan(5);
    expect([...paths].filter((path) => !existsSync(join(REPO, path))), 'files the guide names that do not exist').toEqual([]);
  });
});
