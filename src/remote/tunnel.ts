import { Duplex } from 'node:stream';

/**
 * A socket-shaped Duplex over a channel that opens later (an ssh2 forwarded channel). node-postgres
 * takes a `stream` but calls connect(port, host) on it and waits for 'connect', as on a net.Socket;
 * a raw ssh2 channel has neither. The port and host pg passes are ignored: `open` already knows where
 * the tunnel goes.
 */
export class TunnelSocket extends Duplex {
  private ch?: Duplex;

  constructor(private readonly open: () => Promise<Duplex>) {
    super();
  }

  connect(): this {
    this.open().then(
      (ch) => {
        if (this.destroyed) return void ch.destroy();
        this.ch = ch;
        ch.on('data', (d: Buffer) => {
          if (!this.push(d)) ch.pause();
        });
        ch.on('end', () => this.push(null));
        ch.on('error', (e: Error) => this.destroy(e));
        ch.on('close', () => this.destroy());
        this.emit('connect');
      },
      (err: Error) => this.destroy(err),
    );
    return this;
  }

  override _read(): void {
    this.ch?.resume();
  }

  override _write(chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.ch) return cb(new Error('tunnel not open yet'));
    this.ch.write(chunk, enc, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.ch?.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.ch?.destroy();
    cb(err);
  }

  // net.Socket methods pg calls; a channel inside SSH has no Nagle or keepalive of its own.
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
}
