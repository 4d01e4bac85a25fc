import { execa } from 'execa';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FAST, poly1305 } from '../../src/store/restic-key.js';
import { Store } from '../../src/store/restic.js';
import { newHome } from '../helpers.js';

const restic = (home: string, args: string[], passwordFile = join(home, 'store.pass')) =>
  execa('restic', ['--no-cache', ...args], { reject: false, env: { RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: passwordFile } });
const keyParams = (home: string) => readdirSync(join(home, 'store', 'keys')).map((f) => JSON.parse(readFileSync(join(home, 'store', 'keys', f), 'utf8')) as { kdf: string; N: number });

describe("the low-cost restic key of a store opsdeck makes (src/store/restic-key.ts), and test homes' copies of one", () => {
  it('computes Poly1305 as RFC 8439 says (its section 2.5.2 example)', () => {
    const key = Buffer.from('85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b', 'hex');
    const tag = poly1305(Buffer.from('Cryptographic Forum Research Group'), key.subarray(0, 16), key.subarray(16));
    expect(tag.toString('hex')).toBe('a8061dc1305136c6c22b8baf0c0127a9');
  });

  it("opens a test home's store with its password, refuses a wrong one, and the store takes a backup", async () => {
    const home = newHome();
    // One key, of the low cost, in a repository restic made.
    expect(keyParams(home)).toEqual([expect.objectContaining({ kdf: 'scrypt', N: FAST.N })]);
    const config = await restic(home, ['cat', 'config']);
    expect(config.exitCode, config.stderr).toBe(0);
    expect(JSON.parse(config.stdout)).toMatchObject({ version: expect.any(Number), id: expect.stringMatching(/^[0-9a-f]{64}$/) });

    const wrong = join(home, 'wrong.pass');
    writeFileSync(
      wrong,
      readFileSync(join(home, 'store.pass'), 'utf8').replace(/^./, (c) => (c === 'A' ? 'B' : 'A')),
    );
    const refused = await restic(home, ['cat', 'config'], wrong);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(/wrong password or no key found/);

    // opsdeck takes it as its store: no new repository, a snapshot in this one.
    const store = new Store(home);
    await store.ensure();
    const snap = await store.backup(Readable.from([Buffer.from('hello\n')]), 'hello.txt', ['test=fast-key']);
    // restic 0.14's summary gives the short id.
    expect(await store.snapshotsTagged('test=fast-key')).toEqual([expect.stringMatching(new RegExp(`^${snap.snapshotId}`))]);
    expect(keyParams(home)).toHaveLength(1);
  });

  it('a store opsdeck makes with a password it drew gets a low-cost key restic opens alone; a password from elsewhere keeps the key restic calibrated', async () => {
    // No template copy: the store is made here, by opsdeck, as on a new jump box.
    const home = mkdtempSync(join(tmpdir(), 'opsdeck-key-'));
    await new Store(home).ensure();
    expect(keyParams(home)).toEqual([expect.objectContaining({ kdf: 'scrypt', N: FAST.N, p: FAST.p })]);
    // Nothing set aside is left in the repository, and restic alone opens it with the password file.
    expect(readdirSync(join(home, 'store')).filter((f) => f.startsWith('key-'))).toEqual([]);
    const config = await restic(home, ['cat', 'config']);
    expect(config.exitCode, config.stderr).toBe(0);
    const snap = await new Store(home).backup(Readable.from([Buffer.from('made here\n')]), 'made.txt', ['test=own-key']);
    const dumped = await restic(home, ['dump', snap.snapshotId, '/made.txt']);
    expect(dumped.stdout).toBe('made here');

    // A person's password (here a phrase, not opsdeck's 44 random characters): restic's own cost stays.
    const mine = mkdtempSync(join(tmpdir(), 'opsdeck-key-'));
    writeFileSync(join(mine, 'store.pass'), 'correct horse battery staple\n', { mode: 0o600 });
    await new Store(mine).ensure();
    const [calibrated] = keyParams(mine);
    expect(calibrated.N).toBeGreaterThan(FAST.N);
    expect((await restic(mine, ['cat', 'config'])).exitCode).toBe(0);
    rmSync(home, { recursive: true, force: true });
    rmSync(mine, { recursive: true, force: true });
  });
});
