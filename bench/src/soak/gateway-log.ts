/**
 * The gateway's log (pino JSON lines), read as it grows. The soak counts the
 * lines that mean something went wrong on the broker side — a channel the
 * broker (or amqplib) closed, which can drop a consumer's deliveries — and
 * every error-level line, with their times so that losses can be put next to
 * them.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

export const CHANNEL_CLOSED = 'the broker closed a channel';
export const CONSUMER_CHANNEL_CLOSED = 'the broker closed a consumer channel';

/** pino levels: 50 error, 60 fatal. */
const ERROR_LEVEL = 50;
const MAX_EVENTS = 500;

export interface LogEvent {
  /** Wall-clock ms (pino's `time`). */
  time: number;
  level: number;
  msg: string;
  /** The line's other fields that say why (err, code, reason, queue, ...), shortened. */
  detail: string;
}

export interface LogSummary {
  lines: number;
  channelClosed: number;
  consumerChannelClosed: number;
  errors: number;
  /** Lines at warn (40) or above, by message. */
  byMessage: Record<string, number>;
  /** Channel closes and error-level lines, oldest first (at most 500). */
  events: LogEvent[];
  /** Lines that are not JSON (stdout noise, crashes). */
  other: string[];
}

export class GatewayLog {
  private offset = 0;
  private rest = '';
  readonly summary: LogSummary = { lines: 0, channelClosed: 0, consumerChannelClosed: 0, errors: 0, byMessage: {}, events: [], other: [] };

  constructor(readonly path: string) {}

  /** Reads what was appended since the last call. */
  scan(): LogSummary {
    let size = 0;
    try {
      size = statSync(this.path).size;
    } catch {
      return this.summary;
    }
    if (size > this.offset) {
      const fd = openSync(this.path, 'r');
      try {
        const buf = Buffer.alloc(size - this.offset);
        readSync(fd, buf, 0, buf.length, this.offset);
        this.offset = size;
        const text = this.rest + buf.toString('utf8');
        const lines = text.split('\n');
        this.rest = lines.pop() ?? '';
        for (const line of lines) this.line(line);
      } finally {
        closeSync(fd);
      }
    }
    return this.summary;
  }

  private line(line: string): void {
    if (line.trim() === '') return;
    const s = this.summary;
    s.lines++;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      if (s.other.length < 20) s.other.push(line.slice(0, 300));
      return;
    }
    const level = typeof entry.level === 'number' ? entry.level : 0;
    const msg = typeof entry.msg === 'string' ? entry.msg : '';
    if (level >= 40) s.byMessage[msg] = (s.byMessage[msg] ?? 0) + 1;
    const channel = msg === CHANNEL_CLOSED || msg === CONSUMER_CHANNEL_CLOSED;
    if (msg === CHANNEL_CLOSED) s.channelClosed++;
    if (msg === CONSUMER_CHANNEL_CLOSED) s.consumerChannelClosed++;
    if (level >= ERROR_LEVEL) s.errors++;
    if ((channel || level >= ERROR_LEVEL) && s.events.length < MAX_EVENTS) {
      const { level: _l, time: _t, msg: _m, pid: _p, hostname: _h, service: _s, ...fields } = entry;
      s.events.push({ time: typeof entry.time === 'number' ? entry.time : 0, level, msg, detail: JSON.stringify(fields).slice(0, 300) });
    }
  }
}
