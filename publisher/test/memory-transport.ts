/**
 * A transport that confirms every message at once and keeps it: for tests of
 * what the publisher sends (the convention helpers), without a broker. The
 * broker itself is tested in publishing.test.ts.
 */
import type { OutgoingMessage, PublisherTransport, TransportLink } from '../src/index.js';

export class MemoryTransport implements PublisherTransport {
  readonly description = 'memory';
  readonly sent: OutgoingMessage[] = [];
  /** Called with each message as it is confirmed. */
  onSend: (message: OutgoingMessage) => void = () => undefined;

  open(): Promise<TransportLink> {
    return Promise.resolve({
      where: 'memory',
      send: (message) => {
        this.sent.push(message);
        this.onSend(message);
        return Promise.resolve();
      },
      onFailure: () => undefined,
      close: () => Promise.resolve(),
    });
  }
}
