/**
 * For the specs that install this repository's packages into an application
 * outside it (sdk-package, publisher-package, react-package): commands, the
 * repository's own dependency versions, the packing and installing itself, a
 * README's complete example, and strict projects checked by the application's
 * own tsc.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
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

/** An application outside the repository that installed packed workspaces, as the packages' READMEs tell a user to. */
export interface OutsideApp<Workspace extends string = string> {
  /** A directory outside the repository holding the tarballs and the application. */
  readonly scratch: string;
  readonly app: string;
  /** Each tarball, by workspace folder (`client`, `react`, `publisher`). */
  readonly tarballs: Readonly<Record<Workspace, string>>;
  remove(): void;
}

/**
 * `npm pack -w <workspace>…` in the repository, then `npm install` of the
 * tarballs and of `dependencies` (at the repository's own versions) in a new
 * application outside it.
 */
export async function installPacked<Workspace extends string>(
  workspaces: Workspace[],
  { appName, dependencies, timeoutMs = 180_000 }: { appName: string; dependencies: string[]; timeoutMs?: number },
): Promise<OutsideApp<Workspace>> {
  const scratch = mkdtempSync(join(tmpdir(), `topicgate-${appName}-`));
  const remove = () => rmSync(scratch, { recursive: true, force: true });
  try {
    if (!relative(REPO_ROOT, scratch).startsWith('..')) throw new Error(`${scratch} is inside the repository: an application there would find the workspace packages`);
    await run('npm', ['pack', ...workspaces.flatMap((workspace) => ['-w', workspace]), '--pack-destination', scratch], REPO_ROOT);
    const tarballs = Object.fromEntries(workspaces.map((workspace) => [workspace, join(scratch, tarballName(workspace))])) as Record<Workspace, string>;
    const packed = readdirSync(scratch).filter((name) => name.endsWith('.tgz')).sort();
    const expected = workspaces.map(tarballName).sort();
    if (packed.join() !== expected.join()) throw new Error(`npm pack wrote ${packed.join(', ') || 'nothing'}; expected ${expected.join(', ')}`);

    const app = join(scratch, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: appName, version: '1.0.0', private: true, type: 'module' }, null, 2));
    await run('npm', ['install', '--no-audit', '--no-fund', ...workspaces.map((workspace) => tarballs[workspace]), ...dependencies.map((name) => `${name}@${repoVersion(name)}`)], app, { timeoutMs });
    return { scratch, app, tarballs, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

/** The file `npm pack` names a workspace's tarball: `@scope/name` at 1.2.3 → `scope-name-1.2.3.tgz`. */
function tarballName(workspace: string): string {
  const { name, version } = JSON.parse(readFileSync(join(REPO_ROOT, workspace, 'package.json'), 'utf8')) as { name: string; version: string };
  return `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`;
}

/**
 * A new TypeScript project in `app` holding `files`, as strict as a careful
 * application is, with every package's declarations checked; `options` adds
 * to its compiler options (module, lib, jsx, …). Returns its directory.
 */
export function strictProject(app: string, files: Record<string, string>, options: Record<string, unknown>): string {
  const project = mkdtempSync(join(app, 'project-'));
  for (const [name, code] of Object.entries(files)) writeFileSync(join(project, name), code);
  const compilerOptions = { strict: true, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true, target: 'ES2022', skipLibCheck: false, ...options };
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: Object.keys(files) }));
  return project;
}
