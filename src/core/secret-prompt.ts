/** Asking a person at a terminal for a secret: never from argv, never echoed. Used by the CLI and the console. */
import { readFileSync } from 'node:fs';
import { UsageError, errorMessage } from './errors.js';

/** A person is there to answer: both stdin and stderr are a terminal. */
export const interactive = () => process.stdin.isTTY === true && process.stderr.isTTY === true;

/** A secret from a file, an environment variable, or typed with echo off. Never from argv. */
export async function readSecret(what: string, o: { file?: string; envVar: string }): Promise<string | undefined> {
  if (o.file) {
    try {
      return readFileSync(o.file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new UsageError(`cannot read ${what} from ${o.file}: ${errorMessage(err)}`);
    }
  }
  if (process.env[o.envVar] !== undefined) return process.env[o.envVar];
  if (!interactive()) return undefined;
  process.stderr.write(`${what} (empty for none): `);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  let value = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (buf: Buffer) => {
        for (const ch of buf.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            return resolve();
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            return reject(new UsageError('cancelled'));
          }
          if (ch === '\u007f') value = value.slice(0, -1);
          else value += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
  return value || undefined;
}
