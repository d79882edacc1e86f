/** A pino logger that keeps what it logs, for checking what an operator would read. */
import pino, { type Logger } from 'pino';

export interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export const WARN = 40;
export const ERROR = 50;

export function recordingLog(): { log: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) });
  return { log, records };
}
