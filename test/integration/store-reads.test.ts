import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { copyFastStore } from '../../fixtures/restic-fast.js';
import { lab, newHome, until } from '../helpers.js';
import { Store } from '../../src/store/restic.js';
import { withStoreNotices } from '../../src/store/notices.js';

// Issue 14: fewer restic starts per operation. A local store's snapshot list is read by restic once
// per process and reused while snapshots/ names nothing new, and a dump of a snapshot the store's
// snapshots/ lacks goes to the copy stores without a restic that can only fail. These tests hold
// the guarantees those cuts could break: what another restic adds or forgets is seen, a store held
// exclusively is waited for, and a snapshot the store has is read from it.

/** A restic in front of the real one on PATH that logs each command's words, so a test can count them. */
function countingRestic(dir: string): { log: string; started: (sub: string) => number } {
  const log = join(dir, 'restic.log');
  writeFileSync(log, '');
  writeFileSync(join(dir, 'restic'), `#!/bin/sh\necho "$*" >> ${log}\nexec /usr/bin/restic "$@"\n`, { mode: 0o755 });
  return {
    log,
    started: (sub) =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.split(' ').includes(sub)).length,
  };
}

const text = (s: string) => Readable.from([Buffer.from(s)]);

/** Everything a dump writes. */
async function dumped(store: Store, snapshot: string, file: string): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (b: Buffer) => chunks.push(b));
  await store.dump(snapshot, file, out);
  return Buffer.concat(chunks).toString();
}

describe("a store's reads", () => {
  let home: string;
  let bin: string;
  let counted: ReturnType<typeof countingRestic>;
  const path0 = process.env.PATH;

  beforeAll(() => {
    home = newHome('sqlite');
    bin = mkdtempSync(join(home, 'bin-'));
    counted = countingRestic(bin);
    process.env.PATH = `${bin}:${path0}`;
  });
  afterAll(() => {
    process.env.PATH = path0;
  });

  it('a listing reused in one process still sees what another restic adds or forgets', async () => {
    const reader = new Store(home);
    const writer = new Store(home);
    const first = await writer.backup(text('one\n'), 'one.txt', ['test=reads']);
    const ids = async () => (await reader.snapshots()).map((s) => s.id);
    expect(await ids()).toContainEqual(expect.stringMatching(new RegExp(`^${first.snapshotId}`)));
    const listings = counted.started('snapshots');
    // Nothing new in the store: the same list, without restic.
    const again = await ids();
    expect(await ids()).toEqual(again);
    expect(counted.started('snapshots')).toBe(listings);

    const second = await writer.backup(text('two\n'), 'two.txt', ['test=reads']);
    const withSecond = await reader.snapshots();
    expect(withSecond.map((s) => s.id)).toContainEqual(expect.stringMatching(new RegExp(`^${second.snapshotId}`)));
    expect(withSecond.find((s) => s.id.startsWith(second.snapshotId))?.tags).toEqual(['test=reads']);

    await writer.forget([first.snapshotId]);
    const left = await ids();
    expect(left.some((id) => id.startsWith(first.snapshotId))).toBe(false);
    expect(left.some((id) => id.startsWith(second.snapshotId))).toBe(true);
  });

  it('a listing waits while another restic holds the store exclusively, as restic itself would', async () => {
    const reader = new Store(home);
    await reader.snapshots();
    // A lock in place (restic writes it as <id>-tmp-<n>, then renames it to its id).
    const locked = () => readdirSync(join(home, 'store', 'locks')).some((n) => /^[0-9a-f]{64}$/.test(n));
    // restic key passwd takes the exclusive lock, then waits for a password that never comes.
    const holder: ResultPromise = execa('/usr/bin/restic', ['key', 'passwd'], {
      env: { RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: join(home, 'store.pass') },
      stdin: 'pipe',
      reject: false,
    });
    let waiting = false;
    let listed = false;
    try {
      await until('restic holds the lock', locked);
      const list = withStoreNotices(
        (line) => (waiting ||= /is locked: .*locked exclusively/.test(line)),
        () => reader.snapshots().then((l) => ((listed = true), l)),
      );
      await until('the listing says it waits', () => waiting);
      expect(listed).toBe(false);
      holder.kill('SIGINT');
      await holder;
      expect((await list).length).toBeGreaterThan(0);
    } finally {
      holder.kill('SIGKILL');
      await holder;
    }
  });

  it('a snapshot the store lacks is read from its copy; one it has from itself, by its short id too; one in neither is refused', async () => {
    // The copy store: a copy of the run's template store (its chunker parameters and password are the home's).
    const offsite = mkdtempSync(join(home, 'offsite-'));
    copyFastStore(inject('resticTemplate'), offsite);
    const copy = new Store(home, join(offsite, 'store'));
    const store = new Store(home, undefined, { copies: [copy] });
    const kept = await store.backup(text('in the copy\n'), 'kept.txt', ['test=copied']);
    await store.copyInto(copy, [kept.snapshotId]);
    await store.forget([kept.snapshotId]);
    const own = await store.backup(text('in the store\n'), 'own.txt', ['test=own']);

    const dumps = counted.started('dump');
    expect(await dumped(store, kept.snapshotId, 'kept.txt')).toBe('in the copy\n');
    // Straight to the copy: one restic dump, the copy's.
    expect(counted.started('dump')).toBe(dumps + 1);
    expect(await dumped(store, own.snapshotId.slice(0, 8), 'own.txt')).toBe('in the store\n');
    // A restore's two streams read from the copy side by side (another process: nothing listed yet): one listing of the copy.
    const again = new Store(home, undefined, { copies: [new Store(home, join(offsite, 'store'))] });
    const listings = counted.started('snapshots');
    expect(await Promise.all([dumped(again, kept.snapshotId, 'kept.txt'), dumped(again, kept.snapshotId, 'kept.txt')])).toEqual(['in the copy\n', 'in the copy\n']);
    expect(counted.started('snapshots')).toBe(listings + 1);
    await expect(dumped(store, 'deadbeef', 'kept.txt')).rejects.toThrow(/cannot read kept\.txt of snapshot deadbeef from the store: .*\(nor from its copies\)/);
  });
});

