import { Socket } from 'node:net';

/**
 * A TCP socket that hands the writes of one event-loop turn to the kernel as one writev. ssh2 writes
 * every SSH packet (at most 32 KB: the host's limit) with its own sock.write, one syscall each, which
 * was most of opsdeck's CPU in a relay. The socket is corked at the first write of a turn and
 * uncorked in that turn's check phase (setImmediate: after the whole chain of nextTick writes a batch
 * of incoming data causes), so nothing waits longer than the turn that wrote it.
 *
 * Buffering is unchanged: ssh2 ignores the socket's backpressure either way, and what it writes per
 * turn is bounded by the channels' SSH windows (the host's flow control), not by this socket.
 *
 * Starts connecting: the caller hands the socket to ssh2 in the same tick, before any event can come.
 */
export function connectCoalescing(address: string, port: number): Socket {
  const sock = new Socket();
  sock.connect({ host: address, port });
  // Set on the instance, after connect(): Node's connect() puts the prototype's write back on the
  // instance (undoing a write-after-end guard), so a subclass's write would be bypassed.
  const write = sock.write;
  let corked = false;
  sock.write = function (this: Socket, ...args: Parameters<Socket['write']>): boolean {
    if (!corked && !this.destroyed) {
      corked = true;
      this.cork();
      setImmediate(() => {
        corked = false;
        // end() and destroy() uncork on their own; an uncork past zero does nothing.
        this.uncork();
      });
    }
    return write.apply(this, args);
  } as Socket['write'];
  return sock;
}
