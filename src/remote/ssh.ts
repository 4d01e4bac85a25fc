import { readFileSync } from 'node:fs';
import type { Client, ClientChannel, ConnectConfig } from 'ssh2';
import type { Host } from '../../inventory/index.js';
import { OpsError, UsageError } from '../core/errors.js';
import { checkNotAborted, drive } from './drive.js';
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
const CIPHERS = ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes256-ctr'];

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
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
}

/**
 * One SSH connection per host, reused for all of its channels, with host keys checked on every
 * connect. The only place opsdeck opens SSH connections.
 */
export class SshPool {
  private conns = new Map<string, Promise<Conn>>();
  /** Connections opened since start, for benchmarks and the health panels. */
  opened = 0;

  constructor(private readonly hosts: HostDirectory, private readonly opts: SshOptions = {}) {}

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
      algorithms: { cipher: CIPHERS as any },
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
    return this.withLiveConnection(host, (conn) =>
      new Promise((resolve, reject) =>
        conn.client.forwardOut('127.0.0.1', 0, address, port, (err, stream) =>
          err ? reject(Object.assign(new OpsError(`host ${host.name} could not open a tunnel to ${address}:${port}: ${err.message}`, 1, 'check that the database listens there and that sshd allows TCP forwarding (AllowTcpForwarding)'), { cause: err })) : resolve(stream),
        ),
      ),
    );
  }

  /**
   * Runs `open` on the host's connection; when that connection turns out to have died since it was
   * last used (ssh2 says "Not connected" before its 'close' arrives), once more on a fresh one, so
   * the error is about the host, not about a stale socket.
   */
  async withLiveConnection<T>(host: Host, open: (conn: Conn) => Promise<T>): Promise<T> {
    const conn = await this.connection(host);
    try {
      return await open(conn);
    } catch (err) {
      const cause = (err as { cause?: Error }).cause ?? (err as Error);
      if (!/Not connected|No response from server/i.test(cause.message)) throw err;
      conn.closed = true;
      if (this.conns.get(host.name)) this.conns.delete(host.name);
      return open(await this.connection(host));
    }
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
      `HOST KEY OF ${host.name} (${host.address}:${host.port}) HAS CHANGED: pinned ${host.hostKey}, offered ${fp}. ` +
        'Someone may be intercepting the connection, or the host was reinstalled.',
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
    return new OpsError(`cannot log in to host ${host.name} (${where}): authentication failed`, 1, host.keyFile ? `check that ${host.keyFile} is in the user's authorized_keys` : 'give a key with --key or load one into ssh-agent');
  }
  if (err.level === 'client-timeout' || /Timed out/i.test(err.message)) {
    return new OpsError(`cannot reach host ${host.name} (${where}): connection timed out`, 1, 'check the address and that sshd runs there');
  }
  return new OpsError(`cannot connect to host ${host.name} (${where}): ${err.message}`, 1, 'check that the host is up and sshd listens on that port');
}

export class SshShell implements Shell {
  readonly label: string;
  constructor(private readonly pool: SshPool, readonly host: Host) {
    this.label = `host ${host.name}`;
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    checkNotAborted(this.label, opts.signal);
    return this.pool.withLiveConnection(this.host, (conn) => this.execOn(conn, argv, opts));
  }

  private async execOn(conn: Conn, argv: readonly string[], opts: ExecOptions): Promise<ExecResult> {
    const release = await conn.channels.acquire();
    try {
      const lost = () =>
        new OpsError(`connection to ${this.label} was lost while a command ran${conn.closeReason ? ` (${conn.closeReason})` : ''}`, 1, 'check the host and the network, then run the operation again');
      let exited!: Promise<{ code: number | null; signal: string | null }>;
      const ch: ClientChannel = await new Promise((resolve, reject) =>
        conn.client.exec(toCommandLine(argv), (err, stream) => {
          if (err) return reject(Object.assign(new OpsError(`cannot start a command on ${this.label}: ${err.message}`), { cause: err }));
          // Listen before returning: exit-status and close may arrive in the same packet batch as the
          // channel confirmation, and would be emitted before a later listener existed.
          exited = new Promise((res, rej) => {
            // ssh2 hands the exit status to 'close': (code) or (null, signal); nothing when none came.
            stream.on('close', (code?: number | null, signal?: string) =>
              code === undefined && signal === undefined ? rej(lost()) : res({ code: code ?? null, signal: signal ?? null }),
            );
          });
          exited.catch(() => {});
          resolve(stream);
        }),
      );
      return await drive(
        this.label,
        {
          stdin: ch,
          stdout: ch,
          stderr: ch.stderr,
          exited,
          kill: () => {
            try {
              ch.signal('TERM');
            } catch {}
            ch.close();
          },
        },
        opts,
      );
    } finally {
      release();
    }
  }

  async close(): Promise<void> {}
}
