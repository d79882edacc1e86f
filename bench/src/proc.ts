/**
 * CPU and memory of other processes, from /proc (Linux only): the gateway,
 * the broker's Erlang VM, the load generators and the publisher are all
 * separate processes, so each side's cost is read separately.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ; 100 on every Linux architecture Node runs on

/** User + system CPU seconds consumed so far by `pid` (0 when it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Resident set size of `pid` in bytes (0 when it is gone). */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Whole-machine busy and total CPU seconds (all cores), to tell when the box itself is saturated. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / CLOCK_TICKS_PER_SECOND, total: total / CLOCK_TICKS_PER_SECOND };
}

/** The soft open-file limit of `pid` ("unlimited" as Infinity). */
export function openFileLimit(pid: number | 'self' = 'self'): number {
  try {
    const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
    const soft = /Max open files\s+(\S+)/.exec(limits)?.[1];
    return soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return NaN;
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** CPU used by a set of processes between two samples, as % of one core. */
export class CpuMeter {
  private readonly start = new Map<string, number>();
  private startMachine = machineCpu();
  private startedAt = performance.now();

  constructor(private readonly pids: () => Record<string, number[]>) {
    this.reset();
  }

  reset(): void {
    this.start.clear();
    for (const [name, list] of Object.entries(this.pids())) this.start.set(name, list.reduce((s, pid) => s + cpuSeconds(pid), 0));
    this.startMachine = machineCpu();
    this.startedAt = performance.now();
  }

  /** `{ gateway: 87, broker: 120, ... , machine: 190 }` in % of one core since reset(). */
  read(): Record<string, number> {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const out: Record<string, number> = {};
    for (const [name, list] of Object.entries(this.pids())) {
      const used = list.reduce((s, pid) => s + cpuSeconds(pid), 0) - (this.start.get(name) ?? 0);
      out[name] = Math.round((used / seconds) * 100);
    }
    const m = machineCpu();
    out.machine = Math.round(((m.busy - this.startMachine.busy) / seconds) * 100);
    // Whatever else ran on the box meanwhile (other people's tests, the kernel).
    out.others = Math.max(0, out.machine - Object.entries(out).reduce((s, [k, v]) => (k === 'machine' ? s : s + v), 0));
    return out;
  }
}

/**
 * Waits (at most `maxMs`) until the whole machine is below `busyPct` % of one
 * core over a 1 s sample: a bench run started while someone else's test
 * suite saturates the box measures that suite. Returns the last sample.
 */
export async function waitForQuiet(busyPct: number, maxMs: number): Promise<{ busyPct: number; waitedMs: number }> {
  const started = Date.now();
  for (;;) {
    const a = machineCpu();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const b = machineCpu();
    const busy = Math.round(((b.busy - a.busy) / ((b.total - a.total) / cpus().length)) * 100);
    if (busy <= busyPct || Date.now() - started >= maxMs) return { busyPct: busy, waitedMs: Date.now() - started };
  }
}

/**
 * The RabbitMQ node's Erlang VM (beam.smp booting `rabbit`), not a CLI tool's
 * short-lived VM, nor a node of a cluster rig (scripts/cluster.sh: their
 * command lines look the same, their environment names the rig's state
 * directory); 0 if none.
 */
export function findBrokerPid(): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes('beam.smp') && cmd.includes('rabbit\0boot') && !isClusterRigProcess(Number(entry))) return Number(entry);
    } catch {
      /* gone */
    }
  }
  return 0;
}

/** True when `pid`'s environment has TOPICGATE_CLUSTER_DIR (every process scripts/cluster.sh starts inherits it); false when unreadable. */
export function isClusterRigProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').some((v) => v.startsWith('TOPICGATE_CLUSTER_DIR='));
  } catch {
    return false;
  }
}
