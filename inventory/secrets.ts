import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpsError } from '../src/core/errors.js';

/**
 * Secrets (database passwords) are kept encrypted with AES-256-GCM under a key file (mode 0600)
 * in the opsdeck home, so a copied inventory file alone gives nothing away.
 */
export class SecretBox {
  private key: Buffer | undefined;
  constructor(private readonly home: string) {}

  get keyFile(): string {
    return join(this.home, 'secret.key');
  }

  private loadKey(): Buffer {
    if (this.key) return this.key;
    const file = this.keyFile;
    if (!existsSync(file)) {
      writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    }
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) {
      throw new OpsError(`key file ${file} is readable by others (mode ${mode.toString(8)})`, 1, `run: chmod 600 ${file}`);
    }
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new OpsError(`key file ${file} is damaged (expected 32 bytes of base64)`);
    this.key = key;
    return key;
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.loadKey(), iv);
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return 'v1:' + Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64');
  }

  open(sealed: string): string {
    if (!sealed.startsWith('v1:')) throw new OpsError('unknown secret format in the inventory');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.loadKey(), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    try {
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      throw new OpsError(`cannot decrypt a secret: the key file ${this.keyFile} does not match this inventory`);
    }
  }
}
