import { readFileSync } from 'node:fs';
import type { CipherAlgorithm, Client, ClientChannel, ConnectConfig } from 'ssh2';
import type { Host } from '../../inventory/index.js';
import { OpsError, UsageError } from '../core/errors.js';
import { checkNotAborted, drive, KILL_GRACE_MS } from './drive.js';
import { checkKnownHosts, fingerprint, keyType } from './hostkeys.js';
import { toCommandLine } from './quote.js';
import type { ExecOptions, ExecResult, Shell } from './shell.js';

export interface HostDirectory {
  requireHost(name: string): Host;
}

export interface SshOptions {
  connectTimeoutMs?: number;
  /** OpenSSH allows 10 sessions per connection (MaxSessions): stay under it. */
  maxChannels?: number;
  knownHostsFiles?: string[];
}

/** ssh2 (with its crypto set-up) loads on the first connection, not at start: the console draws first. */
let ssh2: Promise<typeof import('ssh2')> | undefined;
const newClient = async (): Promise<Client> => new (await (ssh2 ??= import('ssh2'))).Client();

/** chacha20-poly1305 streams fastest through ssh2 here; the rest are ssh2's defaults as fallbacks. */
const CIPHERS: CipherAlgorithm[] = ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes256-ctr'];

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  /** Waits for a free slot; a cancel while waiting rejects with `cancelled()` and takes no slot. */
  async acquire(signal?: AbortSignal, cancelled?: () => Error): Promise<() => void> {
    if (this.free > 0) this.free--;
    else {
      await new Promise<void>((resolve, reject) => {
        const take = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          this.waiting = this.waiting.filter((w) => w !== take);
          reject(cancelled?.() ?? new Error('cancelled'));
        };
        this.waiting.push(take);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

interface Conn {
  client: Client;
  channels: Semaphore;
  closed: boolean;
  closeReason?: string;
  /** Ended by us because the host stopped answering: not worth an immediate second try. */
  silent?: boolean;
}

/**
 * One SSH connection per host, reused for all of its channels, with host keys checked on every
 * connect. The only place opsdeck opens SSH connections.
 */
export class SshPool {
  private conns = new Map<string, Promise<Conn>>();
  /** Connections opened since start, for benchmarks and the health panels. */
  opened = 0;

  constructor(
    private readonly hosts: HostDirectory,
    private readonly opts: SshOptions = {},
  ) {}

  shell(host: string | Host): SshShell {
    return new SshShell(this, typeof host === 'string' ? this.hosts.requireHost(host) : host);
  }

  async connection(host: Host): Promise<Conn> {
    let p = this.conns.get(host.name);
    if (p) {
      const c = await p.catch(() => undefined);
      if (c && !c.closed) return c;
      this.conns.delete(host.name);
    }
    p = this.open(host);
    this.conns.set(host.name, p);
    p.catch(() => this.conns.delete(host.name));
    return p;
  }

  private async baseConfig(host: Host): Promise<ConnectConfig> {
    const cfg: ConnectConfig = {
      host: host.address,
      port: host.port,
      username: host.user,
      readyTimeout: this.opts.connectTimeoutMs ?? 15000,
      keepaliveInterval: 10000,
      keepaliveCountMax: 3,
      algorithms: { cipher: CIPHERS },
    };
    if (host.jump) {
      const jump = await this.connection(this.hosts.requireHost(host.jump));
      cfg.sock = await new Promise((resolve, reject) =>
        jump.client.forwardOut('127.0.0.1', 0, host.address, host.port, (err, stream) =>
          err ? reject(new OpsError(`jump host ${host.jump} could not reach ${host.address}:${host.port}: ${err.message}`)) : resolve(stream),
        ),
      );
    }
    if (host.keyFile) {
      try {
        cfg.privateKey = readFileSync(host.keyFile);
      } catch (err) {
        throw new UsageError(`cannot read the key file ${host.keyFile} of host ${host.name}: ${(err as Error).message}`, `fix the path with: opsdeck host remove ${host.name} and add it again`);
      }
    }
    if (process.env.SSH_AUTH_SOCK) cfg.agent = process.env.SSH_AUTH_SOCK;
    return cfg;
  }

  private async open(host: Host): Promise<Conn> {
    const cfg = await this.baseConfig(host);
    let keyProblem: OpsError | undefined;
    cfg.hostVerifier = (key: Buffer) => {
      const verdict = verifyHostKey(host, key, this.opts.knownHostsFiles);
      if (verdict) keyProblem = verdict;
      return !verdict;
    };
    const client = await newClient();
    this.opened++;
    const conn: Conn = { client, channels: new Semaphore(this.opts.maxChannels ?? 8), closed: false };
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      // on, not once: a connection cut during the handshake can emit a second error (ECONNRESET, then
      // "Connection lost before handshake"), and an error event with no listener ends the process.
      client.on('error', (err: Error & { level?: string }) => {
        if (keyProblem) return reject(keyProblem);
        reject(connectError(host, err));
      });
      client.connect(cfg);
      // ssh2 leaves Nagle's algorithm on: a short command on an open connection then waits out the
      // host's delayed ACK (about 40 ms) before its request leaves.
      client.setNoDelay(true);
    });
    client.on('error', (err) => {
      conn.closeReason = err.message;
    });
    client.on('close', () => {
      conn.closed = true;
      if (this.conns.get(host.name)) this.conns.delete(host.name);
    });
    return conn;
  }

  /**
   * A TCP channel from the host to address:port (the database as the host sees it), on the host's
   * one connection. Forwarded channels do not count against MaxSessions.
   */
  async forward(host: Host, address: string, port: number): Promise<ClientChannel> {
    return this.withLiveConnection(
      host,
      (conn) =>
        new Promise((resolve, reject) =>
          conn.client.forwardOut('127.0.0.1', 0, address, port, (err, stream) =>
            err
              ? reject(
                  Object.assign(
                    new OpsError(
                      `host ${host.name} could not open a tunnel to ${address}:${port}: ${err.message}`,
                      1,
                      'check that the database listens there and that sshd allows TCP forwarding (AllowTcpForwarding)',
                    ),
                    { cause: err },
                  ),
                )
              : resolve(stream),
          ),
        ),
    );
  }

  /**
   * Runs `open` on the host's connection; when that connection turns out to have died since it was
   * last used (ssh2 says "Not connected" before its 'close' arrives), once more on a fresh one, so
   * the error is about the host, not about a stale socket.
   */
  async withLiveConnection<T>(host: Host, open: (conn: Conn) => Promise<T>, signal?: AbortSignal): Promise<T> {
    // A cancel need not wait for a handshake with a host that went silent: the pool keeps it going.
    const cancelled = () => new OpsError(`a command on host ${host.name} was cancelled before it started`);
    const conn = await untilCancelled(this.connection(host), signal, cancelled);
    try {
      return await open(conn);
    } catch (err) {
      const cause = (err as { cause?: Error }).cause ?? (err as Error);
      if (conn.silent || !/Not connected|No response from server/i.test(cause.message)) throw err;
      conn.closed = true;
      if (this.conns.get(host.name)) this.conns.delete(host.name);
      return open(await untilCancelled(this.connection(host), signal, cancelled));
    }
  }

  /**
   * Ends a connection whose host stopped answering (a cancelled command's channel neither closed nor
   * opened within the grace period). Everything still waiting on it fails now instead of when ssh2's
   * keepalive gives up (about 40 s later), commands run without a cancel signal too; the next command
   * connects afresh.
   */
  giveUpOn(host: Host, conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.silent = true;
    conn.closeReason = `the host did not answer within ${KILL_GRACE_MS / 1000} s of a cancel`;
    if (this.conns.get(host.name)) this.conns.delete(host.name);
    conn.client.destroy();
  }

  /** Connects only far enough to read the host's key; authenticates nothing. */
  async probeHostKey(host: Host): Promise<{ fingerprint: string; type: string; knownHosts: ReturnType<typeof checkKnownHosts> }> {
    const cfg = await this.baseConfig(host);
    let seen: Buffer | undefined;
    cfg.hostVerifier = (key: Buffer) => {
      seen = key;
      return false;
    };
    const client = await newClient();
    await new Promise<void>((resolve, reject) => {
      client.on('error', (err) => (seen ? resolve() : reject(connectError(host, err))));
      client.once('ready', () => resolve());
      client.connect(cfg);
    });
    client.end();
    if (!seen) throw new OpsError(`host ${host.name} sent no host key`);
    return { fingerprint: fingerprint(seen), type: keyType(seen), knownHosts: checkKnownHosts(host.address, host.port, seen, this.opts.knownHostsFiles) };
  }

  drop(hostName: string): void {
    const p = this.conns.get(hostName);
    this.conns.delete(hostName);
    p?.then((c) => c.client.end()).catch(() => {});
  }

  async closeAll(): Promise<void> {
    const all = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(all.map((p) => p.then((c) => c.client.end()).catch(() => {})));
  }
}

/** Returns why a key must be refused, or undefined when it is trusted. */
export function verifyHostKey(host: Host, key: Buffer, knownHostsFiles?: string[]): OpsError | undefined {
  const fp = fingerprint(key);
  if (host.hostKey) {
    if (host.hostKey === fp) return undefined;
    return new OpsError(
      `HOST KEY OF ${host.name} (${host.address}:${host.port}) HAS CHANGED: pinned ${host.hostKey}, offered ${fp}. ` + 'Someone may be intercepting the connection, or the host was reinstalled.',
      1,
      `check the new key on the host itself (ssh-keygen -lf /etc/ssh/ssh_host_${keyType(key).replace(/^ssh-|-sha2-nistp\d+$/g, '')}_key.pub); if it is right, run: opsdeck host trust ${host.name} --fingerprint ${fp}`,
    );
  }
  const kh = checkKnownHosts(host.address, host.port, key, knownHostsFiles);
  if (kh.state === 'match') return undefined;
  if (kh.state === 'mismatch') {
    return new OpsError(`host key of ${host.name} differs from ${kh.file} line ${kh.line}: offered ${fp}`, 1, `verify it, fix known_hosts, then run: opsdeck host trust ${host.name}`);
  }
  return new OpsError(`host ${host.name} has no trusted host key yet (offered ${fp})`, 1, `run: opsdeck host trust ${host.name}`);
}

function connectError(host: Host, err: Error & { level?: string; code?: string }): OpsError {
  const where = `${host.user}@${host.address}:${host.port}`;
  if (err.level === 'client-authentication') {
    return new OpsError(
      `cannot log in to host ${host.name} (${where}): authentication failed`,
      1,
      host.keyFile ? `check that ${host.keyFile} is in the user's authorized_keys` : 'give a key with --key or load one into ssh-agent',
    );
  }
  if (err.level === 'client-timeout' || /Timed out/i.test(err.message)) {
    return new OpsError(`cannot reach host ${host.name} (${where}): connection timed out`, 1, 'check the address and that sshd runs there');
  }
  return new OpsError(`cannot connect to host ${host.name} (${where}): ${err.message}`, 1, 'check that the host is up and sshd listens on that port');
}

export class SshShell implements Shell {
  readonly label: string;
  constructor(
    private readonly pool: SshPool,
    readonly host: Host,
  ) {
    this.label = `host ${host.name}`;
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    checkNotAborted(this.label, opts.signal);
    return this.pool.withLiveConnection(this.host, (conn) => this.execOn(conn, argv, opts), opts.signal);
  }

  private async execOn(conn: Conn, argv: readonly string[], opts: ExecOptions): Promise<ExecResult> {
    const cancelled = () => new OpsError(`a command on ${this.label} was cancelled before it started`);
    const release = await conn.channels.acquire(opts.signal, cancelled);
    const lost = () =>
      new OpsError(`connection to ${this.label} was lost while a command ran${conn.closeReason ? ` (${conn.closeReason})` : ''}`, 1, 'check the host and the network, then run the operation again');
    const stop = (ch: ClientChannel) => {
      try {
        ch.signal('TERM');
      } catch {}
      ch.close();
    };
    const opened = new Promise<{ ch: ClientChannel; exited: Promise<{ code: number | null; signal: string | null }> }>((resolve, reject) =>
      conn.client.exec(toCommandLine(argv), (err, stream) => {
        if (err) {
          const refused = Object.assign(new OpsError(`cannot start a command on ${this.label}: ${err.message}`), { cause: err });
          // A channel refused on a connection that is going down: its end is reported just after, and
          // is the reason to give.
          return void setTimeout(() => reject(conn.closed ? lost() : refused), 200);
        }
        // Listen before returning: exit-status and close may arrive in the same packet batch as the
        // channel confirmation, and would be emitted before a later listener existed.
        const exited = new Promise<{ code: number | null; signal: string | null }>((res, rej) => {
          // ssh2 hands the exit status to 'close': (code) or (null, signal); nothing when none came.
          stream.on('close', (code?: number | null, signal?: string) => (code === undefined && signal === undefined ? rej(lost()) : res({ code: code ?? null, signal: signal ?? null })));
        });
        exited.catch(() => {});
        resolve({ ch: stream, exited });
      }),
    );
    // The slot is the channel's until the channel is gone (closed, refused, or its connection ended),
    // not until we stop waiting for it: a cancelled or abandoned command still holds a session on the
    // host. ssh2 settles both promises when the connection ends.
    void opened
      .then(
        ({ exited }) => exited,
        () => undefined,
      )
      .then(release, release);
    const giveUp = () => this.pool.giveUpOn(this.host, conn);
    const { ch, exited } = await untilCancelled(opened, opts.signal, cancelled, () => {
      // Cancelled before the host confirmed the command: nothing to wait for. Should the channel still
      // open, it is stopped at once; should the host not answer even that within the grace period,
      // it is treated as gone.
      const grace = setTimeout(giveUp, KILL_GRACE_MS);
      grace.unref();
      void opened
        .then(
          ({ ch: late }) => stop(late),
          () => {},
        )
        .finally(() => clearTimeout(grace));
    });
    return drive(this.label, argv, { stdin: ch, stdout: ch, stderr: ch.stderr, exited, kill: () => stop(ch), abandon: giveUp }, opts);
  }

  async close(): Promise<void> {}
}

/**
 * `p`, unless `signal` aborts first: then `cancelled()` at once, and `onLate` is called to deal with
 * `p` when it comes. A host gone silent never confirms a channel (nor finishes a handshake), and
 * waiting for it would hold a cancel until ssh2's keepalive gives up on the connection (about 40 s).
 */
function untilCancelled<T>(p: Promise<T>, signal: AbortSignal | undefined, cancelled: () => Error, onLate?: () => void): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(cancelled());
      onLate?.();
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
