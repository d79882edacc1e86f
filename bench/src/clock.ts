/**
 * One clock for every bench process: CLOCK_MONOTONIC (process.hrtime) is
 * system-wide on Linux, so a timestamp taken by the publisher process can be
 * compared with one taken by a load-generator process. Microseconds.
 */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
