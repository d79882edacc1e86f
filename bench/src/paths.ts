/**
 * Paths as the bench records them in reports: relative to the repository, so
 * a report says nothing about the machine it ran on and reads the same from
 * any checkout.
 */
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, with a trailing slash (this file is bench/src/paths.ts, or bench/dist/paths.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `path` relative to the repository root: `server/dist/cli.js`; `.` for the root; `../…` outside it. */
export function repoRelative(path: string, root = REPO_ROOT): string {
  return relative(root, path) || '.';
}

/**
 * A copy of `value` (rows, metadata, warnings: JSON-like data) in which every
 * string has the repository's absolute path, also as a `file://` URL, made
 * relative: `/work/main/bench/results/x.log` → `bench/results/x.log`, inside
 * error messages too.
 */
export function withRepoRelativePaths<T>(value: T, root = REPO_ROOT): T {
  const base = root.replace(/\/+$/, '');
  if (base === '') return value;
  // The root itself, as a path or a file URL, followed by a slash or by the end of the path.
  const pattern = new RegExp(`(?:file://)?${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:/|(?![\\w.-]))`, 'g');
  const rewrite = (v: unknown): unknown => {
    if (typeof v === 'string') return v.replace(pattern, (m) => (m.endsWith('/') ? '' : '.'));
    if (Array.isArray(v)) return v.map(rewrite);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rewrite(x)]));
    return v;
  };
  return rewrite(value) as T;
}
