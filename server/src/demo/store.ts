/**
 * The demo's "database": the source of truth the REST API reads. Messages are
 * announcements of changes made here, never the other way round.
 */
import type { Build, BuildDeleted, LogChunk } from './model.js';

export class DemoStore {
  private readonly builds = new Map<number, Build>();
  private readonly logs = new Map<number, string[]>();
  private nextId = 1;

  constructor(private readonly keepBuilds = 50) {}

  createBuild(project: string, stepNames: string[]): Build {
    const id = this.nextId++;
    const build: Build = {
      id,
      project,
      state: 'pending',
      steps: stepNames.map((name) => ({ name, state: 'pending' })),
      version: 1,
      createdAt: Date.now() / 1000,
      startedAt: null,
      finishedAt: null,
      lines: 0,
    };
    this.builds.set(id, build);
    this.logs.set(id, []);
    return structuredClone(build);
  }

  /** Applies a change and bumps the version; returns the new state (a copy). */
  update(id: number, change: (build: Build) => void): Build {
    const build = this.builds.get(id);
    if (!build) throw new Error(`no build ${id}`);
    change(build);
    build.version++;
    return structuredClone(build);
  }

  appendLines(id: number, lines: string[]): LogChunk {
    const log = this.logs.get(id);
    if (!log) throw new Error(`no build ${id}`);
    const first = log.length;
    log.push(...lines);
    // The line count is part of the build row, but not a change worth a message (and version) each time.
    this.builds.get(id)!.lines = log.length;
    return { build: id, first, lines };
  }

  listBuilds(): Build[] {
    return [...this.builds.values()].map((b) => structuredClone(b));
  }

  getBuild(id: number): Build | undefined {
    const build = this.builds.get(id);
    return build && structuredClone(build);
  }

  /** Lines `[from, to)` of a build's log, clamped to what exists. */
  getLines(id: number, from: number, to: number): LogChunk | undefined {
    const log = this.logs.get(id);
    if (!log) return undefined;
    const start = Math.max(0, Math.min(from, log.length));
    const end = Math.max(start, Math.min(to, log.length));
    return { build: id, first: start, lines: log.slice(start, end) };
  }

  lineCount(id: number): number | undefined {
    return this.logs.get(id)?.length;
  }

  /** Deletes the oldest finished builds beyond `keepBuilds`; returns the deletions, to be announced. */
  prune(): BuildDeleted[] {
    const deleted: BuildDeleted[] = [];
    for (const [id, build] of this.builds) {
      if (this.builds.size <= this.keepBuilds) break;
      if (build.state === 'running' || build.state === 'pending') continue;
      this.builds.delete(id);
      this.logs.delete(id);
      // A deletion is a change like any other: the next version.
      deleted.push({ id, version: build.version + 1, deleted: true });
    }
    return deleted;
  }
}
