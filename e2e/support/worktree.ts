/**
 * The repository as a clean checkout of it would be: the files git tracks plus
 * the working tree's changes (modified and new files that .gitignore does not
 * exclude), and nothing else — no node_modules, no dist, no file someone left
 * lying around. On CI, which runs on a clean clone, that is exactly the clone.
 *
 * Tests that build from the repository (the Dockerfile's stages) copy this
 * instead of the working directory, so that a build output or an ignored file
 * on a developer's machine cannot hide a file the build forgot to copy.
 */
import { execFile } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Paths (relative, `/`-separated) of the files a clean checkout plus the working tree's changes holds. */
export async function checkoutFiles(root = REPO_ROOT): Promise<string[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('git', ['-C', root, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      maxBuffer: 64 * 1024 * 1024,
    }));
  } catch (err) {
    throw new Error(
      `cannot list the repository's files with git (${(err as Error).message.split('\n')[0]}): ` +
        'this test needs a git checkout of topicgate and git on the PATH',
    );
  }
  const files = stdout.split('\0').filter((path) => path !== '');
  // A tracked file deleted in the working tree is not part of it any more.
  return [...new Set(files)].filter((path) => exists(join(root, path))).sort();
}

/** Copies `files` (from `checkoutFiles`) from `root` into `destination`, keeping modes and symbolic links. */
export function copyFiles(files: readonly string[], destination: string, root = REPO_ROOT): void {
  for (const path of files) {
    mkdirSync(dirname(join(destination, path)), { recursive: true });
    cpSync(join(root, path), join(destination, path), { verbatimSymlinks: true, preserveTimestamps: true });
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
