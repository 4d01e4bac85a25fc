import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay on loopback that can cut every connection after N bytes have flowed back to the
 * client: a network dropping mid-transfer, with the real sshd behind it.
 */
export class CuttingProxy {
  cutAfter: number | undefined;
  cuts = 0;
  private server: Server;
  private sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => {
      const upstream = connect(this.target);
      this.sockets.add(client).add(upstream);
      let seen = 0;
      upstream.on('data', (d) => {
        seen += d.length;
        if (this.cutAfter !== undefined && seen > this.cutAfter) {
          this.cuts++;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(d);
      });
      client.pipe(upstream);
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
