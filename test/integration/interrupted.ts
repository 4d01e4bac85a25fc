import { execa, type ResultPromise } from 'execa';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import { makeLabInstance, type LabInstance } from '../../fixtures/lab.js';
import type { CuttingProxy } from '../../fixtures/proxy.js';
import { BIN, asLabUser, cli, dbState, homeWithHosts, lab, must, sql, treeState } from '../helpers.js';

// What interrupts.test.ts and interrupts-store.test.ts share: two files, each with an instance of
// its own behind a proxy of its own, so that workers run them side by side (issue 14).

export const storeEnv = (home: string) => ({ RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: join(home, 'store.pass') });
export const snapshots = async (home: string): Promise<{ id: string; tags?: string[] }[]> => JSON.parse((await execa('restic', ['snapshots', '--json'], { env: storeEnv(home) })).stdout);
export const storeLocks = (home: string) => readdirSync(join(home, 'store', 'locks'));

/** The restic processes opsdeck (pid) has started and that still run. */
export function resticChildren(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid), '-x', 'restic'])
      .toString()
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * A restore (pid) of `inst` is in its data step with restic running: its staging directory is there.
 * A restic child alone does not say so: the check step already reads the backup from the store.
 */
export const inDataStep = (pid: number, inst: LabInstance) => existsSync(`${inst.path}.opsdeck-incoming`) && resticChildren(pid).length > 0;

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts the real program without a terminal (as cron would) and keeps its stderr as it comes. */
export function start(home: string, args: string[], env: Record<string, string> = {}): { proc: ResultPromise; err: () => string } {
  const proc = execa(BIN, ['--home', home, ...args], { reject: false, env: { OPSDECK_KNOWN_HOSTS: '', ...env }, stdin: 'ignore', timeout: 120_000 });
  let err = '';
  proc.stderr!.on('data', (d) => {
    err += d;
    if (process.env.INT_DEBUG) appendFileSync(`/tmp/int-${proc.pid}.log`, d);
  });
  return { proc, err: () => err };
}

export const lastRun = async (home: string, instance: string) => JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '1', '--instance', instance]))).stdout)[0];

/** The instance moves on after its backup, so a restore has something to change. */
export function moveOn(inst: LabInstance): void {
  sql(inst.db, `SET ROLE ${inst.role}; CREATE TABLE moved_on (n int); INSERT INTO moved_on VALUES (1), (2);`);
  asLabUser('sh', ['-c', 'echo changed > "$1/VERSION" && echo new > "$1/new-file"', 'sh', inst.path]);
}

export const WEBHOOK_SECRET = 'interrupts-webhook-secret';

/**
 * A home with host `held` (lab1 behind `proxy`, started here), instance `name` on it, alerts to a
 * webhook server here (each request's body into `hooks`, with whether its signature is valid), one
 * backup, and the instance moved on since. Returns the states after the backup and now.
 */
export async function interruptedInstance(
  proxy: CuttingProxy,
  hooks: { body: string; valid: boolean }[],
  name: string,
): Promise<{ web: HttpServer; home: string; inst: LabInstance; backed: { files: Record<string, string>; db: string }; before: { files: Record<string, string>; db: string } }> {
  const l = lab();
  await proxy.start();
  const web = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const want = 'sha256=' + createHmac('sha256', WEBHOOK_SECRET).update(`${req.headers['x-opsdeck-timestamp']}.${body}`).digest('hex');
      hooks.push({ body, valid: req.headers['x-opsdeck-signature'] === want });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  const home = await homeWithHosts([]);
  await must(cli(home, ['host', 'add', 'held', '--address', '127.0.0.1', '--port', String(proxy.port), '--user', l.user, '--key', l.keyFile, '--fingerprint', l.hosts[0].fingerprint]));
  const inst = makeLabInstance(l, 'lab1', name);
  await must(cli(home, ['instance', 'add', name, '--host', 'held', '--path', inst.path, '--env', 'dev', '--db', inst.dbUrl], { OPSDECK_DB_PASSWORD: inst.password }));
  await must(cli(home, ['notify', 'webhook', '--url', `http://127.0.0.1:${(web.address() as { port: number }).port}/hook`], { OPSDECK_WEBHOOK_SECRET: WEBHOOK_SECRET }));
  await must(cli(home, ['backup', name]));
  const backed = { files: treeState(inst.path), db: dbState(inst.db) };
  moveOn(inst);
  const before = { files: treeState(inst.path), db: dbState(inst.db) };
  return { web, home, inst, backed, before };
}
