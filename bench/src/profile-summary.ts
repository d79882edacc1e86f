/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and tells where the time
 * went: the top frames by self time, and self time grouped by where the code
 * lives (a node_modules package, the gateway's own code, Node internals, V8
 * builtins such as JSON.parse, GC). Also usable alone:
 *   node bench/dist/profile-summary.js FILE.cpuprofile [TOP]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  busyMs: number;
  frames: Array<{ frame: string; selfMs: number; selfPct: number }>;
  groups: Array<{ group: string; selfMs: number; selfPct: number }>;
}

function where(url: string): string {
  if (!url) return '';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (nm) return `${nm[1]}/${nm[2]}`;
  const own = /\/((?:server|shared)\/dist\/.*)$/.exec(url);
  if (own) return own[1]!;
  return url.replace(/^file:\/\//, '');
}

function groupOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return '(program: native, not attributed)';
    return 'V8 builtins (JSON, Buffer, …)';
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) return nm[1]!;
  if (/\/(server|shared)\/dist\//.test(url)) return 'topicgate (server, shared)';
  if (url.startsWith('node:')) return 'Node internals';
  return url;
}

/**
 * `window` (µs on CLOCK_MONOTONIC, which is V8's profile clock on Linux and the
 * bench's shared clock) keeps only the samples taken inside it: the
 * measurement window, without start-up, connects and shutdown.
 */
export function summarize(file: string, top = 25, window?: { fromUs: number; toUs: number }): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const frames = new Map<string, number>();
  const groups = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    total += us;
    const group = groupOf(node);
    if (group === 'idle') {
      idle += us;
      continue;
    }
    const { functionName, url, lineNumber } = node.callFrame;
    const frame = `${functionName || '(anonymous)'}${url ? ` ${where(url)}:${lineNumber + 1}` : ''}`;
    frames.set(frame, (frames.get(frame) ?? 0) + us);
    groups.set(group, (groups.get(group) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number) => Math.round((us / busy) * 1000) / 10;
  return {
    totalMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    frames: [...frames].sort((a, b) => b[1] - a[1]).slice(0, top).map(([frame, us]) => ({ frame, selfMs: Math.round(us / 1000), selfPct: pct(us) })),
    groups: [...groups].sort((a, b) => b[1] - a[1]).map(([group, us]) => ({ group, selfMs: Math.round(us / 1000), selfPct: pct(us) })),
  };
}

export function summaryMarkdown(title: string, s: ProfileSummary): string {
  const lines = [`### ${title}`, '', `${s.busyMs} ms busy of ${s.totalMs} ms (${Math.round((s.busyMs / Math.max(1, s.totalMs)) * 100)} % of one core; the rest idle). Self time, % of busy time:`, '', '| self % | self ms | frame |', '|---:|---:|---|'];
  for (const f of s.frames) lines.push(`| ${f.selfPct} | ${f.selfMs} | \`${f.frame.replace(/\|/g, '\\|')}\` |`);
  lines.push('', '| self % | where |', '|---:|---|');
  for (const g of s.groups) lines.push(`| ${g.selfPct} | ${g.group} |`);
  return lines.join('\n') + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node bench/dist/profile-summary.js FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  process.stdout.write(summaryMarkdown(file, summarize(file, Number(top ?? 25))));
}
