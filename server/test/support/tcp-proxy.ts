/**
 * A TCP proxy that a test can cut, freeze or point elsewhere: between the
 * gateway and RabbitMQ (broker outages), or between a client and a gateway
 * (network cuts, a deploy moving clients to another gateway) — repeatable,
 * and harming nothing else on the machine.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private refusing = false;
  private frozen = false;

  private constructor(
    private readonly server: Server,
    private target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  static async start(target = { host: '127.0.0.1', port: 5672 }): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new TcpProxy(server, target);
  }

  /** New connections go to `port` from now on (what a load balancer does when a gateway is replaced); existing ones are untouched. */
  retarget(port: number, host = '127.0.0.1'): void {
    this.target = { host, port };
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** An AMQP URL through this proxy. */
  amqpUrl(credentials = 'guest:guest'): string {
    return `amqp://${credentials}@127.0.0.1:${this.port}`;
  }

  /** Drops every connection, both ways, and refuses new ones until `restore()`: the broker is unreachable. */
  cut(): void {
    this.refusing = true;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  /** Stops moving bytes while keeping connections open: a silent broker (only heartbeats can tell). */
  freeze(): void {
    this.frozen = true;
    this.refusing = true;
    for (const [a, b] of this.pairs) {
      a.pause();
      b.pause();
    }
  }

  /** Accepts connections again; after a freeze, the old ones are dropped (a real partition would time them out). */
  restore(): void {
    if (this.frozen) {
      this.frozen = false;
      for (const [a, b] of this.pairs) {
        a.destroy();
        b.destroy();
      }
      this.pairs.clear();
    }
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const teardown = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', teardown).on('close', teardown);
    upstream.on('error', teardown).on('close', teardown);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
