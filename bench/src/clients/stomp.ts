/**
 * The smallest STOMP 1.2 client that can subscribe over RabbitMQ's Web-STOMP
 * (STOMP frames in WebSocket messages): CONNECT, SUBSCRIBE with a receipt,
 * MESSAGE bodies handed over as raw bytes, DISCONNECT.
 */
import WebSocket from 'ws';

export interface StompOptions {
  url: string;
  login: string;
  passcode: string;
  /** Called with the body bytes of every MESSAGE frame (start inclusive, end exclusive). */
  onMessage: (data: Buffer, bodyStart: number, bodyEnd: number) => void;
  onClose: () => void;
}

const NUL = 0;

export class StompClient {
  private ws!: WebSocket;
  private subCounter = 0;
  private receiptCounter = 0;
  private readonly receipts = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  private connected: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private closedByUs = false;

  constructor(private readonly options: StompOptions) {}

  connect(timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error('STOMP connect timed out'));
        this.ws.terminate();
      }, timeoutMs);
      this.connected = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      this.ws = new WebSocket(this.options.url, ['v12.stomp'], { perMessageDeflate: false });
      this.ws.on('open', () =>
        this.send(`CONNECT\naccept-version:1.2\nhost:/\nlogin:${this.options.login}\npasscode:${this.options.passcode}\nheart-beat:0,0\n\n`),
      );
      this.ws.on('message', (data: Buffer) => this.onFrame(data));
      this.ws.on('error', (err) => this.failAll(err));
      this.ws.on('close', () => {
        this.failAll(new Error('STOMP connection closed'));
        if (!this.closedByUs) this.options.onClose();
      });
    });
  }

  /** Resolves once the broker has acknowledged the subscription with a RECEIPT. */
  subscribe(destination: string): Promise<string> {
    const id = `sub-${++this.subCounter}`;
    return this.withReceipt(`SUBSCRIBE\nid:${id}\ndestination:${destination}\nack:auto`).then(() => id);
  }

  unsubscribe(id: string): Promise<void> {
    return this.withReceipt(`UNSUBSCRIBE\nid:${id}`);
  }

  close(): Promise<void> {
    this.closedByUs = true;
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => (this.ws.terminate(), resolve()), 3000);
      this.ws.once('close', () => (clearTimeout(timer), resolve()));
      if (this.ws.readyState === WebSocket.OPEN) {
        this.send('DISCONNECT\n\n');
        this.ws.close();
      } else this.ws.terminate();
    });
  }

  private withReceipt(frameHead: string): Promise<void> {
    const receipt = `r${++this.receiptCounter}`;
    return new Promise((resolve, reject) => {
      this.receipts.set(receipt, { resolve, reject });
      this.send(`${frameHead}\nreceipt:${receipt}\n\n`);
    });
  }

  private send(frameWithoutNul: string): void {
    this.ws.send(frameWithoutNul + '\0');
  }

  private onFrame(data: Buffer): void {
    // Web-STOMP sends one frame per WebSocket message; tolerate several, and heart-beat newlines.
    let start = 0;
    while (start < data.length) {
      while (start < data.length && (data[start] === 0x0a || data[start] === 0x0d)) start++;
      if (start >= data.length) return;
      const headerEnd = data.indexOf('\n\n', start);
      if (headerEnd < 0) return;
      const bodyStart = headerEnd + 2;
      const end = data.indexOf(NUL, bodyStart);
      const bodyEnd = end < 0 ? data.length : end;
      const commandEnd = data.indexOf(0x0a, start);
      const command = data.toString('latin1', start, commandEnd);
      if (command === 'MESSAGE') this.options.onMessage(data, bodyStart, bodyEnd);
      else this.onControlFrame(command, data.toString('utf8', commandEnd + 1, headerEnd), data.toString('utf8', bodyStart, bodyEnd));
      start = bodyEnd + 1;
    }
  }

  private onControlFrame(command: string, headers: string, body: string): void {
    if (command === 'CONNECTED') {
      this.connected?.resolve();
      this.connected = null;
    } else if (command === 'RECEIPT') {
      const id = /(?:^|\n)receipt-id:([^\n]*)/.exec(headers)?.[1];
      const waiter = id === undefined ? undefined : this.receipts.get(id);
      if (waiter) {
        this.receipts.delete(id!);
        waiter.resolve();
      }
    } else if (command === 'ERROR') {
      const message = /(?:^|\n)message:([^\n]*)/.exec(headers)?.[1] ?? 'STOMP ERROR';
      this.failAll(new Error(`${message} ${body.trim()}`.trim()));
    }
  }

  private failAll(err: Error): void {
    this.connected?.reject(err);
    this.connected = null;
    for (const waiter of this.receipts.values()) waiter.reject(err);
    this.receipts.clear();
  }
}
