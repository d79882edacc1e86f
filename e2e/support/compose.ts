/**
 * A compose file, checked with docker-compose itself (Debian's
 * docker-compose 1.29) and no Docker engine: `config` resolves and validates
 * it, and its resolved services are read as data.
 */
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ComposeFile<Service> {
  /** `docker-compose --file <file> …args` with `env` (by default the one the file was opened with). */
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }>;
  /** `docker-compose config`'s services, as data. */
  services(): Promise<Record<string, Service>>;
}

export function composeFile<Service>(file: string, env: NodeJS.ProcessEnv): ComposeFile<Service> {
  const compose = (args: string[], withEnv = env) => run('docker-compose', ['--file', file, ...args], { env: withEnv, maxBuffer: 16 * 1024 * 1024 });
  return {
    run: compose,
    async services() {
      // `config` prints YAML; docker-compose 1.x is a Python program built on PyYAML: its own interpreter turns that into JSON.
      const { stdout: yaml } = await compose(['config']);
      const toJson = run(await composePython(), ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)']);
      toJson.child.stdin!.end(yaml);
      return (JSON.parse((await toJson).stdout) as { services: Record<string, Service> }).services;
    },
  };
}

/** Fails loudly, saying what to install, when docker-compose is missing: the tests of `file` need it. */
export async function requireDockerCompose(file: string): Promise<void> {
  try {
    await run('docker-compose', ['version']);
  } catch (err) {
    throw new Error(
      `docker-compose is not installed (${(err as Error).message.split('\n')[0]}). ` +
        `This test validates ${basename(file)} with it: install Debian's docker-compose (\`apt-get install docker-compose\`); CI installs it.`,
    );
  }
}

/** The interpreter on docker-compose's #! line (Debian: /usr/bin/python3, which has PyYAML), else python3. */
async function composePython(): Promise<string> {
  const { stdout } = await run('sh', ['-c', 'command -v docker-compose']);
  const file = await open(stdout.trim());
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(200), 0, 200, 0);
    return /^#!\s*(\S*python\S*)/.exec(buffer.toString('latin1', 0, bytesRead))?.[1] ?? 'python3';
  } finally {
    await file.close();
  }
}
