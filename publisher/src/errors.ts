import { PublishErrorCode } from './codes.js';

/** Every failure of a publish the publisher accepted to try; `code` says which (codes.ts). An invalid key or body is a `TypeError`. */
export class PublishError extends Error {
  override readonly name: string = 'PublishError';
  constructor(
    readonly code: PublishErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** `publish()` refused a message because the buffer was full (`code` `buffer_full`). */
export class BufferFullError extends PublishError {
  override readonly name = 'BufferFullError';
  constructor(
    /** The `maxBuffered` that was reached. */
    readonly limit: number,
    message: string,
  ) {
    super(PublishErrorCode.BufferFull, message);
  }
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
