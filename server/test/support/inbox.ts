/**
 * Collects asynchronously arriving items and lets a test await "the next n"
 * or "one matching this", failing with what did arrive instead of hanging.
 */
export class Inbox<T> {
  readonly items: T[] = [];
  private waiters: Array<{ check: () => boolean; resolve: () => void }> = [];

  readonly push = (item: T): void => {
    this.items.push(item);
    this.waiters = this.waiters.filter((w) => (w.check() ? (w.resolve(), false) : true));
  };

  /** Resolves once at least `count` items have arrived in total. */
  async waitForCount(count: number, timeoutMs = 10_000): Promise<T[]> {
    await this.until(() => this.items.length >= count, `${count} items`, timeoutMs);
    return this.items.slice(0, count);
  }

  /** Resolves with the first item (already here or still to come) that satisfies `predicate`. */
  async waitFor(predicate: (item: T) => boolean, timeoutMs = 10_000): Promise<T> {
    await this.until(() => this.items.some(predicate), 'a matching item', timeoutMs);
    return this.items.find(predicate)!;
  }

  private until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.check !== check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${this.items.length}: ${JSON.stringify(this.items).slice(0, 2000)}`));
      }, timeoutMs);
      this.waiters.push({ check, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}
