/**
 * A simulated CI: builds start, run their steps, stream log lines at a
 * realistic rate (tens of lines per second per running build) and finish as
 * success or failure. Every change goes to the store first, then is announced
 * through `createPublisher<DemoTopics>()`'s convention helpers, which check
 * that the store's versions grow by one and its log lines continue (what the
 * SDK's live views rely on) before anything is sent.
 */
import type { LogAppender, Publisher, ResourcePublisher } from '@topicgate/publisher';
import type { Logger } from '../log.js';
import type { Build, BuildEvent, DemoTopics } from './model.js';
import type { DemoStore } from './store.js';

export interface SimulatorOptions {
  /** Builds running at once. Default: 3. */
  maxRunning?: number;
  /** Mean time between new builds, ms. Default: 2500. */
  newBuildEveryMs?: number;
  /** Log lines per second per running build. Default: 30. */
  linesPerSecond?: number;
  /** Mean step duration, ms. Default: 3000. */
  stepMs?: number;
  /** Share of builds that fail. Default: 0.25. */
  failureRate?: number;
}

const PROJECTS = ['web-frontend', 'billing-service', 'search-indexer', 'mobile-app', 'auth-gateway', 'data-pipeline'];
const STEPS = ['checkout', 'install', 'compile', 'unit tests', 'integration tests', 'package', 'deploy to staging'];
const TICK_MS = 100;

/** What the simulator announces about one build: its changes (numbered) and its log (continued). */
interface Announcer {
  build: ResourcePublisher<DemoTopics, 'id'>;
  log: LogAppender;
}

interface Running {
  id: number;
  stepIndex: number;
  stepEndsAt: number;
  failsAtStep: number | null;
  lineCarry: number;
}

export class CiSimulator {
  private readonly running = new Map<number, Running>();
  private timer: NodeJS.Timeout | null = null;
  private nextBuildAt = 0;
  private readonly options: Required<SimulatorOptions>;
  /** Per build in the store; dropped when its deletion is announced. */
  private readonly announcers = new Map<number, Announcer>();

  constructor(
    private readonly store: DemoStore,
    private readonly publisher: Publisher<DemoTopics>,
    private readonly log: Logger,
    options: SimulatorOptions = {},
  ) {
    this.options = { maxRunning: 3, newBuildEveryMs: 2500, linesPerSecond: 30, stepMs: 3000, failureRate: 0.25, ...options };
  }

  start(): void {
    if (this.timer) return;
    this.nextBuildAt = Date.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    const now = Date.now();
    if (now >= this.nextBuildAt && this.running.size < this.options.maxRunning) {
      this.startBuild(now);
      this.nextBuildAt = now + this.options.newBuildEveryMs * (0.5 + Math.random());
    }
    for (const run of this.running.values()) this.advance(run, now);
  }

  private startBuild(now: number): void {
    const project = pick(PROJECTS);
    const steps = STEPS.slice(0, 4 + Math.floor(Math.random() * (STEPS.length - 3)));
    const created = this.store.createBuild(project, steps);
    this.announcers.set(created.id, {
      // The store numbered nothing before `created` (version 1): the helper expects 1 next.
      build: this.publisher.resource({ id: created.id }, { version: created.version - 1 }),
      log: this.publisher.logAppender('logs.{id}.append', { id: created.id }, { fields: { build: created.id } }),
    });
    this.announce(created, 'new');
    for (const gone of this.store.prune()) {
      // A build from before this simulator started (none today) would have no announcer: its deletion is announced all the same.
      const build = this.announcers.get(gone.id)?.build ?? this.publisher.resource({ id: gone.id }, { version: gone.version - 1 });
      this.announcers.delete(gone.id);
      this.sent(`builds.${gone.id}.deleted`, build.delete('builds.{id}.deleted', { ...gone }));
    }
    const failsAtStep = Math.random() < this.options.failureRate ? Math.floor(Math.random() * steps.length) : null;
    const build = this.store.update(created.id, (b) => {
      b.state = 'running';
      b.startedAt = now / 1000;
      b.steps[0]!.state = 'running';
    });
    this.announce(build, 'started');
    this.running.set(build.id, { id: build.id, stepIndex: 0, stepEndsAt: now + this.stepDuration(), failsAtStep, lineCarry: 0 });
  }

  private advance(run: Running, now: number): void {
    const build = this.store.getBuild(run.id)!;
    const step = build.steps[run.stepIndex]!;
    run.lineCarry += (this.options.linesPerSecond * TICK_MS) / 1000;
    const count = Math.floor(run.lineCarry);
    run.lineCarry -= count;
    if (count > 0) {
      this.appendLog(run.id, Array.from({ length: count }, () => logLine(build, step.name)));
    }
    if (now < run.stepEndsAt) return;

    const failed = run.failsAtStep === run.stepIndex;
    const last = failed || run.stepIndex === build.steps.length - 1;
    this.appendLog(run.id, [`${stamp()} ${step.name}: ${failed ? 'FAILED (exit code 1)' : 'ok'}`]);
    const updated = this.store.update(run.id, (b) => {
      b.steps[run.stepIndex]!.state = failed ? 'failure' : 'success';
      if (last) {
        b.state = failed ? 'failure' : 'success';
        b.finishedAt = now / 1000;
      } else {
        b.steps[run.stepIndex + 1]!.state = 'running';
      }
    });
    if (last) {
      this.running.delete(run.id);
      this.announce(updated, 'finished');
    } else {
      run.stepIndex++;
      run.stepEndsAt = now + this.stepDuration();
      this.announce(updated, 'step');
    }
  }

  private announce(build: Build, event: Exclude<BuildEvent, 'deleted'>): void {
    const announcer = this.announcers.get(build.id)!;
    this.sent(`builds.${build.id}.${event}`, announcer.build.update(`builds.{id}.${event}`, { ...build }));
  }

  /** Writes the lines to the store, then announces them from the number the store gave the first. */
  private appendLog(id: number, lines: string[]): void {
    const chunk = this.store.appendLines(id, lines);
    this.sent(`logs.${id}.append`, this.announcers.get(id)!.log.append(chunk.lines, chunk.first));
  }

  /** A lost announcement is what the SDK's REST reload exists for: log it, never crash the demo. */
  private sent(key: string, confirmed: Promise<void>): void {
    confirmed.catch((err: unknown) => this.log.warn({ key, err: (err as Error).message }, 'demo publish failed'));
  }

  private stepDuration(): number {
    return this.options.stepMs * (0.5 + Math.random());
  }
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

function stamp(): string {
  return new Date().toISOString().slice(11, 23);
}

const ACTIONS: Record<string, string[]> = {
  checkout: ['fetching origin', 'resolving deltas', 'checking out files'],
  install: ['resolving packages', 'fetching', 'linking dependencies', 'building native add-ons'],
  compile: ['compiling module', 'type-checking', 'emitting', 'bundling chunk'],
  'unit tests': ['PASS', 'PASS', 'PASS', 'running suite'],
  'integration tests': ['starting fixture', 'PASS', 'PASS', 'waiting for service'],
  package: ['adding layer', 'compressing', 'writing manifest'],
  'deploy to staging': ['uploading artifact', 'rolling out replica', 'health check ok'],
};

function logLine(build: Build, step: string): string {
  const action = pick(ACTIONS[step] ?? ['working']);
  const file = `src/${pick(['core', 'api', 'ui', 'lib', 'util'])}/${pick(['index', 'router', 'store', 'parser', 'client'])}.ts`;
  return `${stamp()} [${build.project}#${build.id}] ${step}: ${action} ${file}`;
}
