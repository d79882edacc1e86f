import type { TopicgateErrorCode } from './codes.js';

/**
 * Every error the SDK reports. `code` is one of the gateway's `ErrorCode`s or
 * one of the SDK's `ClientErrorCode`s; `message` is the gateway's own text
 * when the gateway sent one.
 */
export class TopicgateError extends Error {
  override readonly name = 'TopicgateError';
  readonly code: TopicgateErrorCode;

  constructor(code: TopicgateErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
