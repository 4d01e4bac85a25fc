/**
 * The inventories bench/ui.ts measures on: SQLite and a team inventory on the lab's PostgreSQL, filled
 * alike, and where the console's first read goes on each (in this process).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pgAdmin, type Lab } from '../fixtures/lab.js';
import { Inventory } from '../inventory/index.js';
import { firstPageSql } from '../inventory/list-sql.js';
import { HOSTS, median, RUNS } from './ui-common.js';

/**
 * Fills an inventory with `count` instances on HOSTS hosts, in one transaction of plain INSERTs:
 * addInstance checks each new tree against every other one (right for a person adding one, a
 * quadratic wait at 100,000).
 */
export function fill(inv: Inventory, count: number): void {
  const envs = ['dev', 'uat', 'preprod', 'prod'];
  inv.transaction(() => {
    for (const e of envs) inv.addEnv(e, e === 'prod');
    for (let h = 0; h < HOSTS; h++) {
      inv.addHost({ name: `web${String(h).padStart(3, '0')}`, address: `127.1.${Math.floor(h / 250)}.${(h % 250) + 1}`, port: 9, user: 'ops', keyFile: null, jump: null, hostKey: null });
    }
    const insert = inv.db.prepare(
      'INSERT INTO instances (name, host, path, env, url, db_url, db_secret, branch, created_at, hooks, health, local_paths, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const at = new Date().toISOString();
    for (let i = 0; i < count; i++) {
      const h = i % HOSTS;
      const addr = `127.1.${Math.floor(h / 250)}.${(h % 250) + 1}`;
      insert.run(
        `app${i}-${envs[i % envs.length]}`,
        `web${String(h).padStart(3, '0')}`,
        `/srv/app${i}`,
        envs[i % envs.length],
        `http://${addr}:9/app${i}/`,
        null,
        null,
        null,
        at,
        '{}',
        null,
        '[]',
        null,
      );
    }
  });
}

export function sqliteInventory(dir: string, count: number): string {
  const home = mkdtempSync(join(dir, `bench-ui-${count}-`));
  const inv = new Inventory(home);
  fill(inv, count);
  inv.close();
  return home;
}

/**
 * A team inventory on the lab's PostgreSQL (a fresh database, `team init`), filled like the SQLite one.
 * Two logins: its owner, a team admin (row-level security does not apply to the tables' owner), and
 * an operator granted on every environment, as most of a team logs in (the policies apply).
 */
export function pgInventory(lab: Lab, count: number): { home: string; env: NodeJS.ProcessEnv; operator: { home: string; env: NodeJS.ProcessEnv }; url: string; drop: () => void } {
  const role = 'opsdeck_bench_admin';
  const password = randomBytes(12).toString('hex');
  pgAdmin(`DO $$ BEGIN CREATE ROLE ${role} LOGIN CREATEROLE; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; ALTER ROLE ${role} PASSWORD '${password}';`);
  const db = `opsdeck_bench_${randomBytes(4).toString('hex')}`;
  pgAdmin(`CREATE DATABASE ${db} OWNER ${role};`);
  const url = `postgres://${role}@127.0.0.1:${lab.pg.port}/${db}`;
  const home = mkdtempSync(join(lab.dir, `bench-ui-pg-${count}-`));
  const init = new Inventory(home, { url, password, forInit: true });
  let roles: { user: string; admin: string };
  try {
    roles = init.pg!.init().roles;
  } finally {
    init.close();
  }
  const inv = new Inventory(home, { url, password });
  fill(inv, count);
  const op = { role: `opsdeck_bench_op_${randomBytes(3).toString('hex')}`, password: randomBytes(12).toString('hex') };
  pgAdmin(`CREATE ROLE ${op.role} LOGIN PASSWORD '${op.password}'; GRANT ${roles.user} TO ${op.role};`);
  for (const e of inv.listEnvs()) inv.rights.grant(op.role, e.name, 'operator');
  inv.close();
  // The tables were filled in one go: statistics as autovacuum would have them by now.
  pgAdmin('ANALYZE;', db);
  writeFileSync(join(home, 'settings.json'), JSON.stringify({ inventory: url }));
  const opHome = mkdtempSync(join(lab.dir, `bench-ui-pg-op-${count}-`));
  writeFileSync(join(opHome, 'settings.json'), JSON.stringify({ inventory: url.replace(`//${role}@`, `//${op.role}@`) }));
  return {
    home,
    env: { OPSDECK_INVENTORY_PASSWORD: password },
    operator: { home: opHome, env: { OPSDECK_INVENTORY_PASSWORD: op.password } },
    url,
    drop: () => {
      pgAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE);`);
      pgAdmin(`DROP ROLE IF EXISTS ${op.role}, ${roles.user}, ${roles.admin};`);
      spawnSync('rm', ['-rf', home, opHome]);
    },
  };
}

/**
 * Where the console's first read goes, in this process: opening the inventory (on PostgreSQL: the
 * worker thread, pg loaded, the connection, the schema check) and each query the first frame waits
 * for, wall and this process's CPU (both threads), median of RUNS.
 */
export function firstRead(home: string, password?: string): { step: string; wall: number; cpu: number }[] {
  const runs: { step: string; wall: number; cpu: number }[][] = [];
  for (let r = 0; r < RUNS; r++) {
    const out: { step: string; wall: number; cpu: number }[] = [];
    let t = performance.now();
    let c = process.cpuUsage();
    const lap = (step: string) => {
      const u = process.cpuUsage(c);
      out.push({ step, wall: performance.now() - t, cpu: (u.user + u.system) / 1000 });
      t = performance.now();
      c = process.cpuUsage();
    };
    const inv = new Inventory(home, password === undefined ? {} : { password });
    lap('open the inventory');
    // What the first frame reads (UiModel.readFirstPage, a 50-row terminal), then the whole lists after it.
    for (const sql of Object.values(firstPageSql(50))) inv.db.prepare(sql).all();
    lap("the first frame's page (50 rows, counts, hosts)");
    inv.listEnvs();
    inv.latestBackupTimes();
    lap('environments, newest backups');
    inv.listInstances();
    lap('the instances (all columns)');
    inv.listHosts();
    lap('the hosts');
    inv.listRuns(500);
    inv.listLocks();
    inv.changes.list({ open: true });
    lap('runs, locks, open changes');
    inv.rights.levelOn('prod');
    lap('own rights');
    inv.close();
    runs.push(out);
  }
  return runs[0].map((s, i) => ({ step: s.step, wall: median(runs.map((x) => x[i].wall)), cpu: median(runs.map((x) => x[i].cpu)) }));
}
