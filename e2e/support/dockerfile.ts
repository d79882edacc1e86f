/**
 * Builds a Dockerfile's stages without a Docker engine, closely enough to
 * catch what breaks real builds of this repository's Dockerfile: a file a
 * stage needs but never COPYs, a command that fails, an image missing what it
 * runs.
 *
 * Each stage gets its own directory standing for its root filesystem. COPY
 * copies from the build context — the repository as a clean checkout holds it
 * (`checkoutFiles`), minus what .dockerignore excludes — or from an earlier
 * stage's directory (`--from`); RUN runs with `sh -c` in the directory standing
 * for WORKDIR, with the stage's ENV. What it cannot stand for: the base image
 * (commands run with this machine's tools, so the image's Node major version
 * must be this process's) and USER (files are not re-owned).
 *
 * Anything it does not understand — ADD, SHELL, globs, variables in paths —
 * is an error, never skipped.
 */
import { spawn } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';
import { shellEnv } from './env.js';
import { checkoutFiles, copyFiles, REPO_ROOT } from './worktree.js';

export interface Instruction {
  /** Upper case: FROM, COPY, RUN, … */
  op: string;
  /** The rest of the instruction, continuation lines joined. */
  rest: string;
  /** 1-based line in the Dockerfile where it starts. */
  line: number;
}

export interface Stage {
  /** `FROM <base>`. */
  base: string;
  /** `AS <name>`, if any. */
  name?: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages (comments, blank lines and parser directives dropped). */
export function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const first = lines[i]!;
    if (/^\s*(#|$)/.test(first)) continue;
    const start = i + 1;
    let joined = first;
    // A trailing backslash continues the instruction; comment lines inside it are dropped.
    while (/\\\s*$/.test(joined) && i + 1 < lines.length) {
      joined = joined.replace(/\\\s*$/, '');
      i++;
      if (!/^\s*#/.test(lines[i]!)) joined += '\n' + lines[i]!;
    }
    const match = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(joined);
    if (!match) throw new Error(`Dockerfile line ${start}: cannot parse "${first}"`);
    instructions.push({ op: match[1]!.toUpperCase(), rest: match[2]!.trim(), line: start });
  }
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.op === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.rest);
      if (!from) throw new Error(`Dockerfile line ${instruction.line}: cannot parse FROM ${instruction.rest}`);
      stages.push({ base: from[1]!, ...(from[2] !== undefined && { name: from[2] }), instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.op !== 'ARG') throw new Error(`Dockerfile line ${instruction.line}: ${instruction.op} before the first FROM`);
    } else {
      stages[stages.length - 1]!.instructions.push(instruction);
    }
  }
  if (stages.length === 0) throw new Error('the Dockerfile has no FROM');
  return stages;
}

/** The result of the last stage, ready to run like `docker run`. */
export interface Image {
  /** Directory standing for the image's root filesystem. */
  root: string;
  /** WORKDIR, as a path inside the image. */
  workdir: string;
  /** WORKDIR on this machine. */
  cwd: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  /** Every stage's root directory, by name (or index). */
  stages: Map<string, string>;
}

export interface BuildOptions {
  /** The Dockerfile's text. Default: the repository's Dockerfile. */
  dockerfile?: string;
  /** Scratch directory; the stages' roots and the context are made inside it. */
  scratch: string;
  /** Receives each step as it starts, and the output of failed commands. */
  log?: (line: string) => void;
  /** Longest a RUN may take. Default: 5 minutes. */
  runTimeoutMs?: number;
}

