/**
 * Sums counters that several workers report: every number is added, nested
 * records (counts by reason, by code) are summed key by key.
 */
import type { WorkerCounters } from './messages.js';

type Tree = { [key: string]: number | Tree };

function addInto(target: Tree, source: Tree): void {
  for (const [key, value] of Object.entries(source)) {
    if (typeof value === 'number') target[key] = ((target[key] as number | undefined) ?? 0) + value;
    else addInto((target[key] ??= {}) as Tree, value);
  }
}

export function sumCounters(list: readonly WorkerCounters[]): WorkerCounters {
  const total: Tree = {};
  for (const c of list) addInto(total, c as unknown as Tree);
  return total as unknown as WorkerCounters;
}

/** Sum of a record's values. */
export function total(record: Record<string, number> | undefined): number {
  return Object.values(record ?? {}).reduce((a, b) => a + b, 0);
}
