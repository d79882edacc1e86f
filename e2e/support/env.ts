/**
 * The environment of a fresh shell on this machine, for commands a test runs
 * as a user (or a Docker build) would: PATH, HOME and the like, without what
 * the test run adds — npm's script context when run by `npm test` (npm reads
 * its config files again itself), vitest's NODE_ENV=test — or TOPICGATE_*
 * settings that would change what the command does.
 */
export function shellEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (/^(npm_|TOPICGATE_|VITEST)/i.test(name)) continue;
    if (['INIT_CWD', 'NODE', 'NODE_ENV', 'NODE_OPTIONS', 'TEST'].includes(name)) continue;
    env[name] = value;
  }
  return env;
}
