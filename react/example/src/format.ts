/** Labels, times and durations, as the demo's own pages show them. */
import type { Build } from './topics.js';

export const STATE_LABELS: Record<string, string> = { pending: 'queued', running: 'running', success: 'passed', failure: 'failed' };

function clockTime(date: Date): string {
  return date.toLocaleTimeString([], { hourCycle: 'h23' });
}

/** Epoch seconds → local wall-clock time. */
export function formatTime(seconds: number | null): string {
  return seconds ? clockTime(new Date(seconds * 1000)) : '—';
}

/** "8.4 s", "1 min 03 s". */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${Math.max(0, seconds).toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${String(Math.floor(seconds % 60)).padStart(2, '0')} s`;
}

/** How long a build has run (so far, while it runs). */
export function buildDuration(build: Build, now = Date.now()): number | null {
  if (build.startedAt === null) return null;
  return (build.finishedAt ?? now / 1000) - build.startedAt;
}

export { clockTime };
