/**
 * Who holds which resumable queue on this gateway, so that a resume can make
 * the holder let go (docs/protocol.md §15.3). A client whose connection died
 * silently reconnects long before the gateway that served it notices (socket.io
 * pings, up to 45 s): that gateway still consumes the queue and must detach
 * it. A resume asks every gateway: this one directly, the others over the
 * control exchange (`takeover` messages, §12.7).
 */
export type LetGo = () => void;

export class Takeovers {
  private readonly holders = new Map<string, LetGo>();

  constructor(
    /** Tells the other gateways sharing the broker; absent on the embedded broker (one gateway). */
    private readonly broadcast: ((queue: string) => Promise<void>) | null = null,
  ) {}

  hold(queue: string, letGo: LetGo): void {
    this.holders.set(queue, letGo);
  }

  release(queue: string, letGo: LetGo): void {
    if (this.holders.get(queue) === letGo) this.holders.delete(queue);
  }

  /** A `takeover` for `queue` came over the control exchange (or from this gateway). */
  letGo(queue: string): boolean {
    const letGo = this.holders.get(queue);
    if (!letGo) return false;
    this.holders.delete(queue);
    letGo();
    return true;
  }

  /** Before resuming `queue`: whoever holds it, here or elsewhere, lets go. */
  async takeOver(queue: string): Promise<void> {
    this.letGo(queue);
    await this.broadcast?.(queue);
  }
}
