/** Why a publish failed: the `code` of every `PublishError`. */
export const PublishErrorCode = {
  /**
   * The publisher already holds `maxBuffered` messages the broker has not
   * confirmed (it is unreachable, or slower than you publish): this message
   * was not taken. Slow down and retry, or raise `maxBuffered`.
   */
  BufferFull: 'buffer_full',
  /** `close()` was called: before this publish, or before the broker confirmed it (it may or may not have been delivered). */
  Closed: 'closed',
  /**
   * The broker took the message but refused to confirm it (basic.nack): a
   * queue it was routed to refused it (`x-overflow: reject-publish`, full) or
   * the broker failed internally. Other queues may have it, so it is not sent again.
   */
  NotConfirmed: 'not_confirmed',
  /**
   * A convention helper refused a body that would break what the SDK relies
   * on: a resource version that is not the next one, a change after a
   * deletion, log lines that do not continue the log.
   */
  OutOfSequence: 'out_of_sequence',
} as const;
export type PublishErrorCode = (typeof PublishErrorCode)[keyof typeof PublishErrorCode];
