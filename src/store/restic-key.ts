/**
 * The cost of opening a restic repository's key, and how a store opsdeck made itself gets a cheap one.
 *
 * `restic init` calibrates its key's scrypt parameters to about half a second of CPU, and every restic
 * command pays that again to open the repository: a restore starts restic five or more times. The
 * cost is there to slow down guessing a person's password. A store opsdeck makes has a password
 * opsdeck drew itself (33 random bytes: 264 bits), which no number of guesses reaches whatever the
 * cost, so its key is re-sealed with low-cost parameters, as restic's own tests do internally.
 * restic has no flag for it. A password that came from anywhere else keeps restic's calibrated key.
 *
 * The key file format (restic's design document, "Keys, Encryption and MAC"): JSON
 * {created, username, hostname, kdf: "scrypt", N, r, p, salt, data}, where scrypt(password, salt,
 * N, r, p) gives 64 bytes: the AES-256 key (32), then the MAC key as k (16, an AES-128 key) and
 * r (16, Poly1305's). data = IV (16) || AES-256-CTR(master key JSON) || MAC (16), the MAC being
 * Poly1305 over the ciphertext with r and AES-128_k(IV).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** scrypt parameters of a key file. */
export interface KeyCost {
  N: number;
  r: number;
  p: number;
}
/** A cheap key: N = 2^12, p = 1, a few milliseconds (restic calibrates to about N = 2^15, p = 7 here). */
export const FAST: KeyCost = { N: 1 << 12, r: 8, p: 1 };

export interface KeyFile {
  created: string;
  username: string;
  hostname: string;
  kdf: string;
  N: number;
  r: number;
  p: number;
  salt: string;
  data: string;
}

/** The form of the passwords opsdeck draws for its stores (33 random bytes in base64). */
export const DRAWN_PASSWORD = /^[A-Za-z0-9+/]{44}$/;

/** Poly1305 (RFC 8439, section 2.5) of msg under the one-time key r || s; Node has no raw Poly1305. */
export function poly1305(msg: Buffer, r16: Buffer, s16: Buffer): Buffer {
  const le = (b: Buffer) => BigInt('0x' + (Buffer.from(b).reverse().toString('hex') || '0'));
  const p = (1n << 130n) - 5n;
  const r = le(r16) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  let acc = 0n;
  for (let i = 0; i < msg.length; i += 16) {
    const block = msg.subarray(i, i + 16);
    acc = ((acc + le(block) + (1n << BigInt(8 * block.length))) * r) % p;
  }
  acc = (acc + le(s16)) & ((1n << 128n) - 1n);
  return Buffer.from(acc.toString(16).padStart(32, '0'), 'hex').reverse();
}

/** The 64 bytes scrypt gives for a key file: AES key, MAC k, MAC r. Off the event loop (restic's cost is half a second). */
async function deriveKeys(password: string, salt: Buffer, c: KeyCost): Promise<{ aes: Buffer; k: Buffer; r: Buffer }> {
  const out = await new Promise<Buffer>((resolve, reject) =>
    scrypt(password, salt, 64, { N: c.N, r: c.r, p: c.p, maxmem: 256 * c.N * c.r + (32 << 20) }, (err, key) => (err ? reject(err) : resolve(key))),
  );
  return { aes: out.subarray(0, 32), k: out.subarray(32, 48), r: out.subarray(48, 64) };
}

function mac(keys: { k: Buffer; r: Buffer }, iv: Buffer, ciphertext: Buffer): Buffer {
  const aes = createCipheriv('aes-128-ecb', keys.k, null).setAutoPadding(false);
  const s = Buffer.concat([aes.update(iv), aes.final()]);
  return poly1305(ciphertext, keys.r, s);
}

/** The master key JSON inside a key file; throws when the password does not open it. */
export async function openKeyFile(key: KeyFile, password: string): Promise<Buffer> {
  const keys = await deriveKeys(password, Buffer.from(key.salt, 'base64'), key);
  const data = Buffer.from(key.data, 'base64');
  const iv = data.subarray(0, 16);
  const ct = data.subarray(16, data.length - 16);
  if (!timingSafeEqual(mac(keys, iv, ct), data.subarray(data.length - 16))) throw new Error('the key file does not open with this password (MAC mismatch)');
  const d = createDecipheriv('aes-256-ctr', keys.aes, iv);
  return Buffer.concat([d.update(ct), d.final()]);
}

/** A key file holding `master` under `password`, with the given scrypt cost. */
export async function sealKeyFile(template: KeyFile, master: Buffer, password: string, c: KeyCost): Promise<KeyFile> {
  const salt = randomBytes(64);
  const keys = await deriveKeys(password, salt, c);
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-ctr', keys.aes, iv);
  const ct = Buffer.concat([cipher.update(master), cipher.final()]);
  return { ...template, kdf: 'scrypt', N: c.N, r: c.r, p: c.p, salt: salt.toString('base64'), data: Buffer.concat([iv, ct, mac(keys, iv, ct)]).toString('base64') };
}

/**
 * Replaces the one key of a local repository by one of the given cost for the same password and
 * master key. The new key is written beside the old one first, so the repository is never without
 * a key that opens it; the old one is set aside while `check` (restic opening the repository) runs
 * with the new one alone, and comes back if it fails.
 */
export async function setKeyCost(repo: string, password: string, check: () => Promise<void>, cost: KeyCost = FAST): Promise<void> {
  const keysDir = join(repo, 'keys');
  const [old, ...more] = await readdir(keysDir);
  if (!old || more.length) throw new Error(`expected one key in ${keysDir}, found ${more.length + (old ? 1 : 0)}`);
  const oldFile = join(keysDir, old);
  const key = JSON.parse(await readFile(oldFile, 'utf8')) as KeyFile;
  if (key.kdf !== 'scrypt') throw new Error(`unknown key derivation ${key.kdf} in ${oldFile}`);
  const master = await openKeyFile(key, password);
  const cheap = await sealKeyFile(key, master, password, cost);
  // Opened here before anything moves: a key that would not open never replaces one that does.
  if (!(await openKeyFile(cheap, password)).equals(master)) throw new Error('the re-sealed key does not give back the master key');
  const bytes = Buffer.from(JSON.stringify(cheap));
  // A repository file is named by the sha256 of its content; the new key gets the old one's mode from
  // its creation, and is on disk (as are the directory's entries) before the old one is set aside.
  const newFile = join(keysDir, createHash('sha256').update(bytes).digest('hex'));
  const f = await open(newFile, 'wx', (await stat(oldFile)).mode & 0o777);
  try {
    await f.writeFile(bytes);
    await f.sync();
  } finally {
    await f.close();
  }
  await syncDir(keysDir);
  const aside = join(repo, `key-calibrated-${old}`);
  await rename(oldFile, aside);
  await syncDir(keysDir);
  try {
    await check();
  } catch (err) {
    await rename(aside, oldFile);
    await rm(newFile, { force: true });
    throw err;
  }
  await rm(aside);
}

/** Makes a directory's entries durable (a rename or a new file in it). */
async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
