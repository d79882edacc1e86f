#!/usr/bin/env node
// The `topicgate` command as npm links it (node_modules/.bin/topicgate).
//
// npm links a workspace's bin only if the file exists at install time, and
// `npm ci` runs before `npm run build` creates dist/: so the linked file is
// this committed one, and the command itself is the compiled dist/cli.js.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(
    `topicgate: the command is not built yet (${fileURLToPath(cli)} is missing): ` +
      'run `npm run build` first, in the repository root\n',
  );
  process.exit(1);
}
await import(cli.href);
