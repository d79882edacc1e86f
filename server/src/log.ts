import pino, { type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr, so `topicgate token` and `publish` keep stdout for their output. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'topicgate' } }, pino.destination(2));
}
