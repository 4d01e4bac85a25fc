import { execFileSync } from 'node:child_process';
import { Inventory } from '../inventory/index.js';
import { execa } from 'execa';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, inject } from 'vitest';
import { copyFastStore } from '../fixtures/restic-fast.js';
import { asLabUser, hostAddArgs, labInfo, makeLabInstance, pgAdmin, type Lab, type LabInstance } from '../fixtures/lab.js';
import { makeLabMysqlInstance, mariadbMigrate, mariadbMigrateHook, mysqlAdmin, mysqlAs, mysqlState } from '../fixtures/lab/mariadb.js';

export const BIN = resolve(import.meta.dirname, '..', 'bin', 'opsdeck');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real program, as cron would: no terminal. */
export async function cli(home: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const start = cliLog && { wall: Date.now(), cpu: reapedCpu() };
  const r = await execa(BIN, ['--home', home, ...args], { reject: false, env: { ...env, OPSDECK_KNOWN_HOSTS: '', OPSDECK_DEBUG: '1' }, stdin: 'ignore', timeout: 120_000 });
  if (cliLog && start) logCli(cliLog, args, start);
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

// Opt-in measurement (issue 14): OPSDECK_TEST_CLI_LOG=FILE appends one JSON line per cli() call (the
// file, the first two arguments, wall and the CPU of the children reaped meanwhile: opsdeck and its
// restic, ssh; a call overlapping another in the same worker shares its count); OPSDECK_TEST_RESTIC_LOG=FILE
// puts a restic on PATH that appends a line per start, then runs the real one.
const cliLog = process.env.OPSDECK_TEST_CLI_LOG;
const resticLog = process.env.OPSDECK_TEST_RESTIC_LOG;
if (resticLog) {
  const dir = mkdtempSync(join(tmpdir(), 'opsdeck-restic-log-'));
  chmodSync(dir, 0o755);
  const real = execFileSync('sh', ['-c', 'command -v restic']).toString().trim();
  writeFileSync(join(dir, 'restic'), `#!/bin/sh\nprintf '%s %s %s\\n' "$OPSDECK_TEST_FILE" "$1" "$2" >> '${resticLog}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
  process.env.PATH = `${dir}:${process.env.PATH}`;
  process.env.OPSDECK_TEST_FILE = expect.getState().testPath?.split('/').pop() ?? '';
}

/** CPU seconds of this process's reaped children (/proc/self/stat fields 16 and 17). */
function reapedCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

function logCli(file: string, args: string[], start: { wall: number; cpu: number }): void {
  const test = expect.getState();
  const line = {
    file: test.testPath?.split('/').pop(),
    test: test.currentTestName,
    cmd: args.slice(0, 2).join(' '),
    wallS: (Date.now() - start.wall) / 1000,
    cpuS: Math.round((reapedCpu() - start.cpu) * 100) / 100,
  };
  appendFileSync(file, JSON.stringify(line) + '\n');
}

/** An empty home on the given inventory backend (default: defaultBackend()). */
export function newHome(backend: Backend = defaultBackend()): string {
  return backend === 'postgres' ? teamHome() : plainHome();
}

/**
 * An empty opsdeck home, but for its backup store: a copy of the run's template store (a real
 * restic repository whose key is cheap to open, see fixtures/restic-fast.ts), which opsdeck uses
 * as its own (store/ and store.pass). Without the template (no global setup), no store yet.
 */
function plainHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'opsdeck-test-'));
  const template = inject('resticTemplate');
  if (template) copyFastStore(template, home);
  return home;
}

export function lab(): Lab {
  return labInfo();
}

/**
 * A home with environments and the lab hosts registered (keys pinned by fingerprint): prod
 * (protected) and dev, then each host, by the CLI. The CLI builds that home once per run for each
 * list of hosts (4 commands and an SSH login per host, ~2 s of CPU) and each call gets a copy of it:
 * the same files those commands leave, in a home of its own. A team inventory (postgres) is a
 * database, not files: built by the CLI each time.
 */
export async function homeWithHosts(hosts = ['lab1', 'lab2'], backend: Backend = defaultBackend()): Promise<string> {
  const templates = inject('homeTemplates');
  if (backend === 'postgres' || !templates) return buildHomeWithHosts(hosts, backend);
  const template = await homeTemplate(templates, hosts);
  const home = mkdtempSync(join(tmpdir(), 'opsdeck-test-'));
  cpSync(template, home, { recursive: true, preserveTimestamps: true });
  return home;
}

async function buildHomeWithHosts(hosts: string[], backend: Backend): Promise<string> {
  const home = newHome(backend);
  const l = lab();
  await must(cli(home, ['env', 'add', 'prod', '--protected']));
  await must(cli(home, ['env', 'add', 'dev']));
  for (const name of hosts) {
    const h = l.hosts.find((x) => x.name === name)!;
    await must(cli(home, hostAddArgs(l, h)));
  }
  return home;
}

const homeTemplates = new Map<string, Promise<string>>();
/**
 * The run's template home for `hosts` under `dir` (made by global setup, empty at the start of a
 * run): the first test file to ask builds it beside and renames it into place, so another file
 * never copies a half-built one; when two build at once, the second rename fails and that file
 * takes the first one's.
 */
function homeTemplate(dir: string, hosts: string[]): Promise<string> {
  const path = join(dir, hosts.length ? hosts.join('+') : 'no-hosts');
  let made = homeTemplates.get(path);
  if (!made) {
    made = (async () => {
      if (existsSync(path)) return path;
      const home = await buildHomeWithHosts(hosts, 'sqlite');
      try {
        renameSync(home, path);
      } catch (err) {
        if (!existsSync(path)) throw err;
        rmSync(home, { recursive: true, force: true });
      }
      return path;
    })();
    homeTemplates.set(path, made);
  }
  return made;
}

/**
 * Makes an instance on a lab host and registers it. With engine 'mysql' its database is on the lab's
 * MariaDB (its own account and database, Sakila for `pagila`); the code tree is the same app's.
 * `appSchema`: a MariaDB database without Sakila gets the app's migrations too (mariadbMigrateHook),
 * as a PostgreSQL one always does. `via`: registered under that inventory host name (a proxy in
 * front of the lab host, say) instead of the lab host's own.
 */
export async function addInstance(
  home: string,
  host: string,
  name: string,
  env: string,
  opts: { pagila?: boolean; version?: string; engine?: Engine; appSchema?: boolean; via?: string } = {},
): Promise<LabInstance & { engine: Engine }> {
  const i = { ...makeLabInstance(lab(), host, name, opts.engine === 'mysql' ? { version: opts.version } : opts), engine: opts.engine ?? ('postgres' as Engine) };
  if (i.engine === 'mysql') {
    const m = makeLabMysqlInstance(lab(), host, name, { sakila: opts.pagila });
    if (opts.appSchema && !opts.pagila) mariadbMigrate(i.path, m);
    Object.assign(i, { db: m.db, role: m.user, password: m.password, dbUrl: m.dbUrl });
  }
  await must(cli(home, ['instance', 'add', name, '--host', opts.via ?? host, '--path', i.path, '--env', env, '--db', i.dbUrl, '--url', i.url], { OPSDECK_DB_PASSWORD: i.password }));
  return i;
}

/** The app's migrate hook for an instance's engine: the app's own (psql), or the MariaDB one. */
export const migrateHook = (engine: Engine): string => (engine === 'mysql' ? mariadbMigrateHook() : 'bin/migrate');

// ---- the database engine a test runs on

export type Engine = 'postgres' | 'mysql';
/** The engines the parametrised suites run on (describe.each(ENGINES)). */
export const ENGINES: Engine[] = ['postgres', 'mysql'];

/** A lab database named by an instance: its name and engine. */
export type DbRef = string | { db: string; engine?: Engine };
const refOf = (d: DbRef) => (typeof d === 'string' ? { db: d, engine: 'postgres' as Engine } : { db: d.db, engine: d.engine ?? 'postgres' });

/** SQL as the instance's own account (MariaDB; on PostgreSQL as the superuser, who can SET ROLE to it). */
export function dbSqlAsApp(i: { db: string; engine?: Engine; role: string; password: string }, text: string): string {
  return i.engine === 'mysql' ? mysqlAs(i.role, i.password, text, i.db) : pgAdmin(text, i.db);
}

/** SQL as the engine's admin (PostgreSQL's superuser, MariaDB's root) on the instance's database. */
export function dbSql(d: DbRef, text: string): string {
  const r = refOf(d);
  return r.engine === 'mysql' ? mysqlAdmin(text, r.db) : pgAdmin(text, r.db);
}

export async function must(p: Promise<CliResult>): Promise<CliResult> {
  const r = await p;
  if (r.code !== 0) throw new Error(`opsdeck exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** Everything a person would compare about a tree: each entry's type, mode, owner and group (uid:gid), content or link target. */
export function treeState(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const owner = (s: { uid: number; gid: number }) => `${s.uid}:${s.gid}`;
  const walk = (dir: string, rel: string) => {
    const st = lstatSync(dir);
    out[rel || '.'] = `dir ${(st.mode & 0o7777).toString(8)} ${owner(st)}`;
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const s = lstatSync(p);
      if (s.isDirectory()) walk(p, r);
      else if (s.isSymbolicLink()) out[r] = `link ${owner(s)} -> ${readlinkSync(p)}`;
      else out[r] = `file ${(s.mode & 0o7777).toString(8)} ${owner(s)} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    }
  };
  walk(root, '');
  return out;
}

/**
 * The whole database as pg_dump sees it, read as superuser: schema with owners and privileges (grants,
 * default privileges), rows, sequences, large objects, functions, triggers.
 */
export function dbState(d: DbRef): string {
  const r = refOf(d);
  // MariaDB: schema with definers, each table's rows and CHECKSUM TABLE, read as the admin.
  return r.engine === 'mysql' ? JSON.stringify(mysqlState(r.db), null, 1) : pgDump(r.db);
}

/**
 * dbState with the instance's own names (account or role, database) made placeholders: two instances'
 * databases compared, each made by its own account.
 */
export function dbStateOf(i: { db: string; engine?: Engine; role: string }): string {
  return dbState(i).split(i.role).join('<account>').split(i.db).join('<database>');
}

/** SQL as the instance's own account on either engine (PostgreSQL: the superuser SET ROLE to it first). */
export function appSql(i: { db: string; engine?: Engine; role: string; password: string }, text: string): string {
  return dbSqlAsApp(i, i.engine === 'mysql' ? text : `SET ROLE ${i.role}; ${text}`);
}

function pgDump(db: string): string {
  const l = lab();
  // pg_dump >= 15.14 brackets its output with \restrict KEY lines holding a random key: not state.
  return asLabUser('pg_dump', ['-h', l.pg.socketDir, '-p', String(l.pg.port), '-U', 'postgres', db]).replace(/^\\(un)?restrict \S+$/gm, '');
}

export function sql(db: string, text: string): string {
  return pgAdmin(text, db);
}

export { asLabUser, pgAdmin } from '../fixtures/lab.js';

/** Runs a local command as the test's own user. */
export function local(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { maxBuffer: 1 << 28 }).toString();
}

/** Pins another key for a host, as if the host had started presenting a different one. */
export function repinHostKey(home: string, host: string, fingerprint: string): void {
  const inv = new Inventory(home);
  inv.pinHostKey(host, fingerprint);
  inv.close();
}

/** Polls `f` until it gives a value (every few ms, as a user watching would not), or fails after `ms`. */
export async function until<T>(what: string, f: () => T | undefined | false, ms = 60_000, everyMs = 5): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// ---- the inventory backend a test runs on

export type Backend = 'sqlite' | 'postgres';
/** The backends the parametrised suites run on (describe.each(BACKENDS)). */
export const BACKENDS: Backend[] = ['sqlite', 'postgres'];
/** newHome()'s backend when none is given: OPSDECK_TEST_INVENTORY=postgres runs any suite on PostgreSQL. */
export const defaultBackend = (): Backend => (process.env.OPSDECK_TEST_INVENTORY === 'postgres' ? 'postgres' : 'sqlite');

/**
 * The role team inventories of the tests are set up as: it may create schemas (it owns each test
 * database) and roles, as a team's administrator would. Its password is the lab's, known to the tests.
 */
export const TEAM_ADMIN = { role: 'opsdeck_test_admin', password: 'lab-team-admin-pw' };

/** A fresh PostgreSQL database on the lab cluster with the opsdeck schema (team init), owned by TEAM_ADMIN. */
export function teamDatabase(): { db: string; url: string } {
  const l = lab();
  // Roles are the cluster's: made once, by whichever test file comes first (a second CREATE fails, harmlessly).
  pgAdmin(`DO $$ BEGIN CREATE ROLE ${TEAM_ADMIN.role} LOGIN CREATEROLE PASSWORD '${TEAM_ADMIN.password}'; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;`);
  const db = `opsdeck_t_${randomBytes(6).toString('hex')}`;
  // FILE_COPY: a copy of template1's files, not each block through the WAL (a fraction of the CPU).
  pgAdmin(`CREATE DATABASE ${db} OWNER ${TEAM_ADMIN.role} STRATEGY FILE_COPY;`);
  const url = `postgres://${TEAM_ADMIN.role}@127.0.0.1:${l.pg.port}/${db}`;
  const inv = new Inventory(newHome('sqlite'), { url, password: TEAM_ADMIN.password, forInit: true });
  try {
    inv.pg!.init();
  } finally {
    inv.close();
  }
  return { db, url };
}

/**
 * A home whose inventory is a fresh team database (through the setting `inventory`), logged in as
 * TEAM_ADMIN: its password is in this process's OPSDECK_INVENTORY_PASSWORD, which cli() passes on.
 */
export function teamHome(home = plainHome()): string {
  const { url } = teamDatabase();
  writeFileSync(join(home, 'settings.json'), JSON.stringify({ inventory: url }));
  process.env.OPSDECK_INVENTORY_PASSWORD ??= TEAM_ADMIN.password;
  return home;
}

/**
 * A conversion to release mode as a run killed inside it leaves the instance at `path` (release mode
 * with config/local.env kept and uploads/ shared): the tree moved and linked, config/local.env moved
 * and uploads/ made in shared/, the journal beside. Returns the release id, made from commit `rev`.
 */
export function cutShortConversion(path: string, rev: string): string {
  const id = `20260101T000000Z-${rev.slice(0, 10)}`;
  asLabUser('sh', [
    '-c',
    'b=$(basename "$1") && mkdir "$1.releases" "$1.shared" "$1.shared/config" "$1.shared/uploads" && printf "%s" "$3" > "$1.releases/.converting" && mv -T "$1" "$1.releases/$2" && ln -s "$b.releases/$2" "$1" && ' +
      'mv "$1.releases/$2/config/local.env" "$1.shared/config/local.env" && ln -s "../../../$b.shared/config/local.env" "$1.releases/$2/config/local.env" && ' +
      'ln -s "../../$b.shared/uploads" "$1.releases/$2/uploads"',
    'sh',
    path,
    id,
    JSON.stringify({ id, moved: ['config/local.env'], made: ['uploads'] }),
  ]);
  return id;
}