/** Builds every stage in order; rejects at the first step that would fail a `docker build`. */
export async function buildImage(options: BuildOptions): Promise<Image> {
  const text = options.dockerfile ?? readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const log = options.log ?? (() => {});
  const stages = parseDockerfile(text);
  const context = join(options.scratch, 'context');
  await makeContext(context);

  const built = new Map<string, string>();
  const images = new Map<string, Image>();
  let image: Image | undefined;
  for (const [index, stage] of stages.entries()) {
    checkBase(stage.base, built);
    const root = join(options.scratch, `stage-${index}${stage.name ? `-${stage.name}` : ''}`);
    mkdirSync(root, { recursive: true });
    // FROM an earlier stage starts from its filesystem and settings.
    const parent = images.get(stage.base);
    if (parent !== undefined) cpSync(parent.root, root, { recursive: true, verbatimSymlinks: true });
    const state: Image = {
      root,
      workdir: parent?.workdir ?? '/',
      cwd: join(root, parent?.workdir ?? '/'),
      env: { ...parent?.env },
      entrypoint: [...(parent?.entrypoint ?? [])],
      cmd: [...(parent?.cmd ?? [])],
      stages: built,
    };
    const args: Record<string, string> = {};
    for (const instruction of stage.instructions) {
      const where = `Dockerfile line ${instruction.line} (${instruction.op} ${instruction.rest.split('\n')[0]})`;
      log(`${stage.name ?? `stage ${index}`}: ${instruction.op} ${instruction.rest.replace(/\s*\n\s*/g, ' ')}`);
      switch (instruction.op) {
        case 'WORKDIR': {
          noVariables(instruction.rest, where);
          state.workdir = posix.resolve(state.workdir, instruction.rest);
          state.cwd = join(root, state.workdir);
          mkdirSync(state.cwd, { recursive: true });
          break;
        }
        case 'ENV':
          Object.assign(state.env, parseAssignments(instruction.rest, where, true));
          break;
        case 'ARG':
          Object.assign(args, parseAssignments(instruction.rest, where, false));
          break;
        case 'COPY':
          copy(instruction.rest, { context, built, state, where });
          break;
        case 'RUN':
          await runStep(instruction.rest, { ...args, ...state.env }, state.cwd, where, log, options.runTimeoutMs ?? 300_000);
          break;
        case 'ENTRYPOINT':
          state.entrypoint = execForm(instruction.rest, where);
          state.cmd = [];
          break;
        case 'CMD':
          state.cmd = execForm(instruction.rest, where);
          break;
        case 'USER':
        case 'EXPOSE':
        case 'LABEL':
        case 'STOPSIGNAL':
        case 'HEALTHCHECK':
        case 'VOLUME':
          break;
        default:
          throw new Error(`${where}: ${instruction.op} is not supported by this emulation of docker build; extend e2e/support/dockerfile.ts`);
      }
    }
    for (const key of [String(index), ...(stage.name === undefined ? [] : [stage.name])]) {
      built.set(key, root);
      images.set(key, state);
    }
    image = state;
  }
  return image!;
}

/** The build context: the clean checkout's files, minus what .dockerignore excludes. */
async function makeContext(context: string): Promise<void> {
  const files = await checkoutFiles();
  let ignore = '';
  try {
    ignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8');
  } catch {
    // No .dockerignore: everything is sent.
  }
  const excluded = dockerignore(ignore);
  mkdirSync(context, { recursive: true });
  copyFiles(files.filter((path) => !excluded(path)), context);
}

/**
 * .dockerignore's rules: Go's filepath.Match patterns plus `**` (any number of
 * directories), matched against a path or any of its parent directories; `!`
 * re-includes; the last matching rule wins.
 */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = posix.normalize((negated ? line.slice(1) : line).trim()).replace(/^\/+/, '').replace(/\/+$/, '');
      return { negated, regex: globRegex(pattern) };
    });
  return (path) => {
    const parts = path.split('/');
    let excluded = false;
    for (const rule of rules) {
      for (let n = 1; n <= parts.length; n++) {
        if (rule.regex.test(parts.slice(0, n).join('/'))) {
          excluded = !rule.negated;
          break;
        }
      }
    }
    return excluded;
  };
}

function globRegex(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      // `**/` matches zero or more directories; a trailing `**` anything.
      if (pattern[i + 2] === '/') {
        source += '(?:.*/)?';
        i += 2;
      } else {
        source += '.*';
        i += 1;
      }
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i);
      if (end < 0) throw new Error(`.dockerignore: unterminated [ in ${pattern}`);
      source += pattern.slice(i, end + 1).replace(/^\[!/, '[^');
      i = end;
    } else source += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

