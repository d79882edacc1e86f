/**
 * The orchestrator's share of the churn: rounds of abrupt cuts, narrowing
 * and broadening token refreshes, and the slow client's pauses. (Workers do
 * the steady unsubscribe+subscribe churn themselves.) Each order goes to the
 * worker that owns the client.
 */
import { randomSource, type Scope } from './keys.js';
import { CUT_METHODS, type WorkerCommand } from './messages.js';
import type { SoakOptions } from './options.js';
import type { RpcChild } from './rpc.js';

export interface ChaosEvent {
  atS: number;
  what: string;
  client: number;
}

/** Timeline entries kept for the report (counts are in the workers' counters). */
const MAX_EVENTS = 300;
/** The slow client's first pause starts this long after publishing does. */
const FIRST_PAUSE_MS = 30_000;

export class Chaos {
  readonly events: ChaosEvent[] = [];
  errors = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly narrowed = new Set<number>();
  private readonly random = randomSource(0xc4a05);
  private nextCut = 0;

  constructor(
    private readonly options: SoakOptions,
    /** Clients that are cut and refreshed (every one but the slow client). */
    private readonly clients: readonly number[],
    private readonly slowClient: number,
    private readonly owner: (client: number) => RpcChild<WorkerCommand>,
    private readonly startedAt: number,
    private readonly log: (line: string) => void,
  ) {}

  start(): void {
    const o = this.options;
    if (o.cutEverySeconds > 0 && o.cutClients > 0) this.every(o.cutEverySeconds * 1000, () => this.cutRound());
    if (o.refreshEverySeconds > 0 && o.refreshClients > 0) this.every(o.refreshEverySeconds * 1000, () => this.refreshRound());
    if (o.slowEverySeconds > 0 && o.slowPauseSeconds > 0) {
      this.timers.push(
        setTimeout(() => {
          this.pauseSlow();
          this.every(o.slowEverySeconds * 1000, () => this.pauseSlow());
        }, FIRST_PAUSE_MS),
      );
    }
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
  }

  private every(ms: number, fn: () => void): void {
    this.timers.push(setInterval(fn, ms));
  }

  private cutRound(): void {
    for (const client of this.pick(this.clients, this.options.cutClients)) {
      // The methods take turns, so every round and every run exercises all four.
      const method = CUT_METHODS[this.nextCut++ % CUT_METHODS.length]!;
      this.order(client, `cut (${method})`, { op: 'cut', client, method });
    }
  }

  private refreshRound(): void {
    const broad = this.clients.filter((c) => !this.narrowed.has(c));
    for (const client of this.pick(broad, this.options.refreshClients)) {
      this.narrowed.add(client);
      this.refresh(client, 'narrow');
      this.timers.push(
        setTimeout(() => {
          this.narrowed.delete(client);
          this.refresh(client, 'broad');
        }, this.options.narrowSeconds * 1000),
      );
    }
  }

  private refresh(client: number, scope: Scope): void {
    this.order(client, `refresh (${scope})`, { op: 'refresh', client, scope });
  }

  private pauseSlow(): void {
    this.order(this.slowClient, `stops reading for ${this.options.slowPauseSeconds} s`, { op: 'pause', client: this.slowClient, ms: this.options.slowPauseSeconds * 1000 });
  }

  private order(client: number, what: string, cmd: WorkerCommand): void {
    if (this.events.length < MAX_EVENTS) this.events.push({ atS: Math.round((Date.now() - this.startedAt) / 100) / 10, what, client });
    this.owner(client)
      .request(cmd)
      .catch((err: Error) => {
        this.errors++;
        this.log(`client ${client}: ${what} failed: ${err.message}`);
      });
  }

  private pick(from: readonly number[], count: number): number[] {
    const pool = [...from];
    const out: number[] = [];
    while (out.length < count && pool.length > 0) out.push(pool.splice(Math.floor(this.random() * pool.length), 1)[0]!);
    return out;
  }
}