describe("a remote store's lock checks", () => {
  // The run's template store, served by lab1's sshd over sftp: every restic command on it is a
  // restic start and an ssh login, as on a real backup server.
  const l = lab();
  const host = l.hosts.find((h) => h.name === 'lab1')!;
  const dir = join(host.root, `reads-store-${randomBytes(4).toString('hex')}`);
  let home: string;
  let bin: string;
  let counted: ReturnType<typeof countingRestic>;
  const path0 = process.env.PATH;
  const remote = () =>
    new Store(home, `sftp:${l.user}@${host.address}:${dir}`, {
      options: [
        `sftp.command=ssh -F /dev/null -i ${l.keyFile} -o IdentitiesOnly=yes -p ${host.port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes ${l.user}@${host.address} -s sftp`,
      ],
    });

  beforeAll(() => {
    home = newHome('sqlite');
    cpSync(join(home, 'store'), dir, { recursive: true });
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${l.user}:`, dir]);
    bin = mkdtempSync(join(home, 'bin-'));
    counted = countingRestic(bin);
    process.env.PATH = `${bin}:${path0}`;
  });
  afterAll(() => {
    process.env.PATH = path0;
    rmSync(dir, { recursive: true, force: true });
  });

  it("a backup's two streams asking at once share one check of the locks; all wait for an exclusive lock, one cancelled stops none of the others, and they go on once it goes", async () => {
    const store = remote();
    await store.ensure();
    const before = counted.started('locks');
    await Promise.all([store.waitUntilUnlocked(), store.waitUntilUnlocked()]);
    expect(counted.started('locks')).toBe(before + 1);

    const locked = () => readdirSync(join(dir, 'locks')).some((n) => /^[0-9a-f]{64}$/.test(n));
    // As the lab user, as the store's sftp logs in: its lock is one the store's restic can read.
    const as = process.getuid?.() === 0 ? { uid: Number(execFileSync('id', ['-u', l.user]).toString()), gid: Number(execFileSync('id', ['-g', l.user]).toString()) } : {};
    const holder: ResultPromise = execa('/usr/bin/restic', ['--no-cache', 'key', 'passwd'], {
      env: { RESTIC_REPOSITORY: dir, RESTIC_PASSWORD: readFileSync(join(home, 'store.pass'), 'utf8').trim(), HOME: '/tmp' },
      stdin: 'pipe',
      reject: false,
      ...as,
    });
    try {
      await until('restic holds the lock', locked);
      const notices: string[] = [];
      let done = 0;
      // Three streams wait; one of them is cancelled: the others wait on.
      const cancelled = new AbortController();
      const gaveUp = withStoreNotices(
        (line) => notices.push(line),
        () => store.waitUntilUnlocked(cancelled.signal),
      );
      gaveUp.catch(() => {});
      const both = withStoreNotices(
        (line) => notices.push(line),
        () => Promise.all([store.waitUntilUnlocked(new AbortController().signal), store.waitUntilUnlocked()].map((p) => p.then(() => done++))),
      );
      await until('all three say they wait', () => notices.filter((n) => /is locked: .*locked exclusively/.test(n)).length === 3);
      cancelled.abort(new Error('cancelled'));
      await expect(gaveUp).rejects.toThrow();
      expect(done).toBe(0);
      holder.kill('SIGINT');
      await holder;
      await both;
      expect(done).toBe(2);
    } finally {
      holder.kill('SIGKILL');
      await holder;
    }
  });

  it('a lock that goes between its listing and its reading is given up once a new listing lacks it, not after the 20 s limit', async () => {
    const store = remote();
    await store.ensure();
    // A dead restic's lock, left in the store: listed, and readable until the reading starts.
    const holder: ResultPromise = execa('/usr/bin/restic', ['--no-cache', 'key', 'passwd'], {
      env: { RESTIC_REPOSITORY: dir, RESTIC_PASSWORD: readFileSync(join(home, 'store.pass'), 'utf8').trim(), HOME: '/tmp' },
      stdin: 'pipe',
      reject: false,
    });
    const lockIds = () => readdirSync(join(dir, 'locks')).filter((n) => /^[0-9a-f]{64}$/.test(n));
    await until('restic holds the lock', () => lockIds().length === 1);
    holder.kill('SIGKILL');
    await holder;
    // In front of the counting restic: the lock goes just before restic reads it (restic 0.14 then
    // retries the missing file for 90 s).
    const front = mkdtempSync(join(home, 'front-'));
    writeFileSync(join(front, 'restic'), `#!/bin/sh\nfor a; do last=$a; done\ncase " $* " in *" cat lock "*) rm -f -- "${dir}/locks/$last" ;; esac\nexec ${bin}/restic "$@"\n`, { mode: 0o755 });
    const listed = counted.started('locks');
    process.env.PATH = `${front}:${bin}:${path0}`;
    try {
      await store.waitUntilUnlocked();
    } finally {
      process.env.PATH = `${bin}:${path0}`;
    }
    expect(lockIds()).toEqual([]);
    // The check's own listing, then the one that found the lock gone while restic still retried.
    expect(counted.started('locks')).toBe(listed + 2);
  }, 15_000);
});
