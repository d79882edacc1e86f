#!/usr/bin/env node
/**
 * `npm pack` puts `@topicgate/shared` inside the tarballs of the packages
 * that depend on it (the SDK, the publisher: `bundleDependencies` in their
 * package.json), so that they install anywhere: outside this repository
 * there is no `@topicgate/shared` to install.
 *
 * npm bundles what it finds in the package's own node_modules, but in the
 * monorepo `@topicgate/shared` is linked in the root's. So the package's
 * `prepack` links it at <package>/node_modules/@topicgate/shared as well (npm
 * then packs shared's package.json and its "files"), and `postpack` removes
 * that link again. npm runs both in the package's directory.
 *
 *   node ../scripts/bundle-shared.mjs link | unlink
 */
import { lstatSync, mkdirSync, realpathSync, rmdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const shared = fileURLToPath(new URL('../shared', import.meta.url));
const modules = join(process.cwd(), 'node_modules');
const scope = join(modules, '@topicgate');
const link = join(scope, 'shared');

/** What is at `link`: nothing, our link to shared, or something else. */
function present() {
  let stats;
  try {
    stats = lstatSync(link);
  } catch (err) {
    if (err.code === 'ENOENT') return 'nothing';
    throw err;
  }
  return stats.isSymbolicLink() && realpathSync(link) === realpathSync(shared) ? 'ours' : 'other';
}

switch (process.argv[2]) {
  case 'link': {
    const found = present();
    if (found === 'ours') break;
    if (found === 'other') {
      console.error(`${link} exists and is not a link to ${shared}: remove it, then pack again`);
      process.exit(1);
    }
    mkdirSync(scope, { recursive: true });
    // Packages sit beside shared/. 'junction' lets Windows make it without privileges; elsewhere the type is ignored.
    symlinkSync('../../../shared', link, 'junction');
    break;
  }
  case 'unlink':
    if (present() !== 'ours') break;
    unlinkSync(link);
    // Leave no empty directories behind (rmdir refuses non-empty ones).
    for (const dir of [scope, modules]) {
      try {
        rmdirSync(dir);
      } catch {
        break;
      }
    }
    break;
  default:
    console.error('usage: node ../scripts/bundle-shared.mjs link | unlink (from a package directory)');
    process.exit(2);
}
