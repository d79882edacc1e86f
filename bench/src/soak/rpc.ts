/**
 * Request/reply over Node's IPC channel, for the soak's children (load
 * workers, publisher). The parent side is registered with processes.ts, so
 * no child outlives the soak; the child side exits when the parent goes away.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exited, track } from '../processes.js';
import type { ChildMessage } from './messages.js';

export class RpcChild<Command extends { op: string }> {
  private counter = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private eventHandler: (event: unknown) => void = () => undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly label: string,
  ) {
    child.on('message', (msg: ChildMessage) => {
      if (msg.type === 'event') this.eventHandler(msg.event);
      else if (msg.type === 'reply') {
        const waiter = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.ok) waiter?.resolve(msg.value);
        else waiter?.reject(new Error(`${label}: ${msg.error}`));
      }
    });
    child.once('exit', (code, signal) => {
      for (const w of this.pending.values()) w.reject(new Error(`${label} exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  /** Forks `file` (relative to this module) and waits for its `ready`. */
  static async fork<C extends { op: string }>(file: string, label: string): Promise<RpcChild<C>> {
    const child = track(fork(fileURLToPath(new URL(file, import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const rpc = new RpcChild<C>(child, label);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (msg: ChildMessage) => {
        if (msg.type !== 'ready') return;
        child.off('message', onMessage);
        resolve();
      };
      child.on('message', onMessage);
      child.once('exit', (code) => reject(new Error(`${label} exited (${code}) before it was ready`)));
    });
    return rpc;
  }

  get pid(): number {
    return this.child.pid!;
  }

  onEvent(handler: (event: unknown) => void): void {
    this.eventHandler = handler;
  }

  request<T>(cmd: Command, timeoutMs = 60_000): Promise<T> {
    const id = ++this.counter;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label} did not answer "${cmd.op}" within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      if (!this.child.connected) return this.pending.get(id)!.reject(new Error(`${this.label} is gone`));
      this.child.send({ id, cmd });
    });
  }

  /** Closing the IPC channel asks the child to leave; SIGKILL if it does not within 5 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.disconnect();
    if (!(await exited(this.child, 5000))) {
      this.child.kill('SIGKILL');
      await exited(this.child, 5000);
    }
  }
}

/** The child side: answers commands with `handle`, and sends events. */
export function serveRpc<Command>(handle: (cmd: Command) => Promise<unknown>, onParentGone: () => Promise<void>): void {
  process.on('message', (msg: { id: number; cmd: Command }) => {
    handle(msg.cmd).then(
      (value) => send({ type: 'reply', id: msg.id, ok: true, value }),
      (err: unknown) => send({ type: 'reply', id: msg.id, ok: false, error: (err as Error).stack ?? String(err) }),
    );
  });
  // The orchestrator went away (finished, crashed, Ctrl-C): close what we hold and leave.
  process.on('disconnect', () => {
    setTimeout(() => process.exit(0), 3000).unref();
    void onParentGone().finally(() => process.exit(0));
  });
  send({ type: 'ready' });
}

export function sendEvent(event: unknown): void {
  send({ type: 'event', event });
}

function send(message: ChildMessage): void {
  if (process.connected) process.send?.(message);
}
