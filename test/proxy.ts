import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay on loopback in front of a real lab sshd, to play a bad network at a moment a test picks:
 * - `cutAfter`: every connection is cut once more than that many bytes came back from the host (a
 *   network dropping mid-transfer); `cuts` counts them. `cutAfterSent`: once, counting the bytes
 *   sent to the host (a restore's upload); it is cleared by the cut, so the undo gets through.
 * - `held`: what the host sends is held back (queued, not dropped) until `release()`: a host that
 *   stops answering for a while. `holdWhen` is asked before each chunk the client sends, so a hold
 *   can start exactly after something opsdeck recorded (it writes the inventory before the bytes that
 *   follow leave).
 * - `slowMs`: each chunk the host sends waits this long (a slow link; everything still flows).
 * - `down()` / `up()`: the host goes away (connections cut, new ones refused) and comes back.
 */
export class CuttingProxy {
  cutAfter: number | undefined;
  cutAfterSent: number | undefined;
  cuts = 0;
  /** Bytes relayed each way over all connections, for tests that count what a command sent. */
  fromHost = 0;
  toHost = 0;
  held = false;
  slowMs = 0;
  holdWhen?: () => boolean;
  port = 0;
  private server: Server;
  private sockets = new Set<Socket>();
  private queued: { to: Socket; data: Buffer }[] = [];

  constructor(target: { host: string; port: number }) {
    this.server = createServer((client) => {
      const upstream = connect(target);
      this.sockets.add(client).add(upstream);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      let seen = 0;
      let sent = 0;
      upstream.on('data', (d) => {
        seen += d.length;
        this.fromHost += d.length;
        if (this.cutAfter !== undefined && seen > this.cutAfter) {
          this.cuts++;
          return end();
        }
        if (this.held) return void this.queued.push({ to: client, data: d });
        if (!this.slowMs) return void client.write(d);
        upstream.pause();
        setTimeout(() => {
          if (this.held) this.queued.push({ to: client, data: d });
          else if (!client.destroyed) client.write(d);
          upstream.resume();
        }, this.slowMs);
      });
      client.on('data', (d) => {
        sent += d.length;
        this.toHost += d.length;
        if (this.cutAfterSent !== undefined && sent > this.cutAfterSent) {
          this.cutAfterSent = undefined;
          this.cuts++;
          return end();
        }
        if (!this.held && this.holdWhen?.()) {
          this.held = true;
          this.holdWhen = undefined;
        }
        upstream.write(d);
      });
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  /** What was held goes out, in order; the host answers again. */
  release(): void {
    this.held = false;
    for (const q of this.queued.splice(0)) if (!q.to.destroyed) q.to.write(q.data);
  }

  /** The host goes away: every connection cut, new ones refused (ECONNREFUSED). */
  async down(): Promise<void> {
    this.held = false;
    this.queued = [];
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }

  /** And comes back, on the same port. */
  async up(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(this.port, '127.0.0.1', r));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
