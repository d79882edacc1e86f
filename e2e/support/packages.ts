/**
 * For the specs that install this repository's packages into an application
 * outside it (sdk-package, publisher-package, react-package): commands, the
 * repository's own dependency versions, a README's complete example, and the
 * application's own tsc.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { shellEnv } from './env.js';
import { REPO_ROOT } from './worktree.js';

/** Runs a command to completion; rejects with its output when it fails. */
export function run(
  command: string,
  args: string[],
  cwd: string,
  { env = {}, timeoutMs = 180_000 }: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env: { ...shellEnv(), ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n${stdout.slice(-5000)}\n${stderr.slice(-5000)}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** The repository's installed version of `name`: the application outside it builds with what the repository was tested with. */
export function repoVersion(name: string): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** A README's "## A complete example": the one ```<lang> block of that section. */
export function completeExample(readme: string, lang = 'ts'): string {
  const text = readFileSync(join(REPO_ROOT, readme), 'utf8');
  const section = /^## A complete example\n([\s\S]*?)(?=^## )/m.exec(text)?.[1];
  const code = section && new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section)?.[1];
  if (!code) throw new Error(`${readme} has no "## A complete example" section with a \`\`\`${lang} block`);
  return code;
}

/** The error lines of the application's own tsc for a project (none: it compiled). */
export async function typeErrorsIn(app: string, project: string): Promise<string[]> {
  const tsc = join(app, 'node_modules/typescript/bin/tsc');
  const output = await new Promise<string>((resolve) =>
    execFile(process.execPath, [tsc, '-p', project, '--pretty', 'false'], { cwd: app, env: shellEnv() }, (_err, stdout, stderr) => resolve(stdout + stderr)),
  );
  return output.split('\n').filter((line) => /error TS\d+/.test(line));
}