function checkBase(base: string, built: Map<string, string>): void {
  if (built.has(base)) return;
  const node = /^node:(\d+)/.exec(base);
  if (!node) throw new Error(`FROM ${base}: this emulation stands in for node:<version> images and earlier stages only`);
  const here = process.versions.node.split('.')[0];
  if (node[1] !== here) {
    throw new Error(`FROM ${base}: the emulation runs the image's commands with this machine's Node ${here}; run the test with Node ${node[1]}`);
  }
}

function noVariables(text: string, where: string): void {
  if (/\$/.test(text)) throw new Error(`${where}: variables are not supported by this emulation`);
}

/** `K=V K2="v w"`, or the legacy `K V` (ENV only); ARG without a value is unset. */
function parseAssignments(text: string, where: string, legacy: boolean): Record<string, string> {
  noVariables(text, where);
  const result: Record<string, string> = {};
  if (legacy && !/^\S+=/.test(text)) {
    const [, key, value] = /^(\S+)\s+([\s\S]*)$/.exec(text) ?? [];
    if (key === undefined) throw new Error(`${where}: cannot parse`);
    result[key] = value!;
    return result;
  }
  for (const token of text.match(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g) ?? []) {
    const eq = token.indexOf('=');
    if (eq < 0) continue;
    result[token.slice(0, eq)] = token.slice(eq + 1).replace(/^"([\s\S]*)"$|^'([\s\S]*)'$/, '$1$2');
  }
  return result;
}

function execForm(text: string, where: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${where}: only the exec form (a JSON array) is supported`);
  }
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) throw new Error(`${where}: expected a JSON array of strings`);
  return parsed as string[];
}

interface CopyScope {
  context: string;
  built: Map<string, string>;
  state: Image;
  where: string;
}

/** COPY [--from=stage] [--chown=…] [--link] src… dest, with Docker's rules for files and directories. */
function copy(rest: string, { context, built, state, where }: CopyScope): void {
  noVariables(rest, where);
  const words = rest.startsWith('[') ? execForm(rest, where) : rest.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    const [name, value] = flag.split('=', 2) as [string, string | undefined];
    if (name === '--from' && value) from = value;
    else if (name !== '--chown' && name !== '--link') throw new Error(`${where}: ${flag} is not supported by this emulation`);
  }
  if (words.length < 2) throw new Error(`${where}: COPY needs a source and a destination`);
  const destination = words.pop()!;
  const sourceRoot = from === undefined ? context : built.get(from);
  if (sourceRoot === undefined) throw new Error(`${where}: no earlier stage named ${from}`);
  const destInImage = posix.resolve(state.workdir, destination);
  const target = join(state.root, destInImage);
  const intoDirectory = destination.endsWith('/') || words.length > 1;
  for (const source of words) {
    if (/[*?[]/.test(source)) throw new Error(`${where}: wildcards are not supported by this emulation`);
    const inside = posix.resolve('/', source);
    const path = join(sourceRoot, inside);
    let stats;
    try {
      stats = lstatSync(path);
    } catch {
      throw new Error(
        `${where}: "${source}" not found ` +
          (from === undefined
            ? 'in the build context (the files git tracks plus working-tree changes, minus .dockerignore)'
            : `in stage ${from}`),
      );
    }
    if (stats.isDirectory()) {
      // A directory's contents are copied, not the directory itself.
      mkdirSync(target, { recursive: true });
      cpSync(path, target, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    } else {
      const file = intoDirectory || isDirectory(target) ? join(target, basename(inside)) : target;
      mkdirSync(dirname(file), { recursive: true });
      cpSync(path, file, { verbatimSymlinks: true, preserveTimestamps: true });
    }
  }
}

function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

async function runStep(
  command: string,
  env: Record<string, string>,
  cwd: string,
  where: string,
  log: (line: string) => void,
  timeoutMs: number,
): Promise<void> {
  const argv = command.startsWith('[') ? execForm(command, where) : ['sh', '-c', command];
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env: { ...shellEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | string>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode, signal) => resolve(exitCode ?? signal ?? 'unknown'));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) {
    log(output);
    throw new Error(`${where} failed (exit ${code}):\n${output.split('\n').slice(-40).join('\n')}`);
  }
}
